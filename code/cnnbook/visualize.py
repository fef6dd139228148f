"""Seeing what a network learned: the deconvnet, top patches, occlusion,
class activation maps, filter spectra.

Papers: M. D. Zeiler, R. Fergus, "Visualizing and Understanding Convolutional
Networks", ECCV 2014: the deconvnet (Sec. 2.1), the top-9 patches with their
projections (Fig. 2), the evolution of features during training (Fig. 4),
occlusion sensitivity (Sec. 4.2, Fig. 7) and layer-1 filters (Sec. 4.1,
Fig. 6). B. Zhou et al., "Learning Deep Features for Discriminative
Localization", CVPR 2016: class activation maps (Sec. 2).

    >>> from cnnbook import visualize as vis
    >>> layer = model.features.layer5
    >>> # 4 x 3 x 32 x 32:
    >>> proj = vis.deconvnet(model, x[:4], layer, channel=7, position="max")
    >>> vis.plot_top_patches(model, layer, val_images, channels=[0, 7, 9])
    >>> maps = vis.occlusion(model, x[0], target=y[0], window=8, stride=4,
    ...                      layer=layer)  # Fig. 7, with plot_occlusion
    >>> vis.plot_occlusion(x[0], maps, classes)
    >>> cam = vis.class_activation_map(nin, x, class_idx=y, size=(32, 32))

The deconvnet and the receptive fields work on a *plain chain*: the model's
``features`` (or the model itself) is an ``nn.Sequential``, possibly of
``nn.Sequential`` blocks, whose leaf modules run one after another. That is
ZFNet, AlexNet and LeNet-like networks; networks with branches (Inception,
residual blocks) are not chains. The leaves the deconvnet can undo are
``Conv2d``, ``ReLU``, ``MaxPool2d``, ``LocalResponseNorm``, ``Dropout`` and
``Identity``.

How the deconvnet departs from the paper:
- Unpooling adds the signals of pooling windows that share a maximum. With
  overlapping 3x3/2 pooling two windows often pick the same pixel;
  ``F.max_unpool2d`` would keep only one of them (it overwrites), while the
  sum is what the gradient of max pooling does, so the deconvnet stays equal
  to Captum's ``Deconvolution`` (the tests check this).
- Contrast normalisation (LRN) is skipped on the way down, as in the paper:
  it divides each activation by a positive factor set by its neighbours'
  energy (with AlexNet's constants, close to the constant 2^0.75), so the
  pattern keeps its shape. Captum differentiates through it, so the two
  agree only on networks without LRN.
- Biases are not subtracted: the paper's deconvnet uses the transposed
  filters alone.

Every function runs the model in eval mode without gradients, restores its
mode, and returns CPU tensors. Images are normalised as the loaders give
them; plots take a ``denormalize`` function (a ``DataBundle``'s) to show them.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from .plots import _figure, feature_maps

__all__ = [
    "layers_up_to",
    "deconvnet",
    "receptive_field",
    "receptive_field_patch",
    "top_activations",
    "plot_top_patches",
    "snapshot_maps",
    "plot_feature_evolution",
    "occlusion",
    "plot_occlusion",
    "class_activation_map",
    "filter_spectrum",
    "high_frequency_share",
    "filter_rms",
    "dead_filters",
    "plot_filter_spectra",
]

# Leaves the deconvnet can undo; the last three pass the signal down unchanged.
_INVERTIBLE = (
    nn.Conv2d,
    nn.ReLU,
    nn.MaxPool2d,
    nn.LocalResponseNorm,
    nn.Dropout,
    nn.Identity,
)


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[torch.device]:
    """Eval mode and no gradients inside; the model's mode restored after.
    Yields the model's device."""
    was_training = model.training
    param = next(model.parameters(), None)
    try:
        model.eval()
        with torch.no_grad():
            yield param.device if param is not None else torch.device("cpu")
    finally:
        model.train(was_training)


# ------------------------------------------------------ the chain of layers


def layers_up_to(model: nn.Module, layer: nn.Module) -> list[nn.Module]:
    """The leaf modules of the model's chain, from the input up to and
    including ``layer``.

    The chain is ``model.features`` if the model has one, else the model
    itself; it must be an ``nn.Sequential`` (of leaves or of ``nn.Sequential``
    blocks). ``layer`` is a leaf of it (``model.features[3]``) or a block
    (``model.features.layer5``: its last leaf).
    """
    chain = getattr(model, "features", model)
    blocks = [m for m in chain.modules() if list(m.children())]
    if not all(isinstance(m, nn.Sequential) for m in blocks):
        odd = sorted(
            {
                type(m).__name__
                for m in blocks
                if not isinstance(m, nn.Sequential)
            }
        )
        raise ValueError(
            "expected a plain chain: model.features (or the model) must be "
            "an nn.Sequential of layers or of nn.Sequential blocks, but it "
            f"holds {odd}; networks with branches have no single path to "
            "project back."
        )
    leaves = [m for m in chain.modules() if not list(m.children())]
    last = [m for m in layer.modules() if not list(m.children())][-1:]
    if not last or not any(m is last[0] for m in leaves):
        raise ValueError(
            f"layer {type(layer).__name__} is not part of the model's "
            "chain; pass e.g. model.features[3]."
        )
    return leaves[: next(i for i, m in enumerate(leaves) if m is last[0]) + 1]


# ---------------------------------------- the deconvnet (Sec. 2.1, Fig. 1)


def _select(
    maps: Tensor, channel: int, position: str | Tensor | None
) -> Tensor:
    """The deconvnet's input: ``maps`` with every activation but the chosen
    one(s) set to zero."""
    if not 0 <= channel < maps.shape[1]:
        raise ValueError(
            f"channel {channel} does not exist: the layer has "
            f"{maps.shape[1]} maps."
        )
    chosen = maps[:, channel]  # N x h x w
    if position is None:
        keep = torch.ones_like(chosen, dtype=torch.bool)
    else:
        if isinstance(position, str):
            if position != "max":
                raise ValueError(
                    "position must be None, 'max' or an N x 2 tensor of "
                    f"(row, col), not {position!r}."
                )
            flat = chosen.flatten(1).argmax(dim=1)
        else:
            rows, cols = position.to(maps.device).unbind(dim=1)
            flat = rows * chosen.shape[2] + cols
        keep = torch.zeros(
            chosen.flatten(1).shape, dtype=torch.bool, device=maps.device
        )
        keep[torch.arange(len(flat), device=maps.device), flat] = True
        keep = keep.view_as(chosen)
    signal = torch.zeros_like(maps)
    signal[:, channel] = chosen * keep
    return signal


def _unpool(signal: Tensor, switches: Tensor, size: torch.Size) -> Tensor:
    """Put each value back where its maximum came from, adding values
    that share a maximum."""
    n, c = signal.shape[:2]
    out = signal.new_zeros(n, c, size[0] * size[1])
    out.scatter_add_(2, switches.flatten(2), signal.flatten(2))
    return out.view(n, c, *size)


def _transposed_conv(
    conv: nn.Conv2d, signal: Tensor, size: torch.Size
) -> Tensor:
    """The conv's filters, transposed (flipped, in and out swapped),
    applied to ``signal``; output ``size``."""
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        raise ValueError(
            "the deconvnet needs convolutions with numeric zero padding, "
            "e.g. padding=1."
        )
    # A strided conv maps several input sizes to the same output size;
    # output_padding picks the input's.
    extra = []
    for d in (0, 1):
        k, s, p, dilation = (
            conv.kernel_size[d],
            conv.stride[d],
            conv.padding[d],
            conv.dilation[d],
        )
        extra.append(
            size[d]
            - ((signal.shape[2 + d] - 1) * s - 2 * p + dilation * (k - 1) + 1)
        )
    return F.conv_transpose2d(
        signal,
        conv.weight,
        None,
        conv.stride,
        conv.padding,
        extra,
        conv.groups,
        conv.dilation,
    )


def deconvnet(
    model: nn.Module,
    x: Tensor,
    layer: nn.Module,
    channel: int,
    *,
    position: str | Tensor | None = None,
) -> Tensor:
    """Project one feature map of ``layer`` back to pixel space, as Zeiler
    & Fergus's deconvnet does.

    Forward, the images ``x`` (N x C x H x W) run through the chain up to
    ``layer`` and every max pooling records its switches (where each maximum
    came from). Then all of the layer's activations are set to zero except
    feature map ``channel`` (``position=None``), or only its strongest
    activation in each image (``"max"``), or the one at ``position[n] = (row,
    col)`` for image n (an N x 2 tensor). Going down, layer by layer
    (Sec. 2.1): unpool with the switches, rectify (ReLU), filter with the
    transposed filters. LRN is skipped (see the module docstring). Returns
    N x C x H x W: the pattern in the input that excites the chosen unit(s).
    """
    layers = layers_up_to(model, layer)
    unknown = [type(m).__name__ for m in layers
               if not isinstance(m, _INVERTIBLE)]  # fmt: skip
    if unknown:
        known = [t.__name__ for t in _INVERTIBLE]
        raise ValueError(
            f"the deconvnet cannot undo {unknown}; it handles {known}."
        )
    with _evaluating(model) as device:
        x = x.to(device)
        # each layer, its input size, its switches
        trace: list[tuple[nn.Module, torch.Size, Tensor | None]] = []
        for module in layers:
            size, switches = x.shape[-2:], None
            if isinstance(module, nn.MaxPool2d):
                x, switches = F.max_pool2d(
                    x, module.kernel_size, module.stride, module.padding,
                    module.dilation, ceil_mode=module.ceil_mode,
                    return_indices=True,
                )  # fmt: skip
            else:
                x = module(x)
            trace.append((module, size, switches))
        signal = _select(x, channel, position)
        for module, size, switches in reversed(trace):
            if isinstance(module, nn.MaxPool2d):
                signal = _unpool(signal, switches, size)
            elif isinstance(module, nn.ReLU):
                # "pass the reconstructed signal through a relu
                # non-linearity"
                signal = F.relu(signal)
            elif isinstance(module, nn.Conv2d):
                signal = _transposed_conv(module, signal, size)
            # LRN, dropout (off in eval mode) and identities pass the
            # signal down unchanged.
    return signal.cpu()


# ------------------------------------------------------- receptive fields


class ReceptiveField(NamedTuple):
    """Unit (i, j) of a layer sees input rows ``offset + i * stride`` ...
    ``+ size - 1`` (and the same for columns)."""

    size: int
    stride: int
    # negative when padding lets the first unit see beyond the image's edge
    offset: int


def receptive_field(layers: Iterable[nn.Module]) -> ReceptiveField:
    """The receptive field of the last of ``layers`` (a chain from the
    input, e.g. :func:`layers_up_to`).

    Each convolution or pooling of kernel k, stride s, padding p, on a field
    (size r, stride j, offset o) gives r + (k - 1) j, s j, o - p j; other
    layers act pixel by pixel and change nothing. Square kernels only.
    """
    size, stride, offset = 1, 1, 0
    for module in layers:
        if not isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            continue
        k, s, p, d = (
            getattr(module, a, 1)
            for a in ("kernel_size", "stride", "padding", "dilation")
        )
        k, s, p, d = (
            (v, v) if isinstance(v, int) else tuple(v) for v in (k, s, p, d)
        )
        if any(v[0] != v[1] for v in (k, s, p, d)):
            raise ValueError(
                f"{module} is not square; receptive_field handles square "
                "kernels, strides and paddings."
            )
        size += d[0] * (k[0] - 1) * stride
        offset -= p[0] * stride
        stride *= s[0]
    return ReceptiveField(size, stride, offset)


def receptive_field_patch(
    image: Tensor, field: ReceptiveField, position: Sequence[int] | Tensor
) -> Tensor:
    """The part of ``image`` (C x H x W) that unit ``position = (row,
    col)`` sees, cut at the image's edges."""
    top, left = (field.offset + int(p) * field.stride for p in position)
    return image[
        :, max(top, 0) : top + field.size, max(left, 0) : left + field.size
    ]


# ----------------------------------------------- top-k activations (Fig. 2)


class TopActivations(NamedTuple):
    """The images where a feature map is strongest, strongest first."""

    index: Tensor  # k: the images' indices, in the order they were given
    # k x 2: (row, col) of each image's strongest activation in the map
    position: Tensor
    value: Tensor  # k: that activation


def top_activations(
    model: nn.Module,
    layer: nn.Module,
    images: Tensor | Iterable,
    channels: Sequence[int],
    k: int = 9,
    *,
    batch_size: int = 256,
) -> dict[int, TopActivations]:
    """For each of ``channels``: the ``k`` images whose strongest
    activation in that map of ``layer`` is largest.

    ``images`` is an N x C x H x W tensor (run in batches of ``batch_size``)
    or an iterable of batches, plain or ``(x, y)`` pairs; indices count
    images in iteration order, so a loader must not shuffle. Each image
    counts once, at its strongest position, as in the paper's Fig. 2.
    """
    batches = (
        images.split(batch_size) if isinstance(images, Tensor) else images
    )
    empty = TopActivations(torch.empty(0, dtype=torch.long),
                           torch.empty(0, 2, dtype=torch.long),
                           torch.empty(0))  # fmt: skip
    best = {c: empty for c in channels}
    seen = 0
    for batch in batches:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        # N x K x h x w
        maps = feature_maps(model, layer, x)[:, list(channels)]
        # N x K: each image's strongest activation per map
        values, flat = maps.flatten(2).max(dim=2)
        width, index = maps.shape[-1], torch.arange(seen, seen + len(x))
        for j, c in enumerate(channels):
            position = torch.stack(
                [flat[:, j] // width, flat[:, j] % width], dim=1
            )
            value = torch.cat([best[c].value, values[:, j]])
            top = value.topk(min(k, len(value))).indices
            best[c] = TopActivations(
                torch.cat([best[c].index, index])[top],
                torch.cat([best[c].position, position])[top],
                value[top],
            )
        seen += len(x)
    return best


def _as_picture(image: Tensor, denormalize=None) -> np.ndarray:
    """C x H x W -> an H x W (x 3) array in [0, 1]: ``denormalize``d, or
    else stretched to its own min..max."""
    image = image.detach().cpu().float()
    if denormalize is not None:
        image = denormalize(image).clamp(0, 1)
    else:
        low, high = image.min(), image.max()
        image = (image - low) / (high - low).clamp_min(1e-12)
    return (
        image[0].numpy()
        if image.shape[0] == 1
        else image.permute(1, 2, 0).numpy()
    )


def _show(ax, picture: np.ndarray) -> None:
    ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_top_patches(
    model: nn.Module,
    layer: nn.Module,
    images: Tensor,
    channels: Sequence[int],
    k: int = 9,
    *,
    denormalize=None,
) -> Figure:
    """Fig. 2: for each map, its top-``k`` projections (left) next to the
    image patches they come from (right).

    Each projection is the deconvnet of the image's strongest activation in
    the map, cut, like the patch, to the unit's receptive field and scaled
    to its own range. ``denormalize`` maps images back to [0, 1].
    """
    field = receptive_field(layers_up_to(model, layer))
    top = top_activations(model, layer, images, channels, k)
    ncols = math.ceil(math.sqrt(k))
    nrows = math.ceil(k / ncols)
    fig = _figure(2 * 1.1 * ncols, (1.1 * nrows + 0.3) * len(channels))
    rows = fig.subfigures(len(channels), 2, squeeze=False)
    for (left, right), c in zip(rows, channels):
        best = top[c]
        chosen = images[best.index]
        projections = deconvnet(
            model, chosen, layer, c, position=best.position
        )
        for n, (image, projection, position) in enumerate(
            zip(chosen, projections, best.position)
        ):
            projection, patch = (
                receptive_field_patch(t, field, position)
                for t in (projection, image)
            )
            _show(
                left.add_subplot(nrows, ncols, n + 1), _as_picture(projection)
            )
            _show(
                right.add_subplot(nrows, ncols, n + 1),
                _as_picture(patch, denormalize),
            )
        left.suptitle(f"map {c}: projections", fontsize="small")
        right.suptitle(f"map {c}: patches", fontsize="small")
    return fig


# ----------------------------------------------- feature evolution (Fig. 4)


def snapshot_maps(
    model: nn.Module, layer: nn.Module, images: Tensor, channels: Sequence[int]
) -> Tensor:
    """For each of ``channels``, the deconvnet projection of its strongest
    activation over ``images``: K x C x H x W.

    Call it on the same images after each epoch, keep the results in a dict
    ``{epoch: snapshot}``, and draw them with :func:`plot_feature_evolution`.
    """
    top = top_activations(model, layer, images, channels, k=1)
    return torch.cat(
        [
            deconvnet(
                model, images[top[c].index], layer, c, position=top[c].position
            )
            for c in channels
        ]
    )


def plot_feature_evolution(snapshots: Mapping[int, Tensor]) -> Figure:
    """Fig. 4: one row per feature map, one column per epoch
    (``{epoch: snapshot_maps(...)}``)."""
    epochs = sorted(snapshots)
    count = len(snapshots[epochs[0]])
    fig = _figure(1.1 * len(epochs), 1.1 * count + 0.3)
    for col, epoch in enumerate(epochs):
        for row, projection in enumerate(snapshots[epoch]):
            ax = fig.add_subplot(
                count, len(epochs), row * len(epochs) + col + 1
            )
            _show(ax, _as_picture(projection))
            if row == 0:
                ax.set_title(f"epoch {epoch}", fontsize="small")
    return fig


# --------------------------------------------- occlusion (Sec. 4.2, Fig. 7)


class OcclusionMaps(NamedTuple):
    """One value per position of the grey square, whose top-left corner is
    at (row * stride, col * stride)."""

    probability: Tensor  # rows x cols: softmax probability of the target
    label: Tensor  # rows x cols: the most probable class
    # rows x cols: the chosen feature map's total activation (with ``layer``)
    activation: Tensor | None
    channel: int | None  # that feature map


def occlusion(
    model: nn.Module,
    image: Tensor,
    target: int,
    *,
    window: int = 8,
    stride: int = 4,
    fill: float = 0.0,
    layer: nn.Module | None = None,
    channel: int | None = None,
    batch_size: int = 256,
) -> OcclusionMaps:
    """Slide a grey ``window`` x ``window`` square over ``image`` (C x H x
    W) and record what the model does.

    ``fill`` is the square's value: 0 is the data set's mean pixel, grey, for
    normalised images (pass e.g. 0.5 for images in [0, 1]). Positions step
    by ``stride`` from the top-left and stop where the square would leave the
    image. With ``layer``, also the total activation of its feature map
    ``channel`` (default: the map strongest on the unoccluded image, as in
    Fig. 7(b)).
    """
    h, w = image.shape[-2:]
    tops, lefts = (
        range(0, h - window + 1, stride),
        range(0, w - window + 1, stride),
    )
    if not tops or not lefts:
        raise ValueError(
            f"a {window}x{window} window does not fit in a {h}x{w} image; "
            "use a smaller window."
        )
    if layer is not None and channel is None:
        channel = int(
            feature_maps(model, layer, image[None]).sum(dim=(2, 3))[0].argmax()
        )
    corners = [(top, left) for top in tops for left in lefts]
    probs, activation = [], []
    # batch by batch: at 224x224 all copies would not fit
    for start in range(0, len(corners), batch_size):
        batch = image.cpu().repeat(
            len(corners[start : start + batch_size]), 1, 1, 1
        )
        for n, (top, left) in enumerate(corners[start : start + batch_size]):
            batch[n, :, top : top + window, left : left + window] = fill
        with _evaluating(model) as device:
            probs.append(model(batch.to(device)).float().softmax(dim=1).cpu())
        if layer is not None:
            activation.append(
                feature_maps(model, layer, batch)[:, channel].sum(dim=(1, 2))
            )
    shape = (len(tops), len(lefts))
    probs = torch.cat(probs)
    activation = (
        torch.cat(activation).view(shape) if layer is not None else None
    )
    return OcclusionMaps(
        probs[:, target].view(shape),
        probs.argmax(dim=1).view(shape),
        activation,
        channel,
    )


def plot_occlusion(
    image: Tensor,
    maps: OcclusionMaps,
    classes: Sequence[str] | None = None,
    *,
    denormalize=None,
) -> Figure:
    """Fig. 7: the image, the map's total activation (if recorded), p(true
    class) and the most probable class."""
    panels = [
        ("image", None),
        ("p(true class)", maps.probability),
        ("most probable class", maps.label),
    ]
    if maps.activation is not None:
        panels.insert(
            1, (f"map {maps.channel}: total activation", maps.activation)
        )
    fig = _figure(2.8 * len(panels), 2.8)
    for n, (title, values) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), n + 1)
        if values is None:
            _show(ax, _as_picture(image, denormalize))
        else:
            labels = values is maps.label
            art = ax.imshow(
                values.numpy(),
                cmap="tab10" if labels else "viridis",
                interpolation="nearest",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            bar = fig.colorbar(art, ax=ax, shrink=0.8)
            if labels and classes is not None:
                present = maps.label.unique().tolist()
                bar.set_ticks(
                    present, labels=[str(classes[i]) for i in present]
                )
        ax.set_title(title, fontsize="small")
    return fig


# ------------------------------- class activation maps (Zhou et al. 2016)


def class_activation_map(
    model: nn.Module,
    x: Tensor,
    class_idx: int | Tensor,
    *,
    size: Sequence[int] | None = None,
) -> Tensor:
    """Zhou et al.'s CAM: M_c(i, j) = sum_k w_ck f_k(i, j), for a network
    that ends in GAP and a linear layer.

    The assumption, checked on ``x``: the logits are ``linear(GAP(f))``
    with ``f = model.forward_features(x)`` (N x K x h x w) and ``linear`` the
    model's last ``nn.Linear``, so the CAM's mean over positions plus the
    bias is the class's logit. Without any ``nn.Linear`` the maps must
    themselves be the class maps (NiN: ``logits = GAP(f)``) and the CAM of
    class c is map c. Returns N x h x w, or N x ``size`` (bilinear, e.g.
    ``size=x.shape[-2:]`` to lay it over the image).
    """
    with _evaluating(model) as device:
        x = x.to(device)
        maps = model.forward_features(x).float()
        logits = model(x).float()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linears:
        weight, bias = linears[-1].weight.detach().float(), linears[-1].bias
        if weight.shape[1] != maps.shape[1]:
            raise ValueError(
                f"the last linear layer takes {weight.shape[1]} inputs, not "
                f"the {maps.shape[1]} maps: the head is not global average "
                "pooling followed by a linear layer.")  # fmt: skip
        cams = torch.einsum("ck,nkhw->nchw", weight, maps)
        bias = (
            bias.detach().float()
            if bias is not None
            else torch.zeros(len(weight), device=maps.device)
        )
    else:
        cams, bias = maps, torch.zeros(maps.shape[1], device=maps.device)
    tolerance = 1e-4 * float(logits.abs().max().clamp_min(1.0))
    if cams.shape[1] != logits.shape[1] or not torch.allclose(
        cams.mean(dim=(2, 3)) + bias, logits, 1e-4, tolerance
    ):
        raise ValueError(
            "the model's logits are not global average pooling of "
            "forward_features followed by its last linear layer (if any), so "
            "class activation maps do not apply to it.")  # fmt: skip
    index = torch.as_tensor(class_idx, device=cams.device).expand(len(cams))
    # N x h x w
    cam = cams[torch.arange(len(cams), device=cams.device), index]
    if size is not None:
        cam = F.interpolate(
            cam[:, None],
            size=tuple(size),
            mode="bilinear",
            align_corners=False,
        )[:, 0]
    return cam.cpu()


# ---------------------------------------- layer-1 filters (Sec. 4.1, Fig. 6)


def _check_filters(weight: Tensor, function: str) -> Tensor:
    """``weight`` as a detached CPU float64 tensor; a clear error unless
    4-D."""
    if not isinstance(weight, Tensor) or weight.dim() != 4:
        shape = (tuple(weight.shape) if isinstance(weight, Tensor)
                 else type(weight).__name__)  # fmt: skip
        raise ValueError(
            f"{function} takes a convolution's weight, out x in x kh x kw "
            f"(e.g. conv.weight), got {shape}"
        )
    return weight.detach().cpu().double()


def _power(weight: Tensor, size: int | None = None) -> tuple[Tensor, Tensor]:
    """Each filter's power spectrum (out x n x n, summed over input
    channels, mean removed) and |frequency|.

    ``size`` zero-pads the filters to size x size before the transform: the
    same frequency response, sampled on a finer grid (None: the filter's
    own).
    """
    weight = _check_filters(weight, "the filter spectrum")
    shape = tuple(weight.shape[-2:]) if size is None else (size, size)
    if shape[0] < weight.shape[-2] or shape[1] < weight.shape[-1]:
        raise ValueError(
            f"size={size} is smaller than the filters "
            f"({weight.shape[-2]}x{weight.shape[-1]})"
        )
    # the mean colour is not a spatial frequency
    weight = weight - weight.mean(dim=(2, 3), keepdim=True)
    power = torch.fft.fft2(weight, s=shape).abs().pow(2).sum(dim=1)
    # cycles per pixel
    fy, fx = (torch.fft.fftfreq(n, dtype=torch.double) for n in shape)
    return power, torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def filter_spectrum(weight: Tensor, size: int | None = None) -> Tensor:
    """The mean amplitude of the 2-D Fourier transform of filters (out x in
    x kh x kw), zero frequency at the centre.

    kh x kw values, or size x size with the filters zero-padded (see
    :func:`high_frequency_share`).
    """
    amplitude = _power(weight, size)[0].sqrt().mean(dim=0)
    return torch.fft.fftshift(amplitude).float()


def high_frequency_share(
    weight: Tensor, cutoff: float = 0.25, size: int | None = None
) -> Tensor:
    """Per filter, the share of its energy above ``cutoff`` cycles per pixel
    (0.25: half the Nyquist frequency).

    Frequencies are per input pixel, so 11x11 and 7x7 filters compare
    directly. Sec. 4.1: AlexNet's 11x11/4 layer 1 mixes very high and very
    low frequencies with little in between; ZFNet's 7x7/2 covers the
    middle. A dead (constant) filter has no energy and gets 0.

    The discrete transform of a k x k filter samples its frequency response
    at multiples of 1/k, a coarse grid that differs between 7x7 and 11x11
    filters: two random filters of the two sizes would get different shares
    from the grid alone. ``size`` zero-pads the filters to size x size
    first, which samples the same response at multiples of 1/size, one grid
    for all.
    """
    if not 0 <= cutoff < 0.5 * math.sqrt(2):
        raise ValueError(
            f"cutoff={cutoff} must be a frequency in cycles per pixel, in "
            "[0, 0.707)"
        )
    power, frequency = _power(weight, size)
    high = (power * (frequency > cutoff)).sum(dim=(1, 2))
    return (high / power.sum(dim=(1, 2)).clamp_min(1e-30)).float()


def filter_rms(weight: Tensor) -> Tensor:
    """Each filter's root mean square over its input channels and taps: out
    values."""
    weight = _check_filters(weight, "filter_rms")
    return weight.pow(2).mean(dim=(1, 2, 3)).sqrt().float()


def dead_filters(weight: Tensor, fraction: float = 0.2) -> Tensor:
    """Which filters are dead: RMS below ``fraction`` of the layer's median
    filter RMS (out booleans).

    Sec. 4.1, Fig. 6(b): some of AlexNet's layer-1 filters stayed flat and
    small while the others learned patterns. A filter is dead here when its
    RMS (:func:`filter_rms`) is below ``fraction`` of the median RMS of its
    layer: relative to its neighbours, so that the test does not depend on
    the scale of the weights (renormalisation, weight decay).
    """
    if not 0 < fraction < 1:
        raise ValueError(
            f"fraction={fraction} must be between 0 and 1 (a share of the "
            "median filter RMS)"
        )
    rms = filter_rms(weight)
    return rms < fraction * rms.median()


def plot_filter_spectra(weights: Mapping[str, Tensor]) -> Figure:
    """Each layer's mean filter spectrum (:func:`filter_spectrum`), titled
    with its median high-frequency share."""
    fig = _figure(2.8 * len(weights), 2.9)
    for n, (name, weight) in enumerate(weights.items()):
        ax = fig.add_subplot(1, len(weights), n + 1)
        ax.imshow(filter_spectrum(weight).numpy(), cmap="magma")
        ax.set_xticks([])
        ax.set_yticks([])
        share = high_frequency_share(weight).median()
        ax.set_title(
            f"{name}\nhigh-frequency share {share:.2f}", fontsize="small"
        )
    return fig
