"""Batches on the device, seeded splits, and ``load``: a data set as train /
validation / test loaders.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..profiles import default_device
from .augment import Augment
from .cache import Splits
from .folders import PathLike, _archive_stem, _folder_arrays
from .sources import DATASETS, _load_split


class BatchLoader:
    """Batches of a whole split held in memory (on the GPU when ``device`` is
    CUDA).

    Each pass yields ``(x, y)``: ``x`` float32 N x C x H x W normalised as
    ``(pixel / 255 - mean) / std``, ``y`` int64 labels, both on ``device``.
    Shuffling and augmentation of epoch ``e`` are a pure function of ``(seed,
    e)`` drawn from a private ``torch.Generator``, never the global RNG:
    ``set_epoch(e)`` before a pass reproduces epoch ``e`` exactly (for
    resuming). Each pass then moves on to the next epoch by itself.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        mean: Sequence[float] | torch.Tensor,
        std: Sequence[float] | torch.Tensor,
        shuffle: bool,
        augment: Augment | None = None,
        device: torch.device | str | None = None,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 N x C x H x W, not "
                f"{images.dtype} of shape {tuple(images.shape)}."
            )
        if labels.shape != (len(images),):
            raise ValueError(
                f"labels must have one entry per image: "
                f"{tuple(labels.shape)} for {len(images)} images."
            )
        if batch_size < 1:
            raise ValueError(
                f"batch_size must be at least 1, not {batch_size}."
            )
        self.device = (
            torch.device(device) if device is not None else default_device()
        )
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        channels = images.shape[1]
        self.mean = (
            torch.as_tensor(mean, dtype=torch.float32, device=self.device)
            .flatten()
            .expand(channels)
            .clone()
        )
        self.std = (
            torch.as_tensor(std, dtype=torch.float32, device=self.device)
            .flatten()
            .expand(channels)
            .clone()
        )
        # (x / 255 - mean) / std  ==  x * scale + offset: one fused operation
        # per batch.
        self._scale = (1 / (255 * self.std)).view(1, channels, 1, 1)
        self._offset = (-self.mean / self.std).view(1, channels, 1, 1)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0  # the epoch of the next pass

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        """The number of batches in one pass."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch``: the same shuffle and
        augmentation every time.
        """
        self.epoch = epoch

    def _generator(self, epoch: int) -> torch.Generator:
        # SeedSequence mixes (seed, epoch) into independent streams: no two
        # pairs collide.
        state = np.random.SeedSequence([self.seed, epoch]).generate_state(
            1, np.uint64
        )[0]
        return torch.Generator(device=self.device).manual_seed(int(state) >> 1)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # A generator function: the epoch is drawn and advanced when the first
        # batch is taken, not when iter() is called, so wrappers that call
        # iter() without consuming (tqdm does) cannot skip an epoch.
        generator = self._generator(self.epoch)
        self.epoch += 1
        order = (
            torch.randperm(
                self.num_samples, generator=generator, device=self.device
            )
            if self.shuffle
            else None
        )
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = (
                slice(start, start + self.batch_size)
                if order is None
                else order[start : start + self.batch_size]
            )
            x, y = self.images[index], self.labels[index]
            if self.augment is not None:
                x = self.augment(x, generator)
            # uint8 in, float32 out
            yield torch.addcmul(self._offset, x, self._scale), y

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.images.shape[1:]))
        order = "shuffled" if self.shuffle else "in order"
        return (
            f"BatchLoader({self.num_samples:,} images of {shape} on "
            f"{self.device}, batches of {self.batch_size}, "
            f"{order}, augment={self.augment})"
        )


# --------------------------------------------------------------------------
# Splits and the bundle of loaders
# --------------------------------------------------------------------------


def stratified_split(
    labels: torch.Tensor, k: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick ``k`` random indices that keep each class's share; return (picked,
    rest), both sorted.

    Each image gets its class-relative position in a random order, (rank within
    its class + 1/2) / class size; the ``k`` smallest positions take about ``k
    * share`` of every class (exactly, when that is whole).
    """
    labels = labels.cpu()
    n = len(labels)
    if not 0 <= k <= n:
        raise ValueError(f"Cannot pick {k} of {n} images.")
    perm = torch.randperm(n, generator=generator)
    shuffled = labels[perm]
    counts = torch.bincount(shuffled)
    # grouped by class, random order inside each
    by_class = torch.argsort(shuffled, stable=True)
    # where each class starts in by_class
    first = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.int64)
    rank[by_class] = torch.arange(n) - first[shuffled[by_class]]
    position = (rank + 0.5) / counts[shuffled]
    chosen = torch.argsort(position, stable=True)
    return perm[chosen[:k]].sort().values, perm[chosen[k:]].sort().values


def _pixel_mean_std(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images, in [0, 1] units.

    From a histogram of the 256 values per channel: exact, in float64, and
    without a float copy of the whole data set.
    """
    values = torch.arange(256, dtype=torch.float64) / 255
    channels = images.transpose(0, 1).flatten(1).cpu()  # C x (N H W)
    hist = torch.stack(
        [torch.bincount(channel, minlength=256) for channel in channels]
    ).double()
    count = hist.sum(1)
    mean = (hist * values).sum(1) / count
    var = (hist * (values - mean[:, None]) ** 2).sum(1) / count
    # a blank channel must not divide by zero
    return mean.float(), var.sqrt().float().clamp_min(1e-3)


def _whole(name: str, value: object, minimum: int, none: str = "") -> None:
    """Refuse ``value`` unless it is a whole number >= ``minimum`` (or None,
    if ``none`` says what None means).
    """
    if value is None and none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        alternative = f", or None ({none})" if none else ""
        raise ValueError(
            f"{name}={value!r}: must be a whole number of at "
            f"least {minimum}{alternative}."
        )


def _check_val_size(val_size: object) -> None:
    """Refuse a ``val_size`` that is neither a count of at least 1 nor a
    fraction strictly between 0 and 1.
    """
    count = (
        isinstance(val_size, numbers.Integral)
        and not isinstance(val_size, bool)
        and val_size >= 1
    )
    fraction = isinstance(val_size, float) and 0 < val_size < 1
    if not (count or fraction):
        raise ValueError(
            f"val_size={val_size!r}: the validation split needs at least one "
            "image: give a count of at least 1 "
            "(e.g. val_size=5000) or a fraction between 0 and 1 (e.g. "
            "val_size=0.1)."
        )


def _val_count(val_size: int | float, n: int) -> int:
    """How many of ``n`` training images ``val_size`` holds out: at least
    one, and not all of them.
    """
    _check_val_size(val_size)
    if n < 2:
        raise ValueError(
            f"{n} training image(s) are too few to hold out a "
            "validation split and still train."
        )
    k = round(val_size * n) if isinstance(val_size, float) else int(val_size)
    example = f"val_size={max(1, n // 10)}"
    if k < 1:
        raise ValueError(
            f"val_size={val_size} of {n:,} training images is no "
            "image: use a larger fraction or "
            f"a count, e.g. {example}."
        )
    if k >= n:
        raise ValueError(
            f"val_size={val_size} leaves no training images out "
            f"of {n:,}: use a smaller val_size, "
            f"e.g. {example}."
        )
    return k


@dataclass
class DataBundle:
    """Train, validation and test loaders of one data set, and what a
    chapter needs to show them.
    """

    name: str
    classes: list[str]
    train: BatchLoader
    val: BatchLoader
    test: BatchLoader
    mean: torch.Tensor  # (C,), the normalisation the loaders apply
    std: torch.Tensor
    input_size: tuple[int, int, int]  # C x H x W of a batch's images
    # What identifies the data, in plain JSON values, for a training checkpoint
    # to compare before resuming; filled in by load (see _describe), empty for
    # a bundle assembled by hand.
    description: dict = field(default_factory=dict)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (C x H x W or N x C x H x W) back to [0, 1],
        for plotting.
        """
        mean, std = (
            self.mean.to(x.device).view(-1, 1, 1),
            self.std.to(x.device).view(-1, 1, 1),
        )
        return (x * std + mean).clamp(0, 1)

    def __str__(self) -> str:
        shape = "x".join(map(str, self.input_size))
        return (
            f"{self.name}: {self.train.num_samples:,} train / "
            f"{self.val.num_samples:,} validation / "
            f"{self.test.num_samples:,} test images of {shape}, "
            f"{len(self.classes)} classes, "
            f"on {self.train.device}; training augmentation: "
            f"{self.train.augment}"
        )


def load(
    name: str,
    *,
    batch_size: int = 128,
    train_size: int | None = None,
    val_size: int | float = 5000,
    test_size: int | None = None,
    pad: int = 0,
    augment: Augment | bool | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    root: PathLike | None = None,
    download: bool = True,
    eval_batch_size: int | None = None,
    image_size: int | None = None,
) -> DataBundle:
    """Load a data set as train / validation / test loaders on ``device``
    (default: the GPU if any).

    - ``name``: a key of ``DATASETS``, or the path of an image folder or
      archive (see ``load_image_folder``). Its ``test/`` split is used when
      present; otherwise a stratified, seeded 20% is held out as the test set.
    - ``val_size`` images (at least 1), or a fraction of the training set
      (between 0 and 1, e.g. 0.1), are held out of the training set, stratified
      by class and seeded: the same ``seed`` gives the same split whatever
      ``train_size`` is. (An image folder's own ``val/`` split, if it has one,
      is used instead, and ``val_size`` ignored.)
    - ``train_size`` / ``test_size``: at most this many images (at least 1) of
      the rest, a seeded stratified subset (class-balanced for balanced data
      sets), for short runs; None keeps all.
    - ``pad``: zero pixels added on every side once, at load (``pad=2`` makes
      MNIST's 28x28 digits LeNet-5's 32x32 input).
    - ``augment``: training augmentation; None means the data set's default
      (crop and flip for CIFAR-10, none for MNIST, Fashion-MNIST and image
      folders), True ``Augment()``, False none. An ``Augment`` with
      ``pca_lighting`` gets its colour basis from the training split.
    - Normalisation: the data set's standard mean/std constants for named data
      sets (``DATASETS``); for image folders, computed on the training split.
    - Validation and test loaders never shuffle nor augment; their batches are
      ``eval_batch_size`` (default twice ``batch_size``) large.
    - ``image_size`` (image folders only): scale every image so that its
      shorter side is this many pixels and keep the centre square, for a folder
      whose images differ in size; None reads them as they are.

    Sizes and options out of range are refused before any data is read.
    """
    _whole("batch_size", batch_size, 1)
    _whole("eval_batch_size", eval_batch_size, 1, "twice batch_size")
    _whole("train_size", train_size, 1, "all the training images")
    _whole("test_size", test_size, 1, "the whole test set")
    _whole("pad", pad, 0)
    _whole("seed", seed, 0)
    _whole("image_size", image_size, 1, "the images as they are")
    generator = torch.Generator().manual_seed(seed)
    if name in DATASETS:
        if image_size is not None:
            raise ValueError(
                f"image_size={image_size} is for image folders; "
                f"{name}'s images are used as they are "
                "(pad=... adds a border)."
            )
        _check_val_size(val_size)  # now, not after decoding the data set
        info = DATASETS[name]
        (x_train, y_train, classes), train_digest = _load_split(
            name, "train", root, download
        )
        (x_test, y_test, _), test_digest = _load_split(
            name, "test", root, download
        )
        digests = [train_digest, test_digest]
        x_val = y_val = None
        mean, std, default_augment = info.mean, info.std, info.augment
    else:
        path = Path(name).expanduser()
        if not path.exists():
            close = difflib.get_close_matches(str(name), DATASETS, n=3)
            hint = (
                f" Did you mean {' or '.join(map(repr, close))}?"
                if close
                else ""
            )
            raise ValueError(
                f"Unknown data set {name!r}: use one of "
                f"{', '.join(DATASETS)}, or the path of an image folder "
                f"or archive (there is no file or folder "
                f"{path.resolve()}).{hint}"
            )
        name = _archive_stem(path)
        splits, classes, digest = _folder_splits(path, generator, image_size)
        digests = [digest]
        (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
        x_val, y_val = splits.get("val", (None, None))
        mean = std = None
        default_augment = None

    # Indices first, images copied once: a small train_size copies only its
    # images.
    train_index = torch.arange(len(y_train))
    if x_val is None:
        val_index, train_index = stratified_split(
            y_train, _val_count(val_size, len(y_train)), generator
        )
        x_val, y_val = x_train[val_index], y_train[val_index]
    if train_size is not None and train_size < len(train_index):
        keep, _ = stratified_split(y_train[train_index], train_size, generator)
        train_index = train_index[keep]
    x_train, y_train = x_train[train_index], y_train[train_index]
    if test_size is not None and test_size < len(y_test):
        keep, _ = stratified_split(y_test, test_size, generator)
        x_test, y_test = x_test[keep], y_test[keep]
    if pad:
        x_train, x_val, x_test = (
            F.pad(x, (pad, pad, pad, pad)) for x in (x_train, x_val, x_test)
        )
    if mean is None:  # an image folder: the statistics of its training split
        mean, std = _pixel_mean_std(x_train)

    if augment is None:
        augment = default_augment
    elif isinstance(augment, bool):
        augment = Augment() if augment else None
    if augment is not None:
        # the PCA colour shift's basis, from the training split only
        augment = augment.with_basis(x_train)
    device = torch.device(device) if device is not None else default_device()
    eval_batch_size = eval_batch_size or 2 * batch_size
    common = {"mean": mean, "std": std, "device": device, "seed": seed}
    train = BatchLoader(
        x_train, y_train, batch_size, shuffle=True, augment=augment, **common
    )
    val = BatchLoader(x_val, y_val, eval_batch_size, shuffle=False, **common)
    test = BatchLoader(
        x_test, y_test, eval_batch_size, shuffle=False, **common
    )
    bundle = DataBundle(
        name,
        list(classes),
        train,
        val,
        test,
        train.mean,
        train.std,
        tuple(x_train.shape[1:]),
    )
    bundle.description = _describe(bundle, digests, pad)
    return bundle


def _describe(bundle: DataBundle, digests: list[str], pad: int) -> dict:
    """``DataBundle.description``: the data, how it was split, batched and
    augmented.

    ``source`` is a digest of the decoded arrays the splits were drawn from:
    the same for the same images, wherever their files are and whenever they
    were downloaded. With it, the split sizes, ``pad``, the ``seed`` of the
    split and of every epoch's order and augmentation, ``batch_size`` and the
    training augmentation: equal descriptions mean the same batches (on the
    same kind of device: CPU and CUDA generators draw different numbers). A
    bundle whose loaders are replaced later keeps this description: update it
    too.
    """
    return {
        "name": bundle.name,
        "source": hashlib.sha1(" ".join(digests).encode()).hexdigest()[:16],
        "train_size": bundle.train.num_samples,
        "val_size": bundle.val.num_samples,
        "test_size": bundle.test.num_samples,
        "pad": pad,
        "seed": bundle.train.seed,
        "batch_size": bundle.train.batch_size,
        "augment": repr(bundle.train.augment),
        "input_size": list(bundle.input_size),
    }


def _folder_splits(
    path: Path, generator: torch.Generator, size: int | None
) -> tuple[Splits, list[str], str]:
    """An image folder's "train", "val" and "test" splits, holding out what
    the folder lacks; its classes and digest.
    """
    decoded = _folder_arrays(path, size, False)
    splits = dict(decoded.splits)
    # no split folders: everything is one pool for train and test
    if "all" in splits:
        splits = {"train": splits["all"]}
    elif "train" not in splits:
        raise ValueError(
            f"{path} has no train/ folder of class folders (its "
            f"splits: {', '.join(splits)})."
        )
    if "test" not in splits:
        x, y = splits["train"]
        test, rest = stratified_split(y, max(1, len(y) // 5), generator)
        splits["train"], splits["test"] = (
            (x[rest], y[rest]),
            (x[test], y[test]),
        )
    return splits, decoded.classes, decoded.digest
