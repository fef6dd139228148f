"""Network in Network (Lin et al. 2014): map sizes, parameter counts, no fully connected layers, the fc head option."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnbook import models
from cnnbook.summary import count_params


def test_nin_cifar_maps_32_16_8(feature_shapes):
    assert feature_shapes("nin_cifar") == {
        "mlpconv1": (96, 32, 32), "pool1": (96, 16, 16), "drop1": (96, 16, 16),
        "mlpconv2": (192, 16, 16), "pool2": (192, 8, 8), "drop2": (192, 8, 8),
        "mlpconv3": (10, 8, 8),  # one map per class
    }  # fmt: skip


def test_width_scales_every_map_but_the_class_maps(feature_shapes):
    assert feature_shapes("nin_cifar", width=0.25) == {
        "mlpconv1": (24, 32, 32), "pool1": (24, 16, 16), "drop1": (24, 16, 16),
        "mlpconv2": (48, 16, 16), "pool2": (48, 8, 8), "drop2": (48, 8, 8),
        "mlpconv3": (10, 8, 8),
    }  # fmt: skip
    inner = [m.out_channels for m in models.create("nin_cifar", width=0.25).modules() if isinstance(m, nn.Conv2d)]
    assert inner == [48, 40, 24, 48, 48, 48, 48, 48, 10]
    assert feature_shapes("nin_cifar", width=0.5, head="fc")["mlpconv3"] == (96, 8, 8)
    assert feature_shapes("nin", width=0.5)["mlpconv4"] == (1000, 6, 6)


@pytest.mark.parametrize("init, std", [("he", lambda fan_in: (2 / fan_in) ** 0.5),
                                       ("pytorch", lambda fan_in: (1 / (3 * fan_in)) ** 0.5)])
def test_initialisation(init, std):
    torch.manual_seed(0)
    conv = models.create("nin_cifar", init=init).features.mlpconv2[0]
    assert conv.weight.std().item() == pytest.approx(std(conv.weight[0].numel()), rel=0.02)


def test_nin_imagenet_maps_54_27_13_6(feature_shapes):
    assert feature_shapes("nin") == {
        "mlpconv1": (96, 54, 54), "pool1": (96, 27, 27),
        "mlpconv2": (256, 27, 27), "pool2": (256, 13, 13),
        "mlpconv3": (384, 13, 13), "pool3": (384, 6, 6), "drop3": (384, 6, 6),
        "mlpconv4": (1000, 6, 6),
    }  # fmt: skip


def conv(k: int, c_in: int, c_out: int) -> int:
    return k * k * c_in * c_out + c_out


def mlpconv(k: int, c_in: int, c1: int, c2: int, c3: int) -> int:
    """A k x k convolution and two 1x1 convolutions."""
    return conv(k, c_in, c1) + conv(1, c1, c2) + conv(1, c2, c3)


# The released models' layers: the reference counts are these sums.
COUNTS = {
    "nin_cifar": mlpconv(5, 3, 192, 160, 96) + mlpconv(5, 96, 192, 192, 192) + mlpconv(3, 192, 192, 192, 10),
    "nin": mlpconv(11, 3, 96, 96, 96) + mlpconv(5, 96, 256, 256, 256) + mlpconv(3, 256, 384, 384, 384)
    + mlpconv(3, 384, 1024, 1024, 1000),
}


@pytest.mark.parametrize("name", list(COUNTS))
def test_parameter_counts(name):
    with torch.device("meta"):
        model = models.create(name)
    reference = models.spec(name).reference
    assert count_params(model) == COUNTS[name] == reference.count() + reference.difference
    assert COUNTS == {"nin_cifar": 966_986, "nin": 7_595_176}


@pytest.mark.parametrize("name", list(COUNTS))
def test_no_fully_connected_layers(name):
    with torch.device("meta"):
        model = models.create(name)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert count_params(model.head) == 0  # global average pooling has nothing to learn


def test_scores_are_the_averaged_maps():
    """Global average pooling: the score of class c is the mean of the last layer's map c (Sec. 3.2)."""
    torch.manual_seed(0)
    model = models.create("nin_cifar").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        maps = model.forward_features(x)
        scores = model(x)
    torch.testing.assert_close(scores, maps.mean(dim=(2, 3)))
    assert (scores >= 0).all()  # a ReLU follows the last 1x1 convolution, as in the released models



def test_fc_head_replaces_global_average_pooling():
    """Table 5's alternative: the last 1x1 convolution keeps 192 maps, and a linear layer reads all 192 x 8 x 8."""
    gap = models.create("nin_cifar")
    fc = models.create("nin_cifar", head="fc", fc_dropout=0.5)
    linear = [m for m in fc.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(192 * 8 * 8, 10)]
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in fc.head)
    assert count_params(fc) == count_params(gap) - conv(1, 192, 10) + conv(1, 192, 192) + (192 * 64 * 10 + 10)
    assert fc(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="32x32"):
        fc(torch.randn(1, 3, 40, 40))  # the linear layer fixes the input size


@pytest.mark.parametrize("name, smallest", [("nin_cifar", 4), ("nin", 39)])
def test_global_pooling_takes_any_size_from_the_smallest(name, smallest):
    with torch.device("meta"):
        model = models.create(name)
        classes = models.spec(name).num_classes
        for size in (smallest, smallest + 5):
            assert model(torch.empty(1, 3, size, size)).shape == (1, classes)
        with pytest.raises(ValueError, match=f"at least {smallest}x{smallest}"):
            model(torch.empty(1, 3, smallest - 1, smallest - 1))


def test_smallest_size_is_really_the_smallest():
    """One pixel less and the pooling layers themselves would fail: min_size is not too cautious."""
    for name, smallest in (("nin_cifar", 4), ("nin", 39)):
        with torch.device("meta"):
            model = models.create(name)
            with pytest.raises(RuntimeError):
                model.features(torch.empty(1, 3, smallest - 1, smallest - 1))


@pytest.mark.parametrize("shape, message", [((1, 1, 32, 32), "3 input channel"), ((3, 32, 32), "batch")])
def test_wrong_input_raises_a_clear_error(shape, message):
    model = models.create("nin_cifar")
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(shape))


def test_unknown_head_raises_a_clear_error():
    with pytest.raises(ValueError, match="head='linear' is not one of"):
        models.create("nin_cifar", head="linear")


def test_unknown_init_raises_a_clear_error():
    with pytest.raises(ValueError, match="init='paper' is not one of"):
        models.create("nin_cifar", init="paper")


# ---------------------------------------------------------------- mlp_layers: how many 1x1 layers


@pytest.mark.parametrize(
    "mlp_layers, widths",
    [
        (2, [192, 160, 96, 192, 192, 192, 192, 192, 10]),  # the paper's
        (1, [192, 96, 192, 192, 192, 10]),  # each block keeps its last 1x1
        (0, [192, 192, 10]),  # k x k convolutions only
    ],
)
def test_mlp_layers_sets_the_1x1_convolutions_of_each_block(mlp_layers, widths, feature_shapes):
    model = models.create("nin_cifar", mlp_layers=mlp_layers)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == widths
    ones = [m for m in convs if m.kernel_size == (1, 1)]
    assert len(ones) == 3 * mlp_layers
    for name, block in model.features.named_children():
        if name.startswith("mlpconv"):  # conv, ReLU, (1x1 conv, ReLU) * mlp_layers
            assert len(block) == 2 * (1 + mlp_layers)
            assert all(isinstance(block[i], nn.ReLU) for i in range(1, len(block), 2))
    shapes = feature_shapes("nin_cifar", mlp_layers=mlp_layers)
    assert shapes["mlpconv3"] == (10, 8, 8)  # one map per class, whatever the blocks
    assert shapes["pool2"][1:] == (8, 8)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_mlp_layers_parameter_counts():
    """Written out layer by layer, as for the paper's network above."""
    counts = {
        1: mlpconv_n(5, 3, 192, 96) + mlpconv_n(5, 96, 192, 192) + mlpconv_n(3, 192, 192, 10),
        0: conv(5, 3, 192) + conv(5, 192, 192) + conv(3, 192, 10),
    }
    for mlp_layers, count in counts.items():
        with torch.device("meta"):
            model = models.create("nin_cifar", mlp_layers=mlp_layers)
        assert count_params(model) == count
    with torch.device("meta"):
        fc0 = models.create("nin_cifar", mlp_layers=0, head="fc", width=0.5)
        imagenet0 = models.create("nin", mlp_layers=0)
    assert count_params(fc0) == conv(5, 3, 96) + conv(5, 96, 96) + conv(3, 96, 96) + 96 * 64 * 10 + 10
    assert count_params(imagenet0) == conv(11, 3, 96) + conv(5, 96, 256) + conv(3, 256, 384) + conv(3, 384, 1000)
    with torch.device("meta"):
        assert count_params(models.create("nin_cifar", mlp_layers=2)) == COUNTS["nin_cifar"]


def mlpconv_n(k: int, c_in: int, *channels: int) -> int:
    """A k x k convolution, then a 1x1 convolution per further channel count."""
    counts = [conv(k, c_in, channels[0])]
    counts += [conv(1, a, b) for a, b in zip(channels, channels[1:])]
    return sum(counts)


def test_mlpconv_takes_any_number_of_layers():
    assert len(models.nin.mlpconv(3, (8,), 3, padding=1)) == 2
    block = models.nin.mlpconv(3, (8, 6, 4, 2), 3, padding=1)
    assert [m.out_channels for m in block if isinstance(m, nn.Conv2d)] == [8, 6, 4, 2]
    assert block(torch.randn(1, 3, 5, 5)).shape == (1, 2, 5, 5)


def test_unknown_mlp_layers_raises_a_clear_error():
    with pytest.raises(ValueError, match="mlp_layers=3 is not one of"):
        models.create("nin_cifar", mlp_layers=3)

