"""Stochastic depth: residual blocks skipped at random during training.

Paper: G. Huang, Y. Sun, Z. Liu, D. Sedra, K. Q. Weinberger, "Deep Networks
with Stochastic Depth", ECCV 2016.

In training, block l keeps its residual branch with probability p_l (a
Bernoulli variable b_l) and is otherwise only its shortcut (Eq. 2):

    H_l = ReLU(b_l f_l(H_{l-1}) + id(H_{l-1}))

- One draw per block per mini-batch (Sec. 3): the whole batch skips the same
  blocks, and a skipped branch is not computed at all, which is where the
  paper's shorter training time comes from.
- The survival probabilities fall linearly with depth (Eq. 4, "linear decay
  rule"), p_l = 1 - l/L (1 - p_L), from nearly 1 at the first block to p_L =
  0.5 at the last (:func:`linear_decay`).
- At test time every block is kept and its branch is scaled by p_l, its
  expected share in training (Eq. 5): H_l = ReLU(p_l f_l(H_{l-1}) + H_{l-1}).

``resnet110_stochastic_depth`` is the paper's CIFAR-10 network: ResNet-110 of
He et al. 2016a (54 basic blocks, shortcut option A) with p_L = 0.5. It has
exactly ResNet-110's parameters. The dropping lives in :class:`StochasticDepth`
and the decay rule in :func:`linear_decay` (both in ``layers.py``, since the
residual families of ``resnet.py`` build them into every unit); ``resnet.py``
threads a survival probability to every block through its one
stage builder, so any network of the residual families takes ``p_last``, e.g.
``create("preact_resnet164", p_last=0.5)``.

Where this code departs from the paper, or chooses where it is silent:
- Every block can be dropped, the downsampling ones too: a dropped
  downsampling block is its shortcut alone (subsampled and zero-padded).
- ``drop_mode="row"`` draws one Bernoulli variable per sample instead (timm's
  ``DropPath``, torchvision's ``stochastic_depth(mode="row")``); it cannot skip
  computing the branch. The default ``"batch"`` is the paper's.
- Unlike timm's ``DropPath``, which divides kept branches by p_l during
  training and leaves them alone at test time (as "inverted" dropout), we
  scale at test time as the paper does. Both have the same expectation.
- "The test output is the expectation of training": scaling the branch makes
  each block's *sum* ``id + p_l f_l`` the expectation of ``id + b_l f_l``. The
  network's test output equals the expectation of its training outputs
  exactly when everything after each addition is affine in it (for example
  BatchNorm in eval mode and no ReLU: the output is then multilinear in the
  independent b_l); with a ReLU after the addition (original units) or inside
  later branches it is the same mean-field approximation as dropout's.

Two context managers change a trained network for an experiment and put it
back afterwards: :func:`blocks_removed` reduces chosen blocks to their
shortcut at test time (the lesion study of Veit et al. 2016), and
:func:`unscaled` evaluates every branch without the factor p_l (to see what
the paper's test-time rule is worth).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from . import Reference, register

# linear_decay is imported for readers of this file and its chapter, who look
# for it here.
from .layers import StochasticDepth, linear_decay  # noqa: F401
from .resnet import cifar_resnet


class Removed(nn.Module):
    """Stands in for a block's :class:`StochasticDepth`: the branch is never
    computed, the unit is its shortcut.
    """

    def forward(self, branch: nn.Module, x: torch.Tensor) -> torch.Tensor:
        # broadcasts in `shortcut + 0`, as a dropped branch in training
        return x.new_zeros(())


def drop_layers(model: nn.Module) -> list[StochasticDepth]:
    """Every block's :class:`StochasticDepth`, in the order the blocks run
    (block 1 first).
    """
    return [m for m in model.modules() if isinstance(m, StochasticDepth)]


@contextmanager
def _swapped(
    model: nn.Module, blocks: Iterable[int] | None, make: type[nn.Module]
) -> Iterator[nn.Module]:
    """Within the ``with``: the ``drop`` of the chosen blocks (0-based;
    ``None``: all) replaced by ``make()``.
    """
    owners = [
        m
        for m in model.modules()
        if isinstance(getattr(m, "drop", None), StochasticDepth)
    ]
    if not owners:
        raise ValueError(
            f"{type(model).__name__} has no residual blocks with "
            "a StochasticDepth to change"
        )
    chosen = range(len(owners)) if blocks is None else sorted(set(blocks))
    wrong = [i for i in chosen if not 0 <= i < len(owners)]
    if wrong:
        raise ValueError(
            f"blocks {wrong} do not exist: the network has "
            f"{len(owners)} blocks, numbered 0 to "
            f"{len(owners) - 1}"
        )
    saved = {i: owners[i].drop for i in chosen}
    try:
        for i in chosen:
            owners[i].drop = make()
        yield model
    finally:
        for i, drop in saved.items():
            owners[i].drop = drop


def blocks_removed(model: nn.Module, blocks: Iterable[int]):
    """``with blocks_removed(model, [3]):`` block 3 (0-based, in running order)
    is only its shortcut.

    For the lesion study at test time: the branch is skipped as a dropped block
    in training. The blocks are restored when the ``with`` ends.
    """
    return _swapped(model, blocks, Removed)


def unscaled(model: nn.Module):
    """``with unscaled(model):`` every branch is added in full at test time,
    without the paper's factor p_l.
    """
    # survival_prob=1: branch(x), in training and at test time
    return _swapped(model, None, StochasticDepth)


@register(
    input_size=(3, 32, 32),
    num_classes=10,
    reference=Reference("He et al. 2016a, Table 6 (ResNet-110; dropping "
                        "blocks adds no parameters)",
                        params=1_700_000, rounded_to=100_000),
)  # fmt: skip
def resnet110_stochastic_depth(
    num_classes: int = 10,
    p_last: float = 0.5,
    drop_mode: str = "batch",
    shortcut: str = "A",
    **options,
) -> nn.Module:
    """ResNet-110 with stochastic depth, linear decay to ``p_last`` = 0.5
    (Huang et al. 2016, Sec. 4).
    """
    return cifar_resnet(
        110,
        num_classes,
        "resnet110_stochastic_depth",
        p_last=p_last,
        drop_mode=drop_mode,
        shortcut=shortcut,
        **options,
    )
