"""Small helpers the chapter notebooks use to talk to the book.

The rendered book takes the numbers in its prose from the run (myst-nb's
``glue``); in Colab or a plain Jupyter, where myst-nb is not installed,
:func:`glue` still shows the value, so a notebook runs the same everywhere.
"""

from __future__ import annotations

from typing import Any

from .profiles import Profile

__all__ = ["glue", "check_learned"]


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
