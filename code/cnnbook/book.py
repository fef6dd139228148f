"""Small helpers the chapter notebooks use to talk to the book.

The rendered book takes the numbers in its prose from the run (myst-nb's
``glue``); in Colab or a plain Jupyter, where myst-nb is not installed,
:func:`glue` still shows the value, so a notebook runs the same everywhere.
"""

from __future__ import annotations

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
        # A string's repr has quotes, and {glue:text} shows the repr: glue the bare text.
        myst_glue(name, _Text(value) if isinstance(value, str) else value, display=display)


class _Text(str):
    """A string whose repr is itself, so that glued text reads without quotes."""

    def __repr__(self) -> str:
        return str(self)


def check_learned(metric: float, profile: Profile, *, smoke: float, cpu: float, full: float, what: str) -> None:
    """Fail loudly when a training run did not reach the profile's threshold.

    ``metric`` is a fraction (e.g. test accuracy 0.987). The thresholds are per
    profile because a smoke run sees a few hundred images and a full run the
    whole data set.
    """
    threshold = profile.pick(smoke=smoke, cpu=cpu, full=full)
    if not metric >= threshold:
        raise AssertionError(
            f"{what} is {metric:.2%}, below the {threshold:.1%} this run should reach under the "
            f"{profile.name!r} profile: training is broken (check the learning rate, the data and the loss)."
        )
    print(f"OK: {what} {metric:.2%} >= {threshold:.1%} (threshold of the {profile.name!r} profile).")


class Source:
    """A piece of the package's source, shown as a highlighted code block.

    The notebook's output is Markdown (a fenced ``python`` block), which both
    the book (myst-nb) and plain Jupyter or Colab render; a ``{literalinclude}``
    directive would show as raw markup outside the book.
    """

    def __init__(self, code: str, where: str) -> None:
        self.code, self.where = code, where

    def _repr_markdown_(self) -> str:
        fence = "````" if "```" in self.code else "```"
        return f"{fence}python\n{self.code}{fence}\n\n<small>{self.where}</small>\n"

    def __repr__(self) -> str:
        return f"# {self.where}\n{self.code}"


def show_source(obj: Any) -> Source:
    """The source of a class, function or module of ``cnnbook`` (or any Python object), to show in a chapter.

    ``book.show_source(BasicBlock)`` in a code cell shows the block's code as
    it is in the package, so the page never drifts from the code. Raises a
    ``TypeError`` for an object without Python source (a built-in, an instance).
    """
    try:
        lines, start = inspect.getsourcelines(obj)
        file = inspect.getsourcefile(obj)
    except (TypeError, OSError) as error:
        raise TypeError(
            f"show_source: no Python source for {obj!r} ({error}); pass a class, function or module, "
            "e.g. book.show_source(models.resnet.BasicBlock)"
        ) from None
    path = Path(file or "?")
    parts = path.parts
    shown = "/".join(parts[parts.index("cnnbook"):]) if "cnnbook" in parts else path.name
    end = start + len(lines) - 1
    where = f"{shown}, lines {max(start, 1)}-{max(end, 1)}"
    return Source(textwrap.dedent("".join(lines)), where)
