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
  (the released TF-slim model) parameter for parameter.
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
0.20) for both Inception-ResNets.

Where this code departs from the paper or from timm:
- The order of a 1xn / nx1 pair follows timm (the released model); some
  figures draw the pair the other way round (the same parameters and output
  size; Figure 5 even prints "1x7" twice).
- In the released IR-v2 the last Inception-ResNet-C block has scale 1.0 and
  no ReLU; here all blocks of a grid are alike, as in the figures (no effect
  on the parameter count).
- Average pools inside the Inception-v4 blocks do not count the padding
  (as timm / TF); BatchNorm uses PyTorch's default epsilon (1e-5; TF 1e-3);
  initialisation is PyTorch's default; dropout is the paper's 0.2 (timm 0).
"""

from __future__ import annotations

import torch
from torch import nn

from . import Reference, register
from .googlenet import Concat
from .inception_v3 import inception_35
from .inception_v3 import stem as inception_v3_stem
from .layers import conv_bn_relu as conv
from .layers import expect_input


def valid(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """A convolution without padding: the figures' "V"."""
    return conv(in_channels, out_channels, kernel_size, stride, padding=0)


def max_pool() -> nn.MaxPool2d:
    """3x3/2 max pooling without padding ("MaxPool (stride 2 V)")."""
    return nn.MaxPool2d(3, stride=2)


def avg_pool_proj(in_channels: int, out_channels: int) -> nn.Sequential:
    """The pooling branch of the Inception-v4 blocks: 3x3 average pool, then a 1x1 projection."""
    pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    return nn.Sequential(pool, conv(in_channels, out_channels, 1))


# ----- Inception-v4 ---------------------------------------------------------------------------


def stem_v4(in_channels: int) -> nn.Sequential:
    """The stem of Inception-v4 and of the paper's Inception-ResNet-v2 (Figure 3): 299x299x3 -> 35x35x384."""
    return nn.Sequential(
        valid(in_channels, 32, 3, stride=2),  # N x 32 x 149 x 149
        valid(32, 32, 3),  # N x 32 x 147 x 147
        conv(32, 64, 3),  # N x 64 x 147 x 147
        Concat(max_pool(), valid(64, 96, 3, stride=2)),  # N x 160 x 73 x 73
        Concat(
            nn.Sequential(conv(160, 64, 1), valid(64, 96, 3)),
            nn.Sequential(conv(160, 64, 1), conv(64, 64, (1, 7)), conv(64, 64, (7, 1)), valid(64, 96, 3)),
        ),  # N x 192 x 71 x 71
        Concat(valid(192, 192, 3, stride=2), max_pool()),  # N x 384 x 35 x 35
    )


def inception_a() -> Concat:
    """Inception-A (Figure 4), on the 35x35x384 grid."""
    return Concat(
        conv(384, 96, 1),
        nn.Sequential(conv(384, 64, 1), conv(64, 96, 3)),
        nn.Sequential(conv(384, 64, 1), conv(64, 96, 3), conv(96, 96, 3)),
        avg_pool_proj(384, 96),
    )


def reduction_a(in_channels: int, k: int, l: int, m: int, n: int) -> Concat:  # noqa: E741 (the paper's names)
    """Reduction-A (Figure 7), 35x35 -> 17x17, with the filter counts k, l, m, n of Table 1; in_channels + n + m out."""
    return Concat(
        max_pool(),
        valid(in_channels, n, 3, stride=2),
        nn.Sequential(conv(in_channels, k, 1), conv(k, l, 3), valid(l, m, 3, stride=2)),
    )


def inception_b() -> Concat:
    """Inception-B (Figure 5), on the 17x17x1024 grid."""
    return Concat(
        conv(1024, 384, 1),
        nn.Sequential(conv(1024, 192, 1), conv(192, 224, (1, 7)), conv(224, 256, (7, 1))),
        nn.Sequential(
            conv(1024, 192, 1),
            conv(192, 192, (7, 1)), conv(192, 224, (1, 7)),
            conv(224, 224, (7, 1)), conv(224, 256, (1, 7)),
        ),  # fmt: skip
        avg_pool_proj(1024, 128),
    )


def reduction_b_v4() -> Concat:
    """Inception-v4's Reduction-B (Figure 8), 17x17x1024 -> 8x8x1536."""
    return Concat(
        max_pool(),
        nn.Sequential(conv(1024, 192, 1), valid(192, 192, 3, stride=2)),
        nn.Sequential(conv(1024, 256, 1), conv(256, 256, (1, 7)), conv(256, 320, (7, 1)), valid(320, 320, 3, stride=2)),
    )


def inception_c() -> Concat:
    """Inception-C (Figure 6), on the 8x8x1536 grid: 3x3 outputs split into parallel 1x3 and 3x1."""
    return Concat(
        conv(1536, 256, 1),
        nn.Sequential(conv(1536, 384, 1), Concat(conv(384, 256, (1, 3)), conv(384, 256, (3, 1)))),
        nn.Sequential(
            conv(1536, 384, 1),
            conv(384, 448, (3, 1)),
            conv(448, 512, (1, 3)),
            Concat(conv(512, 256, (1, 3)), conv(512, 256, (3, 1))),
        ),
        avg_pool_proj(1536, 256),
    )


# ----- Inception-ResNet -----------------------------------------------------------------------


class ScaledResidual(nn.Module):
    """An Inception-ResNet block: ReLU(x + scale * Linear1x1(branches(x))) (Figures 10-13, 16-19, 20).

    The branches' concatenation (``branch_channels``) is brought back to the
    block's width by a 1x1 convolution with a bias and no activation ("1x1
    Conv, Linear"), scaled down (Section 3.3) and added to the input.
    """

    def __init__(self, branches: Concat, branch_channels: int, channels: int, scale: float) -> None:
        super().__init__()
        self.branches = branches
        self.project = nn.Conv2d(branch_channels, channels, 1)
        self.scale = scale
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.scale * self.project(self.branches(x)))


def block_35(channels: int, b1: int, b2: tuple[int, int], b3: tuple[int, int, int], scale: float) -> ScaledResidual:
    """Inception-ResNet-A, 35x35 grid (Fig. 10: v1; Fig. 16: v2): 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3."""
    branches = Concat(
        conv(channels, b1, 1),
        nn.Sequential(conv(channels, b2[0], 1), conv(b2[0], b2[1], 3)),
        nn.Sequential(conv(channels, b3[0], 1), conv(b3[0], b3[1], 3), conv(b3[1], b3[2], 3)),
    )
    return ScaledResidual(branches, b1 + b2[-1] + b3[-1], channels, scale)


def block_17(channels: int, b1: int, b2: tuple[int, int, int], scale: float) -> ScaledResidual:
    """Inception-ResNet-B, 17x17 grid (Fig. 11: v1; Fig. 17: v2): 1x1 | 1x1 -> 1x7 -> 7x1."""
    branches = Concat(
        conv(channels, b1, 1),
        nn.Sequential(conv(channels, b2[0], 1), conv(b2[0], b2[1], (1, 7)), conv(b2[1], b2[2], (7, 1))),
    )
    return ScaledResidual(branches, b1 + b2[-1], channels, scale)


def block_8(channels: int, b1: int, b2: tuple[int, int, int], scale: float) -> ScaledResidual:
    """Inception-ResNet-C, 8x8 grid (Fig. 13: v1; Fig. 19: v2): 1x1 | 1x1 -> 1x3 -> 3x1."""
    branches = Concat(
        conv(channels, b1, 1),
        nn.Sequential(conv(channels, b2[0], 1), conv(b2[0], b2[1], (1, 3)), conv(b2[1], b2[2], (3, 1))),
    )
    return ScaledResidual(branches, b1 + b2[-1], channels, scale)


def reduction_b_resnet(in_channels: int, a: int, b: int, c: tuple[int, int]) -> Concat:
    """Inception-ResNet's Reduction-B, 17x17 -> 8x8 (Fig. 12: v1; Fig. 18: v2); every branch starts with 1x1 256."""
    return Concat(
        max_pool(),
        nn.Sequential(conv(in_channels, 256, 1), valid(256, a, 3, stride=2)),
        nn.Sequential(conv(in_channels, 256, 1), valid(256, b, 3, stride=2)),
        nn.Sequential(conv(in_channels, 256, 1), conv(256, c[0], 3), valid(c[0], c[1], 3, stride=2)),
    )


def stem_resnet_v1(in_channels: int) -> nn.Sequential:
    """The stem of Inception-ResNet-v1 (Figure 14): 299x299x3 -> 35x35x256."""
    return nn.Sequential(
        valid(in_channels, 32, 3, stride=2),  # N x 32 x 149 x 149
        valid(32, 32, 3),  # N x 32 x 147 x 147
        conv(32, 64, 3),  # N x 64 x 147 x 147
        max_pool(),  # N x 64 x 73 x 73
        conv(64, 80, 1),  # N x 80 x 73 x 73
        valid(80, 192, 3),  # N x 192 x 71 x 71
        valid(192, 256, 3, stride=2),  # N x 256 x 35 x 35
    )


def stem_resnet_v2(in_channels: int) -> nn.Sequential:
    """The released Inception-ResNet-v2's stem: Inception-v3's stem and one Inception-v3 35x35 module -> 35x35x320."""
    return nn.Sequential(
        inception_v3_stem(in_channels),  # N x 192 x 35 x 35
        inception_35(192, pool_features=64, ch1x1=96),  # N x 320 x 35 x 35 (96 + 64 + 96 + 64)
    )


# ----- The network ----------------------------------------------------------------------------


class InceptionNetwork(nn.Module):
    """The common frame of Figures 9 and 15: stem, three grids joined by two reductions, pool, dropout, linear.

    The builders below fill it with each network's blocks; ``final_conv`` is
    the released IR-v2's 1x1 conv before the pooling (``None`` elsewhere).
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
    ) -> None:
        super().__init__()
        self.stem = stem  # N x 384 x 35 x 35 (v4), 256 (IR-v1), 320 (IR-v2)
        self.grid35 = grid35  # same
        self.reduction_a = reduction_a  # N x 1024 x 17 x 17 (v4), 896 (IR-v1), 1088 (IR-v2)
        self.grid17 = grid17  # same
        self.reduction_b = reduction_b  # N x 1536 x 8 x 8 (v4), 1792 (IR-v1), 2080 (IR-v2)
        self.grid8 = grid8  # same
        self.final_conv = final_conv if final_conv is not None else nn.Identity()  # IR-v2: N x 1536 x 8 x 8
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))  # N x num_features
        self.classifier = nn.Linear(num_features, num_classes)
        self.name = name
        self.in_channels = in_channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        expect_input(x, self.name, self.in_channels, min_size=75)  # smaller inputs vanish before the 8x8 grid
        x = self.grid35(self.stem(x))  # N x C x 35 x 35
        x = self.grid17(self.reduction_a(x))  # N x C x 17 x 17
        x = self.grid8(self.reduction_b(x))  # N x C x 8 x 8
        return self.final_conv(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register(input_size=(3, 299, 299), reference=Reference("timm", builder="timm:inception_v4"))
def inception_v4(
    num_classes: int = 1000, in_channels: int = 3, depths: tuple[int, int, int] = (4, 7, 3), dropout: float = 0.2
) -> InceptionNetwork:
    """Inception-v4 (Figure 9); ``depths`` are the numbers of Inception-A, -B and -C blocks."""
    a, b, c = depths
    return InceptionNetwork(
        "inception_v4",
        in_channels,
        stem=stem_v4(in_channels),
        grid35=nn.Sequential(*[inception_a() for _ in range(a)]),
        reduction_a=reduction_a(384, k=192, l=224, m=256, n=384),
        grid17=nn.Sequential(*[inception_b() for _ in range(b)]),
        reduction_b=reduction_b_v4(),
        grid8=nn.Sequential(*[inception_c() for _ in range(c)]),
        num_features=1536,
        num_classes=num_classes,
        dropout=dropout,
    )


# The count of the figures, recounted independently in tests/models/test_inception_v4.py.
@register(
    input_size=(3, 299, 299),
    reference=Reference("Szegedy et al. 2017, Figs. 7, 10-15 (counted from the figures)", params=22_756_328),
)
def inception_resnet_v1(
    num_classes: int = 1000,
    in_channels: int = 3,
    depths: tuple[int, int, int] = (5, 10, 5),
    scales: tuple[float, float, float] = (0.17, 0.10, 0.20),
    dropout: float = 0.2,
) -> InceptionNetwork:
    """Inception-ResNet-v1 (Figure 15 with Figures 14, 10, 7, 11, 12, 13); ``scales`` scale the residuals."""
    a, b, c = depths
    return InceptionNetwork(
        "inception_resnet_v1",
        in_channels,
        stem=stem_resnet_v1(in_channels),
        grid35=nn.Sequential(*[block_35(256, 32, (32, 32), (32, 32, 32), scales[0]) for _ in range(a)]),
        reduction_a=reduction_a(256, k=192, l=192, m=256, n=384),
        grid17=nn.Sequential(*[block_17(896, 128, (128, 128, 128), scales[1]) for _ in range(b)]),
        reduction_b=reduction_b_resnet(896, a=384, b=256, c=(256, 256)),
        grid8=nn.Sequential(*[block_8(1792, 192, (192, 192, 192), scales[2]) for _ in range(c)]),
        num_features=1792,
        num_classes=num_classes,
        dropout=dropout,
    )


@register(input_size=(3, 299, 299), reference=Reference("timm", builder="timm:inception_resnet_v2"))
def inception_resnet_v2(
    num_classes: int = 1000,
    in_channels: int = 3,
    depths: tuple[int, int, int] = (10, 20, 10),
    scales: tuple[float, float, float] = (0.17, 0.10, 0.20),
    dropout: float = 0.2,
) -> InceptionNetwork:
    """Inception-ResNet-v2 as released (timm), with the branches of Figures 16-19; ``depths=(5, 10, 5)``: Figure 15."""
    a, b, c = depths
    return InceptionNetwork(
        "inception_resnet_v2",
        in_channels,
        stem=stem_resnet_v2(in_channels),
        grid35=nn.Sequential(*[block_35(320, 32, (32, 32), (32, 48, 64), scales[0]) for _ in range(a)]),
        reduction_a=reduction_a(320, k=256, l=256, m=384, n=384),
        grid17=nn.Sequential(*[block_17(1088, 192, (128, 160, 192), scales[1]) for _ in range(b)]),
        reduction_b=reduction_b_resnet(1088, a=384, b=288, c=(288, 320)),
        grid8=nn.Sequential(*[block_8(2080, 192, (192, 224, 256), scales[2]) for _ in range(c)]),
        final_conv=conv(2080, 1536, 1),
        num_features=1536,
        num_classes=num_classes,
        dropout=dropout,
    )
