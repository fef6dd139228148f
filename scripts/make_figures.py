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
from matplotlib.figure import Figure

from cnnbook import plots

REPO = Path(__file__).resolve().parents[1]
# Text stays text in the SVG (searchable, small; DejaVu Sans, else the reader's sans-serif); a fixed
# salt makes its ids the same on every run.
STYLE = {"svg.fonttype": "none", "svg.hashsalt": "cnnbook", "font.family": "sans-serif"}

# The drawings live in the package (cnnbook.plots), so that a chapter can draw the same figure with a
# code cell, which works in Colab, where the book's imgs/ folder is missing.
stage_shapes = plots.lenet5_stage_shapes
draw_lenet5 = plots.draw_lenet5_architecture


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
