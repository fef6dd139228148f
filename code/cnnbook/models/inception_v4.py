"""Inception-v4, Inception-ResNet-v1 and Inception-ResNet-v2.

Paper: C. Szegedy, S. Ioffe, V. Vanhoucke, A. Alemi, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections on Learning",
AAAI 2017 (arXiv:1602.07261), Figures 3-22 and Table 1.

All three are built the same way at 299x299: a stem down to a 35x35 grid,
blocks on the 35x35 grid, Reduction-A to 17x17, blocks on the 17x17 grid,
Reduction-B to 8x8, blocks on the 8x8 grid, then average pooling, dropout
(keep 0.8) and a linear layer (Figures 9 and 15). Every convolution is
followed by BatchNorm and ReLU, except the 1x1 "Linear" convolutions that
bring a residual branch back to its block's width: they have a bias and
neither BatchNorm nor activation, as in the released models (the paper puts
BatchNorm "only on top of the traditional layers, but not on top of the
summations", Section 3.2).

- ``inception_v4`` (Figure 9): the stem of Figure 3 (35x35x384), 4 x
  Inception-A (Fig. 4), Reduction-A (Fig. 7, k, l, m, n = 192, 224, 256, 384
  from Table 1) -> 17x17x1024, 7 x Inception-B (Fig. 5), Reduction-B (Fig. 8)
  -> 8x8x1536, 3 x Inception-C (Fig. 6). It matches timm's ``inception_v4``
  (the released TF-slim model) parameter for parameter and, with timm's
  weights copied in, computes the same logits (tested in float64).
- ``inception_resnet_v1`` (Figure 15 with Figs. 14, 10, 7, 11, 12, 13): the
  stem of Figure 14 (35x35x256), 5 x Inception-ResNet-A, Reduction-A (k, l, m,
  n = 192, 192, 256, 384) -> 17x17x896, 10 x Inception-ResNet-B, Reduction-B
  -> 8x8x1792, 5 x Inception-ResNet-C. No implementation was released; the
  count is the figures' own (checked layer by layer in the tests).
- ``inception_resnet_v2`` (Figs. 15-19): follows timm's
  ``inception_resnet_v2``, i.e. the network the authors released (TF-slim),
  because the paper's figures do not fit together: Reduction-A (k, l, m, n =
  256, 256, 384, 384) turns Figure 3's 384 channels into 1152, but the
  Inception-ResNet-B block (Fig. 17) adds a 1154-channel residual to it, and
  Reduction-B then gives 1154 + 992 = 2146 channels where Inception-ResNet-C
  (Fig. 19) adds 2048. The released network keeps every branch width of
  Figures 16-19 and makes the widths consistent (320, 1088, 2080). It also
  differs from the figures where the paper is silent or was not followed:
  its stem is Inception-v3's stem plus one Inception-v3 35x35 module (with
  96 1x1 filters) instead of Figure 3 (35x35x320 instead of 384); it has 10,
  20 and 10 residual blocks (Figure 15 draws 5, 10 and 5; the released counts
  give the cost "roughly that of Inception-v4" the text states); and a 1x1
  conv to 1536 channels before the pooling. ``depths=(5, 10, 5)`` builds
  Figure 15's block counts.

Residual scaling (Section 3.3, Figure 20): the residual branch is multiplied
by a constant "between 0.1 and 0.3" before the addition, which kept the wide
networks from dying early in training. ``scales=(a, b, c)`` sets it per block
type (35x35, 17x17, 8x8); the default is the released IR-v2's (0.17, 0.10,
0.20) for both Inception-ResNets. ``residual=False`` removes the shortcuts
(``x +``) and keeps everything else, the ablation the paper's Section 3
compares against; the scale is then a constant factor on the block's output.

The released Inception-ResNet-v2. ``inception_resnet_v2`` (``released=True``,
the default) computes the released network's function: with timm's weights
copied in, its logits agree with timm's to 1e-10 in float64 (here bit for bit,
``tests/models/test_inception_v4.py``). Four details make that so, none of
which changes a parameter count:
- the last Inception-ResNet-C block has scale 1.0 and no ReLU (the 1x1 conv
  to 1536 after it has its own); ``released=False`` makes all blocks of the
  8x8 grid alike, as the figures draw them;
- the average pool of the stem's Inception-v3 module (timm's "Mixed_5b")
  does not count the zero padding (TensorFlow's "SAME" pooling), unlike
  torchvision's Inception-v3; with the padding counted, that module's
  output differed by 5-8%;
- the reductions concatenate the max pool's channels last (below);
- BatchNorm's epsilon is TF-slim's 1e-3 (below).
Without them, the logits differed from timm's by 36-38% (relative norm).

The CIFAR members ``inception_v4_cifar``, ``inception_resnet_v1_cifar`` and
``inception_resnet_v2_cifar`` are the same networks for 32x32 images, built
from the same block builders:
- the stem (299 -> 35) becomes Inception-v3's ``cifar_stem``: three 3x3
  convolutions at 32x32 to the first grid's width (384, 256; 192 for IR-v2,
  followed by its released stem's Inception-v3 module -> 320);
- the reductions are kept as in the paper (unpadded 3x3/2, "V"), so the
  blocks of the 35x35, 17x17 and 8x8 grids run on 32x32, 15x15 and 7x7;
- ``inception_resnet_v2_cifar`` has Figure 15's 5, 10 and 5 blocks (the
  released 10, 20 and 10 with ``depths=(10, 20, 10)``), the depth of
  IR-v1, so that the two differ in how wide their blocks are (the point of
  v2), not in depth; and ``released=False`` (all blocks follow ``scales``);
- ``width`` (every builder) multiplies the channels of every convolution,
  rounded to the nearest whole number, at least 1 (``googlenet.scaled``);
  the block widths follow from the branches (e.g. IR-v2's 17x17 grid is
  320 + 384 + 384 = 1088 at width 1). ``depths`` sets the number of blocks.
  Parameters and multiply-adds per 32x32 image at width 1 (0.25): v4 40.8M
  and 8.1G (2.6M, 0.51G), IR-v1 20.5M and 3.6G (1.3M, 0.22G), IR-v2 32.2M
  and 5.8G (2.0M, 0.36G).

Where this code departs from the paper or from timm:
- The order of a 1xn / nx1 pair follows timm (the released model); some
  figures draw the pair the other way round (the same parameters and output
  size; Figure 5 even prints "1x7" twice). Likewise the reductions put the
  max pool's channels last, as the released models concatenate them
  (Figures 7, 8, 12 and 18 draw the pool on the left); the order matters
  only for loading released weights.
- BatchNorm uses TF-slim's epsilon, 1e-3 (PyTorch's default is 1e-5), in
  every network of this file, as in ``inception_v3.py``; with it timm's
  weights give timm's function for ``inception_v4`` too. Average pools
  inside the blocks do not count the padding (as timm / TF).
- Initialisation is PyTorch's default; dropout is the paper's 0.2 (timm 0).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from . import Reference, register
from .googlenet import Concat, out_channels, scaled, stack
from .inception_v3 import (
    avg_pool_proj,
    cifar_stem,
    inception_35,
    tf_batchnorm_eps_,
)
from .inception_v3 import stem as inception_v3_stem
from .layers import conv_bn_relu as conv
from .layers import expect_input


def valid(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1
) -> nn.Sequential:
    """A convolution without padding: the figures' "V"."""
    return conv(in_channels, out_channels, kernel_size, stride, padding=0)


def max_pool() -> nn.MaxPool2d:
    """3x3/2 max pooling without padding ("MaxPool (stride 2 V)")."""
    return nn.MaxPool2d(3, stride=2)


def pool_proj(in_channels: int, out_channels: int) -> nn.Sequential:
    """The pooling branch of the Inception-v4 blocks: 3x3 average pool
    (padding not counted, as TF), 1x1 projection.
    """
    return avg_pool_proj(in_channels, out_channels, count_include_pad=False)


# ----- Inception-v4
# ---------------------------------------------------------------------------


def stem_v4(in_channels: int, width: float = 1.0) -> nn.Sequential:
    """The stem of Inception-v4 and of the paper's Inception-ResNet-v2
    (Figure 3): 299x299x3 -> 35x35x384.
    """
    c32, c64, c96, c192 = scaled((32, 64, 96, 192), width)
    return nn.Sequential(
        valid(in_channels, c32, 3, stride=2),  # N x 32 x 149 x 149
        valid(c32, c32, 3),  # N x 32 x 147 x 147
        conv(c32, c64, 3),  # N x 64 x 147 x 147
        Concat(max_pool(), valid(c64, c96, 3, stride=2)),  # N x 160 x 73 x 73
        Concat(
            nn.Sequential(conv(c64 + c96, c64, 1), valid(c64, c96, 3)),
            nn.Sequential(
                conv(c64 + c96, c64, 1),
                conv(c64, c64, (1, 7)),
                conv(c64, c64, (7, 1)),
                valid(c64, c96, 3),
            ),
        ),  # N x 192 x 71 x 71
        # N x 384 x 35 x 35
        Concat(valid(2 * c96, c192, 3, stride=2), max_pool()),
    )


def inception_a(in_channels: int = 384, width: float = 1.0) -> Concat:
    """Inception-A (Figure 4), on the 35x35x384 grid."""
    c64, c96 = scaled((64, 96), width)
    return Concat(
        conv(in_channels, c96, 1),
        nn.Sequential(conv(in_channels, c64, 1), conv(c64, c96, 3)),
        nn.Sequential(
            conv(in_channels, c64, 1), conv(c64, c96, 3), conv(c96, c96, 3)
        ),
        pool_proj(in_channels, c96),
    )


# l is one of the paper's names (Table 1), hence the noqa.
def reduction_a(
    in_channels: int,
    k: int,
    l: int,
    m: int,
    n: int,  # noqa: E741
) -> Concat:
    """Reduction-A (Figure 7), 35x35 -> 17x17, with the filter counts k, l,
    m, n of Table 1; n + m + in_channels out.
    """
    return Concat(
        valid(in_channels, n, 3, stride=2),
        nn.Sequential(
            conv(in_channels, k, 1), conv(k, l, 3), valid(l, m, 3, stride=2)
        ),
        max_pool(),
    )


def inception_b(in_channels: int = 1024, width: float = 1.0) -> Concat:
    """Inception-B (Figure 5), on the 17x17x1024 grid."""
    c128, c192, c224, c256, c384 = scaled((128, 192, 224, 256, 384), width)
    return Concat(
        conv(in_channels, c384, 1),
        nn.Sequential(
            conv(in_channels, c192, 1),
            conv(c192, c224, (1, 7)),
            conv(c224, c256, (7, 1)),
        ),
        nn.Sequential(
            conv(in_channels, c192, 1),
            conv(c192, c192, (7, 1)),
            conv(c192, c224, (1, 7)),
            conv(c224, c224, (7, 1)),
            conv(c224, c256, (1, 7)),
        ),  # fmt: skip
        pool_proj(in_channels, c128),
    )


def reduction_b_v4(in_channels: int = 1024, width: float = 1.0) -> Concat:
    """Inception-v4's Reduction-B (Figure 8), 17x17x1024 -> 8x8x1536."""
    c192, c256, c320 = scaled((192, 256, 320), width)
    return Concat(
        nn.Sequential(
            conv(in_channels, c192, 1), valid(c192, c192, 3, stride=2)
        ),
        nn.Sequential(
            conv(in_channels, c256, 1),
            conv(c256, c256, (1, 7)),
            conv(c256, c320, (7, 1)),
            valid(c320, c320, 3, stride=2),
        ),  # fmt: skip
        max_pool(),
    )


def inception_c(in_channels: int = 1536, width: float = 1.0) -> Concat:
    """Inception-C (Figure 6), on the 8x8x1536 grid: 3x3 outputs split into
    parallel 1x3 and 3x1.
    """
    c256, c384, c448, c512 = scaled((256, 384, 448, 512), width)
    return Concat(
        conv(in_channels, c256, 1),
        nn.Sequential(
            conv(in_channels, c384, 1),
            Concat(conv(c384, c256, (1, 3)), conv(c384, c256, (3, 1))),
        ),
        nn.Sequential(
            conv(in_channels, c384, 1),
            conv(c384, c448, (3, 1)),
            conv(c448, c512, (1, 3)),
            Concat(conv(c512, c256, (1, 3)), conv(c512, c256, (3, 1))),
        ),
        pool_proj(in_channels, c256),
    )


# ----- Inception-ResNet
# -----------------------------------------------------------------------


class ScaledResidual(nn.Module):
    """An Inception-ResNet block: ReLU(x + scale * Linear1x1(branches(x)))
    (Figures 10-13, 16-19, 20).

    The branches' concatenation (``branch_channels``) is brought back to the
    block's width by a 1x1 convolution with a bias and no activation ("1x1
    Conv, Linear"), scaled down (Section 3.3) and added to the input.
    ``shortcut=False`` leaves out the ``x +`` (the same block without its
    residual connection); ``relu=False`` leaves out the ReLU (the released
    IR-v2's last block).
    """

    def __init__(
        self,
        branches: Concat,
        branch_channels: int,
        channels: int,
        scale: float,
        shortcut: bool = True,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.branches = branches
        self.project = nn.Conv2d(branch_channels, channels, 1)
        self.scale = scale
        self.shortcut = shortcut
        self.relu = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.scale * self.project(self.branches(x))
        return self.relu(x + residual if self.shortcut else residual)


def block_35(
    channels: int,
    b1: int,
    b2: tuple[int, int],
    b3: tuple[int, int, int],
    scale: float,
    shortcut: bool = True,
) -> ScaledResidual:
    """Inception-ResNet-A, 35x35 grid (Fig. 10: v1; Fig. 16: v2): 1x1 | 1x1
    -> 3x3 | 1x1 -> 3x3 -> 3x3.
    """
    branches = Concat(
        conv(channels, b1, 1),
        nn.Sequential(conv(channels, b2[0], 1), conv(b2[0], b2[1], 3)),
        nn.Sequential(
            conv(channels, b3[0], 1),
            conv(b3[0], b3[1], 3),
            conv(b3[1], b3[2], 3),
        ),
    )
    return ScaledResidual(
        branches, b1 + b2[-1] + b3[-1], channels, scale, shortcut
    )


def block_17(
    channels: int,
    b1: int,
    b2: tuple[int, int, int],
    scale: float,
    shortcut: bool = True,
) -> ScaledResidual:
    """Inception-ResNet-B, 17x17 grid (Fig. 11: v1; Fig. 17: v2): 1x1 | 1x1
    -> 1x7 -> 7x1.
    """
    branches = Concat(
        conv(channels, b1, 1),
        nn.Sequential(
            conv(channels, b2[0], 1),
            conv(b2[0], b2[1], (1, 7)),
            conv(b2[1], b2[2], (7, 1)),
        ),
    )
    return ScaledResidual(branches, b1 + b2[-1], channels, scale, shortcut)


def block_8(
    channels: int,
    b1: int,
    b2: tuple[int, int, int],
    scale: float,
    shortcut: bool = True,
    relu: bool = True,
) -> ScaledResidual:
    """Inception-ResNet-C, 8x8 grid (Fig. 13: v1; Fig. 19: v2): 1x1 | 1x1 ->
    1x3 -> 3x1.
    """
    branches = Concat(
        conv(channels, b1, 1),
        nn.Sequential(
            conv(channels, b2[0], 1),
            conv(b2[0], b2[1], (1, 3)),
            conv(b2[1], b2[2], (3, 1)),
        ),
    )
    return ScaledResidual(
        branches, b1 + b2[-1], channels, scale, shortcut, relu
    )


def reduction_b_resnet(
    in_channels: int, a: int, b: int, c: tuple[int, int], reduce: int = 256
) -> Concat:
    """Inception-ResNet's Reduction-B, 17x17 -> 8x8 (Fig. 12: v1; Fig. 18: v2);
    conv branches open with 1x1 ``reduce``.

    The paper's 1x1 convolutions have 256 filters (``reduce``; the ``width``
    option of the networks scales it).
    """
    return Concat(
        nn.Sequential(
            conv(in_channels, reduce, 1), valid(reduce, a, 3, stride=2)
        ),
        nn.Sequential(
            conv(in_channels, reduce, 1), valid(reduce, b, 3, stride=2)
        ),
        nn.Sequential(
            conv(in_channels, reduce, 1),
            conv(reduce, c[0], 3),
            valid(c[0], c[1], 3, stride=2),
        ),
        max_pool(),
    )


def stem_resnet_v1(in_channels: int, width: float = 1.0) -> nn.Sequential:
    """The stem of Inception-ResNet-v1 (Figure 14): 299x299x3 -> 35x35x256."""
    c32, c64, c80, c192, c256 = scaled((32, 64, 80, 192, 256), width)
    return nn.Sequential(
        valid(in_channels, c32, 3, stride=2),  # N x 32 x 149 x 149
        valid(c32, c32, 3),  # N x 32 x 147 x 147
        conv(c32, c64, 3),  # N x 64 x 147 x 147
        max_pool(),  # N x 64 x 73 x 73
        conv(c64, c80, 1),  # N x 80 x 73 x 73
        valid(c80, c192, 3),  # N x 192 x 71 x 71
        valid(c192, c256, 3, stride=2),  # N x 256 x 35 x 35
    )


def stem_resnet_v2(
    in_channels: int, width: float = 1.0, small_input: bool = False
) -> nn.Sequential:
    """The released Inception-ResNet-v2's stem: Inception-v3's stem and one
    Inception-v3 35x35 module -> 35x35x320.

    The module (timm's "Mixed_5b") has 96 1x1 filters and, as released, an
    average pool that does not count the padding. ``small_input=True``: the
    CIFAR stem in front of the module instead (32x32x320).
    """
    c192 = scaled(192, width)
    first = (
        cifar_stem(in_channels, c192, width)
        if small_input
        else inception_v3_stem(in_channels, width=width)
    )
    return nn.Sequential(
        first,  # N x 192 x 35 x 35 (32 x 32 for CIFAR)
        # 96 + 64 + 96 + 64
        inception_35(
            c192,
            pool_features=64,
            ch1x1=96,
            width=width,
            count_include_pad=False,
        ),
    )


# ----- The network
# ----------------------------------------------------------------------------


class InceptionNetwork(nn.Module):
    """The common frame of Figures 9 and 15: stem, three grids joined by two
    reductions, pool, dropout, linear.

    The builders below fill it with each network's blocks; ``final_conv`` is
    the released IR-v2's 1x1 conv before the pooling (``None`` elsewhere);
    ``min_size`` is the smallest input side that survives the stem and both
    reductions. Every BatchNorm gets TF-slim's epsilon (1e-3). The shapes in
    the comments are those of width 1 at 299x299 (32x32: grids of 32, 15, 7).
    """

    def __init__(
        self,
        name: str,
        in_channels: int,
        stem: nn.Module,
        grid35: nn.Sequential,
        reduction_a: nn.Module,
        grid17: nn.Sequential,
        reduction_b: nn.Module,
        grid8: nn.Sequential,
        num_features: int,
        num_classes: int,
        final_conv: nn.Module | None = None,
        dropout: float = 0.2,
        min_size: int = 75,
    ) -> None:
        super().__init__()
        self.stem = stem  # N x 384 x 35 x 35 (v4), 256 (IR-v1), 320 (IR-v2)
        self.grid35 = grid35  # same
        # N x 1024 x 17 x 17 (v4), 896 (IR-v1), 1088 (IR-v2)
        self.reduction_a = reduction_a
        self.grid17 = grid17  # same
        # N x 1536 x 8 x 8 (v4), 1792 (IR-v1), 2080 (IR-v2)
        self.reduction_b = reduction_b
        self.grid8 = grid8  # same
        # IR-v2: N x 1536 x 8 x 8
        self.final_conv = (
            final_conv if final_conv is not None else nn.Identity()
        )
        # N x num_features
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout)
        )
        self.classifier = nn.Linear(num_features, num_classes)
        tf_batchnorm_eps_(self)
        self.name = name
        self.in_channels = in_channels
        self.min_size = min_size

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # smaller inputs vanish before 8x8
        expect_input(x, self.name, self.in_channels, min_size=self.min_size)
        x = self.grid35(self.stem(x))  # N x C x 35 x 35
        x = self.grid17(self.reduction_a(x))  # N x C x 17 x 17
        x = self.grid8(self.reduction_b(x))  # N x C x 8 x 8
        return self.final_conv(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _frame(name: str, small_input: bool) -> dict[str, str | int]:
    """The name and smallest input of the ImageNet network or of its CIFAR
    member (stem without downsampling).
    """
    return (
        {"name": name + "_cifar", "min_size": 7}
        if small_input
        else {"name": name, "min_size": 75}
    )


@register(
    input_size=(3, 299, 299),
    reference=Reference("timm", builder="timm:inception_v4"),
)
def inception_v4(
    num_classes: int = 1000,
    in_channels: int = 3,
    depths: tuple[int, int, int] = (4, 7, 3),
    dropout: float = 0.2,
    width: float = 1.0,
    small_input: bool = False,
) -> InceptionNetwork:
    """Inception-v4 (Figure 9); ``depths`` are the numbers of Inception-A, -B
    and -C blocks.

    ``width`` multiplies every convolution's channels; ``small_input=True`` is
    ``inception_v4_cifar``.
    """
    a, b, c = depths
    stem = (
        cifar_stem(in_channels, scaled(384, width), width)
        if small_input
        else stem_v4(in_channels, width)
    )
    channels = out_channels(stem, in_channels)  # 384
    grid35 = stack(channels, [partial(inception_a, width=width)] * a)
    channels = out_channels(grid35, channels)  # 4 x 96 = 384
    # k, l, m, n of Table 1
    reduction_35 = reduction_a(channels, *scaled((192, 224, 256, 384), width))
    channels = out_channels(reduction_35, channels)  # 384 + 256 + 384 = 1024
    grid17 = stack(channels, [partial(inception_b, width=width)] * b)
    channels = out_channels(grid17, channels)  # 384 + 256 + 256 + 128 = 1024
    reduction_17 = reduction_b_v4(channels, width)
    channels = out_channels(reduction_17, channels)  # 192 + 320 + 1024 = 1536
    grid8 = stack(channels, [partial(inception_c, width=width)] * c)
    channels = out_channels(grid8, channels)  # 256 + 512 + 512 + 256 = 1536
    return InceptionNetwork(
        **_frame("inception_v4", small_input),
        in_channels=in_channels,
        stem=stem,
        grid35=grid35,
        reduction_a=reduction_35,
        grid17=grid17,
        reduction_b=reduction_17,
        grid8=grid8,
        num_features=channels,
        num_classes=num_classes,
        dropout=dropout,
    )


# The count of the figures, recounted independently in
# tests/models/test_inception_v4.py.
@register(
    input_size=(3, 299, 299),
    reference=Reference(
        "Szegedy et al. 2017, Figs. 7, 10-15 (counted from the figures)",
        params=22_756_328,
    ),
)
def inception_resnet_v1(
    num_classes: int = 1000,
    in_channels: int = 3,
    depths: tuple[int, int, int] = (5, 10, 5),
    scales: tuple[float, float, float] = (0.17, 0.10, 0.20),
    dropout: float = 0.2,
    residual: bool = True,
    width: float = 1.0,
    small_input: bool = False,
) -> InceptionNetwork:
    """Inception-ResNet-v1 (Figure 15 with Figures 14, 10, 7, 11, 12, 13);
    ``scales`` scale the residuals.

    ``residual=False`` removes the shortcuts; ``width`` multiplies every
    convolution's channels; ``small_input=True`` is
    ``inception_resnet_v1_cifar``.
    """
    a, b, c = depths
    channels = scaled(256, width)
    stem = (
        cifar_stem(in_channels, channels, width)
        if small_input
        else stem_resnet_v1(in_channels, width)
    )
    grid35 = nn.Sequential(
        *[
            block_35(
                channels,
                *scaled((32, (32, 32), (32, 32, 32)), width),
                scales[0],
                residual,
            )
            for _ in range(a)
        ]
    )
    # k, l, m, n of Table 1
    reduction_35 = reduction_a(channels, *scaled((192, 192, 256, 384), width))
    channels = out_channels(reduction_35, channels)  # 384 + 256 + 256 = 896
    grid17 = nn.Sequential(
        *[
            block_17(
                channels,
                *scaled((128, (128, 128, 128)), width),
                scales[1],
                residual,
            )
            for _ in range(b)
        ]
    )
    reduction_17 = reduction_b_resnet(
        channels, *scaled((384, 256, (256, 256), 256), width)
    )
    # 384 + 256 + 256 + 896 = 1792
    channels = out_channels(reduction_17, channels)
    grid8 = nn.Sequential(
        *[
            block_8(
                channels,
                *scaled((192, (192, 192, 192)), width),
                scales[2],
                residual,
            )
            for _ in range(c)
        ]
    )
    return InceptionNetwork(
        **_frame("inception_resnet_v1", small_input),
        in_channels=in_channels,
        stem=stem,
        grid35=grid35,
        reduction_a=reduction_35,
        grid17=grid17,
        reduction_b=reduction_17,
        grid8=grid8,
        num_features=channels,
        num_classes=num_classes,
        dropout=dropout,
    )


@register(
    input_size=(3, 299, 299),
    reference=Reference("timm", builder="timm:inception_resnet_v2"),
)
def inception_resnet_v2(
    num_classes: int = 1000,
    in_channels: int = 3,
    depths: tuple[int, int, int] = (10, 20, 10),
    scales: tuple[float, float, float] = (0.17, 0.10, 0.20),
    dropout: float = 0.2,
    residual: bool = True,
    released: bool = True,
    width: float = 1.0,
    small_input: bool = False,
) -> InceptionNetwork:
    """Inception-ResNet-v2 as released (timm), with the branches of Figures
    16-19; ``depths=(5, 10, 5)``: Figure 15.

    ``released=False`` makes the last block like the others (scale
    ``scales[2]`` and a ReLU; released: 1.0 and none); ``residual=False``
    removes the shortcuts; ``width`` multiplies every convolution's channels;
    ``small_input=True`` is ``inception_resnet_v2_cifar``.
    """
    a, b, c = depths
    stem = stem_resnet_v2(in_channels, width, small_input)
    channels = out_channels(stem, in_channels)  # 96 + 64 + 96 + 64 = 320
    grid35 = nn.Sequential(
        *[
            block_35(
                channels,
                *scaled((32, (32, 32), (32, 48, 64)), width),
                scales[0],
                residual,
            )
            for _ in range(a)
        ]
    )
    # k, l, m, n of Table 1
    reduction_35 = reduction_a(channels, *scaled((256, 256, 384, 384), width))
    channels = out_channels(reduction_35, channels)  # 384 + 384 + 320 = 1088
    grid17 = nn.Sequential(
        *[
            block_17(
                channels,
                *scaled((192, (128, 160, 192)), width),
                scales[1],
                residual,
            )
            for _ in range(b)
        ]
    )
    reduction_17 = reduction_b_resnet(
        channels, *scaled((384, 288, (288, 320), 256), width)
    )
    # 384 + 288 + 320 + 1088 = 2080
    channels = out_channels(reduction_17, channels)
    # The released network's last block has scale 1.0 and no ReLU (the 1x1 conv
    # after it has its own).
    last = [released and i == c - 1 for i in range(c)]
    grid8 = nn.Sequential(
        *[
            block_8(
                channels,
                *scaled((192, (192, 224, 256)), width),
                1.0 if final else scales[2],
                residual,
                not final,
            )
            for final in last
        ]
    )
    num_features = scaled(1536, width)
    return InceptionNetwork(
        **_frame("inception_resnet_v2", small_input),
        in_channels=in_channels,
        stem=stem,
        grid35=grid35,
        reduction_a=reduction_35,
        grid17=grid17,
        reduction_b=reduction_17,
        grid8=grid8,
        final_conv=conv(channels, num_features, 1),
        num_features=num_features,
        num_classes=num_classes,
        dropout=dropout,
    )


@register(input_size=(3, 32, 32), num_classes=10)
def inception_v4_cifar(num_classes: int = 10, **kwargs) -> InceptionNetwork:
    """Inception-v4's blocks and reductions behind a 3x3-conv stem for 32x32
    images (options: ``inception_v4``).
    """
    return inception_v4(num_classes, small_input=True, **kwargs)


@register(input_size=(3, 32, 32), num_classes=10)
def inception_resnet_v1_cifar(
    num_classes: int = 10, **kwargs
) -> InceptionNetwork:
    """Inception-ResNet-v1's blocks and reductions behind a 3x3-conv stem
    (options: ``inception_resnet_v1``).
    """
    return inception_resnet_v1(num_classes, small_input=True, **kwargs)


@register(input_size=(3, 32, 32), num_classes=10)
def inception_resnet_v2_cifar(
    num_classes: int = 10,
    depths: tuple[int, int, int] = (5, 10, 5),
    released: bool = False,
    **kwargs,
) -> InceptionNetwork:
    """Inception-ResNet-v2's blocks with Figure 15's 5, 10, 5 blocks behind the
    CIFAR stem, all blocks alike.

    Options: ``inception_resnet_v2`` (``scales``, ``residual``, ``width``,
    ...).
    """
    return inception_resnet_v2(
        num_classes,
        depths=depths,
        released=released,
        small_input=True,
        **kwargs,
    )
