"""The student version (scripts/make_student_version.py): the book without its solutions."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import REPO

SCRIPT = REPO / "scripts" / "make_student_version.py"
# Any solution directive, fenced with backticks or colons.
SOLUTION_DIRECTIVE = re.compile(r"(`{3,}|:{3,})\{solution(-start|-end)?\}")
EXERCISE_DIRECTIVE = re.compile(r"(`{3,}|:{3,})\{exercise(-start)?\}")


def load_script():
    spec = importlib.util.spec_from_file_location("make_student_version", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solution_cells(nb: nbformat.NotebookNode) -> tuple[list[str], list[int]]:
    """The texts of a notebook's solutions and the indices of the cells only they fill.

    Deliberately simpler than the script: it handles gated solutions that own
    whole cells (how the chapters write them) and solution blocks that fill a
    markdown cell, so that it checks the script rather than repeats it.
    """
    texts, indices, inside = [], [], False
    for i, cell in enumerate(nb.cells):
        starts = "{solution-start}" in cell.source
        if inside or starts:
            texts.append(cell.source)
            indices.append(i)
            inside = "{solution-end}" not in cell.source
        elif SOLUTION_DIRECTIVE.search(cell.source):
            texts.append(cell.source)
            indices.append(i)
    return texts, indices


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("student") / "book"
    result = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True, text=True)
    assert result.returncode == 0, f"make_student_version.py failed:\n{result.stdout}\n{result.stderr}"
    assert "removed" in result.stdout, f"the script printed no removal:\n{result.stdout}"
    return out


def source_notebooks() -> list[Path]:
    return sorted(REPO.glob("chapters/**/*.ipynb"))


def test_chapters_have_solutions_to_remove() -> None:
    found = sum(len(solution_cells(nbformat.read(p, as_version=4))[0]) for p in source_notebooks())
    assert found, "no solution in any chapter notebook: the student-version tests would check nothing"


def test_student_version_has_the_book_sources(student: Path) -> None:
    for name in ["chapters", "code/cnnbook", "_config.yml", "_toc.yml", "references.bib", "requirements.txt"]:
        assert (student / name).exists(), f"the student version lacks {name}"


@pytest.mark.parametrize("path", source_notebooks(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_student_notebook_keeps_everything_but_solutions(path: Path, student: Path) -> None:
    source = nbformat.read(path, as_version=4)
    out = nbformat.read(student / path.relative_to(REPO), as_version=4)
    nbformat.validate(out)
    _, solution_indices = solution_cells(source)
    expected = [cell.source for i, cell in enumerate(source.cells) if i not in solution_indices]
    assert [cell.source for cell in out.cells] == expected, "cells other than solutions were changed or removed"
    text = "\n".join(cell.source for cell in out.cells)
    assert not SOLUTION_DIRECTIVE.search(text), "a solution directive is left"
    n_exercises = len(EXERCISE_DIRECTIVE.findall("\n".join(cell.source for cell in source.cells)))
    assert len(EXERCISE_DIRECTIVE.findall(text)) == n_exercises, "exercises were removed"


def test_no_solution_text_left_anywhere(student: Path) -> None:
    """No file of the student version holds the text of a removed solution cell."""
    solutions = [text.strip() for p in source_notebooks() for text in solution_cells(nbformat.read(p, as_version=4))[0]]
    corpus = []
    for path in student.rglob("*"):
        if path.suffix == ".ipynb":
            corpus.append("\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells))
        elif path.is_file():
            corpus.append(path.read_bytes().decode("utf-8", errors="ignore"))
    everything = "\n".join(corpus)
    left = [text for text in solutions if text and text in everything]
    assert not left, f"solution text is still in the student version: {left}"


def test_strip_solutions_handles_every_form() -> None:
    """All the ways a solution can be written, in one notebook: only the solutions go."""
    nb = new_notebook(cells=[
        new_markdown_cell("Exercise text.\n\n````{solution-start} ex-a\n:class: dropdown\n````\nSolution prose A."),
        new_code_cell("answer_a = 42"),
        new_markdown_cell(""),
        new_markdown_cell("```{solution-end}\n```\nText after the solution."),
        new_markdown_cell("Before.\n\n:::{solution} ex-b\nSolution B with code:\n```python\nanswer_b = 1\n```\n:::\n\nAfter."),
        new_markdown_cell("````{solution} ex-c\n```python\nanswer_c = 2\n```\n````"),
        new_code_cell("check(answer)"),
    ])
    removed = load_script().strip_solutions(nb)
    nbformat.validate(nb)
    assert removed == ["gated solution 'ex-a' (4 cells)", "solution 'ex-b'", "solution 'ex-c'"]
    assert [cell.source for cell in nb.cells] == [
        "Exercise text.",
        "Text after the solution.",
        "Before.\n\n\nAfter.",
        "check(answer)",
    ]


def test_unclosed_gated_solution_is_an_error() -> None:
    nb = new_notebook(cells=[new_markdown_cell("```{solution-start} ex-a\n```"), new_code_cell("answer = 1")])
    with pytest.raises(ValueError, match="ex-a.*no \\{solution-end\\}"):
        load_script().strip_solutions(nb)
