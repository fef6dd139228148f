"""Run profiles: one notebook, three budgets.

Every chapter runs unchanged under three budgets, chosen by the environment
variable ``CNNBOOK_PROFILE``:

=========  ========================  ====================================
profile    where                     budget per chapter
=========  ========================  ====================================
``smoke``  tests and CI              60 s on a 2-core CPU, a few hundred
                                     images
``cpu``    a laptop, the book build  5 minutes on a 2-core CPU, a subset
``full``   Colab T4 / any CUDA GPU   5 minutes on a T4, the whole data set
=========  ========================  ====================================

Without the variable the profile is ``full`` when CUDA is available, else
``cpu``. A chapter reads its numbers from the profile::

    profile = profiles.show()  # prints the banner at the top of a chapter
    epochs = profile.pick(smoke=1, cpu=4, full=15)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch

__all__ = ["PROFILES", "Profile", "current", "show"]

PROFILES: dict[str, str] = {
    "smoke": "a quick check that everything runs (tests and CI): tiny data, "
    "numbers mean little",
    "cpu": "a short run on a CPU: a subset of the data, about 5 minutes a "
    "chapter",
    "full": "the whole data set on a GPU: about 5 minutes a chapter on a "
    "Colab T4",
}

T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    """The active budget (``name``) and the device the chapter trains on."""

    name: str
    device: torch.device

    def pick(self, *, smoke: T, cpu: T, full: T) -> T:
        """The value for the active profile, e.g. ``profile.pick(smoke=1,
        cpu=4, full=15)`` epochs.
        """
        return {"smoke": smoke, "cpu": cpu, "full": full}[self.name]

    def __str__(self) -> str:
        where = f"{self.name!r} on {self.device.type}"
        return f"profile {where}: {PROFILES[self.name]}"


def default_device() -> torch.device:
    """The first CUDA GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def current() -> Profile:
    """The profile named by ``CNNBOOK_PROFILE`` (default: ``full`` with
    CUDA, else ``cpu``).
    """
    device = default_device()
    name = os.environ.get("CNNBOOK_PROFILE", "").strip().lower()
    if not name:
        name = "full" if device.type == "cuda" else "cpu"
    if name not in PROFILES:
        raise ValueError(
            f"CNNBOOK_PROFILE={name!r} is not a profile; use one of "
            f"{', '.join(PROFILES)} "
            "(or unset it to choose by the hardware)."
        )
    return Profile(name, device)


def show() -> Profile:
    """Print which profile and device this run uses, and return the profile."""
    profile = current()
    gpu = (
        f" ({torch.cuda.get_device_name(profile.device)})"
        if profile.device.type == "cuda"
        else ""
    )
    print(
        f"cnnbook: {profile}{gpu}. Set CNNBOOK_PROFILE=smoke|cpu|full to "
        "change it."
    )
    return profile
