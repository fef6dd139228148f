"""cnnbook.experiments: variants trained and compared, and the Fig. 1
search for the fastest learning rate."""

from __future__ import annotations

import math

import pytest
import torch
from cnnbook import experiments, stats, train
from cnnbook.data import Augment, BatchLoader, DataBundle
from cnnbook.models.alexnet import Fig1Net
from torch import nn

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def images(n: int, size: int = 8, seed: int = 0):
    """Three classes of uint8 images, told apart by their brightest
    colour channel."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randint(60, 196, (n, 3, size, size), generator=g)
    x[torch.arange(n), y] += 40
    return x.to(torch.uint8), y


def bundle(n_train: int = 96, n_test: int = 48) -> DataBundle:
    x, y = images(n_train + n_test)

    def loader(a, b, shuffle):
        return BatchLoader(a, b, 32, mean=0.5, std=0.25, shuffle=shuffle,
                           device=CPU)  # fmt: skip

    train_loader = loader(x[:n_train], y[:n_train], True)
    test_loader = loader(x[n_train:], y[n_train:], False)
    return DataBundle("tiny", ["a", "b", "c"], train_loader, test_loader,
                      test_loader, torch.tensor([0.5]), torch.tensor([0.25]),
                      (3, 8, 8))  # fmt: skip


def tiny_net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))


def run(label: str, train_correct, test_correct) -> experiments.Run:
    return experiments.Run(
        label, tiny_net(), train.History(),
        torch.tensor(train_correct), torch.tensor(test_correct), 1.0,
    )  # fmt: skip


def test_with_augment_changes_only_the_copy() -> None:
    data = bundle()
    crops = experiments.with_augment(data, Augment(crop_padding=2))
    assert crops.train.augment is not None and data.train.augment is None
    assert crops.train.images is data.train.images  # the same images
    assert experiments.with_augment(crops, None).train.augment is None


def test_run_accuracies_and_gap() -> None:
    r = run("a", [True, True, True, False], [True, False, False, False])
    assert r.train_acc == 0.75 and r.test_acc == 0.25
    assert r.gap == pytest.approx(0.5)


def test_compare_on_test_and_train_images() -> None:
    a = run("A", [True] * 10, [True] * 40)
    b = run("B", [False] * 10, [False] * 40)
    on_test = experiments.compare(a, b)
    assert isinstance(on_test, stats.Comparison)
    assert on_test.names == ("A", "B") and on_test.only == (40, 0)
    assert on_test.significant and on_test.verdict.startswith("A beats B")
    assert experiments.compare(a, b, on="train").only == (10, 0)
    renamed = experiments.compare(a, b, names=("one", "two"))
    assert renamed.verdict.startswith("one beats two")
    gaps = experiments.compare(a, b, on="gap")
    assert isinstance(gaps, stats.GapComparison)
    assert gaps.gaps == (0.0, 0.0) and not gaps.significant
    with pytest.raises(ValueError, match="'test', 'train' or 'gap'"):
        experiments.compare(a, b, on="val")


def test_train_variant_trains_and_evaluates_every_image() -> None:
    data = bundle()
    config = train.TrainConfig(epochs=2, optimizer="adam", lr=0.01,
                               schedule="constant", progress=False,
                               channels_last=False)  # fmt: skip
    first = experiments.train_variant("tiny", tiny_net, data, config)
    assert first.train_correct.shape == (96,)
    assert first.test_correct.shape == (48,)
    assert first.train_correct.dtype == torch.bool
    assert len(first.history) == 2 and first.seconds_per_epoch > 0
    assert first.train_acc > 0.5  # the classes are easy
    again = experiments.train_variant("tiny", tiny_net, data, config)
    assert torch.equal(again.test_correct, first.test_correct)  # seeded
    table = experiments.report(first, again)
    assert table.axes


def test_report_needs_a_run() -> None:
    with pytest.raises(ValueError, match="at least one run"):
        experiments.report()


def test_saturated_share_counts_tanh_outputs() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.zero_()
    x = torch.tensor([[5.0, 0.0], [0.1, -4.0]])  # two of four saturate
    assert experiments.saturated_share(net, x) == 0.5
    assert experiments.saturated_shares(net, x) == {"1": 0.5}
    two = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 4),
                        nn.Tanh())  # fmt: skip
    shares = experiments.saturated_shares(two, x)
    assert set(shares) == {"1", "3"}
    overall = (2 * 2 * shares["1"] + 2 * 4 * shares["3"]) / 12
    assert experiments.saturated_share(two, x) == pytest.approx(overall)
    assert net.training  # the mode is restored
    with pytest.raises(ValueError, match="no nn.Tanh"):
        experiments.saturated_share(nn.Linear(2, 2), x)


def test_colourfulness() -> None:
    grey = torch.randn(4, 1, 5, 5).expand(4, 3, 5, 5)
    assert torch.allclose(experiments.colourfulness(grey), torch.zeros(4))
    colour = torch.zeros(2, 3, 5, 5)
    colour[:, 0] = 1.0  # red only
    assert (experiments.colourfulness(colour) > 0.9).all()
    with pytest.raises(ValueError, match="RGB kernels"):
        experiments.colourfulness(torch.randn(4, 1, 5, 5))


def test_curve_training_error_and_steps() -> None:
    curve = experiments.Curve(
        lr=0.1, errors=[1.0, 0.8, 0.6, 0.4, 0.2], window=2, level=0.5,
        steps_per_epoch=2, outcome="reached", seconds=1.0,
    )  # fmt: skip
    assert curve.training_error() == pytest.approx([1.0, 0.9, 0.7, 0.5, 0.3])
    assert curve.steps == 4 and curve.epochs == 2.0
    assert curve.steps_to(0.9) == 2 and curve.steps_to(0.1) is None
    never = experiments.Curve(0.1, [0.9] * 4, 2, 0.5, 2, "budget", 1.0)
    assert never.steps is None and never.epochs is None


def test_fig1net_shapes_parameters_and_init() -> None:
    net = Fig1Net("tanh")
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in net.parameters()) == 89_578
    maps = net.features(torch.zeros(1, 3, 32, 32)).shape
    assert maps == (1, 64, 4, 4)
    f = net.features
    assert float(f.conv1.weight.detach().std()) == pytest.approx(0.01, rel=0.2)
    assert torch.all(f.conv2.bias == 1) and torch.all(f.conv3.bias == 0)
    assert torch.all(net.fc.bias == 0)
    with pytest.raises(ValueError, match="activation"):
        Fig1Net("sigmoid")
    with pytest.raises(ValueError, match="32x32"):
        net(torch.zeros(1, 3, 28, 28))


def test_sgd_until_reaches_an_easy_level_and_stops() -> None:
    x, y = images(64, size=32)
    torch.manual_seed(0)
    curve = experiments.sgd_until(Fig1Net("relu", num_classes=3), x, y,
                                  lr=1e-3, level=0.7, max_steps=40,
                                  batch_size=16, window=2)  # fmt: skip
    assert curve.outcome == "reached"
    assert curve.steps is not None and curve.steps <= len(curve.errors)
    assert curve.training_error()[curve.steps - 1] <= 0.7
    assert curve.steps_per_epoch == 4 and curve.epochs == curve.steps / 4


def test_sgd_until_budget_divergence_and_bad_input() -> None:
    x, y = images(32, size=32)
    torch.manual_seed(0)
    budget = experiments.sgd_until(Fig1Net("relu", num_classes=3), x, y,
                                   lr=1e-3, level=0.0, max_steps=3,
                                   batch_size=16)  # fmt: skip
    assert budget.outcome == "budget" and len(budget.errors) == 3
    diverged = experiments.sgd_until(Fig1Net("relu", num_classes=3), x, y,
                                     lr=1e6, level=0.0, max_steps=30,
                                     batch_size=16, window=1)  # fmt: skip
    assert diverged.outcome == "diverged"
    with pytest.raises(ValueError, match="uint8"):
        experiments.sgd_until(tiny_net(), x.float(), y, lr=0.1, level=0.5,
                              max_steps=1)  # fmt: skip
    with pytest.raises(ValueError, match="one entry per image"):
        experiments.sgd_until(tiny_net(), x, y[:3], lr=0.1, level=0.5,
                              max_steps=1)  # fmt: skip
    with pytest.raises(ValueError, match="positive"):
        experiments.sgd_until(tiny_net(), x, y, lr=0.0, level=0.5,
                              max_steps=1)  # fmt: skip


def test_fastest_lr_searches_the_grid() -> None:
    x, y = images(96)
    best, curves = experiments.fastest_lr(
        tiny_net, x, y, start=1e-4, level=0.2, max_steps=60, batch_size=16,
        window=2,
    )  # fmt: skip
    lrs = [c.lr for c in curves]
    assert lrs == sorted(lrs) and 3 <= len(curves) <= 6
    assert all(b / a == pytest.approx(math.sqrt(10)) for a, b in
               zip(lrs, lrs[1:]))  # fmt: skip
    assert best is not None and best in curves
    reached = [c.steps for c in curves if c.steps is not None]
    assert best.steps == min(reached)
    assert {c.outcome for c in curves} <= {"reached", "slower", "diverged",
                                           "budget"}  # fmt: skip
    with pytest.raises(ValueError, match="factor"):
        experiments.fastest_lr(tiny_net, x, y, factor=1.0, level=0.2,
                               max_steps=1)  # fmt: skip
