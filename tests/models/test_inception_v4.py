"""Inception-v4 and Inception-ResNet-v1/v2 (Szegedy et al. 2017): stages, counts against timm and the figures."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from cnnbook import models
from cnnbook.models.inception_v4 import block_35
from cnnbook.summary import count_params

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
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        getattr(model, stage).register_forward_hook(lambda m, i, o, s=stage: shapes.__setitem__(s, tuple(o.shape)))
        for stage in STAGE_NAMES
    ]
    out = model(torch.randn(1, 3, 299, 299))
    for hook in hooks:
        hook.remove()
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
    ],
)
def test_wrong_input_raises_clear_error(name: str, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        models.create(name).eval()(torch.zeros(shape))


def test_no_batchnorm_on_the_residual_projections() -> None:
    model = models.create("inception_resnet_v1")
    for block in [*model.grid35, *model.grid17, *model.grid8]:
        assert isinstance(block.project, nn.Conv2d) and block.project.bias is not None  # "1x1 Conv (Linear)"
