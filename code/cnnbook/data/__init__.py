"""Data: MNIST, Fashion-MNIST, CIFAR-10 and your own image folders, as tensors.

torchvision's usual pipeline (a ``Dataset`` of PIL images, per-image transforms,
a ``DataLoader`` with worker processes) decodes and augments every image on
the CPU at every epoch: about 5.7k images/s on Colab's 2 CPUs, slower than a
T4 trains ResNet-20. This module does the work once instead:

1. ``load_arrays`` decodes a data set once into uint8 tensors (N x C x H x W)
   and caches them in ``cache_dir()``; later loads read the cache in a
   fraction of a second.
2. ``BatchLoader`` keeps a whole split in memory, on the GPU when there is one,
   and ``Augment`` crops and flips whole batches there, vectorised.
3. ``load`` puts it together: a ``DataBundle`` of train / validation / test
   loaders, with a seeded validation split held out from the training set.

Where ``load_arrays`` looks for a data set, in this order:

1. its decoded cache file in ``cache_dir()``;
2. torchvision's own files under the data root (``data_root()``, i.e.
   ``$CNNBOOK_DATA``), read as they are, without writing there;
3. an ImageFolder copy under the data root: an archive such as
   ``cifar10-jpeg.tar.gz`` or a folder ``cifar10/`` holding
   ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``;
4. a torchvision download (when ``download=True``) into the data root if it
   is writable, else into ``cache_dir()/downloads``.

If all of that fails, ``DataNotFoundError`` says what was looked for and how
to fix it. Any folder or archive of images works with ``load_image_folder``
and ``load("path/to/images")``: a reader can train on their own pictures.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import math
import os
import re
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image, ImageOps

from ..profiles import default_device

__all__ = [
    "DATASETS",
    "Augment",
    "BatchLoader",
    "DataBundle",
    "DataNotFoundError",
    "DatasetInfo",
    "cache_dir",
    "crop",
    "data_root",
    "load",
    "load_arrays",
    "load_image_folder",
    "pca_lighting",
    "pca_lighting_basis",
    "random_crop",
    "random_flip",
    "stratified_split",
]

PathLike = Union[str, os.PathLike]

# Bump when the cache files' layout changes, so that old files are not read.
CACHE_VERSION = 1
# Split folders of an image folder; anything else at the top is a class.
SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


class DataNotFoundError(FileNotFoundError):
    """A data set is neither cached, nor under the data root, nor downloadable."""


# --------------------------------------------------------------------------
# Augmentation: whole batches at once, on the batch's device
# --------------------------------------------------------------------------


def crop(x: torch.Tensor, padding: int, top: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
    """Crop each image of a batch out of its zero-padded copy, at its own offset.

    ``x`` is N x C x H x W; ``top`` and ``left`` hold N offsets in
    ``[0, 2 * padding]`` into the padded image, so ``top = left = padding``
    returns ``x`` itself and ``top = left = 0`` shifts it ``padding`` pixels
    right and down. The padding is zero in ``x``'s own units: black for uint8
    images, as in torchvision's ``RandomCrop(padding=...)``.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))  # N x C x (H+2p) x (W+2p)
    width = w + 2 * padding
    # One flat gather instead of a loop over images: the index of output
    # pixel (i, r, s) in image i's flattened padded plane.
    pixel = torch.arange(h, device=x.device)[:, None] * width + torch.arange(w, device=x.device)
    index = (top * width + left).view(n, 1) + pixel.view(1, h * w)  # N x HW
    out = padded.flatten(2).gather(2, index.view(n, 1, h * w).expand(n, c, h * w))
    return out.view(n, c, h, w)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Random crops of the zero-padded images, the same size as the input (see ``crop``)."""
    offsets = torch.randint(0, 2 * padding + 1, (2, len(x)), generator=generator, device=x.device)
    return crop(x, padding, offsets[0], offsets[1])


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(len(x), generator=generator, device=x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def pca_lighting_basis(images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending, shape 3) and eigenvectors (the columns of a 3 x 3) of the RGB covariance.

    ``images`` are uint8 N x 3 x H x W; the covariance is of all their pixels'
    RGB values scaled to [0, 1], the units in which the PCA colour shift of
    Krizhevsky et al. (Sec. 4.1) is usually applied (fb.resnet.torch's
    ImageNet eigenvalues 0.2175, 0.0188, 0.0045 are in these units). It is
    accumulated in float64 over chunks of images, without a float copy of
    the whole data set.
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"pca_lighting_basis needs uint8 RGB images N x 3 x H x W, not {images.dtype} "
                         f"of shape {tuple(images.shape)}.")  # fmt: skip
    total, outer, count = torch.zeros(3, dtype=torch.float64), torch.zeros(3, 3, dtype=torch.float64), 0
    for part in images.split(chunk):
        pixels = part.transpose(0, 1).reshape(3, -1).cpu().double() / 255  # 3 x (n H W)
        total += pixels.sum(1)
        outer += pixels @ pixels.T
        count += pixels.shape[1]
    mean = total / count
    covariance = outer / count - torch.outer(mean, mean)
    eigval, eigvec = torch.linalg.eigh(covariance)  # ascending
    return eigval.flip(0).clamp_min(0).float(), eigvec.flip(1).float()


def pca_lighting(
    x: torch.Tensor, std: float, eigval: torch.Tensor, eigvec: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Krizhevsky et al.'s PCA colour shift ("fancy PCA"): one random RGB offset per image.

    Every pixel of image n gets ``eigvec @ (alpha_n * eigval)`` added, with
    ``alpha_n`` drawn from N(0, std^2) per image and component (the paper's
    std is 0.1). ``eigval`` and ``eigvec`` come from ``pca_lighting_basis``
    (in [0, 1] units); the shift is scaled to ``x``'s 0..255 units, and the
    result is float32 (a shift of a fraction of a grey level cannot be uint8).
    """
    alpha = torch.randn(len(x), 3, generator=generator, device=x.device) * std  # N x 3
    shift = (alpha * eigval.to(x.device)) @ eigvec.to(x.device).T  # N x 3: row n is eigvec @ (alpha_n * eigval)
    return x.float() + 255 * shift.view(-1, 3, 1, 1)


@dataclass(frozen=True)
class Augment:
    """Batch augmentation on the batch's device (no Python loop over images).

    The steps run in the order of the fields; a field that is off costs
    nothing. Later chapters add their own steps as new fields.

    ``pca_lighting`` needs the training set's colour basis, ``pca_basis``
    (``pca_lighting_basis``'s eigenvalues and eigenvectors, as tuples):
    ``data.load`` fills it in from the training split when it is None.
    """

    crop_padding: int = 4  # random crop with this much zero padding (0 = none)
    flip: bool = True  # random horizontal flip
    pca_lighting: float = 0.0  # std of the PCA colour shift's alphas (AlexNet: 0.1; 0 = none)
    pca_basis: tuple[tuple[float, ...], tuple[tuple[float, ...], ...]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.pca_lighting < 0:
            raise ValueError(f"pca_lighting={self.pca_lighting} is a standard deviation and must not be negative.")

    def with_basis(self, images: torch.Tensor) -> Augment:
        """This augmentation with ``pca_basis`` computed from ``images`` if it needs one and has none."""
        if self.pca_lighting == 0 or self.pca_basis is not None:
            return self
        eigval, eigvec = pca_lighting_basis(images)
        return replace(self, pca_basis=(tuple(eigval.tolist()), tuple(map(tuple, eigvec.tolist()))))

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch ``x`` (N x C x H x W, uint8 or float in 0..255) with draws from ``generator``."""
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, generator)
        if self.flip:
            x = random_flip(x, generator)
        if self.pca_lighting:
            if self.pca_basis is None:
                raise ValueError(
                    "Augment(pca_lighting=...) needs the training set's colour basis: pass it to data.load, "
                    "which computes it, or use augment.with_basis(training_images)."
                )
            eigval, eigvec = (torch.tensor(v, dtype=torch.float32) for v in self.pca_basis)
            x = pca_lighting(x, self.pca_lighting, eigval, eigvec, generator)
        return x


# --------------------------------------------------------------------------
# The data sets and where their files live
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """What the course knows about one named data set."""

    name: str
    torchvision_class: type  # reads (and downloads) the canonical files
    torchvision_folder: str  # where torchvision keeps them under the data root
    classes: tuple[str, ...]  # label i is classes[i], in the data set's own order
    channels: int
    size: int  # images are size x size
    mean: tuple[float, ...]  # the standard per-channel constants of the training set
    std: tuple[float, ...]
    augment: Augment | None  # the default training augmentation


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", torchvision.datasets.MNIST, "MNIST/raw",
        tuple("0123456789"), 1, 28, (0.1307,), (0.3081,), None,
    ),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", torchvision.datasets.FashionMNIST, "FashionMNIST/raw",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        1, 28, (0.2860,), (0.3530,), None,
    ),
    "cifar10": DatasetInfo(
        "cifar10", torchvision.datasets.CIFAR10, "cifar-10-batches-py",
        ("airplane", "automobile", "bird", "cat", "deer",
         "dog", "frog", "horse", "ship", "truck"),
        3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), Augment(crop_padding=4, flip=True),
    ),
}  # fmt: skip


def data_root() -> Path:
    """Where data sets are found and downloaded: ``$CNNBOOK_DATA``, else ``~/.cache/cnnbook/data``.

    The folder may be read-only: nothing is written there unless a download
    is needed and it is writable.
    """
    env = os.environ.get("CNNBOOK_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cnnbook" / "data"


def cache_dir() -> Path:
    """Where decoded arrays (and downloads into a read-only data root) go.

    ``$CNNBOOK_CACHE``, else ``~/.cache/cnnbook``; it must be writable (if it
    is not, data still loads, only uncached, with a warning).
    """
    env = os.environ.get("CNNBOOK_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cnnbook"


def _info(name: str) -> DatasetInfo:
    if name in DATASETS:
        return DATASETS[name]
    close = difflib.get_close_matches(str(name), DATASETS, n=3)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"Unknown data set {name!r}; the named data sets are {', '.join(DATASETS)}.{hint}")


# --------------------------------------------------------------------------
# The cache of decoded arrays
# --------------------------------------------------------------------------

Arrays = tuple[torch.Tensor, torch.Tensor, list[str]]  # uint8 images N x C x H x W, int64 labels, class names


def _cache_file(stem: str) -> Path:
    return cache_dir() / "arrays" / f"{stem}-v{CACHE_VERSION}.pt"


# A cache file holds {"classes": [...], "splits": {split: {"images": ..., "labels": ...}}};
# an image folder without split folders has the one split "all".
Splits = dict[str, tuple[torch.Tensor, torch.Tensor]]


def _read_cache(path: Path) -> tuple[Splits, list[str]] | None:
    """The splits and classes cached in ``path``; None if there is none or it is unreadable (with a warning)."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, weights_only=True)
        splits = {s: (d["images"], d["labels"]) for s, d in saved["splits"].items()}
        for images, labels in splits.values():
            if images.dtype != torch.uint8 or images.ndim != 4 or labels.shape != (len(images),):
                raise ValueError("its arrays have the wrong type or shape")
        classes = [str(c) for c in saved["classes"]]
    except Exception as error:  # a truncated or foreign file: any failure means "rebuild"
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        warnings.warn(f"The data cache file {path} is unreadable ({reason}); rebuilding it from the source.",
                      stacklevel=3)
        return None
    return splits, classes


def _write_cache(path: Path, splits: Splits, classes: list[str]) -> None:
    """Save atomically (a temporary file, then a rename), so a reader never sees half a file."""
    saved = {"classes": list(classes), "splits": {s: {"images": x, "labels": y} for s, (x, y) in splits.items()}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as tmp:
            torch.save(saved, tmp)
        os.chmod(tmp.name, 0o644)  # temporary files are private (0600); a cache may be shared
        os.replace(tmp.name, path)
    except OSError as error:
        warnings.warn(
            f"Could not write the data cache {path} ({error}); the data will be decoded again next time. "
            "Set CNNBOOK_CACHE to a writable folder to fix this.",
            stacklevel=3,
        )


# --------------------------------------------------------------------------
# Image folders and archives
# --------------------------------------------------------------------------


def _image_name(name: str) -> str | None:
    """The normalised relative path ('cat/1.jpg') of an image file, or None for other and hidden files."""
    name = name.removeprefix("./")
    hidden = any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))
    return name if name.lower().endswith(IMAGE_EXTENSIONS) and not hidden else None


def _read_images(path: Path) -> dict[str, bytes]:
    """The encoded bytes of every image file in a folder or archive, by relative path ('a/b.jpg')."""
    found = {}
    try:
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and (name := _image_name(file.relative_to(path).as_posix())):
                    found[name] = file.read_bytes()
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.infolist():
                    if not member.is_dir() and (name := _image_name(member.filename)):
                        found[name] = archive.read(member)
        elif tarfile.is_tarfile(path):
            # One pass in archive order: a .tar.gz cannot be read out of order cheaply.
            with tarfile.open(path, "r:*") as archive:
                for member in archive:
                    if member.isfile() and (name := _image_name(member.name)):
                        found[name] = archive.extractfile(member).read()
        else:
            raise ValueError(f"{path} is neither a folder nor a .zip / .tar / .tar.gz archive of images.")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"Cannot read {path}: {error}. Is it complete? Download or copy it again.") from error
    return found


def _layout(path: Path, names: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """Group image paths by split: {split: [(path, class name), ...]}, split "all" if none.

    Accepted layouts: ``<class>/<file>`` or ``<split>/<class>/<file>``, with
    ``split`` in SPLITS, possibly inside one wrapping folder (as archives
    often are). Files deeper inside a class folder belong to that class.
    """
    parts = {name: name.split("/") for name in names}
    # Strip one wrapping folder at a time: "flowers/roses/1.jpg" -> "roses/1.jpg".
    while (
        parts
        and len({p[0] for p in parts.values()}) == 1
        and all(len(p) >= 3 for p in parts.values())
        and next(iter(parts.values()))[0] not in SPLITS
    ):
        parts = {name: p[1:] for name, p in parts.items()}
    tops = {p[0] for p in parts.values() if len(p) >= 2}
    split_folders = tops & set(SPLITS)
    if split_folders and tops - split_folders:
        raise ValueError(
            f"{path} mixes split folders ({', '.join(sorted(split_folders))}) with class folders "
            f"({', '.join(sorted(tops - split_folders))}). Put every class folder inside train/ (and test/), or none."
        )
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, p in parts.items():
        if split_folders and len(p) >= 3:
            groups.setdefault(p[0], []).append((name, p[1]))
        elif not split_folders and len(p) >= 2:
            groups.setdefault("all", []).append((name, p[0]))
    if not groups:
        raise ValueError(
            f"No images in class folders under {path}. Expected <class>/<image> files, "
            f"or train/<class>/<image> and test/<class>/<image> (images: {', '.join(IMAGE_EXTENSIONS)})."
        )
    return groups


def _decode(data: bytes, grey: bool, size: int | None) -> torch.Tensor:
    """One encoded image -> uint8 C x H x W (RGB, or one channel if grey), resized if ``size``."""
    mode = "L" if grey else "RGB"
    with Image.open(io.BytesIO(data)) as image:
        if size is not None:
            image.draft(mode, (size, size))  # JPEG: decode big photos at a reduced scale, much faster
        image = image.convert(mode)
    if size is not None:
        image = ImageOps.fit(image, (size, size))  # the centre square, scaled: no distortion
    array = np.asarray(image).reshape(image.height, image.width, -1)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def _decode_all(path: Path, items: list[tuple[str, str]], encoded: dict[str, bytes], classes: list[str],
                grey: bool, size: int | None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    images = []
    for name, _ in items:
        try:
            images.append(_decode(encoded[name], grey, size))
        except Exception as error:
            raise ValueError(f"Cannot decode {name} in {path}: {error}. Remove the file or replace it.") from error
    shapes = {}
    for (name, _), image in zip(items, images):
        shapes.setdefault(tuple(image.shape[1:]), name)
    if len(shapes) > 1:
        examples = "; ".join(f"{name} is {h}x{w}" for (h, w), name in list(shapes.items())[:3])
        raise ValueError(
            f"The images in {path} differ in size ({examples}). Pass size=... (e.g. size=64) "
            "to resize every image to size x size (shorter side, then the centre square)."
        )
    index = {c: i for i, c in enumerate(classes)}
    return torch.stack(images), torch.tensor([index[c] for _, c in items], dtype=torch.int64)


def _fingerprint(path: Path) -> str:
    """Changes when the folder's or archive's files change (size and modification time)."""
    path = path.resolve()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        stats = [(p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    else:
        stats = [(path.stat().st_size, path.stat().st_mtime_ns)]
    return repr((str(path), stats))


def _archive_stem(path: Path) -> str:
    """'cifar10-jpeg' for .../cifar10-jpeg.tar.gz: a readable name for a folder or archive."""
    name = path.resolve().name
    for suffix in ARCHIVE_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def _folder_arrays(path: Path, size: int | None, grey: bool) -> tuple[Splits, list[str]]:
    """Every split of an image folder or archive, decoded once and cached in one file."""
    digest = hashlib.sha1(repr((_fingerprint(path), size, grey)).encode()).hexdigest()[:16]
    cache = _cache_file(f"{re.sub(r'[^A-Za-z0-9_-]+', '_', _archive_stem(path))}-{digest}")
    cached = _read_cache(cache)
    if cached is not None:
        return cached
    encoded = _read_images(path)
    groups = _layout(path, list(encoded))
    classes = sorted({c for items in groups.values() for _, c in items})
    splits = {s: _decode_all(path, items, encoded, classes, grey, size) for s, items in groups.items()}
    _write_cache(cache, splits, classes)
    return splits, classes


def load_image_folder(
    path: PathLike, size: int | None = None, split: str | None = None, *, grey: bool = False
) -> Arrays:
    """Decode a folder or archive of images, one subfolder per class, into uint8 tensors.

    ``path`` is a folder or a .zip / .tar / .tar.gz / .tgz archive laid out as
    ``<class>/<image>`` or, with split folders, ``train/<class>/<image>`` and
    ``test/<class>/<image>`` (``val/`` too); ``split`` picks one of those.
    Classes are the class folders' names, sorted (over all splits, so labels
    agree between splits). Images become RGB (one channel with ``grey=True``)
    and must all have one size unless ``size`` is given: then each is scaled
    so that its shorter side is ``size`` and its centre square kept.

    Every split is decoded at once and cached in ``cache_dir()`` (keyed by
    the files' sizes and dates): a second call reads no image. Archives are
    read in place, never extracted.
    Returns (images N x C x H x W uint8, labels int64, class names).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"No image folder or archive at {path.resolve()}. Check the path.")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} or None, not {split!r}.")
    splits, classes = _folder_arrays(path, size, grey)
    key = split or "all"
    if key not in splits:
        if split is None:
            raise ValueError(f"{path} has split folders ({', '.join(splits)}): pass split='train' or split='test'.")
        raise ValueError(f"{path} has no {split}/ folder of class folders (its splits: {', '.join(splits)}).")
    images, labels = splits[key]
    return images, labels, classes


# --------------------------------------------------------------------------
# Named data sets
# --------------------------------------------------------------------------


def _read_torchvision(info: DatasetInfo, root: Path, split: str, notes: list[str]) -> Arrays | None:
    """The split from torchvision's files under ``root`` (read-only); None, with a note, if absent."""
    folder = root / info.torchvision_folder
    if not folder.is_dir():
        notes.append(f"{folder} (torchvision's format): not there")
        return None
    try:
        dataset = info.torchvision_class(str(root), train=split == "train", download=False)
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
        notes.append(f"{folder} (torchvision's format): unreadable: {error}")
        return None
    images = torch.as_tensor(np.asarray(dataset.data))
    # MNIST keeps N x H x W, CIFAR N x H x W x C: make both N x C x H x W.
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
    return images.contiguous(), labels.clone(), list(info.classes)


def _folder_copies(info: DatasetInfo, root: Path) -> list[Path]:
    """Where an ImageFolder copy of a named data set may be: root/cifar10-jpeg.tar.gz, root/cifar10/, ..."""
    stems = dict.fromkeys([info.name, info.name.replace("_", "-")])
    kinds, suffixes = ("", "-jpeg", "-png"), ("", *ARCHIVE_SUFFIXES)
    return [root / f"{stem}{kind}{suffix}" for stem in stems for kind in kinds for suffix in suffixes]


def _canonical_labels(info: DatasetInfo, path: Path, arrays: Arrays) -> Arrays:
    """Relabel an ImageFolder copy (classes sorted by name) in the data set's own class order."""
    images, labels, folder_classes = arrays

    def key(name: str) -> str:  # "T-shirt_top" matches "T-shirt/top"
        return re.sub(r"[^a-z0-9]", "", name.lower())

    canonical = {key(c): i for i, c in enumerate(info.classes)}
    if all(key(c) in canonical for c in folder_classes):
        mapping = [canonical[key(c)] for c in folder_classes]
    elif all(c.isdigit() and int(c) < len(info.classes) for c in folder_classes):  # folders named 0..9
        mapping = [int(c) for c in folder_classes]
    else:
        raise ValueError(
            f"The class folders of {path} ({', '.join(folder_classes)}) are not {info.name}'s classes "
            f"({', '.join(info.classes)}), nor numbered 0..{len(info.classes) - 1}."
        )
    return images, torch.tensor(mapping, dtype=torch.int64)[labels], list(info.classes)


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def load_arrays(name: str, split: str = "train", root: PathLike | None = None, download: bool = True) -> Arrays:
    """A whole split of a named data set as uint8 images N x C x H x W, int64 labels and class names.

    ``name`` is a key of ``DATASETS``; ``split`` is "train" or "test";
    ``root`` defaults to ``data_root()``. The module docstring lists where the
    data is looked for; the decoded arrays are cached in ``cache_dir()``, keyed
    by their source (torchvision's files, or the fingerprint of a folder copy).
    """
    info = _info(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}.")
    root = Path(root).expanduser() if root is not None else data_root()
    downloads = cache_dir() / "downloads"

    # 1 and 2: torchvision's canonical files, decoded once and cached.
    cache = _cache_file(f"{name}-{split}-torchvision")
    notes = [f"{cache} (the decoded cache): not there"]
    cached = _read_cache(cache)
    if cached is not None and split in cached[0]:
        images, labels = cached[0][split]
        return images, labels, cached[1]
    for folder in dict.fromkeys([root, downloads]):
        arrays = _read_torchvision(info, folder, split, notes)
        if arrays is not None:
            _write_cache(cache, {split: arrays[:2]}, arrays[2])
            return arrays

    # 3: an ImageFolder copy (load_image_folder keeps its own cache).
    for path in _folder_copies(info, root):
        if path.is_file() or (path / "train").is_dir():
            arrays = load_image_folder(path, split=split, grey=info.channels == 1)
            return _canonical_labels(info, path, arrays)
    stems = dict.fromkeys(p.name for p in _folder_copies(info, root) if not p.suffix)
    copies = f"{root}/{{{','.join(stems)}}}{{/,{','.join(ARCHIVE_SUFFIXES)}}}"
    notes.append(f"{copies} (an ImageFolder copy: archive, or folder with train/ and test/): none there")

    # 4: download the canonical files.
    if download:
        target = root if _writable(root) else downloads
        try:
            info.torchvision_class(str(target), train=split == "train", download=True)
        except Exception as error:  # no network, a full disk, a host that is down
            notes.append(f"downloading into {target}: failed: {error}")
        else:
            arrays = _read_torchvision(info, target, split, notes)
            if arrays is not None:
                _write_cache(cache, {split: arrays[:2]}, arrays[2])
                return arrays
    else:
        notes.append("downloading: not tried (download=False)")

    looked = "\n".join(f"  - {note}" for note in notes)
    raise DataNotFoundError(
        f"Could not load the {split} split of {name!r}. Looked for:\n{looked}\n"
        f"To fix it: go online and load with download=True (torchvision downloads the files), or set "
        f"CNNBOOK_DATA (the data root, now {root}) to a folder that holds {info.torchvision_folder}/ "
        f"(torchvision's files) or {info.name}-jpeg.tar.gz "
        "(an ImageFolder archive: train/<class>/*.jpg and test/<class>/*.jpg)."
    )


# --------------------------------------------------------------------------
# Batches on the device
# --------------------------------------------------------------------------


class BatchLoader:
    """Batches of a whole split held in memory (on the GPU when ``device`` is CUDA).

    Each pass yields ``(x, y)``: ``x`` float32 N x C x H x W normalised as
    ``(pixel / 255 - mean) / std``, ``y`` int64 labels, both on ``device``.
    Shuffling and augmentation of epoch ``e`` are a pure function of
    ``(seed, e)`` drawn from a private ``torch.Generator``, never the global
    RNG: ``set_epoch(e)`` before a pass reproduces epoch ``e`` exactly (for
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
            raise ValueError(f"images must be uint8 N x C x H x W, not {images.dtype} of shape {tuple(images.shape)}.")
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have one entry per image: {tuple(labels.shape)} for {len(images)} images.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}.")
        self.device = torch.device(device) if device is not None else default_device()
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        channels = images.shape[1]
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=self.device).flatten().expand(channels).clone()
        self.std = torch.as_tensor(std, dtype=torch.float32, device=self.device).flatten().expand(channels).clone()
        # (x / 255 - mean) / std  ==  x * scale + offset: one fused operation per batch.
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
        """Make the next pass epoch ``epoch``: the same shuffle and augmentation every time."""
        self.epoch = epoch

    def _generator(self, epoch: int) -> torch.Generator:
        # SeedSequence mixes (seed, epoch) into independent streams: no two pairs collide.
        state = np.random.SeedSequence([self.seed, epoch]).generate_state(1, np.uint64)[0]
        return torch.Generator(device=self.device).manual_seed(int(state) >> 1)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # A generator function: the epoch is drawn and advanced when the first
        # batch is taken, not when iter() is called, so wrappers that call
        # iter() without consuming (tqdm does) cannot skip an epoch.
        generator = self._generator(self.epoch)
        self.epoch += 1
        order = torch.randperm(self.num_samples, generator=generator, device=self.device) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = slice(start, start + self.batch_size) if order is None else order[start : start + self.batch_size]
            x, y = self.images[index], self.labels[index]
            if self.augment is not None:
                x = self.augment(x, generator)
            yield torch.addcmul(self._offset, x, self._scale), y  # uint8 in, float32 out

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.images.shape[1:]))
        order = "shuffled" if self.shuffle else "in order"
        return (f"BatchLoader({self.num_samples:,} images of {shape} on {self.device}, batches of {self.batch_size}, "
                f"{order}, augment={self.augment})")  # fmt: skip


# --------------------------------------------------------------------------
# Splits and the bundle of loaders
# --------------------------------------------------------------------------


def stratified_split(labels: torch.Tensor, k: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick ``k`` random indices that keep each class's share; return (picked, rest), both sorted.

    Each image gets its class-relative position in a random order,
    (rank within its class + 1/2) / class size; the ``k`` smallest positions
    take about ``k * share`` of every class (exactly, when that is whole).
    """
    labels = labels.cpu()
    n = len(labels)
    if not 0 <= k <= n:
        raise ValueError(f"Cannot pick {k} of {n} images.")
    perm = torch.randperm(n, generator=generator)
    shuffled = labels[perm]
    counts = torch.bincount(shuffled)
    by_class = torch.argsort(shuffled, stable=True)  # grouped by class, random order inside each
    first = torch.cumsum(counts, 0) - counts  # where each class starts in by_class
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
    hist = torch.stack([torch.bincount(channel, minlength=256) for channel in channels]).double()
    count = hist.sum(1)
    mean = (hist * values).sum(1) / count
    var = (hist * (values - mean[:, None]) ** 2).sum(1) / count
    return mean.float(), var.sqrt().float().clamp_min(1e-3)  # a blank channel must not divide by zero


def _count(size: int | float, n: int, what: str) -> int:
    """A number of images, given as a count or as a fraction of ``n``."""
    k = round(size * n) if isinstance(size, float) and 0 < size < 1 else int(size)
    if not 0 <= k < n:
        raise ValueError(
            f"{what}={size} leaves no training images out of {n}: pass a smaller count or a fraction like 0.1."
        )
    return k


@dataclass
class DataBundle:
    """Train, validation and test loaders of one data set, and what a chapter needs to show them."""

    name: str
    classes: list[str]
    train: BatchLoader
    val: BatchLoader
    test: BatchLoader
    mean: torch.Tensor  # (C,), the normalisation the loaders apply
    std: torch.Tensor
    input_size: tuple[int, int, int]  # C x H x W of a batch's images

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (C x H x W or N x C x H x W) back to [0, 1], for plotting."""
        mean, std = self.mean.to(x.device).view(-1, 1, 1), self.std.to(x.device).view(-1, 1, 1)
        return (x * std + mean).clamp(0, 1)

    def __str__(self) -> str:
        shape = "x".join(map(str, self.input_size))
        return (f"{self.name}: {self.train.num_samples:,} train / {self.val.num_samples:,} validation / "
                f"{self.test.num_samples:,} test images of {shape}, {len(self.classes)} classes, "
                f"on {self.train.device}; training augmentation: {self.train.augment}")  # fmt: skip


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
) -> DataBundle:
    """Load a data set as train / validation / test loaders on ``device`` (default: the GPU if any).

    - ``name``: a key of ``DATASETS``, or the path of an image folder or
      archive (see ``load_image_folder``). Its ``test/`` split is used when
      present; otherwise a stratified, seeded 20% is held out as the test set.
    - ``val_size`` images (or a fraction, e.g. 0.1) are held out of the
      training set, stratified by class and seeded: the same ``seed`` gives
      the same split whatever ``train_size`` is. (An image folder's own
      ``val/`` split, if it has one, is used instead.)
    - ``train_size`` / ``test_size``: at most this many images of the rest,
      a seeded stratified subset (class-balanced for balanced data sets), for
      short runs; None keeps all.
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
    """
    generator = torch.Generator().manual_seed(seed)
    if name in DATASETS:
        info = DATASETS[name]
        x_train, y_train, classes = load_arrays(name, "train", root, download)
        x_test, y_test, _ = load_arrays(name, "test", root, download)
        x_val = y_val = None
        mean, std, default_augment = info.mean, info.std, info.augment
    else:
        path = Path(name).expanduser()
        if not path.exists():
            close = difflib.get_close_matches(str(name), DATASETS, n=3)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"Unknown data set {name!r}: use one of {', '.join(DATASETS)}, or the path of an image folder "
                f"or archive (there is no file or folder {path.resolve()}).{hint}"
            )
        name = _archive_stem(path)
        splits, classes = _folder_splits(path, generator)
        (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
        x_val, y_val = splits.get("val", (None, None))
        mean = std = None
        default_augment = None

    # Indices first, images copied once: a small train_size copies only its images.
    train_index = torch.arange(len(y_train))
    if x_val is None:
        val_index, train_index = stratified_split(y_train, _count(val_size, len(y_train), "val_size"), generator)
        x_val, y_val = x_train[val_index], y_train[val_index]
    if train_size is not None and train_size < len(train_index):
        keep, _ = stratified_split(y_train[train_index], train_size, generator)
        train_index = train_index[keep]
    x_train, y_train = x_train[train_index], y_train[train_index]
    if test_size is not None and test_size < len(y_test):
        keep, _ = stratified_split(y_test, test_size, generator)
        x_test, y_test = x_test[keep], y_test[keep]
    if pad:
        x_train, x_val, x_test = (F.pad(x, (pad, pad, pad, pad)) for x in (x_train, x_val, x_test))
    if mean is None:  # an image folder: the statistics of its training split
        mean, std = _pixel_mean_std(x_train)

    if augment is None:
        augment = default_augment
    elif isinstance(augment, bool):
        augment = Augment() if augment else None
    if augment is not None:
        augment = augment.with_basis(x_train)  # the PCA colour shift's basis, from the training split only
    device = torch.device(device) if device is not None else default_device()
    eval_batch_size = eval_batch_size or 2 * batch_size
    common = {"mean": mean, "std": std, "device": device, "seed": seed}
    train = BatchLoader(x_train, y_train, batch_size, shuffle=True, augment=augment, **common)
    val = BatchLoader(x_val, y_val, eval_batch_size, shuffle=False, **common)
    test = BatchLoader(x_test, y_test, eval_batch_size, shuffle=False, **common)
    return DataBundle(name, list(classes), train, val, test, train.mean, train.std, tuple(x_train.shape[1:]))


def _folder_splits(path: Path, generator: torch.Generator) -> tuple[Splits, list[str]]:
    """An image folder's "train", "val" and "test" splits, holding out what the folder lacks."""
    splits, classes = _folder_arrays(path, None, False)
    if "all" in splits:  # no split folders: everything is one pool for train and test
        splits = {"train": splits["all"]}
    elif "train" not in splits:
        raise ValueError(f"{path} has no train/ folder of class folders (its splits: {', '.join(splits)}).")
    if "test" not in splits:
        x, y = splits["train"]
        test, rest = stratified_split(y, max(1, len(y) // 5), generator)
        splits["train"], splits["test"] = (x[rest], y[rest]), (x[test], y[test])
    return splits, classes
