"""What each CIFAR-10 model of the book costs, and what its paper reports.

The tools of the closing chapter, which sets the architectures side by side:

- :func:`cifar10_models`: every registered model that takes 32x32 colour
  images and has 10 classes, cheapest first;
- :func:`measure`: a model's parameters and multiply-adds (counted), its
  training images per second and its inference latency at batch 1 and at a
  large batch (timed on the device, the way ``train.fit`` runs it: mixed
  precision on CUDA, channels_last);
- :data:`PUBLISHED`: the CIFAR-10 test errors the papers report for the
  models they trained on CIFAR-10 (with the standard augmentation,
  "C10+"), each with its table;
- :func:`pareto_front`: the models no other model beats on both of two
  axes (cheaper and more accurate).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from . import models, summary
from .profiles import default_device
from .train import TrainConfig, autocast_dtype, make_optimizer, training_loss

__all__ = [
    "PUBLISHED", "Costs", "Published", "cifar10_models", "measure",
    "pareto_front",
]  # fmt: skip


@dataclass(frozen=True)
class Published:
    """A CIFAR-10 test error (percent, with flips and shifts) and its
    source."""

    error: float
    where: str


# The papers that trained these exact networks on CIFAR-10, as their tables
# give them (whatever each averages: ResNeXt's are means of 10 runs). The
# others of the book (AlexNet to Inception, the torchvision-shaped ResNets
# and DenseNet-121) are ImageNet networks given a CIFAR stem here: no paper
# reports them on CIFAR-10.
PUBLISHED: dict[str, Published] = {
    "nin_cifar": Published(8.81, "Lin et al. 2014, Table 1"),
    "dsn_cifar": Published(7.97, "Lee et al. 2015 (AISTATS version)"),
    "resnet20": Published(8.75, "He et al. 2016a, Table 6"),
    "resnet32": Published(7.51, "He et al. 2016a, Table 6"),
    "resnet44": Published(7.17, "He et al. 2016a, Table 6"),
    "resnet56": Published(6.97, "He et al. 2016a, Table 6"),
    "resnet110": Published(6.43, "He et al. 2016a, Table 6 (best of 5)"),
    "resnet1202": Published(7.93, "He et al. 2016a, Table 6"),
    "preact_resnet110": Published(6.37, "He et al. 2016b, Table 2"),
    "preact_resnet164": Published(5.46, "He et al. 2016b, Table 2"),
    "preact_resnet1001": Published(4.92, "He et al. 2016b, Table 3"),
    "resnet110_stochastic_depth": Published(
        5.25, "Huang et al. 2016, Table 1"
    ),
    "resnext29_8x64d": Published(3.65, "Xie et al. 2017, Table 7"),
    "resnext29_16x64d": Published(3.58, "Xie et al. 2017, Table 7"),
    "densenet40_k12": Published(5.24, "Huang et al. 2017, Table 2"),
    "densenet100_k12": Published(4.10, "Huang et al. 2017, Table 2"),
    "densenet_bc100_k12": Published(4.51, "Huang et al. 2017, Table 2"),
    "densenet_bc250_k24": Published(3.62, "Huang et al. 2017, Table 2"),
    "densenet_bc190_k40": Published(3.46, "Huang et al. 2017, Table 2"),
    "fractalnet20": Published(5.22, "Larsson et al. 2017, Table 1"),
}


def cifar10_models() -> list[str]:
    """The registered models for 32x32 colour images and 10 classes, by
    multiply-adds per image (cheapest first), then by name."""
    names = [
        name
        for name in models.names()
        if models.spec(name).input_size == (3, 32, 32)
        and models.spec(name).num_classes == 10
    ]
    return sorted(names, key=lambda name: (_macs(name), name))


def _macs(name: str) -> int:
    with torch.device("meta"):  # no memory, no initialisation
        model = models.create(name)
    return summary.count_macs(model, (3, 32, 32), device="meta")


@dataclass(frozen=True)
class Costs:
    """What one model costs: counted, then timed on ``device``.

    ``train_images_per_s``: training throughput (forward, loss, backward,
    SGD step) in batches of ``train_batch_size``; ``latency_ms``: one
    image through the model in eval mode; ``batch_ms``: a batch of
    ``batch_size`` images, from which ``images_per_s``.
    """

    name: str
    params: int
    macs: int
    train_images_per_s: float
    latency_ms: float
    batch_ms: float
    batch_size: int
    train_batch_size: int
    device: str

    @property
    def images_per_s(self) -> float:
        """Inference throughput at ``batch_size``."""
        return self.batch_size / (self.batch_ms / 1000)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds(run: Callable[[], object], repeats: int,
             device: torch.device) -> float:  # fmt: skip
    """The median duration of ``repeats`` calls of ``run``, after one
    untimed call (oneDNN and cuDNN choose their kernels, memory is
    allocated)."""
    run()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    name: str,
    *,
    batch_size: int = 256,
    train_batch_size: int | None = None,
    repeats: int = 3,
    device: torch.device | str | None = None,
) -> Costs:
    """Count and time the model ``name`` (random weights, random images).

    Latencies are medians of ``repeats`` timed calls after a warm-up call
    (at least three for one image: a call of a few milliseconds is at the
    mercy of the scheduler, and three cost little), in eval mode under
    ``torch.inference_mode``; the training throughput
    is ``train_batch_size`` (default ``batch_size``) over the median time
    of a training step, with the optimizer and precision of ``train.fit``
    (SGD, mixed precision on CUDA, channels_last).
    """
    if batch_size < 1 or repeats < 1:
        raise ValueError(
            f"batch_size={batch_size} and repeats={repeats} must be at least 1"
        )
    train_batch_size = train_batch_size or batch_size
    device = torch.device(device) if device is not None else default_device()
    model = models.create(name, seed=0)
    params, macs = summary.count_params(model), _macs(name)
    model.to(device, memory_format=torch.channels_last)
    dtype = autocast_dtype(device)

    def images(n: int) -> torch.Tensor:
        x = torch.randn(n, 3, 32, 32, device=device)
        return x.contiguous(memory_format=torch.channels_last)

    x = images(train_batch_size)
    y = torch.zeros(train_batch_size, dtype=torch.long, device=device)
    optimizer = make_optimizer(model, TrainConfig(lr=1e-3))
    loss_fn = nn.CrossEntropyLoss()

    def train_step() -> None:
        with torch.autocast(device.type, dtype, enabled=dtype is not None):
            loss, _ = training_loss(model(x), y, loss_fn, aux_weight=0.3)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    step = _seconds(train_step, repeats, device)
    model.eval()

    def infer(batch: torch.Tensor) -> Callable[[], object]:
        def run() -> object:
            with (
                torch.inference_mode(),
                torch.autocast(device.type, dtype, enabled=dtype is not None),
            ):
                return model(batch)

        return run

    one = _seconds(infer(images(1)), max(repeats, 3), device)
    many = _seconds(infer(images(batch_size)), repeats, device)
    return Costs(name, params, macs, train_batch_size / step, one * 1000,
                 many * 1000, batch_size, train_batch_size,
                 str(device))  # fmt: skip


def pareto_front(costs: Sequence[float], scores: Sequence[float]) -> list[int]:
    """The indices of the points no other point dominates, by cost.

    A point is dominated when another costs no more and scores no less,
    and is better in one of the two (lower cost or higher score): on the
    front, each point costs more than the one before it and scores higher.
    """
    if len(costs) != len(scores):
        raise ValueError(
            f"{len(costs)} costs against {len(scores)} scores: give one "
            "of each per point"
        )
    front, best = [], float("-inf")
    for i in sorted(range(len(costs)), key=lambda i: (costs[i], -scores[i])):
        if scores[i] > best:
            front.append(i)
            best = scores[i]
    return front
