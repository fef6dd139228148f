"""Small helpers the chapter notebooks use to talk to the book.

The rendered book takes the numbers in its prose from the run (myst-nb's
``glue``); in Colab or a plain Jupyter, where myst-nb is not installed,
:func:`glue` still shows the value, so a notebook runs the same everywhere.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path
from typing import Any

from .profiles import Profile

__all__ = ["glue", "check_learned", "show_source", "Source"]


def glue(name: str, value: Any, display: bool = False) -> None:
    """Make ``value`` available to the prose as ``{glue:text}`name```.

    Outside a book build (no myst-nb), print ``name = value`` instead so the
    number is still visible to whoever runs the notebook. Returns nothing, so
    a cell that ends with a glue shows no stray output.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        print(f"{name} = {value}")
    else:
        # A string's repr has quotes, and {glue:text} shows the repr: glue the
        # bare text.
        myst_glue(
            name,
            _Text(value) if isinstance(value, str) else value,
            display=display,
        )


class _Text(str):
    """A string whose repr is itself, so that glued text reads without
    quotes.
    """

    def __repr__(self) -> str:
        return str(self)


def check_learned(
    metric: float,
    profile: Profile,
    *,
    smoke: float,
    cpu: float,
    full: float,
    what: str,
) -> None:
    """Fail loudly when a training run did not reach the profile's threshold.

    ``metric`` is a fraction (e.g. test accuracy 0.987). The thresholds are per
    profile because a smoke run sees a few hundred images and a full run the
    whole data set.
    """
    threshold = profile.pick(smoke=smoke, cpu=cpu, full=full)
    if not metric >= threshold:
        raise AssertionError(
            f"{what} is {metric:.2%}, below the {threshold:.1%} this run "
            "should reach under the "
            f"{profile.name!r} profile: training is broken (check the "
            "learning rate, the data and the loss)."
        )
    print(
        f"OK: {what} {metric:.2%} >= {threshold:.1%} (threshold of the "
        f"{profile.name!r} profile)."
    )


class Source:
    """A piece of the package's source, shown as a highlighted code block.

    The notebook's output is Markdown (a fenced ``python`` block), which both
    the book (myst-nb) and plain Jupyter or Colab render; a
    ``{literalinclude}`` directive would show as raw markup outside the book.
    """

    def __init__(self, code: str, where: str) -> None:
        self.code, self.where = code, where

    def _repr_markdown_(self) -> str:
        fence = "````" if "```" in self.code else "```"
        where = f"<small>{self.where}</small>"
        return f"{fence}python\n{self.code}{fence}\n\n{where}\n"

    def __repr__(self) -> str:
        return f"# {self.where}\n{self.code}"


def show_source(obj: Any, name: str | None = None) -> Source:
    """The source of a class, function or module of ``cnnbook`` (or any Python
    object), to show in a chapter.

    ``book.show_source(BasicBlock)`` in a code cell shows the block's code as
    it is in the package, so the page never drifts from the code. For a
    constant, pass its module and its name: ``book.show_source(vgg,
    "CONFIGS")`` shows the assignment. Raises a ``TypeError`` for an object
    without Python source (a built-in, an instance), a ``ValueError`` for a
    name the module does not assign.
    """
    try:
        lines, start = inspect.getsourcelines(obj)
        file = inspect.getsourcefile(obj)
    except (TypeError, OSError) as error:
        raise TypeError(
            f"show_source: no Python source for {obj!r} ({error}); pass a "
            "class, function or module, "
            "e.g. book.show_source(models.resnet.BasicBlock)"
        ) from None
    if name is not None:
        lines, start = _assignment(obj, lines, name)
    path = Path(file or "?")
    parts = path.parts
    shown = (
        "/".join(parts[parts.index("cnnbook") :])
        if "cnnbook" in parts
        else path.name
    )
    end = start + len(lines) - 1
    where = f"{shown}, lines {max(start, 1)}-{max(end, 1)}"
    # The formatter's markers are for the package's maintainers, not readers.
    code = "".join(line.replace("  # fmt: skip", "") for line in lines)
    return Source(textwrap.dedent(code), where)


def _assignment(
    module: Any, lines: list[str], name: str
) -> tuple[list[str], int]:
    """The lines of the module-level statement that assigns ``name`` (with
    its comments above), and its first line.
    """
    if not inspect.ismodule(module):
        raise TypeError(
            f"show_source: a name ({name!r}) needs a module as "
            f"the first argument, got {module!r}"
        )
    for node in ast.parse("".join(lines)).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            first = node.lineno
            # the comment that explains it
            while first > 1 and lines[first - 2].lstrip().startswith("#"):
                first -= 1
            return lines[first - 1 : node.end_lineno], first
    raise ValueError(
        f"show_source: {module.__name__} assigns no {name!r} at module level"
    )
