"""Data-parallel training on several GPUs (or CPU processes) with torchrun.

    torchrun --nproc_per_node=4 -m cnnbook train resnet20 --data cifar10

starts four processes; each one trains a copy of the model on its part of
every batch, and PyTorch's ``DistributedDataParallel`` averages their
gradients, so that the run is the run of one process with the same (global)
``--batch-size``. What ``train.fit`` does when it runs in such a process
(these functions do nothing in a single process):

- ``shard``: every process reads the whole batch from the in-memory loader,
  with the same seed, shuffling and augmentation, and keeps its slice of it.
  Reading is cheap next to training, and it makes process ``r`` of ``W``
  see exactly the images one process would see in that batch. The slices
  have equal sizes, so the average of the processes' mean gradients is the
  mean gradient of the batch; an epoch's last batch drops its last
  ``len % W`` images (at most ``W - 1``) to keep them equal.
- ``wrap``: the model in ``DistributedDataParallel``. Its parameters and
  buffers start as rank 0's, and the training loop's random numbers
  (dropout, stochastic depth) come from the same seed in every process.
- ``all_sum``: the training loss and accuracy, and the check for a
  non-finite loss, are summed over the processes, so that every process
  reports the same numbers and stops at the same batch.
- ``sync_buffers``: before validation, every process takes rank 0's
  BatchNorm statistics; each process then validates on the whole
  validation set and gets the same result, and rank 0's checkpoint
  resumes every process.
- ``is_main``: only rank 0 prints, shows the progress bar and writes the
  checkpoint.

``setup`` joins the process group that torchrun describes in its
environment variables: NCCL on CUDA GPUs (one per process), gloo on the CPU.
BatchNorm normalises over each process's part of the batch unless the model
is converted with ``sync_batchnorm`` (``cnnbook train --sync-bn``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .profiles import default_device

__all__ = [
    "Shard", "active", "all_sum", "is_main", "rank", "setup", "shard",
    "skips_parameters", "sync_batchnorm", "sync_buffers", "teardown",
    "world_size", "wrap",
]  # fmt: skip


def active() -> bool:
    """Whether this process is one of several in a process group."""
    return (dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1)  # fmt: skip


def rank() -> int:
    """This process's rank: 0 for the only or the first process."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """The number of processes: 1 when not distributed."""
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Whether this process prints and writes the checkpoints (rank 0)."""
    return rank() == 0


def setup() -> torch.device:
    """Join torchrun's process group, if any; return this process's device.

    torchrun sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the master's
    address. Without it (or with one process) this does nothing and returns
    the default device. With CUDA, process ``LOCAL_RANK`` takes GPU
    ``LOCAL_RANK`` and the backend is NCCL; on the CPU it is gloo.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1 or active():
        return default_device()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        if local >= gpus:
            raise ValueError(
                f"process {local} has no GPU of its own: this machine has "
                f"{gpus}. Start one process per GPU: "
                f"torchrun --nproc_per_node={gpus} ..."
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl")
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return device


def teardown() -> None:
    """Leave the process group (a no-op outside one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class Shard:
    """This process's slice of every batch of ``loader`` (see the module).

    ``loader`` yields ``(x, y)`` batches and may have ``set_epoch``; every
    process must hold an equal loader (same data, seed and batch size).
    """

    def __init__(self, loader: Any, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(
                f"rank={rank} is not one of the {world_size} processes "
                f"(0 to {world_size - 1})."
            )
        batch = getattr(loader, "batch_size", None)
        if batch is not None and batch % world_size:
            raise ValueError(
                f"batch_size={batch} does not split into {world_size} equal "
                f"parts, one per process: use a multiple of {world_size}, "
                f"e.g. batch_size={batch - batch % world_size or world_size}."
            )
        self.loader, self.rank, self.world_size = loader, rank, world_size

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        # A last batch smaller than world_size leaves no image for some
        # processes, and is dropped (see __iter__).
        last = _last_batch_size(self.loader)
        dropped = last is not None and last < self.world_size
        return len(self.loader) - dropped

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader:
            part = len(x) // self.world_size
            if part == 0:
                continue
            start = self.rank * part
            yield x[start : start + part], y[start : start + part]

    def __repr__(self) -> str:
        return (f"Shard(process {self.rank} of {self.world_size}: "
                f"{self.loader!r})")  # fmt: skip


def _last_batch_size(loader: Any) -> int | None:
    """The size of a loader's last batch, if it says (a BatchLoader does)."""
    size = getattr(loader, "num_samples", None)
    batch = getattr(loader, "batch_size", None)
    if size is None or batch is None or getattr(loader, "drop_last", False):
        return None
    return size - (len(loader) - 1) * batch


def shard(loader: Any) -> Any:
    """``loader`` itself in one process, else this process's ``Shard``."""
    return Shard(loader, rank(), world_size()) if active() else loader


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` when distributed, else itself.

    DDP must look for parameters that a step left out (a walk over the
    autograd graph in every step) for the models that skip branches at
    random in training (see ``skips_parameters``); another model that
    does makes DDP stop with an error that says so.
    """
    if not active():
        return model
    ids = None
    if device.type == "cuda":  # "cuda" alone is the current GPU
        index = device.index
        ids = [torch.cuda.current_device() if index is None else index]
    return nn.parallel.DistributedDataParallel(
        model, device_ids=ids, find_unused_parameters=skips_parameters(model)
    )


def skips_parameters(model: nn.Module) -> bool:
    """Whether a training step of ``model`` may leave parameters unused.

    Stochastic depth in "batch" mode drops whole residual branches,
    FractalNet's drop-path (local or global) whole columns, at random:
    their parameters then get no gradient in that step.
    """
    from .models.fractalnet import FractalBlock, FractalNet
    from .models.stochastic_depth import StochasticDepth

    for module in model.modules():
        if isinstance(module, StochasticDepth):
            if module.survival_prob < 1 and module.mode == "batch":
                return True
        elif isinstance(module, FractalBlock) and module.local_drop > 0:
            return True
        elif isinstance(module, FractalNet) and module.global_fraction > 0:
            return True
    return False


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over the processes, in place (itself in one)."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def sync_buffers(model: nn.Module) -> None:
    """Give every process rank 0's buffers (BatchNorm's running statistics)."""
    if active():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every BatchNorm layer normalising over the whole batch.

    Each process's BatchNorm otherwise normalises over its own part of the
    batch. PyTorch's ``SyncBatchNorm`` runs on GPUs only.
    """
    if device.type != "cuda":
        raise ValueError(
            "synchronised BatchNorm (--sync-bn) needs CUDA GPUs: PyTorch's "
            f"SyncBatchNorm does not run on the {device.type}. Train without "
            "it; each process then normalises over its own part of a batch."
        )
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)
