"""ZFNet (Zeiler & Fergus 2014): Fig. 3's map sizes, its parameter count, the pooling switches, filter RMS clipping."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnbook import models
from cnnbook.summary import count_params


def map_sizes(name: str) -> list[tuple[int, ...]]:
    """(C, H, W) after every convolution and every pooling, in order, computed on the meta device."""
    with torch.device("meta"):
        model = models.create(name)
        x = torch.empty(2, *models.spec(name).input_size)
    sizes = []
    for layer in model.features:
        for module in layer:
            x = module(x)
            if isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
                sizes.append(tuple(x.shape[1:]))
    return sizes


def test_zfnet_maps_are_those_of_fig3():
    """Layer 1: 110 then 55 after pooling; layer 2: 26 then 13; layers 3-5: 13; pooled: 6."""
    assert map_sizes("zfnet") == [
        (96, 110, 110), (96, 55, 55),  # layer 1: conv, pool
        (256, 26, 26), (256, 13, 13),  # layer 2: conv, pool
        (384, 13, 13), (384, 13, 13), (256, 13, 13), (256, 6, 6),  # layers 3, 4, 5 and the last pooling
    ]  # fmt: skip


def test_zfnet_cifar_maps_32_16_8_4():
    assert map_sizes("zfnet_cifar") == [
        (48, 32, 32), (48, 16, 16), (128, 16, 16), (128, 8, 8), (192, 8, 8), (192, 8, 8), (128, 8, 8), (128, 4, 4)
    ]


def conv(k: int, c_in: int, c_out: int) -> int:
    return k * k * c_in * c_out + c_out


def fc(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def test_zfnet_parameters_from_fig3():
    """No count is published; Fig. 3's layers give 62,357,608 (all connections dense, on one GPU)."""
    layers = [
        conv(7, 3, 96), conv(5, 96, 256), conv(3, 256, 384), conv(3, 384, 384), conv(3, 384, 256),
        fc(256 * 6 * 6, 4096), fc(4096, 4096), fc(4096, 1000),
    ]  # fmt: skip
    assert layers == [14_208, 614_656, 885_120, 1_327_488, 884_992, 37_752_832, 16_781_312, 4_097_000]
    with torch.device("meta"):
        model = models.create("zfnet")
    per_layer = [count_params(m) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert per_layer == layers
    reference = models.spec("zfnet").reference
    assert count_params(model) == sum(layers) == reference.count() + reference.difference == 62_357_608


def test_zfnet_cifar_parameters():
    with torch.device("meta"):
        model = models.create("zfnet_cifar")
    layers = [conv(3, 3, 48), conv(5, 48, 128), conv(3, 128, 192), conv(3, 192, 192), conv(3, 192, 128),
              fc(128 * 4 * 4, 512), fc(512, 512), fc(512, 10)]  # fmt: skip
    assert count_params(model) == sum(layers)


def test_switches_record_where_each_maximum_came_from():
    torch.manual_seed(0)
    model = models.create("zfnet_cifar").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        outputs, switches = model.forward_with_switches(x)
        shapes = [tuple(o.shape[1:]) for o in outputs]
        assert shapes == [(48, 16, 16), (128, 8, 8), (192, 8, 8), (192, 8, 8), (128, 4, 4)]
        torch.testing.assert_close(outputs[-1], model.forward_features(x))  # the same network as forward
        assert list(switches) == ["layer1", "layer2", "layer5"]

        # Layer 1 by hand up to its pooling: the switches point at the maxima of the rectified maps.
        conv1, relu, pool, norm = model.features.layer1
        rectified = relu(conv1(x))
        s = switches["layer1"]
        assert s.input_size == rectified.shape[-2:]
        pooled = pool(rectified)
        picked = rectified.flatten(2).gather(2, s.indices.flatten(2)).view_as(pooled)
        torch.testing.assert_close(picked, pooled)
        torch.testing.assert_close(norm(pooled), outputs[0])

        # Unpooling with the switches puts each maximum back where it was; pooling again recovers the map.
        unpooled = F.max_unpool2d(pooled, s.indices, 3, 2, output_size=s.input_size)
        assert unpooled.shape == rectified.shape
        torch.testing.assert_close(pool(unpooled), pooled)


def test_clip_filter_rms_renormalises_only_large_filters():
    model = models.create("zfnet_cifar")
    conv1 = model.convs()[0]
    with torch.no_grad():
        conv1.weight.normal_(0.0, 0.01)
        conv1.weight[:5] *= 100  # five filters with RMS about 1
    before = conv1.weight.detach().clone()
    model.clip_filter_rms_(radius=0.1)
    rms = conv1.weight.pow(2).mean(dim=(1, 2, 3)).sqrt()
    torch.testing.assert_close(rms[:5], torch.full((5,), 0.1))
    torch.testing.assert_close(conv1.weight[5:], before[5:])  # small filters untouched
    # Directions are kept: each large filter is only scaled.
    torch.testing.assert_close(F.normalize(conv1.weight[:5].flatten(1)), F.normalize(before[:5].flatten(1)))



def test_paper_initialisation():
    torch.manual_seed(0)
    model = models.create("zfnet")
    assert all(torch.all(m.bias == 0) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert abs(model.classifier.fc6.weight.std().item() - 0.01) < 1e-4


def test_cifar_model_starts_from_he_initialisation():
    torch.manual_seed(0)
    model = models.create("zfnet_cifar", width=1.0)
    conv = model.convs()[2]
    assert conv.weight.std().item() == pytest.approx((2 / conv.weight[0].numel()) ** 0.5, rel=0.02)
    assert model.classifier.fc8.weight.std().item() == pytest.approx(0.01, rel=0.05)


@pytest.mark.parametrize(
    "name, shape, message",
    [
        ("zfnet", (1, 3, 227, 227), "224x224"),
        ("zfnet", (1, 1, 224, 224), "3 input channel"),
        ("zfnet_cifar", (3, 32, 32), "batch"),
    ],
)
def test_wrong_input_raises_a_clear_error(name, shape, message):
    with torch.device("meta"):
        model = models.create(name)
        for run in (model, model.forward_with_switches):
            with pytest.raises(ValueError, match=message):
                run(torch.zeros(shape))


# ---------------------------------------------------------------- the first-layer experiment's options


def test_alexnet_stem_has_alexnets_first_two_layers_and_reaches_13x13():
    """11x11/4 (224 -> 55 -> 27 pooled), then 5x5/1 (27 -> 13 pooled): AlexNet's path, dense."""
    with torch.device("meta"):
        model = models.create("zfnet", stem="alexnet")
        x = torch.empty(2, 3, 224, 224)
        sizes = []
        for layer in model.features:
            for module in layer:
                x = module(x)
                if isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
                    sizes.append(tuple(x.shape[1:]))
    assert sizes[:4] == [(96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13)]
    assert sizes[-1] == (256, 6, 6)
    conv1, conv2 = model.convs()[:2]
    assert (conv1.kernel_size, conv1.stride, conv2.stride, conv2.groups) == ((11, 11), (4, 4), (1, 1), 1)
    assert count_params(conv1) == conv(11, 3, 96) and count_params(conv2) == conv(5, 96, 256)


@pytest.mark.parametrize("stem", ["imagenet", "alexnet"])
@pytest.mark.parametrize("size, side", [(64, 1), (96, 2), (128, 3), (224, 6)])
def test_input_size_sets_the_last_maps_and_fc6(stem, size, side):
    """Both first layers reach the same grid at every size, so fc6 has the same size for both."""
    with torch.device("meta"):
        model = models.create("zfnet", stem=stem, input_size=size, width=0.25, hidden=32, num_classes=10)
        assert model.map_size == side
        assert model.classifier.fc6.in_features == 64 * side * side
        assert model(torch.empty(2, 3, size, size)).shape == (2, 10)
        with pytest.raises(ValueError, match=f"{size}x{size}"):
            model(torch.empty(2, 3, 224 if size != 224 else 64, 224 if size != 224 else 64))


@pytest.mark.parametrize("stem, smallest", [("imagenet", 47), ("alexnet", 35), ("cifar", 8)])
def test_too_small_an_input_size_says_the_smallest(stem, smallest):
    with torch.device("meta"):
        model = models.create("zfnet", stem=stem, input_size=smallest, width=0.1, hidden=8)
        model(torch.empty(1, 3, smallest, smallest))
        with pytest.raises(ValueError, match=f"at least {smallest}"):
            models.create("zfnet", stem=stem, input_size=smallest - 1)


def test_clip_rms_renormalises_before_every_forward_pass():
    torch.manual_seed(0)
    model = models.create("zfnet", stem="alexnet", input_size=64, width=0.25, hidden=16, init="he", clip_rms=0.05)
    x = torch.randn(2, 3, 64, 64)
    model(x)
    for conv in model.convs():
        assert conv.weight.pow(2).mean(dim=(1, 2, 3)).sqrt().max() <= 0.05 + 1e-6
    with torch.no_grad():  # an update makes the filters large again ...
        for conv in model.convs():
            conv.weight.mul_(10)
    model.eval()
    model.forward_with_switches(x)  # ... and the next pass, in any mode, scales them back
    assert model.convs()[0].weight.pow(2).mean(dim=(1, 2, 3)).sqrt().max() <= 0.05 + 1e-6
    plain = models.create("zfnet_cifar")
    before = plain.convs()[0].weight.detach().clone()
    plain(torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(plain.convs()[0].weight, before)  # clip_rms=None: left alone
    with pytest.raises(ValueError, match="clip_rms=-1 must be positive"):
        models.create("zfnet", clip_rms=-1)


def test_unknown_stem_raises_a_clear_error():
    with pytest.raises(ValueError, match="stem='lenet' is not one of"):
        models.create("zfnet", stem="lenet")

