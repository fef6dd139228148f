"""The model zoo: every network of the course, created by name.

    >>> from cnnbook import models
    >>> net = models.create("lenet5")            # the paper's 10 classes
    >>> net = models.create("resnet20", num_classes=100)
    >>> models.names()[:3]

Each family lives in its own file (``lenet.py``, ``resnet.py``, ...) and
registers its builders with :func:`register`. A registered builder is a plain
function ``builder(num_classes=..., **kwargs) -> nn.Module``; the registry also
records the input size the paper used, so that summaries, the ``cnnbook list``
table and the tests can feed each model what it expects.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

__all__ = [
    "ModelSpec",
    "Reference",
    "register",
    "create",
    "names",
    "families",
    "spec",
]


@dataclass(frozen=True)
class Reference:
    """The parameter count a model is checked against, and where it comes from.

    Either a published figure (``params``, rounded to ``rounded_to`` as
    printed, e.g. 270_000 rounded to 10_000 for "0.27M"), or a reference
    implementation counted live (``builder="torchvision.models.resnet50"`` or
    ``builder="timm:inception_v4"``), so that no count is typed by hand twice.
    ``difference`` is ours minus the reference where a real difference exists,
    and ``why`` explains it.
    """

    where: str
    params: int | None = None
    builder: str | None = None
    rounded_to: int = 1
    difference: int = 0
    why: str = ""

    def count(self) -> int:
        """The reference's number of trainable parameters."""
        if self.params is not None:
            return self.params
        if self.builder is None:
            raise ValueError(
                f"Reference({self.where!r}) names neither params nor a builder"
            )
        if self.builder.startswith("timm:"):
            timm = importlib.import_module("timm")
            model = timm.create_model(
                self.builder[len("timm:") :], pretrained=False
            )
        else:
            module, _, function = self.builder.rpartition(".")
            model = getattr(importlib.import_module(module), function)()
        return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model name."""

    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int]  # (channels, height, width) of the paper
    num_classes: int  # the paper's number of classes
    family: str  # the file it lives in, e.g. "resnet"
    reference: Reference | None  # the parameter count the tests check against


_REGISTRY: dict[str, ModelSpec] = {}


def register(
    name: str | None = None,
    *,
    input_size: tuple[int, int, int] = (3, 224, 224),
    num_classes: int = 1000,
    reference: Reference | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that adds a builder to the zoo under ``name`` (default: the
    function's name).
    """

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"model name {key!r} is registered twice")
        family = builder.__module__.rsplit(".", 1)[-1]
        _REGISTRY[key] = ModelSpec(
            key, builder, tuple(input_size), num_classes, family, reference
        )
        return builder

    return add


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; an unknown name raises a
    ``ValueError`` with close matches.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(
            str(name), _REGISTRY, n=5, cutoff=0.5
        )
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown model name {name!r}.{hint} `cnnbook.models.names()` (or "
            "`cnnbook list`) lists all."
        ) from None


def create(
    name: str,
    num_classes: int | None = None,
    *,
    seed: int | None = None,
    **kwargs,
) -> nn.Module:
    """Build the model registered as ``name``.

    ``num_classes=None`` keeps the paper's number of classes; other keyword
    arguments go to the family's builder (for example ``aux_logits=False``).
    ``seed`` draws the initial weights from ``torch.manual_seed(seed)`` without
    touching the global generator's state, so the same seed gives the same
    weights whatever ran before; ``seed=None`` draws them from the global
    generator, as PyTorch does.

    The model remembers how it was built in ``model.cnnbook_build`` (its name
    and options, plain values), which :func:`cnnbook.train.fit` writes into
    checkpoints so that a run resumes only under the same model.
    """
    entry = spec(name)
    whole = isinstance(num_classes, int) and not isinstance(num_classes, bool)
    if num_classes is not None and not (whole and num_classes >= 1):
        raise ValueError(
            f"num_classes={num_classes!r} must be a positive "
            "whole number (None: the paper's "
            f"{entry.num_classes})."
        )
    classes = entry.num_classes if num_classes is None else num_classes
    if seed is None:
        model = entry.builder(num_classes=classes, **kwargs)
    else:
        # the global generator is left as it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = entry.builder(num_classes=classes, **kwargs)
    plain = (bool, int, float, str, type(None))
    options = {
        k: v if isinstance(v, plain) else repr(v)
        for k, v in sorted(kwargs.items())
    }
    model.cnnbook_build = {
        "name": name,
        "num_classes": classes,
        "seed": seed,
        "options": options,
    }
    return model


def names(family: str | None = None) -> list[str]:
    """All registered names, sorted (only those of ``family`` when given)."""
    return sorted(
        n for n, s in _REGISTRY.items() if family is None or s.family == family
    )


# The families, one file each, in the book's order. Importing a family's file
# registers its models.
FAMILIES = (
    "lenet", "alexnet", "zfnet", "nin", "vgg",
    "googlenet", "inception_v3", "inception_v4",
    "resnet", "preact_resnet", "resnext", "stochastic_depth", "densenet",
    "highway", "fractalnet", "dsn", "ladder", "deeply_fused",
)  # fmt: skip


def families() -> list[str]:
    """The model families (files of ``cnnbook/models/``) in the book's
    order.
    """
    return list(FAMILIES)


for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")
