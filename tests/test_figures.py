"""The figures of imgs/ (scripts/make_figures.py): drawn from the models, readable, reproducible."""

from __future__ import annotations

import importlib.util
import itertools
import re
from pathlib import Path

import matplotlib
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from cnnbook import models
from conftest import REPO

SCRIPT = REPO / "scripts" / "make_figures.py"


def load_script():
    spec = importlib.util.spec_from_file_location("make_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


figures = load_script()


def svg_texts(path: Path) -> list[str]:
    """The text elements of an SVG, in order (the script keeps text as text)."""
    return re.findall(r"<text\b[^>]*>([^<]*)</text>", path.read_text(encoding="utf-8"))


def test_stage_shapes_follow_the_model():
    net = models.create("lenet5")
    assert figures.stage_shapes(net, (1, 32, 32)) == [
        (1, 32, 32), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120,), (84,), (10,),
    ]  # fmt: skip
    # Read from the model, not typed in: another number of classes changes the last stage.
    assert figures.stage_shapes(models.create("lenet5", num_classes=7), (1, 32, 32))[-1] == (7,)


def test_lenet5_figure_is_written_with_its_labels(tmp_path):
    svg, png = figures.make("lenet5-architecture", tmp_path)
    assert (svg.name, png.name) == ("lenet5-architecture.svg", "lenet5-architecture.png")
    texts = svg_texts(svg)
    for label in ["INPUT", "32x32", "6@28x28", "6@14x14", "16@10x10", "16@5x5", "120", "84", "10",
                  "Convolutions", "Subsampling", "5x5", "2x2", "connection", "connections"]:  # fmt: skip
        assert label in texts, f"{label!r} is not a text of the figure; its texts: {texts}"
    with Image.open(png) as image:
        assert image.size == (1800, 600)  # 12 x 4 inches at 150 dpi


def test_reruns_write_identical_svg(tmp_path):
    first = figures.make("lenet5-architecture", tmp_path / "a")[0].read_bytes()
    second = figures.make("lenet5-architecture", tmp_path / "b")[0].read_bytes()
    assert first == second
    assert b"<dc:date>" not in first


@pytest.mark.parametrize("name", list(figures.FIGURES))
def test_nothing_overlaps_the_text(name):
    with matplotlib.rc_context(figures.STYLE):
        fig = figures.FIGURES[name]()
        renderer = FigureCanvasAgg(fig).get_renderer()
        ax = fig.axes[0]
        texts = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts]
        shapes = [a.get_window_extent(renderer) for a in [*ax.patches, *ax.lines]]
    for text, box in texts:
        assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1), f"{text!r} is cut off"
        assert not any(box.overlaps(shape) for shape in shapes), f"{text!r} overlaps the drawing"
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"


def test_committed_figures_are_up_to_date(tmp_path):
    # Compared by their texts, which do not depend on the matplotlib version (the bytes may).
    for name in figures.FIGURES:
        committed = REPO / "imgs" / f"{name}.svg"
        assert committed.exists(), f"{committed} is missing: run python scripts/make_figures.py {name}"
        fresh = figures.make(name, tmp_path)[0]
        assert svg_texts(committed) == svg_texts(fresh), f"{committed} is stale: run scripts/make_figures.py {name}"


def test_unknown_figure_names_the_known_ones():
    with pytest.raises(ValueError, match="lenet5-architecture"):
        figures.make("lenet-5")
    with pytest.raises(SystemExit, match="lenet5-architecture"):
        figures.main(["lenet-5"])
