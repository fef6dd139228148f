"""The training loop: it learns, resumes exactly, stops on divergence, and reports honest numbers."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnbook.data import Augment, BatchLoader, DataBundle
from cnnbook.train import (
    OPTIMIZERS, SCHEDULES, CheckpointError, History, TrainConfig, TrainingDiverged,
    evaluate, fit, load_checkpoint, lr_factor, predict, save_checkpoint,
)  # fmt: skip

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: a second thread only adds overhead, and much more on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Interrupting:
    """Wraps a loader and raises KeyboardInterrupt (a Colab disconnect) at one batch of one epoch."""

    def __init__(self, loader: BatchLoader, epoch: int, batch: int):
        self.loader, self.at, self.epoch = loader, (epoch, batch), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch, xy in enumerate(self.loader):
            if (self.epoch, batch) == self.at:
                raise KeyboardInterrupt
            yield xy


def loader(images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool = False, **kw) -> BatchLoader:
    return BatchLoader(images, labels, batch_size, mean=0.5, std=0.25, shuffle=shuffle, device=CPU, **kw)


def bundle(train: BatchLoader, val: BatchLoader) -> DataBundle:
    return DataBundle("test", ["a", "b", "c"], train, val, val, torch.tensor([0.5]), torch.tensor([0.25]),
                      tuple(val.images.shape[1:]))  # fmt: skip


def random_images(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes of 3 x size x size uint8 images, told apart by which colour channel is brightest."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randint(60, 196, (n, 3, size, size), generator=g)
    x[torch.arange(n), y] += 40
    return x.to(torch.uint8), y


def make_data(n_train: int = 256, n_val: int = 64, batch_size: int = 32, seed: int = 0) -> DataBundle:
    """Shuffled, augmented training batches (as in the chapters) and plain validation batches."""
    x, y = random_images(n_train + n_val, 8, seed)
    train = loader(x[:n_train], y[:n_train], batch_size, shuffle=True, augment=Augment(crop_padding=2), seed=seed)
    return bundle(train, loader(x[n_train:], y[n_train:], batch_size))


class SmallNet(nn.Module):
    """Conv, BatchNorm and dropout: random state and buffers that a resume must restore."""

    def __init__(self, dropout: float = 0.2):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(8, 3))
        self.poison = False  # set to make every output NaN (not part of the state_dict)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(x))
        return logits * float("nan") if self.poison else logits


def quick(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 1, "progress": False, **kw})


def net(seed: int = 0) -> SmallNet:
    torch.manual_seed(seed)
    return SmallNet()


# ------------------------------------------------------------------------ learning


def test_learns_a_separable_problem(capsys):
    history = fit(net(), make_data(), quick(epochs=6, lr=0.1), device=CPU)
    assert len(history) == 6 and history["epoch"] == [1, 2, 3, 4, 5, 6]
    assert history["train_loss"][-1] < 0.7 * history["train_loss"][0]
    assert history.last["val_acc"] > 0.8 > history["train_acc"][0]
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and lines[2].startswith("epoch 3/6  train loss ") and " val loss " in lines[2]
    assert lines[-1].endswith(" s") and "%" in lines[-1]


def test_each_epoch_trains_on_that_epochs_batches():
    data, model, seen = make_data(n_train=64), net(), []
    model.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].clone()) if module.training else None)
    fit(model, data, quick(epochs=2, progress=True), device=CPU)  # with the tqdm bar
    expected = []
    for epoch in range(2):
        data.train.set_epoch(epoch)
        expected += [x for x, _ in data.train]
    assert len(seen) == len(expected) == 4 and all(torch.equal(a, b) for a, b in zip(seen, expected))


# ------------------------------------------------------------------------ checkpoints


def state_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def without_seconds(history: History) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history.records]


def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path):
    config = quick(epochs=4, lr=0.1, checkpoint=str(tmp_path / "run.pt"))
    reference_model = net()
    reference = fit(reference_model, make_data(), replace(config, checkpoint=None), device=CPU)

    data = make_data()
    interrupted = bundle(Interrupting(data.train, epoch=2, batch=3), data.val)
    with pytest.raises(KeyboardInterrupt):
        fit(net(), interrupted, config, device=CPU)  # stops in the middle of epoch 3 of 4
    assert load_checkpoint(config.checkpoint)["epoch"] == 2

    torch.manual_seed(123)  # the global RNG and the fresh model differ from the first run: the checkpoint must fix both
    resumed_model = SmallNet()
    resumed = fit(resumed_model, make_data(), config, device=CPU)
    assert state_equal(resumed_model, reference_model)
    assert without_seconds(resumed) == without_seconds(reference)


def test_resume_of_a_finished_run_returns_its_history_without_training(tmp_path):
    config = quick(epochs=2, checkpoint=str(tmp_path / "run.pt"))
    trained = net()
    history = fit(trained, make_data(), config, device=CPU)
    data = make_data()
    data.train = Interrupting(data.train, epoch=0, batch=0)  # any training would raise
    again = net(seed=1)
    assert fit(again, data, config, device=CPU).records == history.records
    assert state_equal(again, trained)


def test_epochs_may_grow_to_continue_a_run(tmp_path):
    config = quick(epochs=1, checkpoint=str(tmp_path / "run.pt"))
    fit(net(), make_data(), config, device=CPU)
    history = fit(net(), make_data(), replace(config, epochs=3), device=CPU)
    assert history["epoch"] == [1, 2, 3]
    with pytest.raises(CheckpointError, match="already holds 3 epochs"):
        fit(net(), make_data(), replace(config, epochs=2), device=CPU)


def test_corrupt_checkpoint_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "run.pt"
    fit(net(), make_data(), quick(checkpoint=str(path)), device=CPU)
    path.write_bytes(path.read_bytes()[:500])  # a truncated write
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="cannot read the checkpoint") as error:
        fit(net(), make_data(), quick(epochs=2, checkpoint=str(path)), device=CPU)
    assert str(path) in str(error.value) and "delete" in str(error.value)
    assert path.read_bytes() == before

    path.write_bytes(b"")  # an empty file is no checkpoint either
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)
    assert path.read_bytes() == b""


def test_a_foreign_pickle_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a cnnbook checkpoint"):
        load_checkpoint(path)


def test_checkpoint_of_a_different_config_is_refused(tmp_path):
    path = str(tmp_path / "run.pt")
    fit(net(), make_data(), quick(checkpoint=path), device=CPU)
    with pytest.raises(CheckpointError, match="lr=0.05 there, 0.1 here") as error:
        fit(net(), make_data(), quick(lr=0.1, checkpoint=path), device=CPU)
    assert "choose another file: checkpoint=PATH" in str(error.value)
    with pytest.raises(CheckpointError, match="train_batches"):  # other data, e.g. another profile
        fit(net(), make_data(n_train=128), quick(checkpoint=path), device=CPU)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = str(tmp_path / "run.pt")
    fit(net(), make_data(), quick(checkpoint=path), device=CPU)
    other = nn.Sequential(nn.Flatten(), nn.Linear(192, 3))
    with pytest.raises(CheckpointError, match="model.class='SmallNet' there, 'Sequential' here"):
        fit(other, make_data(), quick(checkpoint=path), device=CPU)


def test_save_checkpoint_is_atomic_and_loads_back(tmp_path):
    path = tmp_path / "sub" / "state.pt"
    save_checkpoint(path, {"format": 1, "x": torch.arange(3), "history": {"records": [{"epoch": 1}]}})
    state = load_checkpoint(path)
    assert torch.equal(state["x"], torch.arange(3)) and state["history"]["records"][0]["epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["state.pt"]  # no temporary file left behind


# ------------------------------------------------------------------------ divergence


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    model = net()
    fit(model, make_data(), quick(epochs=1, checkpoint=str(path)), device=CPU)
    good = path.read_bytes()
    model.poison = True
    with pytest.raises(TrainingDiverged, match=r"epoch 2/3, batch 1/8") as error:
        fit(model, make_data(), quick(epochs=3, checkpoint=str(path)), device=CPU)
    message = str(error.value)
    assert "lower learning rate" in message and "grad_clip" in message and "normalised" in message
    assert path.read_bytes() == good


def test_a_huge_learning_rate_diverges():
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 16), nn.ReLU(), nn.Linear(16, 3))
    with pytest.raises(TrainingDiverged, match="training loss at epoch 1/3"):
        fit(model, make_data(), quick(epochs=3, lr=1e10, schedule="constant", weight_decay=0), device=CPU)


# ------------------------------------------------------------------------ losses


class AuxNet(nn.Module):
    """Returns (logits, aux1, aux2) in training mode, like GoogLeNet, and logits alone in eval mode."""

    def __init__(self):
        super().__init__()
        self.main, self.aux1, self.aux2 = nn.Linear(12, 3), nn.Linear(12, 3), nn.Linear(12, 3)

    def forward(self, x):
        x = x.flatten(1)
        return (self.main(x), self.aux1(x), self.aux2(x)) if self.training else self.main(x)


def one_batch(n: int = 16) -> tuple[DataBundle, torch.Tensor, torch.Tensor]:
    """Data of one batch, for train and val alike, and that batch."""
    batches = loader(*random_images(n, 2, seed=0), batch_size=n)
    (x, y), = list(batches)
    return bundle(batches, batches), x, y


def test_auxiliary_losses_are_added_with_their_weight():
    torch.manual_seed(0)
    model, (data, x, y) = AuxNet(), one_batch()
    with torch.no_grad():
        main, aux1, aux2 = model(x)
        val_loss = F.cross_entropy(model.main(x.flatten(1)), y).item()
    expected = F.cross_entropy(main, y) + 0.4 * (F.cross_entropy(aux1, y) + F.cross_entropy(aux2, y))
    # One epoch of one batch: train_loss is that batch's loss before the update.
    history = fit(model, data, quick(aux_weight=0.4, schedule="constant"), device=CPU)
    assert history.last["train_loss"] == pytest.approx(expected.item(), rel=1e-5)
    assert history.last["train_acc"] == pytest.approx((main.argmax(1) == y).float().mean().item())
    assert history.last["val_loss"] != pytest.approx(val_loss)  # validated after the update, on main logits only...
    assert history.last["val_loss"] == pytest.approx(evaluate(model, data.val, device=CPU)[0])


def test_label_smoothing_matches_its_formula():
    torch.manual_seed(0)
    model, (data, x, y) = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), one_batch()
    with torch.no_grad():
        log_p = F.log_softmax(model(x), dim=1)
    eps = 0.2  # the target is (1 - eps) one-hot + eps uniform
    nll, uniform = -log_p[torch.arange(16), y].mean(), -log_p.mean(1).mean()
    history = fit(model, data, quick(label_smoothing=eps, schedule="constant"), device=CPU)
    assert history.last["train_loss"] == pytest.approx(((1 - eps) * nll + eps * uniform).item(), rel=1e-5)
    assert abs(history.last["train_loss"] - nll.item()) > 1e-3  # not the unsmoothed loss
    loss, _ = evaluate(model, data.val, device=CPU)
    assert history.last["val_loss"] == pytest.approx(loss)  # validation reports plain cross-entropy


# ------------------------------------------------------------------------ evaluate and predict


def test_evaluate_and_predict_match_a_hand_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(12, 3))
    model.train()
    batches = loader(*random_images(10, 2, seed=1), batch_size=4)  # batches of 4, 4 and 2
    x, y = (torch.cat(parts) for parts in zip(*batches))
    with torch.no_grad():
        logits = model[2](x.flatten(1))  # eval mode: no dropout
    got_logits, got_labels = predict(model, batches, device=CPU)
    assert got_logits.dtype == torch.float32 and got_logits.device == CPU
    assert torch.allclose(got_logits, logits, atol=1e-6) and torch.equal(got_labels, y)
    loss, acc = evaluate(model, batches, device=CPU)
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert acc == pytest.approx((logits.argmax(1) == y).sum().item() / 10)
    assert model.training  # the mode is restored
    loss, _ = evaluate(model, batches, device=CPU, loss_fn=nn.MultiMarginLoss())
    assert loss == pytest.approx(F.multi_margin_loss(logits, y).item(), rel=1e-6)


# ------------------------------------------------------------------------ optimisers and schedules


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_trains(optimizer):
    model = net()
    before = [p.detach().clone() for p in model.parameters()]
    history = fit(model, make_data(n_train=64), quick(optimizer=optimizer, lr=0.01), device=CPU)
    assert math.isfinite(history.last["train_loss"])
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_trains(schedule):
    history = fit(net(), make_data(n_train=64), quick(epochs=2, schedule=schedule), device=CPU)
    assert len(history) == 2 and all(0 < lr <= 0.05 for lr in history["lr"])


def test_schedule_shapes():
    spe = 10  # steps per epoch
    step = TrainConfig(epochs=4, schedule="step", gamma=0.1, milestones=(0.5, 0.75))
    assert [lr_factor(step, e * spe, spe) for e in range(4)] == pytest.approx([1, 1, 0.1, 0.01])
    assert lr_factor(step, 2 * spe - 1, spe) == 1  # changes only at epoch boundaries
    warm = TrainConfig(epochs=4, schedule="cosine", warmup_epochs=1)
    assert [lr_factor(warm, s, spe) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert lr_factor(warm, 40 - 1, spe) < 0.01
    one = TrainConfig(epochs=10, schedule="onecycle")
    factors = [lr_factor(one, s, spe) for s in range(100)]
    assert factors[0] == pytest.approx(1 / 25) and max(factors) == pytest.approx(1.0)
    assert factors.index(max(factors)) == 29 and factors[-1] == pytest.approx(1 / 25e4)
    assert lr_factor(TrainConfig(schedule="constant"), 57, spe) == 1


def test_plateau_cuts_the_rate_when_val_loss_stalls():
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 3))  # with a tiny lr the val loss barely moves
    config = quick(epochs=4, lr=1e-6, schedule="plateau", patience=0, gamma=0.5, weight_decay=0)
    history = fit(model, make_data(n_train=64), config, device=CPU)
    assert history["lr"] == pytest.approx([1e-6, 1e-6, 5e-7, 2.5e-7])  # no best to beat in epoch 1


@pytest.mark.parametrize(
    "bad, listed",
    [
        (dict(optimizer="sgdd"), "sgd, adam, adamw, rmsprop"),
        (dict(schedule="cos"), "constant, step, cosine, onecycle, plateau"),
        (dict(epochs=0), "epochs=0"),
        (dict(lr=0), "lr=0"),
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(schedule="onecycle", warmup_epochs=1), "warms up by itself"),
        (dict(optimizer="adam", nesterov=True), "nesterov"),
    ],
)
def test_bad_config_values_are_refused(bad, listed):
    with pytest.raises(ValueError, match=listed):
        TrainConfig(**bad)


def test_compile_is_used_when_asked(monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compiled.append(model) or model)
    model = net()
    fit(model, make_data(n_train=32), quick(compile=True), device=CPU)
    assert compiled == [model]


# ------------------------------------------------------------------------ history


def test_history_accessors_and_round_trip():
    history = History([
        dict(epoch=1, train_loss=1.0, train_acc=0.5, val_loss=0.9, val_acc=0.6, lr=0.1, seconds=1.0),
        dict(epoch=2, train_loss=0.5, train_acc=0.8, val_loss=0.7, val_acc=0.75, lr=0.05, seconds=1.1),
        dict(epoch=3, train_loss=0.3, train_acc=0.9, val_loss=0.8, val_acc=0.7, lr=0.01, seconds=1.2),
    ])  # fmt: skip
    assert history["val_acc"] == [0.6, 0.75, 0.7] and len(history) == 3
    assert history.last["epoch"] == 3
    assert history.best()["epoch"] == 2 and history.best("val_loss")["epoch"] == 2
    assert history.best("train_loss")["epoch"] == 3
    with pytest.raises(KeyError, match="val_acc"):
        history["val_accuracy"]
    assert History.from_dict(json.loads(json.dumps(history.to_dict()))) == history
    with pytest.raises(ValueError, match="empty"):
        History().last


# ------------------------------------------------------------------------ CUDA (skipped without a GPU)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("capability, dtype", [((8, 0), torch.bfloat16), ((7, 5), torch.float16)])
def test_mixed_precision_on_cuda(monkeypatch, tmp_path, capability, dtype):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)  # (7, 5): a T4
    model, seen = net(), set()
    model.head.register_forward_hook(lambda module, inputs, output: seen.add(output.dtype) if module.training else None)
    path = tmp_path / "run.pt"
    history = fit(model, make_data(), quick(epochs=6, lr=0.1, checkpoint=str(path)), device="cuda")
    assert seen == {dtype} and history.last["val_acc"] > 0.8
    assert bool(load_checkpoint(path)["scaler"]) == (dtype == torch.float16)  # a GradScaler only for fp16
    assert next(model.parameters()).device.type == "cuda"


@cuda
def test_a_cpu_checkpoint_continues_on_cuda(tmp_path):
    config = quick(epochs=1, checkpoint=str(tmp_path / "run.pt"))
    first = fit(net(), make_data(), config, device=CPU)
    history = fit(net(), make_data(), replace(config, epochs=2), device="cuda")
    assert history.records[0] == first.records[0] and math.isfinite(history.last["train_loss"])


# --------------------------------------------------------------------------
# Checks before training, and a checkpoint that cannot be written
# --------------------------------------------------------------------------


def test_an_unwritable_checkpoint_is_refused_before_the_first_batch(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(CheckpointError, match="cannot write the checkpoint .* Nothing was trained"):
        fit(net(), make_data(), quick(checkpoint=str(blocker / "run.pt")), device=CPU)
    assert "epoch" not in capsys.readouterr().out
    with pytest.raises(CheckpointError, match="is a folder"):
        fit(net(), make_data(), quick(checkpoint=str(tmp_path)), device=CPU)


def test_a_failed_checkpoint_write_keeps_training_and_the_state(tmp_path, capsys, monkeypatch):
    import cnnbook.train

    path, real_save, calls = tmp_path / "run.pt", cnnbook.train.save_checkpoint, []

    def full_disk_once(target, state):
        calls.append(state["epoch"])
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        real_save(target, state)

    monkeypatch.setattr(cnnbook.train, "save_checkpoint", full_disk_once)
    model = net()
    history = fit(model, make_data(), quick(epochs=2, checkpoint=str(path)), device=CPU)
    out = capsys.readouterr().out
    assert len(history) == 2 and calls == [1, 2]
    assert "could not write the checkpoint" in out and "No space left on device" in out
    saved = load_checkpoint(path)
    assert saved["epoch"] == 2  # the next epoch's write succeeded, with the state kept in memory
    assert all(torch.equal(saved["model"][k], v) for k, v in model.state_dict().items())


def test_a_model_with_fewer_outputs_than_classes_is_refused_at_once(capsys):
    two_outputs = nn.Sequential(nn.Flatten(), nn.Linear(192, 2))
    with pytest.raises(ValueError, match=r"gives \(2,\) outputs per image, but the data has 3 classes: .*num_classes=3"):
        fit(two_outputs, make_data(), quick(), device=CPU)
    assert "epoch" not in capsys.readouterr().out


def test_an_empty_split_is_refused_before_training():
    data = make_data()
    empty = loader(torch.zeros(0, 3, 8, 8, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64), 32)
    with pytest.raises(ValueError, match="the val loader yields no batches"):
        fit(net(), bundle(data.train, empty), quick(), device=CPU)
    with pytest.raises(ValueError, match="yields no batches"):
        predict(net(), empty, device=CPU)


def test_the_fingerprint_covers_the_model_and_the_data():
    from cnnbook import models
    from cnnbook.train import run_fingerprint

    data, config = make_data(), quick()
    a = run_fingerprint(models.create("resnet110", seed=0), data, config)
    b = run_fingerprint(models.create("resnet110_stochastic_depth", seed=0), data, config)
    assert a["model"]["name"] == "resnet110" and b["model"]["name"] == "resnet110_stochastic_depth"
    # The seed of the initial weights is not part of it: the checkpoint's weights replace them.
    assert run_fingerprint(models.create("resnet110", seed=1), data, config) == a
    # A module not from the zoo: its class and parameter shapes.
    assert run_fingerprint(net(), data, config)["model"]["class"] == "SmallNet"
    described = make_data()
    described.description = {"name": "test", "val": 64}
    assert run_fingerprint(net(), described, config)["data"] == {"name": "test", "val": 64}


def test_the_same_seed_gives_the_same_run_from_fit():
    # What a notebook does: build the model with a seed, then fit with a seed. Twice, with the
    # global generator in another state in between, gives the same weights and history.
    from cnnbook import models

    g = torch.Generator().manual_seed(1)
    images, labels = torch.randint(0, 256, (96, 1, 32, 32), dtype=torch.uint8, generator=g), torch.arange(96) % 10
    runs = []
    for noise in (0, 100):
        torch.rand(noise)
        model = models.create("lenet5_modern", seed=0)
        data = DataBundle("digits", [str(i) for i in range(10)], loader(images[:64], labels[:64], 16, shuffle=True),
                          loader(images[64:], labels[64:], 16), loader(images[64:], labels[64:], 16),
                          torch.tensor([0.5]), torch.tensor([0.25]), (1, 32, 32))  # fmt: skip
        history = fit(model, data, quick(epochs=2), device=CPU)
        runs.append((model.state_dict(), without_seconds(history)))
    (first, history_1), (second, history_2) = runs
    assert history_1 == history_2
    assert all(torch.equal(first[k], second[k]) for k in first)


# --------------------------------------------------------------------------
# The fast path: no wait for the device in every batch, fused or foreach
# optimisers, and the same results as the plain loop
# --------------------------------------------------------------------------


def plain_fit(model: nn.Module, data: DataBundle, config: TrainConfig) -> list[dict]:
    """The loop as one writes it first: float32, contiguous, per-parameter optimiser, two reads per batch."""
    from cnnbook.train import make_scheduler

    torch.manual_seed(config.seed)
    optimizer = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                 "rmsprop": torch.optim.RMSprop}[config.optimizer]  # fmt: skip
    options = dict(momentum=config.momentum) if config.optimizer in ("sgd", "rmsprop") else {}
    optimizer = optimizer(model.parameters(), config.lr, weight_decay=config.weight_decay, foreach=False, **options)
    scheduler = make_scheduler(optimizer, config, len(data.train))
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    records = []
    for epoch in range(config.epochs):
        data.train.set_epoch(epoch)
        model.train()
        loss_sum = correct = seen = 0
        for x, y in data.train:
            logits = model(x)
            loss = criterion(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        val_loss, val_acc = evaluate(model, data.val, device=CPU)
        records.append(dict(train_loss=loss_sum / seen, train_acc=correct / seen, val_loss=val_loss, val_acc=val_acc))
    return records


@pytest.mark.parametrize(
    "optimizer, channels_last",
    [*((name, False) for name in OPTIMIZERS), ("sgd", True)],
)
def test_the_fast_path_gives_the_results_of_a_plain_loop(
    monkeypatch, optimizer, channels_last
):
    import cnnbook.train

    # Reads inside the epochs of 8 batches, and at their ends.
    monkeypatch.setattr(cnnbook.train, "CHECK_EVERY", 3)
    config = quick(epochs=2, optimizer=optimizer, lr=0.01,
                   label_smoothing=0.1, channels_last=channels_last)
    fast_model, plain_model = net(), net()
    history = fit(fast_model, make_data(), config, device=CPU)
    plain = plain_fit(plain_model, make_data(), config)
    fast, slow = fast_model.state_dict(), plain_model.state_dict()
    if not channels_last:  # the same kernels: the same numbers
        assert all(torch.equal(fast[k], slow[k]) for k in fast)
        assert [{k: r[k] for k in p} for r, p in
                zip(history.records, plain)] == plain
    else:  # other convolution kernels, which round otherwise
        assert all(torch.allclose(fast[k].float(), slow[k].float(),
                                  rtol=1e-4, atol=1e-6) for k in fast)
        for record, expected in zip(history.records, plain):
            assert {k: record[k] for k in expected} == pytest.approx(
                expected, rel=1e-5, abs=1e-6)


def test_the_optimizer_is_fused_on_cuda_and_foreach_elsewhere():
    from cnnbook.train import _implementation, make_optimizer

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert _implementation(torch.optim.SGD, cuda) == {"fused": True}
    assert _implementation(torch.optim.AdamW, cuda) == {"fused": True}
    assert _implementation(torch.optim.RMSprop, cuda) == {"foreach": True}  # torch has no fused RMSprop
    assert _implementation(torch.optim.Adam, cpu) == {"foreach": True}
    optimizer = make_optimizer(net(), quick(nesterov=True))
    assert optimizer.param_groups[0]["foreach"] and optimizer.param_groups[0]["nesterov"]


def test_a_late_seen_non_finite_loss_names_its_batch_and_restores_the_last_checked_weights(monkeypatch, tmp_path):
    import cnnbook.train

    monkeypatch.setattr(cnnbook.train, "CHECK_EVERY", 4)
    model, calls, checked = net(), [], {}

    def poison_from_the_sixth_batch(module, inputs):
        if module.training:
            calls.append(1)
            if len(calls) == 5:  # the weights after 4 batches: those of the read after batch 4
                checked.update({k: v.clone() for k, v in module.state_dict().items()})
            module.poison = len(calls) >= 6

    model.register_forward_pre_hook(poison_from_the_sixth_batch)
    path = tmp_path / "run.pt"
    with pytest.raises(TrainingDiverged, match=r"the training loss at epoch 1/2, batch 6/8 is nan") as error:
        fit(model, make_data(), quick(epochs=2, checkpoint=str(path)), device=CPU)
    assert "lower learning rate" in str(error.value)
    assert len(calls) == 8  # seen at the read after batch 8, the epoch's last
    state = model.state_dict()
    assert all(torch.equal(state[k], checked[k]) for k in state)  # nothing of batches 5 to 8 is kept
    assert not path.exists()  # no checkpoint of a spoiled epoch


def test_flip_test_time_augmentation_averages_the_logits_of_both_images():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    batches = loader(*random_images(10, 2, seed=1), batch_size=4)
    x, y = (torch.cat(parts) for parts in zip(*batches))
    with torch.no_grad():
        expected = (model(x) + model(x.flip(3))) / 2
    logits, labels = predict(model, batches, device=CPU, tta=True)
    assert torch.allclose(logits, expected, atol=1e-6) and torch.equal(labels, y)
    assert not torch.allclose(logits, predict(model, batches, device=CPU)[0])
    loss, acc = evaluate(model, batches, device=CPU, tta=True)
    assert loss == pytest.approx(F.cross_entropy(expected, y).item(), rel=1e-6)
    assert acc == pytest.approx((expected.argmax(1) == y).float().mean().item())


def test_the_fast_recipe_is_a_valid_config_with_its_parts():
    from cnnbook.train import RECIPES, Recipe

    fast = RECIPES["fast"]
    assert fast.config.schedule == "onecycle" and fast.config.nesterov and fast.config.label_smoothing > 0
    assert fast.batch_size == 512 and fast.tta and fast.config.channels_last and fast.config.amp
    assert Recipe().config == TrainConfig() and Recipe().batch_size == 128 and not Recipe().tta


def test_a_resumed_optimizer_keeps_this_devices_implementation(tmp_path, monkeypatch):
    import cnnbook.train

    path = tmp_path / "run.pt"
    fit(net(), make_data(), quick(checkpoint=str(path)), device=CPU)
    state = load_checkpoint(path)
    for group in state["optimizer"]["param_groups"]:  # as saved on a GPU
        group.update(fused=True, foreach=None)
    save_checkpoint(path, state)
    made, real = [], cnnbook.train.make_optimizer
    monkeypatch.setattr(cnnbook.train, "make_optimizer",
                        lambda *args: made.append(real(*args)) or made[-1])
    fit(net(), make_data(), quick(epochs=2, checkpoint=str(path)), device=CPU)
    group = made[0].param_groups[0]
    assert group["foreach"] and not group["fused"]


class NoWaitLoader:
    """Batches of ``loader``; the step that follows each must not wait."""

    def __init__(self, loader: BatchLoader):
        self.loader = loader

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        try:
            for xy in self.loader:
                torch.cuda.set_sync_debug_mode("error")  # until the next batch is drawn
                yield xy
                torch.cuda.set_sync_debug_mode(0)
        finally:
            torch.cuda.set_sync_debug_mode(0)


@cuda
def test_the_training_step_does_not_wait_for_the_gpu(monkeypatch):
    import cnnbook.train

    real_read = cnnbook.train._EpochRecord.read

    def read(self):  # the one place that may wait: once in CHECK_EVERY batches
        mode = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode(0)
        try:
            return real_read(self)
        finally:
            torch.cuda.set_sync_debug_mode(mode)

    monkeypatch.setattr(cnnbook.train._EpochRecord, "read", read)

    def on_the_gpu(n: int, seed: int, **kw) -> BatchLoader:
        return BatchLoader(*random_images(n, 8, seed), 32, mean=0.5,
                           std=0.25, device="cuda", **kw)  # fmt: skip

    train = on_the_gpu(256, 0, shuffle=True, augment=Augment(crop_padding=2))
    data = bundle(NoWaitLoader(train), on_the_gpu(64, 1, shuffle=False))
    config = quick(epochs=2, grad_clip=1.0)  # clipping must not wait either
    history = fit(net(), data, config, device="cuda")
    assert len(history) == 2 and math.isfinite(history.last["train_loss"])
