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
- BatchNorm uses PyTorch's default epsilon (1e-5; TF-slim used 1e-3) and
  PyTorch's default initialisation. torchvision's ``transform_input`` (for
  its pretrained weights) is left out.
"""

from __future__ import annotations

import torch
from torch import nn

from . import Reference, register
from .googlenet import Concat
from .layers import conv_bn_relu as conv
from .layers import expect_input


def stem(in_channels: int, factorized_7x7: bool = True) -> nn.Sequential:
    """299x299 -> 35x35x192; ``factorized_7x7=False`` is Inception-v2's single 7x7/2 first layer."""
    if factorized_7x7:
        first = [
            conv(in_channels, 32, 3, stride=2, padding=0),  # N x 32 x 149 x 149
            conv(32, 32, 3, padding=0),  # N x 32 x 147 x 147
            conv(32, 64, 3),  # N x 64 x 147 x 147
        ]
    else:
        first = [conv(in_channels, 64, 7, stride=2, padding=0)]  # N x 64 x 147 x 147
    return nn.Sequential(
        *first,
        nn.MaxPool2d(3, stride=2),  # N x 64 x 73 x 73
        conv(64, 80, 1),  # N x 80 x 73 x 73
        conv(80, 192, 3, padding=0),  # N x 192 x 71 x 71
        nn.MaxPool2d(3, stride=2),  # N x 192 x 35 x 35
    )


def avg_pool_proj(in_channels: int, out_channels: int) -> nn.Sequential:
    """The pooling branch of the modules: 3x3 average pool, then a 1x1 projection."""
    return nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), conv(in_channels, out_channels, 1))


def inception_35(in_channels: int, pool_features: int, ch1x1: int = 64) -> Concat:
    """A 35x35 module (Figure 5): the 5x5 convolution factorised into two 3x3 ones (plus the released 5x5 branch)."""
    return Concat(
        conv(in_channels, ch1x1, 1),
        nn.Sequential(conv(in_channels, 48, 1), conv(48, 64, 5)),
        nn.Sequential(conv(in_channels, 64, 1), conv(64, 96, 3), conv(96, 96, 3)),
        avg_pool_proj(in_channels, pool_features),
    )


def reduction_35_to_17(in_channels: int) -> Concat:
    """Grid reduction 35x35 -> 17x17 (Figure 10): stride-2 convolutions beside a stride-2 max pool."""
    return Concat(
        conv(in_channels, 384, 3, stride=2, padding=0),
        nn.Sequential(conv(in_channels, 64, 1), conv(64, 96, 3), conv(96, 96, 3, stride=2, padding=0)),
        nn.MaxPool2d(3, stride=2),
    )


def inception_17(in_channels: int, c7: int) -> Concat:
    """A 17x17 module (Figure 6, n = 7): every 7x7 convolution factorised into 1x7 and 7x1."""
    return Concat(
        conv(in_channels, 192, 1),
        nn.Sequential(conv(in_channels, c7, 1), conv(c7, c7, (1, 7)), conv(c7, 192, (7, 1))),
        nn.Sequential(
            conv(in_channels, c7, 1),
            conv(c7, c7, (7, 1)), conv(c7, c7, (1, 7)),
            conv(c7, c7, (7, 1)), conv(c7, 192, (1, 7)),
        ),  # fmt: skip
        avg_pool_proj(in_channels, 192),
    )


def reduction_17_to_8(in_channels: int) -> Concat:
    """Grid reduction 17x17 -> 8x8, the same idea as Figure 10 with a factorised 7x7 in one branch."""
    return Concat(
        nn.Sequential(conv(in_channels, 192, 1), conv(192, 320, 3, stride=2, padding=0)),
        nn.Sequential(
            conv(in_channels, 192, 1),
            conv(192, 192, (1, 7)), conv(192, 192, (7, 1)),
            conv(192, 192, 3, stride=2, padding=0),
        ),  # fmt: skip
        nn.MaxPool2d(3, stride=2),
    )


def inception_8(in_channels: int) -> Concat:
    """An 8x8 module with expanded filter banks (Figure 7): each 3x3 output splits into parallel 1x3 and 3x1."""
    return Concat(
        conv(in_channels, 320, 1),
        nn.Sequential(conv(in_channels, 384, 1), Concat(conv(384, 384, (1, 3)), conv(384, 384, (3, 1)))),
        nn.Sequential(
            conv(in_channels, 448, 1),
            conv(448, 384, 3),
            Concat(conv(384, 384, (1, 3)), conv(384, 384, (3, 1))),
        ),
        avg_pool_proj(in_channels, 192),
    )


class AuxClassifier(nn.Module):
    """The auxiliary classifier on the 17x17 grid (Figure 8); ``batch_norm_fc`` makes it v3's "BN-auxiliary"."""

    def __init__(self, in_channels: int, num_classes: int, batch_norm_fc: bool = True) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)  # N x 768 x 5 x 5
        self.conv = conv(in_channels, 128, 1)  # N x 128 x 5 x 5
        # The fully connected layer, as a 5x5 convolution over the whole 5x5 grid: N x 768 x 1 x 1.
        self.fc = conv(128, 768, 5, padding=0, batch_norm=batch_norm_fc)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(self.conv(self.pool(x)))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class InceptionV3(nn.Module):
    """Inception-v3 (``factorized_7x7=True, bn_auxiliary=True``) or Inception-v2 (both ``False``).

    ``aux_logits`` builds the auxiliary classifier (returned in training mode
    only); ``dropout`` is the rate before the last linear layer.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = True,
        factorized_7x7: bool = True,
        bn_auxiliary: bool = True,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.stem = stem(in_channels, factorized_7x7)  # N x 192 x 35 x 35
        self.grid35 = nn.Sequential(
            inception_35(192, pool_features=32),  # N x 256 x 35 x 35
            inception_35(256, pool_features=64),  # N x 288 x 35 x 35
            inception_35(288, pool_features=64),  # N x 288 x 35 x 35
        )
        self.reduction17 = reduction_35_to_17(288)  # N x 768 x 17 x 17 (384 + 96 + 288)
        self.grid17 = nn.Sequential(*[inception_17(768, c7) for c7 in (128, 160, 160, 192)])  # N x 768 x 17 x 17
        self.aux = AuxClassifier(768, num_classes, bn_auxiliary) if aux_logits else None
        self.reduction8 = reduction_17_to_8(768)  # N x 1280 x 8 x 8 (320 + 192 + 768)
        self.grid8 = nn.Sequential(inception_8(1280), inception_8(2048))  # N x 2048 x 8 x 8
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))  # N x 2048
        self.classifier = nn.Linear(2048, num_classes)
        self.in_channels = in_channels
        self.name = "inception_v3" if factorized_7x7 and bn_auxiliary else "inception_v2"

    def _forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The 8x8x2048 features, and the auxiliary logits (in training mode only, else None)."""
        use_aux = self.training and self.aux is not None
        # The auxiliary head's 5x5 convolution needs the 17x17 grid of a 299x299 input; the rest works from 75x75.
        expect_input(x, self.name, self.in_channels, min_size=299 if use_aux else 75)
        x = self.grid17(self.reduction17(self.grid35(self.stem(x))))  # N x 768 x 17 x 17
        aux_logits = self.aux(x) if use_aux else None
        x = self.grid8(self.reduction8(x))  # N x 2048 x 8 x 8
        return x, aux_logits

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward_features(x)[0]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        features, aux_logits = self._forward_features(x)
        logits = self.forward_head(features)
        return logits if aux_logits is None else (logits, aux_logits)


@register(
    input_size=(3, 299, 299),
    reference=Reference(
        "torchvision",
        builder="torchvision.models.inception_v3",
        difference=-20_000,
        why="Table 3's two architectural steps from v2 to v3, undone: one 7x7/2 conv (9,408 weights + 128 BN) instead "
        "of the three 3x3 convs (28,512 weights + 256 BN): -19,232; the auxiliary fully connected layer with a bias "
        "(768) instead of BatchNorm (1,536): -768",
    ),
)
def inception_v2(num_classes: int = 1000, **kwargs) -> InceptionV3:
    """Inception-v2 of Szegedy et al. 2016 (Table 3's first row): v3 with a 7x7/2 first layer and no BN-auxiliary."""
    return InceptionV3(num_classes, factorized_7x7=False, bn_auxiliary=False, **kwargs)


@register(input_size=(3, 299, 299), reference=Reference("torchvision", builder="torchvision.models.inception_v3"))
def inception_v3(num_classes: int = 1000, **kwargs) -> InceptionV3:
    """Inception-v3 of Szegedy et al. 2016, as released (torchvision's ``inception_v3``)."""
    return InceptionV3(num_classes, factorized_7x7=True, bn_auxiliary=True, **kwargs)
