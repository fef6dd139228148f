"""One training loop for every chapter and the command line.

    >>> from cnnbook.train import TrainConfig, fit
    >>> config = TrainConfig(epochs=10, lr=0.05, checkpoint="run.pt")
    >>> history = fit(model, data, config)
    >>> history["val_acc"], history.best()

``data`` is anything with ``.train`` and ``.val`` loaders (a
``cnnbook.data.DataBundle``): iterating a loader yields ``(x, y)`` batches,
``len(loader)`` is its number of batches, and ``loader.set_epoch(epoch)``
makes that epoch's shuffling and augmentation a function of (seed, epoch).

What ``fit`` does, and why:

- Loss. A model returns logits, or in training mode a tuple
  ``(logits, *aux_logits)`` (GoogLeNet's auxiliary classifiers, the companion
  outputs of deeply supervised nets). The loss is then
  ``CE(logits) + aux_weight * sum(CE(aux))`` (see :func:`training_loss`);
  accuracy always comes from the main logits. ``train_loss`` is this total,
  the number the optimiser sees; ``val_loss`` is the plain cross-entropy of
  the main logits (no label smoothing), the number to compare across runs.
- Learning rate. ``plateau`` steps once an epoch on the validation loss.
  Every other schedule is a function of the batch counter
  (:func:`lr_factor`) stepped after every batch, so warm-up and one-cycle are
  smooth; ``step`` still changes the rate only at epoch boundaries.
- Speed. Mixed precision on CUDA (bf16 where the GPU has it natively, else
  fp16 with a gradient scaler, as on Colab's T4), channels_last memory
  layout, ``torch.compile`` when asked, and the fused (CUDA) or foreach
  implementation of the optimizer. The loop does not wait for the GPU
  after every batch: the losses and hits stay on the device and are read
  once every ``CHECK_EVERY`` batches and at the end of the epoch, for the
  progress bar, the check below and the history.
- Safety. A non-finite loss stops training (:class:`TrainingDiverged`),
  naming the first batch that had one. It is seen at the next read, up to
  ``CHECK_EVERY`` batches later; by then the weights may be spoiled, and the
  model goes back to a copy taken at the last read that found every loss
  finite (at most ``CHECK_EVERY`` batches earlier).
  With ``checkpoint`` set, the state after every epoch (weights, optimiser,
  schedule, scaler, random number generators, history) is written atomically,
  and a new call with the same config resumes from it: an interrupted and
  resumed run ends with exactly the weights of an uninterrupted one. A
  checkpoint resumes only the run it belongs to: its fingerprint covers the
  config, the model (name and options, or class and parameter shapes) and the
  data (``data.description`` when the data has one). An unwritable checkpoint
  path is refused before the first batch; a write that fails later (a full
  disk) is reported and training goes on, the state kept in memory.
- Checks before training: the checkpoint's folder is writable, the loaders
  yield batches, and the model has an output for every class of the data.

Advice in messages names the Python arguments as ``name=value``
(``checkpoint=...``, ``grad_clip=1.0``); the ``cnnbook`` command rewrites
them as its options (``--checkpoint``, ``--grad-clip``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import math
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from .profiles import default_device

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "TrainConfig",
    "History",
    "TrainingDiverged",
    "CheckpointError",
    "fit",
    "evaluate",
    "predict",
    "training_loss",
    "lr_factor",
    "save_checkpoint",
    "load_checkpoint",
    "run_fingerprint",
    "check_writable",
    "Recipe",
    "RECIPES",
]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "onecycle", "plateau")
CHECKPOINT_FORMAT = 1
# Fields that may change between a run and its resumption; all others must
# match.
RESUMABLE_CHANGES = ("epochs", "checkpoint", "progress")
# Batches between two reads of the training loss (fit's Speed and Safety).
CHECK_EVERY = 16


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read, or does not belong to this run."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (the model and data aside)."""

    epochs: int = 10
    optimizer: str = "sgd"  # one of OPTIMIZERS
    lr: float = 0.05
    momentum: float = 0.9  # sgd and rmsprop
    nesterov: bool = False  # sgd
    # on every parameter; decoupled (AdamW-style) for "adamw"
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # one of SCHEDULES
    # "step": fractions of the run where lr *= gamma
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1  # "step" and "plateau": the factor of each cut
    # "plateau": epochs without a better val loss before a cut
    patience: int = 2
    warmup_epochs: float = 0.0  # linear warm-up for constant/step/cosine
    label_smoothing: float = 0.0  # of the default training loss
    # weight of auxiliary/companion losses (GoogLeNet's 0.3)
    aux_weight: float = 0.3
    grad_clip: float | None = None  # max gradient norm
    amp: bool = True  # mixed precision on CUDA; ignored on the CPU
    channels_last: bool = True
    compile: bool = False  # torch.compile the model
    seed: int = 0
    # file saved after every epoch and resumed from
    checkpoint: str | None = None
    progress: bool = True  # a tqdm bar over each epoch's batches

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(self.milestones))
        checks = [
            (
                self.optimizer in OPTIMIZERS,
                f"optimizer={self.optimizer!r} is "
                "not one of "
                f"{', '.join(OPTIMIZERS)}",
            ),
            (
                self.schedule in SCHEDULES,
                f"schedule={self.schedule!r} is not "
                f"one of {', '.join(SCHEDULES)}",
            ),
            (self.epochs >= 1, f"epochs={self.epochs} must be at least 1"),
            (self.lr > 0, f"lr={self.lr} must be positive"),
            (
                0 <= self.momentum < 1,
                f"momentum={self.momentum} must be in [0, 1)",
            ),
            (
                not self.nesterov
                or (self.optimizer == "sgd" and self.momentum > 0),
                "nesterov=True needs optimizer='sgd' and momentum > 0",
            ),
            (
                self.weight_decay >= 0,
                f"weight_decay={self.weight_decay} must not be negative",
            ),
            (
                all(0 < m <= 1 for m in self.milestones),
                f"milestones={self.milestones} must be fractions in (0, 1]",
            ),
            (0 < self.gamma <= 1, f"gamma={self.gamma} must be in (0, 1]"),
            (
                self.patience >= 0,
                f"patience={self.patience} must not be negative",
            ),
            (
                0 <= self.warmup_epochs <= self.epochs,
                f"warmup_epochs={self.warmup_epochs} must be in [0, epochs]",
            ),
            (
                self.warmup_epochs == 0
                or self.schedule in ("constant", "step", "cosine"),
                f"schedule={self.schedule!r} takes no warmup_epochs (onecycle "
                "warms up by itself)",
            ),
            (
                0 <= self.label_smoothing < 1,
                f"label_smoothing={self.label_smoothing} must be in [0, 1)",
            ),
            (
                self.aux_weight >= 0,
                f"aux_weight={self.aux_weight} must not be negative",
            ),
            (
                self.grad_clip is None or self.grad_clip > 0,
                f"grad_clip={self.grad_clip} must be None or positive",
            ),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))


@dataclass(frozen=True)
class Recipe:
    """A way to train: the loop's config and what is decided outside it.

    ``batch_size`` and ``val_size`` are ``cnnbook.data.load``'s; ``tta``
    evaluates the test set with flip test-time augmentation (``evaluate``).
    ``cnnbook train NAME --recipe fast`` starts from ``RECIPES["fast"]``,
    and its options change single values of it.
    """

    config: TrainConfig = field(default_factory=TrainConfig)
    batch_size: int = 128
    val_size: int = 5000
    tta: bool = False
    about: str = "TrainConfig's defaults"


RECIPES = {
    # David Page's DAWNBench recipe for his ResNet-9 (94% in 24 epochs),
    # with a ResNet-18 in place of the ResNet-9: batches of 512, SGD with
    # Nesterov momentum 0.9, a one-cycle rate peaking at 0.4, weight decay
    # 5e-4, label smoothing 0.2, flip test-time augmentation. A ResNet-18
    # learns more per epoch; 20 epochs aim at 94% in under a minute on an
    # H100 (not measured yet). Almost all of the training set trains.
    "fast": Recipe(
        TrainConfig(epochs=20, lr=0.4, nesterov=True, weight_decay=5e-4,
                    label_smoothing=0.2, schedule="onecycle"),
        batch_size=512, val_size=1000, tta=True,
        about="aims at 94% on CIFAR-10 with resnet18_cifar in a minute on one "
              "H100 (not measured yet)",
    ),
}  # fmt: skip


@dataclass
class History:
    """One record per epoch: epoch (1-based), train_loss, train_acc, val_loss,
    val_acc, lr, seconds.

    Accuracies are fractions (0..1); ``lr`` is the rate of the epoch's last
    batch.
    """

    records: list[dict] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        """The per-epoch values of one column, e.g. ``history["val_acc"]``."""
        if self.records and key not in self.records[0]:
            raise KeyError(
                f"no column {key!r} in the history; it has "
                f"{', '.join(self.records[0])}"
            )
        return [record[key] for record in self.records]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def last(self) -> dict:
        """The record of the last epoch."""
        if not self.records:
            raise ValueError(
                "the history is empty: no epoch has been trained yet"
            )
        return self.records[-1]

    def best(self, key: str = "val_acc") -> dict:
        """The record of the best epoch by ``key``: the lowest for a loss,
        else the highest.
        """
        values = self[key]  # a KeyError naming the columns for an unknown key
        choose = min if key.endswith("loss") else max
        # .last explains an empty history
        return (
            self.records[values.index(choose(values))] if values else self.last
        )

    def to_dict(self) -> dict:
        return {"records": [dict(record) for record in self.records]}

    @classmethod
    def from_dict(cls, state: dict) -> History:
        return cls([dict(record) for record in state["records"]])


def training_loss(
    outputs: Any, y: torch.Tensor, loss_fn: nn.Module, aux_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of one batch and the main logits.

    ``outputs`` is the model's return value: logits, or ``(logits,
    *aux_logits)`` for models with auxiliary classifiers. Then ``loss =
    loss_fn(logits, y) + aux_weight * sum(loss_fn(aux, y) for aux in
    aux_logits)``.
    """
    logits, *aux = (
        outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    )
    loss = loss_fn(logits, y)
    if aux:
        loss = loss + aux_weight * sum(loss_fn(a, y) for a in aux)
    return loss, logits


def lr_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate of batch ``step`` (0-based, counted over the whole
    run) as a fraction of ``config.lr``.

    ``onecycle`` follows ``torch.optim.lr_scheduler.OneCycleLR``'s defaults
    (from lr/25 up to lr in the first 30% of the batches, then down to lr/25e4,
    cosine-shaped) without its momentum cycling.
    """
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":
        # the batch with the full rate, as in OneCycleLR
        peak = 0.3 * total - 1
        start, end = 1 / 25, 1 / 25e4
        if step <= peak:
            return end_at(start, 1.0, step / peak) if peak > 0 else 1.0
        return end_at(
            1.0, end, min(1.0, (step - peak) / max(1.0, total - 1 - peak))
        )
    warmup = round(config.warmup_epochs * steps_per_epoch)
    factor = min(1.0, (step + 1) / warmup) if warmup else 1.0
    if config.schedule == "step":
        epoch = step // steps_per_epoch
        factor *= config.gamma ** sum(
            epoch / config.epochs >= m for m in config.milestones
        )
    elif config.schedule == "cosine":
        factor *= end_at(
            1.0,
            0.0,
            min(1.0, max(0.0, (step - warmup) / max(1, total - warmup))),
        )
    return factor


def end_at(start: float, end: float, progress: float) -> float:
    """Cosine interpolation from ``start`` (progress 0) to ``end`` (progress
    1).
    """
    return end + (start - end) * (1 + math.cos(math.pi * progress)) / 2


def make_optimizer(
    model: nn.Module, config: TrainConfig
) -> torch.optim.Optimizer:
    """The optimizer of ``config``, its fastest version on the model's device.

    Fused (one kernel for the whole update) where torch has it on this
    device, else foreach (one kernel per operation over all parameters):
    the per-parameter loop's update, with fewer kernel launches.
    """
    params, c = list(model.parameters()), config
    if c.optimizer == "sgd":
        optimizer = torch.optim.SGD
        options = dict(momentum=c.momentum, nesterov=c.nesterov)
    elif c.optimizer == "rmsprop":
        optimizer, options = torch.optim.RMSprop, dict(momentum=c.momentum)
    else:
        adam = c.optimizer == "adam"
        optimizer = torch.optim.Adam if adam else torch.optim.AdamW
        options = {}
    device = params[0].device if params else torch.device("cpu")
    options.update(_implementation(optimizer, device))
    return optimizer(params, c.lr, weight_decay=c.weight_decay, **options)


def _implementation(optimizer: type, device: torch.device) -> dict:
    """``fused=True`` on CUDA where torch has it (SGD, Adam, AdamW), else
    ``foreach=True`` where it has that."""
    accepts = inspect.signature(optimizer).parameters
    if device.type == "cuda" and "fused" in accepts:
        return {"fused": True}
    return {"foreach": True} if "foreach" in accepts else {}


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
):
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=config.gamma, patience=config.patience
        )
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(config, step, steps_per_epoch)
    )


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast type: bf16 on GPUs with native bf16 (compute capability 8+:
    A100, L4, H100), fp16 on older ones (T4, V100), none on the CPU."""
    if device.type != "cuda":
        return None
    return (
        torch.bfloat16
        if torch.cuda.get_device_capability(device)[0] >= 8
        else torch.float16
    )


def fit(
    model: nn.Module,
    data: Any,
    config: TrainConfig,
    *,
    loss_fn: nn.Module | None = None,
    device: torch.device | str | None = None,
) -> History:
    """Train ``model`` on ``data.train`` for ``config.epochs``, validating on
    ``data.val`` after each epoch.

    ``loss_fn`` (mean over the batch) replaces both the default training loss,
    ``nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)``, and the
    validation loss, plain cross-entropy. ``device`` defaults to the first GPU,
    else the CPU. Prints one line per epoch; returns the :class:`History`. In a
    process started by ``torchrun`` it trains data-parallel (see
    :mod:`cnnbook.distributed`).
    """
    device = torch.device(device) if device is not None else default_device()
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if config.compile else model
    for split in ("train", "val"):
        if len(getattr(data, split)) == 0:
            raise ValueError(
                f"the {split} loader yields no batches: is the "
                f"{split} set empty?"
            )
    train = distributed.shard(data.train)  # this process's part of every batch
    steps_per_epoch = len(train)
    if config.checkpoint:
        check_writable(config.checkpoint)
    classes = len(data.classes) if hasattr(data, "classes") else None
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch)
    amp_dtype = autocast_dtype(device) if config.amp else None
    # Only fp16 needs its loss scaled. (torch.amp.GradScaler is torch 2.3+,
    # torch.cuda.amp's is older.)
    GradScaler = (
        getattr(torch.amp, "GradScaler", None) or torch.cuda.amp.GradScaler
    )
    scaler = GradScaler(enabled=amp_dtype == torch.float16)
    criterion = loss_fn or nn.CrossEntropyLoss(
        label_smoothing=config.label_smoothing
    )
    history = History()
    fingerprint = run_fingerprint(model, data, config)
    parts = {
        "model": model,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "scaler": scaler,
    }
    start = 0
    if config.checkpoint and os.path.exists(config.checkpoint):
        start = _resume(config, fingerprint, parts, history)
    main = distributed.is_main()
    step_forward = distributed.wrap(forward, device)
    last_good = _Snapshot(model)

    for epoch in range(start, config.epochs):
        started = time.perf_counter()
        for loader in (train, data.val):
            # A plain DataLoader has none (and resumes less exactly).
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
        model.train()
        batches = _EpochRecord(steps_per_epoch, device)
        title = f"epoch {epoch + 1}/{config.epochs}"
        # The bar is fed by hand, so that the loop reads the loader itself:
        # wrapping a loader in tqdm calls iter() on it more than once.
        bar = tqdm(total=steps_per_epoch, desc=title, leave=False,
                   disable=not (config.progress and main))  # fmt: skip
        with bar:
            for step, (x, y) in enumerate(train):
                x = x.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                if config.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(
                    device.type, dtype=amp_dtype, enabled=amp_dtype is not None
                ):
                    outputs = step_forward(x)
                    # Once: a clear message, not an IndexError in the loss.
                    if epoch == start and step == 0:
                        _check_outputs(outputs, y, classes)
                    loss, logits = training_loss(
                        outputs, y, criterion, config.aux_weight
                    )
                scaler.scale(loss).backward()
                # Kept on the device: reading a number here would wait for
                # the backward pass.
                hits = (logits.argmax(1) == y).sum()
                batches.add(step, loss, hits, len(y))
                if config.grad_clip is not None:
                    # Clip the true gradients, not the fp16-scaled ones.
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(
                        model.parameters(), config.grad_clip
                    )
                scaler.step(optimizer)
                scaler.update()
                lr = optimizer.param_groups[0]["lr"]
                if config.schedule != "plateau":
                    scheduler.step()  # per batch
                bar.update()
                if (step + 1) % CHECK_EVERY == 0:
                    batches.check(last_good, title, config)  # waits
                    bar.set_postfix(loss=f"{batches.loss:.3f}",
                                    acc=f"{batches.accuracy:.1%}",
                                    refresh=False)  # fmt: skip
            batches.check(last_good, title, config)  # the epoch's last

        # Every process validates, and saves, rank 0's model.
        distributed.sync_buffers(model)
        val_loss, val_acc = evaluate(
            forward, data.val, device=device, loss_fn=loss_fn, amp=config.amp
        )
        _check_finite(val_loss, f"the validation loss after {title}", config)
        if config.schedule == "plateau":
            scheduler.step(val_loss)  # per epoch, on the validation loss
        record = dict(
            epoch=epoch + 1, train_loss=batches.loss,
            train_acc=batches.accuracy, val_loss=val_loss, val_acc=val_acc,
            lr=lr, seconds=time.perf_counter() - started,
        )  # fmt: skip
        history.records.append(record)
        if config.checkpoint and main:
            try:
                save_checkpoint(
                    config.checkpoint,
                    _state(epoch + 1, fingerprint, parts, history),
                )
            # a full disk, a folder removed: the epoch is not lost, it is in
            # memory
            except OSError as error:
                print(
                    f"warning: could not write the checkpoint "
                    f"{config.checkpoint!r} after {title} ({error}). "
                    "Training goes on with the state in memory (the model "
                    "object); free the space or fix the "
                    "path, and the next epoch's checkpoint will be written."
                )
        if main:
            # Short enough for a page of the book; the rate is in the history.
            print(f"{title}  train loss {record['train_loss']:.3f} "
                  f"acc {record['train_acc']:.1%}  val loss {val_loss:.3f} "
                  f"acc {val_acc:.1%}  {record['seconds']:.1f} s")  # fmt: skip
    return history


class _EpochRecord:
    """The loss and hits of every batch of an epoch, kept on the device.

    Reading a number from a GPU waits until it has computed everything
    queued before it; the training loop reads this record once in
    ``CHECK_EVERY`` batches instead of twice in every batch. Summed over
    the processes in distributed training.
    """

    def __init__(self, steps: int, device: torch.device) -> None:
        self.values = torch.zeros(steps, 2, device=device)  # loss, hits
        self.sizes: list[int] = []  # images per batch: known without waiting
        self.done = 0  # batches read so far
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0

    def add(self, step: int, loss: torch.Tensor, hits: torch.Tensor,
            size: int) -> None:  # fmt: skip
        self.values[step, 0] = loss.detach()
        self.values[step, 1] = hits
        self.sizes.append(size)

    def check(self, last_good: _Snapshot, title: str,
              config: TrainConfig) -> None:  # fmt: skip
        """Read the batches added since the last check, and copy the weights.

        A non-finite loss among them stops training: the model goes back to
        ``last_good``, the copy that the last check took.
        """
        if self.done == len(self.sizes):
            return
        bad = self.read()
        if bad is not None:
            last_good.restore()
            step, value = bad
            where = (f"the training loss at {title}, "
                     f"batch {step + 1}/{len(self.values)}")  # fmt: skip
            _check_finite(value, where, config)
        last_good.take()

    def read(self) -> tuple[int, float] | None:
        """Add the batches not read yet to the sums.

        Returns None, or the index and value of the first non-finite loss.
        """
        start, stop = self.done, len(self.sizes)
        sizes = torch.tensor(self.sizes[start:stop], dtype=torch.float64,
                             device=self.values.device)  # fmt: skip
        new = self.values[start:stop].double()
        # Per batch: the loss summed over its images, its hits, its images.
        new = torch.stack([new[:, 0] * sizes, new[:, 1], sizes], 1)
        rows = distributed.all_sum(new).tolist()
        for i, (loss, hits, size) in enumerate(rows):
            if not math.isfinite(loss):
                return start + i, loss / size
            self.loss_sum += loss
            self.correct += round(hits)
            self.seen += round(size)
        self.done = stop
        return None

    @property
    def loss(self) -> float:
        """The mean training loss per image of the batches read."""
        return self.loss_sum / self.seen

    @property
    def accuracy(self) -> float:
        return self.correct / self.seen


class _Snapshot:
    """A copy of a model's weights and buffers, to go back to.

    ``fit`` takes one at every check that finds the losses finite: a loss
    found non-finite up to ``CHECK_EVERY`` batches late has spoiled the
    weights since, and the model goes back to this copy.
    """

    def __init__(self, model: nn.Module) -> None:
        state = model.state_dict().values()  # tensors sharing the storage
        self.live = [t for t in state if isinstance(t, torch.Tensor)]
        self.saved = [tensor.clone() for tensor in self.live]

    def take(self) -> None:
        for saved, live in zip(self.saved, self.live):
            saved.copy_(live)

    def restore(self) -> None:
        for saved, live in zip(self.saved, self.live):
            live.copy_(saved)


def run_fingerprint(model: nn.Module, data: Any, config: TrainConfig) -> dict:
    """What identifies a training run, compared when a checkpoint resumes
    (plain values only).

    The config (less what may change between a run and its resumption), the
    model (``model.cnnbook_build`` from :func:`cnnbook.models.create`, less the
    seed its initial weights were drawn with, which the checkpoint replaces;
    for another module its class and parameter shapes) and the data
    (``data.description`` if the data has one, and the number of training
    batches).
    """
    fingerprint = {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if k not in RESUMABLE_CHANGES
    }
    build = getattr(model, "cnnbook_build", None)
    if build is not None:
        fingerprint["model"] = {k: v for k, v in build.items() if k != "seed"}
    else:
        shapes = repr(
            [(name, tuple(p.shape)) for name, p in model.state_dict().items()]
        )
        fingerprint["model"] = {
            "class": type(model).__qualname__,
            "shapes": hashlib.sha1(shapes.encode()).hexdigest(),
        }
    fingerprint["data"] = getattr(data, "description", None)
    fingerprint["train_batches"] = len(data.train)
    return fingerprint


def check_writable(path: str | os.PathLike) -> None:
    """Raise a :class:`CheckpointError` now, not after an epoch, if a
    checkpoint cannot be written at ``path``.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        # the one sure test: write a file there
        with tempfile.TemporaryFile(dir=folder):
            pass
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path!r} is a folder")
    except OSError as error:
        raise CheckpointError(
            f"cannot write the checkpoint {path!r}: {error}. Nothing was "
            "trained. "
            "Choose a file in a writable folder: checkpoint=runs/model.pt"
        ) from error


def _check_outputs(outputs: Any, y: torch.Tensor, classes: int | None) -> None:
    """The model needs an output for every class of the data (checked on the
    first batch).
    """
    logits = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
    needed = classes if classes is not None else int(y.max()) + 1
    if logits.dim() != 2 or logits.shape[1] < needed:
        raise ValueError(
            f"the model gives {tuple(logits.shape[1:])} outputs per image, "
            f"but the data has {needed} classes: "
            f"build the model with num_classes={needed}."
        )


def _check_finite(value: float, what: str, config: TrainConfig) -> None:
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"{what} is {value}: training diverged and was stopped. Try a "
            "lower learning rate "
            f"(lr={config.lr}), gradient clipping (grad_clip=1.0), or check "
            "that the inputs are "
            "normalised. The checkpoint, if any, still holds the last good "
            "epoch."
        )


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Any,
    *,
    device: torch.device | str | None = None,
    amp: bool = False,
    tta: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits (float32) and the labels of every batch of
    ``loader``, on the CPU.

    Runs in eval mode (then restores the model's mode), under autocast when
    ``amp`` and on CUDA. Of a tuple output only the main logits are kept.
    ``tta``: flip test-time augmentation, the mean of the logits of each image
    and of its mirror image (left-right).
    """
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    dtype = autocast_dtype(device) if amp else None
    was_training = model.training
    model.eval()
    if len(loader) == 0:
        raise ValueError(
            "the loader yields no batches: is its data set empty?"
        )
    all_logits, all_labels = [], []
    try:
        for x, y in loader:
            x = x.to(device)
            logits = _logits(model, x, dtype)
            if tta:
                logits = (logits + _logits(model, x.flip(3), dtype)) / 2
            all_logits.append(logits)
            all_labels.append(y)
    finally:
        model.train(was_training)
    return torch.cat(all_logits).cpu(), torch.cat(all_labels).cpu()


def _logits(model: nn.Module, x: torch.Tensor,
            dtype: torch.dtype | None) -> torch.Tensor:  # fmt: skip
    """The main logits of a batch, in float32, under autocast to ``dtype``."""
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        outputs = model(x)
    logits = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
    return logits.float()


def evaluate(
    model: nn.Module,
    loader: Any,
    *,
    device: torch.device | str | None = None,
    loss_fn: nn.Module | None = None,
    amp: bool = False,
    tta: bool = False,
) -> tuple[float, float]:
    """Mean loss per sample and accuracy (0..1) of ``model`` over ``loader``.

    The loss is ``loss_fn`` (default: plain cross-entropy) applied once to all
    logits, on the CPU, so unequal batch sizes are weighted correctly.
    ``tta``: flip test-time augmentation (see :func:`predict`).
    """
    logits, labels = predict(model, loader, device=device, amp=amp, tta=tta)
    loss = (loss_fn or nn.CrossEntropyLoss())(logits, labels)
    return loss.item(), (logits.argmax(1) == labels).float().mean().item()


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically: a crash mid-write leaves the
    previous file intact.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = path + ".tmp"
    torch.save(state, temporary)
    os.replace(temporary, path)  # atomic on POSIX and Windows


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`fit`; a :class:`CheckpointError`
    says what to do if it cannot be read.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    # weights_only: the file holds only tensors and plain types, and loading
    # runs no code
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"cannot read the checkpoint {path!r} ({type(error).__name__}: "
            f"{error}). It was left as it is: "
            "move or delete it to start training afresh, or choose another "
            "file: checkpoint=PATH."
        ) from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path!r} is not a cnnbook checkpoint (format "
            f"{CHECKPOINT_FORMAT}). It was left as it is: "
            "move or delete it, or choose another file: checkpoint=PATH."
        )
    return state


def _state(
    epochs_done: int, fingerprint: dict, parts: dict, history: History
) -> dict:
    rng = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all()
        if torch.cuda.is_available()
        else [],
    }
    state = {name: part.state_dict() for name, part in parts.items()}
    return dict(
        state,
        format=CHECKPOINT_FORMAT,
        epoch=epochs_done,
        config=fingerprint,
        rng=rng,
        history=history.to_dict(),
    )


def _flatten(values: dict, prefix: str = "") -> dict:
    """{"model": {"name": "resnet20"}} -> {"model.name": "resnet20"}: a
    difference names the one value that differs.
    """
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _resume(
    config: TrainConfig, fingerprint: dict, parts: dict, history: History
) -> int:
    """Load the checkpoint into ``parts`` and ``history``; return the number
    of epochs it holds.
    """
    path = config.checkpoint
    state = load_checkpoint(path)
    fix = (
        f"Delete {path!r} to start over, or choose another file: "
        "checkpoint=PATH."
    )
    saved, here = _flatten(state["config"]), _flatten(fingerprint)
    changed = [
        f"{k}={saved.get(k)!r} there, {here.get(k)!r} here"
        for k in sorted(saved.keys() | here.keys())
        if saved.get(k) != here.get(k)
    ]
    if changed:
        raise CheckpointError(
            f"the checkpoint {path!r} belongs to a different run: "
            f"{'; '.join(changed)}. {fix} "
            "(Only epochs may grow, to continue a finished run.)"
        )
    if state["epoch"] > config.epochs:
        raise CheckpointError(
            f"the checkpoint {path!r} already holds {state['epoch']} epochs, "
            f"more than epochs={config.epochs}. "
            f"Ask for {state['epoch']} epochs or more, or: {fix}"
        )
    try:
        parts["model"].load_state_dict(state["model"])
    except RuntimeError as error:
        raise CheckpointError(
            f"the weights in {path!r} do not fit this model ({error}). {fix}"
        ) from error
    # Fused or foreach is this device's choice (make_optimizer), not the
    # saved one's: a checkpoint may move between a CPU and a GPU.
    groups = parts["optimizer"].param_groups
    for saved, group in zip(state["optimizer"]["param_groups"], groups):
        saved.update({k: group[k] for k in ("fused", "foreach") if k in group})
    parts["optimizer"].load_state_dict(state["optimizer"])
    parts["scheduler"].load_state_dict(state["scheduler"])
    # empty when saved without fp16 (e.g. on a CPU): the fresh scaler is right
    # then
    if state["scaler"]:
        parts["scaler"].load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"]["torch"])
    if (
        torch.cuda.is_available()
        and len(state["rng"]["cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    history.records[:] = History.from_dict(state["history"]).records
    if distributed.is_main():
        print(f"resumed from {path}: {state['epoch']} of {config.epochs} "
              "epochs done")  # fmt: skip
    return state["epoch"]
