"""Stochastic depth (Huang et al. 2016): linear decay, one draw per mini-batch, test-time scaling."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from test_resnet import run_model
from torch import nn

from cnnbook import models
from cnnbook.models.resnet import BasicBlock, ResidualUnit, ResNet
from cnnbook.models.stochastic_depth import StochasticDepth, blocks_removed, drop_layers, linear_decay, unscaled
from cnnbook.summary import count_params


def units(model: nn.Module) -> list[ResidualUnit]:
    return [m for m in model.modules() if isinstance(m, ResidualUnit)]


def toy(p_last: float = 0.5, **options) -> ResNet:
    """Three basic blocks (one per stage), small enough to enumerate all 2^3 drop patterns."""
    torch.manual_seed(0)
    return ResNet(BasicBlock, (1, 1, 1), (4, 8, 16), num_classes=3, stem="cifar", p_last=p_last, shortcut="A",
                  **options)


def batchnorm_eval(model: nn.Module) -> nn.Module:
    """Training mode for the dropping, eval mode (fixed statistics, an affine map) for BatchNorm."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    return model


def without_relu(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, nn.Identity())
        else:
            without_relu(child)
    return module


def expectation_over_drop_patterns(model: nn.Module, x: torch.Tensor, monkeypatch) -> torch.Tensor:
    """sum over all patterns b of P(b) * model(x | b), with each block's keep/drop decision forced."""
    drops = [u.drop for u in units(model)]
    expected = torch.zeros(())
    for pattern in itertools.product([True, False], repeat=len(drops)):
        probability = 1.0
        for drop, keep in zip(drops, pattern):
            monkeypatch.setattr(drop, "keep_branch", lambda keep=keep: keep)
            probability *= drop.survival_prob if keep else 1 - drop.survival_prob
        expected = expected + probability * model(x)
    return expected


def test_linear_decay_rule():
    p = linear_decay(54, 0.5)  # ResNet-110: 3 x 18 blocks
    assert len(p) == 54 and p[-1] == 0.5 and p[0] == pytest.approx(1 - 0.5 / 54)
    assert all(a - b == pytest.approx(0.5 / 54) for a, b in zip(p, p[1:]))  # a straight line from p_0 = 1
    assert linear_decay(3, 1.0) == [1.0, 1.0, 1.0]


def test_resnet110_stochastic_depth_has_the_paper_probabilities_in_order():
    model = models.create("resnet110_stochastic_depth")
    survival = [u.drop.survival_prob for u in units(model)]
    assert survival == linear_decay(54, 0.5)
    assert all(u.drop.mode == "batch" for u in units(model))


def test_resnet110_stochastic_depth_is_resnet110():
    """Same shapes and parameters: the dropping adds none."""
    ours, plain = models.create("resnet110_stochastic_depth"), models.create("resnet110")
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    reference = models.spec("resnet110_stochastic_depth").reference
    assert abs(count_params(ours) - reference.count()) <= reference.rounded_to // 2


def test_stages_and_backward():
    shapes = run_model("resnet110_stochastic_depth", every_parameter=False)
    assert shapes == [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)]


def test_eval_mode_is_deterministic_and_scaled():
    model = toy().eval()
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(model(x), model(x))
    unscaled = toy(p_last=1.0).eval()  # the same weights (same seed), no stochastic depth
    assert not torch.allclose(model(x), unscaled(x))  # the branches are scaled by p_l at test time


def test_training_draws_blocks_at_random():
    model = batchnorm_eval(models.create("resnet110_stochastic_depth"))
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(0)
    first, second = model(x), model(x)
    assert not torch.allclose(first, second)


def test_eval_equals_the_expectation_of_training_for_an_affine_network(monkeypatch):
    """Exact when nothing non-linear follows the additions (ReLUs removed, BatchNorm fixed): all 8 patterns."""
    model = batchnorm_eval(without_relu(toy()))
    x = torch.randn(2, 3, 16, 16)
    expected = expectation_over_drop_patterns(model, x, monkeypatch)
    assert torch.allclose(model.eval()(x), expected, atol=1e-5)


def test_eval_equals_the_expectation_of_training_for_a_preactivation_unit(monkeypatch):
    """One full pre-activation unit, ReLUs included: x + p F(x) is the mean of x + b F(x)."""
    torch.manual_seed(0)
    unit = batchnorm_eval(BasicBlock(8, 8, unit="full_preactivation", survival_prob=0.7))
    x = torch.randn(2, 8, 6, 6)
    expected = expectation_over_drop_patterns(unit, x, monkeypatch)
    assert torch.allclose(unit.eval()(x), expected, atol=1e-6)


def test_with_a_relu_after_the_addition_eval_only_approximates_the_expectation(monkeypatch):
    """The original unit's ReLU(x + p F(x)) is not the mean of ReLU(x + b F(x)): the paper's rule is mean-field."""
    torch.manual_seed(0)
    unit = batchnorm_eval(BasicBlock(8, 8, unit="original", survival_prob=0.5))
    x = torch.randn(2, 8, 6, 6)
    expected = expectation_over_drop_patterns(unit, x, monkeypatch)
    assert not torch.allclose(unit.eval()(x), expected, atol=1e-3)


def test_one_draw_per_mini_batch_and_one_per_row():
    x = torch.ones(2000, 1, 1, 1)
    torch.manual_seed(0)
    batch = StochasticDepth(0.5, "batch").train()
    outputs = [batch(nn.Identity(), x) for _ in range(20)]
    assert all(out.unique().numel() == 1 for out in outputs)  # each call keeps or drops the whole batch
    assert {float(out.max()) for out in outputs} == {0.0, 1.0}  # both happen in 20 calls
    row = StochasticDepth(0.7, "row").train()(nn.Identity(), x)
    assert set(row.unique().tolist()) == {0.0, 1.0}
    assert abs(row.mean().item() - 0.7) < 4 * math.sqrt(0.7 * 0.3 / 2000)  # per-sample Bernoulli(0.7)
    assert torch.equal(StochasticDepth(0.7).eval()(nn.Identity(), x), 0.7 * x)  # test time: scaled, not dropped


def test_batch_mode_treats_every_sample_alike_in_a_network():
    model = batchnorm_eval(toy(drop_mode="batch"))
    x = torch.randn(1, 3, 16, 16).repeat(8, 1, 1, 1)
    torch.manual_seed(3)
    out = model(x)
    assert torch.allclose(out, out[:1].expand_as(out))
    row_model = batchnorm_eval(toy(drop_mode="row"))
    torch.manual_seed(3)
    out = row_model(x)
    assert not torch.allclose(out, out[:1].expand_as(out))  # rows dropped independently differ


def test_dropped_branches_are_skipped_and_gradients_flow(monkeypatch):
    model = models.create("resnet110_stochastic_depth").train()
    all_units = units(model)
    calls = {id(u): 0 for u in all_units}
    for i, u in enumerate(all_units):
        monkeypatch.setattr(u.drop, "keep_branch", lambda keep=i % 2 == 0: keep)  # keep every other block
        u.branch.register_forward_hook(lambda module, args, out, key=id(u): calls.__setitem__(key, calls[key] + 1))
    model(torch.randn(2, 3, 32, 32)).logsumexp(1).sum().backward()
    for i, u in enumerate(all_units):
        kept = i % 2 == 0
        assert calls[id(u)] == (1 if kept else 0)  # a dropped branch is not even computed
        grads = [p.grad for p in u.branch.parameters()]
        if kept:
            assert all(g is not None and g.abs().sum() > 0 for g in grads)
        else:
            assert all(g is None for g in grads)
    assert model.fc.weight.grad.abs().sum() > 0
    assert next(model.stem.parameters()).grad.abs().sum() > 0  # through the shortcuts of the dropped blocks


def test_other_families_take_the_same_option():
    model = models.create("preact_resnet164", p_last=0.5)
    assert [u.drop.survival_prob for u in units(model)] == linear_decay(54, 0.5)


@pytest.mark.parametrize(
    "options, message", [({"p_last": 0.0}, "p_last=0.0"), ({"drop_mode": "sample"}, "drop_mode='sample'")]
)
def test_bad_options_raise_value_errors(options, message):
    with pytest.raises(ValueError, match=message):
        models.create("resnet110_stochastic_depth", **options)


def test_blocks_removed_reduces_a_block_to_its_shortcut_and_restores_it():
    model = toy().eval()
    x = torch.randn(2, 3, 16, 16)
    before = model(x)
    unit = units(model)[1]
    calls = []
    unit.branch.register_forward_hook(lambda module, args, out: calls.append(1))
    with blocks_removed(model, [1]):
        shortcut_only = model.stages[1][0].shortcut  # the downsampling block: zero-padded, subsampled identity
        h = model.stages[0](model.stem(x))
        assert torch.equal(model.stages[1](h), unit.post(shortcut_only(h)))
        removed = model(x)
    assert not calls  # the removed branch is not computed
    assert not torch.allclose(before, removed)
    assert torch.equal(model(x), before) and isinstance(unit.drop, StochasticDepth)


def test_unscaled_adds_every_branch_in_full():
    model = toy().eval()
    x = torch.randn(2, 3, 16, 16)
    with unscaled(model):
        assert torch.equal(model(x), toy(p_last=1.0).eval()(x))  # same weights, no stochastic depth
    assert [d.survival_prob for d in drop_layers(model)] == linear_decay(3, 0.5)
    assert not torch.allclose(model(x), toy(p_last=1.0).eval()(x))


def test_lesion_helpers_reject_blocks_that_do_not_exist():
    model = toy()
    with pytest.raises(ValueError, match=r"blocks \[3\] do not exist: the network has 3 blocks"):
        with blocks_removed(model, [0, 3]):
            pass
    assert all(isinstance(u.drop, StochasticDepth) for u in units(model))
    with pytest.raises(ValueError, match="no residual blocks"):
        with unscaled(nn.Sequential(nn.Conv2d(3, 3, 1))):
            pass
