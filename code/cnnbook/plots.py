"""The figures every chapter draws: training curves, images, confusion
matrices, filters and feature maps.

    >>> from cnnbook import plots
    >>> plots.plot_history(history)  # loss and accuracy per epoch
    >>> plots.show_images(x[:16], y[:16], preds[:16], data.classes)
    >>> plots.plot_filters(model.features[0].weight)  # first layer's kernels
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
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from torch import Tensor, nn

from .costs import pareto_front

__all__ = [
    "plot_history",
    "show_images",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_filters",
    "feature_maps",
    "plot_feature_maps",
    "misclassified",
    "lenet5_stage_shapes",
    "draw_lenet5_architecture",
    "plot_pareto",
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


# ---------------------------------------------------------------- training
# curves


# A training record: a dict of per-epoch lists, or cnnbook.train.History, which
# reads the same way.
HistoryLike = Mapping[str, Sequence[float]]


def _series(history: HistoryLike, key: str) -> list[float] | None:
    """``history[key]`` as a list, or None when the history has no such
    record (or only empty values).
    """
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
        raise ValueError(
            "plot_history needs at least one history, e.g. "
            "plot_history(history)."
        )
    if labels is not None and len(labels) != len(histories):
        raise ValueError(
            f"got {len(histories)} histories but {len(labels)} "
            "labels; give one label per history."
        )
    fig = _figure(4.5 * len(metrics), 3.4)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, history in enumerate(histories):
        colour = colours[i % len(colours)]
        run = (
            labels[i]
            if labels
            else (f"run {i + 1}" if len(histories) > 1 else "")
        )
        epochs = _series(history, "epoch")
        for ax, metric in zip(axes, metrics):
            scale = 100.0 if metric == "acc" else 1.0
            curves = [
                (f"train_{metric}", "-", "train"),
                (f"val_{metric}", "--", "val"),
            ]
            if all(_series(history, key) is None for key, _, _ in curves):
                # a record without splits, such as "lr"
                curves = [(metric, "-", "")]
            for key, style, split in curves:
                values = _series(history, key)
                if values is None:
                    continue
                x = (
                    epochs[: len(values)]
                    if epochs
                    else range(1, len(values) + 1)
                )
                name = " ".join(part for part in (run, split) if part) or None
                ax.plot(
                    x,
                    [v * scale for v in values],
                    style,
                    color=colour,
                    label=name,
                )
    for ax, metric in zip(axes, metrics):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 2.5
        ax.set_ylabel(
            {"loss": "loss", "acc": "accuracy (%)", "lr": "learning rate"}.get(
                metric, metric
            )
        )
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
    """One axes per picture (H x W or H x W x 3 arrays), ``ncols`` to a row,
    without ticks.
    """
    ncols = max(1, min(ncols, len(pictures)))
    nrows = math.ceil(len(pictures) / ncols)
    # room for a caption under the title line
    cell = 1.4 if captions is None else 1.6
    fig = _figure(cell * ncols, cell * nrows + (0.4 if title else 0))
    for i, picture in enumerate(pictures):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(picture, **imshow)
        ax.set_xticks([])
        ax.set_yticks([])
        if captions is not None:
            ax.set_title(
                captions[i],
                fontsize="small",
                color=colours[i] if colours else "black",
            )
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
    """A grid of images (N x C x H x W, grey or RGB) with their labels and,
    optionally, predictions.

    Images are uint8, floats in [0, 1], or normalised floats together with a
    ``denormalize`` function that maps the batch back to [0, 1]. Captions are
    the class name (from ``classes``, else the index); with ``preds`` a wrong
    prediction is captioned ``"pred (label)"`` in red.
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"show_images expects N x C x H x W images with C = "
            f"1 or 3, got shape {tuple(images.shape)}."
        )
    images = images.detach().cpu()
    images = (
        images.float() / 255 if images.dtype == torch.uint8 else images.float()
    )
    if denormalize is not None:
        images = denormalize(images)
    pictures = [
        img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()
        for img in images.clamp(0, 1)
    ]
    captions = colours = None
    if labels is not None:
        labels = [int(y) for y in labels]
        if preds is None:
            captions = [_name(y, classes) for y in labels]
        else:
            preds = [int(p) for p in preds]
            wrong = [p != y for p, y in zip(preds, labels)]
            captions = [
                f"{_name(p, classes)} ({_name(y, classes)})"
                if w
                else _name(y, classes)
                for p, y, w in zip(preds, labels, wrong)
            ]
            colours = ["red" if w else "black" for w in wrong]
    return _grid(
        pictures,
        ncols=ncols,
        title=title,
        captions=captions,
        colours=colours,
        cmap="gray",
        vmin=0,
        vmax=1,
    )


def plot_filters(
    weight: Tensor, *, ncols: int = 8, title: str | None = None
) -> Figure:
    """A convolution's kernels (``out x in x kh x kw``), each scaled to its own
    min..max.

    With three input channels each kernel is drawn in colour (what an RGB
    network's first layer learns); otherwise only its first input channel is
    drawn, in grey.
    """
    if weight.dim() != 4:
        raise ValueError(
            f"plot_filters expects conv weights out x in x kh x "
            f"kw, got shape {tuple(weight.shape)}."
        )
    weight = weight.detach().cpu().float()
    weight = weight if weight.shape[1] == 3 else weight[:, :1]
    low = weight.amin(dim=(1, 2, 3), keepdim=True)
    high = weight.amax(dim=(1, 2, 3), keepdim=True)
    scaled = (weight - low) / (high - low).clamp_min(1e-12)
    pictures = [
        w[0].numpy() if w.shape[0] == 1 else w.permute(1, 2, 0).numpy()
        for w in scaled
    ]
    return _grid(
        pictures, ncols=ncols, title=title, cmap="gray", vmin=0, vmax=1
    )


# ---------------------------------------------------------------- what a layer
# sees


def feature_maps(model: nn.Module, layer: nn.Module, images: Tensor) -> Tensor:
    """The output of ``layer`` (a submodule of ``model``) when ``model`` runs
    on ``images``.

    Runs in eval mode under ``torch.no_grad`` on the model's device, catches
    the output with a forward hook, then removes the hook and restores the
    training mode. Returns a CPU tensor, e.g. N x C x H x W for a conv layer.
    """
    captured: list[Tensor] = []
    handle = layer.register_forward_hook(
        lambda module, inputs, output: captured.append(output.detach())
    )
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
        raise ValueError(
            "the layer was not called in the forward pass; pass "
            "a submodule of the model that it uses."
        )
    return captured[0].cpu()


def plot_feature_maps(
    maps: Tensor,
    *,
    ncols: int = 8,
    title: str | None = None,
    max_maps: int = 64,
) -> Figure:
    """One image's feature maps (C x H x W), the first ``max_maps`` of them,
    each on its own colour scale.
    """
    if maps.dim() != 3:
        raise ValueError(
            f"plot_feature_maps expects one image's maps C x H x W, got shape "
            f"{tuple(maps.shape)}; "
            "for a batch from feature_maps pass maps[0]."
        )
    pictures = [m.numpy() for m in maps.detach().cpu().float()[:max_maps]]
    return _grid(pictures, ncols=ncols, title=title, cmap="viridis")


# ---------------------------------------------------------------- errors


def confusion_matrix(
    labels: Tensor | Sequence[int],
    preds: Tensor | Sequence[int],
    num_classes: int,
) -> Tensor:
    """Counts ``num_classes x num_classes``: row = true class, column =
    predicted class.
    """
    labels = torch.as_tensor(labels).long().flatten().cpu()
    preds = torch.as_tensor(preds).long().flatten().cpu()
    if labels.shape != preds.shape:
        raise ValueError(
            f"labels and preds differ in length: "
            f"{labels.numel()} vs {preds.numel()}."
        )
    for name, values in (("labels", labels), ("preds", preds)):
        if values.numel() and (
            values.min() < 0 or values.max() >= num_classes
        ):
            raise ValueError(
                f"{name} must lie in 0..{num_classes - 1}, got "
                f"values {values.min()}..{values.max()}."
            )
    return torch.bincount(
        labels * num_classes + preds, minlength=num_classes**2
    ).view(num_classes, num_classes)


def plot_confusion_matrix(
    labels: Tensor | Sequence[int],
    preds: Tensor | Sequence[int],
    classes: Sequence[str],
    *,
    normalize: bool = True,
) -> Figure:
    """The confusion matrix as a heat map; ``normalize`` shows each true
    class's row as fractions (recall).
    """
    counts = confusion_matrix(labels, preds, len(classes)).double()
    values = (
        counts / counts.sum(dim=1, keepdim=True).clamp_min(1)
        if normalize
        else counts
    )
    size = 1.2 + 0.45 * len(classes)
    fig = _figure(size + 1.2, size)
    ax = fig.add_subplot()
    image = ax.imshow(
        values.numpy(), cmap="Blues", vmin=0, vmax=1 if normalize else None
    )
    fig.colorbar(image, ax=ax, shrink=0.8)
    ticks = range(len(classes))
    ax.set_xticks(ticks, [str(c) for c in classes], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    # numbers in the cells stay readable up to about 20 classes
    if len(classes) <= 20:
        threshold = values.max().item() / 2
        for (i, j), v in np.ndenumerate(values.numpy()):
            if v == 0:
                continue  # empty cells stay blank, so the mistakes stand out
            text = f"{v:.2f}" if normalize else f"{int(v)}"
            colour = "white" if v > threshold else "black"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize="x-small",
                color=colour,
            )
    return fig


def misclassified(logits: Tensor, labels: Tensor, k: int = 16) -> Tensor:
    """Indices of up to ``k`` wrongly classified examples, the most confident
    mistakes first.

    Confidence is the softmax probability of the predicted class.
    """
    confidence, preds = logits.detach().float().softmax(dim=1).max(dim=1)
    wrong = (preds != labels.to(preds.device)).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True)
    return wrong[order][:k].cpu()


# ---------------------------------------------------------------- LeNet-5


# The architecture figure's colours: Okabe-Ito hues (safe for colour-blind
# readers), green and purple a shade darker so that text in them stays
# legible; (edge and text, fill) per kind of stage, named after the operation
# that makes it.
ARCHITECTURE_COLOURS = {
    "input": ("#555555", "#e6e6e6"),
    "conv": ("#0072B2", "#cfe6f5"),
    "subsample": ("#D55E00", "#fbe0c8"),
    "full": ("#00795A", "#c5eee0"),
    "gaussian": ("#A8467F", "#f3dbe8"),
}


def lenet5_stage_shapes(
    model: nn.Module, input_size: tuple[int, ...]
) -> list[tuple[int, ...]]:
    """The shape after each stage of a LeNet-5 (``models.lenet.LeNet5``).

    The input, every change of shape in ``model.features``, then ``f6`` and
    ``output``; a map of 1x1 (C5's) is given as a vector, ``(120,)``.
    """
    outputs: list[tuple[int, ...]] = []
    layers = [*model.features, model.f6, model.output]
    hooks = [
        layer.register_forward_hook(
            lambda m, i, out: outputs.append(tuple(out.shape[1:]))
        )
        for layer in layers
    ]
    with torch.no_grad():
        model(torch.zeros(1, *input_size))
    for hook in hooks:
        hook.remove()
    # An activation keeps its input's shape; only layers that change it count.
    shapes = [tuple(input_size)]
    for shape in outputs:
        if shape != shapes[-1]:
            shapes.append(shape)
    return [s[:1] if s[1:] == (1, 1) else s for s in shapes]


def draw_lenet5_architecture() -> Figure:
    """LeNet-5 after the paper's Fig. 2, with the sizes of ``lenet5``.

    The sizes come from ``models.create("lenet5")``, so the figure follows
    the code. ``scripts/make_figures.py`` saves this figure into ``imgs/``;
    a chapter draws it with a code cell, which works in Colab too.
    """
    from . import models  # here: cnnbook.models need not load with plots

    shapes = lenet5_stage_shapes(
        models.create("lenet5"), models.spec("lenet5").input_size
    )
    # The paper's names, and the operation that makes each stage.
    paper = [("INPUT", "input"), ("C1", "conv"), ("S2", "subsample"),
             ("C3", "conv"), ("S4", "subsample"), ("C5", "conv"),
             ("F6", "full"), ("OUTPUT", "gaussian")]  # fmt: skip
    if len(shapes) != len(paper):
        raise RuntimeError(
            f"lenet5 has {len(shapes)} stages {shapes}, the figure draws "
            f"{len(paper)}: update it"
        )

    fig = Figure(figsize=(12, 4))
    # 1 unit = 0.1 inch in x and y
    ax = fig.add_axes((0, 0, 1, 1), xlim=(0, 120), ylim=(0, 40))
    ax.set_axis_off()
    # Units per pixel of a map, step between stacked maps, the centre line.
    unit, step, middle = 0.45, 0.7, 21.0
    # A stack shows a few of its maps; a vector is a thin bar whose height
    # grows with its length.
    layers = [min(s[0], 2 + s[0] // 3) if len(s) == 3 else 0 for s in shapes]
    widths = [
        s[1] * unit + (n - 1) * step if len(s) == 3 else 1.4
        for s, n in zip(shapes, layers)
    ]
    # Each stage gets a slot wide enough for its labels; the space left over
    # is shared out between them.
    slots = [max(w + 1.5, 12.5) for w in widths]
    spare = (120 - 2 - sum(slots)) / (len(slots) - 1)
    faces = []  # the front face of each stage: (left, bottom, width, height)
    left = 1.0
    for (name, kind), shape, prev, n, width, slot in zip(
        paper, shapes, [None, *shapes], layers, widths, slots
    ):
        edge, fill = ARCHITECTURE_COLOURS[kind]
        x = left + (slot - width) / 2
        if len(shape) == 3:  # the front map at the lower left, others behind
            side = shape[1] * unit
            bottom = middle - width / 2
            for k in reversed(range(n)):
                ax.add_patch(Rectangle(
                    (x + k * step, bottom + k * step), side, side,
                    fc=fill, ec=edge, lw=1.2))  # fmt: skip
            face = (x, bottom, side, side)
            size = (f"{shape[1]}x{shape[2]}" if shape[0] == 1
                    else f"{shape[0]}@{shape[1]}x{shape[2]}")  # fmt: skip
            what = {"INPUT": "", "C1": ": feature maps"}.get(name, ": f. maps")
        else:
            height = 4 + 0.12 * shape[0]
            face = (x, middle - height / 2, width, height)
            ax.add_patch(Rectangle(face[:2], width, height, fc=fill, ec=edge,
                                   lw=1.2))  # fmt: skip
            size, what = str(shape[0]), "" if name == "OUTPUT" else ": layer"
        _lines(ax, x + width / 2, 37, [f"{name}{what}", size], fontsize=14)
        if prev is not None:
            _connect(ax, faces[-1], face, kind, prev, shape, edge, unit)
        faces.append(face)
        left += slot + spare
    return fig


def _connect(ax, src: tuple, dst: tuple, kind: str, prev: tuple,
             shape: tuple, colour: str, unit: float) -> None:  # fmt: skip
    """Lines from one stage's front face to the next, the operation below."""
    (sx, sy, sw, sh), (dx, dy, dw, dh) = src, dst
    if kind in ("conv", "subsample"):
        # One unit of the next stage sees a k x k window of this one (the
        # paper's kernel squares).
        out = shape[1] if len(shape) == 3 else 1  # C5's maps are 1x1
        k = prev[1] - out + 1 if kind == "conv" else prev[1] // out
        side = k * unit
        # Upper right, clear of the incoming lines.
        kx, ky = sx + 0.75 * (sw - side), sy + 0.6 * (sh - side)
        ax.add_patch(Rectangle((kx, ky), side, side, fc=colour, ec=colour,
                               alpha=0.5, zorder=3))  # fmt: skip
        point = ((dx + 0.3 * dw, dy + 0.4 * dh) if len(shape) == 3
                 else (dx, dy + 0.5 * dh))  # fmt: skip
        for corner in ((kx + side, ky), (kx + side, ky + side)):
            ax.plot(*zip(corner, point), color=colour, lw=1.2, zorder=3)
        label = ["Convolutions" if kind == "conv" else "Subsampling",
                 f"{k}x{k}"]  # fmt: skip
    else:  # every unit of the next stage sees every unit of this one
        for a, b in (((sx + sw, sy + sh), (dx, dy + dh)),
                     ((sx + sw, sy), (dx, dy))):  # fmt: skip
            ax.plot(*zip(a, b), color=colour, lw=1.2, zorder=3)
        label = (["Full", "connection"] if kind == "full"
                 else ["Gaussian", "connections"])  # fmt: skip
    _lines(ax, (sx + sw + dx) / 2, 6, label, fontsize=13, color=colour)


def _lines(ax, x: float, y: float, texts: list[str], fontsize: float,
           **style) -> None:  # fmt: skip
    """Centred lines of text, the first with its baseline at y.

    One baseline each, so that rows line up: 1.4 lines a font size apart;
    a unit of the axes is 7.2 points.
    """
    for i, text in enumerate(texts):
        ax.text(x, y - i * 1.4 * fontsize / 7.2, text, ha="center",
                va="baseline", fontsize=fontsize, **style)  # fmt: skip


# ------------------------------------------------------- trade-off plots


def plot_pareto(
    points: Mapping[str, tuple[float, ...]],
    axes: Sequence[str],
    *,
    title: str | None = None,
    log_x: bool = True,
) -> Figure:
    """One panel per cost axis (two per row): each model's score against
    that cost, the Pareto front (cheaper and better than every other model)
    joined and named.

    ``points``: for each model, a tuple of its costs followed by its score,
    e.g. ``{"resnet20": (params, macs, accuracy)}``; ``axes``: the labels
    of the costs, then of the score.
    """
    *cost_labels, score_label = axes
    columns = min(2, len(cost_labels))
    rows = math.ceil(len(cost_labels) / columns)
    fig = _figure(4.6 * columns, 3.6 * rows)
    names = list(points)
    scores = [points[name][-1] for name in names]
    for i, label in enumerate(cost_labels):
        ax = fig.add_subplot(rows, columns, i + 1)
        costs = [points[name][i] for name in names]
        front = pareto_front(costs, scores)
        ax.scatter(costs, scores, s=14, color="tab:gray")
        ax.plot([costs[j] for j in front], [scores[j] for j in front],
                "o-", color="tab:red", markersize=4,
                label="Pareto front")  # fmt: skip
        for j in front:
            ax.annotate(names[j], (costs[j], scores[j]), fontsize="x-small",
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
        ax.set(xlabel=label, ylabel=score_label if i % columns == 0 else None)
        if log_x:
            ax.set_xscale("log")
        ax.legend(fontsize="small", loc="lower right")
    if title:
        fig.suptitle(title)
    return fig
