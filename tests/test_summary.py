"""Parameter and multiply-add counts, layer summaries and the model table."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnbook import models, summary

# LeNet-5's multiply-adds at 32x32, layer by layer (see the docstring of cnnbook.summary for
# what counts: convolutions and linear layers; S2, S4 and the RBF output do not).
C3_FAN_INS = [3] * 6 + [4] * 9 + [6]  # Table I: how many S2 maps each of C3's 16 maps reads
LENET5_MACS = {
    "C1": 28 * 28 * 6 * (1 * 5 * 5),
    "C3": 10 * 10 * sum(fan_in * 5 * 5 for fan_in in C3_FAN_INS),  # 10 * 10 * 1500
    "C5": 1 * 1 * 120 * (16 * 5 * 5),
    "F6": 120 * 84,
}


def test_count_params_lenet5_is_the_papers_60000():
    assert summary.count_params(models.create("lenet5")) == 60_000


def test_count_params_trainable_only_skips_frozen_parameters():
    model = nn.Sequential(nn.Linear(3, 4), nn.Conv2d(2, 5, 3), nn.BatchNorm2d(5))
    linear, conv, bn = 3 * 4 + 4, 2 * 5 * 3 * 3 + 5, 2 * 5  # BatchNorm's running stats are buffers
    assert summary.count_params(model) == linear + conv + bn
    model[0].requires_grad_(False)
    assert summary.count_params(model) == conv + bn
    assert summary.count_params(model, trainable_only=False) == linear + conv + bn


@pytest.mark.parametrize(
    "layer, input_size, expected",
    [
        # 8 x 5 x 5 outputs (stride 2, padding 1 on 9x9), each over 4/2 channels x 3x3
        (nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2), (4, 9, 9), 8 * 5 * 5 * (2 * 3 * 3)),
        # depthwise: each of the 6 x 8 x 8 outputs sees one channel's 3x3 window
        (nn.Conv2d(6, 6, 3, padding=1, groups=6), (6, 8, 8), 6 * 8 * 8 * (1 * 3 * 3)),
        # plain 1x1 convolution without padding
        (nn.Conv2d(3, 16, 1, bias=False), (3, 7, 7), 16 * 7 * 7 * 3),
        # transposed: each of the 4 x 3 x 3 inputs is spread over 2 maps x 2x2
        (nn.ConvTranspose2d(4, 2, 2, stride=2), (4, 3, 3), 4 * 3 * 3 * (2 * 2 * 2)),
        (nn.Sequential(nn.Flatten(), nn.Linear(12, 5)), (3, 2, 2), 12 * 5),
        # BatchNorm, ReLU and pooling count nothing
        (nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2)), (3, 4, 4), 0),
    ],
)
def test_count_macs_of_single_layers(layer, input_size, expected):
    assert summary.count_macs(layer, input_size) == expected


def test_count_macs_lenet5_by_hand():
    assert summary.count_macs(models.create("lenet5"), (1, 32, 32)) == sum(LENET5_MACS.values()) == 325_680


def test_count_macs_lenet5_modern_adds_the_full_c3_and_linear_output():
    expected = LENET5_MACS["C1"] + 10 * 10 * 16 * (6 * 5 * 5) + LENET5_MACS["C5"] + LENET5_MACS["F6"] + 84 * 10
    assert summary.count_macs(models.create("lenet5_modern"), (1, 32, 32)) == expected


def test_count_macs_restores_training_mode_and_removes_hooks():
    model = models.create("lenet5_modern").train()
    summary.count_macs(model, (1, 32, 32))
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())


def test_count_macs_counts_a_layer_called_twice_twice():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.fc(x.flatten(1)))

    assert summary.count_macs(Twice(), (1, 2, 2)) == 2 * 16


def test_count_macs_on_the_meta_device_matches_the_cpu():
    with torch.device("meta"):
        model = models.create("lenet5_modern")
    cpu = summary.count_macs(models.create("lenet5_modern"), (1, 32, 32))
    assert summary.count_macs(model, (1, 32, 32), device="meta") == cpu


def test_layer_summary_by_name_uses_the_papers_input():
    stats = summary.layer_summary("lenet5")
    assert stats.total_params == 60_000
    assert stats.summary_list[0].output_size == [1, 10]
    assert "Conv2d" in str(stats) and "Mult-Adds" in str(stats)


def test_layer_summary_of_a_module_with_an_input_size():
    stats = summary.layer_summary(models.create("lenet5_modern"), (1, 32, 32), depth=1)
    assert stats.total_params == summary.count_params(models.create("lenet5_modern"))
    with pytest.raises(ValueError, match="input_size"):
        summary.layer_summary(models.create("lenet5_modern"))


def test_layer_summary_wrong_input_raises_the_models_own_message():
    with pytest.raises(ValueError, match="lenet5 expects 32x32 images, got 28x28"):
        summary.layer_summary("lenet5", (1, 28, 28))
    with pytest.raises(ValueError, match="expects 1 input channel"):
        summary.layer_summary("lenet5", (3, 32, 32))


def test_layer_summary_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match="lenet5"):
        summary.layer_summary("lenet")


def test_param_table_lenet5():
    table = summary.param_table(models.create("lenet5"))
    # features = C1 156 + S2 12 + C3 1,516 + S4 32 + C5 48,120; the RBF centres are fixed buffers
    assert table == [("features", 49_836), ("f6", 10_164), ("output", 0)]
    assert sum(count for _, count in table) == 60_000


def test_param_table_lists_parameters_held_by_the_model_itself():
    class WithScale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 3)
            self.scale = nn.Parameter(torch.ones(7))

    assert summary.param_table(WithScale()) == [("fc", 9), ("(own)", 7)]


def test_model_table_rows():
    rows = summary.model_table(["lenet5", "lenet5_modern"])
    assert [r["name"] for r in rows] == ["lenet5", "lenet5_modern"]
    lenet = rows[0]
    assert lenet == dict(
        name="lenet5", family="lenet", input_size=(1, 32, 32), num_classes=10, params=60_000, macs=325_680
    )
    assert summary.model_table(["lenet5"], macs=False)[0]["macs"] is None


def test_model_table_covers_every_registered_model():
    rows = summary.model_table()
    assert [r["name"] for r in rows] == models.names()
    for row in rows:
        assert row["params"] > 0 and row["macs"] > 0, row


def test_output_shapes_of_named_stages():
    from cnnbook.summary import output_shapes

    model = models.create("nin_cifar").eval()
    x = torch.zeros(2, 3, 32, 32)
    shapes, out = output_shapes(model, x, ["features.mlpconv1", "features.pool2", "head"])
    assert shapes == {"features.mlpconv1": (2, 96, 32, 32), "features.pool2": (2, 192, 8, 8), "head": (2, 10)}
    assert out.shape == (2, 10)
    assert not model.features.mlpconv1._forward_hooks  # the hooks are removed
    with pytest.raises(AttributeError, match="no attribute `nope`"):
        output_shapes(model, x, ["nope"])
