"""Code that the pages show fits the page.

The rendered book shows about 75 characters of code at a 1280-pixel window,
and Colab a little more: every code cell of a chapter, and every line of the
package (which ``book.show_source`` puts on the pages), stays within 79
characters. ``ruff format`` wraps the package's code at that width
(``code/pyproject.toml``); comments, docstrings and strings are wrapped by
hand.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
WIDTH = 79


def long_lines(text: str) -> list[str]:
    """``"line N (M characters): start of the line"`` for each line over WIDTH."""
    return [
        f"line {number} ({len(line)} characters): {line.strip()[:50]}"
        for number, line in enumerate(text.splitlines(), 1)
        if len(line) > WIDTH
    ]


def test_long_lines_are_found() -> None:
    assert long_lines("x = 1\n" + "y" * (WIDTH + 1)) == [
        f"line 2 ({WIDTH + 1} characters): {'y' * 50}"
    ]
    assert long_lines("z" * WIDTH) == []


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "code" / "cnnbook").rglob("*.py")),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_package_lines_fit(path: Path) -> None:
    too_long = long_lines(path.read_text(encoding="utf-8"))
    assert not too_long, (
        f"{path.relative_to(REPO)} has lines over {WIDTH} characters "
        "(run `ruff format code`, wrap comments and strings by hand):\n"
        + "\n".join(too_long)
    )


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "chapters").glob("*.ipynb")),
    ids=lambda p: p.name,
)
def test_notebook_code_cells_fit(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    # The Colab install line holds the repository's address, which does not
    # wrap (tests/test_notebooks.py checks it); every other line must fit.
    too_long = [
        f"cell {index}, {line}"
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for line in long_lines(cell.source)
        if "%pip install" not in line
    ]
    assert not too_long, (
        f"{path.name} has code lines over {WIDTH} characters:\n"
        + "\n".join(too_long)
    )
