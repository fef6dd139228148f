"""cnnbook.costs: the roster of CIFAR-10 models, their measured costs, the
papers' errors and the Pareto front."""

import pytest
import torch

from cnnbook import costs, models, summary


def test_the_roster_is_every_cifar10_model_cheapest_first():
    names = costs.cifar10_models()
    assert names[0] == "resnet20"  # 41M multiply-adds, the cheapest
    for name in ("nin_cifar", "vgg16_bn_cifar", "densenet_bc190_k40",
                 "resnext29_16x64d", "fractalnet20", "dsn_cifar"):
        assert name in names
    # ImageNet and MNIST models are not on it.
    assert "resnet18" not in names and "lenet5" not in names
    for name in names:
        spec = models.spec(name)
        assert spec.input_size == (3, 32, 32) and spec.num_classes == 10
    macs = [costs._macs(name) for name in names[:6]]
    assert macs == sorted(macs)


def test_measure_counts_and_times_a_model():
    c = costs.measure("resnet20", batch_size=4, train_batch_size=2,
                      repeats=1, device="cpu")
    net = models.create("resnet20")
    assert c.params == summary.count_params(net) == 269_722
    assert c.macs == summary.count_macs(net, (3, 32, 32))
    assert c.batch_size == 4 and c.train_batch_size == 2
    assert c.device == "cpu"
    assert c.train_images_per_s > 0 and c.latency_ms > 0 and c.batch_ms > 0
    assert c.images_per_s == pytest.approx(4 / (c.batch_ms / 1000))


def test_measure_trains_models_with_auxiliary_heads():
    # Deeply-supervised nets return their companions' logits in training.
    c = costs.measure("dsn_cifar", batch_size=2, repeats=1, device="cpu")
    assert c.train_images_per_s > 0


def test_measure_rejects_bad_sizes_and_unknown_names():
    with pytest.raises(ValueError, match="batch_size=0"):
        costs.measure("resnet20", batch_size=0)
    with pytest.raises(ValueError, match="resnet21"):
        costs.measure("resnet21", batch_size=2)


def test_published_errors_name_registered_cifar10_models():
    roster = set(costs.cifar10_models())
    assert set(costs.PUBLISHED) <= roster
    assert costs.PUBLISHED["resnet110"].error == 6.43
    for published in costs.PUBLISHED.values():
        assert 0 < published.error < 15 and " et al. 20" in published.where


def test_pareto_front():
    # cost, score: (1, .5) and (3, .7) are on it; (2, .4) costs more than
    # (1, .5) and scores less; (4, .7) costs more for the same score.
    assert costs.pareto_front([1, 2, 3, 4], [0.5, 0.4, 0.7, 0.7]) == [0, 2]
    assert costs.pareto_front([2, 1], [0.9, 0.1]) == [1, 0]
    # Of two equal points, one.
    assert costs.pareto_front([1, 1], [0.5, 0.5]) == [0]
    with pytest.raises(ValueError, match="2 costs against 1 scores"):
        costs.pareto_front([1, 2], [0.5])


def test_plot_pareto_draws_one_panel_per_cost():
    from cnnbook import plots

    points = {"a": (1.0, 10.0, 0.5), "b": (2.0, 5.0, 0.6),
              "c": (3.0, 20.0, 0.4)}
    fig = plots.plot_pareto(points, ["params", "MACs", "accuracy"])
    left, right = fig.axes
    assert left.get_xlabel() == "params" and right.get_xlabel() == "MACs"
    named = [t.get_text() for t in left.texts]
    assert named == ["a", "b"]  # c costs most and scores least
    # by multiply-adds b is cheaper than a and scores more
    assert [t.get_text() for t in right.texts] == ["b"]
