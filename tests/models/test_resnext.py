"""ResNeXt (Xie et al. 2017): the three equivalent forms of Fig. 3, the networks' shapes and counts."""

from __future__ import annotations

import pytest
import torch
from test_preact_resnet import batchnorm_params, randomize_batchnorms
from test_resnet import imagenet_shapes, run_model

from cnnbook import models
from cnnbook.models.resnet import ResNet
from cnnbook.models.resnext import FORMS, ResNeXtBlock, copy_weights
from cnnbook.summary import count_params

NAMES = ["resnext50_32x4d", "resnext101_32x8d", "resnext29_8x64d", "resnext29_16x64d"]


@pytest.mark.parametrize("name", ["resnext50_32x4d", "resnext101_32x8d"])
def test_imagenet_stages(name):
    assert run_model(name, batch=1, backward=False) == imagenet_shapes(4)


@pytest.mark.parametrize("name", ["resnext29_8x64d", "resnext29_16x64d"])
def test_cifar_stages(name):
    assert run_model(name, batch=1, backward=False) == [(64, 32, 32), (256, 32, 32), (512, 16, 16), (1024, 8, 8)]


# Smaller inputs than the paper's for the training step: ResNeXt-29 costs 5-11 G multiply-adds per 32x32 image.
@pytest.mark.parametrize("name, size, last", [("resnext50_32x4d", 64, 2), ("resnext101_32x8d", 64, 2),
                                              ("resnext29_8x64d", 16, 4), ("resnext29_16x64d", 8, 2)])  # fmt: skip
def test_forward_backward(name, size, last):
    assert run_model(name, size=size)[-1][1:] == (last, last)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_reference(name):
    reference = models.spec(name).reference
    ours = count_params(models.create(name))
    expected = reference.count() + reference.difference
    assert abs(ours - expected) <= reference.rounded_to // 2, (name, ours, expected, reference.where, reference.why)


@pytest.mark.parametrize("name", ["resnext29_8x64d", "resnext29_16x64d"])
def test_table7_counts_leave_out_batchnorm(name):
    model, reference = models.create(name), models.spec(name).reference
    assert reference.difference == batchnorm_params(model)


def test_group_widths_of_32x4d():
    """C = 32 paths of d = 4 channels in the first stage, doubling per stage: grouped widths 128 ... 1024."""
    model = models.create("resnext50_32x4d")
    convs = [stage[0].branch[0].conv2 for stage in model.stages]
    assert [(c.in_channels, c.groups) for c in convs] == [(128, 32), (256, 32), (512, 32), (1024, 32)]
    assert all(c.stride == (1, 1) for c in (stage[0].branch[0].conv1 for stage in model.stages))  # stride in the 3x3


def small_blocks(stride: int, unit: str = "original") -> dict[str, ResNeXtBlock]:
    torch.manual_seed(0)
    # 4 paths of d = 4 channels: 16 -> grouped width 16 -> 32 output channels
    return {f: ResNeXtBlock(16, 8, stride, cardinality=4, width_per_group=32, form=f, unit=unit) for f in FORMS}


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("unit", ["original", "full_preactivation"])
@pytest.mark.parametrize("train", [False, True])
def test_three_forms_give_the_same_output(stride, unit, train):
    """Fig. 3 (a), (b), (c) with shared weights compute the same block (BatchNorm in train and eval mode)."""
    blocks = small_blocks(stride, unit)
    randomize_batchnorms(blocks["c"])
    for form in "ab":
        copy_weights(blocks["c"], blocks[form])
    x = torch.randn(4, 16, 9, 9)
    outputs = {f: b.train(train)(x) for f, b in blocks.items()}
    assert outputs["c"].shape == (4, 32, 5 if stride == 2 else 9, 5 if stride == 2 else 9)
    for form in "ab":
        assert torch.allclose(outputs[form], outputs["c"], atol=1e-5), form


def test_three_forms_have_the_same_parameters_and_gradients():
    blocks = small_blocks(stride=2)
    assert len({count_params(b) for b in blocks.values()}) == 1
    copy_weights(blocks["c"], blocks["a"])
    x = torch.randn(2, 16, 8, 8)
    for block in (blocks["a"], blocks["c"]):
        block(x).square().sum().backward()
    # The gradient of form a's path 0 is slice 0 of form c's grouped weights.
    path0 = blocks["a"].branch[0].paths[0]
    assert torch.allclose(path0.conv2.weight.grad, blocks["c"].branch[0].conv2.weight.grad[:4], atol=1e-5)
    assert torch.allclose(path0.conv3.weight.grad, blocks["c"].branch[0].conv3.weight.grad[:, :4], atol=1e-5)


def test_copy_weights_between_whole_networks_in_any_direction():
    def toy(form: str) -> ResNet:
        return ResNet(ResNeXtBlock, (1, 2), (8, 16), num_classes=5, stem="cifar", cardinality=4, width_per_group=32,
                      form=form)  # fmt: skip

    torch.manual_seed(1)
    a, b, c = toy("a"), toy("b"), toy("c")
    randomize_batchnorms(a)
    copy_weights(a, b)  # a -> b -> c: every conversion on the way
    copy_weights(b, c)
    x = torch.randn(2, 3, 16, 16)
    reference = a.eval()(x)
    assert torch.allclose(b.eval()(x), reference, atol=1e-5)
    assert torch.allclose(c.eval()(x), reference, atol=1e-5)


def test_copy_weights_refuses_different_networks():
    with pytest.raises(ValueError, match="same ResNeXt"):
        copy_weights(models.create("resnext29_8x64d"), small_blocks(1)["a"])


@pytest.mark.parametrize("form", FORMS)
def test_zero_init_last_in_every_form(form):
    block = ResNeXtBlock(16, 8, cardinality=4, width_per_group=32, form=form, unit="full_preactivation", shortcut="C")
    block.zero_init_last()
    x = torch.randn(2, 16, 6, 6)
    assert torch.allclose(block(x), block.shortcut(block.preact(x)))


def test_unknown_form_is_an_error():
    with pytest.raises(ValueError, match="form='d'"):
        models.create("resnext29_8x64d", form="d")


def test_wrong_input_raises_a_clear_error():
    with pytest.raises(ValueError, match="resnext50_32x4d expects 3 input channel"):
        models.create("resnext50_32x4d")(torch.randn(1, 4, 224, 224))


def test_forms_network_level_counts_agree():
    counts = {f: count_params(models.create("resnext29_8x64d", form=f)) for f in FORMS}
    assert len(set(counts.values())) == 1, counts


# ---------------------------------------------------------------- resnext_cifar: C and d as named arguments

TEMPLATES = [(1, 64), (2, 40), (4, 24), (8, 14), (32, 4)]  # Table 2: (C, d) at about equal cost


def test_resnext_cifar_defaults_are_the_small_32x2d():
    model = models.create("resnext_cifar")
    assert run_model("resnext_cifar", batch=2) == [(32, 32, 32), (128, 32, 32), (256, 16, 16), (512, 8, 8)]
    convs = [stage[0].branch[0].conv2 for stage in model.stages]
    # d = 2 channels per path in the first stage, 4 and 8 in the next; always C = 32 groups
    assert [(c.in_channels, c.groups) for c in convs] == [(64, 32), (128, 32), (256, 32)]
    assert [len(stage) for stage in model.stages] == [1, 1, 1]


def test_resnext_cifar_can_be_resnext29_8x64d():
    big = dict(depth=29, cardinality=8, bottleneck_width=64, base_channels=64)
    with torch.device("meta"):
        ours, paper = models.create("resnext_cifar", **big), models.create("resnext29_8x64d")
    assert count_params(ours) == count_params(paper)
    assert [(c.in_channels, c.groups) for c in (s[0].branch[0].conv2 for s in ours.stages)] == [
        (512, 8), (1024, 8), (2048, 8)]  # fmt: skip


@pytest.mark.parametrize("cardinality, d", TEMPLATES)
def test_templates_have_the_papers_grouped_widths_and_counts(cardinality, d):
    """At the paper's width (256 channels, Table 2) the block's convolutions have C·(2·256·d + 9·d²) weights."""
    block = ResNeXtBlock(256, 64, cardinality=cardinality, width_per_group=d)
    transform = block.branch[0]
    assert transform.conv2.in_channels == cardinality * d and transform.conv2.groups == cardinality
    weights = sum(m.weight.numel() for m in transform.modules() if isinstance(m, torch.nn.Conv2d))
    assert weights == cardinality * (2 * 256 * d + 9 * d * d)
    assert abs(weights - 69_632) / 69_632 < 0.03  # "~70k" for every template


@pytest.mark.parametrize("cardinality, d", TEMPLATES)
def test_half_width_templates_in_the_small_network(cardinality, d):
    model = models.create("resnext_cifar", cardinality=cardinality, bottleneck_width=d // 2)
    first = model.stages[0][0].branch[0]
    assert (first.conv2.in_channels, first.conv2.groups) == (cardinality * (d // 2), cardinality)
    assert first.conv3.out_channels == 128
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_resnext_cifar_parameter_count_by_hand():
    """Stem, three blocks (1x1-3x3-1x1 and a projection each), the classifier; BatchNorm's scales and shifts."""
    c, d, base = 4, 12, 32
    model = models.create("resnext_cifar", cardinality=c, bottleneck_width=d)

    def block(in_ch: int, width: int, out_ch: int) -> int:
        convs = in_ch * width + 9 * width * width // c + width * out_ch + in_ch * out_ch  # with the projection
        return convs + 2 * (width + width + out_ch + out_ch)  # BN after conv1, conv2, conv3, projection

    stem = 3 * 9 * base + 2 * base
    stages = block(base, c * d, 128) + block(128, 2 * c * d, 256) + block(256, 4 * c * d, 512)
    assert count_params(model) == stem + stages + 512 * 10 + 10


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(depth=12), "9n\\+2 layers"),
        (dict(depth=2), "9n\\+2 layers"),
        (dict(cardinality=0), "cardinality=0"),
        (dict(bottleneck_width=2.5), "bottleneck_width=2.5"),
        (dict(bottleneck_width=1, base_channels=48), "multiple of base_channels"),
        (dict(groups=4), "groups= is ambiguous.*cardinality="),
        (dict(form="d"), "form='d'"),
    ],
)
def test_resnext_cifar_errors(options, message):
    with pytest.raises(ValueError, match=message):
        models.create("resnext_cifar", **options)
