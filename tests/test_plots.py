"""The figures: each returns a Figure with the expected axes and images, without a display."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless, as in CI and the book build

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cnnbook import models, plots  # noqa: E402


def history(loss: list[float], acc: list[float]) -> dict[str, list[float]]:
    epochs = list(range(1, len(loss) + 1))
    return dict(
        epoch=epochs, train_loss=loss, val_loss=[v + 0.1 for v in loss],
        train_acc=acc, val_acc=[a - 0.05 for a in acc], lr=[0.1 / e for e in epochs],
    )  # fmt: skip


def images_in(fig: Figure) -> list:
    return [image for ax in fig.axes for image in ax.get_images()]


def test_figures_are_not_left_open_in_pyplot():
    # Detached figures: a notebook shows the returned figure once, and loops do not leak memory.
    fig = plots.plot_history(history([1.0, 0.5], [0.5, 0.8]))
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == []


def test_plot_history_one_panel_per_metric_train_solid_val_dashed():
    runs = [history([2.0, 1.0, 0.5], [0.3, 0.6, 0.9]), history([2.5, 1.5, 1.0], [0.2, 0.4, 0.7])]
    fig = plots.plot_history(*runs, labels=["tanh", "relu"])
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == len(acc_ax.lines) == 4  # train and val for each run
    styles = [(line.get_label(), line.get_linestyle()) for line in loss_ax.lines]
    assert styles == [("tanh train", "-"), ("tanh val", "--"), ("relu train", "-"), ("relu val", "--")]
    # one colour per run
    assert loss_ax.lines[0].get_color() == loss_ax.lines[1].get_color() != loss_ax.lines[2].get_color()
    # accuracy in percent
    assert list(acc_ax.lines[0].get_ydata()) == pytest.approx([30, 60, 90])
    assert "%" in acc_ax.get_ylabel()


def test_plot_history_plots_records_without_splits_and_skips_missing_ones():
    run = history([1.0, 0.5], [0.5, 0.8])
    del run["val_loss"], run["val_acc"]
    fig = plots.plot_history(run, metrics=("loss", "acc", "lr"))
    assert [len(ax.lines) for ax in fig.axes] == [1, 1, 1]
    assert list(fig.axes[2].lines[0].get_ydata()) == pytest.approx([0.1, 0.05])


def test_plot_history_needs_one_label_per_history():
    with pytest.raises(ValueError, match="one label per history"):
        plots.plot_history(history([1.0], [0.5]), labels=["a", "b"])


def test_show_images_grey_uint8_with_predictions():
    images = torch.randint(0, 256, (10, 1, 6, 6), dtype=torch.uint8)
    labels, preds = torch.arange(10) % 3, torch.tensor([0, 1, 2, 0, 2, 2, 0, 1, 2, 0])
    fig = plots.show_images(images, labels, preds, classes=["cat", "dog", "owl"], ncols=4)
    assert len(fig.axes) == 10 and len(images_in(fig)) == 10
    captions = [ax.get_title() for ax in fig.axes]
    assert captions[:5] == ["cat", "dog", "owl", "cat", "owl (dog)"]  # image 4 is a dog taken for an owl
    colours = [ax.title.get_color() for ax in fig.axes]
    assert colours[4] == "red" and colours[3] == "black"
    shown = images_in(fig)[0].get_array()
    assert shown.shape == (6, 6) and shown.max() <= 1  # uint8 scaled to [0, 1]


def test_show_images_rgb_with_denormalize():
    images = -torch.ones(3, 3, 5, 5)  # normalised to [-1, 1]
    fig = plots.show_images(images, denormalize=lambda x: x * 0.5 + 0.5, title="samples")
    assert len(images_in(fig)) == 3
    shown = images_in(fig)[0].get_array()
    assert shown.shape == (5, 5, 3) and shown.max() == 0
    assert fig.get_suptitle() == "samples"


def test_show_images_rejects_a_single_image():
    with pytest.raises(ValueError, match="N x C x H x W"):
        plots.show_images(torch.zeros(1, 28, 28))


def test_confusion_matrix_counts():
    labels = [0, 0, 1, 2, 2, 2]
    preds = [0, 1, 1, 2, 0, 2]
    expected = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 2]])  # row: true class, column: predicted
    assert torch.equal(plots.confusion_matrix(labels, preds, 3), expected)
    with pytest.raises(ValueError, match="0..2"):
        plots.confusion_matrix([0, 3], [0, 0], 3)


def test_plot_confusion_matrix_normalised_rows():
    fig = plots.plot_confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], ["a", "b", "c"])
    assert len(fig.axes) == 2  # the matrix and its colour bar
    values = fig.axes[0].get_images()[0].get_array()
    assert values.sum(axis=1).tolist() == pytest.approx([1, 1, 1])
    assert values[2].tolist() == pytest.approx([1 / 3, 0, 2 / 3])
    counts = plots.plot_confusion_matrix([0, 1], [1, 1], ["a", "b"], normalize=False)
    assert counts.axes[0].get_images()[0].get_array().tolist() == [[0, 1], [0, 1]]


def test_plot_filters_rgb_and_grey():
    rgb = plots.plot_filters(torch.randn(5, 3, 3, 3), ncols=4, title="C1")
    assert len(rgb.axes) == 5
    picture = images_in(rgb)[0].get_array()
    assert picture.shape == (3, 3, 3) and picture.min() == 0 and picture.max() == pytest.approx(1)
    grey = plots.plot_filters(torch.randn(4, 6, 5, 5))
    assert [image.get_array().shape for image in images_in(grey)] == [(5, 5)] * 4


def test_feature_maps_shape_and_hook_removed():
    model = models.create("lenet5_modern").train()
    layer = model.features[0]
    images = torch.randn(2, 1, 32, 32)
    maps = plots.feature_maps(model, layer, images)
    assert maps.shape == (2, 6, 28, 28)
    assert not layer._forward_hooks and not model._forward_hooks
    assert model.training  # restored
    with torch.no_grad():  # the first layer's output is just that layer applied to the images
        assert torch.allclose(maps, layer(images))


def test_feature_maps_of_a_layer_the_model_does_not_use():
    with pytest.raises(ValueError, match="not called"):
        plots.feature_maps(models.create("lenet5_modern"), torch.nn.Conv2d(1, 1, 1), torch.randn(1, 1, 32, 32))


def test_plot_feature_maps():
    fig = plots.plot_feature_maps(torch.randn(6, 10, 10), ncols=3)
    assert len(images_in(fig)) == 6
    assert len(images_in(plots.plot_feature_maps(torch.randn(100, 4, 4), max_maps=16))) == 16
    with pytest.raises(ValueError, match=r"maps\[0\]"):
        plots.plot_feature_maps(torch.randn(1, 6, 10, 10))


def test_misclassified_most_confident_mistakes_first():
    logits = torch.tensor(
        [
            [5.0, 0.0],  # predicted 0, label 0: right
            [0.0, 1.0],  # predicted 1, label 0: wrong, unsure
            [0.0, 9.0],  # predicted 1, label 0: wrong, confident
            [3.0, 0.0],  # predicted 0, label 1: wrong, in between
        ]
    )
    labels = torch.tensor([0, 0, 0, 1])
    assert plots.misclassified(logits, labels).tolist() == [2, 3, 1]
    assert plots.misclassified(logits, labels, k=2).tolist() == [2, 3]


def test_lenet5_architecture_is_drawn_from_the_model():
    # The figure of chapter 1 (scripts/make_figures.py saves it into imgs/).
    fig = plots.draw_lenet5_architecture()
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in fig.axes[0].texts]
    for label in ("INPUT", "C3: f. maps", "16@10x10", "120", "Subsampling"):
        assert label in texts, f"{label!r} is not in the figure: {texts}"
    shapes = plots.lenet5_stage_shapes(models.create("lenet5"), (1, 32, 32))
    assert shapes[1:4] == [(6, 28, 28), (6, 14, 14), (16, 10, 10)]
    assert shapes[-3:] == [(120,), (84,), (10,)]  # C5's 1x1 maps: a vector
    seven = models.create("lenet5", num_classes=7)
    assert plots.lenet5_stage_shapes(seven, (1, 32, 32))[-1] == (7,)
