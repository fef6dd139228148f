"""Image folders and archives: ``<class>/<image>`` trees, or ``train/`` and
``test/`` of them, as tensors.

A folder, or a .zip / .tar / .tar.gz archive read in place, is decoded once
into uint8 tensors and cached (see ``cache``): the named data sets' JPEG copies
and a reader's own pictures go through the same code.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps

from .cache import (
    Arrays,
    Decoded,
    cache_file,
    fingerprint,
    read_cache,
    write_cache,
)

PathLike = Union[str, os.PathLike]

# Split folders of an image folder; anything else at the top is a class.
SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


def _image_name(name: str) -> str | None:
    """The normalised relative path ('cat/1.jpg') of an image file, or None
    for other and hidden files.
    """
    name = name.removeprefix("./")
    hidden = any(
        part.startswith(".") or part == "__MACOSX" for part in name.split("/")
    )
    return (
        name
        if name.lower().endswith(IMAGE_EXTENSIONS) and not hidden
        else None
    )


def _read_images(path: Path) -> dict[str, bytes]:
    """The encoded bytes of every image file in a folder or archive, by
    relative path ('a/b.jpg').
    """
    found = {}
    try:
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and (
                    name := _image_name(file.relative_to(path).as_posix())
                ):
                    found[name] = file.read_bytes()
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.infolist():
                    if not member.is_dir() and (
                        name := _image_name(member.filename)
                    ):
                        found[name] = archive.read(member)
        elif tarfile.is_tarfile(path):
            # One pass in archive order: a .tar.gz cannot be read out of order
            # cheaply.
            with tarfile.open(path, "r:*") as archive:
                for member in archive:
                    if member.isfile() and (name := _image_name(member.name)):
                        found[name] = archive.extractfile(member).read()
        else:
            raise ValueError(
                f"{path} is neither a folder nor a .zip / .tar / "
                ".tar.gz archive of images."
            )
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(
            f"Cannot read {path}: {error}. Is it complete? "
            "Download or copy it again."
        ) from error
    return found


def _layout(
    path: Path, names: Sequence[str]
) -> dict[str, list[tuple[str, str]]]:
    """Group image paths by split: {split: [(path, class name), ...]}, split
    "all" if none.

    Accepted layouts: ``<class>/<file>`` or ``<split>/<class>/<file>``, with
    ``split`` in SPLITS, possibly inside one wrapping folder (as archives often
    are). Files deeper inside a class folder belong to that class.
    """
    parts = {name: name.split("/") for name in names}
    # Strip one wrapping folder at a time: "flowers/roses/1.jpg" ->
    # "roses/1.jpg".
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
            f"{path} mixes split folders ({', '.join(sorted(split_folders))}) "
            "with class folders "
            f"({', '.join(sorted(tops - split_folders))}). Put every class "
            "folder inside train/ (and test/), or none."
        )
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, p in parts.items():
        if split_folders and len(p) >= 3:
            groups.setdefault(p[0], []).append((name, p[1]))
        elif not split_folders and len(p) >= 2:
            groups.setdefault("all", []).append((name, p[0]))
    if not groups:
        raise ValueError(
            f"No images in class folders under {path}. Expected "
            "<class>/<image> files, "
            f"or train/<class>/<image> and test/<class>/<image> (images: "
            f"{', '.join(IMAGE_EXTENSIONS)})."
        )
    return groups


def _decode(data: bytes, grey: bool, size: int | None) -> torch.Tensor:
    """One encoded image -> uint8 C x H x W (RGB, or one channel if grey),
    resized if ``size``.
    """
    mode = "L" if grey else "RGB"
    with Image.open(io.BytesIO(data)) as image:
        if size is not None:
            # JPEG: decode big photos at a reduced scale, much faster
            image.draft(mode, (size, size))
        image = image.convert(mode)
    if size is not None:
        # the centre square, scaled: no distortion
        image = ImageOps.fit(image, (size, size))
    array = np.asarray(image).reshape(image.height, image.width, -1)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def _decode_all(
    path: Path,
    items: list[tuple[str, str]],
    encoded: dict[str, bytes],
    classes: list[str],
    grey: bool,
    size: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    images = []
    for name, _ in items:
        try:
            images.append(_decode(encoded[name], grey, size))
        except Exception as error:
            raise ValueError(
                f"Cannot decode {name} in {path}: {error}. "
                "Remove the file or replace it."
            ) from error
    shapes = {}
    for (name, _), image in zip(items, images):
        shapes.setdefault(tuple(image.shape[1:]), name)
    if len(shapes) > 1:
        examples = "; ".join(
            f"{name} is {h}x{w}" for (h, w), name in list(shapes.items())[:3]
        )
        raise ValueError(
            f"The images in {path} differ in size ({examples}): choose one "
            "size, e.g. image_size=64 for load "
            "(size=64 for load_image_folder), and every image is scaled to 64 "
            "pixels on its shorter side and "
            "cropped to its centre square."
        )
    index = {c: i for i, c in enumerate(classes)}
    return torch.stack(images), torch.tensor(
        [index[c] for _, c in items], dtype=torch.int64
    )


def _fingerprint(path: Path) -> str:
    """Changes when the folder's or archive's files change (names, sizes and
    modification times).
    """
    if path.is_dir():
        return fingerprint(
            path, sorted(p for p in path.rglob("*") if p.is_file())
        )
    return fingerprint(path.parent, [path])


def _archive_stem(path: Path) -> str:
    """'cifar10-jpeg' for .../cifar10-jpeg.tar.gz: a readable name for a
    folder or archive.
    """
    name = path.resolve().name
    for suffix in ARCHIVE_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def _folder_arrays(path: Path, size: int | None, grey: bool) -> Decoded:
    """Every split of an image folder or archive, decoded once and cached in
    one file.
    """
    cache = cache_file(
        _archive_stem(path),
        repr((str(path.resolve()), size, grey)),
        _fingerprint(path),
    )
    cached = read_cache(cache)
    if cached is not None:
        return cached
    encoded = _read_images(path)
    groups = _layout(path, list(encoded))
    classes = sorted({c for items in groups.values() for _, c in items})
    splits = {
        s: _decode_all(path, items, encoded, classes, grey, size)
        for s, items in groups.items()
    }
    decoded = Decoded.of(splits, classes)
    write_cache(cache, decoded)
    return decoded


def load_image_folder(
    path: PathLike,
    size: int | None = None,
    split: str | None = None,
    *,
    grey: bool = False,
) -> Arrays:
    """Decode a folder or archive of images, one subfolder per class, into
    uint8 tensors.

    ``path`` is a folder or a .zip / .tar / .tar.gz / .tgz archive laid out as
    ``<class>/<image>`` or, with split folders, ``train/<class>/<image>`` and
    ``test/<class>/<image>`` (``val/`` too); ``split`` picks one of those.
    Classes are the class folders' names, sorted (over all splits, so labels
    agree between splits). Images become RGB (one channel with ``grey=True``)
    and must all have one size unless ``size`` is given: then each is scaled so
    that its shorter side is ``size`` and its centre square kept.

    Every split is decoded at once and cached in ``cache_dir()`` (keyed by the
    files' sizes and dates): a second call reads no image. Archives are read in
    place, never extracted. Returns (images N x C x H x W uint8, labels int64,
    class names).
    """
    arrays, _ = _image_folder(Path(path).expanduser(), size, split, grey)
    return arrays


def _image_folder(
    path: Path, size: int | None, split: str | None, grey: bool
) -> tuple[Arrays, str]:
    """``load_image_folder``'s arrays, and the digest of all the folder's
    data (``Decoded.digest``).
    """
    if not path.exists():
        raise FileNotFoundError(
            f"No image folder or archive at {path.resolve()}. Check the path."
        )
    if split is not None and split not in SPLITS:
        raise ValueError(
            f"split must be one of {', '.join(SPLITS)} or None, not {split!r}."
        )
    decoded = _folder_arrays(path, size, grey)
    key = split or "all"
    if key not in decoded.splits:
        splits = ", ".join(decoded.splits)
        if split is None:
            raise ValueError(
                f"{path} has split folders ({splits}): pass "
                "split='train' or split='test'."
            )
        raise ValueError(
            f"{path} has no {split}/ folder of class folders "
            f"(its splits: {splits})."
        )
    images, labels = decoded.splits[key]
    return (images, labels, decoded.classes), decoded.digest
