"""The cache of decoded arrays: a data set decoded once, read back in a
fraction of a second.

A cache file holds one source's splits as uint8 tensors, its class names and a
digest of both (``Decoded``). Its name says which source it was built from and
which version of that source's files (``cache_file``): when the files change (a
corrupt download replaced, a folder with a new image), the name changes, the
old file is no longer read, and writing the new one removes it.

Files are written atomically (a temporary file, then a rename), so a reader
never sees half a file. A writer that is interrupted (Ctrl-C) removes its
temporary file; one that was killed leaves it behind, and the next write
removes it (the writer's host and process id are in its name).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

# Bump when the cache files' layout changes, so that old files are not read. 2:
# file names keyed by the source's files; a digest of the arrays in the file.
CACHE_VERSION = 2
# A temporary file untouched for this long belongs to a writer that is gone.
STALE_AFTER_S = 3600

# split -> (uint8 images N x C x H x W, int64 labels)
Splits = dict[str, tuple[torch.Tensor, torch.Tensor]]
# one split's images, labels, and the class names
Arrays = tuple[torch.Tensor, torch.Tensor, list[str]]


@dataclass
class Decoded:
    """One source decoded: its splits (an image folder without split folders
    has the one split "all").
    """

    splits: Splits
    classes: list[str]
    # of the splits and classes: the same data gives the same digest, whatever
    # its path or dates
    digest: str

    @classmethod
    def of(cls, splits: Splits, classes: Sequence[str]) -> Decoded:
        """Splits and classes with their digest computed."""
        return cls(splits, list(classes), digest(splits, classes))


def digest(splits: Splits, classes: Sequence[str]) -> str:
    """A SHA-1 of the arrays' bytes and shapes and of the class names (about
    0.1 s for CIFAR-10's training set).
    """
    h = hashlib.sha1(repr(list(classes)).encode())
    for split in sorted(splits):
        images, labels = splits[split]
        h.update(
            repr((split, tuple(images.shape), tuple(labels.shape))).encode()
        )
        h.update(memoryview(images.contiguous().numpy()).cast("B"))
        h.update(
            memoryview(labels.to(torch.int64).contiguous().numpy()).cast("B")
        )
    return h.hexdigest()


def cache_dir() -> Path:
    """Where decoded arrays (and downloads into a read-only data root) go.

    ``$CNNBOOK_CACHE``, else ``~/.cache/cnnbook``; it must be writable (if it
    is not, data still loads, only uncached, with a warning).
    """
    env = os.environ.get("CNNBOOK_CACHE")
    return (
        Path(env).expanduser() if env else Path.home() / ".cache" / "cnnbook"
    )


def fingerprint(folder: Path, files: Iterable[Path]) -> str:
    """Changes when any of ``files`` changes: their names (relative to
    ``folder``), sizes and modification times.

    Cheap (no file is read), and reliable for files that are replaced or
    rewritten, which changes their modification time.
    """
    stats = []
    for file in files:
        stat = file.stat()
        stats.append(
            (
                file.relative_to(folder).as_posix(),
                stat.st_size,
                stat.st_mtime_ns,
            )
        )
    return repr(stats)


def _short(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def cache_file(stem: str, source: str, version: str) -> Path:
    """The cache file of ``source`` (where its files are, how they are decoded)
    built from ``version`` of them.

    ``stem`` is a readable name; ``version`` is the files' ``fingerprint``. The
    name is ``<stem>-<source hash>-<version hash>-v<CACHE_VERSION>.pt``.
    """
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem)
    return (
        cache_dir()
        / "arrays"
        / f"{stem}-{_short(source)}-{_short(version)}-v{CACHE_VERSION}.pt"
    )


def _other_versions(path: Path) -> list[Path]:
    """The cache files of the same source as ``path`` built from other
    versions of its files.
    """
    stem_and_source, _, version_suffix = path.name.rsplit("-", 2)
    return [
        p
        for p in path.parent.glob(f"{stem_and_source}-*-{version_suffix}")
        if p != path
    ]


def read_cache(path: Path) -> Decoded | None:
    """What ``path`` holds; None if there is no such file, or if it is
    unreadable (with a warning naming it).
    """
    if not path.exists():
        return None
    try:
        saved = torch.load(path, weights_only=True)
        classes = [str(c) for c in saved["classes"]]
        splits = {
            str(s): (d["images"], d["labels"])
            for s, d in saved["splits"].items()
        }
        for images, labels in splits.values():
            if (
                images.dtype != torch.uint8
                or images.ndim != 4
                or labels.dtype != torch.int64
                or labels.shape != (len(images),)
            ):
                raise ValueError("its arrays have the wrong type or shape")
            if len(labels) and not 0 <= int(labels.min()) <= int(
                labels.max()
            ) < len(classes):
                raise ValueError(
                    f"labels "
                    f"{int(labels.min())}..{int(labels.max())} "
                    f"for {len(classes)} classes"
                )
        if not isinstance(saved["digest"], str):
            raise ValueError("it has no digest")
    # a truncated, damaged or foreign file: any failure means "rebuild"
    except Exception as error:
        reason = (
            f"{type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        )
        warnings.warn(
            f"The data cache file {path} is unreadable ({reason}); rebuilding "
            "it from the source. "
            "(Deleting a cache file is always safe: the next load rebuilds "
            "it.)",
            stacklevel=3,
        )
        return None
    return Decoded(splits, classes, saved["digest"])


def write_cache(path: Path, decoded: Decoded) -> None:
    """Save ``decoded`` to ``path`` atomically, then remove the files of the
    source's other versions.

    A failure to write (a read-only or full disk) is a warning: the data is
    decoded again next time. A Ctrl-C removes the temporary file and goes on as
    the KeyboardInterrupt it is.
    """
    saved = {
        "classes": list(decoded.classes),
        "splits": {
            s: {"images": x, "labels": y}
            for s, (x, y) in decoded.splits.items()
        },
        "digest": decoded.digest,
    }
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _sweep_temporaries(path.parent)
        handle, name = tempfile.mkstemp(
            dir=path.parent,
            prefix=f"{path.name}.{_host()}.{os.getpid()}.",
            suffix=".tmp",
        )
        os.close(handle)
        tmp = Path(name)
        # A file name, not a file object: torch then writes in C++, without
        # calling back into Python, where a Ctrl-C would surface as torch's
        # RuntimeError instead of a KeyboardInterrupt.
        torch.save(saved, tmp)
        # temporary files are private (0600); a cache may be shared
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
        for old in _other_versions(path):
            old.unlink(missing_ok=True)
    except BaseException as error:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        interrupt = _interrupt(error)
        if interrupt is error:
            raise
        # wrapped by torch (a RuntimeError raised while handling it): unwrap it
        if interrupt is not None:
            raise interrupt from None
        # RuntimeError: torch's own write errors
        if not isinstance(error, (OSError, RuntimeError)):
            raise
        warnings.warn(
            f"Could not write the data cache {path} ({error}); the data will "
            "be decoded again next time. "
            "Set CNNBOOK_CACHE to a writable folder to fix this.",
            stacklevel=3,
        )


def _interrupt(error: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt that ``error`` is, or was raised while
    handling; None if there is none.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())


# <cache file name>.<host>.<pid>.<random>.tmp, as write_cache names its
# temporary files.
_TEMPORARY = re.compile(r"\.(?P<host>[A-Za-z0-9_-]*)\.(?P<pid>\d+)\.\w+\.tmp$")


def _sweep_temporaries(folder: Path) -> None:
    """Remove the temporary files of writers that are gone: killed, or stopped
    by a power cut.

    A file is gone when it is older than ``STALE_AFTER_S`` (any writer, any
    host), or when its writer ran on this host and its process has ended.
    """
    now = time.time()
    for tmp in folder.glob("*.tmp"):
        match = _TEMPORARY.search(tmp.name)
        try:
            stale = now - tmp.stat().st_mtime > STALE_AFTER_S
            dead = (
                match is not None
                and match["host"] == _host()
                and not _running(int(match["pid"]))
            )
            if stale or dead:
                tmp.unlink()
        # removed meanwhile by another process, or not ours to remove
        except OSError:
            pass


def _running(pid: int) -> bool:
    # os.kill(pid, 0) would send Ctrl-C there; the age rule alone applies
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    return True
