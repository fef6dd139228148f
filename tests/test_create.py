"""`models.create`: seeded weights, refused class counts, and the record of how a model was built."""

from __future__ import annotations

import pytest
import torch

from cnnbook import models


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_a_seed_gives_the_same_weights_whatever_ran_before():
    torch.manual_seed(123)
    a = weights(models.create("lenet5_modern", seed=0))
    torch.rand(1000)  # another state of the global generator
    b = weights(models.create("lenet5_modern", seed=0))
    c = weights(models.create("lenet5_modern", seed=1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_a_seed_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    models.create("lenet5_modern", seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_without_a_seed_the_global_generator_decides_as_in_pytorch():
    torch.manual_seed(7)
    a = weights(models.create("lenet5_modern"))
    torch.manual_seed(7)
    b = weights(models.create("lenet5_modern"))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_a_class_count_that_is_not_a_positive_whole_number_is_refused(bad):
    with pytest.raises(ValueError, match=rf"num_classes={bad!r} must be a positive whole number"):
        models.create("lenet5_modern", num_classes=bad)


def test_the_model_records_how_it_was_built():
    model = models.create("resnet20", num_classes=7, seed=3, shortcut="B")
    assert model.cnnbook_build == {"name": "resnet20", "num_classes": 7, "seed": 3, "options": {"shortcut": "B"}}
    assert models.create("lenet5").cnnbook_build["num_classes"] == 10  # the paper's, when None


def test_families_are_every_models_family_in_the_books_order():
    families = models.families()
    assert families[:2] == ["lenet", "alexnet"] and families[-1] == "deeply_fused"
    assert set(families) == {models.spec(name).family for name in models.names()}
    assert all(models.names(family) for family in families)  # no family without a model
