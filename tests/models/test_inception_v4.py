"""Inception-v4 and Inception-ResNet-v1/v2 (Szegedy et al. 2017): stages, counts against timm and the figures."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from cnnbook import models
from cnnbook.models.googlenet import scaled
from cnnbook.models.inception_v4 import block_35
from cnnbook.summary import count_params, output_shapes

NAMES = ["inception_v4", "inception_resnet_v1", "inception_resnet_v2"]
# Each stage's (channels, side) at 299x299 (Figures 9 and 15; IR-v2 as released).
STAGES = {
    "inception_v4": [384, 384, 1024, 1024, 1536, 1536, 1536],
    "inception_resnet_v1": [256, 256, 896, 896, 1792, 1792, 1792],
    "inception_resnet_v2": [320, 320, 1088, 1088, 2080, 2080, 1536],
}
STAGE_NAMES = ["stem", "grid35", "reduction_a", "grid17", "reduction_b", "grid8", "final_conv"]
SIDES = [35, 35, 17, 17, 8, 8, 8]


def test_inception_v4_matches_timm_stage_by_stage() -> None:
    ours, theirs = models.create("inception_v4"), timm.create_model("inception_v4")
    f = theirs.features  # timm: 0-5 stem, 6-9 Inception-A, 10 Reduction-A, 11-17 B, 18 Reduction-B, 19-21 C
    pairs = {"stem": f[:6], "grid35": f[6:10], "reduction_a": f[10], "grid17": f[11:18], "reduction_b": f[18],
             "grid8": f[19:], "classifier": theirs.last_linear}  # fmt: skip
    for stage, module in pairs.items():
        assert count_params(getattr(ours, stage)) == count_params(module), stage
    assert count_params(ours) == count_params(theirs) == models.spec("inception_v4").reference.count()


def test_inception_resnet_v2_matches_timm_stage_by_stage() -> None:
    ours, t = models.create("inception_resnet_v2"), timm.create_model("inception_resnet_v2")
    stem = [t.conv2d_1a, t.conv2d_2a, t.conv2d_2b, t.conv2d_3b, t.conv2d_4a, t.mixed_5b]
    pairs = {"stem": stem, "grid35": [t.repeat], "reduction_a": [t.mixed_6a], "grid17": [t.repeat_1],
             "reduction_b": [t.mixed_7a], "grid8": [t.repeat_2, t.block8], "final_conv": [t.conv2d_7b],
             "classifier": [t.classif]}  # fmt: skip
    for stage, modules in pairs.items():
        assert count_params(getattr(ours, stage)) == sum(count_params(m) for m in modules), stage
    assert count_params(ours) == count_params(t) == models.spec("inception_resnet_v2").reference.count()


def conv(c_in: int, c_out: int, kh: int, kw: int | None = None) -> int:
    """A convolution followed by BatchNorm: weights plus BatchNorm's scale and shift."""
    return c_in * c_out * kh * (kw or kh) + 2 * c_out


def linear_1x1(c_in: int, c_out: int) -> int:
    """The residual branch's "1x1 Conv (Linear)": weights and a bias."""
    return c_in * c_out + c_out


def test_inception_resnet_v1_count_from_the_figures() -> None:
    """Recount Inception-ResNet-v1 by hand from Figures 14, 10, 7, 11, 12, 13 and 15."""
    stem = conv(3, 32, 3) + conv(32, 32, 3) + conv(32, 64, 3) + conv(64, 80, 1) + conv(80, 192, 3) + conv(192, 256, 3)
    block_a = conv(256, 32, 1) + conv(256, 32, 1) + conv(32, 32, 3) + conv(256, 32, 1) + 2 * conv(32, 32, 3)
    block_a += linear_1x1(96, 256)
    reduction_a = conv(256, 384, 3) + conv(256, 192, 1) + conv(192, 192, 3) + conv(192, 256, 3)  # k,l,m,n: Table 1
    block_b = conv(896, 128, 1) + conv(896, 128, 1) + conv(128, 128, 1, 7) + conv(128, 128, 7, 1)
    block_b += linear_1x1(256, 896)
    reduction_b = 3 * conv(896, 256, 1) + conv(256, 384, 3) + conv(256, 256, 3) + 2 * conv(256, 256, 3)
    block_c = conv(1792, 192, 1) + conv(1792, 192, 1) + conv(192, 192, 1, 3) + conv(192, 192, 3, 1)
    block_c += linear_1x1(384, 1792)
    classifier = 1792 * 1000 + 1000
    total = stem + 5 * block_a + reduction_a + 10 * block_b + reduction_b + 5 * block_c + classifier
    model = models.create("inception_resnet_v1")
    assert count_params(model.stem) == stem
    assert count_params(model.grid35[0]) == block_a and count_params(model.grid17[0]) == block_b
    assert count_params(model.grid8[0]) == block_c
    assert count_params(model) == total == models.spec("inception_resnet_v1").reference.count()


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_stage_shapes(name: str) -> None:
    model = models.create(name).eval()
    shapes, out = output_shapes(model, torch.randn(1, 3, 299, 299), STAGE_NAMES)
    assert shapes == {stage: (1, c, s, s) for stage, c, s in zip(STAGE_NAMES, STAGES[name], SIDES)}
    assert out.shape == (1, 1000)


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward(name: str) -> None:
    # The smallest input the networks take (75x75) runs every layer at a sixteenth of the cost of 299x299.
    model = models.create(name, num_classes=10).train()
    out = model(torch.randn(2, 3, 75, 75))
    assert out.shape == (2, 10)
    out.logsumexp(1).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_residual_scaling_is_configurable() -> None:
    model = models.create("inception_resnet_v1", scales=(0.3, 0.2, 0.1), depths=(1, 2, 3))
    assert [len(model.grid35), len(model.grid17), len(model.grid8)] == [1, 2, 3]
    assert [model.grid35[0].scale, model.grid17[0].scale, model.grid8[0].scale] == [0.3, 0.2, 0.1]
    default = models.create("inception_resnet_v2")
    assert [default.grid35[0].scale, default.grid17[0].scale, default.grid8[0].scale] == [0.17, 0.10, 0.20]
    # The block is ReLU(x + scale * residual): with scale 0 it passes its (non-negative) input through.
    x = torch.randn(2, 256, 35, 35).relu()
    block = block_35(256, 32, (32, 32), (32, 32, 32), scale=0.0).eval()
    with torch.no_grad():
        assert torch.equal(block(x), x)
        residual = block.project(block.branches(x))
        block.scale = 0.25
        torch.testing.assert_close(block(x), (x + 0.25 * residual).relu())


def test_figure15_block_counts_for_inception_resnet_v2() -> None:
    model = models.create("inception_resnet_v2", depths=(5, 10, 5))
    assert [len(model.grid35), len(model.grid17), len(model.grid8)] == [5, 10, 5]


@pytest.mark.parametrize(
    ("name", "shape", "message"),
    [
        ("inception_v4", (1, 3, 64, 64), "at least 75x75"),
        ("inception_resnet_v1", (1, 1, 299, 299), "3 input channel"),
        ("inception_resnet_v2", (3, 299, 299), "batch"),
        ("inception_v4_cifar", (1, 3, 6, 6), "at least 7x7"),  # the CIFAR stem keeps the size; the reductions need 7
    ],
)
def test_wrong_input_raises_clear_error(name: str, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        models.create(name).eval()(torch.zeros(shape))


def test_no_batchnorm_on_the_residual_projections() -> None:
    model = models.create("inception_resnet_v1")
    for block in [*model.grid35, *model.grid17, *model.grid8]:
        assert isinstance(block.project, nn.Conv2d) and block.project.bias is not None  # "1x1 Conv (Linear)"


@pytest.mark.parametrize("name", ["inception_v4", "inception_resnet_v2"])
def test_same_function_as_timm_with_its_weights(name: str, randomise_batchnorm_statistics) -> None:
    """timm's weights (the released TF models'), copied in order, give timm's logits: the released function."""
    torch.manual_seed(0)
    theirs = timm.create_model(name, pretrained=False).double().eval()
    randomise_batchnorm_statistics(theirs)
    ours = models.create(name).double().eval()
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values())))
    x = torch.randn(1, 3, 139, 139, dtype=torch.float64)  # the smallest input whose 8x8 grid is still 3x3, not 1x1
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-10, atol=1e-10)


def test_released_inception_resnet_v2_details() -> None:
    with torch.device("meta"):
        released, figures = models.create("inception_resnet_v2"), models.create("inception_resnet_v2", released=False)
    # The released last block: scale 1.0 and no ReLU; the figures' blocks are all alike.
    assert (released.grid8[-1].scale, type(released.grid8[-1].relu)) == (1.0, nn.Identity)
    assert all(b.scale == 0.20 and isinstance(b.relu, nn.ReLU) for b in [*released.grid8[:-1], *figures.grid8])
    # The stem's Inception-v3 module ("Mixed_5b") averages without the padding, as TensorFlow's "SAME" pooling.
    (pool,) = [m for m in released.stem[1].modules() if isinstance(m, nn.AvgPool2d)]
    assert pool.count_include_pad is False
    assert [t.shape for t in released.state_dict().values()] == [t.shape for t in figures.state_dict().values()]
    # The released last block by hand: x + residual, with its negative values kept.
    block = models.create("inception_resnet_v2_cifar", width=0.25, released=True).eval().grid8[-1]
    x = torch.randn(2, block.project.out_channels, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x + block.project(block.branches(x)))
        assert (block(x) < 0).any()


def test_batchnorm_uses_tensorflows_epsilon() -> None:
    with torch.device("meta"):
        for name in [*NAMES, *CIFAR_NAMES]:
            norms = [m for m in models.create(name).modules() if isinstance(m, nn.BatchNorm2d)]
            assert norms and all(m.eps == 1e-3 for m in norms), name


# ----- The CIFAR members ----------------------------------------------------------------------

CIFAR_NAMES = ["inception_v4_cifar", "inception_resnet_v1_cifar", "inception_resnet_v2_cifar"]
CIFAR_SIDES = [32, 32, 15, 15, 7, 7, 7]  # the 35x35, 17x17 and 8x8 grids at 32x32 (unpadded 3x3/2 reductions)
CIFAR_PARAMS = {  # (width 1, width 0.25), 10 classes; derived in test_cifar_member_is_the_network_with_another_stem
    "inception_v4_cifar": (40_793_898, 2_564_370),
    "inception_resnet_v1_cifar": (20_533_162, 1_295_410),
    "inception_resnet_v2_cifar": (32_218_826, 2_027_738),
}


@pytest.mark.parametrize("width", [1.0, 0.25])
@pytest.mark.parametrize("name", CIFAR_NAMES)
@torch.no_grad()
def test_cifar_stage_shapes(name: str, width: float) -> None:
    model = models.create(name, width=width).eval()
    shapes, out = output_shapes(model, torch.randn(1, 3, 32, 32), STAGE_NAMES)
    channels = STAGES[name.removesuffix("_cifar")]  # the ImageNet network's widths (IR-v2: the released ones)
    # At width 0.25 every branch width is a multiple of 4, so each stage has exactly a quarter of the channels.
    assert shapes == {stage: (1, round(c * width), s, s) for stage, c, s in zip(STAGE_NAMES, channels, CIFAR_SIDES)}
    assert out.shape == (1, 10)


@pytest.mark.parametrize(
    ("name", "imagenet", "options", "stem_width"),
    [
        ("inception_v4_cifar", "inception_v4", {}, 384),
        ("inception_resnet_v1_cifar", "inception_resnet_v1", {}, 256),
        ("inception_resnet_v2_cifar", "inception_resnet_v2", {"depths": (5, 10, 5)}, 192),  # Figure 15's depths
    ],
)
def test_cifar_member_is_the_network_with_another_stem(name: str, imagenet: str, options: dict, stem_width: int):
    """The same blocks as the ImageNet network, parameter for parameter; only the stem and the head differ."""
    with torch.device("meta"):
        cifar, reference = models.create(name), models.create(imagenet, **options)
    for stage in STAGE_NAMES[1:]:
        assert count_params(getattr(cifar, stage)) == count_params(getattr(reference, stage)), stage
    # The CIFAR stem by hand: three 3x3 convolutions with BatchNorm, e.g. for v4
    # (3*9*32 + 64) + (32*9*64 + 128) + (64*9*384 + 768) = 928 + 18,560 + 221,952 = 241,440.
    stem = conv(3, 32, 3) + conv(32, 64, 3) + conv(64, stem_width, 3)
    if name == "inception_resnet_v2_cifar":  # followed by the released stem's Inception-v3 module (Mixed_5b)
        stem += count_params(reference.stem[1])
    assert count_params(cifar.stem) == stem
    features = cifar.classifier.in_features
    head = features * (10 - 1000) + (10 - 1000)
    assert count_params(cifar) == count_params(reference) - count_params(reference.stem) + stem + head
    assert count_params(cifar) == CIFAR_PARAMS[name][0]


@pytest.mark.parametrize("name", CIFAR_NAMES)
def test_cifar_width_scales_every_convolution(name: str) -> None:
    with torch.device("meta"):
        full, narrow = models.create(name), models.create(name, width=0.25)
    widths = [[m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)] for net in (full, narrow)]
    assert [scaled(c, 0.25) for c in widths[0]] == widths[1]
    assert count_params(narrow) == CIFAR_PARAMS[name][1]  # about 1/16 of width 1
    with torch.device("meta"):
        shallow = models.create(name, depths=(1, 2, 1))
    assert [len(shallow.grid35), len(shallow.grid17), len(shallow.grid8)] == [1, 2, 1]


@pytest.mark.parametrize("name", CIFAR_NAMES)
def test_cifar_forward_backward(name: str) -> None:
    model = models.create(name, width=0.25).train()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.logsumexp(1).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", ["inception_resnet_v1_cifar", "inception_resnet_v2_cifar"])
def test_cifar_residual_false_removes_only_the_shortcuts(name: str) -> None:
    torch.manual_seed(0)
    residual = models.create(name, width=0.25).eval()
    plain = models.create(name, width=0.25, residual=False).eval()
    plain.load_state_dict(residual.state_dict())  # the same parameters, in the same places
    blocks = [*plain.grid35, *plain.grid17, *plain.grid8]
    assert len(blocks) == 20 and not any(b.shortcut for b in blocks)
    assert all(b.shortcut for b in [*residual.grid35, *residual.grid17, *residual.grid8])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(plain(x), residual(x))
        block = plain.grid17[0]
        h = torch.randn(2, block.project.out_channels, 15, 15)
        torch.testing.assert_close(block(h), (block.scale * block.project(block.branches(h))).relu())


def test_cifar_inception_resnet_v2_scales_and_blocks_alike() -> None:
    with torch.device("meta"):
        default = models.create("inception_resnet_v2_cifar")
        unscaled = models.create("inception_resnet_v2_cifar", scales=(1.0, 1.0, 1.0))
    assert [len(default.grid35), len(default.grid17), len(default.grid8)] == [5, 10, 5]  # Figure 15
    assert {b.scale for b in default.grid8} == {0.20} and all(isinstance(b.relu, nn.ReLU) for b in default.grid8)
    assert {b.scale for b in [*unscaled.grid35, *unscaled.grid17, *unscaled.grid8]} == {1.0}
