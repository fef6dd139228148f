"""FractalNet: ultra-deep networks without residuals, built by one expansion rule.

Paper: G. Larsson, M. Maire, G. Shakhnarovich, "FractalNet: Ultra-Deep
Neural Networks without Residuals", ICLR 2017 (arXiv:1605.07648).

A fractal block with C columns is defined by recursion (Sec. 2, Eq. 1-2):

    f_1(z)     = conv(z)
    f_{C+1}(z) = join( (f_C o f_C)(z), conv(z) )

where conv is a 3x3 convolution, BatchNorm and ReLU, and join is the
element-wise **mean** of its inputs. Nested joins that meet at the same point
are flattened into one (the paper's Fig. 1), so a block's last join averages
C inputs, one per column: column c (0 the shallowest) has 2^c convolutions,
and the deepest column alone is a plain network of 2^(C-1) layers per block.
Here :meth:`FractalBlock.paths` returns the unjoined column outputs, which is
exactly that flattening.

Drop-path (Sec. 3) regularises the block by dropping join inputs in
training: **local**, each input of each join is dropped with probability 0.15
(at least one kept); **global**, one column is chosen for the whole network
and only its path is kept at every join. Mini-batches alternate at random
between the two, half and half. With global drop-path the network learns to
work from each column alone, which gives the **anytime** property: at test
time any single column (:meth:`FractalNet.forward` with ``column=``) is a
network of its own, shallow and fast or deep and more accurate.

Networks: B blocks, each followed by a 2x2 max pooling; CIFAR uses B = 5
blocks of 64, 128, 256, 512, 512 channels, so the 32x32 input ends as 1x1, and
a linear classifier. ``fractalnet20`` is the paper's C = 3 network (20
convolutions on its deepest path; the paper's 40-layer network is C = 4,
``create("fractalnet20", columns=4)`` with its widths). The per-block
dropout rates of the paper (0, 0.1, 0.2, 0.3, 0.4) are the ``dropout`` option.

Where this code departs from the paper, or chooses where it is silent:
- One drop decision per join per mini-batch, drawn from the CPU generator;
  dropped inputs are still computed (and get no gradient from that join).
- The registered networks default to no drop-path (``drop_path=True`` turns
  on the paper's 0.15 local rate and half-global batches) and no dropout.
- Parameter counts: the paper gives 38.6M for the 20-layer network; the
  layers as described above add up to 33.7M (convolutions without biases,
  as they feed a BatchNorm), so the paper's network differs in a detail its
  text does not give. (Its 40-layer network, 22.9M, must be narrower than
  the 76M that these widths give with C = 4.) The tests check our count
  against the arithmetic of the layers instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from . import register
from .layers import conv_bn_relu, expect_input

CIFAR_CHANNELS = (64, 128, 256, 512, 512)


class FractalBlock(nn.Module):
    """f_C of Eq. 2 with ``columns`` = C: ``conv`` is column 0; ``first`` and ``second`` are the two f_{C-1}."""

    def __init__(self, in_channels: int, out_channels: int, columns: int, dropout: float = 0.0) -> None:
        super().__init__()
        if not (isinstance(columns, int) and columns >= 1):
            raise ValueError(f"columns={columns!r}: a fractal block has at least one column")
        self.columns = columns
        self.local_drop = 0.0  # set by FractalNet; the probability of dropping each input of a join
        layers = [conv_bn_relu(in_channels, out_channels, 3)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.conv = nn.Sequential(*layers)
        if columns > 1:
            self.first = FractalBlock(in_channels, out_channels, columns - 1, dropout)
            self.second = FractalBlock(out_channels, out_channels, columns - 1, dropout)

    def paths(self, x: torch.Tensor, column: int | None = None) -> list[torch.Tensor | None]:
        """The C column outputs before the block's last join (None where ``column`` leaves a column out).

        ``column=None`` runs every column; ``column=k`` only column k (global drop-path, or one column at test time).
        """
        outputs: list[torch.Tensor | None] = [None] * self.columns
        if column is None or column == 0:
            outputs[0] = self.conv(x)  # column 0: one convolution
        if self.columns > 1 and (column is None or column >= 1):
            inner = None if column is None else column - 1  # column k of f_C is column k-1 of each f_{C-1}
            middle = self.join(self.first.paths(x, inner))
            outputs[1:] = self.second.paths(middle, inner)
        return outputs

    def join(self, inputs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """The mean of the inputs present; in training, each dropped with probability ``local_drop``, one kept."""
        present = [x for x in inputs if x is not None]
        if self.training and self.local_drop > 0 and len(present) > 1:
            keep = torch.rand(len(present)) >= self.local_drop
            if not keep.any():
                keep[torch.randint(len(present), ())] = True  # "at least one input survives"
            present = [x for x, k in zip(present, keep.tolist()) if k]
        return torch.stack(present).mean(0)

    def forward(self, x: torch.Tensor, column: int | None = None) -> torch.Tensor:
        return self.join(self.paths(x, column))  # N x out_channels x H x W


class FractalNet(nn.Module):
    """Fractal blocks of ``columns`` columns, each followed by 2x2 max pooling, then a linear classifier.

    Args:
        channels: output channels of each block (CIFAR: 64, 128, 256, 512, 512).
        columns: C, the columns of every block.
        dropout: one dropout rate per block, after every convolution (the paper: 0, 0.1, 0.2, 0.3, 0.4), or 0.
        local_drop: probability of dropping each join input (local drop-path; the paper: 0.15).
        global_fraction: fraction of training mini-batches that use global drop-path (the paper: 0.5).
        input_size: side of the square input; it must end as 1x1 after the poolings.
    """

    def __init__(self, channels: Sequence[int] = CIFAR_CHANNELS, columns: int = 3, *, num_classes: int = 10,
                 in_channels: int = 3, dropout: float | Sequence[float] = 0.0, local_drop: float = 0.0,
                 global_fraction: float = 0.0, input_size: int = 32, name: str = "fractalnet") -> None:  # fmt: skip
        super().__init__()
        if not 0 <= local_drop < 1:
            raise ValueError(f"local_drop={local_drop} must be a probability in [0, 1) (the paper: 0.15)")
        if not 0 <= global_fraction <= 1:
            raise ValueError(f"global_fraction={global_fraction} must be in [0, 1] (the paper: 0.5)")
        rates = [dropout] * len(channels) if isinstance(dropout, (int, float)) else list(dropout)
        if len(rates) != len(channels):
            raise ValueError(f"dropout: one rate per block ({len(channels)}), got {len(rates)}")
        if input_size != 2 ** len(channels):
            raise ValueError(f"input_size={input_size}: {len(channels)} blocks with 2x2 pooling need "
                             f"{2 ** len(channels)}x{2 ** len(channels)} inputs to end as 1x1")  # fmt: skip
        self.columns, self.global_fraction, self.name = columns, global_fraction, name
        self.in_channels, self.input_size = in_channels, input_size
        blocks, previous = [], in_channels
        for width, rate in zip(channels, rates):
            blocks.append(FractalBlock(previous, width, columns, rate))
            previous = width
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.MaxPool2d(2)
        self.classifier = nn.Linear(previous, num_classes)
        for module in self.modules():
            if isinstance(module, FractalBlock):
                module.local_drop = local_drop
            elif isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def depth(self, column: int | None = None) -> int:
        """Convolutions on the path of ``column`` (default the deepest): B 2^c, B 2^(C-1) for the deepest."""
        column = self.columns - 1 if column is None else column
        return len(self.blocks) * 2**column

    def forward(self, x: torch.Tensor, column: int | None = None) -> torch.Tensor:
        """All columns joined; ``column=k`` runs column k alone (in any mode).

        In training mode without ``column``, a mini-batch uses global drop-path
        with probability ``global_fraction`` (one random column for the whole
        network), otherwise local drop-path at every join.
        """
        expect_input(x, self.name, self.in_channels, size=self.input_size)
        if column is not None and not 0 <= column < self.columns:
            raise ValueError(f"column={column}: this network has columns 0 to {self.columns - 1}")
        if column is None and self.training and self.global_fraction > 0:
            if torch.rand(()) < self.global_fraction:
                column = int(torch.randint(self.columns, ()))
        for block in self.blocks:
            x = self.pool(block(x, column))  # CIFAR: 64 x 16 x 16, 128 x 8 x 8, 256 x 4 x 4, 512 x 2 x 2, 512 x 1 x 1
        return self.classifier(torch.flatten(x, 1))  # N x num_classes


def cifar_fractalnet(columns: int, num_classes: int, name: str, drop_path: bool = False, width: float = 1.0,
                     blocks: int = 5, **options) -> FractalNet:  # fmt: skip
    """The paper's CIFAR FractalNet with C = ``columns``; ``drop_path=True`` sets local 0.15 and half global.

    ``width`` multiplies the channels and ``blocks`` keeps the first blocks only (a 2^blocks input), for CPU runs.
    """
    if not 1 <= blocks <= len(CIFAR_CHANNELS):
        raise ValueError(f"blocks={blocks}: the CIFAR FractalNet has 1 to {len(CIFAR_CHANNELS)} blocks")
    if not width > 0:
        raise ValueError(f"width={width!r} must be positive (1: the paper's channels)")
    channels = [max(1, round(c * width)) for c in CIFAR_CHANNELS[:blocks]]
    drops = dict(local_drop=0.15, global_fraction=0.5) if drop_path else {}
    return FractalNet(channels, columns, num_classes=num_classes, input_size=2**blocks, name=name,
                      **{**drops, **options})  # fmt: skip


@register(input_size=(3, 32, 32), num_classes=10)
def fractalnet20(num_classes: int = 10, columns: int = 3, **options) -> FractalNet:
    """FractalNet for CIFAR, C = 3 (20 layers deep); options ``columns``, ``drop_path``, ``dropout``, ``width``,
    ``blocks``."""
    return cifar_fractalnet(columns, num_classes, "fractalnet20", **options)
