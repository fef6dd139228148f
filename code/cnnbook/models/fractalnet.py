"""FractalNet: ultra-deep networks without residuals, from one expansion rule.

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
between the two (here half and half, ``global_fraction``). With global
drop-path the network learns to work from each column alone, which gives the
**anytime** property: at test time any single column
(:meth:`FractalNet.forward` with ``column=``) is a network of its own,
shallow and fast or deep and more accurate.

Networks: B blocks, each followed by a 2x2 max pooling; CIFAR uses B = 5
blocks of 64, 128, 256, 512, 512 channels, so the 32x32 input ends as 1x1,
and a linear classifier. ``fractalnet20`` is the paper's C = 3 network (20
convolutions on its deepest path; the paper's 40-layer network is C = 4,
``create("fractalnet20", columns=4)`` with its widths). The per-block
dropout rates of the paper (0, 0.1, 0.2, 0.3, 0.4) are the ``dropout``
option.

Where this code departs from the paper, or chooses where it is silent:
- One drop decision per join per mini-batch, drawn from the CPU generator;
  dropped inputs are still computed (and get no gradient from that join).
  A join with a single input present passes it through unchanged.
- The registered networks default to no drop-path (``drop_path=True`` turns
  on the paper's 0.15 local rate and half-global batches) and no dropout.
- Parameter counts: the paper gives 38.6M for the 20-layer network; the
  layers as described above add up to 33.7M (convolutions without biases,
  as they feed a BatchNorm), so the paper's network differs in a detail its
  text does not give. The authors' published Caffe generator
  (github.com/gustavla/fractalnet, generation/fractalnet.py) lays out the
  same 7 convolutions per block, and the PyTorch reimplementation
  github.com/khanrc/pt.fractalnet counts 33.7M too (38.9M only with 1x1
  convolutions added before each block). The tests check our count against
  the arithmetic of the layers instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from . import register
from .layers import conv_bn_relu, expect_input

CIFAR_CHANNELS = (64, 128, 256, 512, 512)


class FractalBlock(nn.Module):
    """f_C of Eq. 2 with ``columns`` = C.

    ``conv`` is column 0; ``first`` and ``second`` are the two f_{C-1}, one
    after the other, that make columns 1 to C - 1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        columns: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not (isinstance(columns, int) and columns >= 1):
            raise ValueError(
                f"columns={columns!r}: a fractal block has at least one column"
            )
        self.columns = columns
        # Set by FractalNet: the probability of dropping each join input.
        self.local_drop = 0.0
        layers = [conv_bn_relu(in_channels, out_channels, 3)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.conv = nn.Sequential(*layers)
        if columns > 1:
            c = columns - 1
            self.first = FractalBlock(in_channels, out_channels, c, dropout)
            self.second = FractalBlock(out_channels, out_channels, c, dropout)

    def paths(
        self, x: torch.Tensor, column: int | None = None
    ) -> list[torch.Tensor | None]:
        """The C column outputs before the block's last join.

        ``column=None`` runs every column; ``column=k`` only column k (global
        drop-path, or one column at test time), the others are None.
        """
        outputs: list[torch.Tensor | None] = [None] * self.columns
        if column is None or column == 0:
            outputs[0] = self.conv(x)  # column 0: one convolution
        if self.columns > 1 and (column is None or column >= 1):
            # column k of f_C is column k - 1 of each f_{C-1}
            inner = None if column is None else column - 1
            middle = self.join(self.first.paths(x, inner))
            outputs[1:] = self.second.paths(middle, inner)
        return outputs

    def join(self, inputs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """The mean of the inputs present.

        In training, each is dropped with probability ``local_drop``, and at
        least one is kept.
        """
        present = [x for x in inputs if x is not None]
        if self.training and self.local_drop > 0 and len(present) > 1:
            keep = torch.rand(len(present)) >= self.local_drop
            if not keep.any():  # "at least one input survives"
                keep[torch.randint(len(present), ())] = True
            present = [x for x, k in zip(present, keep.tolist()) if k]
        if len(present) == 1:
            return present[0]  # nothing to join: a single path passes on
        # N x inputs x C x H x W -> N x C x H x W
        return torch.stack(present, 1).mean(1)

    def forward(
        self, x: torch.Tensor, column: int | None = None
    ) -> torch.Tensor:
        return self.join(self.paths(x, column))  # N x out_channels x H x W


class FractalNet(nn.Module):
    """Fractal blocks, each followed by 2x2 max pooling, and a classifier.

    Args:
        channels: output channels of each block (CIFAR: 64, 128, 256, 512,
            512).
        columns: C, the columns of every block.
        dropout: one dropout rate per block, after every convolution (the
            paper: 0, 0.1, 0.2, 0.3, 0.4), or one rate for all.
        local_drop: probability of dropping each join input (local
            drop-path; the paper: 0.15).
        global_fraction: fraction of training mini-batches that use global
            drop-path (0.5 with ``drop_path=True``).
        input_size: side of the square input; it must end as 1x1 after the
            poolings.
    """

    def __init__(
        self,
        channels: Sequence[int] = CIFAR_CHANNELS,
        columns: int = 3,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        dropout: float | Sequence[float] = 0.0,
        local_drop: float = 0.0,
        global_fraction: float = 0.0,
        input_size: int = 32,
        name: str = "fractalnet",
    ) -> None:
        super().__init__()
        if not 0 <= local_drop < 1:
            raise ValueError(
                f"local_drop={local_drop} must be a probability in [0, 1) "
                "(the paper: 0.15)"
            )
        if not 0 <= global_fraction <= 1:
            raise ValueError(
                f"global_fraction={global_fraction} must be in [0, 1]"
            )
        if isinstance(dropout, (int, float)):
            rates = [dropout] * len(channels)
        else:
            rates = list(dropout)
        if len(rates) != len(channels):
            raise ValueError(
                f"dropout: one rate per block ({len(channels)}), "
                f"got {len(rates)}"
            )
        side = 2 ** len(channels)
        if input_size != side:
            raise ValueError(
                f"input_size={input_size}: {len(channels)} blocks with 2x2 "
                f"pooling need {side}x{side} inputs to end as 1x1"
            )
        self.columns, self.global_fraction = columns, global_fraction
        self.name = name
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
                nn.init.kaiming_normal_(
                    module.weight, mode="fan_out", nonlinearity="relu"
                )

    def depth(self, column: int | None = None) -> int:
        """Convolutions on the path of ``column``: B 2^column.

        The default is the deepest column, B 2^(C-1).
        """
        column = self.columns - 1 if column is None else column
        return len(self.blocks) * 2**column

    def forward(
        self, x: torch.Tensor, column: int | None = None
    ) -> torch.Tensor:
        """All columns joined; ``column=k`` runs column k alone (any mode).

        In training mode without ``column``, a mini-batch uses global
        drop-path with probability ``global_fraction`` (one random column for
        the whole network), otherwise local drop-path at every join.
        """
        expect_input(x, self.name, self.in_channels, size=self.input_size)
        if column is not None and not 0 <= column < self.columns:
            raise ValueError(
                f"column={column}: this network has columns 0 to "
                f"{self.columns - 1}"
            )
        if (
            column is None
            and self.training
            and self.global_fraction > 0
            and torch.rand(()) < self.global_fraction
        ):
            column = int(torch.randint(self.columns, ()))
        for block in self.blocks:
            # CIFAR: 64 x 16 x 16, 128 x 8 x 8, 256 x 4 x 4, 512 x 2 x 2,
            # 512 x 1 x 1
            x = self.pool(block(x, column))
        return self.classifier(torch.flatten(x, 1))  # N x num_classes


def cifar_fractalnet(
    columns: int,
    num_classes: int,
    name: str,
    drop_path: bool = False,
    width: float = 1.0,
    blocks: int = 5,
    **options,
) -> FractalNet:
    """The paper's CIFAR FractalNet with C = ``columns``.

    ``drop_path=True`` sets local drop-path 0.15 and half of the mini-batches
    global; ``width`` multiplies the channels and ``blocks`` keeps the first
    blocks only (a 2^blocks input), for CPU runs.
    """
    if not 1 <= blocks <= len(CIFAR_CHANNELS):
        raise ValueError(
            f"blocks={blocks}: the CIFAR FractalNet has 1 to "
            f"{len(CIFAR_CHANNELS)} blocks"
        )
    if not width > 0:
        raise ValueError(
            f"width={width!r} must be positive (1: the paper's channels)"
        )
    channels = [max(1, round(c * width)) for c in CIFAR_CHANNELS[:blocks]]
    drops = {"local_drop": 0.15, "global_fraction": 0.5} if drop_path else {}
    return FractalNet(
        channels,
        columns,
        num_classes=num_classes,
        input_size=2**blocks,
        name=name,
        **{**drops, **options},
    )


@register(input_size=(3, 32, 32), num_classes=10)
def fractalnet20(
    num_classes: int = 10, columns: int = 3, **options
) -> FractalNet:
    """FractalNet for CIFAR, C = 3 (20 layers deep).

    Options: ``columns``, ``drop_path``, ``dropout``, ``width``, ``blocks``.
    """
    return cifar_fractalnet(columns, num_classes, "fractalnet20", **options)
