"""Experiments that change one thing in a network: train, compare, report.

An experiment of a chapter trains a variant (another activation, pooling,
augmentation) with the same data, seed and budget as a base network, and
compares the two on the same test images with :mod:`cnnbook.stats`:

    >>> base = experiments.train_variant("base", make_base, cifar, config)
    >>> lrn = experiments.train_variant("+ LRN", make_lrn, cifar, config)
    >>> experiments.compare(lrn, base).verdict
    '+ LRN and base are within the noise of each other: ...'

``compare(a, b, on="train")`` compares them on the training images (which
fits them better), ``on="gap"`` compares their train-test gaps (which
overfits less), both through :mod:`cnnbook.stats`.

The paper's Fig. 1 is another kind of experiment: how many steps of plain
SGD a network needs to bring its training error down to a level.
:func:`sgd_until` trains as the paper did (mean-centred raw pixels, SGD
with momentum 0.9, batches of 128, no regularisation) and records the
training error batch by batch; :func:`fastest_lr` searches the learning
rate that reaches the level in the fewest steps, one search per network,
since the paper chose each network's learning rate "independently to make
training as fast as possible".

First written for the AlexNet chapter; the helpers are general.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from typing import Callable

import torch
from matplotlib.figure import Figure
from torch import nn

from . import data, plots, stats, train

__all__ = [
    "Curve",
    "Run",
    "colourfulness",
    "compare",
    "fastest_lr",
    "report",
    "saturated_share",
    "saturated_shares",
    "sgd_until",
    "train_variant",
    "with_augment",
]


def with_augment(
    bundle: data.DataBundle, augment: data.Augment | None
) -> data.DataBundle:
    """The same images, with another training augmentation (None: none)."""
    loader = copy.copy(bundle.train)
    loader.augment = (
        augment.with_basis(bundle.train.images) if augment else None
    )
    return dataclasses.replace(bundle, train=loader)


@dataclasses.dataclass
class Run:
    """One trained variant: its history and, image by image, where it was
    right on the training images (evaluated after training, no dropout, no
    augmentation) and on the test images."""

    label: str
    model: nn.Module
    history: train.History
    train_correct: torch.Tensor  # bool, one per training image
    test_correct: torch.Tensor  # bool, one per test image
    seconds_per_epoch: float

    @property
    def train_acc(self) -> float:
        return self.train_correct.float().mean().item()

    @property
    def test_acc(self) -> float:
        return self.test_correct.float().mean().item()

    @property
    def gap(self) -> float:
        """Training minus test accuracy: how much the network overfits."""
        return self.train_acc - self.test_acc


def _correct(model: nn.Module, loader) -> torch.Tensor:
    logits, labels = train.predict(model, loader)
    return logits.argmax(1) == labels


def train_variant(
    label: str,
    build: Callable[[], nn.Module],
    bundle: data.DataBundle,
    config: train.TrainConfig,
    augment: data.Augment | None = None,
) -> Run:
    """Build a model with ``build()`` (seeded with ``config.seed``, so that
    variants of one architecture start from the same weights), train it on
    ``bundle`` with the training augmentation ``augment``, and evaluate it
    on the training and the test images."""
    print(label)
    torch.manual_seed(config.seed)
    model = build()
    history = train.fit(model, with_augment(bundle, augment), config)
    train_images = data.BatchLoader(
        bundle.train.images,
        bundle.train.labels,
        256,
        mean=bundle.mean,
        std=bundle.std,
        shuffle=False,  # in order, not augmented
        device=bundle.train.device,
    )
    return Run(
        label=label,
        model=model,
        history=history,
        train_correct=_correct(model, train_images),
        test_correct=_correct(model, bundle.test),
        seconds_per_epoch=sum(history["seconds"]) / len(history),
    )


def compare(
    a: Run,
    b: Run,
    on: str = "test",
    names: tuple[str, str] | None = None,
) -> stats.Comparison | stats.GapComparison:
    """The paired test of two runs: ``on="test"`` compares them on the
    test images, ``on="train"`` on the training images (which network fits,
    or memorises, them better), ``on="gap"`` compares their train-test gaps
    (which overfits less). ``names`` replace the runs' labels in the
    verdict."""
    names = names or (a.label, b.label)
    if on == "test":
        return stats.compare(a.test_correct, b.test_correct, names=names)
    if on == "train":
        return stats.compare(a.train_correct, b.train_correct, names=names)
    if on == "gap":
        return stats.compare_gaps(a.train_correct, b.train_correct,
                                  a.test_correct, b.test_correct,
                                  names=names)  # fmt: skip
    raise ValueError(f"on={on!r}: compare on 'test', 'train' or 'gap'")


def report(*runs: Run) -> Figure:
    """Print a table of ``runs`` (accuracies, gap, time); return their
    learning curves."""
    if not runs:
        raise ValueError("report needs at least one run")
    print(
        f"{'run':26s} {'train acc':>9s} {'test acc':>8s} {'gap':>6s} "
        f"{'s/epoch':>7s}"
    )
    for r in runs:
        print(
            f"{r.label:26s} {r.train_acc:9.1%} {r.test_acc:8.1%} "
            f"{100 * r.gap:+6.1f} {r.seconds_per_epoch:7.1f}"
        )
    return plots.plot_history(
        *(r.history for r in runs), labels=[r.label for r in runs]
    )


def saturated_share(
    model: nn.Module, images: torch.Tensor, level: float = 0.95
) -> float:
    """The share of the outputs of the model's tanh units beyond
    ``level`` in absolute value (where the gradient 1 - tanh^2 is below
    1 - level^2), on ``images``."""
    shares, counts = _saturation(model, images, level)
    total = sum(counts.values())
    return sum(shares[k] * counts[k] for k in shares) / total


def saturated_shares(
    model: nn.Module, images: torch.Tensor, level: float = 0.95
) -> dict[str, float]:
    """:func:`saturated_share` for each tanh layer, by its name in the
    model (e.g. ``"features.act1"``)."""
    return _saturation(model, images, level)[0]


def _saturation(model, images, level):
    shares: dict[str, float] = {}
    counts: dict[str, int] = {}

    def keep(name):
        def hook(module, inputs, output):
            out = output.detach().abs()
            shares[name] = (out > level).float().mean().item()
            counts[name] = out.numel()

        return hook

    hooks = [
        module.register_forward_hook(keep(name))
        for name, module in model.named_modules()
        if isinstance(module, nn.Tanh)
    ]
    if not hooks:
        raise ValueError("saturated_share: the model has no nn.Tanh units")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(images.to(next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return shares, counts


def colourfulness(weight: torch.Tensor) -> torch.Tensor:
    """Per kernel of an out x 3 x k x k weight: the standard deviation
    across the three colour channels, averaged over the kernel's pixels,
    over the standard deviation of all its weights. A kernel with the same
    weights in R, G and B (a grey edge detector) scores 0."""
    if weight.dim() != 4 or weight.shape[1] != 3:
        raise ValueError(
            "colourfulness needs RGB kernels, out x 3 x k x k, got shape "
            f"{tuple(weight.shape)}"
        )
    across = weight.std(dim=1, correction=0).mean(dim=(1, 2))
    return across / weight.flatten(1).std(dim=1, correction=0)


@dataclasses.dataclass
class Curve:
    """One run of :func:`sgd_until`: the training error, batch by batch."""

    lr: float
    errors: list[float]  # the error of each batch, in order
    window: int  # batches whose mean is the training error
    level: float  # the training error the run was to reach
    steps_per_epoch: int
    outcome: str  # "reached", "diverged", "budget" or "slower"
    seconds: float
    model: nn.Module | None = dataclasses.field(default=None, repr=False)

    def training_error(self) -> list[float]:
        """After each step, the mean error of the last ``window`` batches
        (of all batches so far during the first ``window`` steps)."""
        sums = [0.0, *torch.tensor(self.errors).cumsum(0).tolist()]
        return [
            (sums[i] - sums[max(0, i - self.window)]) / min(i, self.window)
            for i in range(1, len(sums))
        ]

    def steps_to(self, level: float) -> int | None:
        """The first step after which the training error is at most
        ``level`` (counted from the first full window); None if never."""
        error = self.training_error()
        return next(
            (
                i + 1
                for i in range(self.window - 1, len(error))
                if error[i] <= level
            ),
            None,
        )

    @property
    def steps(self) -> int | None:
        """The steps to the run's own level (:meth:`steps_to`)."""
        return self.steps_to(self.level)

    @property
    def epochs(self) -> float | None:
        """:attr:`steps` in epochs (passes over the training images)."""
        steps = self.steps
        return None if steps is None else steps / self.steps_per_epoch


class _SGDRun:
    """One network trained step by step as in :func:`sgd_until`."""

    def __init__(self, model, images, labels, lr, level, batch_size,
                 momentum, window, seed, device):  # fmt: skip
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                "images must be uint8 N x C x H x W (raw pixels), got "
                f"{images.dtype} of shape {tuple(images.shape)}"
            )
        if labels.shape != (len(images),):
            raise ValueError(
                "labels must have one entry per image: "
                f"{tuple(labels.shape)} for {len(images)} images"
            )
        if lr <= 0 or batch_size < 1:
            raise ValueError(
                f"lr={lr} and batch_size={batch_size} must be positive"
            )
        self.device = torch.device(device or next(model.parameters()).device)
        self.model = model.to(self.device).train()
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.mean = self.images.float().mean(0)  # the mean image
        self.batch_size, self.lr, self.level = batch_size, lr, level
        self.steps_per_epoch = math.ceil(len(images) / batch_size)
        self.window = window or min(
            self.steps_per_epoch, math.ceil(10_000 / batch_size)
        )
        self.optimizer = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=0.0
        )
        self.generator = torch.Generator().manual_seed(seed)
        self.check_every = max(1, self.window // 8)  # syncs with a GPU
        self.errors: list[torch.Tensor] = []  # (error, loss) per batch
        self.outcome: str | None = None  # None while it runs
        self.seconds = 0.0

    def step(self) -> None:
        """One batch; sets ``outcome`` when the level is reached or the
        loss is not finite."""
        start = time.perf_counter()
        step = len(self.errors)
        if step % self.steps_per_epoch == 0:
            self.order = torch.randperm(
                len(self.images), generator=self.generator
            ).to(self.device)
        first = (step % self.steps_per_epoch) * self.batch_size
        index = self.order[first : first + self.batch_size]
        x, y = self.images[index].float() - self.mean, self.labels[index]
        logits = self.model(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        error = (logits.argmax(1) != y).float().mean()
        self.errors.append(torch.stack([error, loss.detach()]))
        if len(self.errors) % self.check_every == 0:
            self.check()
        self.seconds += time.perf_counter() - start

    def check(self) -> None:
        recent = torch.stack(self.errors[-self.window :]).cpu()
        if not recent[:, 1].isfinite().all():
            self.outcome = "diverged"
        elif (
            len(self.errors) >= self.window
            and recent[:, 0].mean() <= self.level
        ):
            self.outcome = "reached"

    def curve(self, outcome: str) -> Curve:
        errors = torch.stack(self.errors)[:, 0].tolist() if self.errors else []
        return Curve(self.lr, errors, self.window, self.level,
                     self.steps_per_epoch, self.outcome or outcome,
                     self.seconds, self.model)  # fmt: skip


def sgd_until(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    lr: float,
    level: float,
    max_steps: int,
    batch_size: int = 128,
    momentum: float = 0.9,
    window: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Curve:
    """Train ``model`` as the paper did until its training error is at most
    ``level``, for at most ``max_steps`` steps.

    The paper's recipe (Sec. 2 and 5, Fig. 1): the raw pixel values (0 to
    255) minus the training set's mean image, mini-batches of 128 in a
    random order (seeded by ``seed``), SGD with momentum 0.9 on the mean
    loss of a batch, a constant learning rate ``lr``, no weight decay and
    no other regularisation. ``images`` are uint8, N x C x H x W. The
    training error is the mean error of the last ``window`` batches as the
    network trains (default: one epoch, at most 10,000 images, as in
    cuda-convnet's reports). The run stops at the level (outcome
    "reached"), at ``max_steps`` ("budget"), or when the loss is no longer
    finite ("diverged"). The model trains on ``device`` (default: where
    its parameters are).
    """
    if max_steps < 1:
        raise ValueError(f"max_steps={max_steps} must be positive")
    run = _SGDRun(model, images, labels, lr, level, batch_size, momentum,
                  window, seed, device)  # fmt: skip
    while run.outcome is None and len(run.errors) < max_steps:
        run.step()
    if run.outcome is None:
        run.check()  # the last steps, between two checks
    return run.curve("budget")


def fastest_lr(
    build: Callable[[], nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    level: float,
    max_steps: int,
    start: float = 0.01,
    factor: float = math.sqrt(10),
    max_tries: int = 6,
    seed: int = 0,
    **options,
) -> tuple[Curve | None, list[Curve]]:
    """The learning rate that brings the training error down to ``level``
    in the fewest steps, on a grid of ``start`` times powers of ``factor``.

    ``start`` and its two neighbours train side by side, batch by batch,
    until one of them reaches the level; the others stop there (outcome
    "slower": they could not have been faster). If a neighbour won, the
    search goes on in its direction, one rate at a time, each stopped as
    soon as it can no longer beat the fastest so far, until a rate is not
    faster or ``max_tries`` rates were tried. ``build()`` makes a fresh
    model; every rate starts from the same weights (``build`` is called
    after ``torch.manual_seed(seed)``) and sees the same batches.
    ``options`` go to :func:`sgd_until`. Returns the fastest run (None if
    no rate reached the level within ``max_steps``) and every run, by
    learning rate.
    """
    if start <= 0 or factor <= 1 or max_tries < 3 or max_steps < 1:
        raise ValueError(
            f"start={start} must be positive, factor={factor} above 1, "
            f"max_tries={max_tries} at least 3 and max_steps={max_steps} "
            "at least 1"
        )
    batch_size = options.pop("batch_size", 128)
    momentum = options.pop("momentum", 0.9)
    window, device = options.pop("window", None), options.pop("device", None)
    if options:
        raise TypeError(f"fastest_lr: unexpected options {sorted(options)}")
    curves: dict[int, Curve] = {}  # grid position -> run

    def side_by_side(positions: list[int], cap: int) -> None:
        runs = {}
        for k in positions:
            torch.manual_seed(seed)
            runs[k] = _SGDRun(build(), images, labels, start * factor**k,
                              level, batch_size, momentum, window, seed,
                              device)  # fmt: skip
        for _ in range(cap):
            running = [r for r in runs.values() if r.outcome is None]
            if not running or any(
                r.outcome == "reached" for r in runs.values()
            ):
                break
            for r in running:
                r.step()
        for r in runs.values():
            if r.outcome is None:
                r.check()
        won = any(r.outcome == "reached" for r in runs.values())
        for k, r in runs.items():
            curves[k] = r.curve(
                "slower" if won or cap < max_steps else "budget"
            )

    def steps_of(k: int) -> float:
        steps = curves[k].steps if k in curves else None
        return math.inf if steps is None else steps

    def fastest() -> Curve | None:
        reached = [c for c in curves.values() if c.steps is not None]
        return min(reached, key=lambda c: (c.steps, c.lr), default=None)

    side_by_side([-1, 0, 1], max_steps)
    best = fastest()
    if best is not None and best.lr != start:
        step = 1 if best.lr > start else -1  # the faster direction
        k = step
        while len(curves) < max_tries and steps_of(k) < steps_of(k - step):
            k += step
            side_by_side([k], best.steps)
            best = fastest()
    return best, [curves[k] for k in sorted(curves)]
