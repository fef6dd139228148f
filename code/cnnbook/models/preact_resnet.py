"""Pre-activation ResNets: BatchNorm and ReLU before each convolution, nothing
after the addition.

Paper: K. He, X. Zhang, S. Ren, J. Sun, "Identity Mappings in Deep Residual
Networks", ECCV 2016 (He et al. 2016b).

The paper's analysis: if both the shortcut h and the after-addition function f
are identities, x_L = x_l + sum_{i=l}^{L-1} F(x_i) for any units l < L, so the
signal, and the gradient, pass directly between any two units. The original
unit's ReLU after the addition breaks this; Fig. 4 compares five places for BN
and ReLU, and the "full pre-activation" unit (e), BN-ReLU-conv twice (three
times in a bottleneck) with nothing after the addition, wins.

The networks are the ResNets of ``resnet.py`` with another residual unit, so
there is no second network class here: the option ``unit`` of
:class:`~cnnbook.models.resnet.ResNet` (any key of
:data:`~cnnbook.models.resnet.UNITS`) selects the design of Fig. 4, and every
builder below takes it, e.g. ``create("preact_resnet110",
unit="relu_before_addition")`` for the chapter's comparison. As in the paper's
Sec. 4.1, the first unit's pre-activation is the stem's BN-ReLU, shared by both
of its paths, and the last unit is followed by an extra BN-ReLU before the
pooling.

- ``preact_resnet110``: CIFAR, 18 basic blocks per stage, 1.7M parameters.
- ``preact_resnet164`` and ``preact_resnet1001``: CIFAR, bottleneck blocks
  (9n+2 layers, n = 18 and 111) of 16/32/64 channels widened to 64/128/256,
  1.7M and 10.2M parameters; the shape-changing blocks project their shortcut
  with a 1x1 convolution (option B) without BatchNorm, and that projection
  reads the pre-activated input, as in the authors' released code
  (KaimingHe/resnet-1k-layers).
- ``preact_resnet18`` ... ``preact_resnet152``: ImageNet, the stages of the
  ResNets of Table 1 of He et al. 2016a with full pre-activation units (the
  paper's Table 5 trains ResNet-152 and -200 this way).

Where this code departs from the paper, or chooses where it is silent:
- ``preact_resnet110`` keeps ResNet-110's zero-padding shortcut (option A), so
  that it differs from ``resnet110`` in the unit only; ``shortcut="B"`` adds
  the two 1x1 projections (+2,560 parameters).
- The stride of a bottleneck sits on its first 1x1 convolution, as in the
  authors' code (``stride_in="3x3"`` moves it to the 3x3).
- The paper's parameter counts (Table 4) leave out BatchNorm's scales and
  shifts: ResNet-1001 has 10,178,490 parameters without them (the paper's
  10.2M) and 10,327,706 with them. Each reference declares that difference.
- Parameters of the ImageNet networks against torchvision's (post-activation)
  ResNets: 2 x (the channels of the projection shortcuts) fewer, because a
  pre-activation projection has no BatchNorm of its own. Moving every branch's
  BatchNorm from its last output (the block's output channels) to its input
  changes nothing else in total, since each block's input is the previous
  block's output: what the last block loses, the final BN-ReLU adds back.
  timm's ``resnetv2_*`` (pre-activation, BatchNorm) has exactly our counts.

The paper's shortcut variants (Fig. 2, Table 1), for experiments on any network
built from :class:`~cnnbook.models.resnet.ResidualUnit`:
:func:`replace_shortcuts` swaps the identity shortcuts of a network for a
constant scaling h(x) = lambda x (:class:`ScaledShortcut`, Fig. 2(b) with the
branch unscaled), shortcut-only gating h(x) = (1 - g(x)) x
(:class:`GatedShortcut`, Fig. 2(d)), a 1x1 convolution (Fig. 2(e)) or a dropout
shortcut (:class:`DropoutShortcut`, Fig. 2(f)). :func:`signal_statistics`
measures, for one batch, how large the signal is after every unit and the
gradient before it, through all paths or through the shortcuts only.
Departures: only the shortcuts that keep the shape are replaced (the stride-2
units keep theirs); the paper's "exclusive gating" (Fig. 2(c)), which also
scales the branch by g(x), is not implemented; the dropout shortcut keeps an
element with probability 1/2 without rescaling it (the paper's reading: a scale
of 1/2 in expectation) and multiplies by 1/2 in evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import Reference, register
from .resnet import (
    IMAGENET_LAYERS,
    IMAGENET_WIDTHS,
    ResidualUnit,
    ResNet,
    cifar_resnet,
    conv1x1,
    imagenet_resnet,
)

PREACT = "full_preactivation"


# --- The shortcut variants of Fig. 2 (Table 1)
# ---------------------------------------------------------------


class ScaledShortcut(nn.Module):
    """h(x) = scale * x (Fig. 2(b)): after L such units the direct path
    carries scale**L of the signal.
    """

    def __init__(self, scale: float = 0.5) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x


class GatedShortcut(nn.Module):
    """h(x) = (1 - g(x)) * x, g(x) = sigmoid(W_g x + b_g) with a 1x1
    convolution W_g (Fig. 2(d)).

    ``bias`` is b_g at initialisation: the paper's -6 makes 1 - g close to 1
    (an almost clean shortcut at the start), 0 makes it about 1/2.
    """

    def __init__(self, channels: int, bias: float = -6.0) -> None:
        super().__init__()
        self.gate = nn.Conv2d(channels, channels, 1)
        nn.init.constant_(self.gate.bias, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (1 - torch.sigmoid(self.gate(x))) * x  # N x C x H x W, as x


class DropoutShortcut(nn.Module):
    """Fig. 2(f): in training keep each element of x with probability
    ``keep``, unscaled; keep * x in evaluation.
    """

    def __init__(self, keep: float = 0.5) -> None:
        super().__init__()
        if not 0 < keep <= 1:
            raise ValueError(
                f"keep={keep}: the probability of keeping an "
                "element must be in (0, 1]"
            )
        self.keep = keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.keep * x
        return x * torch.bernoulli(torch.full_like(x, self.keep))


SHORTCUT_VARIANTS = ("scaled", "gated", "conv1x1", "dropout")


def replace_shortcuts(model: nn.Module, variant: str, **options) -> nn.Module:
    """Replace every identity shortcut of ``model``'s residual units by a
    variant of Fig. 2; returns the model.

    ``variant``: "scaled" (``scale``, default 0.5), "gated" (``bias``, default
    -6), "conv1x1" (a 1x1 convolution without bias, He-initialised like the
    others) or "dropout" (``keep``, default 0.5). Shortcuts that change the
    shape (zero padding or projection) are left as they are.
    """
    if variant not in SHORTCUT_VARIANTS:
        raise ValueError(
            f"variant={variant!r}: use one of "
            f"{', '.join(SHORTCUT_VARIANTS)} (He et al. 2016b, "
            "Fig. 2)"
        )
    for unit in model.modules():
        if not isinstance(unit, ResidualUnit) or not isinstance(
            unit.shortcut, nn.Identity
        ):
            continue
        channels = unit.in_channels
        if variant == "scaled":
            unit.shortcut = ScaledShortcut(**options)
        elif variant == "gated":
            unit.shortcut = GatedShortcut(channels, **options)
        elif variant == "conv1x1":
            unit.shortcut = conv1x1(channels, channels, **options)
            nn.init.kaiming_normal_(
                unit.shortcut.weight, mode="fan_out", nonlinearity="relu"
            )
        else:
            unit.shortcut = DropoutShortcut(**options)
    return model


# --- Measuring the forward signal and the backward gradient, unit by unit
# ------------------------------------


@dataclass(frozen=True)
class SignalStatistics:
    """Root mean squares for one batch, one value per residual unit, from
    the input side to the output side.
    """

    forward: tuple[float, ...]  # of each unit's output x_{l+1}
    # of the loss gradient at each unit's input, dl/dx_l
    backward: tuple[float, ...]
    # of the gradient at the last unit's addition, dl/dy_L (before anything
    # after it)
    top: float

    @property
    def first_to_top(self) -> float:
        """How much of the gradient at the top arrives at the first unit's
        input: backward[0] / top.
        """
        return self.backward[0] / self.top


def signal_statistics(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    through_branches: bool = True,
) -> SignalStatistics:
    """Forward signal and backward gradient at every residual unit of ``model``
    for one batch (cross-entropy loss).

    ``through_branches=False`` detaches every branch's input, so that the
    gradient reaches the lower units through the shortcuts (and whatever sits
    after the additions) only: the first term of the paper's Eq. (5). The model
    runs in its current mode (train or eval); its parameters get no gradient,
    and in-place ReLUs are switched off during the measurement (an in-place
    ReLU after an addition would overwrite the sum we measure at).
    """
    units = [m for m in model.modules() if isinstance(m, ResidualUnit)]
    if not units:
        raise ValueError(
            f"{type(model).__name__} has no residual units to measure"
        )
    inputs, outputs, top = [], [], []

    def record(
        unit: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor
    ) -> None:
        inputs.append(args[0])
        outputs.append(out)

    hooks = [u.register_forward_hook(record) for u in units]
    hooks.append(
        units[-1].post.register_forward_pre_hook(
            lambda m, args: top.append(args[0])
        )
    )
    if not through_branches:
        hooks += [
            u.branch.register_forward_pre_hook(
                lambda m, args: tuple(a.detach() for a in args)
            )
            for u in units
        ]
    relus = [
        m for m in model.modules() if isinstance(m, nn.ReLU) and m.inplace
    ]
    for relu in relus:
        relu.inplace = False
    try:
        # so that the first unit's input is part of the graph
        images = images.clone().requires_grad_(True)
        loss = F.cross_entropy(model(images), labels)
        grads = torch.autograd.grad(loss, [*inputs, top[0]])
    finally:
        for hook in hooks:
            hook.remove()
        for relu in relus:
            relu.inplace = True

    def rms(t: torch.Tensor) -> float:
        return t.detach().float().square().mean().sqrt().item()

    return SignalStatistics(
        tuple(map(rms, outputs)), tuple(map(rms, grads[:-1])), rms(grads[-1])
    )


def _torchvision_minus_projection_bns(depth: int) -> Reference:
    """torchvision's ResNet-``depth``, less the BatchNorm of its projection
    shortcuts (module docstring).
    """
    block, _ = IMAGENET_LAYERS[depth]
    # A stage's first block projects whenever its width changes: all four
    # stages for bottlenecks (64 -> 256 already in the first), the last three
    # for basic blocks.
    projected = [
        w * block.expansion
        for i, w in enumerate(IMAGENET_WIDTHS)
        if i > 0 or block.expansion > 1
    ]
    return Reference(
        "torchvision",
        builder=f"torchvision.models.resnet{depth}",
        difference=-2 * sum(projected),
        why=f"pre-activation projections have no BatchNorm: -2 x "
        f"({' + '.join(map(str, projected))}) "
        "scales and shifts; moving the branches' BatchNorm to their "
        "inputs and the final BN-ReLU "
        "cancel out (the count equals timm's resnetv2)",
    )


def _table4(params: int, batchnorm_params: int) -> Reference:
    """A count of the paper's Table 4, which leaves out BatchNorm
    (``batchnorm_params`` of ours).
    """
    return Reference(
        "He et al. 2016b, Table 4",
        params=params,
        rounded_to=100_000,
        difference=batchnorm_params,
        why=f"the paper counts no BatchNorm scales and shifts "
        f"({batchnorm_params:,} of ours)",
    )


@register(reference=_torchvision_minus_projection_bns(18))
def preact_resnet18(
    num_classes: int = 1000, unit: str = PREACT, **options
) -> ResNet:
    """ResNet-18 with full pre-activation units. Options: see
    :class:`~cnnbook.models.resnet.ResNet`.
    """
    return imagenet_resnet(
        18, num_classes, "preact_resnet18", unit=unit, **options
    )


@register(reference=_torchvision_minus_projection_bns(34))
def preact_resnet34(
    num_classes: int = 1000, unit: str = PREACT, **options
) -> ResNet:
    """ResNet-34 with full pre-activation units."""
    return imagenet_resnet(
        34, num_classes, "preact_resnet34", unit=unit, **options
    )


@register(reference=_torchvision_minus_projection_bns(50))
def preact_resnet50(
    num_classes: int = 1000, unit: str = PREACT, **options
) -> ResNet:
    """ResNet-50 with full pre-activation units."""
    return imagenet_resnet(
        50, num_classes, "preact_resnet50", unit=unit, **options
    )


@register(reference=_torchvision_minus_projection_bns(101))
def preact_resnet101(
    num_classes: int = 1000, unit: str = PREACT, **options
) -> ResNet:
    """ResNet-101 with full pre-activation units."""
    return imagenet_resnet(
        101, num_classes, "preact_resnet101", unit=unit, **options
    )


@register(reference=_torchvision_minus_projection_bns(152))
def preact_resnet152(
    num_classes: int = 1000, unit: str = PREACT, **options
) -> ResNet:
    """ResNet-152 with full pre-activation units (He et al. 2016b, Table 5)."""
    return imagenet_resnet(
        152, num_classes, "preact_resnet152", unit=unit, **options
    )


@register(
    input_size=(3, 32, 32), num_classes=10, reference=_table4(1_700_000, 8_096)
)
def preact_resnet110(
    num_classes: int = 10, unit: str = PREACT, shortcut: str = "A", **options
) -> ResNet:
    """ResNet-110 for CIFAR-10 (basic blocks, n=18) with full pre-activation
    units.
    """
    return cifar_resnet(
        110,
        num_classes,
        "preact_resnet110",
        unit=unit,
        shortcut=shortcut,
        **options,
    )


@register(
    input_size=(3, 32, 32),
    num_classes=10,
    reference=_table4(1_700_000, 24_224),
)
def preact_resnet164(
    num_classes: int = 10, unit: str = PREACT, shortcut: str = "B", **options
) -> ResNet:
    """ResNet-164 for CIFAR-10 (bottlenecks, n=18) with full pre-activation
    units.
    """
    return cifar_resnet(
        164,
        num_classes,
        "preact_resnet164",
        bottleneck=True,
        unit=unit,
        shortcut=shortcut,
        **options,
    )


@register(
    input_size=(3, 32, 32),
    num_classes=10,
    reference=_table4(10_200_000, 149_216),
)
def preact_resnet1001(
    num_classes: int = 10, unit: str = PREACT, shortcut: str = "B", **options
) -> ResNet:
    """ResNet-1001 for CIFAR-10 (bottlenecks, n=111) with full
    pre-activation units.
    """
    return cifar_resnet(
        1001,
        num_classes,
        "preact_resnet1001",
        bottleneck=True,
        unit=unit,
        shortcut=shortcut,
        **options,
    )
