"""Pre-activation ResNets: BatchNorm and ReLU before each convolution, nothing after the addition.

Paper: K. He, X. Zhang, S. Ren, J. Sun, "Identity Mappings in Deep Residual
Networks", ECCV 2016 (He et al. 2016b).

The paper's analysis: if both the shortcut h and the after-addition function
f are identities, x_L = x_l + sum_{i=l}^{L-1} F(x_i) for any units l < L, so
the signal, and the gradient, pass directly between any two units. The
original unit's ReLU after the addition breaks this; Fig. 4 compares five
places for BN and ReLU, and the "full pre-activation" unit (e), BN-ReLU-conv
twice (three times in a bottleneck) with nothing after the addition, wins.

The networks are the ResNets of ``resnet.py`` with another residual unit, so
there is no second network class here: the option ``unit`` of
:class:`~cnnbook.models.resnet.ResNet` (any key of
:data:`~cnnbook.models.resnet.UNITS`) selects the design of Fig. 4, and every
builder below takes it, e.g. ``create("preact_resnet110",
unit="relu_before_addition")`` for the chapter's comparison. As in the
paper's Sec. 4.1, the first unit's pre-activation is the stem's BN-ReLU,
shared by both of its paths, and the last unit is followed by an extra BN-ReLU
before the pooling.

- ``preact_resnet110``: CIFAR, 18 basic blocks per stage, 1.7M parameters.
- ``preact_resnet164`` and ``preact_resnet1001``: CIFAR, bottleneck blocks
  (9n+2 layers, n = 18 and 111) of 16/32/64 channels widened to 64/128/256,
  1.7M and 10.2M parameters; the shape-changing blocks project their shortcut
  with a 1x1 convolution (option B) without BatchNorm, and that projection
  reads the pre-activated input, as in the authors' released code
  (KaimingHe/resnet-1k-layers).
- ``preact_resnet18`` ... ``preact_resnet152``: ImageNet, the stages of the
  ResNets of Table 1 of He et al. 2016a with full pre-activation units
  (the paper's Table 5 trains ResNet-152 and -200 this way).

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
"""

from __future__ import annotations

from . import Reference, register
from .resnet import IMAGENET_LAYERS, IMAGENET_WIDTHS, ResNet, cifar_resnet, imagenet_resnet

PREACT = "full_preactivation"


def _torchvision_minus_projection_bns(depth: int) -> Reference:
    """torchvision's ResNet-``depth``, less the BatchNorm of its projection shortcuts (module docstring)."""
    block, _ = IMAGENET_LAYERS[depth]
    # A stage's first block projects whenever its width changes: all four stages for bottlenecks (64 -> 256
    # already in the first), the last three for basic blocks.
    projected = [w * block.expansion for i, w in enumerate(IMAGENET_WIDTHS) if i > 0 or block.expansion > 1]
    return Reference(
        "torchvision", builder=f"torchvision.models.resnet{depth}", difference=-2 * sum(projected),
        why=f"pre-activation projections have no BatchNorm: -2 x ({' + '.join(map(str, projected))}) "
            "scales and shifts; moving the branches' BatchNorm to their inputs and the final BN-ReLU "
            "cancel out (the count equals timm's resnetv2)",
    )  # fmt: skip


def _table4(params: int, batchnorm_params: int) -> Reference:
    """A count of the paper's Table 4, which leaves out BatchNorm (``batchnorm_params`` of ours)."""
    return Reference("He et al. 2016b, Table 4", params=params, rounded_to=100_000, difference=batchnorm_params,
                     why=f"the paper counts no BatchNorm scales and shifts ({batchnorm_params:,} of ours)")  # fmt: skip


@register(reference=_torchvision_minus_projection_bns(18))
def preact_resnet18(num_classes: int = 1000, unit: str = PREACT, **options) -> ResNet:
    """ResNet-18 with full pre-activation units. Options: see :class:`~cnnbook.models.resnet.ResNet`."""
    return imagenet_resnet(18, num_classes, "preact_resnet18", unit=unit, **options)


@register(reference=_torchvision_minus_projection_bns(34))
def preact_resnet34(num_classes: int = 1000, unit: str = PREACT, **options) -> ResNet:
    """ResNet-34 with full pre-activation units."""
    return imagenet_resnet(34, num_classes, "preact_resnet34", unit=unit, **options)


@register(reference=_torchvision_minus_projection_bns(50))
def preact_resnet50(num_classes: int = 1000, unit: str = PREACT, **options) -> ResNet:
    """ResNet-50 with full pre-activation units."""
    return imagenet_resnet(50, num_classes, "preact_resnet50", unit=unit, **options)


@register(reference=_torchvision_minus_projection_bns(101))
def preact_resnet101(num_classes: int = 1000, unit: str = PREACT, **options) -> ResNet:
    """ResNet-101 with full pre-activation units."""
    return imagenet_resnet(101, num_classes, "preact_resnet101", unit=unit, **options)


@register(reference=_torchvision_minus_projection_bns(152))
def preact_resnet152(num_classes: int = 1000, unit: str = PREACT, **options) -> ResNet:
    """ResNet-152 with full pre-activation units (He et al. 2016b, Table 5)."""
    return imagenet_resnet(152, num_classes, "preact_resnet152", unit=unit, **options)


@register(input_size=(3, 32, 32), num_classes=10, reference=_table4(1_700_000, 8_096))
def preact_resnet110(num_classes: int = 10, unit: str = PREACT, shortcut: str = "A", **options) -> ResNet:
    """ResNet-110 for CIFAR-10 (basic blocks, n=18) with full pre-activation units."""
    return cifar_resnet(110, num_classes, "preact_resnet110", unit=unit, shortcut=shortcut, **options)


@register(input_size=(3, 32, 32), num_classes=10, reference=_table4(1_700_000, 24_224))
def preact_resnet164(num_classes: int = 10, unit: str = PREACT, shortcut: str = "B", **options) -> ResNet:
    """ResNet-164 for CIFAR-10 (bottlenecks, n=18) with full pre-activation units."""
    return cifar_resnet(164, num_classes, "preact_resnet164", bottleneck=True, unit=unit, shortcut=shortcut, **options)


@register(input_size=(3, 32, 32), num_classes=10, reference=_table4(10_200_000, 149_216))
def preact_resnet1001(num_classes: int = 10, unit: str = PREACT, shortcut: str = "B", **options) -> ResNet:
    """ResNet-1001 for CIFAR-10 (bottlenecks, n=111) with full pre-activation units."""
    return cifar_resnet(1001, num_classes, "preact_resnet1001", bottleneck=True, unit=unit, shortcut=shortcut,
                        **options)
