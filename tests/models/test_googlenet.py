"""GoogLeNet (Szegedy et al. 2014): Table 1 layer by layer, the auxiliary classifiers, the CIFAR adaptation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnbook import models
from cnnbook.models.googlenet import INCEPTION_MODULES, TABLE1_PARAMS_K, Concat, inception, out_channels, scaled, stack
from cnnbook.models.layers import conv_bn_relu
from cnnbook.summary import count_params, output_shapes

# Table 1's "output size" column: each Inception module's (channels, side) at 224x224.
TABLE1_OUTPUT = {
    "3a": (256, 28), "3b": (480, 28),
    "4a": (512, 14), "4b": (512, 14), "4c": (512, 14), "4d": (528, 14), "4e": (832, 14),
    "5a": (832, 7), "5b": (1024, 7),
}  # fmt: skip

# Rows whose "params" entry disagrees (by more than 1K) with the filter counts printed in the same
# table; we follow the filter counts. Listed in the module docstring of cnnbook/models/googlenet.py.
TABLE1_ERRATA = {"conv1", "4a", "4c", "4d", "4e", "5a", "5b"}


def weights(module: nn.Module) -> int:
    """Weights only, no biases: what Table 1's params column counts."""
    return sum(p.numel() for name, p in module.named_parameters() if name.endswith("weight"))


def weights_from_table1() -> dict[str, int]:
    """Each row's weight count, worked out by hand from Table 1's filter columns."""
    counts = {"conv1": 7 * 7 * 3 * 64, "conv2": 1 * 1 * 64 * 64 + 3 * 3 * 64 * 192, "linear": 1024 * 1000}
    channels_in = 192
    for name, (c1, r3, c3, r5, c5, proj) in INCEPTION_MODULES.items():
        i = channels_in
        counts[name] = i * c1 + i * r3 + 9 * r3 * c3 + i * r5 + 25 * r5 * c5 + i * proj
        channels_in = TABLE1_OUTPUT[name][0]
    return counts


def our_row_weights(model: nn.Module) -> dict[str, int]:
    counts = {"conv1": weights(model.stem[0]), "conv2": weights(model.stem[3]) + weights(model.stem[4])}
    counts.update({name: weights(module) for name, module in model.inception.items()})
    counts["linear"] = weights(model.classifier)
    return counts


@pytest.mark.parametrize("row", list(TABLE1_PARAMS_K))
def test_table1_params_row(row: str) -> None:
    ours = our_row_weights(models.create("googlenet", aux_logits=False))[row]
    assert ours == weights_from_table1()[row], f"{row}: our layer does not have Table 1's filter counts"
    table_k = TABLE1_PARAMS_K[row]
    if row in TABLE1_ERRATA:
        # A documented erratum of the paper: the row must really disagree, or the list is stale.
        assert abs(ours / 1024 - table_k) > 1, f"{row} agrees with Table 1 ({ours / 1024:.1f}K): remove it from ERRATA"
    else:
        assert abs(ours / 1024 - table_k) <= 1, f"{row}: {ours / 1024:.1f}K against Table 1's {table_k}K"


def test_parameter_count_against_reference() -> None:
    model = models.create("googlenet")
    reference = models.spec("googlenet").reference
    assert count_params(model) - reference.count() == reference.difference
    # The difference, piece by piece: auxiliary classifiers (Section 5), biases, Table 1's errata.
    aux = sum(c * 128 + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000 for c in (512, 528))
    assert count_params(model.aux) == aux
    plain = models.create("googlenet", aux_logits=False)
    biases = count_params(plain) - weights(plain)
    errata = sum(our_row_weights(plain).values()) - reference.count()
    assert aux + biases + errata == reference.difference


def test_paper_details_that_torchvision_lacks() -> None:
    model = models.create("googlenet")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "Table 1 has no BatchNorm"
    lrns = [m for m in model.stem if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrns) == 2, "Figure 3: LRN twice in the stem"
    assert all((m.size, m.beta, m.k) == (5, 0.75, 1.0) and m.alpha == pytest.approx(1e-4) for m in lrns), "Caffe's"
    for name, module in model.inception.items():
        assert module[2][1][0].kernel_size == (5, 5), f"inception {name}: the 5x5 branch must be a real 5x5"


def stage_shapes(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, tuple[int, ...]], object]:
    """The output shape of the stem and of every Inception module (by its Table 1 name), and the model's output."""
    shapes, out = output_shapes(model, x, ["stem", *(f"inception.{name}" for name in model.inception)])
    return {name.removeprefix("inception."): shape for name, shape in shapes.items()}, out


@torch.no_grad()
def test_stage_shapes_imagenet() -> None:
    model = models.create("googlenet").eval()
    shapes, out = stage_shapes(model, torch.randn(1, 3, 224, 224))
    expected = {"stem": (1, 192, 28, 28), **{n: (1, c, s, s) for n, (c, s) in TABLE1_OUTPUT.items()}}
    assert shapes == expected
    assert isinstance(out, torch.Tensor) and out.shape == (1, 1000), "eval mode returns the logits only"


def test_forward_backward_with_auxiliary_classifiers() -> None:
    torch.manual_seed(0)
    model = models.create("googlenet").train()
    logits, aux1, aux2 = model(torch.randn(1, 3, 224, 224))  # one image is enough: no BatchNorm
    assert logits.shape == aux1.shape == aux2.shape == (1, 1000)
    (logits.logsumexp(1) + 0.3 * aux1.logsumexp(1) + 0.3 * aux2.logsumexp(1)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing[:5]}"


def test_cifar_stage_shapes_forward_backward_and_optional_aux() -> None:
    model = models.create("googlenet_cifar").train()
    shapes, out = stage_shapes(model, torch.randn(2, 3, 32, 32))
    side = {28: 32, 14: 16, 7: 8}  # the same stages on 32x32, 16x16 and 8x8 grids
    expected = {"stem": (2, 192, 32, 32), **{n: (2, c, side[s], side[s]) for n, (c, s) in TABLE1_OUTPUT.items()}}
    assert shapes == expected
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10), "googlenet_cifar has no auxiliary heads by default"
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with_aux = models.create("googlenet_cifar", aux_logits=True, num_classes=100).train()
    with torch.no_grad():
        assert [t.shape for t in with_aux(torch.randn(1, 3, 32, 32))] == [(1, 100)] * 3


@pytest.mark.parametrize(
    ("name", "shape", "message"),
    [
        ("googlenet", (1, 3, 32, 32), "224x224"),
        ("googlenet", (1, 1, 224, 224), "3 input channel"),
        ("googlenet", (3, 224, 224), "batch"),
        ("googlenet_cifar", (1, 3, 224, 224), "32x32"),
    ],
)
def test_wrong_input_raises_clear_error(name: str, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        models.create(name).eval()(torch.zeros(shape))


def test_scaled_rounds_every_width_and_keeps_at_least_one() -> None:
    assert scaled(96, 0.25) == 24 and scaled(96, 1.0) == 96
    assert scaled((32, (48, 64)), 0.5) == (16, (24, 32))  # nested tuples, as the block builders take them
    assert scaled(7, 0.3) == 2  # 2.1, rounded
    assert scaled(3, 0.1) == 1, "a branch never disappears"


def test_out_channels_follows_convolutions_pools_and_concatenations() -> None:
    module = inception(192, *INCEPTION_MODULES["3a"])
    assert out_channels(module, 192) == 256  # Table 1: 64 + 128 + 32 + 32
    # A max pool branch passes its input's channels on.
    branch = nn.Sequential(conv_bn_relu(10, 4, 1), conv_bn_relu(4, 6, 3, stride=2, padding=0))
    reduction = Concat(nn.MaxPool2d(3, 2), branch)
    assert out_channels(reduction, 10) == 16
    assert reduction(torch.randn(1, 10, 9, 9)).shape[1] == 16
    with pytest.raises(TypeError, match="Linear"):
        out_channels(nn.Linear(3, 4), 3)


def test_stack_builds_each_block_for_what_the_previous_one_outputs() -> None:
    blocks = stack(5, [lambda c: conv_bn_relu(c, 7, 3), lambda c: Concat(nn.MaxPool2d(3, 1, 1), conv_bn_relu(c, 4, 1))])
    assert blocks[0][0].in_channels == 5 and blocks[1][1][0].in_channels == 7
    assert blocks(torch.randn(2, 5, 8, 8)).shape == (2, 11, 8, 8)


def convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_cifar_width_scales_every_convolution_and_the_parameters() -> None:
    with torch.device("meta"):
        full, narrow = models.create("googlenet_cifar"), models.create("googlenet_cifar", width=0.25)
    assert [scaled(c.out_channels, 0.25) for c in convs(full)] == [c.out_channels for c in convs(narrow)]
    # Module 3a at width 0.25 by hand: widths (16, 24, 32, 4, 8, 8) on the stem's 48 channels, weights + biases.
    module_3a = (48 * 16 + 16) + (48 * 24 + 24) + (9 * 24 * 32 + 32) + (48 * 4 + 4) + (25 * 4 * 8 + 8) + (48 * 8 + 8)
    assert count_params(narrow.inception["3a"]) == module_3a == 10_300
    assert count_params(narrow.stem) == 3 * 9 * 48 + 48
    assert count_params(full) == 5_864_762 and count_params(narrow) == 370_790  # about 1/16


def test_cifar_width_stage_shapes_and_auxiliary_classifiers() -> None:
    model = models.create("googlenet_cifar", width=0.25, aux_logits=True).train()
    shapes, out = stage_shapes(model, torch.randn(2, 3, 32, 32))
    side = {28: 32, 14: 16, 7: 8}
    expected = {"stem": (2, 48, 32, 32), **{n: (2, c // 4, side[s], side[s]) for n, (c, s) in TABLE1_OUTPUT.items()}}
    assert shapes == expected  # every module's widths in Table 1 are multiples of 4
    assert [t.shape for t in out] == [(2, 10)] * 3
    aux = model.aux["4a"]
    assert (aux.conv[0].out_channels, aux.fc[1].out_features) == (32, 256)  # 128 maps and 1024 units, times 0.25
    sum(o.logsumexp(1).sum() for o in out).backward()
    assert all(p.grad is not None for p in model.parameters())
