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
