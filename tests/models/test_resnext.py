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
