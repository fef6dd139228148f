"""Shared by the model tests: the shapes after each stage of a network's ``features``."""

from __future__ import annotations

from typing import Callable

import pytest
import torch

from cnnbook import models
from cnnbook.summary import output_shapes


@pytest.fixture
def feature_shapes() -> Callable[..., dict[str, tuple[int, ...]]]:
    """``feature_shapes(name, **options)``: (C, H, W) after every named child of ``features``, on the meta device."""

    def shapes(name: str, **options) -> dict[str, tuple[int, ...]]:
        with torch.device("meta"):  # shapes only: nothing allocated, nothing computed
            model = models.create(name, **options)
            stages = [f"features.{child}" for child, _ in model.features.named_children()]
            found, _ = output_shapes(model, torch.empty(2, *models.spec(name).input_size), stages)
        return {stage.removeprefix("features."): shape[1:] for stage, shape in found.items()}

    return shapes


@pytest.fixture
def randomise_batchnorm_statistics() -> Callable[[torch.nn.Module], None]:
    """Gives every BatchNorm non-trivial running statistics, so that a misplaced one or another epsilon would show
    when a model is compared with a reference implementation that has the same weights."""

    @torch.no_grad()
    def randomise(model: torch.nn.Module) -> None:
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)

    return randomise
