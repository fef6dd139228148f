"""Make the student version of the book: the same sources, without the solutions.

    python scripts/make_student_version.py OUT_DIR

copies the book's sources to OUT_DIR (which must not exist or be empty) and
removes every solution from the chapter notebooks, printing what it removed:

- a gated solution (sphinx-exercise): from the markdown cell that opens
  ```{solution-start} label``` to the one that holds ```{solution-end}```,
  with every cell in between (code cells included);
- a plain ```{solution}``` or ``:::{solution}`` block inside a markdown cell.

Exercises, check functions and all other cells are kept as they are. (The
theme's ``hide_solutions`` option cannot do this: it crashes on gated
solutions in sphinx-exercise 1.2.1.)
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
# What a student version holds: everything needed to read, run and build the book.
SOURCES = ["chapters", "code", "imgs", "_config.yml", "_toc.yml", "references.bib", "requirements.txt", "README.md", "Makefile"]
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info", ".ipynb_checkpoints", "_build", "*.pt")

# A MyST directive block named solution or solution-start, fenced with three or
# more backticks or colons, up to the closing fence of the same length.
SOLUTION_BLOCK = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|:{3,})\{(?P<name>solution|solution-start)\}(?P<label>[^\n]*)\n"
    r".*?^[ \t]*(?P=fence)[ \t]*$\n?",
    re.MULTILINE | re.DOTALL,
)
SOLUTION_END = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|:{3,})\{solution-end\}[^\n]*\n.*?^[ \t]*(?P=fence)[ \t]*$\n?",
    re.MULTILINE | re.DOTALL,
)


def strip_solutions(nb: nbformat.NotebookNode) -> list[str]:
    """Remove every solution from ``nb`` in place; return one line per removed solution."""
    kept: list[nbformat.NotebookNode] = []
    removed: list[str] = []
    gated: str | None = None  # the label of the gated solution being removed, while inside one
    gated_cells = 0  # how many cells it spans so far
    for cell in nb.cells:
        changed = gated is not None
        if changed:
            gated_cells += 1
        text, left = cell.source, []  # left: the parts of this cell that are not solutions
        while text:
            if gated is not None:
                end = SOLUTION_END.search(text) if cell.cell_type == "markdown" else None
                if end is None:
                    break  # the rest of the cell belongs to the solution
                removed.append(f"gated solution {gated!r} ({gated_cells} cells)")
                gated, text = None, text[end.end():]
                continue
            block = SOLUTION_BLOCK.search(text) if cell.cell_type == "markdown" else None
            if block is None:
                left.append(text)
                break
            changed = True
            left.append(text[: block.start()])
            label = block["label"].strip() or "(no label)"
            if block["name"] == "solution":
                removed.append(f"solution {label!r}")
            else:
                gated, gated_cells = label, 1
            text = text[block.end():]
        rest = "".join(left).strip("\n")
        if not changed:
            kept.append(cell)
        elif rest.strip():
            cell.source = rest
            kept.append(cell)
    if gated is not None:
        raise ValueError(f"the gated solution {gated!r} has no {{solution-end}}: add one after its last cell")
    nb.cells = kept
    return removed


def make_student_version(out: Path) -> None:
    """Copy the book's sources to ``out`` and strip the solutions from its notebooks."""
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty: give a new or empty folder, so that no old file is left behind")
    out.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=IGNORED)
        elif source.is_file():
            shutil.copy2(source, out / name)
    total = 0
    for path in sorted((out / "chapters").glob("**/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        try:
            removed = strip_solutions(nb)
        except ValueError as error:
            raise SystemExit(f"{path.relative_to(out)}: {error}") from None
        nbformat.validate(nb)
        nbformat.write(nb, path)
        for line in removed:
            print(f"{path.relative_to(out)}: removed {line}")
        total += len(removed)
    print(f"Student version in {out}: {total} solutions removed.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="where to write the student version (a new or empty folder)")
    args = parser.parse_args(argv)
    make_student_version(args.out_dir)


if __name__ == "__main__":
    sys.exit(main())
