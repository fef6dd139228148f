"""The figures every chapter draws: training curves, images, confusion matrices, filters and feature maps.

    >>> from cnnbook import plots
    >>> plots.plot_history(history)                          # loss and accuracy per epoch
    >>> plots.show_images(x[:16], y[:16], preds[:16], data.classes)
    >>> plots.plot_filters(model.features[0].weight)          # the first layer's kernels
    >>> maps = plots.feature_maps(model, model.features[3], x[:1])
    >>> plots.plot_feature_maps(maps[0])

Every function returns a matplotlib ``Figure`` and never calls ``plt.show``.
The figure is detached from pyplot as soon as it is made, so a notebook
shows it exactly once, when it is the value of a cell (``fig = ...`` shows
nothing until ``fig`` is evaluated), and a script saves it with
``fig.savefig(path)``. Nothing needs a display: the Agg backend works.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor, nn

__all__ = [
    "plot_history",
    "show_images",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_filters",
    "feature_maps",
    "plot_feature_maps",
    "misclassified",
]


def _figure(width: float, height: float) -> Figure:
    """A new figure that pyplot does not track.

    Closing it at once means the notebook's inline backend does not draw it
    a second time at the end of the cell, and a loop that makes hundreds of
    figures does not keep them all in memory. Drawing on it still works.
    """
    fig = plt.figure(figsize=(width, height), layout="constrained")
    plt.close(fig)
    return fig


# ---------------------------------------------------------------- training curves


# A training record: a dict of per-epoch lists, or cnnbook.train.History, which reads the same way.
HistoryLike = Mapping[str, Sequence[float]]


def _series(history: HistoryLike, key: str) -> list[float] | None:
    """``history[key]`` as a list, or None when the history has no such record (or only empty values)."""
    try:
        values = list(history[key])
    except KeyError:
        return None
    return values if values and all(v is not None for v in values) else None


def plot_history(
    *histories: HistoryLike,
    labels: list[str] | None = None,
    metrics: Sequence[str] = ("loss", "acc"),
) -> Figure:
    """Per-epoch curves of one or more training runs: one panel per metric.

    Each history is a ``cnnbook.train.History`` or a plain dict of per-epoch
    lists with the keys ``epoch``, ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc`` and ``lr``. A metric ``m`` plots ``train_m``
    (solid) and ``val_m`` (dashed), or ``m`` itself when there are no such
    keys (``"lr"``). Each run has its own colour, named by ``labels``.
    Accuracies are fractions in [0, 1] and are shown in percent.
    """
    if not histories:
        raise ValueError("plot_history needs at least one history, e.g. plot_history(history).")
    if labels is not None and len(labels) != len(histories):
        raise ValueError(f"got {len(histories)} histories but {len(labels)} labels; give one label per history.")
    fig = _figure(4.5 * len(metrics), 3.4)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, history in enumerate(histories):
        colour = colours[i % len(colours)]
        run = labels[i] if labels else (f"run {i + 1}" if len(histories) > 1 else "")
        epochs = _series(history, "epoch")
        for ax, metric in zip(axes, metrics):
            scale = 100.0 if metric == "acc" else 1.0
            curves = [(f"train_{metric}", "-", "train"), (f"val_{metric}", "--", "val")]
            if all(_series(history, key) is None for key, _, _ in curves):
                curves = [(metric, "-", "")]  # a record without splits, such as "lr"
            for key, style, split in curves:
                values = _series(history, key)
                if values is None:
                    continue
                x = epochs[: len(values)] if epochs else range(1, len(values) + 1)
                name = " ".join(part for part in (run, split) if part) or None
                ax.plot(x, [v * scale for v in values], style, color=colour, label=name)
    for ax, metric in zip(axes, metrics):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 2.5
        ax.set_ylabel({"loss": "loss", "acc": "accuracy (%)", "lr": "learning rate"}.get(metric, metric))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return fig


# ---------------------------------------------------------------- image grids


def _grid(
    pictures: Sequence[np.ndarray],
    *,
    ncols: int,
    title: str | None,
    captions: Sequence[str] | None = None,
    colours: Sequence[str] | None = None,
    **imshow: object,
) -> Figure:
    """One axes per picture (H x W or H x W x 3 arrays), ``ncols`` to a row, without ticks."""
    ncols = max(1, min(ncols, len(pictures)))
    nrows = math.ceil(len(pictures) / ncols)
    cell = 1.4 if captions is None else 1.6  # room for a caption under the title line
    fig = _figure(cell * ncols, cell * nrows + (0.4 if title else 0))
    for i, picture in enumerate(pictures):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(picture, **imshow)
        ax.set_xticks([])
        ax.set_yticks([])
        if captions is not None:
            ax.set_title(captions[i], fontsize="small", color=colours[i] if colours else "black")
    if title:
        fig.suptitle(title)
    return fig


def _name(index: int, classes: Sequence[str] | None) -> str:
    return str(classes[index]) if classes is not None else str(index)


def show_images(
    images: Tensor,
    labels: Tensor | Sequence[int] | None = None,
    preds: Tensor | Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    *,
    ncols: int = 8,
    denormalize: Callable[[Tensor], Tensor] | None = None,
    title: str | None = None,
) -> Figure:
    """A grid of images (N x C x H x W, grey or RGB) with their labels and, optionally, predictions.

    Images are uint8, floats in [0, 1], or normalised floats together with a
    ``denormalize`` function that maps the batch back to [0, 1]. Captions are
    the class name (from ``classes``, else the index); with ``preds`` a wrong
    prediction is captioned ``"pred (label)"`` in red.
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"show_images expects N x C x H x W images with C = 1 or 3, got shape {tuple(images.shape)}.")
    images = images.detach().cpu()
    images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    if denormalize is not None:
        images = denormalize(images)
    pictures = [img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy() for img in images.clamp(0, 1)]
    captions = colours = None
    if labels is not None:
        labels = [int(y) for y in labels]
        if preds is None:
            captions = [_name(y, classes) for y in labels]
        else:
            preds = [int(p) for p in preds]
            wrong = [p != y for p, y in zip(preds, labels)]
            captions = [
                f"{_name(p, classes)} ({_name(y, classes)})" if w else _name(y, classes)
                for p, y, w in zip(preds, labels, wrong)
            ]
            colours = ["red" if w else "black" for w in wrong]
    return _grid(pictures, ncols=ncols, title=title, captions=captions, colours=colours, cmap="gray", vmin=0, vmax=1)


def plot_filters(weight: Tensor, *, ncols: int = 8, title: str | None = None) -> Figure:
    """A convolution's kernels (``out x in x kh x kw``), each scaled to its own min..max.

    With three input channels each kernel is drawn in colour (what an RGB
    network's first layer learns); otherwise only its first input channel
    is drawn, in grey.
    """
    if weight.dim() != 4:
        raise ValueError(f"plot_filters expects conv weights out x in x kh x kw, got shape {tuple(weight.shape)}.")
    weight = weight.detach().cpu().float()
    weight = weight if weight.shape[1] == 3 else weight[:, :1]
    low = weight.amin(dim=(1, 2, 3), keepdim=True)
    high = weight.amax(dim=(1, 2, 3), keepdim=True)
    scaled = (weight - low) / (high - low).clamp_min(1e-12)
    pictures = [w[0].numpy() if w.shape[0] == 1 else w.permute(1, 2, 0).numpy() for w in scaled]
    return _grid(pictures, ncols=ncols, title=title, cmap="gray", vmin=0, vmax=1)


# ---------------------------------------------------------------- what a layer sees


def feature_maps(model: nn.Module, layer: nn.Module, images: Tensor) -> Tensor:
    """The output of ``layer`` (a submodule of ``model``) when ``model`` runs on ``images``.

    Runs in eval mode under ``torch.no_grad`` on the model's device, catches
    the output with a forward hook, then removes the hook and restores the
    training mode. Returns a CPU tensor, e.g. N x C x H x W for a conv layer.
    """
    captured: list[Tensor] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output.detach()))
    was_training = model.training
    param = next(model.parameters(), None)
    try:
        model.eval()
        with torch.no_grad():
            model(images.to(param.device) if param is not None else images)
    finally:
        handle.remove()
        model.train(was_training)
    if not captured:
        raise ValueError("the layer was not called in the forward pass; pass a submodule of the model that it uses.")
    return captured[0].cpu()


def plot_feature_maps(maps: Tensor, *, ncols: int = 8, title: str | None = None, max_maps: int = 64) -> Figure:
    """One image's feature maps (C x H x W), the first ``max_maps`` of them, each on its own colour scale."""
    if maps.dim() != 3:
        raise ValueError(
            f"plot_feature_maps expects one image's maps C x H x W, got shape {tuple(maps.shape)}; "
            "for a batch from feature_maps pass maps[0]."
        )
    pictures = [m.numpy() for m in maps.detach().cpu().float()[:max_maps]]
    return _grid(pictures, ncols=ncols, title=title, cmap="viridis")


# ---------------------------------------------------------------- errors


def confusion_matrix(labels: Tensor | Sequence[int], preds: Tensor | Sequence[int], num_classes: int) -> Tensor:
    """Counts ``num_classes x num_classes``: row = true class, column = predicted class."""
    labels = torch.as_tensor(labels).long().flatten().cpu()
    preds = torch.as_tensor(preds).long().flatten().cpu()
    if labels.shape != preds.shape:
        raise ValueError(f"labels and preds differ in length: {labels.numel()} vs {preds.numel()}.")
    for name, values in (("labels", labels), ("preds", preds)):
        if values.numel() and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must lie in 0..{num_classes - 1}, got values {values.min()}..{values.max()}.")
    return torch.bincount(labels * num_classes + preds, minlength=num_classes**2).view(num_classes, num_classes)


def plot_confusion_matrix(
    labels: Tensor | Sequence[int], preds: Tensor | Sequence[int], classes: Sequence[str], *, normalize: bool = True
) -> Figure:
    """The confusion matrix as a heat map; ``normalize`` shows each true class's row as fractions (recall)."""
    counts = confusion_matrix(labels, preds, len(classes)).double()
    values = counts / counts.sum(dim=1, keepdim=True).clamp_min(1) if normalize else counts
    size = 1.2 + 0.45 * len(classes)
    fig = _figure(size + 1.2, size)
    ax = fig.add_subplot()
    image = ax.imshow(values.numpy(), cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ticks = range(len(classes))
    ax.set_xticks(ticks, [str(c) for c in classes], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(classes) <= 20:  # numbers in the cells stay readable up to about 20 classes
        threshold = values.max().item() / 2
        for (i, j), v in np.ndenumerate(values.numpy()):
            if v == 0:
                continue  # empty cells stay blank, so the mistakes stand out
            text = f"{v:.2f}" if normalize else f"{int(v)}"
            colour = "white" if v > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize="x-small", color=colour)
    return fig


def misclassified(logits: Tensor, labels: Tensor, k: int = 16) -> Tensor:
    """Indices of up to ``k`` wrongly classified examples, the most confident mistakes first.

    Confidence is the softmax probability of the predicted class.
    """
    confidence, preds = logits.detach().float().softmax(dim=1).max(dim=1)
    wrong = (preds != labels.to(preds.device)).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True)
    return wrong[order][:k].cpu()
