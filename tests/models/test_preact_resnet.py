"""Pre-activation ResNets (He et al. 2016b): the five units of Fig. 4, the networks' shapes and counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from test_resnet import imagenet_shapes, run_model

from cnnbook import models
from cnnbook.models.resnet import UNITS, BasicBlock, Bottleneck, ResidualUnit, cifar_resnet
from cnnbook.models.preact_resnet import (DropoutShortcut, GatedShortcut, ScaledShortcut, replace_shortcuts,
                                         signal_statistics)
from cnnbook.summary import count_params

IMAGENET = {f"preact_resnet{depth}": expansion for depth, expansion in [(18, 1), (34, 1), (50, 4), (101, 4), (152, 4)]}
CIFAR = {"preact_resnet110": 1, "preact_resnet164": 4, "preact_resnet1001": 4}


def batchnorm_params(model: nn.Module) -> int:
    return sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())


def randomize_batchnorms(model: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters, so that its place matters."""
    generator = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = torch.rand(m.num_features, generator=generator) + 0.5
            m.bias.data = torch.randn(m.num_features, generator=generator)
            m.running_mean = torch.randn(m.num_features, generator=generator)
            m.running_var = torch.rand(m.num_features, generator=generator) + 0.5
    return model.eval()


@pytest.mark.parametrize("name", list(IMAGENET))
def test_imagenet_stages(name):
    assert run_model(name, batch=1, backward=False) == imagenet_shapes(IMAGENET[name])


@pytest.mark.parametrize("name", ["preact_resnet34", "preact_resnet50", "preact_resnet101", "preact_resnet152"])
def test_imagenet_backward_at_64x64(name):
    assert [shape[1] for shape in run_model(name, size=64)] == [16, 16, 8, 4, 2]


def test_preact_resnet18_forward_backward_at_224():
    assert run_model("preact_resnet18") == imagenet_shapes(1)


@pytest.mark.parametrize("name", ["preact_resnet110", "preact_resnet164"])
def test_cifar_stages(name):
    e = CIFAR[name]
    assert run_model(name) == [(16, 32, 32), (16 * e, 32, 32), (32 * e, 16, 16), (64 * e, 8, 8)]


def test_preact_resnet1001_stages_forward_only():
    """The 1001-layer network once, forward only (its backward pass is slow on two cores)."""
    assert run_model("preact_resnet1001", backward=False) == [(16, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8)]


@pytest.mark.parametrize("name", list(IMAGENET) + list(CIFAR))
def test_parameter_count_matches_reference(name):
    reference = models.spec(name).reference
    ours = count_params(models.create(name))
    expected = reference.count() + reference.difference
    assert abs(ours - expected) <= reference.rounded_to // 2, (name, ours, expected, reference.where, reference.why)


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_imagenet_counts_equal_timms_preactivation_resnetv2(depth):
    timm = pytest.importorskip("timm")
    theirs = count_params(timm.create_model(f"resnetv2_{depth}", pretrained=False))
    assert count_params(models.create(f"preact_resnet{depth}")) == theirs


@pytest.mark.parametrize("name", list(CIFAR))
def test_paper_counts_leave_out_batchnorm(name):
    """The declared difference is exactly our BatchNorm parameters, and without them we match the paper's figure."""
    model, reference = models.create(name), models.spec(name).reference
    assert reference.difference == batchnorm_params(model)
    assert abs(count_params(model) - batchnorm_params(model) - reference.params) <= reference.rounded_to // 2


def test_original_unit_gives_the_original_resnet():
    """Same blocks, another unit: preact_resnet110(unit="original") is resnet110, tensor for tensor."""
    ours = models.create("preact_resnet110", unit="original").state_dict()
    original = models.create("resnet110").state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in original.items()}


# Fig. 4 of the paper, written out for a basic unit with an identity shortcut; ``m`` holds the unit's layers.
def fig4(unit: str, m: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
    conv1, bn1, conv2 = m["conv1"], m["bn1"], m["conv2"]
    inner = lambda h: conv2(F.relu(bn1(conv1(h))))  # noqa: E731  conv - BN - ReLU - conv
    if unit == "original":  # (a)
        return F.relu(x + m["end"](inner(x)))
    if unit == "bn_after_addition":  # (b)
        return F.relu(m["post"](x + inner(x)))
    if unit == "relu_before_addition":  # (c)
        return x + F.relu(m["end"](inner(x)))
    if unit == "relu_only_preactivation":  # (d)
        return x + m["end"](inner(F.relu(x)))
    return x + inner(F.relu(m["pre"](x)))  # (e) full pre-activation


def first_batchnorm(module: nn.Module) -> nn.Module | None:
    return next((b for b in module.modules() if isinstance(b, nn.BatchNorm2d)), None)


@pytest.mark.parametrize("unit", list(UNITS))
def test_each_unit_is_its_figure_4_design(unit):
    block = randomize_batchnorms(BasicBlock(8, 8, unit=unit))
    transform = block.branch[0]
    layers = {"conv1": transform.conv1, "bn1": transform.bn1, "conv2": transform.conv2,
              "end": first_batchnorm(block.branch[1]), "post": first_batchnorm(block.post),
              "pre": first_batchnorm(block.preact)}  # fmt: skip
    x = torch.randn(2, 8, 6, 6)
    assert torch.allclose(block(x), fig4(unit, layers, x), atol=1e-5)


@pytest.mark.parametrize("unit", list(UNITS))
@pytest.mark.parametrize("bottleneck", [False, True])
def test_every_unit_builds_trains_and_keeps_the_shapes(unit, bottleneck):
    model = cifar_resnet(29 if bottleneck else 20, 10, "toy", bottleneck=bottleneck, unit=unit)
    shapes = [tuple(o.shape[1:]) for o in model.forward_stages(torch.randn(2, 3, 32, 32))]
    e = 4 if bottleneck else 1
    assert shapes == [(16, 32, 32), (16 * e, 32, 32), (32 * e, 16, 16), (64 * e, 8, 8)]
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_first_and_last_units_of_a_preactivation_network():
    """Sec. 4.1: the first unit's activation is the stem's; the last unit adds BN-ReLU after its addition."""
    model = models.create("preact_resnet110")
    units = [m for m in model.modules() if isinstance(m, ResidualUnit)]
    assert isinstance(units[0].preact, nn.Identity)
    assert all(isinstance(u.preact, nn.Sequential) for u in units[1:])  # BN-ReLU on the input of every other unit
    assert [type(layer) for layer in units[-1].post] == [nn.BatchNorm2d, nn.ReLU]
    assert all(isinstance(u.post, nn.Identity) for u in units[:-1])  # nothing after the other additions


def test_projection_reads_the_preactivated_input_and_has_no_batchnorm():
    model = randomize_batchnorms(models.create("preact_resnet164"))
    unit = model.stages[1][0]  # 64 -> 128 channels, stride 2: a projection
    assert unit.project and first_batchnorm(unit.shortcut) is None
    x = torch.randn(2, 64, 8, 8)
    pre = unit.preact(x)
    assert torch.allclose(unit(x), unit.shortcut(pre) + unit.branch(pre), atol=1e-5)


def test_zero_init_last_of_a_preactivation_unit_zeroes_the_last_convolution():
    unit = Bottleneck(64, 16, unit="full_preactivation")
    unit.zero_init_last()
    assert torch.count_nonzero(unit.branch[0].conv3.weight) == 0
    x = torch.randn(2, 64, 8, 8)
    assert torch.equal(unit(x), x)


def test_wrong_input_raises_a_clear_error():
    with pytest.raises(ValueError, match="preact_resnet110 expects 3 input channel"):
        models.create("preact_resnet110")(torch.randn(1, 1, 32, 32))


# --- The shortcut variants of Fig. 2 and the signal measurements ----------------------------------------------


def one_stage(blocks: int, unit: str = "full_preactivation") -> nn.Module:
    """A narrow network of ``blocks`` basic units on one 16-channel stage, for the gradient measurements."""
    torch.manual_seed(0)
    return models.resnet.ResNet(BasicBlock, (blocks,), (16,), num_classes=10, stem="cifar", unit=unit)


def probe_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(4, 3, 16, 16, generator=generator), torch.randint(0, 10, (4,), generator=generator)


@pytest.mark.parametrize("variant, kind", [("scaled", ScaledShortcut), ("gated", GatedShortcut),
                                           ("conv1x1", nn.Conv2d), ("dropout", DropoutShortcut)])  # fmt: skip
def test_replace_shortcuts_swaps_only_the_identity_shortcuts(variant, kind):
    model = replace_shortcuts(cifar_resnet(20, 10, "toy"), variant)
    units = [m for m in model.modules() if isinstance(m, ResidualUnit)]
    replaced = [u for u in units if isinstance(u.shortcut, kind)]
    assert len(units) == 9 and len(replaced) == 7  # the two stride-2 units keep their zero-padding shortcut
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_shortcut_variants_compute_what_fig2_says():
    x = torch.randn(2, 4, 3, 3)
    assert torch.equal(ScaledShortcut(0.5)(x), 0.5 * x)
    gate = GatedShortcut(4, bias=-6.0)
    nn.init.zeros_(gate.gate.weight)
    assert torch.allclose(gate(x), (1 - torch.sigmoid(torch.tensor(-6.0))) * x)
    drop = DropoutShortcut(0.5)
    kept = drop.train()(torch.ones(10_000))
    assert set(kept.unique().tolist()) <= {0.0, 1.0} and 0.45 < kept.mean() < 0.55  # no rescaling by 1/keep
    assert torch.equal(drop.eval()(x), 0.5 * x)


def test_replace_shortcuts_rejects_an_unknown_variant():
    with pytest.raises(ValueError, match="variant='highway'.*scaled, gated, conv1x1, dropout"):
        replace_shortcuts(cifar_resnet(20, 10, "toy"), "highway")
    with pytest.raises(ValueError, match="keep=0"):
        DropoutShortcut(0)


@pytest.mark.parametrize("blocks", [1, 3, 6])
def test_identity_shortcuts_pass_the_gradient_unchanged_and_scaled_ones_shrink_it_as_a_power(blocks):
    """Eq. (5) of the paper: through the shortcuts alone, dl/dx_l = dl/dx_L (x prod of the scales)."""
    images, labels = probe_batch()
    clean = signal_statistics(one_stage(blocks), images, labels, through_branches=False)
    assert clean.first_to_top == pytest.approx(1.0, rel=1e-5)
    scaled = replace_shortcuts(one_stage(blocks), "scaled", scale=0.5)
    assert signal_statistics(scaled, images, labels, through_branches=False).first_to_top == pytest.approx(
        0.5**blocks, rel=1e-5)  # fmt: skip


def test_relu_after_the_addition_blocks_part_of_the_direct_gradient():
    images, labels = probe_batch()
    stats = signal_statistics(one_stage(4, unit="original"), images, labels, through_branches=False)
    assert 0 < stats.first_to_top < 1


def test_signal_statistics_measure_every_unit_and_leave_the_model_as_it_was():
    model, (images, labels) = one_stage(3, unit="original"), probe_batch()
    before, inplace = model(images), [m.inplace for m in model.modules() if isinstance(m, nn.ReLU)]
    stats = signal_statistics(model, images, labels)
    assert len(stats.forward) == len(stats.backward) == 3 and all(v > 0 for v in stats.forward + stats.backward)
    assert all(p.grad is None for p in model.parameters())
    assert [m.inplace for m in model.modules() if isinstance(m, nn.ReLU)] == inplace and any(inplace)
    assert torch.equal(model(images), before)
    with pytest.raises(ValueError, match="no residual units"):
        signal_statistics(nn.Sequential(nn.Flatten(), nn.LazyLinear(10)), images, labels)
