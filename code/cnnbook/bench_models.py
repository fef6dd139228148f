"""Training throughput of our models against torchvision's same architectures.

    cnnbook bench models  # the default five, 112x112, batches of 8
    cnnbook bench models --models resnet18 --steps 2 --image-size 64

For each name, our model and torchvision's model of the same architecture
train side by side in one process, on the same random batches: forward,
cross-entropy loss, backward and an SGD step, in ``channels_last`` memory
format (which matters on CPUs too). The two take turns step by step, and the
one that goes first alternates, so that a change of the machine's load (other
processes, CPU clock) hits both alike. Warm-up steps (oneDNN picks its
kernels, caches fill) are not timed. The throughput is the batch size over
the median step time, which a few slow steps do not move; the ratio is ours
over torchvision's, so above 1 means ours is faster.

"torchvision's same architecture" is the model's registered reference
(``cnnbook.models.spec(name).reference``) when it is a torchvision builder
with no declared difference: the parameter counts are equal and the tests
check it. Names without such a counterpart, or not registered (a family not
written yet), are skipped with a note. A model that takes only its paper's
input size (VGG's fully connected head: 224x224) runs at that size, for both
implementations, and the note says so.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from collections.abc import Sequence

import torch
from torch import nn

from . import models

__all__ = ["DEFAULT_MODELS", "bench_models", "main"]

DEFAULT_MODELS = (
    "resnet18",
    "resnet50",
    "densenet121",
    "vgg16",
    "resnext50_32x4d",
)
# Options that make our model compute exactly what torchvision's does. Our
# ResNet-50 strides in the first 1x1 convolution of a bottleneck, as the paper
# does; torchvision's ("ResNet v1.5") in the 3x3, which costs 6% more
# multiply-adds.
SAME_AS_TORCHVISION = {
    name: dict(stride_in="3x3")
    for name in ("resnet50", "resnet101", "resnet152")
}
TORCHVISION = "torchvision.models."


def _build_torchvision(builder: str, num_classes: int) -> nn.Module:
    module, _, function = builder.rpartition(".")
    return getattr(importlib.import_module(module), function)(
        num_classes=num_classes
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Trainer:
    """One model with its SGD optimizer; ``step`` trains on one batch and
    returns its duration in seconds.
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model = model.to(
            device, memory_format=torch.channels_last
        ).train()
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=1e-3, momentum=0.9
        )
        self.device = device

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        _sync(self.device)
        start = time.perf_counter()
        out = self.model(x)
        # Networks with auxiliary heads return several outputs in training:
        # every head gets its loss.
        outputs = out if isinstance(out, (tuple, list)) else [out]
        loss = sum(nn.functional.cross_entropy(o, y) for o in outputs)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        _sync(self.device)
        return time.perf_counter() - start


def _batch(
    size: int,
    channels: int,
    batch_size: int,
    num_classes: int,
    device: torch.device,
):
    x = torch.randn(
        batch_size, channels, size, size, device=device
    ).contiguous(memory_format=torch.channels_last)
    return x, torch.randint(num_classes, (batch_size,), device=device)


def bench_models(
    names: Sequence[str] = DEFAULT_MODELS,
    batch_size: int = 8,
    image_size: int = 112,
    steps: int = 5,
    warmup: int = 1,
    device: torch.device | str = "cpu",
) -> list[dict]:
    """Training images/s of our models and torchvision's same architectures,
    measured in turns.

    Each row: ``name``, ``torchvision`` (its builder), ``image_size``,
    ``batch_size``, ``ours`` and ``theirs`` (images/s, from the median of
    ``steps`` timed steps after ``warmup`` untimed ones, at least one: the
    first also finds the input size the model takes), ``ratio`` (ours / theirs)
    and ``note``. A skipped name has ``None`` for the numbers and the reason in
    ``note``.
    """
    if steps < 1 or warmup < 1 or batch_size < 1:
        raise ValueError(
            f"need steps, warmup and batch_size of at least 1; "
            f"got {steps}, {warmup}, {batch_size}"
        )
    device = torch.device(device)
    rows = []
    for name in names:
        row = dict(
            name=name,
            torchvision=None,
            image_size=None,
            batch_size=batch_size,
            ours=None,
            theirs=None,
            ratio=None,
            note="",
        )
        rows.append(row)
        if name not in models.names():
            row["note"] = (
                "skipped: not registered (its family is not written yet?)"
            )
            continue
        entry = models.spec(name)
        reference = entry.reference
        if reference is None or not (reference.builder or "").startswith(
            TORCHVISION
        ):
            row["note"] = (
                "skipped: torchvision has no model of this architecture"
            )
            continue
        builder = reference.builder
        if reference.difference:
            row["note"] = (
                f"skipped: torchvision's {builder[len(TORCHVISION) :]} is not "
                f"the same: {reference.why}"
            )
            continue
        channels, classes = entry.input_size[0], entry.num_classes
        torch.manual_seed(0)
        ours = _Trainer(
            models.create(name, **SAME_AS_TORCHVISION.get(name, {})), device
        )
        theirs = _Trainer(_build_torchvision(builder, classes), device)
        row["torchvision"] = builder[len(TORCHVISION) :]

        size = image_size
        batch = _batch(size, channels, batch_size, classes, device)
        try:
            ours.step(*batch)
        # our model refuses other input sizes, with a clear message; use the
        # paper's size
        except ValueError:
            size = entry.input_size[1]
            row["note"] = f"at {size}x{size}: {name} takes no other size"
            batch = _batch(size, channels, batch_size, classes, device)
            ours.step(*batch)
        row["image_size"] = size
        theirs.step(*batch)
        # the steps above were the first warm-up step of each
        for _ in range(warmup - 1):
            ours.step(*batch)
            theirs.step(*batch)

        times: dict[str, list[float]] = {"ours": [], "theirs": []}
        for i in range(steps):
            order = (
                (("ours", ours), ("theirs", theirs))
                if i % 2 == 0
                else (("theirs", theirs), ("ours", ours))
            )
            for key, trainer in order:
                times[key].append(trainer.step(*batch))
        row["ours"] = batch_size / statistics.median(times["ours"])
        row["theirs"] = batch_size / statistics.median(times["theirs"])
        row["ratio"] = row["ours"] / row["theirs"]
        # free this pair's weights and optimizer state before the next
        del ours, theirs
    return rows


def format_rows(rows: list[dict]) -> str:
    """The rows as an aligned text table."""
    header = (
        "model",
        "torchvision",
        "input",
        "ours img/s",
        "torchvision img/s",
        "ours/torchvision",
        "note",
    )
    lines = [header]
    for r in rows:
        if r["ours"] is None:
            lines.append((r["name"], "-", "-", "-", "-", "-", r["note"]))
            continue
        size = f"{r['image_size']}x{r['image_size']}"
        lines.append(
            (
                r["name"],
                r["torchvision"],
                size,
                f"{r['ours']:.1f}",
                f"{r['theirs']:.1f}",
                f"{r['ratio']:.2f}",
                r["note"],
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = (False, False, True, True, True, True, False)

    def text(line: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if n else c.ljust(w)
            for c, w, n in zip(line, widths, numeric)
        ).rstrip()

    return "\n".join(
        [text(header), text(["-" * w for w in widths]), *map(text, lines[1:])]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cnnbook bench models",
        description="Training throughput (forward, backward, SGD step; "
        "channels_last) of our models against "
        "torchvision's same architectures, measured in turns in one run.",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        metavar="NAME",
        help=f"registered names (default: {' '.join(DEFAULT_MODELS)})",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--image-size",
        type=int,
        default=112,
        help="square input side (default 112; a model that "
        "takes only its paper's size uses that)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=5,
        help="timed steps per model (default 5)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed steps per model first (at least 1, the default)",
    )
    parser.add_argument("--device", default="cpu", help="default: cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's choice)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = bench_models(
        args.models,
        args.batch_size,
        args.image_size,
        args.steps,
        args.warmup,
        args.device,
    )
    print(
        f"Training throughput on {args.device}, batches of "
        f"{args.batch_size}, {torch.get_num_threads()} torch "
        f"threads, channels_last, median of {args.steps} steps (numbers "
        "vary with the machine's load)"
    )
    print(format_rows(rows))
    return 0
