"""Data-parallel training: two CPU processes (gloo) train like one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from cnnbook import distributed
from cnnbook.data import Augment, BatchLoader, DataBundle
from cnnbook.train import TrainConfig, fit

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models, and two processes on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_data(n_train: int = 192, batch_size: int = 32) -> DataBundle:
    """Three classes of 8x8 images, shuffled and augmented as in the book."""
    g = torch.Generator().manual_seed(0)
    n = n_train + 64
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randint(60, 196, (n, 3, 8, 8), generator=g)
    x[torch.arange(n), y] += 40
    x = x.to(torch.uint8)

    def batches(a: int, b: int, shuffle: bool, augment=None) -> BatchLoader:
        return BatchLoader(
            x[a:b], y[a:b], batch_size, mean=0.5, std=0.25, shuffle=shuffle,
            augment=augment, device=CPU,
        )  # fmt: skip

    train = batches(0, n_train, True, Augment(crop_padding=2))
    val = batches(n_train, n, False)
    mean, std = torch.tensor([0.5]), torch.tensor([0.25])
    return DataBundle("test", ["a", "b", "c"], train, val, val, mean, std,
                      (3, 8, 8))  # fmt: skip


def make_model(seed: int = 0) -> nn.Module:
    """No BatchNorm: its statistics are over each process's half batch."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, 3),
    )  # fmt: skip


def config(**changes) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "lr": 0.1, "progress": False,
                          **changes})  # fmt: skip


class Interrupting:
    """A loader that raises KeyboardInterrupt at one batch of one epoch."""

    def __init__(self, loader: BatchLoader, epoch: int, batch: int):
        self.loader, self.at, self.epoch = loader, (epoch, batch), 0
        self.batch_size = loader.batch_size
        self.num_samples = loader.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch, xy in enumerate(self.loader):
            if (self.epoch, batch) == self.at:
                raise KeyboardInterrupt
            yield xy


# ------------------------------------------------------------------ Shard


def test_shards_split_every_batch_into_equal_parts_in_order():
    data = make_data(n_train=70, batch_size=32)  # batches of 32, 32, 6

    def epoch(loader) -> list[torch.Tensor]:
        loader.set_epoch(5)  # every pass the same epoch
        return [x for x, _ in loader]

    whole = epoch(data.train)
    for world in (2, 4):
        shards = [distributed.Shard(data.train, r, world)
                  for r in range(world)]  # fmt: skip
        assert all(len(s) == 3 for s in shards)
        parts = list(zip(*map(epoch, shards)))
        sizes = [32 // world, 32 // world, 6 // world]
        assert [len(p[0]) for p in parts] == sizes
        # Concatenated, the parts are each batch less its last len % world.
        for batch, part in zip(whole, parts):
            kept = len(part[0]) * world
            assert torch.equal(torch.cat(part), batch[:kept])


def test_a_last_batch_smaller_than_the_processes_is_dropped():
    data = make_data(n_train=67, batch_size=32)  # batches of 32, 32, 3
    shard = distributed.Shard(data.train, 1, 4)
    assert len(shard) == 2 and len(list(shard)) == 2


def test_shard_set_epoch_reaches_the_loader():
    data = make_data()
    shard = distributed.Shard(data.train, 0, 2)
    shard.set_epoch(3)
    assert data.train.epoch == 3


@pytest.mark.parametrize(
    "rank, world, batch, message",
    [
        (2, 2, 32, "rank=2 is not one of the 2 processes"),
        (0, 3, 32, "batch_size=32 does not split into 3 equal parts.*"
                   "batch_size=30"),
    ],
)  # fmt: skip
def test_bad_shards_are_refused(rank, world, batch, message):
    data = make_data(batch_size=batch)
    with pytest.raises(ValueError, match=message):
        distributed.Shard(data.train, rank, world)


def test_one_process_is_left_alone():
    data, model = make_data(), make_model()
    assert not distributed.active() and distributed.world_size() == 1
    assert distributed.rank() == 0 and distributed.is_main()
    assert distributed.shard(data.train) is data.train
    assert distributed.wrap(model, CPU) is model
    assert distributed.setup() == distributed.default_device()
    total = torch.tensor([1.0, 2.0])
    assert distributed.all_sum(total) is total and total.tolist() == [1, 2]


def test_the_models_that_skip_branches_at_random_are_known():
    from cnnbook import models

    skipping = [
        models.create("resnet110_stochastic_depth"),
        models.create("fractalnet20", drop_path=True),
        models.create("fractalnet20", local_drop=0.15),
        models.create("fractalnet20", global_fraction=0.5),
    ]
    assert all(map(distributed.skips_parameters, skipping))
    # All their parameters used in every step: a ResNet (its blocks keep
    # their branch), stochastic depth drawn per image, FractalNet without
    # drop-path.
    using_all = [
        models.create("resnet20"),
        models.create("resnet110_stochastic_depth", drop_mode="row"),
        models.create("fractalnet20"),
    ]
    assert not any(map(distributed.skips_parameters, using_all))


def test_sync_batchnorm_converts_on_cuda_and_is_refused_on_the_cpu():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="needs CUDA GPUs.*Train without it"):
        distributed.sync_batchnorm(model, CPU)
    converted = distributed.sync_batchnorm(model, torch.device("cuda"))
    assert isinstance(converted[1], nn.SyncBatchNorm)


# --------------------------------------------------- two processes, gloo


def _in_processes(rank: int, world: int, init: str, job: str,
                  folder: str) -> None:  # fmt: skip
    """One of ``world`` processes: join the group and run ``job``."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank,
                            world_size=world)  # fmt: skip
    try:
        JOBS[job](Path(folder))
    finally:
        dist.destroy_process_group()


def _train(folder: Path) -> None:
    model = make_model()
    history = fit(model, make_data(), config(), device=CPU)
    if distributed.is_main():
        torch.save({"model": model.state_dict(), "history": history.records},
                   folder / "two.pt")  # fmt: skip


def _resume(folder: Path) -> None:
    checkpoint = str(folder / "run.pt")
    reference = make_model()
    fit(reference, make_data(), config(epochs=3), device=CPU)
    data = make_data()
    data.train = Interrupting(data.train, epoch=1, batch=2)
    try:
        fit(make_model(), data, config(epochs=3, checkpoint=checkpoint),
            device=CPU)  # fmt: skip
    except KeyboardInterrupt:
        pass  # every process stops at the same batch of epoch 2
    resumed = make_model(seed=123)  # the checkpoint must set it all
    fit(resumed, make_data(), config(epochs=3, checkpoint=checkpoint),
        device=CPU)  # fmt: skip
    torch.save({"reference": reference.state_dict(),
                "resumed": resumed.state_dict()},
               folder / f"rank{distributed.rank()}.pt")  # fmt: skip


JOBS = {"train": _train, "resume": _resume}


def spawn(job: str, folder: Path, world: int = 2) -> None:
    init = f"file://{folder / 'rendezvous'}"
    mp.spawn(_in_processes, args=(world, init, job, str(folder)),
             nprocs=world)  # fmt: skip


def same(a: dict, b: dict, **tolerance) -> bool:
    return a.keys() == b.keys() and all(
        torch.allclose(a[k], b[k], **tolerance) for k in a
    )


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    spawn("train", tmp_path)  # two processes, batches of 16 each
    two = torch.load(tmp_path / "two.pt", weights_only=True)
    one = make_model()
    history = fit(one, make_data(), config(), device=CPU)  # batches of 32
    assert same(two["model"], one.state_dict(), rtol=1e-4, atol=1e-6)
    for theirs, ours in zip(two["history"], history.records):
        assert theirs["train_loss"] == pytest.approx(ours["train_loss"],
                                                     rel=1e-5)  # fmt: skip
        assert theirs["train_acc"] == ours["train_acc"]
        assert theirs["val_acc"] == ours["val_acc"]


def test_a_resumed_distributed_run_equals_an_uninterrupted_one(tmp_path):
    spawn("resume", tmp_path)
    for rank in (0, 1):
        state = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert same(state["resumed"], state["reference"], rtol=0, atol=0)
    # Only rank 0 wrote the checkpoint; it holds the whole run.
    saved = torch.load(tmp_path / "run.pt", weights_only=True)
    assert saved["epoch"] == 3 and not list(tmp_path.glob("*.tmp"))


def test_torchrun_trains_from_the_command_line(tmp_path):
    from test_cli import write_image_folder

    folder, checkpoint = tmp_path / "images", tmp_path / "run.pt"
    write_image_folder(folder)  # 2 x 12 training images of 32x32
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "-m", "cnnbook", "train", "resnet20", "--data", str(folder),
        "--epochs", "2", "--val-size", "4", "--batch-size", "8",
        "--checkpoint", str(checkpoint),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True,
                            env=env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # One process prints: one line per epoch, one test accuracy.
    assert out.count("epoch 1/2 ") == 1 and out.count("test accuracy") == 1
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2
