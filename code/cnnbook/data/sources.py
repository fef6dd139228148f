"""The named data sets (MNIST, Fashion-MNIST, CIFAR-10): where their files are,
and how they are read.

``load_arrays`` looks for a data set's split in the places the package
docstring lists, decodes it once into uint8 tensors and caches them (see
``cache``), keyed by the files it was read from. It writes into the data root
only to download, and never creates a data root that the user named.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision

from .augment import Augment
from .cache import (
    Arrays,
    Decoded,
    cache_dir,
    cache_file,
    fingerprint,
    read_cache,
    write_cache,
)
from .folders import ARCHIVE_SUFFIXES, PathLike, _image_folder


class DataNotFoundError(FileNotFoundError):
    """A data set is neither cached, nor under the data root, nor
    downloadable; or the data root is missing.
    """


@dataclass(frozen=True)
class DatasetInfo:
    """What the course knows about one named data set."""

    name: str
    torchvision_class: type  # reads (and downloads) the canonical files
    torchvision_folder: str  # where torchvision keeps them under the data root
    # label i is classes[i], in the data set's own order
    classes: tuple[str, ...]
    channels: int
    size: int  # images are size x size
    # the standard per-channel constants of the training set
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: Augment | None  # the default training augmentation
    # the files torchvision reads for each split, in torchvision_folder
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]


def _idx_files(prefix: str) -> tuple[str, ...]:
    """MNIST's and Fashion-MNIST's files of one split ("train" or "t10k")."""
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist",
        torchvision.datasets.MNIST,
        "MNIST/raw",
        tuple("0123456789"),
        1,
        28,
        (0.1307,),
        (0.3081,),
        None,
        _idx_files("train"),
        _idx_files("t10k"),
    ),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist",
        torchvision.datasets.FashionMNIST,
        "FashionMNIST/raw",
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        1,
        28,
        (0.2860,),
        (0.3530,),
        None,
        _idx_files("train"),
        _idx_files("t10k"),
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        torchvision.datasets.CIFAR10,
        "cifar-10-batches-py",
        (
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ),
        3,
        32,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        Augment(crop_padding=4, flip=True),
        ("batches.meta", *(f"data_batch_{i}" for i in range(1, 6))),
        ("batches.meta", "test_batch"),
    ),
}


def data_root() -> Path:
    """Where data sets are found and downloaded: ``$CNNBOOK_DATA``, else
    ``~/.cache/cnnbook/data``.

    The folder may be read-only: nothing is written there unless a download is
    needed and it is writable. A ``$CNNBOOK_DATA`` that does not exist is an
    error (``DataNotFoundError``), never created: it is most likely a
    misspelling. The default folder is created when a download needs it.
    """
    env = os.environ.get("CNNBOOK_DATA")
    if not env:
        return Path.home() / ".cache" / "cnnbook" / "data"
    return _existing_folder(Path(env).expanduser(), f"CNNBOOK_DATA={env}")


def _existing_folder(path: Path, named: str) -> Path:
    if not path.is_dir():
        problem = (
            "is a file, not a folder" if path.exists() else "does not exist"
        )
        raise DataNotFoundError(
            f"{named} {problem}: fix the path or create the folder."
        )
    return path


def _info(name: str) -> DatasetInfo:
    if name in DATASETS:
        return DATASETS[name]
    close = difflib.get_close_matches(str(name), DATASETS, n=3)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"Unknown data set {name!r}; the named data sets are "
        f"{', '.join(DATASETS)}.{hint}"
    )


# --------------------------------------------------------------------------
# torchvision's files
# --------------------------------------------------------------------------


def _from_torchvision(
    info: DatasetInfo, root: Path, split: str, notes: list[str]
) -> tuple[Arrays, str] | None:
    """The split and its digest from torchvision's files under ``root``, via
    the cache; None, with a note, if absent.

    The cache file is keyed by the folder and by the sizes and dates of the
    split's files: a file replaced (a corrupt download fixed) is read again.
    """
    folder = root / info.torchvision_folder
    files = [
        folder / name
        for name in (info.train_files if split == "train" else info.test_files)
    ]
    if not folder.is_dir():
        notes.append(f"{folder} (torchvision's format): not there")
        return None
    missing = [file.name for file in files if not file.is_file()]
    if missing:
        notes.append(
            f"{folder} (torchvision's format): no {', '.join(missing)}"
        )
        return None
    cache = cache_file(
        f"{info.name}-{split}-torchvision",
        str(folder.resolve()),
        fingerprint(folder, files),
    )
    decoded = read_cache(cache)
    if decoded is None or split not in decoded.splits:
        decoded = _read_torchvision(info, root, split, files, notes)
        if decoded is None:
            return None
        write_cache(cache, decoded)
    images, labels = decoded.splits[split]
    return (images, labels, decoded.classes), decoded.digest


def _read_torchvision(
    info: DatasetInfo,
    root: Path,
    split: str,
    files: list[Path],
    notes: list[str],
) -> Decoded | None:
    """Decode the split from torchvision's ``files`` under ``root``
    (read-only); None, with a note, if unreadable.
    """
    try:
        dataset = info.torchvision_class(
            str(root), train=split == "train", download=False
        )
    # torchvision: "Dataset not found or corrupted"
    except RuntimeError as error:
        notes.append(
            f"{root / info.torchvision_folder} (torchvision's "
            f"format): unreadable: {error}"
        )
        return None
    images = torch.as_tensor(np.asarray(dataset.data))
    # MNIST keeps N x H x W, CIFAR N x H x W x C: make both N x C x H x W.
    images = (
        images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    )
    labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
    wrong = ((labels < 0) | (labels >= len(info.classes))).nonzero().flatten()
    if len(wrong):
        i = int(wrong[0])
        raise ValueError(
            f"The {split} split of {info.name}, read from "
            f"{', '.join(map(str, files))}, has labels that are not "
            f"classes (0..{len(info.classes) - 1}): {len(wrong)} of them, the "
            f"first {int(labels[i])} (image {i}). "
            "A file is damaged: delete these files and load again with "
            "download=True (the default) to download "
            "them again, or copy good ones."
        )
    return Decoded.of(
        {split: (images.contiguous(), labels.clone())}, info.classes
    )


# --------------------------------------------------------------------------
# ImageFolder copies of a named data set
# --------------------------------------------------------------------------


def _folder_copies(info: DatasetInfo, root: Path) -> list[Path]:
    """Where an ImageFolder copy of a named data set may be:
    root/cifar10-jpeg.tar.gz, root/cifar10/, ...
    """
    stems = dict.fromkeys([info.name, info.name.replace("_", "-")])
    kinds, suffixes = ("", "-jpeg", "-png"), ("", *ARCHIVE_SUFFIXES)
    return [
        root / f"{stem}{kind}{suffix}"
        for stem in stems
        for kind in kinds
        for suffix in suffixes
    ]


def _canonical_labels(info: DatasetInfo, path: Path, arrays: Arrays) -> Arrays:
    """Relabel an ImageFolder copy (classes sorted by name) in the data
    set's own class order.
    """
    images, labels, folder_classes = arrays

    def key(name: str) -> str:  # "T-shirt_top" matches "T-shirt/top"
        return re.sub(r"[^a-z0-9]", "", name.lower())

    canonical = {key(c): i for i, c in enumerate(info.classes)}
    if all(key(c) in canonical for c in folder_classes):
        mapping = [canonical[key(c)] for c in folder_classes]
    # folders named 0..9
    elif all(
        c.isdigit() and int(c) < len(info.classes) for c in folder_classes
    ):
        mapping = [int(c) for c in folder_classes]
    else:
        raise ValueError(
            f"The class folders of {path} ({', '.join(folder_classes)}) are "
            f"not {info.name}'s classes "
            f"({', '.join(info.classes)}), nor numbered "
            f"0..{len(info.classes) - 1}."
        )
    return (
        images,
        torch.tensor(mapping, dtype=torch.int64)[labels],
        list(info.classes),
    )


# --------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------


def _download_target(root: Path, downloads: Path) -> Path:
    """``root`` if a download can write there (the default root may not
    exist yet), else ``downloads``.
    """
    existing = next(
        folder for folder in (root, *root.parents) if folder.exists()
    )
    return root if os.access(existing, os.W_OK) else downloads


def _download(info: DatasetInfo, target: Path, split: str) -> str | None:
    """Download the canonical files into ``target``; None if that worked, else
    why not.

    A failed (or interrupted) download removes what it created: folders and
    files that were not there before, so that the next attempt finds the data
    root as it was.
    """
    created = next(
        (
            folder
            for folder in (*reversed(target.parents), target)
            if not folder.exists()
        ),
        None,
    )
    before = _download_area(info, target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        info.torchvision_class(
            str(target), train=split == "train", download=True
        )
    # no network, a full disk, a host that is down, Ctrl-C
    except BaseException as error:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        else:
            # a folder before its contents
            for path in sorted(_download_area(info, target) - before):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        if not isinstance(error, Exception):
            raise
        # torchvision's messages span lines
        return " ".join(str(error).split()) or type(error).__name__
    return None


def _download_area(info: DatasetInfo, target: Path) -> set[Path]:
    """What a download into ``target`` may add to: its entries, and
    everything in the data set's folder there.
    """
    if not target.is_dir():
        return set()
    own = target / Path(info.torchvision_folder).parts[0]
    return set(target.iterdir()) | set(own.rglob("*"))


# --------------------------------------------------------------------------
# load_arrays
# --------------------------------------------------------------------------


def load_arrays(
    name: str,
    split: str = "train",
    root: PathLike | None = None,
    download: bool = True,
) -> Arrays:
    """A whole split of a named data set as uint8 images N x C x H x W, int64
    labels and class names.

    ``name`` is a key of ``DATASETS``; ``split`` is "train" or "test"; ``root``
    defaults to ``data_root()`` and must exist. The package docstring lists
    where the data is looked for; the decoded arrays are cached in
    ``cache_dir()``, keyed by their source (the folder and the sizes and dates
    of torchvision's files, or those of a folder copy).
    """
    arrays, _ = _load_split(name, split, root, download)
    return arrays


def _load_split(
    name: str, split: str, root: PathLike | None, download: bool
) -> tuple[Arrays, str]:
    """``load_arrays``'s arrays and the digest of the data they come from
    (``Decoded.digest``).
    """
    info = _info(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}.")
    named_root = root is not None
    root = (
        _existing_folder(Path(root).expanduser(), f"root={root}")
        if named_root
        else data_root()
    )
    downloads = cache_dir() / "downloads"
    notes: list[str] = []

    # 1 and 2: torchvision's canonical files, decoded once and cached.
    for folder in dict.fromkeys([root, downloads]):
        found = _from_torchvision(info, folder, split, notes)
        if found is not None:
            return found

    # 3: an ImageFolder copy (with its own cache).
    for path in _folder_copies(info, root):
        if path.is_file() or (path / "train").is_dir():
            arrays, digest = _image_folder(
                path, None, split, info.channels == 1
            )
            return _canonical_labels(info, path, arrays), digest
    stems = dict.fromkeys(
        p.name for p in _folder_copies(info, root) if not p.suffix
    )
    copies = f"{root}/{{{','.join(stems)}}}{{/,{','.join(ARCHIVE_SUFFIXES)}}}"
    notes.append(
        f"{copies} (an ImageFolder copy: archive, or folder with "
        "train/ and test/): none there"
    )

    # 4: download the canonical files.
    failure = None
    if download:
        target = _download_target(root, downloads)
        failure = _download(info, target, split)
        if failure is None:
            found = _from_torchvision(info, target, split, notes)
            if found is not None:
                return found
        else:
            notes.append(f"downloading into {target}: failed (see above)")
    else:
        notes.append("downloading: not tried (download=False)")
    raise DataNotFoundError(
        _not_found(info, split, root, named_root, notes, download, failure)
    )


def _not_found(
    info: DatasetInfo,
    split: str,
    root: Path,
    named_root: bool,
    notes: list[str],
    download: bool,
    failure: str | None,
) -> str:
    """DataNotFoundError's message: where ``load_arrays`` looked, and advice
    that fits what it tried.
    """
    looked = "\n".join(f"  - {note}" for note in notes)
    if named_root:
        where = f"pass root= a folder (now {root})"
    else:
        where = f"set CNNBOOK_DATA (the data root, now {root}) to a folder"
    copy = (
        f"{where} that holds {info.torchvision_folder}/ (torchvision's files) "
        f"or {info.name}-jpeg.tar.gz "
        "(an ImageFolder archive: train/<class>/*.jpg and test/<class>/*.jpg)"
    )
    if any(": unreadable:" in note for note in notes):
        fix = (
            "replace the files marked unreadable above (delete them and "
            "load with download=True, the default, "
            f"to download them again), or {copy}."
        )
    elif not download:
        fix = (
            f"go online and load with download=True (torchvision downloads "
            f"the files), or {copy}."
        )
    elif failure is not None:
        fix = (
            f"go online and rerun (torchvision downloads the files), or "
            f"{copy}."
        )
    else:  # downloaded, yet not readable: not expected
        fix = (
            f"delete what the download left in the data root and rerun, or "
            f"{copy}."
        )
    why = f": the download failed ({failure})" if failure is not None else ""
    return (
        f"Could not load the {split} split of {info.name!r}{why}. Looked "
        f"for:\n{looked}\nTo fix it: {fix}"
    )
