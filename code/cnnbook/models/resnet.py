"""Residual networks: the blocks, the one network class and the stage builder
every residual family shares.

Paper: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016 (He et al. 2016a). The pre-activation units come from
"Identity Mappings in Deep Residual Networks", ECCV 2016 (He et al. 2016b), and
live here too because they only move BatchNorm and ReLU around the same block:
``preact_resnet.py`` registers those networks, ``resnext.py`` adds the
aggregated block, ``stochastic_depth.py`` the random dropping of blocks, all
built by :class:`ResNet` and :func:`make_stage` below.

A residual unit computes ``x_next = f(h(x) + F(x))``: ``F`` is the residual
branch (two 3x3 convolutions in a :class:`BasicBlock`, 1x1-3x3-1x1 in a
:class:`Bottleneck`), ``h`` the shortcut and ``f`` what follows the addition.

- ImageNet networks (``resnet18`` ... ``resnet152``, Table 1 of the paper): a
  7x7/2 convolution and a 3x3/2 max pool, then four stages of 64, 128, 256 and
  512 channels (times 4 after a bottleneck) at 56, 28, 14 and 7 pixels, global
  average pooling and one fully connected layer.
- CIFAR networks (``resnet20`` ... ``resnet1202``, Section 4.2): a 3x3
  convolution, three stages of n basic blocks with 16, 32 and 64 channels at
  32, 16 and 8 pixels (6n+2 layers), global average pooling and a fully
  connected layer.
- The first block of every stage after the first halves the spatial size
  (stride 2) and doubles the channels; the shortcut then has to change shape
  too. ``shortcut`` chooses how (Section 3.3): "A" zero-pads the new channels
  of a strided identity (no parameters), "B" projects with a 1x1 convolution
  only where the shape changes, "C" projects in every block. The ImageNet
  networks default to B (as torchvision, and the paper's Table 3 models), the
  CIFAR networks to A (as the paper's Section 4.2).
- BatchNorm after every convolution, before the ReLU (Section 3.4); the ReLU of
  a unit comes after the addition.
- ``residual=False`` removes the shortcuts: the paper's **plain networks**
  (Section 4.1 and 4.2, Fig. 6), the same layers without the additions, e.g.
  ``models.create("resnet56", residual=False)`` for plain-56. No shortcut is
  built whatever ``shortcut`` says, so a plain network has exactly the
  parameters of its option-A twin (``resnet20`` ... ``resnet1202`` by default).
  Stochastic depth and ``zero_init_last`` need a shortcut and refuse a plain
  unit with a ``ValueError``.
- ``width`` (CIFAR networks, 1 by default) multiplies the 16, 32 and 64
  channels of the three stages (rounded, at least 1), for runs on a CPU; not in
  the paper.

Where this code departs from the paper, or chooses where it is silent:
- Where the stride sits in a bottleneck: the paper's released models put the
  stride 2 of a stage's first block on its first 1x1 convolution, and so do we
  by default (``stride_in="1x1"``). torchvision (its "ResNet v1.5") moves it to
  the 3x3 convolution, which costs more multiply-adds and is a little more
  accurate; ``stride_in="3x3"`` gives that. Parameter counts are the same.
- Option A subsamples the identity with a stride (``x[:, :, ::2, ::2]``) and
  appends the zero channels after the existing ones; the paper does not say
  where they go (any order is the same network up to a permutation).
- Initialisation: He normal (fan-out) for convolutions as torchvision,
  BatchNorm scale 1 and shift 0; :meth:`ResNet.zero_init_last` zeroes the last
  BatchNorm of every branch (Goyal et al. 2017), which the paper does not do.
- ``resnet18_cifar`` / ``resnet34_cifar`` / ``resnet50_cifar`` are CIFAR
  adaptations of the ImageNet networks (not in the paper): a 3x3 stride-1 stem
  without max pooling, the same four stages at 32, 16, 8 and 4 pixels.
- ``unit`` selects one of the five residual units of He et al. 2016b, Fig. 4;
  ``p_last`` turns on stochastic depth (Huang et al. 2016). Neither changes the
  parameter count; see ``preact_resnet.py`` and ``stochastic_depth.py``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import Reference, register
from .layers import StochasticDepth, conv_bn_relu, expect_input, linear_decay

# Where BatchNorm and ReLU sit in a residual unit (He et al. 2016b, Fig. 4).
# Between two convolutions of the branch there is always BN-ReLU; the five
# designs differ in what comes before the first convolution, after the last one
# (both on the branch) and after the addition of the shortcut.
# (a) is He et al. 2016a's unit, (e) the paper's proposal.
UNITS: dict[str, tuple[str, str, str]] = {
    #                           before     end        after the addition
    "original":                ("",        "bn",      "relu"),     # (a)
    "bn_after_addition":       ("",        "",        "bn relu"),  # (b)
    "relu_before_addition":    ("",        "bn relu", ""),         # (c)
    "relu_only_preactivation": ("relu",    "bn",      ""),         # (d)
    "full_preactivation":      ("bn relu", "",        ""),         # (e)
}  # fmt: skip

SHORTCUTS = ("A", "B", "C")


def conv3x3(
    in_channels: int, out_channels: int, stride: int = 1, groups: int = 1
) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BatchNorm follows or
    precedes it).
    """
    return nn.Conv2d(
        in_channels,
        out_channels,
        3,
        stride,
        padding=1,
        groups=groups,
        bias=False,
    )


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)


def norm_act(ops: str, channels: int, inplace: bool = True) -> nn.Module:
    """The layers a :data:`UNITS` entry names, e.g. "bn relu" ->
    BatchNorm2d(channels), ReLU; "" -> Identity.

    ``inplace=False`` keeps a leading ReLU from overwriting its input (a ReLU
    after a BatchNorm works on the BatchNorm's fresh output either way).
    """
    layers = [
        nn.BatchNorm2d(channels)
        if op == "bn"
        else nn.ReLU(inplace=inplace or i > 0)
        for i, op in enumerate(ops.split())
    ]
    if not layers:
        return nn.Identity()
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


def basic_transform(
    in_channels: int, width: int, stride: int = 1
) -> nn.Sequential:
    """The branch of a basic block without its unit-dependent ends: conv3x3
    - BN - ReLU - conv3x3 (Fig. 5 left).
    """
    return nn.Sequential(
        OrderedDict(
            conv1=conv3x3(in_channels, width, stride),
            bn1=nn.BatchNorm2d(width),
            relu1=nn.ReLU(inplace=True),
            conv2=conv3x3(width, width),
        )
    )


def bottleneck_transform(
    in_channels: int,
    width: int,
    out_channels: int | None,
    stride: int = 1,
    groups: int = 1,
    stride_in: str = "1x1",
) -> nn.Sequential:
    """conv1x1 (reduce to ``width``) - BN - ReLU - conv3x3 - BN - ReLU -
    conv1x1 (restore ``out_channels``).

    The bottleneck branch of Fig. 5 (right), without its unit-dependent ends.
    ``groups`` splits the 3x3 convolution (ResNeXt's form c); ``stride_in``
    puts the stride on the first 1x1 (the paper) or on the 3x3 (torchvision,
    ResNeXt). ``out_channels=None`` stops after the second ReLU (the paths of
    ResNeXt's form b).
    """
    if stride_in not in ("1x1", "3x3"):
        raise ValueError(
            f"stride_in={stride_in!r}: put the stride on the "
            "first '1x1' convolution or on the '3x3'"
        )
    stride1, stride3 = (stride, 1) if stride_in == "1x1" else (1, stride)
    layers = OrderedDict(
        conv1=conv1x1(in_channels, width, stride1),
        bn1=nn.BatchNorm2d(width),
        relu1=nn.ReLU(inplace=True),
        conv2=conv3x3(width, width, stride3, groups),
        bn2=nn.BatchNorm2d(width),
        relu2=nn.ReLU(inplace=True),
    )
    if out_channels is not None:
        layers["conv3"] = conv1x1(width, out_channels)
    return nn.Sequential(layers)


class ZeroPadShortcut(nn.Module):
    """Shortcut option A: the identity, subsampled by ``stride``, with zero
    channels appended (no parameters).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int
    ) -> None:
        super().__init__()
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # pads (W, H, C) from the last dimension back
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


class ResidualUnit(nn.Module):
    """``x_next = after(shortcut(x) + StochasticDepth(branch)(before(x)))``,
    one residual unit.

    ``transform`` is the branch's convolutions (see :func:`basic_transform`,
    :func:`bottleneck_transform`); ``unit`` (a key of :data:`UNITS`) adds the
    BatchNorm/ReLU layers around it. ``shortcut`` is "A", "B" or "C" (module
    docstring). ``survival_prob`` < 1 drops the branch at random in training
    (stochastic depth, ``drop_mode`` "batch" or "row") and scales it at test
    time.

    ``residual=False`` drops the shortcut and the addition: ``x_next =
    after(branch(before(x)))``, a unit of the paper's plain networks.

    ``first`` and ``last`` mark the network's first and last units, which a
    pre-activation network treats specially (He et al. 2016b, Sec. 4.1): the
    first unit's pre-activation is the stem's BN-ReLU, "right after conv1 and
    before splitting into two paths", so the unit has none of its own; the last
    unit adds "an extra activation right after its element-wise addition".
    """

    def __init__(
        self,
        transform: nn.Module,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        shortcut: str = "B",
        unit: str = "original",
        survival_prob: float = 1.0,
        drop_mode: str = "batch",
        first: bool = False,
        last: bool = False,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if unit not in UNITS:
            raise ValueError(
                f"unit={unit!r} is not one of the residual units "
                f"of He et al. 2016b: {', '.join(UNITS)}"
            )
        if shortcut not in SHORTCUTS:
            raise ValueError(
                f"shortcut={shortcut!r}: use 'A' (zero padding), "
                "'B' (projection where the shape changes) "
                "or 'C' (projection everywhere)"
            )
        if not residual and survival_prob < 1.0:
            raise ValueError(
                f"survival_prob={survival_prob}: stochastic "
                "depth drops the residual branch and keeps "
                "the shortcut, and a plain unit (residual=False) "
                "has no shortcut"
            )
        before, end, after = UNITS[unit]
        self.in_channels, self.out_channels, self.stride, self.residual = (
            in_channels,
            out_channels,
            stride,
            residual,
        )
        # The network's first unit gets its pre-activation from the stem (Sec.
        # 4.1), so has none of its own. A ReLU straight on x must not work in
        # place: the identity shortcut still reads x.
        self.preact = (
            nn.Identity()
            if first
            else norm_act(before, in_channels, inplace=False)
        )
        reshapes = stride != 1 or in_channels != out_channels
        self.project = residual and (
            shortcut == "C" or (shortcut == "B" and reshapes)
        )
        if not residual:
            self.shortcut = None  # a plain unit: no shortcut, no addition
        elif self.project:
            # The projection ends like the branch it is added to: with a
            # BatchNorm if the branch has one.
            norm = [nn.BatchNorm2d(out_channels)] if "bn" in end else []
            self.shortcut = nn.Sequential(
                conv1x1(in_channels, out_channels, stride), *norm
            )
        elif reshapes:
            self.shortcut = ZeroPadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Identity()
        self.branch = nn.Sequential(transform, norm_act(end, out_channels))
        self.drop = StochasticDepth(survival_prob, drop_mode)
        self.post = norm_act(
            f"{after} {before}" if last else after, out_channels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.preact(x)
        if self.shortcut is None:  # plain: x_next = after(F(x)), nothing added
            return self.post(self.branch(pre))
        # A projection reads the pre-activated input (both paths split after
        # the activation, as in He et al.'s code); an identity shortcut passes
        # x on untouched, the clean path of He et al. 2016b.
        shortcut = self.shortcut(pre if self.project else x)
        return self.post(shortcut + self.drop(self.branch, pre))

    def zero_init_last(self) -> None:
        """Make the branch output zero, so that the unit starts as its shortcut
        (Goyal et al. 2017).

        Zeroes the scale of the BatchNorm that ends the branch, or, in a
        pre-activation unit whose branch ends with a convolution, the weights
        of that convolution (of every path's last one in ResNeXt's form a). A
        plain unit refuses: with its branch zeroed it would output a constant.
        """
        if not self.residual:
            raise ValueError(
                "zero_init_last needs a shortcut: a plain unit "
                "(residual=False) with its branch zeroed "
                "outputs a constant and cannot learn"
            )
        transform, end = self.branch
        norms = [m for m in end.modules() if isinstance(m, nn.BatchNorm2d)]
        if norms:
            last = norms
        elif hasattr(transform, "output_convs"):  # ResNeXt's forms a and b
            last = transform.output_convs()
        else:
            last = [transform[-1]]
        for layer in last:
            nn.init.zeros_(layer.weight)


class BasicBlock(ResidualUnit):
    """Two 3x3 convolutions (Fig. 5 left); ``channels`` in and out (the
    stride and ``in_channels`` may differ).
    """

    expansion = 1

    def __init__(
        self, in_channels: int, channels: int, stride: int = 1, **options
    ) -> None:
        super().__init__(
            basic_transform(in_channels, channels, stride),
            in_channels,
            channels,
            stride,
            **options,
        )


class Bottleneck(ResidualUnit):
    """1x1 (reduce to ``channels``) - 3x3 - 1x1 (expand to 4 x ``channels``),
    Fig. 5 right.

    ``stride_in``: the stride on the first 1x1 convolution ("1x1", the paper's
    models, default) or on the 3x3 ("3x3", torchvision's v1.5).
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        *,
        stride_in: str = "1x1",
        **options,
    ) -> None:
        out_channels = channels * self.expansion
        transform = bottleneck_transform(
            in_channels, channels, out_channels, stride, stride_in=stride_in
        )
        super().__init__(
            transform, in_channels, out_channels, stride, **options
        )


def make_stage(
    block: Callable[..., ResidualUnit],
    in_channels: int,
    channels: int,
    num_blocks: int,
    stride: int,
    survival_probs: list[float],
    *,
    first: bool = False,
    last: bool = False,
    **options,
) -> nn.Sequential:
    """``num_blocks`` blocks; the first one takes the ``stride`` and the change
    of width, the others keep the shape.

    ``survival_probs`` has one stochastic-depth survival probability per block;
    ``first``/``last`` say whether the stage opens/closes the network;
    ``options`` go to every block (``shortcut``, ``unit``, ``stride_in``, ...).
    """
    blocks = []
    for i in range(num_blocks):
        blocks.append(
            block(
                in_channels,
                channels,
                stride if i == 0 else 1,
                survival_prob=survival_probs[i],
                first=first and i == 0,
                last=last and i == num_blocks - 1,
                **options,
            )
        )
        in_channels = blocks[-1].out_channels
    return nn.Sequential(*blocks)


class ResNet(nn.Module):
    """A stem, stages of residual blocks, global average pooling and a linear
    classifier.

    ``layers`` is the number of blocks per stage and ``widths`` each stage's
    ``channels`` (torchvision's "planes": a stage outputs ``channels`` x
    ``block.expansion``); each stage after the first halves the spatial size.
    ``stem`` is "imagenet" (7x7/2 conv, BN, ReLU, 3x3/2 max pool) or "cifar"
    (3x3 conv, BN, ReLU), with ``widths[0]`` channels. ``p_last`` < 1 turns on
    stochastic depth: the survival probability falls linearly from 1 to
    ``p_last`` at the last block. Other keyword ``options`` go to every block:
    ``shortcut`` ("A", "B", "C"), ``residual`` (False: no shortcuts, a plain
    network), ``unit`` (a key of :data:`UNITS`), ``drop_mode``, and the block's
    own (``stride_in`` for a bottleneck, ``cardinality``/``form`` for ResNeXt).
    ``name`` is the registered name, used in error messages.
    """

    def __init__(
        self,
        block: Callable[..., ResidualUnit],
        layers: tuple[int, ...],
        widths: tuple[int, ...],
        *,
        num_classes: int,
        in_channels: int = 3,
        stem: str = "imagenet",
        p_last: float = 1.0,
        name: str = "resnet",
        **options,
    ) -> None:
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ValueError(
                f"stem={stem!r}: use 'imagenet' (7x7/2 conv + "
                "max pool) or 'cifar' (3x3 conv)"
            )
        self.name, self.in_channels = name, in_channels
        if stem == "imagenet":
            self.stem = nn.Sequential(
                conv_bn_relu(in_channels, widths[0], 7, stride=2),
                nn.MaxPool2d(3, 2, padding=1),
            )
        else:
            self.stem = conv_bn_relu(in_channels, widths[0], 3)
        # Smallest input that still leaves the last stage at least one pixel:
        # the product of all the strides.
        self.min_size = (4 if stem == "imagenet" else 1) * 2 ** (
            len(layers) - 1
        )

        # one survival probability per block, over the whole network
        survival = linear_decay(sum(layers), p_last)
        stages, channels = [], widths[0]
        for i, (num_blocks, width) in enumerate(zip(layers, widths)):
            start = sum(layers[:i])
            stage = make_stage(
                block,
                channels,
                width,
                num_blocks,
                stride=1 if i == 0 else 2,
                survival_probs=survival[start : start + num_blocks],
                first=i == 0,
                last=i == len(layers) - 1,
                **options,
            )
            stages.append(stage)
            channels = stage[-1].out_channels
        self.stages = nn.Sequential(*stages)
        self.num_features = channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode="fan_out", nonlinearity="relu"
                )

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of the stem and of every stage, for shape checks and
        feature-map plots.
        """
        expect_input(x, self.name, self.in_channels, min_size=self.min_size)
        # ImageNet: N x 64 x 56 x 56 (after the max pool); CIFAR: N x 16 x 32 x
        # 32
        outputs = [self.stem(x)]
        for stage in self.stages:
            # Each stage after the first halves H and W: 56, 28, 14, 7
            # (ImageNet) or 32, 16, 8 (CIFAR).
            outputs.append(stage(outputs[-1]))
        return outputs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # ImageNet: N x 2048 x 7 x 7 (ResNet-50); CIFAR: N x 64 x 8 x 8
        # (ResNet-20)
        return self.forward_stages(x)[-1]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))  # N x num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def zero_init_last(self) -> "ResNet":
        """Start every residual unit as its shortcut (zero its branch's last
        BatchNorm scale); returns the model.
        """
        for m in self.modules():
            if isinstance(m, ResidualUnit):
                m.zero_init_last()
        return self


# Blocks per stage of the ImageNet networks, Table 1 of the paper.
IMAGENET_LAYERS: dict[int, tuple[type[ResidualUnit], tuple[int, ...]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
IMAGENET_WIDTHS = (64, 128, 256, 512)
CIFAR_WIDTHS = (16, 32, 64)


def imagenet_resnet(
    depth: int, num_classes: int, name: str, stem: str = "imagenet", **options
) -> ResNet:
    """ResNet-``depth`` of Table 1 (18, 34, 50, 101 or 152 layers);
    ``options`` go to :class:`ResNet`.
    """
    if depth not in IMAGENET_LAYERS:
        raise ValueError(
            f"no ImageNet ResNet with {depth} layers; Table 1 "
            f"has {sorted(IMAGENET_LAYERS)}"
        )
    block, layers = IMAGENET_LAYERS[depth]
    return ResNet(
        block,
        layers,
        IMAGENET_WIDTHS,
        num_classes=num_classes,
        stem=stem,
        name=name,
        **options,
    )


def cifar_resnet(
    depth: int,
    num_classes: int,
    name: str,
    bottleneck: bool = False,
    width: float = 1.0,
    **options,
) -> ResNet:
    """A CIFAR ResNet of Section 4.2: three stages of n blocks, 16/32/64
    channels (times ``width``).

    Basic blocks have 2 layers, so depth = 6n + 2; bottlenecks (the
    pre-activation ResNet-164 and -1001) have 3, so depth = 9n + 2. ``width``
    multiplies every stage's channels (rounded, at least 1): 0.5 gives 8/16/32,
    about a quarter of the parameters and multiply-adds.
    """
    if not (
        isinstance(width, (int, float))
        and not isinstance(width, bool)
        and width > 0
    ):
        raise ValueError(
            f"width={width!r} must be a positive number (1: the "
            "paper's 16/32/64 channels)"
        )
    layers_per_block = 3 if bottleneck else 2
    n, rest = divmod(depth - 2, 3 * layers_per_block)
    if rest or n < 1:
        kind, layers = ("bottleneck", 9) if bottleneck else ("basic", 6)
        raise ValueError(
            f"a CIFAR ResNet of {kind} blocks has {layers}n+2 "
            f"layers (e.g. {layers * 3 + 2}); "
            f"got depth={depth}"
        )
    block = Bottleneck if bottleneck else BasicBlock
    widths = tuple(
        max(1, round(channels * width)) for channels in CIFAR_WIDTHS
    )
    return ResNet(
        block,
        (n, n, n),
        widths,
        num_classes=num_classes,
        stem="cifar",
        name=name,
        **options,
    )


# --- ImageNet (Table 1), shortcut B, the stride on the bottleneck's first 1x1
# -------------------------------


@register(
    reference=Reference("torchvision", builder="torchvision.models.resnet18")
)
def resnet18(num_classes: int = 1000, **options) -> ResNet:
    """ResNet-18 (basic blocks, 2-2-2-2). Options: see :class:`ResNet`."""
    return imagenet_resnet(18, num_classes, "resnet18", **options)


@register(
    reference=Reference("torchvision", builder="torchvision.models.resnet34")
)
def resnet34(num_classes: int = 1000, **options) -> ResNet:
    """ResNet-34 (basic blocks, 3-4-6-3), the paper's Fig. 3 (right)."""
    return imagenet_resnet(34, num_classes, "resnet34", **options)


@register(
    reference=Reference("torchvision", builder="torchvision.models.resnet50")
)
def resnet50(num_classes: int = 1000, **options) -> ResNet:
    """ResNet-50 (bottlenecks, 3-4-6-3). ``stride_in="3x3"`` gives
    torchvision's v1.5.
    """
    return imagenet_resnet(50, num_classes, "resnet50", **options)


@register(
    reference=Reference("torchvision", builder="torchvision.models.resnet101")
)
def resnet101(num_classes: int = 1000, **options) -> ResNet:
    """ResNet-101 (bottlenecks, 3-4-23-3)."""
    return imagenet_resnet(101, num_classes, "resnet101", **options)


@register(
    reference=Reference("torchvision", builder="torchvision.models.resnet152")
)
def resnet152(num_classes: int = 1000, **options) -> ResNet:
    """ResNet-152 (bottlenecks, 3-8-36-3)."""
    return imagenet_resnet(152, num_classes, "resnet152", **options)


# --- CIFAR-10 (Section 4.2, Table 6): 6n+2 layers, shortcut A
# -----------------------------------------------


def _table6(params: int, rounded_to: int) -> Reference:
    return Reference(
        "He et al. 2016a, Table 6", params=params, rounded_to=rounded_to
    )


@register(
    input_size=(3, 32, 32), num_classes=10, reference=_table6(270_000, 10_000)
)
def resnet20(num_classes: int = 10, shortcut: str = "A", **options) -> ResNet:
    """ResNet-20 for CIFAR-10 (n=3), 0.27M parameters."""
    return cifar_resnet(
        20, num_classes, "resnet20", shortcut=shortcut, **options
    )


@register(
    input_size=(3, 32, 32), num_classes=10, reference=_table6(460_000, 10_000)
)
def resnet32(num_classes: int = 10, shortcut: str = "A", **options) -> ResNet:
    """ResNet-32 for CIFAR-10 (n=5), 0.46M parameters."""
    return cifar_resnet(
        32, num_classes, "resnet32", shortcut=shortcut, **options
    )


@register(
    input_size=(3, 32, 32), num_classes=10, reference=_table6(660_000, 10_000)
)
def resnet44(num_classes: int = 10, shortcut: str = "A", **options) -> ResNet:
    """ResNet-44 for CIFAR-10 (n=7), 0.66M parameters."""
    return cifar_resnet(
        44, num_classes, "resnet44", shortcut=shortcut, **options
    )


@register(
    input_size=(3, 32, 32), num_classes=10, reference=_table6(850_000, 10_000)
)
def resnet56(num_classes: int = 10, shortcut: str = "A", **options) -> ResNet:
    """ResNet-56 for CIFAR-10 (n=9), 0.85M parameters."""
    return cifar_resnet(
        56, num_classes, "resnet56", shortcut=shortcut, **options
    )


@register(
    input_size=(3, 32, 32),
    num_classes=10,
    reference=_table6(1_700_000, 100_000),
)
def resnet110(num_classes: int = 10, shortcut: str = "A", **options) -> ResNet:
    """ResNet-110 for CIFAR-10 (n=18), 1.7M parameters."""
    return cifar_resnet(
        110, num_classes, "resnet110", shortcut=shortcut, **options
    )


@register(
    input_size=(3, 32, 32),
    num_classes=10,
    reference=_table6(19_400_000, 100_000),
)
def resnet1202(
    num_classes: int = 10, shortcut: str = "A", **options
) -> ResNet:
    """ResNet-1202 for CIFAR-10 (n=200), 19.4M parameters: the paper's
    overfitting example.
    """
    return cifar_resnet(
        1202, num_classes, "resnet1202", shortcut=shortcut, **options
    )


# --- CIFAR adaptations of the ImageNet networks (not in the paper)
# ------------------------------------------


def _cifar_adaptation(depth: int) -> Reference:
    block, _ = IMAGENET_LAYERS[depth]
    features = IMAGENET_WIDTHS[-1] * block.expansion
    # the stem's 7x7 kernels over 3 channels become 3x3
    stem = IMAGENET_WIDTHS[0] * 3 * (7 * 7 - 3 * 3)
    head = (features + 1) * (1000 - 10)  # 10 classes instead of 1000
    return Reference(
        "torchvision",
        builder=f"torchvision.models.resnet{depth}",
        difference=-(stem + head),
        why=f"CIFAR stem: a 3x3 instead of a 7x7 first convolution "
        f"(-{stem:,}), and a 10-class "
        f"instead of a 1000-class classifier (-{head:,}); the stages are "
        "the same",
    )


@register(
    input_size=(3, 32, 32), num_classes=10, reference=_cifar_adaptation(18)
)
def resnet18_cifar(num_classes: int = 10, **options) -> ResNet:
    """ResNet-18's stages behind a 3x3 stride-1 stem without max pooling:
    32, 16, 8, 4 pixels.
    """
    return imagenet_resnet(
        18, num_classes, "resnet18_cifar", stem="cifar", **options
    )


@register(
    input_size=(3, 32, 32), num_classes=10, reference=_cifar_adaptation(34)
)
def resnet34_cifar(num_classes: int = 10, **options) -> ResNet:
    """ResNet-34's stages behind a 3x3 stride-1 stem without max pooling."""
    return imagenet_resnet(
        34, num_classes, "resnet34_cifar", stem="cifar", **options
    )


@register(
    input_size=(3, 32, 32), num_classes=10, reference=_cifar_adaptation(50)
)
def resnet50_cifar(num_classes: int = 10, **options) -> ResNet:
    """ResNet-50's stages behind a 3x3 stride-1 stem without max pooling."""
    return imagenet_resnet(
        50, num_classes, "resnet50_cifar", stem="cifar", **options
    )
