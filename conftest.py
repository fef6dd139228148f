"""Shared set-up of the test suite: the environment, the repository, the built book.

The environment is set when this module is imported, before any test runs,
so that everything started from the tests inherits it: the notebooks that
nbval runs (``--nbval-lax`` in pytest.ini) start their kernels with this
process's environment, and so does the book build. It sits at the
repository's root so that it also applies to ``python -m pytest chapters/x.ipynb``.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent

# The smallest budget: every chapter in about a minute on a 2-core CPU.
os.environ.setdefault("CNNBOOK_PROFILE", "smoke")
# The offline copies of the data sets beside the repository (read-only in CI).
_SHARED_DATA = REPO.parent / "shared" / "data"
if _SHARED_DATA.is_dir():
    os.environ.setdefault("CNNBOOK_DATA", str(_SHARED_DATA))
# Decoded data sets are cached in the repository (git-ignored), never in the data root.
os.environ.setdefault("CNNBOOK_CACHE", str(REPO / ".cache"))
# No MPLBACKEND here: set to Agg it would also replace the notebook kernels' inline
# backend, and the built pages would show "<Figure size ...>" instead of the figures.
# Without a display, matplotlib chooses Agg in the test processes by itself.
# One thread per process: the two pytest workers (and their notebook kernels) share two
# cores, and oversubscribed OpenMP threads make torch many times slower, not faster.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def read_config() -> dict:
    """The book's ``_config.yml``."""
    return yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))


def toc_files() -> list[str]:
    """The files of the table of contents, in reading order, without extension (``chapters/intro``, ...)."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        walk(part["chapters"])
    return [str(Path(f).with_suffix("")) for f in files]


def repository_url() -> str:
    """The repository's address as ``_config.yml`` names it, e.g. ``https://github.com/owner/name``."""
    return read_config()["repository"]["url"].rstrip("/")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the book once, warnings as errors, and return its HTML folder.

    The notebooks are executed by the build (``execute_notebooks: force``)
    under the profile set above.
    """
    out = tmp_path_factory.mktemp("book")
    # The jupyter-book script of the environment running the tests.
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(REPO), "--path-output", str(out), "-W", "--keep-going"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # without terminal colours
        problems = "\n".join(
            line for line in log.splitlines()
            if re.search(r"WARNING|ERROR|Error", line) and not line.startswith("[IPKernelApp]")  # its TCP notice
        )
        pytest.fail(
            f"The book build failed: {' '.join(command)}\n"
            f"Its warnings and errors:\n{problems}\n\nThe end of its log:\n{log[-4000:]}",
            pytrace=False,
        )
    return out / "_build" / "html"


# Memory of the test processes. The model tests build and drop hundreds of networks,
# up to VGG-19's 575 MB; glibc keeps most of what they free for reuse, so a worker's
# resident memory only grew. Each test gives it back, and the session reports each
# worker's peak (the number to watch: a worker should stay under 4 GB).

# glibc's malloc_trim returns the freed heap to the system; other C libraries lack it.
# CDLL(None): the C library this process already runs on.
_malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """After each test, its fixtures and arguments dropped, return the memory they freed."""
    yield
    if _malloc_trim is not None:
        _malloc_trim(0)


def peak_memory() -> dict[str, float]:
    """Peak resident memory in GB of this process ("self") and of its largest finished child ("child",
    e.g. a notebook kernel or the book build).

    A child's count includes the memory of this process when it started the child
    (Linux counts the pages a forked process shares with its parent).
    """
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, in KiB on Linux
    return {
        who: resource.getrusage(which).ru_maxrss * scale / 1e9
        for who, which in (("self", resource.RUSAGE_SELF), ("child", resource.RUSAGE_CHILDREN))
    }


def _describe(peak: dict[str, float]) -> str:
    return f"{peak['self']:.2f} GB (its largest child process: {peak['child']:.2f} GB)"


_worker_peaks: dict[str, dict[str, float]] = {}


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workeroutput"):  # an xdist worker: send its peak to the controller
        session.config.workeroutput["peak_memory"] = peak_memory()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """An xdist worker finished (the hook exists only with pytest-xdist): keep its peak."""
    peak = getattr(node, "workeroutput", {}).get("peak_memory")
    if peak is not None:
        _worker_peaks[node.gateway.id] = peak


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if hasattr(config, "workeroutput"):
        return
    terminalreporter.section("peak resident memory")
    if not _worker_peaks:  # no xdist workers (-n 0): the tests ran in this process
        terminalreporter.write_line(f"test process: {_describe(peak_memory())}")
        return
    for worker, peak in sorted(_worker_peaks.items()):
        terminalreporter.write_line(f"worker {worker}: {_describe(peak)}")
    # Its children are the workers, reported above.
    terminalreporter.write_line(f"controller: {peak_memory()['self']:.2f} GB")


# ----- Shared by the model tests (tests/models/). A conftest.py of their own would shadow this
# module's name, which the other tests import (`from conftest import REPO`).

@pytest.fixture
def feature_shapes():
    """``feature_shapes(name, **options)``: (C, H, W) after every named child of ``features``, on the meta device."""
    import torch

    from cnnbook import models
    from cnnbook.summary import output_shapes

    def shapes(name: str, **options) -> dict[str, tuple[int, ...]]:
        with torch.device("meta"):  # shapes only: nothing allocated, nothing computed
            model = models.create(name, **options)
            stages = [f"features.{child}" for child, _ in model.features.named_children()]
            found, _ = output_shapes(model, torch.empty(2, *models.spec(name).input_size), stages)
        return {stage.removeprefix("features."): shape[1:] for stage, shape in found.items()}

    return shapes


@pytest.fixture
def randomise_batchnorm_statistics():
    """Gives every BatchNorm non-trivial running statistics, so that a misplaced one or another epsilon would show
    when a model is compared with a reference implementation that has the same weights."""
    import torch

    @torch.no_grad()
    def randomise(model: torch.nn.Module) -> None:
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)

    return randomise
