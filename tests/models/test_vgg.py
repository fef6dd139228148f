"""VGG (Simonyan & Zisserman 2015): Table 1's configurations, Table 2's counts, dense evaluation, BatchNorm variants."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnbook import models
from cnnbook.models.vgg import CONFIGS, VGG, conv_widths
from cnnbook.summary import count_params

# name: (Table 1 column, weight layers, BatchNorm)
IMAGENET = {
    "vgg11": ("A", 11, False), "vgg11_lrn": ("A-LRN", 11, False), "vgg13": ("B", 13, False),
    "vgg16_1x1": ("C", 16, False), "vgg16": ("D", 16, False), "vgg19": ("E", 19, False),
    "vgg11_bn": ("A", 11, True), "vgg13_bn": ("B", 13, True), "vgg16_bn": ("D", 16, True), "vgg19_bn": ("E", 19, True),
}  # fmt: skip
CIFAR = {"vgg11_cifar": ("A", 11, False), "vgg11_bn_cifar": ("A", 11, True),
         "vgg16_cifar": ("D", 16, False), "vgg16_bn_cifar": ("D", 16, True)}  # fmt: skip
ALL = {**IMAGENET, **CIFAR}


def on_meta(name: str, **kwargs) -> nn.Module:
    """The model built on the meta device: shapes and counts without allocating 500 MB or computing anything."""
    with torch.device("meta"):
        return models.create(name, **kwargs)


def pooled_shapes(model: nn.Module, size: int) -> list[tuple[int, ...]]:
    """(C, H, W) after each max pooling, i.e. at the end of each of the five stages."""
    x = torch.empty(1, 3, size, size, device="meta")
    shapes = []
    for module in model.features:
        x = module(x)
        if isinstance(module, nn.MaxPool2d):
            shapes.append(tuple(x.shape[1:]))
    return shapes


@pytest.mark.parametrize("name", list(ALL))
def test_five_stages_halve_the_maps(name):
    size = models.spec(name).input_size[-1]
    sides = [size // 2**i for i in range(1, 6)]  # 112, 56, 28, 14, 7 (CIFAR: 16, 8, 4, 2, 1)
    expected = [(c, s, s) for c, s in zip((64, 128, 256, 512, 512), sides)]
    assert pooled_shapes(on_meta(name), size) == expected


@pytest.mark.parametrize("name", list(ALL))
def test_depth_and_layers_are_those_of_table1(name):
    column, depth, batch_norm = ALL[name]
    model = on_meta(name)
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == depth
    assert [c.out_channels for c in convs] == conv_widths(CONFIGS[column])
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == (len(convs) if batch_norm else 0)
    assert all((c.bias is None) == batch_norm for c in convs)  # BatchNorm's shift replaces the bias
    assert {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.5}


def test_configuration_c_has_1x1_convolutions_closing_stages_3_to_5():
    kernels, stage = {}, 1
    for module in on_meta("vgg16_1x1").features.modules():
        if isinstance(module, nn.Conv2d):
            kernels.setdefault(stage, []).append(module.kernel_size[0])
        elif isinstance(module, nn.MaxPool2d):
            stage += 1
    assert kernels == {1: [3, 3], 2: [3, 3], 3: [3, 3, 1], 4: [3, 3, 1], 5: [3, 3, 1]}


def test_a_lrn_normalises_after_the_first_convolution_only():
    layers = list(on_meta("vgg11_lrn").features)
    lrn = [i for i, m in enumerate(layers) if isinstance(m, nn.LocalResponseNorm)]
    assert lrn == [1]  # right after conv3-64 (with its ReLU), before the first pooling
    assert isinstance(layers[2], nn.MaxPool2d)
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in on_meta("vgg11").modules())


@pytest.mark.parametrize("name", list(IMAGENET))
def test_parameter_count_matches_the_reference(name):
    """torchvision counted live (built on the meta device), plus the declared and explained differences."""
    reference = models.spec(name).reference
    with torch.device("meta"):
        expected = reference.count() + reference.difference
    assert count_params(on_meta(name)) == expected, (reference.where, reference.why)


def test_table2_counts():
    """Table 2: 133, 133, 133, 134, 138, 144 million parameters for A, A-LRN, B, C, D, E."""
    names = ["vgg11", "vgg11_lrn", "vgg13", "vgg16_1x1", "vgg16", "vgg19"]
    millions = [round(count_params(on_meta(name)) / 1e6) for name in names]
    assert millions == [133, 133, 133, 134, 138, 144]


def test_cifar_head_is_512_512_classes():
    def fc(n_in: int, n_out: int) -> int:
        return n_in * n_out + n_out

    for name in CIFAR:
        model, imagenet = on_meta(name), on_meta(name.removesuffix("_cifar"))
        head = count_params(model.classifier)
        assert head == fc(512, 512) + fc(512, 512) + fc(512, 10)
        assert count_params(model.features) == count_params(imagenet.features)  # the same convolutions


# Every code path of make_layers at 224x224 (plain, LRN, 1x1, BatchNorm) and every CIFAR model. The deeper
# ImageNet networks are the same code with longer lists: their shapes are checked above on the meta device,
# and tests/test_zoo.py runs every registered model forward and backward (VGG-19: 20 G multiply-adds an image).
@pytest.mark.parametrize("name", ["vgg11", "vgg11_lrn", "vgg16_1x1", "vgg11_bn", *CIFAR])
def test_forward_and_backward(name):
    """A batch of one at 224x224, two at 32x32."""
    torch.manual_seed(0)
    spec = models.spec(name)
    batch = 2 if name in CIFAR else 1
    model = models.create(name)
    logits = model(torch.randn(batch, *spec.input_size))
    assert logits.shape == (batch, spec.num_classes)
    logits.logsumexp(1).sum().backward()
    first = next(m for m in model.features.modules() if isinstance(m, nn.Conv2d))
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert first.weight.grad.abs().sum() > 0, "no gradient reaches the first convolution"


def test_dense_evaluation_equals_the_fc_head_and_slides_over_larger_images():
    """Sec. 3.2: fc6 as a 7x7 convolution, fc7 and fc8 as 1x1 convolutions, the same weights."""
    torch.manual_seed(0)
    model = models.create("vgg11").eval()
    dense = model.to_fully_convolutional()
    assert not dense.training
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        # At 224x224 the score map is 1x1 and holds forward's scores.
        crop = x[..., :224, :224]
        torch.testing.assert_close(dense(crop).flatten(1), model(crop), rtol=1e-4, atol=1e-5)
        # At 256x256, 8x8 maps: a 2x2 score map, one score vector per 7x7 window (224x224 pixels, 32 apart).
        features = model.features(x)
        scores = dense.head(features)
        assert scores.shape == (1, 1000, 2, 2)
        for i, j in [(0, 0), (0, 1), (1, 1)]:
            window = features[..., i : i + 7, j : j + 7]
            torch.testing.assert_close(scores[..., i, j], model.forward_head(window), rtol=1e-4, atol=1e-5)
        with pytest.raises(ValueError, match="at least 224x224"):
            dense(torch.randn(1, 3, 200, 200))


def test_dense_evaluation_of_a_cifar_model_and_independent_weights():
    torch.manual_seed(0)
    model = models.create("vgg11_bn_cifar").eval()
    dense = model.to_fully_convolutional()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dense(x).flatten(1), model(x), rtol=1e-4, atol=1e-5)
        assert dense(torch.randn(2, 3, 64, 64)).shape == (2, 10, 2, 2)
        model.classifier.fc6.weight.zero_()  # the dense copy keeps its own weights
    assert dense.head.conv6.weight.abs().sum() > 0


@pytest.mark.parametrize(
    "name, shape, message",
    [
        ("vgg16", (1, 3, 256, 256), "224x224"),  # the fc head fixes the size; see to_fully_convolutional
        ("vgg16", (1, 1, 224, 224), "3 input channel"),
        ("vgg16_bn_cifar", (3, 32, 32), "batch"),
        ("vgg16_bn_cifar", (1, 3, 224, 224), "32x32"),
    ],
)
def test_wrong_input_raises_a_clear_error(name, shape, message):
    model = on_meta(name)
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(shape, device="meta"))


def test_unknown_configuration_raises_a_clear_error():
    with pytest.raises(ValueError, match="columns of Table 1"):
        VGG("F")


def test_scale_widths_keeps_the_layout_and_scales_the_maps():
    from cnnbook.models.vgg import scale_widths

    assert scale_widths(CONFIGS["C"], 1) == CONFIGS["C"]
    quarter = scale_widths(CONFIGS["C"], 0.25)
    assert [e for e in quarter if isinstance(e, str)] == ["M"] * 5
    assert conv_widths(quarter) == [w // 4 for w in conv_widths(CONFIGS["C"])]
    assert quarter[8] == (64, 1)  # the 1x1 convolution keeps its kernel
    assert scale_widths(["LRN", 3, "M"], 0.01) == ["LRN", 1, "M"]  # >= 1 map
    for bad in (0, -0.5):
        with pytest.raises(ValueError, match="width=.* must be positive"):
            scale_widths(CONFIGS["A"], bad)


@pytest.mark.parametrize("column", ["A", "B", "D"])
def test_width_option_narrows_every_convolution_not_the_head(column):
    torch.manual_seed(0)
    model = VGG(column, 10, batch_norm=True, input_size=32, hidden=512,
                width=0.25)  # fmt: skip
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [
        w // 4 for w in conv_widths(CONFIGS[column])
    ]
    assert model.classifier.fc6.in_features == 128  # 512 / 4 maps of 1x1
    assert model.classifier.fc7.in_features == 512  # the head keeps its units
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    full = count_params(models.create("vgg11_bn_cifar", width=1.0))
    assert full == count_params(models.create("vgg11_bn_cifar"))
    dense = model.eval().to_fully_convolutional()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dense(x).flatten(1), model(x))
