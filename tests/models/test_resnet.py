"""ResNet (He et al. 2016a): stage shapes, parameter counts, shortcut options, stride placement, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnbook import models
from cnnbook.models.resnet import BasicBlock, Bottleneck, ResidualUnit, ZeroPadShortcut
from cnnbook.summary import count_params

IMAGENET = {"resnet18": 1, "resnet34": 1, "resnet50": 4, "resnet101": 4, "resnet152": 4}  # name: block expansion
CIFAR = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202"]
CIFAR_ADAPTATIONS = {"resnet18_cifar": 1, "resnet34_cifar": 1, "resnet50_cifar": 4}


def imagenet_shapes(expansion: int) -> list[tuple[int, int, int]]:
    """(C, H, W) after the stem and each of the four stages at 224x224: 56, 28, 14, 7 pixels."""
    return [(64, 56, 56)] + [(w * expansion, s, s) for w, s in zip((64, 128, 256, 512), (56, 28, 14, 7))]


def run_model(
    name: str, batch: int = 2, size: int | None = None, backward: bool = True, every_parameter: bool = True
) -> list[tuple[int, ...]]:
    """Forward (and backward) pass of ``name``; returns the (C, H, W) after the stem and after each stage.

    The input has the paper's size unless ``size`` shrinks it (for the
    networks too slow at full size on two shared cores; all are fully
    convolutional up to the global pooling). The backward pass checks that
    every parameter gets a finite gradient (``every_parameter=False`` allows
    none for the blocks stochastic depth dropped) and the first layer one.
    """
    spec = models.spec(name)
    model = models.create(name).train(backward)
    channels, height, width = spec.input_size
    x = torch.randn(batch, channels, size or height, size or width)
    with torch.set_grad_enabled(backward):
        outputs = model.forward_stages(x)
        logits = model.forward_head(outputs[-1])
    assert logits.shape == (batch, spec.num_classes)
    if backward:
        logits.logsumexp(1).sum().backward()
        grads = [p.grad for p in model.parameters()]
        if every_parameter:
            assert all(g is not None for g in grads), f"{name}: a parameter got no gradient"
        assert all(torch.isfinite(g).all() for g in grads if g is not None), f"{name}: a gradient is not finite"
        first_conv = next(m for m in model.stem.modules() if isinstance(m, nn.Conv2d))
        assert first_conv.weight.grad.abs().sum() > 0, f"{name}: no gradient reaches the first convolution"
    return [tuple(o.shape[1:]) for o in outputs]


@pytest.mark.parametrize("name", list(IMAGENET))
def test_imagenet_stages_halve_four_times(name):
    """56, 28, 14, 7: every stage after the first downsamples (the labml bug downsampled only once)."""
    assert run_model(name, batch=1, backward=False) == imagenet_shapes(IMAGENET[name])


@pytest.mark.parametrize("name", ["resnet34", "resnet50", "resnet101", "resnet152"])
def test_imagenet_backward_at_64x64(name):
    """The deeper ImageNet networks train on 64x64 crops here (resnet18 below at 224x224): 16, 8, 4, 2 pixels."""
    assert [shape[1] for shape in run_model(name, size=64)] == [16, 16, 8, 4, 2]


def test_resnet18_forward_backward_at_224():
    assert run_model("resnet18") == imagenet_shapes(1)


@pytest.mark.parametrize("name", CIFAR[:-1])
def test_cifar_stages_32_16_8(name):
    assert run_model(name) == [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)]


def test_resnet1202_stages_forward_only():
    """The 1202-layer network once, forward only (its backward pass is slow on two cores)."""
    assert run_model("resnet1202", backward=False) == [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)]


@pytest.mark.parametrize("name", list(CIFAR_ADAPTATIONS))
def test_cifar_adaptations_32_16_8_4(name):
    e = CIFAR_ADAPTATIONS[name]
    expected = [(64, 32, 32), (64 * e, 32, 32), (128 * e, 16, 16), (256 * e, 8, 8), (512 * e, 4, 4)]
    assert run_model(name) == expected


# name, ours, reference, where it comes from (torchvision counted live; the paper's Table 6 rounded as printed)
@pytest.mark.parametrize("name", list(IMAGENET) + CIFAR + list(CIFAR_ADAPTATIONS))
def test_parameter_count_matches_reference(name):
    reference = models.spec(name).reference
    ours = count_params(models.create(name))
    expected = reference.count() + reference.difference
    assert abs(ours - expected) <= reference.rounded_to // 2, (name, ours, expected, reference.where, reference.why)


def test_exact_counts_of_the_cifar_networks():
    """The exact counts behind Table 6's rounded figures (option A: the shortcuts have no parameters)."""
    exact = {"resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586, "resnet56": 853_018,
             "resnet110": 1_727_962}  # fmt: skip
    assert {name: count_params(models.create(name)) for name in exact} == exact


def test_cifar_adaptation_differs_from_torchvision_only_in_stem_and_head():
    import torchvision

    ours, theirs = models.create("resnet18_cifar"), torchvision.models.resnet18(num_classes=10)
    assert count_params(ours) - count_params(theirs) == -64 * 3 * (7 * 7 - 3 * 3)


def test_option_a_subsamples_and_zero_pads():
    x = torch.randn(2, 16, 8, 8)
    y = ZeroPadShortcut(16, 32, stride=2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0


def test_shortcut_options_a_b_c():
    """A: no shortcut parameters; B: a projection (1x1 conv + BN) where the shape changes; C: in every block."""
    a, b, c = (models.create("resnet20", shortcut=s) for s in "ABC")
    projection = lambda i, o: i * o + 2 * o  # noqa: E731  1x1 convolution + BatchNorm
    assert count_params(b) - count_params(a) == projection(16, 32) + projection(32, 64)
    everywhere = (3 * projection(16, 16) + projection(16, 32) + 2 * projection(32, 32)
                  + projection(32, 64) + 2 * projection(64, 64))  # fmt: skip
    assert count_params(c) - count_params(a) == everywhere
    kinds = lambda m: [type(u.shortcut).__name__ for u in m.modules() if isinstance(u, ResidualUnit)]  # noqa: E731
    assert kinds(a).count("ZeroPadShortcut") == 2 and kinds(a).count("Identity") == 7
    assert kinds(b).count("Sequential") == 2 and kinds(c).count("Sequential") == 9


@pytest.mark.parametrize("stride_in, strided", [("1x1", "conv1"), ("3x3", "conv2")])
def test_stride_in_moves_the_stride_and_keeps_parameters(stride_in, strided):
    block = Bottleneck(256, 128, stride=2, stride_in=stride_in)
    convs = dict(block.branch[0].named_children())
    assert convs[strided].stride == (2, 2)
    assert all(conv.stride == (1, 1) for name, conv in convs.items() if name.startswith("conv") and name != strided)
    assert block(torch.randn(1, 256, 14, 14)).shape == (1, 512, 7, 7)
    assert count_params(block) == count_params(Bottleneck(256, 128, stride=2))  # the default, "1x1"


def test_imagenet_default_is_the_papers_1x1_stride():
    model = models.create("resnet50")
    first = model.stages[1][0].branch[0]
    assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)


def test_zero_init_last_makes_every_unit_its_shortcut():
    model = models.create("resnet20").zero_init_last().eval()
    for unit in (m for m in model.modules() if isinstance(m, ResidualUnit)):
        x = torch.rand(2, unit.in_channels, 8, 8)
        assert torch.allclose(unit(x), torch.relu(unit.shortcut(x)))


def test_blocks_expansion_and_widths():
    assert BasicBlock.expansion == 1 and Bottleneck.expansion == 4
    assert BasicBlock(64, 128, stride=2).out_channels == 128
    assert Bottleneck(64, 64).out_channels == 256


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.randn(3, 224, 224), "add a batch dimension"),
        (torch.randn(1, 1, 224, 224), "3 input channel"),
        (torch.randn(1, 3, 16, 16), "at least 32x32"),
    ],
)
def test_wrong_input_raises_a_clear_error(x, message):
    with pytest.raises(ValueError, match=message):
        models.create("resnet18")(x)


def test_wrong_input_names_the_model():
    with pytest.raises(ValueError, match="resnet20"):
        models.create("resnet20")(torch.randn(1, 1, 32, 32))


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("resnet20", {"shortcut": "D"}, "shortcut='D'"),
        ("resnet20", {"unit": "post"}, "unit='post'"),
        ("resnet50", {"stride_in": "2x2"}, "stride_in='2x2'"),
        ("resnet18", {"stem": "tiny"}, "stem='tiny'"),
    ],
)
def test_bad_options_raise_value_errors(name, options, message):
    with pytest.raises(ValueError, match=message):
        models.create(name, **options)


def test_cifar_depth_must_be_6n_plus_2():
    from cnnbook.models.resnet import cifar_resnet

    with pytest.raises(ValueError, match="6n\\+2"):
        cifar_resnet(21, 10, "resnet21")


def test_num_classes_and_in_channels():
    model = models.create("resnet20", num_classes=100, in_channels=1)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 100)
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 100


# --- plain networks (residual=False, the paper's Fig. 6) and the width option --------------------------------


@pytest.mark.parametrize("name", ["resnet20", "resnet56"])
def test_plain_network_has_the_residual_networks_layers_and_shapes(name):
    """plain-20/56: the same stages, shapes and parameters as option A's ResNet, without shortcuts."""
    residual, plain = models.create(name), models.create(name, residual=False)
    assert count_params(plain) == count_params(residual)
    x = torch.randn(2, 3, 32, 32)
    assert [tuple(o.shape[1:]) for o in plain.forward_stages(x)] == [(16, 32, 32), (16, 32, 32), (32, 16, 16),
                                                                     (64, 8, 8)]  # fmt: skip
    units = [m for m in plain.modules() if isinstance(m, ResidualUnit)]
    assert units and all(u.shortcut is None and not u.residual for u in units)
    plain(x).logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in plain.parameters())


def test_plain_unit_adds_nothing():
    torch.manual_seed(0)
    unit = BasicBlock(8, 8, residual=False).eval()
    x = torch.randn(2, 8, 6, 6)
    assert torch.allclose(unit(x), torch.relu(unit.branch(x)))
    residual = BasicBlock(8, 8).eval()
    residual.load_state_dict(unit.state_dict())
    assert torch.allclose(residual(x), torch.relu(x + unit.branch(x)))


def test_plain_imagenet_network_counts_as_option_a():
    """plain-34 (Fig. 3 middle) has no projections whatever ``shortcut`` says: option A's count."""
    assert count_params(models.create("resnet34", residual=False)) == count_params(models.create("resnet34",
                                                                                                  shortcut="A"))


def test_plain_refuses_stochastic_depth_and_zero_init():
    with pytest.raises(ValueError, match="no shortcut"):
        BasicBlock(8, 8, residual=False, survival_prob=0.5)
    with pytest.raises(ValueError, match="zero_init_last needs a shortcut"):
        models.create("resnet20", residual=False).zero_init_last()


def test_units_remember_their_stride():
    model = models.create("resnet20")
    assert [stage[0].stride for stage in model.stages] == [1, 2, 2]


@pytest.mark.parametrize("width, channels", [(0.5, (8, 16, 32)), (0.25, (4, 8, 16)), (2, (32, 64, 128))])
def test_width_multiplies_the_cifar_stages(width, channels):
    model = models.create("resnet20", width=width)
    shapes = [tuple(o.shape[1:]) for o in model.forward_stages(torch.randn(1, 3, 32, 32))]
    assert shapes == [(channels[0], 32, 32), (channels[0], 32, 32), (channels[1], 16, 16), (channels[2], 8, 8)]
    assert count_params(models.create("resnet20", width=width, residual=False)) == count_params(model)


@pytest.mark.parametrize("width", [0, -1, "half", True])
def test_bad_width_raises(width):
    with pytest.raises(ValueError, match="width="):
        models.create("resnet20", width=width)
