"""Deeply-fused nets: a deep and a shallow network, summed at several points
along the way.

Paper: J. Wang, Z. Wei, T. Zhang, W. Zeng, "Deeply-Fused Nets",
arXiv:1605.07716, 2016.

Take two base networks, a **deep** one and a **shallow** one, cut both into
the same number of blocks that change the resolution at the same places,
and **fuse** them after every block: the two blocks' outputs are summed and
the sum is the input of both next blocks,

    x_{k+1} = ReLU( D_k(x_k) + S_k(x_k) ).

Information then flows through many paths of different lengths (choosing
at every block the deep or the shallow piece), the shallow network passes
the gradient quickly to the early layers, and the deep one provides the
capacity; the paper argues that this "multi-scale representation" is what
makes such networks train well. A residual network is the special case in
which the shallow network is the identity (a projection where the shape
changes): S_k(x) = x gives ReLU(D_k(x) + x), He et al.'s residual unit.

:class:`DeeplyFusedNet` is a CIFAR network of three stages (16, 32 and 64
channels on 32, 16 and 8 pixels, the first block of a stage halving the
size), ``blocks`` fused blocks per stage, the deep piece of each block
``deep_layers`` 3x3 convolutions with BatchNorm and ReLU between them
(ending with a BatchNorm), and the shallow piece one 3x3 convolution with
BatchNorm (``shallow="conv"``) or the identity (``shallow="identity"``, with
a 1x1 projection where the shape changes). With ``shallow="identity"`` and
``deep_layers=2`` the network is layer for layer ``resnet20`` with
shortcut option B (the parameters in the same order, so the weights of one
load into the other).

Where this code departs from the paper, or chooses where it is silent:
- The paper fuses networks of its own design (for CIFAR, a deep base network
  with several convolutions per block and a shallow one with one) and
  reports no parameter count we could check; ``dfn_cifar`` is a small
  network in the CIFAR ResNets' layout, to make the comparison with them
  direct. No reference count is registered.
- The ReLU after the sum follows the residual unit; BatchNorm everywhere.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from . import register
from .layers import conv_bn_relu, expect_input

SHALLOW = ("conv", "identity")
CIFAR_WIDTHS = (16, 32, 64)


def deep_piece(
    in_channels: int, out_channels: int, stride: int, layers: int
) -> nn.Sequential:
    """``layers`` 3x3 convolutions, BN-ReLU between them, ending with BN
    (the first one takes the stride).
    """
    modules: list[nn.Module] = []
    for i in range(layers):
        modules.append(
            nn.Conv2d(
                in_channels if i == 0 else out_channels,
                out_channels,
                3,
                stride if i == 0 else 1,
                1,
                bias=False,
            )
        )
        modules.append(nn.BatchNorm2d(out_channels))
        if i < layers - 1:
            modules.append(nn.ReLU(inplace=True))
    return nn.Sequential(*modules)


def shallow_piece(
    in_channels: int, out_channels: int, stride: int, kind: str
) -> nn.Module:
    """One 3x3 convolution with BN ("conv"), or the identity ("identity";
    a 1x1 projection with BN if needed).
    """
    if kind == "conv":
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
    if stride != 1 or in_channels != out_channels:
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
    return nn.Identity()


class FusedBlock(nn.Module):
    """x_next = ReLU(deep(x) + shallow(x)): one block of each base network,
    fused by a sum.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        deep_layers: int = 2,
        shallow: str = "conv",
    ) -> None:
        super().__init__()
        if shallow not in SHALLOW:
            raise ValueError(
                f"shallow={shallow!r}: use 'conv' (one 3x3 convolution) "
                "or 'identity' (a residual unit)"
            )
        if not (isinstance(deep_layers, int) and deep_layers >= 1):
            raise ValueError(
                f"deep_layers={deep_layers!r} must be a whole number >= 1"
            )
        # The shallow piece first, as a residual unit registers its
        # shortcut before its branch.
        self.shallow = shallow_piece(
            in_channels, out_channels, stride, shallow
        )
        self.deep = deep_piece(in_channels, out_channels, stride, deep_layers)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The fusion: one sum that feeds both next blocks.
        return self.relu(self.deep(x) + self.shallow(x))


class DeeplyFusedNet(nn.Module):
    """A 3x3 stem, three stages of ``blocks`` fused blocks, global average
    pooling and a linear classifier.
    """

    def __init__(
        self,
        blocks: int = 3,
        deep_layers: int = 2,
        shallow: str = "conv",
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
        name: str = "dfn_cifar",
    ) -> None:
        super().__init__()
        if not (isinstance(blocks, int) and blocks >= 1):
            raise ValueError(
                f"blocks={blocks!r}: each stage needs at least one fused block"
            )
        if not width > 0:
            raise ValueError(
                f"width={width!r} must be positive (1: 16/32/64 channels)"
            )
        widths = [max(1, round(c * width)) for c in CIFAR_WIDTHS]
        self.in_channels, self.name = in_channels, name
        self.stem = conv_bn_relu(in_channels, widths[0], 3)  # N x 16 x 32 x 32
        stages, channels = [], widths[0]
        for i, out_channels in enumerate(widths):
            stage = [
                FusedBlock(
                    channels if j == 0 else out_channels,
                    out_channels,
                    2 if i and not j else 1,
                    deep_layers,
                    shallow,
                )
                for j in range(blocks)
            ]
            # N x 16 x 32 x 32, N x 32 x 16 x 16, N x 64 x 8 x 8
            stages.append(nn.Sequential(*stage))
            channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode="fan_out", nonlinearity="relu"
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expect_input(x, self.name, self.in_channels, min_size=4)
        x = self.stages(self.stem(x))  # N x 64 x 8 x 8
        return self.fc(torch.flatten(self.pool(x), 1))  # N x num_classes


def load_in_order(target: nn.Module, source: nn.Module) -> nn.Module:
    """Copy ``source``'s state into ``target`` entry by entry, in order;
    the shapes must agree. Returns ``target``.

    For two networks built from the same layers in the same order under
    different names, e.g. ``dfn_cifar(shallow="identity")`` and
    ``resnet20(shortcut="B")``.
    """
    mine, theirs = target.state_dict(), source.state_dict()
    if len(mine) != len(theirs):
        raise ValueError(
            f"the networks differ: {len(mine)} state entries against "
            f"{len(theirs)}"
        )
    state = OrderedDict()
    for (name, value), (other, given) in zip(mine.items(), theirs.items()):
        if value.shape != given.shape:
            raise ValueError(
                f"{name} {tuple(value.shape)} does not match {other} "
                f"{tuple(given.shape)}"
            )
        state[name] = given
    target.load_state_dict(state)
    return target


@register(input_size=(3, 32, 32), num_classes=10)
def dfn_cifar(
    num_classes: int = 10,
    blocks: int = 3,
    deep_layers: int = 2,
    shallow: str = "conv",
    **options,
) -> DeeplyFusedNet:
    """A deeply-fused net in the CIFAR ResNets' layout;
    ``shallow="identity"`` makes it ResNet-(6 blocks + 2).
    """
    return DeeplyFusedNet(
        blocks, deep_layers, shallow, num_classes=num_classes, **options
    )
