"""Inception-v2 and Inception-v3.

Paper: C. Szegedy, V. Vanhoucke, S. Ioffe, J. Shlens, Z. Wojna, "Rethinking
the Inception Architecture for Computer Vision", CVPR 2016
(arXiv:1512.00567), Sections 3-8, Table 1, Table 3, Figures 5-10.

The network at 299x299, built from BatchNorm + ReLU convolutions:

- a stem of plain convolutions down to a 35x35x192 grid;
- three Inception modules on the 35x35 grid in which the 5x5 convolution is
  factorised into two 3x3 ones (Figure 5) -> 35x35x288;
- a grid reduction (Figure 10): stride-2 convolutions and a stride-2 pool
  side by side, so that the grid shrinks while the channels grow, avoiding
  a representational bottleneck -> 17x17x768;
- four modules on the 17x17 grid in which n x n is factorised into 1 x n
  and n x 1, n = 7 (Figure 6) -> 17x17x768;
- a second grid reduction -> 8x8x1280;
- two modules with expanded filter banks (Figure 7: the 3x3 outputs split
  into parallel 1x3 and 3x1) -> 8x8x2048;
- global average pool, dropout, a linear layer;
- an auxiliary classifier on the last 17x17 output (Figure 8), returned in
  training mode with ``aux_logits=True``: ``(logits, aux_logits)``.

The paper gives the layout (Table 1) but not the filter banks inside the
modules (they were in a supplementary ``model.txt``); the only complete
specification is the released Inception-v3 (TF-slim), which torchvision's
``inception_v3`` reproduces. ``inception_v3`` is that network, with exactly
torchvision's parameter count (27,161,264 with the auxiliary classifier).

What separates ``inception_v2`` from ``inception_v3``: Table 3 of the paper
climbs from "Inception-v2" to "Inception-v3" in steps, two of which change
the architecture (the others are training: RMSProp and label smoothing):
- "Factorized 7x7": v3's first three 3x3 convolutions (32, 32, 64 filters)
  replace a single 7x7/2 convolution; ``inception_v2`` has that 7x7/2
  convolution (64 filters, unpadded: also 147x147x64);
- "BN-auxiliary": in v3 the fully connected layer of the auxiliary
  classifier is batch-normalised too; in ``inception_v2`` it has a bias and
  no BatchNorm.
Everything else is shared, so ``inception_v2`` has exactly 20,000 parameters
fewer than torchvision's ``inception_v3``. Section 6 of the paper calls the
Table 1 layout (which already has the factorised 7x7) "Inception-v2" too;
we follow Table 3, the only place that says what v3 adds. The "BN-Inception"
of Ioffe & Szegedy (2015), sometimes also called Inception-v2, is a
different network (GoogLeNet with BatchNorm).

Where this code (and the released v3 it follows) departs from the paper:
- The stem after the first pool is a 1x1 conv 80, a 3x3 conv 192 and a
  3x3/2 max pool; Table 1 lists a 3x3 conv 80, a 3x3/2 conv 192 and a 3x3
  conv 288 instead.
- The 35x35 modules keep a 5x5 branch (1x1 48 -> 5x5 64) next to the
  factorised double-3x3 branch; Figure 5 draws only the factorised ones.
- Four modules on the 17x17 grid, where Table 1 says five.
- The auxiliary classifier's "fully connected" layer is a 5x5 convolution
  over the 5x5 pooled grid (the same thing at 299x299), with 768 units.
- BatchNorm uses TF-slim's epsilon, 1e-3 (PyTorch's default is 1e-5), as
  torchvision does: with torchvision's weights copied in, ``inception_v3``
  computes torchvision's function (``tests/models/test_inception_v3.py``).
  Initialisation is PyTorch's default. torchvision's ``transform_input``
  (which rescales the input for its pretrained weights) is left out.

``inception_v3_cifar`` is the same network for 32x32 images, built from the
same block builders:
- the stem (299 -> 35: five convolutions, two of them with stride 2, and two
  max pools) becomes three 3x3 convolutions of 32, 64 and 192 maps at full
  resolution (``cifar_stem``), so the 35x35 modules run on the 32x32 grid;
- the two grid reductions are kept as released (unpadded 3x3/2), so the
  grids are 32x32, 15x15 and 7x7 (ImageNet: 35, 17, 8);
- the auxiliary classifier is off by default (``aux_logits=True`` builds it
  on the 15x15 grid: the 5x5/3 pool gives 4x4, its "fully connected" layer
  becomes a 4x4 convolution);
- ``width`` (both networks) multiplies the channels of every convolution,
  rounded to the nearest whole number, at least 1 (``googlenet.scaled``).
  At ``width=1`` the CIFAR network has 21.8M parameters and 3.6G
  multiply-adds per image; ``width=0.25`` has 1.4M and 0.22G.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from . import Reference, register
from .googlenet import Concat, out_channels, scaled, stack
from .layers import conv_bn_relu as conv
from .layers import expect_input

# TF-slim's BatchNorm epsilon, which the released Inception networks were
# trained with
TF_BATCHNORM_EPS = 1e-3


def tf_batchnorm_eps_(model: nn.Module) -> nn.Module:
    """Give every BatchNorm of ``model`` TF-slim's epsilon, 1e-3 (PyTorch's
    default is 1e-5); returns ``model``.

    BatchNorm divides by sqrt(running_var + eps): for a channel whose variance
    is small, the two epsilons give noticeably different outputs, so the
    released weights compute their network's function only with 1e-3. The whole
    Inception family of the zoo uses it, its CIFAR members included.
    """
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = TF_BATCHNORM_EPS
    return model


def stem(
    in_channels: int, factorized_7x7: bool = True, width: float = 1.0
) -> nn.Sequential:
    """299x299 -> 35x35x192; ``factorized_7x7=False`` is Inception-v2's
    single 7x7/2 first layer.
    """
    c32, c64, c80, c192 = scaled((32, 64, 80, 192), width)
    if factorized_7x7:
        first = [
            # N x 32 x 149 x 149
            conv(in_channels, c32, 3, stride=2, padding=0),
            conv(c32, c32, 3, padding=0),  # N x 32 x 147 x 147
            conv(c32, c64, 3),  # N x 64 x 147 x 147
        ]
    else:
        # N x 64 x 147 x 147
        first = [conv(in_channels, c64, 7, stride=2, padding=0)]
    return nn.Sequential(
        *first,
        nn.MaxPool2d(3, stride=2),  # N x 64 x 73 x 73
        conv(c64, c80, 1),  # N x 80 x 73 x 73
        conv(c80, c192, 3, padding=0),  # N x 192 x 71 x 71
        nn.MaxPool2d(3, stride=2),  # N x 192 x 35 x 35
    )


def cifar_stem(
    in_channels: int, out_channels: int, width: float = 1.0
) -> nn.Sequential:
    """The stem of the CIFAR members: three 3x3 convolutions (32, 64,
    ``out_channels`` maps) at 32x32.

    The ImageNet stems start with 3x3 convolutions of 32 and 64 maps and then
    shrink the grid eight times (299 -> 35); a 32x32 image is already about the
    size of their first Inception grid, so nothing is shrunk here.
    ``out_channels`` is the first grid's width (already scaled by the caller).
    """
    c32, c64 = scaled((32, 64), width)
    return nn.Sequential(
        conv(in_channels, c32, 3),  # N x 32 x 32 x 32
        conv(c32, c64, 3),  # N x 64 x 32 x 32
        conv(c64, out_channels, 3),  # N x out_channels x 32 x 32
    )


def avg_pool_proj(
    in_channels: int, out_channels: int, count_include_pad: bool = True
) -> nn.Sequential:
    """The pooling branch of the modules: 3x3 average pool, then a 1x1
    projection.

    ``count_include_pad=True`` averages the zero padding in at the border, as
    torchvision's Inception-v3 does; TensorFlow's "SAME" pooling, which the
    Inception-v4 family was released with, divides by the real pixels only.
    """
    pool = nn.AvgPool2d(
        3, stride=1, padding=1, count_include_pad=count_include_pad
    )
    return nn.Sequential(pool, conv(in_channels, out_channels, 1))


def inception_35(
    in_channels: int,
    pool_features: int,
    ch1x1: int = 64,
    width: float = 1.0,
    count_include_pad: bool = True,
) -> Concat:
    """A 35x35 module (Figure 5): the 5x5 convolution factorised into two 3x3
    ones (plus the released 5x5 branch).

    ``pool_features`` and ``ch1x1`` are given at ``width=1``, like the fixed
    widths inside.
    """
    c1, c48, c64, c96, pool = scaled((ch1x1, 48, 64, 96, pool_features), width)
    return Concat(
        conv(in_channels, c1, 1),
        nn.Sequential(conv(in_channels, c48, 1), conv(c48, c64, 5)),
        nn.Sequential(
            conv(in_channels, c64, 1), conv(c64, c96, 3), conv(c96, c96, 3)
        ),
        avg_pool_proj(in_channels, pool, count_include_pad),
    )


def reduction_35_to_17(in_channels: int, width: float = 1.0) -> Concat:
    """Grid reduction 35x35 -> 17x17 (Figure 10): stride-2 convolutions
    beside a stride-2 max pool.
    """
    c384, c64, c96 = scaled((384, 64, 96), width)
    return Concat(
        conv(in_channels, c384, 3, stride=2, padding=0),
        nn.Sequential(
            conv(in_channels, c64, 1),
            conv(c64, c96, 3),
            conv(c96, c96, 3, stride=2, padding=0),
        ),
        nn.MaxPool2d(3, stride=2),
    )


def inception_17(in_channels: int, c7: int, width: float = 1.0) -> Concat:
    """A 17x17 module (Figure 6, n = 7): every 7x7 convolution factorised
    into 1x7 and 7x1 (``c7`` at width 1).
    """
    c192, c7 = scaled((192, c7), width)
    return Concat(
        conv(in_channels, c192, 1),
        nn.Sequential(
            conv(in_channels, c7, 1),
            conv(c7, c7, (1, 7)),
            conv(c7, c192, (7, 1)),
        ),
        nn.Sequential(
            conv(in_channels, c7, 1),
            conv(c7, c7, (7, 1)),
            conv(c7, c7, (1, 7)),
            conv(c7, c7, (7, 1)),
            conv(c7, c192, (1, 7)),
        ),  # fmt: skip
        avg_pool_proj(in_channels, c192),
    )


def reduction_17_to_8(in_channels: int, width: float = 1.0) -> Concat:
    """Grid reduction 17x17 -> 8x8, the same idea as Figure 10 with a
    factorised 7x7 in one branch.
    """
    c192, c320 = scaled((192, 320), width)
    return Concat(
        nn.Sequential(
            conv(in_channels, c192, 1),
            conv(c192, c320, 3, stride=2, padding=0),
        ),
        nn.Sequential(
            conv(in_channels, c192, 1),
            conv(c192, c192, (1, 7)),
            conv(c192, c192, (7, 1)),
            conv(c192, c192, 3, stride=2, padding=0),
        ),  # fmt: skip
        nn.MaxPool2d(3, stride=2),
    )


def inception_8(in_channels: int, width: float = 1.0) -> Concat:
    """An 8x8 module with expanded filter banks (Figure 7): each 3x3 output
    splits into parallel 1x3 and 3x1.
    """
    c320, c384, c448, c192 = scaled((320, 384, 448, 192), width)
    return Concat(
        conv(in_channels, c320, 1),
        nn.Sequential(
            conv(in_channels, c384, 1),
            Concat(conv(c384, c384, (1, 3)), conv(c384, c384, (3, 1))),
        ),
        nn.Sequential(
            conv(in_channels, c448, 1),
            conv(c448, c384, 3),
            Concat(conv(c384, c384, (1, 3)), conv(c384, c384, (3, 1))),
        ),
        avg_pool_proj(in_channels, c192),
    )


class AuxClassifier(nn.Module):
    """The auxiliary classifier on the 17x17 grid (Figure 8); ``batch_norm_fc``
    makes it v3's "BN-auxiliary".

    ``grid`` is the side of the grid it sits on (17; 15 for CIFAR): its "fully
    connected" layer is a convolution over the whole pooled grid. ``width``
    scales its 128 maps and 768 units.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        batch_norm_fc: bool = True,
        width: float = 1.0,
        grid: int = 17,
    ) -> None:
        super().__init__()
        maps, units = scaled((128, 768), width)
        # the 5x5/3 average pool's output side: 5 (4 on CIFAR's 15x15 grid)
        pooled = (grid - 5) // 3 + 1
        self.pool = nn.AvgPool2d(5, stride=3)  # N x 768 x 5 x 5
        self.conv = conv(in_channels, maps, 1)  # N x 128 x 5 x 5
        # The fully connected layer, as a 5x5 convolution over the whole 5x5
        # grid: N x 768 x 1 x 1.
        self.fc = conv(
            maps, units, pooled, padding=0, batch_norm=batch_norm_fc
        )
        self.classifier = nn.Linear(units, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(self.conv(self.pool(x)))
        return self.classifier(
            torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        )


class InceptionV3(nn.Module):
    """Inception-v3 (``factorized_7x7=True, bn_auxiliary=True``) or
    Inception-v2 (both ``False``).

    ``aux_logits`` builds the auxiliary classifier (returned in training mode
    only); ``dropout`` is the rate before the last linear layer; ``width``
    multiplies every convolution's channels; ``small_input=True`` puts the
    CIFAR stem in front (32x32 images). The shapes in the comments are those of
    ``width=1`` at 299x299 (32x32: grids of 32, 15 and 7).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = True,
        factorized_7x7: bool = True,
        bn_auxiliary: bool = True,
        dropout: float = 0.5,
        width: float = 1.0,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        if small_input:
            # N x 192 x 32 x 32
            self.stem = cifar_stem(in_channels, scaled(192, width), width)
        else:
            # N x 192 x 35 x 35
            self.stem = stem(in_channels, factorized_7x7, width)
        channels = out_channels(self.stem, in_channels)
        self.grid35 = stack(
            channels,
            [
                partial(inception_35, pool_features=p, width=width)
                for p in (32, 64, 64)
            ],
        )
        # N x 288 x 35 x 35 (256 after the first module)
        channels = out_channels(self.grid35, channels)
        self.reduction17 = reduction_35_to_17(channels, width)
        # N x 768 x 17 x 17 (384 + 96 + 288)
        channels = out_channels(self.reduction17, channels)
        self.grid17 = stack(
            channels,
            [
                partial(inception_17, c7=c7, width=width)
                for c7 in (128, 160, 160, 192)
            ],
        )
        channels = out_channels(self.grid17, channels)  # N x 768 x 17 x 17
        grid17 = 15 if small_input else 17
        self.aux = (
            AuxClassifier(channels, num_classes, bn_auxiliary, width, grid17)
            if aux_logits
            else None
        )
        self.reduction8 = reduction_17_to_8(channels, width)
        # N x 1280 x 8 x 8 (320 + 192 + 768)
        channels = out_channels(self.reduction8, channels)
        self.grid8 = stack(channels, [partial(inception_8, width=width)] * 2)
        channels = out_channels(self.grid8, channels)  # N x 2048 x 8 x 8
        # N x 2048
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout)
        )
        self.classifier = nn.Linear(channels, num_classes)
        tf_batchnorm_eps_(self)
        self.in_channels = in_channels
        # The auxiliary head's last convolution needs the grid of the input
        # size it was built for; the rest of the network runs from the smallest
        # input that survives the stem and both reductions.
        self.aux_input_size, self.min_size = (
            (32, 7) if small_input else (299, 75)
        )
        self.name = (
            "inception_v3"
            if factorized_7x7 and bn_auxiliary
            else "inception_v2"
        ) + ("_cifar" if small_input else "")

    def _forward_features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The 8x8x2048 features, and the auxiliary logits (in training mode
        only, else None).
        """
        use_aux = self.training and self.aux is not None
        expect_input(
            x,
            self.name,
            self.in_channels,
            min_size=self.aux_input_size if use_aux else self.min_size,
        )
        # N x 768 x 17 x 17
        x = self.grid17(self.reduction17(self.grid35(self.stem(x))))
        aux_logits = self.aux(x) if use_aux else None
        x = self.grid8(self.reduction8(x))  # N x 2048 x 8 x 8
        return x, aux_logits

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward_features(x)[0]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(x))

    def forward(
        self, x: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        features, aux_logits = self._forward_features(x)
        logits = self.forward_head(features)
        return logits if aux_logits is None else (logits, aux_logits)


@register(
    input_size=(3, 299, 299),
    reference=Reference(
        "torchvision",
        builder="torchvision.models.inception_v3",
        difference=-20_000,
        why="Table 3's two architectural steps from v2 to v3, undone: one "
        "7x7/2 conv (9,408 weights + 128 BN) instead "
        "of the three 3x3 convs (28,512 weights + 256 BN): -19,232; the "
        "auxiliary fully connected layer with a bias "
        "(768) instead of BatchNorm (1,536): -768",
    ),
)
def inception_v2(num_classes: int = 1000, **kwargs) -> InceptionV3:
    """Inception-v2 of Szegedy et al. 2016 (Table 3's first row): v3 with a
    7x7/2 first layer and no BN-auxiliary.
    """
    return InceptionV3(
        num_classes, factorized_7x7=False, bn_auxiliary=False, **kwargs
    )


@register(
    input_size=(3, 299, 299),
    reference=Reference(
        "torchvision", builder="torchvision.models.inception_v3"
    ),
)
def inception_v3(num_classes: int = 1000, **kwargs) -> InceptionV3:
    """Inception-v3 of Szegedy et al. 2016, as released (torchvision's
    ``inception_v3``).
    """
    return InceptionV3(
        num_classes, factorized_7x7=True, bn_auxiliary=True, **kwargs
    )


@register(input_size=(3, 32, 32), num_classes=10)
def inception_v3_cifar(
    num_classes: int = 10,
    aux_logits: bool = False,
    width: float = 1.0,
    **kwargs,
) -> InceptionV3:
    """Inception-v3's modules and reductions behind a 3x3-conv stem for 32x32
    images; auxiliary classifier off.

    ``width`` multiplies every convolution's channels (0.25: about a sixteenth
    of the cost, for a CPU).
    """
    return InceptionV3(
        num_classes,
        aux_logits=aux_logits,
        width=width,
        small_input=True,
        **kwargs,
    )
