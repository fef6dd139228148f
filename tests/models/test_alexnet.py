"""AlexNet (Krizhevsky et al. 2012): map sizes, the exact parameter count, LRN as the paper writes it, options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnbook import models
from cnnbook.summary import count_params


@pytest.mark.parametrize("pool", ["overlap", "plain"])
def test_alexnet_maps_55_27_13_6(pool, feature_shapes):
    """Fig. 2's sizes at 227x227; 3x3/2 and 2x2/2 pooling give the same sizes (Sec. 3.4)."""
    shapes = feature_shapes("alexnet", pool=pool)
    assert shapes["conv1"] == (96, 55, 55)
    assert shapes["pool1"] == (96, 27, 27)
    assert shapes["conv2"] == (256, 27, 27)
    assert shapes["pool2"] == (256, 13, 13)
    assert [shapes[c] for c in ("conv3", "conv4", "conv5")] == [(384, 13, 13), (384, 13, 13), (256, 13, 13)]
    assert shapes["pool5"] == (256, 6, 6)


@pytest.mark.parametrize("pool", ["overlap", "plain"])
def test_alexnet_cifar_maps_32_16_8_4(pool, feature_shapes):
    shapes = feature_shapes("alexnet_cifar", pool=pool)
    sizes = [shapes[k] for k in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")]
    assert sizes == [(48, 32, 32), (48, 16, 16), (128, 16, 16), (128, 8, 8),
                     (192, 8, 8), (192, 8, 8), (128, 8, 8), (128, 4, 4)]  # fmt: skip


def conv(k: int, c_in: int, c_out: int, groups: int = 1) -> int:
    """Weights and biases of a k x k convolution; each kernel sees c_in / groups maps."""
    return k * k * (c_in // groups) * c_out + c_out


def fc(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


# The two-GPU network layer by layer: conv2, conv4, conv5 see only their own GPU's half of the maps.
ALEXNET_LAYERS = {
    "conv1": conv(11, 3, 96),  # 34,944
    "conv2": conv(5, 96, 256, groups=2),  # 307,456
    "conv3": conv(3, 256, 384),  # 885,120 (across GPUs)
    "conv4": conv(3, 384, 384, groups=2),  # 663,936
    "conv5": conv(3, 384, 256, groups=2),  # 442,624
    "fc6": fc(256 * 6 * 6, 4096),  # 37,752,832
    "fc7": fc(4096, 4096),  # 16,781,312
    "fc8": fc(4096, 1000),  # 4,097,000
}


def per_layer(model: nn.Module) -> dict[str, int]:
    return {
        name: count_params(module)
        for name, module in [*model.features.named_children(), *model.classifier.named_children()]
        if count_params(module)
    }


def test_alexnet_parameters_layer_by_layer():
    with torch.device("meta"):
        model = models.create("alexnet")
    assert per_layer(model) == ALEXNET_LAYERS
    assert sum(ALEXNET_LAYERS.values()) == 60_965_224
    reference = models.spec("alexnet").reference
    assert count_params(model) == reference.count() + reference.difference == 60_965_224


def test_dense_alexnet_has_the_often_quoted_62_million():
    """groups=1: every kernel sees all maps (the count usually computed without the paper's grouping)."""
    with torch.device("meta"):
        model = models.create("alexnet", groups=1)
    assert count_params(model) == 62_378_344


def test_alexnet_cifar_parameters_layer_by_layer():
    with torch.device("meta"):
        model = models.create("alexnet_cifar")
    expected = {
        "conv1": conv(5, 3, 48), "conv2": conv(5, 48, 128, groups=2), "conv3": conv(3, 128, 192),
        "conv4": conv(3, 192, 192, groups=2), "conv5": conv(3, 192, 128, groups=2),
        "fc6": fc(128 * 4 * 4, 512), "fc7": fc(512, 512), "fc8": fc(512, 10),
    }  # fmt: skip
    assert per_layer(model) == expected


def grouped_as_two_gpus(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """What the two GPUs computed: each half of the kernels on its own half of the maps, then side by side."""
    half_in, half_out = conv.in_channels // 2, conv.out_channels // 2
    gpus = [
        F.conv2d(x[:, g * half_in : (g + 1) * half_in], conv.weight[g * half_out : (g + 1) * half_out],
                 conv.bias[g * half_out : (g + 1) * half_out], conv.stride, conv.padding)
        for g in (0, 1)
    ]  # fmt: skip
    return torch.cat(gpus, dim=1)


def test_grouped_convolutions_compute_what_the_two_gpus_did():
    torch.manual_seed(0)
    model = models.create("alexnet_cifar", width=0.25)
    x = torch.randn(2, model.features.conv2.in_channels, 9, 9)
    torch.testing.assert_close(model.features.conv2(x), grouped_as_two_gpus(model.features.conv2, x))


def paper_lrn(a: torch.Tensor, k: float = 2.0, n: int = 5, alpha: float = 1e-4, beta: float = 0.75) -> torch.Tensor:
    """Sec. 3.3 written out: b_i = a_i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} a_j^2)^beta."""
    maps = a.shape[1]
    out = torch.empty_like(a)
    for i in range(maps):
        lo, hi = max(0, i - n // 2), min(maps - 1, i + n // 2)
        out[:, i] = a[:, i] / (k + alpha * a[:, lo : hi + 1].pow(2).sum(dim=1)) ** beta
    return out


def test_lrn_is_the_papers_formula():
    torch.manual_seed(0)
    # ReLU outputs large enough that the normalisation matters: alpha * sum a^2 is about 1 here, next to k = 2.
    a = torch.rand(2, 12, 5, 5) * 60
    norm1 = models.create("alexnet_cifar").features.norm1
    torch.testing.assert_close(norm1(a), paper_lrn(a))
    # PyTorch's layer with the paper's alpha taken literally divides it by n: a different layer.
    literal = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    assert not torch.allclose(literal(a), paper_lrn(a), rtol=1e-3)



def test_options_change_the_layers():
    model = models.create("alexnet_cifar", activation="tanh", lrn=False, pool="plain", dropout=0.2, groups=1)
    kinds = {type(m) for m in model.modules()}
    assert nn.Tanh in kinds and nn.ReLU not in kinds
    assert nn.LocalResponseNorm not in kinds
    assert {m.kernel_size for m in model.modules() if isinstance(m, nn.MaxPool2d)} == {2}
    assert {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.2}
    assert {m.groups for m in model.modules() if isinstance(m, nn.Conv2d)} == {1}
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_paper_initialisation():
    """Sec. 5: N(0, 0.01^2) weights, biases 1 in conv2, conv4, conv5, fc6, fc7 and 0 elsewhere."""
    torch.manual_seed(0)
    model = models.create("alexnet")
    layers = dict([*model.features.named_children(), *model.classifier.named_children()])
    for name in ALEXNET_LAYERS:
        expected_bias = 1.0 if name in {"conv2", "conv4", "conv5", "fc6", "fc7"} else 0.0
        assert torch.all(layers[name].bias == expected_bias), name
    assert abs(layers["fc6"].weight.std().item() - 0.01) < 1e-4


@pytest.mark.parametrize("activation, gain", [("relu", 2**0.5), ("tanh", 5 / 3)])
def test_cifar_model_starts_from_he_initialisation(activation, gain):
    """alexnet_cifar: N(0, gain^2 / fan_in) with the activation's gain, zero biases, fc8 N(0, 0.01^2)."""
    torch.manual_seed(0)
    model = models.create("alexnet_cifar", activation=activation, width=1.0)
    conv3, fc8 = model.features.conv3, model.classifier.fc8
    fan_in = conv3.weight[0].numel()
    assert conv3.weight.std().item() == pytest.approx(gain / fan_in**0.5, rel=0.02)
    assert torch.count_nonzero(conv3.bias) == 0
    assert fc8.weight.std().item() == pytest.approx(0.01, rel=0.05)


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(activation="sigmoid"), "activation"), (dict(pool="average"), "pool"), (dict(width=0.3), "divisible")],
)
def test_bad_options_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.create("alexnet_cifar", **kwargs)


@pytest.mark.parametrize(
    "name, shape, message",
    [
        ("alexnet", (1, 3, 224, 224), "227x227"),  # the paper's stated size does not fit the arithmetic
        ("alexnet", (1, 1, 227, 227), "3 input channel"),
        ("alexnet_cifar", (3, 32, 32), "batch"),
        ("alexnet_cifar", (1, 3, 28, 28), "32x32"),
    ],
)
def test_wrong_input_raises_a_clear_error(name, shape, message):
    with torch.device("meta"):  # the check happens before any arithmetic
        model = models.create(name)
        with pytest.raises(ValueError, match=message):
            model(torch.zeros(shape))
