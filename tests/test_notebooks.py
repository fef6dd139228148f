"""How chapter notebooks are stored: no outputs, the python3 kernel, the Colab install cell, all in the TOC.

Running them is nbval's job (``--nbval-lax`` in pytest.ini); the book build
runs them too.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from conftest import REPO, repository_url, toc_files

NOTEBOOKS = sorted(REPO.glob("chapters/**/*.ipynb"))
COLAB_GUARD = '"google.colab" in sys.modules'


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_there_are_chapter_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks under chapters/: the parametrized checks below would test nothing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=relative)
def test_notebook_is_stored_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    assert kernel == "python3", (
        f"{relative(path)}: kernelspec {kernel!r}; set it to python3 (nbval and the book build start that kernel)"
    )
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, (
        f"{relative(path)}: code cells {dirty} store outputs or execution counts; clear them before committing "
        f"(jupyter nbconvert --clear-output --inplace {relative(path)})"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=relative)
def test_first_code_cell_installs_cnnbook_in_colab(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{relative(path)}: no code cell"
    install = f"git+{repository_url()}#subdirectory=code"
    assert COLAB_GUARD in code[0] and install in code[0], (
        f"{relative(path)}: the first code cell must install the course package in Colab only, i.e. contain\n"
        f'    if {COLAB_GUARD}:\n        %pip install -q "{install}"\n'
        f"(the address is repository.url in _config.yml); it is:\n{code[0]}"
    )


def test_toc_and_chapter_notebooks_agree() -> None:
    toc = toc_files()
    missing = [doc for doc in toc if not any((REPO / doc).with_suffix(ext).is_file() for ext in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    in_toc = set(toc)
    orphans = [relative(p) for p in NOTEBOOKS if relative(p.with_suffix("")) not in in_toc]
    assert not orphans, f"notebooks missing from _toc.yml (the book would not show them): {orphans}"
