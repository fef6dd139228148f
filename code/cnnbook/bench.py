"""Benchmarks behind the numbers the book quotes: ``cnnbook bench <command>``.

Commands:

- ``train``: images per second of ``cnnbook.train.fit`` against a plain PyTorch
  training loop written the usual way, on the same model (default
  ``resnet20``), batch size and CIFAR-10 images, and their ratio
  (``bench_train``).
- ``pipeline``: images per second of torchvision's per-image input pipeline (a
  ``Dataset`` of PIL images, ``RandomCrop(32, padding=4)``,
  ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize``, a ``DataLoader`` with
  2 worker processes) against ``cnnbook.data.BatchLoader`` with ``Augment``
  (the whole training set in memory, whole batches augmented on the device), on
  the CIFAR-10 training images. Batches are only consumed (summed): no model.
- ``models``: training throughput of our ResNet-18/50, DenseNet-121, VGG-16 and
  ResNeXt-50 against torchvision's (``cnnbook.bench_models``).
- ``lenet``: training throughput of LeNet-5 (the paper's and the modern
  variant) on MNIST batches: forward, backward and an SGD step, in images/s,
  with and without channels_last.
- ``lrn``: forward and backward time of local response normalisation, PyTorch's
  ``nn.LocalResponseNorm`` against ``cnnbook.models.layers.LocalResponseNorm``,
  at the shapes of ``alexnet_cifar``'s two LRN layers.

Each command is a function that returns its numbers (for tests and notebooks)
and a ``_run_<command>`` that prints them; ``main`` dispatches. The ``cnnbook``
command hands ``cnnbook bench ...`` to ``main``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from collections.abc import Iterable, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from . import bench_models, data
from .profiles import default_device


class _PILImages(Dataset):
    """CIFAR-10 as torchvision serves it: one PIL image per item,
    transformed on access.
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, transform
    ) -> None:
        # N x H x W x C, as PIL wants
        self.images = images.permute(0, 2, 3, 1).numpy()
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def _consume(
    batches: Iterable, images: int, device: torch.device
) -> tuple[int, float]:
    """Sum the batches until ``images`` images went by: (images seen,
    seconds).
    """
    seen, total = 0, torch.zeros((), device=device)
    start = time.perf_counter()
    while seen < images:  # whole passes over `batches` until enough images
        for x, _ in batches:
            total += x.to(device).sum()
            seen += len(x)
            if seen >= images:
                break
    total.item()  # waits for the device to finish
    return seen, time.perf_counter() - start


def bench_pipeline(
    batch_size: int = 256,
    images: int = 25_000,
    device: torch.device | str | None = None,
    num_workers: int = 2,
) -> dict:
    """Images/s of the per-image DataLoader pipeline and of BatchLoader +
    Augment on CIFAR-10.

    Both run over ``images`` training images (at least; whole batches),
    shuffled and augmented alike (random 32x32 crop of the 4-pixel zero-padded
    image, random horizontal flip, normalisation). The timings include starting
    each pass (the DataLoader's worker processes start at every epoch), but not
    CUDA's one-time initialisation.
    """
    device = torch.device(device) if device is not None else default_device()
    x, y, _ = data.load_arrays("cifar10", "train")
    info = data.DATASETS["cifar10"]

    loader = DataLoader(
        _PILImages(x, y, _transforms(info)),
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
    )
    seen, seconds = _consume(loader, images, torch.device("cpu"))
    per_image = seen / seconds

    batches = data.BatchLoader(
        x,
        y,
        batch_size,
        mean=info.mean,
        std=info.std,
        shuffle=True,
        augment=data.Augment(),
        device=device,
    )
    # warm-up: CUDA's context and kernels
    _consume(batches, batch_size, device)
    seen_b, seconds_b = _consume(batches, images, device)
    batch = seen_b / seconds_b
    return {
        "device": str(device),
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        "dataloader_images": seen,
        "dataloader_images_per_s": per_image,
        "batchloader_images": seen_b,
        "batchloader_images_per_s": batch,
        "speedup": batch / per_image,
    }


def _run_pipeline(args: argparse.Namespace) -> int:
    r = bench_pipeline(
        batch_size=args.batch_size,
        images=args.images,
        device=args.device,
        num_workers=args.workers,
    )
    print(
        f"CIFAR-10 training images, batches of {r['batch_size']}, "
        f"{r['threads']} torch threads "
        f"(numbers vary with the machine's load)"
    )
    rows = [
        (
            f"torchvision DataLoader, PIL transforms, {args.workers} workers "
            "(cpu)",
            r["dataloader_images_per_s"],
        ),
        (
            f"cnnbook BatchLoader + Augment ({r['device']})",
            r["batchloader_images_per_s"],
        ),
    ]
    for label, rate in rows:
        print(f"  {label:<72} {rate:>10,.0f} images/s")
    print(f"  {'speed-up':<72} {r['speedup']:>10.1f}x")
    return 0


def _transforms(info: data.DatasetInfo) -> transforms.Compose:
    """torchvision's usual CIFAR-10 training transforms, image by image."""
    return transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(info.mean, info.std),
    ])  # fmt: skip


def bench_train(
    model: str = "resnet20",
    batch_size: int = 128,
    images: int | None = None,
    device: torch.device | str | None = None,
    num_workers: int = 2,
    rounds: int = 2,
) -> dict:
    """Training images/s of ``train.fit`` and of a plain PyTorch loop.

    Both train the model ``model`` (built with the same seed) on the first
    ``images`` CIFAR-10 training images (default: 2,048 on the CPU, 25,000
    on a GPU) in batches of ``batch_size``, with SGD and the same
    augmentation (random crop of the 4-pixel padded image, flip):

    - The plain loop is the one most tutorials write: a ``DataLoader`` with
      ``num_workers`` processes applying torchvision's per-image transforms
      to PIL images, float32, the contiguous memory format, the
      per-parameter SGD, and ``loss.item()`` and the hits read every batch.
    - ``fit`` as the chapters call it (``TrainConfig`` defaults), with
      ``cnnbook.data.BatchLoader`` and ``Augment`` on ``device``, and a
      validation set of one batch; its time includes that validation.

    Each trains ``rounds`` epochs, taking turns epoch by epoch, the one
    that goes first alternating, so that a change of the machine's load
    hits both alike. Each first trains two batches untimed (oneDNN and
    cuDNN choose their kernels then). The DataLoader's worker processes
    start in every timed epoch, as in a real run.
    """
    from . import models
    from .train import TrainConfig, fit

    device = torch.device(device) if device is not None else default_device()
    if images is None:
        images = 25_000 if device.type == "cuda" else 2048
    if images < batch_size or rounds < 1:
        raise ValueError(f"images={images}, rounds={rounds}: train on a "
                         f"batch of {batch_size} at least, at least "
                         "once.")  # fmt: skip
    x, y, _ = data.load_arrays("cifar10", "train")
    x, y = x[:images], y[:images]
    info = data.DATASETS["cifar10"]

    # The plain loop.
    net = models.create(model, seed=0).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9,
                                weight_decay=5e-4, foreach=False)  # fmt: skip
    loader = DataLoader(_PILImages(x, y, _transforms(info)), batch_size,
                        shuffle=True, num_workers=num_workers,
                        pin_memory=device.type == "cuda")  # fmt: skip

    def step(xb: torch.Tensor, yb: torch.Tensor) -> tuple[float, int]:
        xb, yb = xb.to(device), yb.to(device)
        out = net(xb)
        loss = torch.nn.functional.cross_entropy(out, yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item(), (out.argmax(1) == yb).sum().item()

    def plain_epoch() -> float:
        start = time.perf_counter()
        for xb, yb in loader:
            step(xb, yb)
        return time.perf_counter() - start

    # fit, as a chapter calls it.
    def bundle(n: int) -> data.DataBundle:
        def batches(shuffle: bool, augment: data.Augment | None, count: int):
            return data.BatchLoader(
                x[:count], y[:count], batch_size, mean=info.mean,
                std=info.std, shuffle=shuffle, augment=augment, device=device,
            )  # fmt: skip

        train = batches(True, data.Augment(), n)
        val = batches(False, None, batch_size)
        return data.DataBundle(
            "cifar10", [str(c) for c in range(10)], train, val, val,
            train.mean, train.std, (3, 32, 32),
        )  # fmt: skip

    config = TrainConfig(epochs=1, lr=0.05, progress=False)
    fit_net, whole = models.create(model, seed=0), bundle(images)

    def fit_epoch() -> float:
        start = time.perf_counter()
        fit(fit_net, whole, config, device=device)
        return time.perf_counter() - start

    warm = torch.randn(batch_size, 3, 32, 32)
    for _ in range(2):
        step(warm, y[:batch_size].long())
    seconds = {plain_epoch: 0.0, fit_epoch: 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # fit's epoch lines
        fit(fit_net, bundle(2 * batch_size), config, device=device)
        for turn in range(rounds):
            order = [plain_epoch, fit_epoch][:: 1 if turn % 2 == 0 else -1]
            for epoch in order:
                seconds[epoch] += epoch()
    plain = rounds * images / seconds[plain_epoch]
    fast = rounds * images / seconds[fit_epoch]
    return {
        "model": model, "device": str(device), "batch_size": batch_size,
        "images": images, "rounds": rounds,
        "threads": torch.get_num_threads(), "workers": num_workers,
        "plain_images_per_s": plain, "fit_images_per_s": fast,
        "ratio": fast / plain,
    }  # fmt: skip


def _run_train(args: argparse.Namespace) -> int:
    r = bench_train(args.model, args.batch_size, args.images, args.device,
                    args.workers, args.rounds)  # fmt: skip
    epochs = f"{r['rounds']} epoch" + "s" * (r["rounds"] != 1)
    print(f"{r['model']} training on {r['images']:,} CIFAR-10 images, "
          f"{epochs} each, batches of {r['batch_size']}, on "
          f"{r['device']} with {r['threads']} torch threads")  # fmt: skip
    rows = [
        (f"plain loop (DataLoader, {r['workers']} workers, PIL transforms, "
         "float32, contiguous, .item() per batch)", r["plain_images_per_s"]),
        ("cnnbook.train.fit (TrainConfig defaults, in-memory batches)",
         r["fit_images_per_s"]),
    ]  # fmt: skip
    for label, rate in rows:
        print(f"  {label:<86} {rate:>8,.0f} images/s")
    print(f"  {'ratio, fit over the plain loop':<86} {r['ratio']:>8.2f}x")
    return 0


def bench_lenet(
    batch_size: int = 128,
    images: int = 20_000,
    device: torch.device | str | None = None,
) -> list[dict]:
    """Training images/s of ``lenet5`` and ``lenet5_modern`` on MNIST, with and
    without channels_last.

    Each run trains on ``images`` images (whole batches of the real, padded
    training set, in memory) after one warm-up batch, as ``train.fit`` does
    without the validation pass.
    """
    from . import models

    device = torch.device(device) if device is not None else default_device()
    x, y, _ = data.load_arrays("mnist", "train")
    info = data.DATASETS["mnist"]
    x = torch.nn.functional.pad(x, (2, 2, 2, 2))
    loader = data.BatchLoader(
        x,
        y,
        batch_size,
        mean=info.mean,
        std=info.std,
        shuffle=True,
        device=device,
    )
    results = []
    for name in ("lenet5", "lenet5_modern"):
        for channels_last in (False, True):
            torch.manual_seed(0)
            model = models.create(name).to(device)
            fmt = (
                torch.channels_last
                if channels_last
                else torch.contiguous_format
            )
            model = model.to(memory_format=fmt)
            optimizer = torch.optim.SGD(
                model.parameters(), lr=0.001, momentum=0.9
            )

            def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
                loss = torch.nn.functional.cross_entropy(
                    model(xb.contiguous(memory_format=fmt)), yb
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            step(*next(iter(loader)))  # warm-up
            seen, start = 0, time.perf_counter()
            while seen < images:
                for xb, yb in loader:
                    step(xb, yb)
                    seen += len(xb)
                    if seen >= images:
                        break
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            results.append(
                {
                    "model": name,
                    "channels_last": channels_last,
                    "device": str(device),
                    "images": seen,
                    "images_per_s": seen / seconds,
                }
            )
    return results


def _run_lenet(args: argparse.Namespace) -> int:
    rows = bench_lenet(
        batch_size=args.batch_size, images=args.images, device=args.device
    )
    print(
        f"LeNet-5 training on MNIST, batches of {args.batch_size}, "
        f"{torch.get_num_threads()} torch threads"
    )
    for r in rows:
        layout = "channels_last" if r["channels_last"] else "contiguous"
        print(
            f"  {r['model']:<15} {layout:<14} ({r['device']})  "
            f"{r['images_per_s']:>10,.0f} images/s"
        )
    return 0


def bench_lrn(
    batch_size: int = 128,
    repeats: int = 5,
    device: torch.device | str | None = None,
) -> list[dict]:
    """Milliseconds of one forward and backward pass of PyTorch's LRN and of
    ours (AlexNet's constants).

    The inputs have the shapes of ``alexnet_cifar``'s norm1 and norm2 at width
    0.25 (the chapter's CPU runs) and 0.5 (its default): batch x maps x side x
    side, random ReLU-like values. The median of ``repeats`` timed passes after
    one warm-up.
    """
    from .models.layers import local_response_norm

    device = torch.device(device) if device is not None else default_device()
    ours = local_response_norm()
    theirs = torch.nn.LocalResponseNorm(
        ours.size, alpha=ours.alpha, beta=ours.beta, k=ours.k
    )
    results = []
    for maps, side in ((24, 32), (64, 16), (48, 32), (128, 16)):
        x = (
            torch.rand(batch_size, maps, side, side, device=device) * 10
        ).requires_grad_()
        times = {}
        for name, layer in (("pytorch", theirs), ("cnnbook", ours)):
            seconds = []
            for i in range(repeats + 1):
                start = time.perf_counter()
                layer(x).sum().backward()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i:  # the first pass warms up
                    seconds.append(time.perf_counter() - start)
            times[name] = 1000 * sorted(seconds)[len(seconds) // 2]
        results.append(
            {
                "shape": (batch_size, maps, side, side),
                "device": str(device),
                "pytorch_ms": times["pytorch"],
                "cnnbook_ms": times["cnnbook"],
                "speedup": times["pytorch"] / times["cnnbook"],
            }
        )
    return results


def _run_lrn(args: argparse.Namespace) -> int:
    rows = bench_lrn(
        batch_size=args.batch_size, repeats=args.repeats, device=args.device
    )
    print(
        f"LRN forward + backward, median of {args.repeats} passes, "
        f"{torch.get_num_threads()} torch threads"
    )
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        print(
            f"  {shape:<16} ({r['device']})  nn.LocalResponseNorm "
            f"{r['pytorch_ms']:8.1f} ms   "
            f"cnnbook {r['cnnbook_ms']:8.1f} ms   {r['speedup']:5.1f}x"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cnnbook bench",
        description="Benchmarks behind the book's numbers.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    pipeline = commands.add_parser(
        "pipeline",
        help="input pipeline: per-image DataLoader against BatchLoader",
    )
    pipeline.add_argument("--batch-size", type=int, default=256)
    pipeline.add_argument(
        "--images",
        type=int,
        default=25_000,
        help="images per pipeline (default 25,000)",
    )
    pipeline.add_argument(
        "--device",
        default=None,
        help="BatchLoader's device (default: the GPU if any)",
    )
    pipeline.add_argument(
        "--workers",
        type=int,
        default=2,
        help="DataLoader worker processes (default 2)",
    )
    pipeline.set_defaults(run=_run_pipeline)

    lenet = commands.add_parser(
        "lenet", help="LeNet-5 training throughput on MNIST"
    )
    lenet.add_argument("--batch-size", type=int, default=128)
    lenet.add_argument(
        "--images",
        type=int,
        default=20_000,
        help="training images per run (default 20,000)",
    )
    lenet.add_argument(
        "--device", default=None, help="default: the GPU if any"
    )
    lenet.set_defaults(run=_run_lenet)

    train = commands.add_parser(
        "train", help="fit against a plain PyTorch training loop"
    )
    train.add_argument(
        "--model",
        default="resnet20",
        help="a model name (default: %(default)s)",
    )
    train.add_argument(
        "--batch-size", type=int, default=128, help="default: %(default)s"
    )
    train.add_argument(
        "--images",
        type=int,
        default=None,
        help="training images per epoch (default: 2,048 on "
        "the CPU, 25,000 on a GPU)",
    )
    train.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="epochs of each loop, taken in turns (default 2)",
    )
    train.add_argument(
        "--device", default=None, help="default: the GPU if any"
    )
    train.add_argument(
        "--workers",
        type=int,
        default=2,
        help="the plain loop's DataLoader workers (default 2)",
    )
    train.set_defaults(run=_run_train)

    lrn = commands.add_parser(
        "lrn", help="local response normalisation: PyTorch's against cnnbook's"
    )
    lrn.add_argument("--batch-size", type=int, default=128)
    lrn.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed passes per layer and shape (default 5)",
    )
    lrn.add_argument("--device", default=None, help="default: the GPU if any")
    lrn.set_defaults(run=_run_lrn)
    for command in (pipeline, lenet, train, lrn):
        command.add_argument(
            "--threads",
            type=int,
            default=None,
            help="torch threads (default: torch's choice)",
        )

    # Listed here for --help; its options are parsed by cnnbook.bench_models
    # itself.
    commands.add_parser(
        "models",
        add_help=False,
        help="our models against torchvision's: models --help",
    )

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["models"]:
        return bench_models.main(argv[1:])
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args.run(args)
