"""How big is a network: parameters, multiply-adds and a per-layer summary.

    >>> from cnnbook import summary
    >>> summary.count_params(models.create("lenet5"))      # 60000
    >>> summary.count_macs(models.create("lenet5"), (1, 32, 32))
    >>> summary.layer_summary("vgg16")                      # torchinfo's table
    >>> summary.param_table(models.create("vgg16"))  # where the parameters sit

``count_macs`` counts multiply-accumulates (one multiply plus one add) of
convolutions and fully connected layers only, the convention of the papers
(AlexNet, VGG, ResNet all quote such numbers). Everything else is left out:
biases, BatchNorm, activations, pooling (including LeNet-5's trainable
subsampling S2/S4), additions of residual connections, concatenations and
LeNet-5's RBF output, whose distances are not a convolution or a linear layer.
These are small next to the convolutions in every network of the course.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torchinfo
from torch import nn
from tqdm.auto import tqdm

from . import models

__all__ = [
    "count_params",
    "count_macs",
    "layer_macs",
    "layer_summary",
    "output_shapes",
    "param_table",
    "model_table",
]


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    """The number of parameters of ``model`` (only those with ``requires_grad``
    unless ``trainable_only=False``).

    Buffers (BatchNorm's running statistics, LeNet-5's fixed RBF centres) are
    not parameters and are never counted.
    """
    return sum(
        p.numel()
        for p in model.parameters()
        if p.requires_grad or not trainable_only
    )


def layer_macs(
    module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
) -> int:
    """Multiply-adds of one call of ``module``, by :func:`count_macs`'s rule
    (0 for the layers it leaves out).
    """
    # a layer of the zoo that knows its own cost
    if hasattr(module, "multiply_adds"):
        return module.multiply_adds(inputs, output)
    if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
        # Each output element is a dot product over in_channels/groups maps
        # times the kernel window.
        kernel = module.weight[0].numel()  # (in_channels / groups) * kh * kw
        return output.numel() * kernel
    if isinstance(module, nn.modules.conv._ConvNd):
        # A transposed convolution scatters every *input* element over
        # out_channels/groups maps times the kernel window, so count from the
        # input's side.
        kernel = module.weight[0].numel()  # (out_channels / groups) * kh * kw
        return inputs[0].numel() * kernel
    if isinstance(module, nn.Linear):
        # in_features multiply-adds per output value
        return output.numel() * module.in_features
    return 0


def count_macs(
    model: nn.Module,
    input_size: tuple[int, int, int],
    *,
    device: torch.device | str | None = None,
) -> int:
    """Multiply-adds of one forward pass of ``model`` on ONE image of shape
    ``input_size`` (C, H, W).

    Counted with forward hooks on ``nn.Conv1d/2d/3d`` (grouped and depthwise
    ones too: output elements x in_channels/groups x kernel area),
    ``nn.ConvTranspose*d``, ``nn.Linear``, and any module with a method
    ``multiply_adds(inputs, output) -> int`` (such as LeNet-5's partially
    connected C3, which counts only its table's kernels); every other layer
    (BatchNorm, pooling, activations, LeNet-5's subsampling and RBF output,
    functional calls such as ``F.conv2d`` in a ``forward``) counts zero. A
    layer called twice counts twice. The model runs in eval mode (so auxiliary
    heads that only run in training are not counted) under ``torch.no_grad``;
    its training mode is restored afterwards. ``device`` defaults to the device
    of the model's parameters; a model built on the ``"meta"`` device is
    counted without computing anything.
    """
    if device is None:
        tensor = next(model.parameters(), None)
        tensor = tensor if tensor is not None else next(model.buffers(), None)
        device = tensor.device if tensor is not None else torch.device("cpu")
    total = 0

    def hook(
        module: nn.Module,
        inputs: tuple[torch.Tensor, ...],
        output: torch.Tensor,
    ) -> None:
        nonlocal total
        total += layer_macs(module, inputs, output)

    counted = (nn.modules.conv._ConvNd, nn.Linear)
    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, counted) or hasattr(m, "multiply_adds")
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def output_shapes(
    model: nn.Module, x: torch.Tensor, names: Iterable[str]
) -> tuple[dict[str, tuple[int, ...]], Any]:
    """The output shape of each named submodule when ``model`` runs on ``x``,
    and the model's output.

    ``names`` are paths as ``model.get_submodule`` takes them
    (``"features.pool1"``, ``"stem"``); a submodule that does not run is
    missing from the result. The per-stage shapes of a network in one call:
    what its tests check against the paper's tables.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [
        model.get_submodule(name).register_forward_hook(
            lambda module, inputs, out, name=name: shapes.__setitem__(
                name, tuple(out.shape)
            )
        )
        for name in names
    ]
    try:
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return shapes, out


def layer_summary(
    model: nn.Module | str,
    input_size: tuple[int, int, int] | None = None,
    *,
    depth: int = 3,
    **kwargs,
) -> torchinfo.ModelStatistics:
    """torchinfo's layer-by-layer table (output size, parameters,
    multiply-adds) for a batch of one image.

    ``model`` is a module or a registered name (then built with the paper's
    number of classes, and ``input_size`` defaults to the paper's). Extra
    keyword arguments go to ``torchinfo.summary``. The returned object prints
    as the table, so it is the last line of a notebook cell. A wrong input size
    raises the model's own ``ValueError`` (not torchinfo's wrapper). Note that
    torchinfo counts multiply-adds its own way (it includes, for example,
    BatchNorm), so its total can differ a little from :func:`count_macs`.
    """
    if isinstance(model, str):
        input_size = input_size or models.spec(model).input_size
        model = models.create(model)
    if input_size is None:
        raise ValueError(
            "layer_summary needs input_size=(channels, height, "
            "width) when given a module, not a name."
        )
    options = dict(
        col_names=("output_size", "num_params", "mult_adds"),
        depth=depth,
        verbose=0,
        row_settings=("var_names",),
    )
    options.update(kwargs)
    try:
        statistics = torchinfo.summary(
            model, input_size=(1, *input_size), **options
        )
    except RuntimeError as error:
        # torchinfo wraps whatever the forward pass raised in a RuntimeError;
        # the model's own message ("lenet5 expects 32x32 images, ...") is the
        # one that tells the reader what to fix.
        if isinstance(error.__cause__, ValueError):
            raise error.__cause__ from None
        raise
    # The exact count, with thousands separators like the parameters.
    # (torchinfo's automatic unit prints its enum's name on Python 3.11: "Total
    # mult-adds (Units.MEGABYTES): 0.33".)
    statistics.formatting.macs_units = torchinfo.enums.Units.NONE
    return statistics


def param_table(
    model: nn.Module, trainable_only: bool = True
) -> list[tuple[str, int]]:
    """Parameters per top-level child of ``model``, as ``(name, count)`` pairs
    in definition order.

    Shows where the parameters sit: for VGG-16, about 124M of its 138M in the
    classifier. Parameters held directly by ``model`` (not in a child) appear
    as ``("(own)", count)``; the counts add up to :func:`count_params`.
    """
    rows = [
        (name, count_params(child, trainable_only))
        for name, child in model.named_children()
    ]
    own = sum(
        p.numel()
        for p in model.parameters(recurse=False)
        if p.requires_grad or not trainable_only
    )
    return rows + [("(own)", own)] if own else rows


def _sizes(name: str, macs: bool) -> tuple[int, int | None]:
    """Parameters and multiply-adds of ``name`` at the paper's input size.

    The model is built and run on the ``meta`` device: shapes propagate but
    nothing is allocated or computed, so a big network like VGG-19 costs
    milliseconds (each op still costs some Python bookkeeping, which is what
    makes the 1000-layer nets slow). A model using an op without a meta
    implementation is counted on the CPU.
    """
    input_size = models.spec(name).input_size

    def count(device: str) -> tuple[int, int | None]:
        with torch.device(device):
            model = models.create(name)
        return count_params(model), count_macs(
            model, input_size, device=device
        ) if macs else None

    try:
        return count("meta")
    # Any failure on meta is retried for real; a genuine error surfaces there.
    except Exception:  # noqa: BLE001
        return count("cpu")


def model_table(
    names: list[str] | None = None,
    *,
    macs: bool = True,
    progress: bool = False,
) -> list[dict]:
    """One row per registered model (all of ``cnnbook.models.names()`` by
    default).

    Each row is a dict with ``name``, ``family``, ``input_size`` (C, H, W),
    ``num_classes``, ``params`` (trainable) and ``macs`` (:func:`count_macs` of
    one image at the paper's input size; ``None`` when ``macs=False``). The
    whole zoo takes a while on a CPU (the deepest nets, ResNet-1202 and
    Pre-ResNet-1001, run thousands of layers even on the meta device):
    ``progress=True`` shows a progress bar.
    """
    rows = []
    for name in tqdm(
        models.names() if names is None else names,
        desc="counting",
        disable=not progress,
        leave=False,
    ):
        entry = models.spec(name)
        params, mult_adds = _sizes(name, macs)
        rows.append(
            dict(
                name=name,
                family=entry.family,
                input_size=entry.input_size,
                num_classes=entry.num_classes,
                params=params,
                macs=mult_adds,
            )
        )
    return rows
