"""Tests of cnnbook.data (and the pipeline benchmark) on the offline data and small image folders.

The offline data is read from $CNNBOOK_DATA (default: ../shared/data next to
the repository); decoded arrays go to $CNNBOOK_CACHE (default: .cache in the
repository), so CIFAR-10 is decoded once, not at every run. Tests that must
see a cold cache point CNNBOOK_CACHE at a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from cnnbook import bench, data
from cnnbook.data import folders, sources

REPO = Path(__file__).resolve().parents[1]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module", autouse=True)
def data_env():
    """Use the offline copies and the repository's cache, unless the environment says otherwise."""
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("CNNBOOK_DATA"):
            mp.setenv("CNNBOOK_DATA", str(REPO.parent / "shared" / "data"))
        if not os.environ.get("CNNBOOK_CACHE"):
            mp.setenv("CNNBOOK_CACHE", str(REPO / ".cache"))
        yield


@pytest.fixture
def shared() -> Path:
    root = data.data_root()
    if not (root / "MNIST" / "raw").is_dir() or not (root / "cifar10-jpeg.tar.gz").is_file():
        pytest.skip(f"the offline data (MNIST/raw, cifar10-jpeg.tar.gz) is not in {root}: set CNNBOOK_DATA")
    return root


@pytest.fixture
def cold_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CNNBOOK_CACHE", str(cache))
    return cache


# --------------------------------------------------------------------------
# Small image folders: every image is unique, its id readable from pixel (0, 0)
# --------------------------------------------------------------------------

PETS = ["cat", "dog", "owl"]


def _picture(image_id: int, size: tuple[int, int] = (8, 8)) -> np.ndarray:
    h, w = size
    picture = np.zeros((h, w, 3), dtype=np.uint8)
    picture[..., 0] = image_id
    picture[..., 1] = np.arange(h * w).reshape(h, w) % 256
    picture[..., 2] = 255 - image_id
    return picture


def _make_tree(root: Path, splits: dict[str, int] | None = None) -> dict[int, tuple[str, str]]:
    """PNG files root/<split>/<class>/<id>.png (or root/<class>/<id>.png); returns {id: (split, class)}."""
    made, image_id = {}, 0
    for split, per_class in (splits or {"": 10}).items():
        for cls in PETS:
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for _ in range(per_class):
                Image.fromarray(_picture(image_id)).save(folder / f"{image_id:03d}.png")
                made[image_id] = (split, cls)
                image_id += 1
    return made


def _ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].tolist()


def _zip(tree: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(tree.rglob("*.png")):
            archive.write(file, file.relative_to(tree).as_posix())
    return target


def test_image_folder_from_tree_tar_and_zip_agree(tmp_path, cold_cache):
    made = _make_tree(tmp_path / "pets", {"train": 4, "test": 2})
    # A .tar.gz wrapped in a top folder (pets/train/cat/000.png), as archives often are.
    tarball = shutil.make_archive(str(tmp_path / "pets"), "gztar", root_dir=tmp_path, base_dir="pets")
    sources = [tmp_path / "pets", Path(tarball), _zip(tmp_path / "pets", tmp_path / "pets.zip")]
    for source in sources:
        for split, count in (("train", 12), ("test", 6)):
            images, labels, classes = data.load_image_folder(source, split=split)
            assert classes == PETS
            assert images.shape == (count, 3, 8, 8) and images.dtype == torch.uint8
            assert labels.dtype == torch.int64
            for image, label, image_id in zip(images, labels, _ids(images)):
                assert made[image_id] == (split, PETS[label])
                assert torch.equal(image, torch.from_numpy(_picture(image_id)).permute(2, 0, 1))  # PNG is lossless


def test_image_folder_without_splits(tmp_path, cold_cache):
    _make_tree(tmp_path / "flat")
    (tmp_path / "flat" / "cat" / "notes.txt").write_text("not an image")
    archive = _zip(tmp_path / "flat", tmp_path / "flat.zip")
    with tarfile.open(tmp_path / "flat.tar", "w") as tar:  # members named ./cat/000.png
        tar.add(tmp_path / "flat", arcname=".")
    for source in (archive, tmp_path / "flat.tar"):
        images, labels, classes = data.load_image_folder(source)
        assert images.shape == (30, 3, 8, 8) and classes == PETS
        assert torch.bincount(labels).tolist() == [10, 10, 10]
    with pytest.raises(ValueError, match="no train/ folder"):
        data.load_image_folder(archive, split="train")


def test_image_folder_errors(tmp_path, cold_cache):
    _make_tree(tmp_path / "pets", {"train": 2, "test": 1})
    with pytest.raises(ValueError, match="split='train'"):
        data.load_image_folder(tmp_path / "pets")
    with pytest.raises(ValueError, match="split must be"):
        data.load_image_folder(tmp_path / "pets", split="training")
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        data.load_image_folder(tmp_path / "no-such-folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images in class folders"):
        data.load_image_folder(tmp_path / "empty")


def test_image_folder_mixed_sizes(tmp_path, cold_cache):
    _make_tree(tmp_path / "mixed")
    Image.fromarray(_picture(99, (10, 12))).save(tmp_path / "mixed" / "owl" / "099.png")
    with pytest.raises(ValueError, match=r"differ in size.*image_size=64 for load \(size=64 for load_image_folder\)"):
        data.load_image_folder(tmp_path / "mixed")
    images, labels, _ = data.load_image_folder(tmp_path / "mixed", size=6)
    assert images.shape == (31, 3, 6, 6)
    # load takes the same choice: image_size.
    with pytest.raises(ValueError, match="differ in size"):
        data.load(str(tmp_path / "mixed"), val_size=2, device="cpu")
    bundle = data.load(str(tmp_path / "mixed"), val_size=2, image_size=6, device="cpu")
    assert bundle.input_size == (3, 6, 6)
    with pytest.raises(ValueError, match="image_size=6 is for image folders"):
        data.load("mnist", image_size=6)


def test_image_folder_cache(tmp_path, cold_cache, monkeypatch):
    _make_tree(tmp_path / "pets")
    first = data.load_image_folder(tmp_path / "pets")
    with monkeypatch.context() as m:
        m.setattr(folders, "_read_images", lambda path: pytest.fail("the cache was not used"))
        second = data.load_image_folder(tmp_path / "pets")
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1]) and first[2] == second[2]
    # A changed folder is a different source: it is read again.
    Image.fromarray(_picture(77)).save(tmp_path / "pets" / "dog" / "077.png")
    assert len(data.load_image_folder(tmp_path / "pets")[0]) == 31


# --------------------------------------------------------------------------
# Named data sets: the offline copies
# --------------------------------------------------------------------------


def test_paths_follow_the_environment(monkeypatch, tmp_path):
    (tmp_path / "d").mkdir()
    monkeypatch.setenv("CNNBOOK_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("CNNBOOK_CACHE", str(tmp_path / "c"))
    assert data.data_root() == tmp_path / "d" and data.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("CNNBOOK_DATA")
    monkeypatch.delenv("CNNBOOK_CACHE")
    assert data.data_root() == Path.home() / ".cache" / "cnnbook" / "data"
    assert data.cache_dir() == Path.home() / ".cache" / "cnnbook"


def _mean_std(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel pixel mean and std in [0, 1] units, in float64, from each channel's histogram."""
    hist = torch.stack([torch.bincount(images[:, c].flatten(), minlength=256) for c in range(images.shape[1])]).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    mean = (hist * values).sum(1) / hist.sum(1)
    return mean, ((hist * values**2).sum(1) / hist.sum(1) - mean**2).sqrt()


def test_mnist(shared):
    images, labels, classes = data.load_arrays("mnist", "train")
    assert images.shape == (60000, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    mean, std = _mean_std(images)
    assert mean.item() == pytest.approx(0.1307, abs=1e-4) and std.item() == pytest.approx(0.3081, abs=1e-4)
    assert classes == list("0123456789")
    images, labels, _ = data.load_arrays("mnist", "test")
    assert images.shape == (10000, 1, 28, 28) and labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_cifar10_from_the_jpeg_archive(shared):
    images, labels, classes = data.load_arrays("cifar10", "train")
    assert classes == CIFAR_CLASSES  # CIFAR's order, not alphabetical (automobile before bird ...)
    assert images.shape == (50000, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [5000] * 10
    mean, std = _mean_std(images)
    assert torch.allclose(mean, torch.tensor([0.4913, 0.4821, 0.4465], dtype=torch.float64), atol=2e-4)
    jpeg_std = torch.tensor([0.2452, 0.2428, 0.2606], dtype=torch.float64)  # the JPEG copy's, see its README
    assert torch.allclose(std, jpeg_std, atol=2e-4)
    images, labels, classes = data.load_arrays("cifar10", "test")
    assert images.shape == (10000, 3, 32, 32) and torch.bincount(labels).tolist() == [1000] * 10


def test_cache_hit_does_not_touch_the_source(shared, cold_cache, monkeypatch):
    first = data.load_arrays("mnist", "test")
    assert list((cold_cache / "arrays").glob("mnist-test-*.pt"))
    monkeypatch.setattr(sources, "_read_torchvision", lambda *a: pytest.fail("the cache was not used"))
    second = data.load_arrays("mnist", "test")
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_corrupt_cache_is_rebuilt(shared, cold_cache):
    first = data.load_arrays("mnist", "test")
    (cache,) = (cold_cache / "arrays").glob("mnist-test-*.pt")
    cache.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable.*rebuilding"):
        second = data.load_arrays("mnist", "test")
    assert torch.equal(first[0], second[0])
    assert torch.load(cache, weights_only=True)["splits"]["test"]["images"].shape == (10000, 1, 28, 28)


def test_missing_data_offline_says_where_it_looked(tmp_path, cold_cache):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(data.DataNotFoundError) as caught:
        data.load_arrays("cifar10", "train", root=empty, download=False)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    looked_for = (str(empty / "cifar-10-batches-py"), "cifar10-jpeg.tar.gz", str(cold_cache),
                  f"root= a folder (now {empty})")
    for needed in (*looked_for, "download=True"):
        assert needed in message
    assert "download failed" not in message
    assert list(empty.iterdir()) == []  # nothing written into the data root


def test_unknown_names_and_splits(tmp_path):
    with pytest.raises(ValueError, match="mnist, fashion_mnist, cifar10.*'mnist'"):
        data.load_arrays("mnsit")
    with pytest.raises(ValueError, match="Did you mean 'cifar10'"):
        data.load("cifar-10")
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.load_arrays("mnist", split="validation")


# --------------------------------------------------------------------------
# Splits and load()
# --------------------------------------------------------------------------


def test_stratified_split():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    picked, rest = data.stratified_split(labels, 10, torch.Generator().manual_seed(0))
    assert torch.bincount(labels[picked]).tolist() == [5, 3, 2]
    assert sorted(picked.tolist() + rest.tolist()) == list(range(100))
    again, _ = data.stratified_split(labels, 10, torch.Generator().manual_seed(0))
    other, _ = data.stratified_split(labels, 10, torch.Generator().manual_seed(1))
    assert torch.equal(picked, again) and not torch.equal(picked, other)


def test_load_image_folder_splits(tmp_path, cold_cache):
    made = _make_tree(tmp_path / "pets", {"train": 10, "test": 2})
    train_ids = {i for i, (split, _) in made.items() if split == "train"}
    bundle = data.load(str(tmp_path / "pets"), val_size=6, batch_size=8, device="cpu", seed=0)
    train, val = set(_ids(bundle.train.images)), set(_ids(bundle.val.images))
    assert not train & val and train | val == train_ids
    assert torch.bincount(bundle.val.labels).tolist() == [2, 2, 2]  # stratified
    assert sorted(_ids(bundle.test.images)) == sorted(i for i, (s, _) in made.items() if s == "test")
    assert bundle.name == "pets" and bundle.classes == PETS and bundle.input_size == (3, 8, 8)
    mean, std = _mean_std(bundle.train.images)  # folders: statistics of the training split
    assert torch.allclose(bundle.mean.double(), mean, atol=1e-5) and torch.allclose(bundle.std.double(), std, atol=1e-5)
    assert bundle.train.augment is None
    _make_tree(tmp_path / "with_val", {"train": 4, "val": 1, "test": 1})
    own = data.load(str(tmp_path / "with_val"), device="cpu")  # its val/ folder, not val_size=5000
    assert (own.train.num_samples, own.val.num_samples, own.test.num_samples) == (12, 3, 3)
    same = data.load(str(tmp_path / "pets"), val_size=6, device="cpu", seed=0)
    other = data.load(str(tmp_path / "pets"), val_size=6, device="cpu", seed=1)
    assert set(_ids(same.val.images)) == val and set(_ids(other.val.images)) != val


def test_load_folder_without_test_split_holds_one_out(tmp_path, cold_cache):
    _make_tree(tmp_path / "flat")  # 30 images, 10 a class
    bundle = data.load(str(tmp_path / "flat"), val_size=0.1, device="cpu")
    sizes = (bundle.train.num_samples, bundle.val.num_samples, bundle.test.num_samples)
    assert sizes == (22, 2, 6)  # test: 30 // 5; val: round(0.1 * 24)
    everything = _ids(bundle.train.images) + _ids(bundle.val.images) + _ids(bundle.test.images)
    assert sorted(everything) == list(range(30))
    with pytest.raises(ValueError, match="val_size=5000 leaves no training images out of 24: use a smaller val_size, e.g. val_size=2.$"):
        data.load(str(tmp_path / "flat"), device="cpu")


def test_load_cifar10_subsets(shared):
    bundle = data.load("cifar10", train_size=1000, val_size=500, test_size=200, batch_size=100, device="cpu")
    assert torch.bincount(bundle.train.labels).tolist() == [100] * 10
    assert torch.bincount(bundle.val.labels).tolist() == [50] * 10
    assert torch.bincount(bundle.test.labels).tolist() == [20] * 10
    assert bundle.classes == CIFAR_CLASSES and bundle.input_size == (3, 32, 32)
    assert bundle.train.augment == data.Augment(crop_padding=4, flip=True)
    assert bundle.val.augment is None and not bundle.val.shuffle and not bundle.test.shuffle
    assert len(bundle.train) == 10 and len(bundle.val) == 3  # eval batches: 2 x 100
    # The validation split does not depend on train_size.
    bigger = data.load("cifar10", train_size=2000, val_size=500, test_size=200, device="cpu")
    assert torch.equal(bundle.val.images, bigger.val.images)
    assert "cifar10: 1,000 train / 500 validation / 200 test images of 3x32x32" in str(bundle)


def test_load_mnist_padded(shared):
    bundle = data.load("mnist", pad=2, train_size=200, val_size=100, test_size=100, device="cpu")
    assert bundle.input_size == (1, 32, 32) and bundle.train.augment is None
    assert {key: bundle.description[key] for key in ("name", "pad", "input_size", "train_size", "augment")} == \
        {"name": "mnist", "pad": 2, "input_size": [1, 32, 32], "train_size": 200, "augment": "None"}
    assert re.fullmatch("[0-9a-f]{16}", bundle.description["source"])
    for loader in (bundle.train, bundle.val, bundle.test):
        border = torch.ones(32, 32, dtype=torch.bool)
        border[2:30, 2:30] = False
        assert loader.images.shape[1:] == (1, 32, 32) and (loader.images[:, :, border] == 0).all()
    x, _ = next(iter(bundle.test))
    assert torch.allclose(x[:, 0, 0, 0], torch.tensor(-0.1307 / 0.3081))  # padding is background


# --------------------------------------------------------------------------
# BatchLoader and Augment
# --------------------------------------------------------------------------


def _random_images(n: int, c: int = 3, size: int = 8, seed: int = 0) -> torch.Tensor:
    # Values 1..255, so that zero padding is recognisable.
    return torch.randint(1, 256, (n, c, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("device", DEVICES)
def test_batch_loader_batches(device):
    images, labels = _random_images(10), torch.arange(10)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    loader = data.BatchLoader(images, labels, 4, mean=mean, std=std, shuffle=False, device=device)
    assert len(loader) == 3 and loader.num_samples == 10
    batches = list(loader)
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x = torch.cat([x for x, _ in batches])
    assert x.dtype == torch.float32 and x.device.type == device and x.shape == (10, 3, 8, 8)
    assert torch.cat([y for _, y in batches]).tolist() == list(range(10)) and batches[0][1].dtype == torch.int64
    expected = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(x.cpu(), expected, atol=1e-5)
    dropping = data.BatchLoader(images, labels, 4, mean=mean, std=std, shuffle=False, device=device, drop_last=True)
    assert len(dropping) == 2 and sum(len(y) for _, y in dropping) == 8


@pytest.mark.parametrize("device", DEVICES)
def test_batch_loader_epochs_are_reproducible(device):
    images, labels = _random_images(50), torch.arange(50)

    def loader(seed: int = 0) -> data.BatchLoader:
        return data.BatchLoader(images, labels, 16, mean=(0.5,) * 3, std=(0.25,) * 3, shuffle=True,
                                augment=data.Augment(), device=device, seed=seed)  # fmt: skip

    def epoch(loader: data.BatchLoader, e: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if e is not None:
            loader.set_epoch(e)
        batches = list(loader)
        return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])

    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state() if device == "cuda" else None
    a = loader()
    x3, y3 = epoch(a, 3)
    assert sorted(y3.tolist()) == list(range(50)) and y3.tolist() != list(range(50))  # a shuffled permutation
    again = epoch(a, 3)
    resumed = epoch(loader(), 3)  # a new run that resumes at epoch 3
    x4, y4 = epoch(a, 4)
    assert torch.equal(x3, again[0]) and torch.equal(y3, again[1])
    assert torch.equal(x3, resumed[0]) and torch.equal(y3, resumed[1])
    assert not torch.equal(y3, y4)
    assert not torch.equal(epoch(loader(seed=1), 3)[1], y3)
    assert not torch.equal(epoch(a)[1], epoch(a)[1])  # without set_epoch each pass is the next epoch
    assert torch.equal(torch.get_rng_state(), cpu_state)  # the global RNG was neither used nor reseeded
    if cuda_state is not None:
        assert torch.equal(torch.cuda.get_rng_state(), cuda_state)


@pytest.mark.parametrize("device", DEVICES)
def test_crop_at_known_offsets(device):
    x = _random_images(5).to(device)
    assert torch.equal(data.crop(x, 2, torch.full((5,), 2, device=device), torch.full((5,), 2, device=device)), x)
    zeros = torch.zeros(5, dtype=torch.int64, device=device)
    out = data.crop(x, 2, zeros, zeros)  # content moves 2 pixels down and right
    assert torch.equal(out[:, :, 2:, 2:], x[:, :, :-2, :-2])
    assert (out[:, :, :2] == 0).all() and (out[:, :, :, :2] == 0).all()
    out = data.crop(x, 2, zeros, zeros + 4)  # 2 down, 2 left
    assert torch.equal(out[:, :, 2:, :-2], x[:, :, :-2, 2:]) and (out[:, :, :, -2:] == 0).all()


def _shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` moved dy pixels down and dx right, zero-filled."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = \
        image[:, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]  # fmt: skip
    return out


@pytest.mark.parametrize("device", DEVICES)
def test_random_crop_shifts_each_image(device):
    x = _random_images(64).to(device)
    out = data.Augment(crop_padding=2, flip=False)(x, torch.Generator(device=device).manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    offsets = set()
    for image, cropped in zip(x.cpu(), out.cpu()):
        shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
        found = [shift for shift in shifts if torch.equal(_shifted(image, *shift), cropped)]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 10  # 25 possible offsets: drawn per image, not per batch


@pytest.mark.parametrize("device", DEVICES)
def test_random_flip_mirrors_some_images(device):
    x = _random_images(64).to(device)
    out = data.Augment(crop_padding=0, flip=True)(x, torch.Generator(device=device).manual_seed(0))
    flipped = [torch.equal(o, i.flip(-1)) for i, o in zip(x, out)]
    kept = [torch.equal(o, i) for i, o in zip(x, out)]
    assert all(f or k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 54


def test_augment_off_is_the_identity_and_floats_work():
    x = _random_images(4)
    assert torch.equal(data.Augment(crop_padding=0, flip=False)(x, torch.Generator()), x)
    out = data.Augment()(x.float() / 255, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.float32


def test_denormalize(tmp_path, cold_cache):
    _make_tree(tmp_path / "pets", {"train": 10, "test": 2})
    bundle = data.load(str(tmp_path / "pets"), val_size=6, device="cpu")
    x, _ = next(iter(bundle.val))
    assert torch.allclose(bundle.denormalize(x), bundle.val.images.float() / 255, atol=1e-5)
    assert torch.allclose(bundle.denormalize(x[0]), bundle.val.images[0].float() / 255, atol=1e-5)


# --------------------------------------------------------------------------
# The pipeline benchmark, tiny
# --------------------------------------------------------------------------


def test_bench_pipeline_prints_a_table(shared, capsys):
    assert bench.main(["pipeline", "--images", "512", "--batch-size", "128", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "DataLoader" in out and "BatchLoader" in out and "speed-up" in out


def test_pca_lighting_basis_is_the_rgb_covariance():
    x = _random_images(50, size=6)
    x[:, 1] = x[:, 0] // 2 + 20  # green follows red: one strong direction of colour
    eigval, eigvec = data.pca_lighting_basis(x, chunk=7)  # chunks must not change the result
    pixels = x.permute(1, 0, 2, 3).reshape(3, -1).double() / 255
    covariance = torch.cov(pixels, correction=0).float()
    assert torch.allclose(eigvec @ torch.diag(eigval) @ eigvec.T, covariance, atol=1e-6)
    assert torch.allclose(eigvec.T @ eigvec, torch.eye(3), atol=1e-5)
    assert eigval[0] >= eigval[1] >= eigval[2] >= 0
    with pytest.raises(ValueError, match="uint8 RGB"):
        data.pca_lighting_basis(x[:, :1])


def test_pca_lighting_shifts_each_image_by_a_constant_colour():
    x = _random_images(16, size=5)
    eigval = torch.tensor([0.2, 0.02, 0.005])
    eigvec = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))[0]
    basis = (tuple(eigval.tolist()), tuple(map(tuple, eigvec.tolist())))
    augment = data.Augment(crop_padding=0, flip=False, pca_lighting=0.1, pca_basis=basis)
    out = augment(x, torch.Generator().manual_seed(0))
    shift = out - x.float()  # N x 3 x H x W
    assert out.dtype == torch.float32
    assert torch.allclose(shift, shift[:, :, :1, :1].expand_as(shift), atol=1e-4)  # one colour per image
    # The same draws give the paper's formula: 255 * eigvec @ (alpha * eigval), alpha ~ N(0, 0.1^2).
    alpha = torch.randn(16, 3, generator=torch.Generator().manual_seed(0)) * 0.1
    expected = torch.stack([255 * eigvec @ (a * eigval) for a in alpha])
    assert torch.allclose(shift[:, :, 0, 0], expected, atol=1e-3)
    assert len({tuple(s.tolist()) for s in shift[:, :, 0, 0].round(decimals=3)}) == 16  # drawn per image
    # pca_lighting=0 changes nothing, basis or not.
    off = data.Augment(crop_padding=0, flip=False, pca_lighting=0.0, pca_basis=basis)
    assert torch.equal(off(x, torch.Generator()), x)
    with pytest.raises(ValueError, match="colour basis"):
        data.Augment(crop_padding=0, flip=False, pca_lighting=0.1)(x, torch.Generator())


def test_load_fills_in_the_pca_basis_from_the_training_split(shared):
    bundle = data.load("cifar10", train_size=500, val_size=100, test_size=100, device="cpu",
                       augment=data.Augment(pca_lighting=0.1))  # fmt: skip
    eigval, eigvec = data.pca_lighting_basis(bundle.train.images)
    assert torch.allclose(torch.tensor(bundle.train.augment.pca_basis[0]), eigval)
    assert torch.allclose(torch.tensor(bundle.train.augment.pca_basis[1]).abs(), eigvec.abs())
    x, _ = next(iter(bundle.train))
    assert x.dtype == torch.float32 and torch.isfinite(x).all()


# --------------------------------------------------------------------------
# The cache follows its source
# --------------------------------------------------------------------------


def _mnist_copy(shared: Path, root: Path) -> Path:
    """root/MNIST/raw: copies of MNIST's label files (to damage) and links to its image files."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for source in sorted((shared / "MNIST" / "raw").iterdir()):
        if "labels" in source.name:
            shutil.copyfile(source, raw / source.name)
        else:
            (raw / source.name).symlink_to(source)
    return raw


def test_a_changed_source_file_is_decoded_again(shared, tmp_path, cold_cache):
    labels_file = _mnist_copy(shared, tmp_path / "root") / "train-labels-idx1-ubyte"
    good = labels_file.read_bytes()
    changed = bytearray(good)
    changed[8] = 3  # the first label, 5, becomes 3: still a digit, so only the cache's key can tell
    labels_file.write_bytes(changed)
    assert data.load_arrays("mnist", "train", root=tmp_path / "root")[1][:3].tolist() == [3, 0, 4]
    labels_file.write_bytes(good)  # the same size, a later modification time
    assert data.load_arrays("mnist", "train", root=tmp_path / "root")[1][:3].tolist() == [5, 0, 4]
    # The changed version's cache file was replaced, not kept beside the new one.
    assert len(list((cold_cache / "arrays").glob("mnist-train-*.pt"))) == 1
    # Another root is another source, with its own cache file.
    labels_file.write_bytes(changed)
    assert data.load_arrays("mnist", "train", root=tmp_path / "root")[1][0] == 3
    assert data.load_arrays("mnist", "train")[1][0] == 5  # the shared copy
    assert len(list((cold_cache / "arrays").glob("mnist-train-*.pt"))) == 2


def test_labels_out_of_range_name_the_source_file(shared, tmp_path, cold_cache):
    labels_file = _mnist_copy(shared, tmp_path / "root") / "train-labels-idx1-ubyte"
    good = labels_file.read_bytes()
    damaged = bytearray(good)
    damaged[8] = 255
    labels_file.write_bytes(damaged)
    with pytest.raises(ValueError, match=rf"{re.escape(str(labels_file))}.*not classes \(0\.\.9\): 1 of them, "
                                         r"the first 255 \(image 0\)\. A file is damaged"):  # fmt: skip
        data.load_arrays("mnist", "train", root=tmp_path / "root")
    assert not list((cold_cache / "arrays").glob("mnist-train-*"))  # nothing cached from the damaged file
    labels_file.write_bytes(good)
    assert data.load_arrays("mnist", "train", root=tmp_path / "root")[1][:3].tolist() == [5, 0, 4]


def test_a_cache_file_with_labels_out_of_range_is_named_and_rebuilt(shared, cold_cache):
    first = data.load_arrays("mnist", "test")
    (cache,) = (cold_cache / "arrays").glob("mnist-test-*.pt")
    saved = torch.load(cache, weights_only=True)
    saved["splits"]["test"]["labels"][0] = 99
    torch.save(saved, cache)
    unreadable = r"is unreadable \(ValueError: labels 0\.\.99 for 10 classes\); rebuilding it.*Deleting a cache file"
    with pytest.warns(UserWarning, match=re.escape(str(cache)) + " " + unreadable):
        second = data.load_arrays("mnist", "test")
    assert torch.equal(second[1], first[1])
    assert torch.load(cache, weights_only=True)["splits"]["test"]["labels"][0] == first[1][0]


# --------------------------------------------------------------------------
# Interrupted and killed cache writers, in real processes
# --------------------------------------------------------------------------

# Decodes an image folder and caches it through a slow disk: the first write to the
# cache file prints "writing" and waits, so that a signal arrives while torch is writing.
SLOW_WRITER = r"""
import os, signal, sys, time
import torch
from cnnbook import data

signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C raises KeyboardInterrupt, as in a terminal


class SlowDisk:
    def __init__(self, file):
        self.file, self.started = file, False

    def write(self, chunk):
        if not self.started:
            self.started = True
            print("writing", flush=True)
            time.sleep(60)
        return self.file.write(chunk)

    def flush(self):
        self.file.flush()


real_save = torch.save


def slow_save(obj, f, *args, **kwargs):
    # Through a file object torch calls back into Python for every write: the worst case,
    # where an interrupt surfaces inside torch's writer.
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as file:
            return real_save(obj, SlowDisk(file), *args, **kwargs)
    return real_save(obj, SlowDisk(f), *args, **kwargs)


torch.save = slow_save
data.load_image_folder(sys.argv[1])
print("finished", flush=True)
"""


def _slow_writer(folder: Path) -> subprocess.Popen:
    """A process caching ``folder`` through a slow disk, once it is writing (it inherits CNNBOOK_CACHE)."""
    child = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(folder)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    line = child.stdout.readline()
    if line != "writing\n":
        child.kill()
        pytest.fail(f"the writer did not start writing: {line!r} {child.communicate()}")
    return child


def test_ctrl_c_while_the_cache_is_written_leaves_no_temporary_file(tmp_path, cold_cache):
    _make_tree(tmp_path / "pets")
    child = _slow_writer(tmp_path / "pets")
    try:
        assert len(list((cold_cache / "arrays").glob("*.tmp"))) == 1  # the file being written
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert list((cold_cache / "arrays").iterdir()) == []
    assert err.rstrip().endswith("KeyboardInterrupt") and "RuntimeError" not in err, err
    assert child.returncode != 0 and "finished" not in out


def test_writing_the_cache_sweeps_temporary_files_of_writers_that_are_gone(tmp_path, cold_cache):
    _make_tree(tmp_path / "pets")
    killed, running = _slow_writer(tmp_path / "pets"), _slow_writer(tmp_path / "pets")
    try:
        killed.kill()  # SIGKILL: no chance to clean up, as after a crash or a power cut
        killed.wait()
        arrays = cold_cache / "arrays"
        left = set(arrays.glob("*.tmp"))
        assert len(left) == 2  # the killed writer's and the running writer's
        old = arrays / "an-old-run.pt.tmp"  # of any name and host: its age alone marks it stale
        old.write_bytes(b"half a file")
        two_hours_ago = time.time() - 7200
        os.utime(old, (two_hours_ago, two_hours_ago))

        data.load_image_folder(tmp_path / "pets")  # writes the cache, and sweeps
        (running_tmp,) = set(arrays.glob("*.tmp"))  # only the running writer's file is left
        assert running_tmp in left and f".{running.pid}." in running_tmp.name
    finally:
        running.kill()
        running.communicate()


# --------------------------------------------------------------------------
# The data root and downloads
# --------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch):
    """torchvision's MNIST downloads fail at once: its mirrors are a local port where nothing listens."""
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])


def test_a_missing_data_root_is_an_error_and_is_not_created(tmp_path, monkeypatch, cold_cache, offline):
    misspelled = tmp_path / "dta"
    monkeypatch.setenv("CNNBOOK_DATA", str(misspelled))
    message = rf"CNNBOOK_DATA={re.escape(str(misspelled))} does not exist: fix the path or create the folder\."
    for call in (data.data_root, lambda: data.load_arrays("mnist"), lambda: data.load("mnist", device="cpu")):
        with pytest.raises(data.DataNotFoundError, match=message):
            call()
    with pytest.raises(data.DataNotFoundError, match=r"root=.*nowhere does not exist: fix the path"):
        data.load_arrays("mnist", root=tmp_path / "nowhere")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(data.DataNotFoundError, match=r"a-file is a file, not a folder"):
        data.load_arrays("mnist", root=tmp_path / "a-file")
    assert not misspelled.exists() and not (tmp_path / "nowhere").exists()


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_a_failed_download_leaves_the_data_root_as_it_was(tmp_path, monkeypatch, cold_cache, offline):
    root = tmp_path / "root"
    (root / "MNIST" / "processed").mkdir(parents=True)  # what an older torchvision left
    (root / "MNIST" / "processed" / "training.pt").write_bytes(b"old")
    (root / "notes.txt").write_text("mine")
    before = _tree(root)
    monkeypatch.setenv("CNNBOOK_DATA", str(root))
    messages = []
    for _ in range(2):
        with pytest.raises(data.DataNotFoundError) as caught:
            data.load_arrays("mnist", "train")
        messages.append(str(caught.value))
        assert _tree(root) == before  # no MNIST/raw/, no partial files
    assert messages[0] == messages[1]
    assert "the download failed (Error downloading train-images-idx3-ubyte.gz: Tried http://127.0.0.1:9/" in messages[0]
    assert f"downloading into {root}: failed (see above)" in messages[0]
    assert "go online and rerun" in messages[0] and "download=True" not in messages[0]
    assert f"set CNNBOOK_DATA (the data root, now {root})" in messages[0]


def test_a_failed_download_removes_the_default_root_it_created(tmp_path, monkeypatch, cold_cache, offline):
    monkeypatch.delenv("CNNBOOK_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    with pytest.raises(data.DataNotFoundError, match="the download failed"):
        data.load_arrays("mnist", "test")
    assert list((tmp_path / "home").iterdir()) == []


# --------------------------------------------------------------------------
# load's options: refused before any data is read
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        ({"val_size": 0}, "val_size=0: the validation split needs at least one image: give a count of at least 1 "
                          "(e.g. val_size=5000) or a fraction between 0 and 1 (e.g. val_size=0.1)."),
        ({"val_size": -100}, "val_size=-100: the validation split needs at least one image"),
        ({"val_size": 1.0}, "val_size=1.0: the validation split needs at least one image"),
        ({"val_size": 2.5}, "val_size=2.5: the validation split needs at least one image"),
        ({"train_size": 0}, "train_size=0: must be a whole number of at least 1, or None (all the training images)."),
        ({"train_size": -5}, "train_size=-5: must be a whole number of at least 1"),
        ({"train_size": 0.5}, "train_size=0.5: must be a whole number of at least 1"),
        ({"test_size": 0}, "test_size=0: must be a whole number of at least 1, or None (the whole test set)."),
        ({"batch_size": 0}, "batch_size=0: must be a whole number of at least 1."),
        ({"eval_batch_size": 0}, "eval_batch_size=0: must be a whole number of at least 1, or None"),
        ({"pad": -1}, "pad=-1: must be a whole number of at least 0."),
        ({"seed": -1}, "seed=-1: must be a whole number of at least 0."),
    ],
)  # fmt: skip
def test_load_refuses_options_out_of_range_before_reading_data(tmp_path, options, message):
    empty = tmp_path / "empty"
    empty.mkdir()  # no data: reading any would raise DataNotFoundError, not ValueError
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load("mnist", root=empty, download=False, device="cpu", **options)


def test_val_size_of_image_folders(tmp_path, cold_cache):
    _make_tree(tmp_path / "with_val", {"train": 4, "val": 1, "test": 1})
    own = data.load(str(tmp_path / "with_val"), val_size=0, device="cpu")  # its own val/: val_size is not used
    assert own.val.num_samples == 3
    _make_tree(tmp_path / "flat")  # 24 images for training and validation, 6 for test
    with pytest.raises(ValueError, match=re.escape("val_size=0: the validation split needs at least one image")):
        data.load(str(tmp_path / "flat"), val_size=0, device="cpu")
    with pytest.raises(ValueError, match=re.escape("val_size=0.01 of 24 training images is no image: use a larger "
                                                   "fraction or a count, e.g. val_size=2.")):  # fmt: skip
        data.load(str(tmp_path / "flat"), val_size=0.01, device="cpu")
    assert data.load(str(tmp_path / "flat"), val_size=23, device="cpu").train.num_samples == 1


# --------------------------------------------------------------------------
# The bundle's description, for training checkpoints
# --------------------------------------------------------------------------


def test_description_identifies_the_data(tmp_path, cold_cache):
    _make_tree(tmp_path / "pets", {"train": 10, "test": 2})

    def describe(folder: str = "pets", **options) -> dict:
        return data.load(str(tmp_path / folder), device="cpu", **{"val_size": 6, **options}).description

    base = describe()
    assert base == describe()  # the same arguments
    assert json.loads(json.dumps(base)) == base  # plain JSON values
    assert {key: base[key] for key in ("name", "train_size", "val_size", "test_size", "pad", "seed", "batch_size")} \
        == {"name": "pets", "train_size": 24, "val_size": 6, "test_size": 6, "pad": 0, "seed": 0, "batch_size": 128}
    assert base["input_size"] == [3, 8, 8] and base["augment"] == "None"
    for options in ({"val_size": 3}, {"seed": 1}, {"train_size": 12}, {"pad": 2}, {"batch_size": 64},
                    {"augment": True}):  # fmt: skip
        assert describe(**options) != base, options
    # The same images elsewhere are the same data; one changed image makes other data.
    shutil.copytree(tmp_path / "pets", tmp_path / "copy")
    assert describe("copy")["source"] == base["source"]
    Image.fromarray(_picture(99)).save(tmp_path / "copy" / "train" / "cat" / "000.png")
    assert describe("copy")["source"] != base["source"]
