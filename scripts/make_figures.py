"""Draw the book's figures into imgs/ (SVG for the pages, PNG at 150 dpi for everything else).

    python scripts/make_figures.py                        # every figure
    python scripts/make_figures.py lenet5-architecture    # only the named ones

Each figure is a function that returns a matplotlib Figure, listed in
``FIGURES`` under the file name it is saved as; a chapter adds its own.
Sizes come from the models themselves, so a figure follows the code. Reruns
write byte-identical SVG files (fixed hash salt, no date), so git shows a
change only when a drawing changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnnbook import models

REPO = Path(__file__).resolve().parents[1]
# Okabe-Ito hues (safe for colour-blind readers), green and purple a shade darker so that text in them
# stays legible: (edge and text, fill) per kind of stage, named after the operation that makes it.
COLOURS = {
    "input": ("#555555", "#e6e6e6"),
    "conv": ("#0072B2", "#cfe6f5"),
    "subsample": ("#D55E00", "#fbe0c8"),
    "full": ("#00795A", "#c5eee0"),
    "gaussian": ("#A8467F", "#f3dbe8"),
}
# Text stays text in the SVG (searchable, small; DejaVu Sans, else the reader's sans-serif); a fixed
# salt makes its ids the same on every run.
STYLE = {"svg.fonttype": "none", "svg.hashsalt": "cnnbook", "font.family": "sans-serif"}


def stage_shapes(model: torch.nn.Module, input_size: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The shape after each stage: the input, every change of shape in ``features``, then ``f6`` and ``output``."""
    outputs: list[tuple[int, ...]] = []
    layers = [*model.features, model.f6, model.output]
    hooks = [layer.register_forward_hook(lambda m, i, out: outputs.append(tuple(out.shape[1:]))) for layer in layers]
    with torch.no_grad():
        model(torch.zeros(1, *input_size))
    for hook in hooks:
        hook.remove()
    # An activation keeps its input's shape; only the layers that change it are stages.
    shapes = [tuple(input_size)]
    for shape in outputs:
        if shape != shapes[-1]:
            shapes.append(shape)
    return [shape[:1] if shape[1:] == (1, 1) else shape for shape in shapes]  # C5's 120x1x1 is a vector


def draw_lenet5() -> Figure:
    """LeNet-5 in the manner of the paper's Fig. 2, with the sizes of ``models.create("lenet5")``."""
    shapes = stage_shapes(models.create("lenet5"), models.spec("lenet5").input_size)
    # The paper's names, and the operation that makes each stage from the one before it.
    paper = [("INPUT", "input"), ("C1", "conv"), ("S2", "subsample"), ("C3", "conv"), ("S4", "subsample"),
             ("C5", "conv"), ("F6", "full"), ("OUTPUT", "gaussian")]  # fmt: skip
    if len(shapes) != len(paper):
        raise RuntimeError(f"lenet5 has {len(shapes)} stages {shapes}, the figure draws {len(paper)}: update it")

    fig = Figure(figsize=(12, 4))
    ax = fig.add_axes((0, 0, 1, 1), xlim=(0, 120), ylim=(0, 40))  # 1 unit = 0.1 inch in x and y
    ax.set_axis_off()
    unit, step, middle = 0.45, 0.7, 21.0  # units per pixel of a map, step between stacked maps, centre line
    # A stack shows a few of its maps; a vector is a thin bar whose height grows with its length.
    layers = [min(s[0], 2 + s[0] // 3) if len(s) == 3 else 0 for s in shapes]
    widths = [s[1] * unit + (n - 1) * step if len(s) == 3 else 1.4 for s, n in zip(shapes, layers)]
    # Each stage gets a slot wide enough for its labels; the space left over is shared out between them.
    slots = [max(w + 1.5, 12.5) for w in widths]
    spare = (120 - 2 - sum(slots)) / (len(slots) - 1)
    faces = []  # the front face of each stage: (left, bottom, width, height)
    left = 1.0
    for (name, kind), shape, prev, n, width, slot in zip(paper, shapes, [None, *shapes], layers, widths, slots):
        edge, fill = COLOURS[kind]
        x = left + (slot - width) / 2
        if len(shape) == 3:  # the front map at the lower left, the others behind it
            side = shape[1] * unit
            bottom = middle - width / 2
            for k in reversed(range(n)):
                ax.add_patch(Rectangle((x + k * step, bottom + k * step), side, side, fc=fill, ec=edge, lw=1.2))
            face = (x, bottom, side, side)
            size = f"{shape[1]}x{shape[2]}" if shape[0] == 1 else f"{shape[0]}@{shape[1]}x{shape[2]}"
            what = "" if name == "INPUT" else ": feature maps" if name == "C1" else ": f. maps"
        else:
            height = 4 + 0.12 * shape[0]
            face = (x, middle - height / 2, width, height)
            ax.add_patch(Rectangle(face[:2], width, height, fc=fill, ec=edge, lw=1.2))
            size, what = str(shape[0]), "" if name == "OUTPUT" else ": layer"
        lines(ax, x + width / 2, 37, [f"{name}{what}", size], fontsize=14)
        if prev is not None:
            connect(ax, faces[-1], face, kind, prev, shape, edge, unit)
        faces.append(face)
        left += slot + spare
    return fig


def connect(ax, src: tuple, dst: tuple, kind: str, prev: tuple, shape: tuple, colour: str, unit: float) -> None:
    """Lines from one stage's front face to the next, and the operation's name under them."""
    (sx, sy, sw, sh), (dx, dy, dw, dh) = src, dst
    if kind in ("conv", "subsample"):
        # One unit of the next stage sees a k x k window of this one (the paper's kernel squares).
        out = shape[1] if len(shape) == 3 else 1  # C5's maps are 1x1
        k = prev[1] - out + 1 if kind == "conv" else prev[1] // out
        side = k * unit
        kx, ky = sx + 0.75 * (sw - side), sy + 0.6 * (sh - side)  # upper right, clear of the incoming lines
        ax.add_patch(Rectangle((kx, ky), side, side, fc=colour, ec=colour, alpha=0.5, zorder=3))
        point = (dx + 0.3 * dw, dy + 0.4 * dh) if len(shape) == 3 else (dx, dy + 0.5 * dh)
        for corner in ((kx + side, ky), (kx + side, ky + side)):
            ax.plot(*zip(corner, point), color=colour, lw=1.2, zorder=3)
        label = ["Convolutions" if kind == "conv" else "Subsampling", f"{k}x{k}"]
    else:  # every unit of the next stage sees every unit of this one
        for a, b in (((sx + sw, sy + sh), (dx, dy + dh)), ((sx + sw, sy), (dx, dy))):
            ax.plot(*zip(a, b), color=colour, lw=1.2, zorder=3)
        label = ["Full", "connection"] if kind == "full" else ["Gaussian", "connections"]
    lines(ax, (sx + sw + dx) / 2, 6, label, fontsize=13, color=colour)


def lines(ax, x: float, y: float, texts: list[str], fontsize: float, **style) -> None:
    """Centred lines of text, the first with its baseline at y; one baseline each, so that rows line up."""
    for i, text in enumerate(texts):  # 1.4 lines a font size apart; a unit is 7.2 points
        ax.text(x, y - i * 1.4 * fontsize / 7.2, text, ha="center", va="baseline", fontsize=fontsize, **style)


FIGURES = {"lenet5-architecture": draw_lenet5}


def save(fig: Figure, name: str, out_dir: Path) -> list[Path]:
    """Write ``name``.svg and ``name``.png into ``out_dir``; the SVG carries no date, so reruns are identical."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.svg", out_dir / f"{name}.png"]
    fig.savefig(paths[0], metadata={"Date": None}, facecolor="white")
    fig.savefig(paths[1], dpi=150, facecolor="white")
    return paths


def make(name: str, out_dir: Path = REPO / "imgs") -> list[Path]:
    """Draw the figure ``name`` of ``FIGURES`` and save it into ``out_dir``; returns the files written."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; the figures are: {', '.join(FIGURES)}")
    with matplotlib.rc_context(STYLE):  # not rcParams.update: importing this module changes nothing
        return save(FIGURES[name](), name, out_dir)


def main(names: list[str]) -> None:
    unknown = [name for name in names if name not in FIGURES]
    if unknown:
        sys.exit(f"unknown figure(s) {', '.join(unknown)}; the figures are: {', '.join(FIGURES)}")
    for name in names or FIGURES:
        for path in make(name):
            print(path.relative_to(REPO))


if __name__ == "__main__":
    main(sys.argv[1:])
