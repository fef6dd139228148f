"""DenseNet: every layer sees the feature maps of all layers before it.

Paper: G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger, "Densely
Connected Convolutional Networks", CVPR 2017 (arXiv:1608.06993).

Inside a dense block, layer l receives the concatenation of the block's input
and the outputs of layers 1..l-1, x_l = H_l([x_0, x_1, ..., x_{l-1}]) (the
paper's Eq. 2), and adds ``growth_rate`` (k) new maps to it. Here each
:class:`DenseLayer` returns ``cat([x, H(x)])``, so stacking layers builds that
concatenation one step at a time. The pieces:

- H_l (Sec. 3, "Composite function"): BN-ReLU-Conv(3x3, k maps).
- Bottleneck "B": BN-ReLU-Conv(1x1, 4k maps) before that 3x3 convolution.
- Transition layers between blocks: BN-ReLU-Conv(1x1)-AvgPool(2x2). With
  compression "C" the 1x1 conv keeps floor(theta * m) of the m maps, theta =
  0.5.
- The end: BN-ReLU, global average pooling, one linear classifier.

Networks:

- CIFAR (Sec. 3, "Implementation Details", and Table 2), 3x32x32 inputs: a 3x3
  conv with 16 maps (2k for DenseNet-BC), three dense blocks with the same
  number of layers on 32x32, 16x16 and 8x8 grids. Depth L counts the
  convolutions and the classifier: (L - 4) / 3 layers per block, or (L - 4) / 6
  for BC, whose layers hold two convolutions each. ``densenet40_k12`` (1.0M
  parameters), ``densenet100_k12`` (7.0M), ``densenet_bc100_k12`` (0.8M),
  ``densenet_bc250_k24`` (15.3M), ``densenet_bc190_k40`` (25.6M).
- ImageNet (Table 1), 3x224x224 inputs, all DenseNet-BC: a 7x7/2 conv with 2k
  maps and a 3x3/2 max pool, then four blocks on 56x56, 28x28, 14x14 and 7x7
  grids. ``densenet121`` (k=32; 6, 12, 24, 16 layers), ``densenet169`` (6, 12,
  32, 32), ``densenet201`` (6, 12, 48, 32), ``densenet161`` (k=48; 6, 12, 36,
  24). Parameter counts equal torchvision's, which also uses the same order of
  the concatenated maps, so torchvision's weights load into these models one to
  one.
- ``densenet121_cifar``: DenseNet-121's four blocks on CIFAR, with the CIFAR
  networks' stem (one 3x3/1 conv with 2k = 64 maps, no BN-ReLU, no max pool),
  so the grids are 32, 16, 8 and 4. Not in the paper.

Where this code departs from the paper:
- Convolutions have no bias (the paper's Torch code gives them one). Every
  convolution except the last transition feeds a BatchNorm, whose shift makes a
  bias redundant; this is also what torchvision does. The CIFAR counts still
  round to the paper's Table 2 figures.
- ``drop_rate`` (default 0) puts dropout after every convolution but the first,
  as the paper did on C10/C100 without data augmentation (rate 0.2).
  torchvision drops only after each 3x3 conv; the parameters are the same.
- Initialisation: He normal (fan-out) for convolutions, as the paper's Torch
  code; BatchNorm weights 1, biases 0; PyTorch's default for the classifier
  with a zero bias.
- ``memory_efficient=True`` (off by default) is the idea of Pleiss et al. 2017,
  "Memory-Efficient Implementation of DenseNets", done as torchvision does:
  each dense layer's concatenation and first BN-ReLU-Conv run under
  ``torch.utils.checkpoint`` and are recomputed in the backward pass, so the
  block keeps only the k new maps of each layer instead of a fresh copy of the
  whole concatenation per layer. Same outputs, gradients and parameters; unlike
  torchvision, the recomputation leaves BatchNorm's running statistics alone
  (they are updated once per step, as in the naive network).

Helpers for the chapter: :func:`saved_bytes` (what autograd keeps for the
backward pass) and :func:`source_weights` (the paper's Fig. 5, feature reuse).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from . import Reference, register
from .layers import expect_input


def bn_relu_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    drop_rate: float = 0.0,
) -> nn.Sequential:
    """BN-ReLU-Conv, the pre-activation order of the paper's composite
    function (plus dropout if asked).
    """
    layers: list[nn.Module] = [
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=False,
        ),
    ]
    if drop_rate > 0:
        layers.append(nn.Dropout(drop_rate))
    return nn.Sequential(*layers)


class DenseLayer(nn.Module):
    """H_l: adds ``growth_rate`` maps to its input and returns both, ``cat([x,
    H(x)])``.

    With ``bottleneck`` (DenseNet-B) a 1x1 convolution first reduces the m
    input maps to 4k, so the 3x3 convolution costs the same however many maps
    the layer sees. With ``memory_efficient`` the concatenation and the first
    BN-ReLU-Conv are recomputed in the backward pass instead of stored (see
    :meth:`new_features`, which :class:`DenseBlock` calls with the list of
    earlier maps).
    """

    def __init__(
        self,
        in_channels: int,
        growth_rate: int,
        bottleneck: bool,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        width = 4 * growth_rate if bottleneck else in_channels
        self.bottleneck = (
            bn_relu_conv(in_channels, width, 1, drop_rate)
            if bottleneck
            else nn.Identity()
        )
        self.conv = bn_relu_conv(width, growth_rate, 3, drop_rate)
        self.out_channels = in_channels + growth_rate
        self.memory_efficient = memory_efficient

    def _first(self, *features: torch.Tensor) -> torch.Tensor:
        # cat([x_0, ..., x_{l-1}]) and the first BN-ReLU-Conv: the 1x1
        # bottleneck, or the 3x3 conv without one. N x m x H x W, a new tensor
        # of all m maps
        x = torch.cat(features, dim=1)
        return self.bottleneck(x) if self._has_bottleneck else self.conv(x)

    @property
    def _has_bottleneck(self) -> bool:
        return not isinstance(self.bottleneck, nn.Identity)

    @contextlib.contextmanager
    def _frozen_statistics(self) -> Iterator[None]:
        """During the recomputation, BatchNorm normalises as before but must
        not update its running statistics again.
        """
        norms = [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]
        saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
        for m in norms:
            # running = (1 - 0) * running + 0 * batch: unchanged
            m.momentum = 0.0
        try:
            yield
        finally:
            for m, (momentum, tracked) in zip(norms, saved):
                m.momentum = momentum
                m.num_batches_tracked.copy_(tracked)

    def new_features(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """H_l([x_0, ..., x_{l-1}]): the k new maps, N x k x H x W, from the
        list of earlier maps.
        """
        if (
            self.memory_efficient
            and torch.is_grad_enabled()
            and any(f.requires_grad for f in features)
        ):
            # Keep only the inputs (maps that exist anyway); recompute
            # cat-BN-ReLU-Conv in the backward pass.
            first = checkpoint(
                self._first,
                *features,
                use_reentrant=False,
                context_fn=lambda: (
                    contextlib.nullcontext(),
                    self._frozen_statistics(),
                ),
            )
        else:
            first = self._first(*features)
        return self.conv(first) if self._has_bottleneck else first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The input comes first, so the maps stay in the order of the paper's
        # [x_0, x_1, ..., x_l].
        return torch.cat([x, self.new_features([x])], dim=1)


class DenseBlock(nn.Sequential):
    """``num_layers`` dense layers in a row: m input maps become m +
    num_layers * k, on the same grid.
    """

    def __init__(
        self,
        in_channels: int,
        num_layers: int,
        growth_rate: int,
        bottleneck: bool,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
    ) -> None:
        layers = [
            DenseLayer(
                in_channels + i * growth_rate,
                growth_rate,
                bottleneck,
                drop_rate,
                memory_efficient,
            )
            for i in range(num_layers)
        ]
        super().__init__(*layers)
        self.out_channels = in_channels + num_layers * growth_rate
        self.memory_efficient = memory_efficient

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.memory_efficient:
            # each layer concatenates: a new, wider copy of all maps per layer
            return super().forward(x)
        # N x m x H x W, then N x k x H x W per layer, each stored once
        features = [x]
        for layer in self:
            features.append(layer.new_features(features))
        return torch.cat(features, dim=1)  # N x (m + num_layers * k) x H x W


class Transition(nn.Sequential):
    """Between two blocks: BN-ReLU-Conv(1x1) to ``out_channels`` maps, then
    2x2 average pooling halves the grid.
    """

    def __init__(
        self, in_channels: int, out_channels: int, drop_rate: float = 0.0
    ) -> None:
        super().__init__(
            bn_relu_conv(in_channels, out_channels, 1, drop_rate),
            nn.AvgPool2d(2),
        )
        self.out_channels = out_channels


class DenseNet(nn.Module):
    """A stem, dense blocks with transitions between them, and a
    BN-ReLU-pool-linear head.

    Args:
        block_layers: dense layers in each block, e.g. (6, 12, 24, 16) for
        DenseNet-121.
        growth_rate: k, the maps each dense layer adds.
        stem_channels: maps of the first convolution (16 or 2k on CIFAR, 2k on
        ImageNet).
        bottleneck: DenseNet-B, a 1x1 conv to 4k maps before each 3x3 conv.
        compression: theta in (0, 1]; a transition keeps floor(theta * m) of
        its m maps (C: 0.5).
        imagenet_stem: a 7x7/2 conv and a 3x3/2 max pool (grid / 4) instead of
        one 3x3/1 conv.
        num_classes, in_channels: output classes and input channels.
        drop_rate: dropout after every convolution but the first (the paper:
        0.2 without augmentation).
        memory_efficient: recompute each dense layer's concatenation and first
        BN-ReLU-Conv in the
            backward pass instead of storing them (Pleiss et al. 2017): less
            memory, more time.
        name: the registered name, used in error messages.
    """

    def __init__(
        self,
        block_layers: Sequence[int],
        growth_rate: int,
        stem_channels: int,
        bottleneck: bool,
        compression: float,
        imagenet_stem: bool,
        num_classes: int,
        in_channels: int = 3,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
        name: str = "densenet",
    ) -> None:
        super().__init__()
        if not 0.0 < compression <= 1.0:
            raise ValueError(
                f"compression (theta) must be in (0, 1], got "
                f"{compression}; DenseNet-C uses 0.5."
            )
        if imagenet_stem:
            stem = nn.Sequential(
                nn.Conv2d(
                    in_channels,
                    stem_channels,
                    7,
                    stride=2,
                    padding=3,
                    bias=False,
                ),
                nn.BatchNorm2d(stem_channels),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            # No BN-ReLU here: the first dense layer starts with its own
            # BN-ReLU.
            stem = nn.Conv2d(
                in_channels, stem_channels, 3, padding=1, bias=False
            )

        # ImageNet, DenseNet-121: stem N x 64 x 56 x 56, block1 N x 256 x 56 x
        # 56, transition1 N x 128 x 28 x 28, block2 N x 512 x 28 x 28,
        # transition2 N x 256 x 14 x 14, block3 N x 1024 x 14 x 14, transition3
        # N x 512 x 7 x 7, block4 N x 1024 x 7 x 7. CIFAR, DenseNet-BC-100
        # (k=12): stem N x 24 x 32 x 32, block1 N x 216 x 32 x 32, transition1
        # N x 108 x 16 x 16, block2 N x 300 x 16 x 16, transition2 N x 150 x 8
        # x 8, block3 N x 342 x 8 x 8.
        stages: OrderedDict[str, nn.Module] = OrderedDict(stem=stem)
        channels = stem_channels
        # maps at the end of each dense block
        self.block_channels: list[int] = []
        for i, num_layers in enumerate(block_layers, start=1):
            block = DenseBlock(
                channels,
                num_layers,
                growth_rate,
                bottleneck,
                drop_rate,
                memory_efficient,
            )
            stages[f"block{i}"] = block
            channels = block.out_channels
            self.block_channels.append(channels)
            if i < len(block_layers):
                transition = Transition(
                    channels, int(compression * channels), drop_rate
                )
                stages[f"transition{i}"] = transition
                channels = transition.out_channels
        stages["norm"] = nn.BatchNorm2d(channels)
        stages["relu"] = nn.ReLU(inplace=True)
        self.features = nn.Sequential(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

        self.name = name
        self.in_channels = in_channels
        self.num_features = channels
        # Each transition halves the grid once; the ImageNet stem divides it by
        # 4 before the first block.
        self.min_size = (4 if imagenet_stem else 1) * 2 ** (
            len(block_layers) - 1
        )

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode="fan_out", nonlinearity="relu"
                )
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's maps after the final BN-ReLU, e.g. N x 1024 x 7
        x 7 for DenseNet-121.
        """
        expect_input(x, self.name, self.in_channels, min_size=self.min_size)
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        # N x num_features -> N x num_classes
        return self.classifier(torch.flatten(self.pool(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def cifar_densenet(
    depth: int,
    growth_rate: int,
    bottleneck: bool,
    compression: float,
    num_classes: int = 10,
    name: str | None = None,
    **kwargs,
) -> DenseNet:
    """A three-block CIFAR DenseNet of ``depth`` layers (Sec. 3,
    "Implementation Details").

    DenseNet is ``bottleneck=False, compression=1``; DenseNet-BC is
    ``bottleneck=True, compression=0.5``; the other two combinations are the
    paper's DenseNet-B and DenseNet-C. Extra keyword arguments (``drop_rate``,
    ``memory_efficient``, ``in_channels``) go to :class:`DenseNet`.
    """
    # Depth counts the first conv, the two transition convs and the classifier
    # (4), plus one conv per dense layer, or two with the bottleneck.
    convs_per_layer = 2 if bottleneck else 1
    if depth < 4 or (depth - 4) % (3 * convs_per_layer):
        raise ValueError(
            f"a CIFAR DenseNet{'-B' if bottleneck else ''} needs depth = 4 + "
            f"{3 * convs_per_layer} n "
            f"(three blocks of n layers), got depth={depth}; e.g. "
            f"{4 + 3 * convs_per_layer * 12}."
        )
    per_block = (depth - 4) // (3 * convs_per_layer)
    # 2k for DenseNet-BC, else 16
    stem_channels = 2 * growth_rate if bottleneck and compression < 1 else 16
    variant = ("b" if bottleneck else "") + ("c" if compression < 1 else "")
    name = (
        name
        or f"densenet{'_' + variant if variant else ''}{depth}_k{growth_rate}"
    )
    return DenseNet(
        (per_block,) * 3,
        growth_rate,
        stem_channels,
        bottleneck,
        compression,
        False,
        num_classes,
        name=name,
        **kwargs,
    )


def imagenet_densenet(
    block_layers: Sequence[int],
    growth_rate: int,
    num_classes: int,
    name: str,
    imagenet_stem: bool = True,
    **kwargs,
) -> DenseNet:
    """A four-block DenseNet-BC of Table 1: 2k stem maps, bottlenecks,
    compression 0.5.
    """
    return DenseNet(
        block_layers,
        growth_rate,
        2 * growth_rate,
        True,
        0.5,
        imagenet_stem,
        num_classes,
        name=name,
        **kwargs,
    )


def saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes that autograd keeps from ``model(x)``'s forward pass for the
    backward pass.

    Every tensor saved for backward passes through
    ``torch.autograd.graph.saved_tensors_hooks``; tensors that share memory (a
    map saved by a BatchNorm and, after an in-place ReLU, by the next
    convolution) are counted once, by their storage. Parameters are left out:
    they exist whether or not anything is saved. The count is exact and the
    same on every device, unlike a peak that depends on the allocator.
    """
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    return sum(storages.values())


def source_weights(
    block: DenseBlock, next_layer: nn.Module | None = None
) -> torch.Tensor:
    """The paper's Fig. 5 for one dense block: how much each layer draws on
    each earlier one.

    Row l (from 0) is dense layer l + 1 of the block; a last row is
    ``next_layer`` (the transition's convolution or the classifier) if given.
    Column s is the source: 0 the block's input, s >= 1 the k maps of layer s.
    An entry is the mean absolute weight of the row's first convolution (or
    linear layer) over the input channels that came from that source; sources a
    row cannot see are NaN. Returns a (layers [+ 1]) x (layers + 1) tensor.
    """
    growth_rate = block[0].out_channels - _first_conv(block[0]).in_channels
    in_channels = _first_conv(block[0]).in_channels
    rows: list[nn.Module] = [_first_conv(layer) for layer in block]
    if next_layer is not None:
        rows.append(
            _first_conv(next_layer)
            if not isinstance(next_layer, nn.Linear)
            else next_layer
        )
    heat = torch.full((len(rows), len(block) + 1), float("nan"))
    for row, module in enumerate(rows):
        # N x C (linear) or out x C x kh x kw (conv): the mean |w| per input
        # channel.
        per_channel = (
            module.weight.detach().abs().transpose(0, 1).flatten(1).mean(1)
        )
        heat[row, 0] = per_channel[:in_channels].mean()
        for source in range(1, row + 1):
            start = in_channels + (source - 1) * growth_rate
            heat[row, source] = per_channel[start : start + growth_rate].mean()
    return heat


def _first_conv(module: nn.Module) -> nn.Conv2d:
    return next(m for m in module.modules() if isinstance(m, nn.Conv2d))


def _table2(params: int) -> Reference:
    """A CIFAR network's parameter count as printed in the paper's Table 2
    (in millions, one decimal).
    """
    return Reference(
        "Huang et al. 2017, Table 2", params=params, rounded_to=100_000
    )


def _torchvision(name: str) -> Reference:
    return Reference("torchvision", builder=f"torchvision.models.{name}")


@register(reference=_torchvision("densenet121"))
def densenet121(num_classes: int = 1000, **kwargs) -> DenseNet:
    """DenseNet-121 (k=32; 6, 12, 24, 16 layers); options: ``drop_rate``,
    ``in_channels``.
    """
    return imagenet_densenet(
        (6, 12, 24, 16), 32, num_classes, "densenet121", **kwargs
    )


@register(reference=_torchvision("densenet169"))
def densenet169(num_classes: int = 1000, **kwargs) -> DenseNet:
    """DenseNet-169 (k=32; 6, 12, 32, 32 layers); options: ``drop_rate``,
    ``in_channels``.
    """
    return imagenet_densenet(
        (6, 12, 32, 32), 32, num_classes, "densenet169", **kwargs
    )


@register(reference=_torchvision("densenet201"))
def densenet201(num_classes: int = 1000, **kwargs) -> DenseNet:
    """DenseNet-201 (k=32; 6, 12, 48, 32 layers); options: ``drop_rate``,
    ``in_channels``.
    """
    return imagenet_densenet(
        (6, 12, 48, 32), 32, num_classes, "densenet201", **kwargs
    )


@register(reference=_torchvision("densenet161"))
def densenet161(num_classes: int = 1000, **kwargs) -> DenseNet:
    """DenseNet-161 (k=48; 6, 12, 36, 24 layers); options: ``drop_rate``,
    ``in_channels``.
    """
    return imagenet_densenet(
        (6, 12, 36, 24), 48, num_classes, "densenet161", **kwargs
    )


@register(input_size=(3, 32, 32), num_classes=10, reference=_table2(1_000_000))
def densenet40_k12(num_classes: int = 10, **kwargs) -> DenseNet:
    """DenseNet (L=40, k=12) for CIFAR: three blocks of 12 layers; options:
    ``drop_rate``, ``in_channels``.
    """
    return cifar_densenet(
        40, 12, False, 1.0, num_classes, "densenet40_k12", **kwargs
    )


@register(input_size=(3, 32, 32), num_classes=10, reference=_table2(7_000_000))
def densenet100_k12(num_classes: int = 10, **kwargs) -> DenseNet:
    """DenseNet (L=100, k=12) for CIFAR: three blocks of 32 layers; options:
    ``drop_rate``, ``in_channels``.
    """
    return cifar_densenet(
        100, 12, False, 1.0, num_classes, "densenet100_k12", **kwargs
    )


@register(input_size=(3, 32, 32), num_classes=10, reference=_table2(800_000))
def densenet_bc100_k12(num_classes: int = 10, **kwargs) -> DenseNet:
    """DenseNet-BC (L=100, k=12) for CIFAR: three blocks of 16 layers;
    options: ``drop_rate``, ``in_channels``.
    """
    return cifar_densenet(
        100, 12, True, 0.5, num_classes, "densenet_bc100_k12", **kwargs
    )


@register(
    input_size=(3, 32, 32), num_classes=10, reference=_table2(15_300_000)
)
def densenet_bc250_k24(num_classes: int = 10, **kwargs) -> DenseNet:
    """DenseNet-BC (L=250, k=24) for CIFAR: three blocks of 41 layers;
    options: ``drop_rate``, ``in_channels``.
    """
    return cifar_densenet(
        250, 24, True, 0.5, num_classes, "densenet_bc250_k24", **kwargs
    )


@register(
    input_size=(3, 32, 32), num_classes=10, reference=_table2(25_600_000)
)
def densenet_bc190_k40(num_classes: int = 10, **kwargs) -> DenseNet:
    """DenseNet-BC (L=190, k=40) for CIFAR: three blocks of 31 layers;
    options: ``drop_rate``, ``in_channels``.
    """
    return cifar_densenet(
        190, 40, True, 0.5, num_classes, "densenet_bc190_k40", **kwargs
    )


# torchvision's DenseNet-121 for 1000 classes, against ours for 10 classes with
# the paper's CIFAR stem: the stem conv loses 64 x 3 x (7x7 - 3x3) weights, the
# stem's BatchNorm (2 x 64) goes, and the classifier loses (1024 + 1) x (1000 -
# 10).
_CIFAR_STEM_AND_HEAD = (
    -64 * 3 * (7 * 7 - 3 * 3) - 2 * 64 - (1024 + 1) * (1000 - 10)
)


@register(
    input_size=(3, 32, 32),
    num_classes=10,
    reference=Reference(
        "torchvision",
        builder="torchvision.models.densenet121",
        difference=_CIFAR_STEM_AND_HEAD,
        why="a 3x3 first conv without BatchNorm instead of the 7x7 one, and "
        "10 classes instead of 1000",
    ),
)
def densenet121_cifar(num_classes: int = 10, **kwargs) -> DenseNet:
    """DenseNet-121's blocks behind the paper's CIFAR stem (one 3x3/1 conv,
    64 maps); grids 32, 16, 8, 4.
    """
    return imagenet_densenet(
        (6, 12, 24, 16),
        32,
        num_classes,
        "densenet121_cifar",
        imagenet_stem=False,
        **kwargs,
    )
