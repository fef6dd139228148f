"""DenseNet (Huang et al. 2017): stage shapes, parameter counts, torchvision equivalence, options, errors."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnbook import models
from cnnbook.models import densenet
from cnnbook.summary import count_params, output_shapes

NAMES = models.names("densenet")

# Per registered name, worked out by hand from the paper's Tables 1 and 2 (not from the code):
# maps after the stem, maps at the end of each dense block, the grid of each block, the compression.
# E.g. DenseNet-121, k=32: 64 + 6*32 = 256 -> 128 + 12*32 = 512 -> 256 + 24*32 = 1024 -> 512 + 16*32 = 1024.
STAGES: dict[str, tuple[int, list[int], list[int], float]] = {
    "densenet121": (64, [256, 512, 1024, 1024], [56, 28, 14, 7], 0.5),
    "densenet169": (64, [256, 512, 1280, 1664], [56, 28, 14, 7], 0.5),
    "densenet201": (64, [256, 512, 1792, 1920], [56, 28, 14, 7], 0.5),
    "densenet161": (96, [384, 768, 2112, 2208], [56, 28, 14, 7], 0.5),
    "densenet40_k12": (16, [160, 304, 448], [32, 16, 8], 1.0),
    "densenet100_k12": (16, [400, 784, 1168], [32, 16, 8], 1.0),
    "densenet_bc100_k12": (24, [216, 300, 342], [32, 16, 8], 0.5),
    "densenet_bc250_k24": (48, [1032, 1500, 1734], [32, 16, 8], 0.5),
    "densenet_bc190_k40": (80, [1320, 1900, 2190], [32, 16, 8], 0.5),
    "densenet121_cifar": (64, [256, 512, 1024, 1024], [32, 16, 8, 4], 0.5),
}

# Name, where the reference count comes from, and why ours differs where it does (the test table).
PARAMS: list[tuple[str, str, str]] = [
    ("densenet121", "torchvision", "equal"),
    ("densenet169", "torchvision", "equal"),
    ("densenet201", "torchvision", "equal"),
    ("densenet161", "torchvision", "equal"),
    ("densenet40_k12", "Huang et al. 2017, Table 2", "1.0M, rounded to 0.1M"),
    ("densenet100_k12", "Huang et al. 2017, Table 2", "7.0M, rounded to 0.1M"),
    ("densenet_bc100_k12", "Huang et al. 2017, Table 2", "0.8M, rounded to 0.1M"),
    ("densenet_bc250_k24", "Huang et al. 2017, Table 2", "15.3M, rounded to 0.1M"),
    ("densenet_bc190_k40", "Huang et al. 2017, Table 2", "25.6M, rounded to 0.1M"),
    ("densenet121_cifar", "torchvision", "3x3 stem without BN, 10 classes"),
]

# Forward and backward at the paper's input size for the light models, the heavy ones (several GMACs
# per image) at a smaller size, which also shows they take other sizes. tests/test_zoo.py runs every
# model forward and backward at its paper's size, and test_stage_shapes checks the shapes there.
SMALL_INPUT = {"densenet161": 64, "densenet169": 64, "densenet201": 64, "densenet100_k12": 16,
               "densenet_bc250_k24": 16, "densenet_bc190_k40": 16, "densenet121_cifar": 16}  # fmt: skip


def meta_model(name: str, **kwargs) -> nn.Module:
    """The model built on the meta device: shapes without memory or compute."""
    with torch.device("meta"):
        return models.create(name, **kwargs)


def test_every_name_is_checked() -> None:
    assert sorted(STAGES) == NAMES
    assert sorted(name for name, _, _ in PARAMS) == NAMES
    contract = ["densenet121", "densenet169", "densenet201", "densenet161", "densenet40_k12", "densenet100_k12",
                "densenet_bc100_k12", "densenet_bc250_k24", "densenet_bc190_k40"]  # fmt: skip
    assert set(contract) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_stage_shapes(name: str) -> None:
    stem_channels, block_channels, grids, compression = STAGES[name]
    entry = models.spec(name)
    model = meta_model(name)
    assert model.block_channels == block_channels
    stages = [f"features.{name}" for name, _ in model.features.named_children()]
    outputs, logits = output_shapes(model, torch.zeros(1, *entry.input_size, device="meta"), stages)
    outputs = {name.removeprefix("features."): shape for name, shape in outputs.items()}

    assert outputs["stem"] == (1, stem_channels, grids[0], grids[0])
    for i, (channels, grid) in enumerate(zip(block_channels, grids), start=1):
        # Every block runs on its own grid: a transition that forgot to pool would show here.
        assert outputs[f"block{i}"] == (1, channels, grid, grid), f"block{i}"
        if i < len(grids):
            assert outputs[f"transition{i}"] == (1, int(compression * channels), grids[i], grids[i]), f"transition{i}"
    assert f"transition{len(grids)}" not in outputs  # no transition after the last block
    assert outputs["relu"] == (1, block_channels[-1], grids[-1], grids[-1])
    assert tuple(logits.shape) == (1, entry.num_classes)


@pytest.mark.parametrize(("name", "where", "note"), PARAMS)
def test_parameter_count(name: str, where: str, note: str) -> None:
    reference = models.spec(name).reference
    assert reference is not None and reference.where == where
    with torch.device("meta"):  # counting torchvision's parameters needs no memory either
        expected = reference.count() + reference.difference
    ours = count_params(meta_model(name))
    assert abs(ours - expected) <= reference.rounded_to // 2, f"{name}: {ours:,} vs {expected:,} ({where}: {note})"
    if where == "torchvision":
        assert reference.rounded_to == 1  # a live count is matched exactly
    assert (reference.difference == 0) == (note == "equal" or where != "torchvision")  # a difference is declared


def test_cifar_adaptation_difference_is_the_stem_and_the_head() -> None:
    """densenet121_cifar's declared difference is exactly what its stem and 10-class head change."""
    ours = models.create("densenet121_cifar", num_classes=1000)
    reference = torchvision.models.densenet121()
    stem_difference = count_params(ours.features.stem) - count_params(reference.features[:4])
    assert stem_difference == -(64 * 3 * 7 * 7 + 2 * 64) + 64 * 3 * 3 * 3
    assert count_params(ours) - count_params(reference) == stem_difference
    head_difference = count_params(models.create("densenet121_cifar")) - count_params(ours)
    assert models.spec("densenet121_cifar").reference.difference == stem_difference + head_difference


@pytest.mark.parametrize("name", ["densenet121", "densenet169", "densenet201", "densenet161"])
def test_same_tensors_as_torchvision(name: str) -> None:
    """Parameters and buffers correspond one to one, in the same order (so torchvision's weights load)."""
    with torch.device("meta"):
        theirs = getattr(torchvision.models, name)()
    ours = [tuple(t.shape) for t in meta_model(name).state_dict().values()]
    assert ours == [tuple(t.shape) for t in theirs.state_dict().values()]


def test_same_outputs_as_torchvision_with_its_weights() -> None:
    """The strongest check of the architecture: torchvision's DenseNet-121 weights give the same logits."""
    torch.manual_seed(0)
    theirs = torchvision.models.densenet121().eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that a misplaced BN would show
        for module in theirs.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    ours = models.create("densenet121").eval()
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values())))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward(name: str) -> None:
    entry = models.spec(name)
    torch.manual_seed(0)
    model = models.create(name, num_classes=7).train()
    size = SMALL_INPUT.get(name, entry.input_size[1])
    logits = model(torch.randn(2, entry.input_size[0], size, size))
    assert logits.shape == (2, 7)
    nn.functional.cross_entropy(logits, torch.tensor([0, 6])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_dense_layer_keeps_its_input_first() -> None:
    layer = densenet.DenseLayer(20, growth_rate=12, bottleneck=True)
    x = torch.randn(2, 20, 8, 8)
    out = layer(x)
    assert out.shape == (2, 32, 8, 8)
    assert torch.equal(out[:, :20], x)  # cat([x, H(x)]): the block's input passes through unchanged
    assert [m.out_channels for m in layer.modules() if isinstance(m, nn.Conv2d)] == [48, 12]  # 4k, then k


def test_dropout_after_every_convolution_but_the_first() -> None:
    model = models.create("densenet_bc100_k12", drop_rate=0.2)
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert convs == 2 * 48 + 2 + 1  # the paper's depth 100 minus the classifier
    assert len(dropouts) == convs - 1 and all(d.p == 0.2 for d in dropouts)
    assert not any(isinstance(m, nn.Dropout) for m in models.create("densenet_bc100_k12").modules())

    plain = models.create("densenet_bc100_k12")
    plain.load_state_dict(model.state_dict())  # dropout has no weights
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x))  # dropout is off at test time
        model.train()
        assert not torch.allclose(model(x), model(x))  # and on in training


def test_cifar_variants_b_and_c() -> None:
    """The paper's four CIFAR variants differ only in the bottleneck and the compression."""
    b = densenet.cifar_densenet(100, 12, bottleneck=True, compression=1.0)
    c = densenet.cifar_densenet(40, 12, bottleneck=False, compression=0.5)
    assert b.block_channels == [16 + 16 * 12, 16 + 32 * 12, 16 + 48 * 12]  # no compression: every map survives
    assert c.block_channels == [160, 80 + 144, 112 + 144]  # compression halves each transition's maps
    assert (b.name, c.name) == ("densenet_b100_k12", "densenet_c40_k12")  # in error messages


def test_bad_configurations_raise() -> None:
    with pytest.raises(ValueError, match="depth = 4 \\+ 6 n"):
        densenet.cifar_densenet(101, 12, bottleneck=True, compression=0.5)
    with pytest.raises(ValueError, match="compression"):
        densenet.cifar_densenet(40, 12, bottleneck=False, compression=0.0)


@pytest.mark.parametrize(
    ("name", "shape", "message"),
    [
        ("densenet121", (1, 1, 224, 224), "expects 3 input channel"),
        ("densenet121", (1, 3, 16, 16), "at least 32x32"),
        ("densenet121", (3, 224, 224), "batch of images"),
        ("densenet40_k12", (1, 3, 2, 2), "at least 4x4"),
        ("densenet121_cifar", (1, 3, 4, 4), "at least 8x8"),
    ],
)
def test_wrong_input_raises(name: str, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        meta_model(name)(torch.zeros(shape, device="meta"))
    assert name in str(error.value)


# ---------------------------------------------------------------- memory_efficient (Pleiss et al. 2017)


def pair(name: str, **kwargs) -> tuple[nn.Module, nn.Module]:
    """The naive network and the memory-efficient one with the same weights."""
    torch.manual_seed(0)
    naive = models.create(name, **kwargs)
    efficient = models.create(name, memory_efficient=True, **kwargs)
    efficient.load_state_dict(naive.state_dict())
    return naive, efficient


@pytest.mark.parametrize(("name", "kwargs"), [("densenet40_k12", {}), ("densenet_bc100_k12", {"drop_rate": 0.2})])
def test_memory_efficient_same_outputs_gradients_and_statistics(name: str, kwargs: dict) -> None:
    naive, efficient = pair(name, **kwargs)
    assert count_params(naive) == count_params(efficient)
    x = torch.randn(3, 3, 32, 32)
    outputs = []
    for model in (naive, efficient):
        torch.manual_seed(1)  # the same dropout masks; checkpoint replays them in the recomputation
        out = model.train()(x)
        nn.functional.cross_entropy(out, torch.tensor([0, 1, 2])).backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[0], outputs[1])
    for (pname, p), q in zip(naive.named_parameters(), efficient.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=pname)
    # The recomputation in the backward pass must not update BatchNorm's running statistics a second time.
    for (key, a), b in zip(naive.state_dict().items(), efficient.state_dict().values()):
        torch.testing.assert_close(a, b, msg=key)
    naive.eval()
    efficient.eval()
    with torch.no_grad():
        torch.testing.assert_close(naive(x), efficient(x))


def test_memory_efficient_saves_less_and_grows_linearly() -> None:
    x = torch.randn(2, 3, 32, 32)
    saved = {}
    for depth in (28, 52, 100):
        naive, efficient = pair_cifar(depth)
        saved[depth] = (densenet.saved_bytes(naive, x), densenet.saved_bytes(efficient, x))
        assert saved[depth][1] < saved[depth][0], depth
    assert saved[100][1] < saved[100][0] / 2
    # Doubling the layers per block (4 -> 8 -> 16): the naive bytes grow faster than twice, the efficient ones not.
    assert saved[100][0] / saved[52][0] > 2.4
    assert saved[100][1] / saved[52][1] < 2.1


def pair_cifar(depth: int) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    naive = densenet.cifar_densenet(depth, 12, bottleneck=True, compression=0.5)
    efficient = densenet.cifar_densenet(depth, 12, bottleneck=True, compression=0.5, memory_efficient=True)
    efficient.load_state_dict(naive.state_dict())
    return naive, efficient


def test_saved_bytes_counts_shared_storage_once() -> None:
    """BN-ReLU(inplace)-Conv: BN saves its input and output, the conv the same output again (one storage)."""
    layer = nn.Sequential(nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 1, bias=False))
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    one_map = x.numel() * 4  # bytes of one float32 tensor of x's shape
    saved = densenet.saved_bytes(layer, x)
    assert one_map * 2 <= saved <= one_map * 2 + 1024  # x and the BN/ReLU output, plus BN's small statistics


def test_source_weights_groups_input_channels_by_source() -> None:
    block = densenet.DenseBlock(5, num_layers=3, growth_rate=2, bottleneck=True)
    transition = densenet.Transition(block.out_channels, 5)
    with torch.no_grad():
        for row, module in enumerate([*block, transition]):
            conv = next(m for m in module.modules() if isinstance(m, nn.Conv2d))
            # Input channel c gets weight c + 1: the mean per source is then known in closed form.
            conv.weight.copy_(torch.arange(1.0, conv.in_channels + 1).view(1, -1, 1, 1).expand_as(conv.weight))
    heat = densenet.source_weights(block, transition)
    assert heat.shape == (4, 4)
    expected_row = torch.tensor([3.0, 6.5, 8.5, 10.5])  # channels 1-5, 6-7, 8-9, 10-11
    for row in range(4):
        torch.testing.assert_close(heat[row, : row + 1], expected_row[: row + 1])
        assert heat[row, row + 1 :].isnan().all()  # a layer cannot draw on later ones


def test_source_weights_with_the_classifier() -> None:
    model = models.create("densenet_bc100_k12")
    heat = densenet.source_weights(model.features.block3, model.classifier)
    assert heat.shape == (17, 17) and not heat[-1].isnan().any() and (heat[-1] > 0).all()
