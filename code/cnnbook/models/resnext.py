"""ResNeXt: aggregated residual transformations.

Paper: S. Xie, R. Girshick, P. Dollár, Z. Tu, K. He, "Aggregated Residual
Transformations for Deep Neural Networks", CVPR 2017.

A ResNeXt block replaces the bottleneck's one transformation by the sum of C
transformations of the same shape (C is the *cardinality*), F(x) = sum_{i=1}^C
T_i(x) (Eq. 3), each T_i a small bottleneck: 1x1 down to d channels, 3x3, 1x1
back up. Fig. 3 draws three forms of the same block:

- form a, "split-transform-merge": C parallel paths, summed
  (:class:`ParallelPaths`);
- form b, "early concatenation": C paths of a 1x1 and a 3x3, concatenated, then
  one 1x1 (:class:`EarlyConcatenation`);
- form c, grouped convolution: one 1x1 to C·d channels, a 3x3 convolution in C
  groups, one 1x1 (:func:`grouped_convolution`), the form the paper trains.

They are the same function. (a) = (b): the sum of C 1x1 convolutions of C
inputs is one 1x1 convolution of the inputs concatenated. (b) = (c): C
convolutions on disjoint groups of channels, concatenated, are one grouped
convolution; and the C paths' first 1x1 convolutions are one 1x1 convolution to
C·d channels. BatchNorm and ReLU work on each channel alone, so they split the
same way. :func:`copy_weights` moves the weights from any form to any other;
the tests check that the outputs agree.

The networks are the ResNets of ``resnet.py`` with :class:`ResNeXtBlock`:

- ``resnext50_32x4d`` / ``resnext101_32x8d``: the stages of ResNet-50 / -101
  (Table 1 of the paper), C = 32 paths of d = 4 / 8 channels in the first stage
  (grouped width 128 / 256), doubling with each stage; output widths 256, 512,
  1024, 2048.
- ``resnext29_8x64d`` / ``resnext29_16x64d``: the CIFAR networks of Sec. 5.3, a
  3x3 convolution with 64 channels, three stages of three blocks with output
  widths 256, 512, 1024, d = 64 in the first stage, C = 8 / 16; 34.4M and 68.1M
  parameters (Table 7).
- ``resnext_cifar``: the same CIFAR design with its sizes as arguments named as
  in the paper, ``cardinality`` (C, the number of paths) and
  ``bottleneck_width`` (d, the channels of each path in the first stage), and
  ``depth`` (9n + 2) and ``base_channels`` (the stem's width, a quarter of the
  first stage's output) to make it small enough for a CPU. Its defaults,
  ResNeXt-11 (C = 32, d = 2, 32 base channels), are the paper's 32x4d template
  at half the width, with one block per stage (not a network of the paper).

As in the paper (Sec. 4) and its code: BatchNorm after each convolution, the
ReLU of the block after the addition, projection shortcuts (option B) where the
shape changes, and the stride 2 of a stage in the 3x3 convolution of its first
block (``stride_in="3x3"``; ``"1x1"`` moves it as in ResNet's paper).

Where this code departs from the paper, or chooses where it is silent:
- In form a the BatchNorm after the last 1x1 convolutions acts on the sum of
  the paths, where form c has it: one BatchNorm per path before the sum would
  be another function (each path would be normalised on its own).
- The paper's parameter counts (like those of He et al. 2016b) leave out
  BatchNorm's scales and shifts: ResNeXt-29 16x64d has 68,054,730 parameters
  without them (the paper's 68.1M) and 68,155,210 with them. The references
  declare that difference.
- Forms a and b compute the same thing as c with C times as many small layers,
  and are much slower; they are here to read and to compare.
- ``resnext_cifar`` refuses a ``groups`` argument: in some code ``groups``
  means the number of paths, in other code the channels per path; the paper's C
  and d say which is which.
"""

from __future__ import annotations

import torch
from torch import nn

from . import Reference, register
from .resnet import (
    IMAGENET_LAYERS,
    IMAGENET_WIDTHS,
    ResidualUnit,
    ResNet,
    bottleneck_transform,
    conv1x1,
)

FORMS = ("a", "b", "c")


def grouped_convolution(
    in_channels: int,
    width: int,
    out_channels: int,
    stride: int,
    cardinality: int,
    stride_in: str = "3x3",
) -> nn.Sequential:
    """Form c: 1x1 to ``width`` = C·d channels, 3x3 in C groups, 1x1 to
    ``out_channels`` (BN-ReLU between).
    """
    return bottleneck_transform(
        in_channels,
        width,
        out_channels,
        stride,
        groups=cardinality,
        stride_in=stride_in,
    )


class EarlyConcatenation(nn.Module):
    """Form b: C paths (1x1 to d, BN, ReLU, 3x3, BN, ReLU), concatenated,
    then one 1x1 to ``out_channels``.
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        out_channels: int,
        stride: int,
        cardinality: int,
        stride_in: str = "3x3",
    ) -> None:
        super().__init__()
        d = width // cardinality
        self.paths = nn.ModuleList(
            bottleneck_transform(
                in_channels, d, None, stride, stride_in=stride_in
            )
            for _ in range(cardinality)
        )
        self.conv3 = conv1x1(width, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # N x C·d x H x W before conv3
        return self.conv3(torch.cat([path(x) for path in self.paths], dim=1))

    def output_convs(self) -> list[nn.Conv2d]:
        return [self.conv3]


class ParallelPaths(nn.Module):
    """Form a: C complete bottlenecks (1x1 to d, 3x3, 1x1 to
    ``out_channels``), their outputs summed.
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        out_channels: int,
        stride: int,
        cardinality: int,
        stride_in: str = "3x3",
    ) -> None:
        super().__init__()
        d = width // cardinality
        self.paths = nn.ModuleList(
            bottleneck_transform(
                in_channels, d, out_channels, stride, stride_in=stride_in
            )
            for _ in range(cardinality)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Eq. 3: F(x) = sum_i T_i(x)
        return sum(path(x) for path in self.paths)

    def output_convs(self) -> list[nn.Conv2d]:
        return [path.conv3 for path in self.paths]


TRANSFORMS = {
    "a": ParallelPaths,
    "b": EarlyConcatenation,
    "c": grouped_convolution,
}


class ResNeXtBlock(ResidualUnit):
    """A bottleneck whose 3x3 convolution is split into ``cardinality`` groups,
    in the ``form`` a, b or c of Fig. 3.

    ``channels`` is the stage's base width (as a ResNet bottleneck's: the block
    outputs 4 x ``channels``); each of the C paths has ``d = channels *
    width_per_group / 64`` channels, so ``width_per_group`` is d in the first
    stage (the "4d" of "32x4d").
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        *,
        cardinality: int = 32,
        width_per_group: int = 4,
        form: str = "c",
        stride_in: str = "3x3",
        **options,
    ) -> None:
        if form not in TRANSFORMS:
            raise ValueError(
                f"form={form!r}: use 'a' (parallel paths), 'b' "
                "(early concatenation) or "
                "'c' (grouped convolution), the three forms of "
                "Xie et al. 2017, Fig. 3"
            )
        width = channels * width_per_group // 64 * cardinality
        out_channels = channels * self.expansion
        transform = TRANSFORMS[form](
            in_channels, width, out_channels, stride, cardinality, stride_in
        )
        super().__init__(
            transform, in_channels, out_channels, stride, **options
        )
        self.form = form


def grouped_state(transform: nn.Module) -> dict[str, torch.Tensor]:
    """The weights (and BatchNorm statistics) of a form a, b or c transform, as
    form c holds them.

    Path i owns slice i of every tensor: output channels i·d..(i+1)·d of conv1,
    conv2 and the BatchNorms, and input channels i·d..(i+1)·d of conv3.
    """
    # form c already is the grouped form
    if isinstance(transform, nn.Sequential):
        return dict(transform.state_dict())
    paths = [path.state_dict() for path in transform.paths]
    state = {}
    for key, value in paths[0].items():
        # BatchNorm's num_batches_tracked, the same in every path
        if value.dim() == 0:
            state[key] = value
        else:
            # conv3 concatenates along its input channels
            dim = 1 if key.startswith("conv3") else 0
            state[key] = torch.cat([path[key] for path in paths], dim=dim)
    if isinstance(transform, EarlyConcatenation):
        state["conv3.weight"] = transform.conv3.weight.detach()
    return state


def load_grouped_state(
    transform: nn.Module, state: dict[str, torch.Tensor]
) -> None:
    """Load form-c weights (see :func:`grouped_state`) into a transform of
    any form.
    """
    if isinstance(transform, nn.Sequential):
        transform.load_state_dict(state)
        return
    cardinality = len(transform.paths)
    for i, path in enumerate(transform.paths):
        own = {}
        for key in path.state_dict():
            value = state[key]
            # conv3 splits along its input channels
            dim = 1 if key.startswith("conv3") else 0
            own[key] = (
                value
                if value.dim() == 0
                else value.chunk(cardinality, dim=dim)[i]
            )
        path.load_state_dict(own)
    if isinstance(transform, EarlyConcatenation):
        transform.conv3.load_state_dict({"weight": state["conv3.weight"]})


def copy_weights(source: nn.Module, target: nn.Module) -> nn.Module:
    """Copy a ResNeXt block's or network's weights into the same block or
    network built in another form.

    Returns ``target``, which then computes the same function as ``source``.
    """

    def transforms(model: nn.Module) -> dict[str, nn.Module]:
        return {
            f"{name}.branch.0" if name else "branch.0": block.branch[0]
            for name, block in model.named_modules()
            if isinstance(block, ResNeXtBlock)
        }

    source_transforms, target_transforms = (
        transforms(source),
        transforms(target),
    )
    if list(source_transforms) != list(target_transforms):
        raise ValueError(
            "copy_weights needs the same ResNeXt block or "
            "network twice (in any forms); "
            f"got {len(source_transforms)} and "
            f"{len(target_transforms)} ResNeXt blocks"
        )

    # Everything outside the transforms (stem, shortcuts, the BatchNorm closing
    # each branch, classifier) has the same names and shapes in every form.
    def inside(key: str, transforms: dict[str, nn.Module]) -> bool:
        return any(key.startswith(name + ".") for name in transforms)

    outside = {
        k: v
        for k, v in source.state_dict().items()
        if not inside(k, source_transforms)
    }
    result = target.load_state_dict(outside, strict=False)
    if any(not inside(k, target_transforms) for k in result.missing_keys):
        raise ValueError(
            f"target has weights the source lacks: {result.missing_keys[:5]}"
        )
    for name, transform in source_transforms.items():
        load_grouped_state(target_transforms[name], grouped_state(transform))
    return target


def resnext(
    layers: tuple[int, ...],
    widths: tuple[int, ...],
    cardinality: int,
    width_per_group: int,
    num_classes: int,
    name: str,
    stem: str = "imagenet",
    **options,
) -> ResNet:
    """A ResNeXt: the ResNet of ``layers`` and ``widths`` built from
    :class:`ResNeXtBlock`; ``options`` go to it.
    """
    return ResNet(
        ResNeXtBlock,
        layers,
        widths,
        num_classes=num_classes,
        stem=stem,
        name=name,
        cardinality=cardinality,
        width_per_group=width_per_group,
        **options,
    )


@register(
    reference=Reference(
        "torchvision", builder="torchvision.models.resnext50_32x4d"
    )
)
def resnext50_32x4d(num_classes: int = 1000, **options) -> ResNet:
    """ResNeXt-50 (32x4d): ResNet-50's stages, 32 paths of 4 channels in the
    first stage (Table 1).
    """
    return resnext(
        IMAGENET_LAYERS[50][1],
        IMAGENET_WIDTHS,
        32,
        4,
        num_classes,
        "resnext50_32x4d",
        **options,
    )


@register(
    reference=Reference(
        "torchvision", builder="torchvision.models.resnext101_32x8d"
    )
)
def resnext101_32x8d(num_classes: int = 1000, **options) -> ResNet:
    """ResNeXt-101 (32x8d): ResNet-101's stages, 32 paths of 8 channels in
    the first stage.
    """
    return resnext(
        IMAGENET_LAYERS[101][1],
        IMAGENET_WIDTHS,
        32,
        8,
        num_classes,
        "resnext101_32x8d",
        **options,
    )


# Sec. 5.3: 3 stages of 3 blocks, outputs 256, 512, 1024
CIFAR_LAYERS, CIFAR_WIDTHS = (3, 3, 3), (64, 128, 256)


def _table7(params: int, batchnorm_params: int) -> Reference:
    """A count of the paper's Table 7, which leaves out BatchNorm
    (``batchnorm_params`` of ours).
    """
    return Reference(
        "Xie et al. 2017, Table 7",
        params=params,
        rounded_to=100_000,
        difference=batchnorm_params,
        why=f"the paper counts no BatchNorm scales and shifts "
        f"({batchnorm_params:,} of ours)",
    )


@register(
    input_size=(3, 32, 32),
    num_classes=10,
    reference=_table7(34_400_000, 57_472),
)
def resnext29_8x64d(num_classes: int = 10, **options) -> ResNet:
    """ResNeXt-29 (8x64d) for CIFAR: 8 paths of 64 channels in the first
    stage, 34.4M parameters.
    """
    return resnext(
        CIFAR_LAYERS,
        CIFAR_WIDTHS,
        8,
        64,
        num_classes,
        "resnext29_8x64d",
        stem="cifar",
        **options,
    )


@register(
    input_size=(3, 32, 32),
    num_classes=10,
    reference=_table7(68_100_000, 100_480),
)
def resnext29_16x64d(num_classes: int = 10, **options) -> ResNet:
    """ResNeXt-29 (16x64d) for CIFAR: 16 paths of 64 channels in the first
    stage, 68.1M parameters.
    """
    return resnext(
        CIFAR_LAYERS,
        CIFAR_WIDTHS,
        16,
        64,
        num_classes,
        "resnext29_16x64d",
        stem="cifar",
        **options,
    )


def cifar_resnext(
    depth: int,
    cardinality: int,
    bottleneck_width: int,
    num_classes: int,
    name: str,
    base_channels: int = 64,
    **options,
) -> ResNet:
    """A CIFAR ResNeXt of Sec. 5.3: a 3x3 stem, three stages of (depth - 2) / 9
    blocks, C paths of d channels.

    The stages output 4, 8 and 16 x ``base_channels`` channels at 32, 16 and 8
    pixels (the paper: 64 base channels, outputs 256, 512, 1024); each path has
    ``bottleneck_width`` = d channels in the first stage, 2d and 4d in the next
    (the grouped width C·d doubles with the output, as in Table 1).
    """
    if "groups" in options:
        raise ValueError(
            "groups= is ambiguous (the number of paths in some "
            "code, the channels per path in "
            "other code): give cardinality= (C, the number of "
            "paths) and bottleneck_width= "
            "(d, the channels of each path in the first stage), "
            "as Xie et al. 2017 name them"
        )
    n, rest = divmod(depth - 2, 9)
    if rest or n < 1:
        raise ValueError(
            f"a CIFAR ResNeXt has 9n+2 layers (three stages of n "
            "bottlenecks, e.g. 11 or 29); "
            f"got depth={depth}"
        )
    for label, value in (
        ("cardinality", cardinality),
        ("bottleneck_width", bottleneck_width),
        ("base_channels", base_channels),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{label}={value!r} must be a positive whole number"
            )
    # ResNeXtBlock's width_per_group is d relative to 64 base channels
    # (torchvision's convention).
    width_per_group, rest = divmod(bottleneck_width * 64, base_channels)
    if rest:
        raise ValueError(
            f"bottleneck_width={bottleneck_width} with "
            f"base_channels={base_channels}: "
            "bottleneck_width x 64 must be a multiple of "
            "base_channels"
        )
    widths = (base_channels, 2 * base_channels, 4 * base_channels)
    return resnext(
        (n, n, n),
        widths,
        cardinality,
        width_per_group,
        num_classes,
        name,
        stem="cifar",
        **options,
    )


@register(input_size=(3, 32, 32), num_classes=10)
def resnext_cifar(
    num_classes: int = 10,
    depth: int = 11,
    cardinality: int = 32,
    bottleneck_width: int = 2,
    base_channels: int = 32,
    **options,
) -> ResNet:
    """A CIFAR ResNeXt of any size: ``depth`` = 9n+2, ``cardinality`` C,
    ``bottleneck_width`` d, ``base_channels``.

    The defaults are a CPU-sized ResNeXt-11 (32 x 2d, half the paper's widths,
    one block per stage); ``depth=29, cardinality=8, bottleneck_width=64,
    base_channels=64`` is ``resnext29_8x64d``.
    """
    return cifar_resnext(
        depth,
        cardinality,
        bottleneck_width,
        num_classes,
        "resnext_cifar",
        base_channels,
        **options,
    )
