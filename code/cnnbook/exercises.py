"""Check functions for the chapters' coding exercises.

Each ``check_*`` function runs a student's function on inputs the student has
not seen and compares it with the course's own implementation. It prints a
short "Correct" line, or raises an ``AssertionError`` that says what differs,
so an instructor can grade a notebook by running it.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["check_rbf_logits", "check_partial_conv_params"]


def _compare(what: str, got: object, expected: torch.Tensor, atol: float = 1e-4) -> None:
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{what}: expected a torch.Tensor, got {type(got).__name__}")
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    if not torch.allclose(got.float(), expected, atol=atol, rtol=1e-4):
        worst = (got.float() - expected).abs().max().item()
        raise AssertionError(f"{what}: values differ from the reference by up to {worst:.3g}")


def check_rbf_logits(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Chapter LeNet-5: ``fn(f6, centres)`` must return LeNet-5's output as logits, -||f6_n - centre_i||^2.

    ``f6`` is N x 84, ``centres`` 10 x 84; the answer is N x 10.
    """
    from .models.lenet import EuclideanRBF

    rbf = EuclideanRBF(84, 10)
    generator = torch.Generator().manual_seed(1998)
    for n in (1, 5, 32):
        f6 = torch.randn(n, 84, generator=generator) * 1.7
        _compare(f"rbf_logits on a batch of {n}", fn(f6, rbf.centres.clone()), rbf(f6), atol=1e-3)
    # Logits, not distances: the nearest centre must score highest.
    if fn(rbf.centres.clone(), rbf.centres.clone()).argmax(1).tolist() != list(range(10)):
        raise AssertionError("the nearest centre must get the largest logit: return minus the squared distance")
    print("Correct: your RBF output layer matches LeNet-5's.")


def check_partial_conv_params(fn: Callable[[tuple[tuple[int, ...], ...], int], int]) -> None:
    """Chapter LeNet-5: ``fn(table, kernel_size)`` must count the trainable parameters of a partially connected layer."""
    from .models.lenet import C3_TABLE, PartialConv2d

    cases = [(C3_TABLE, 5), (((0,), (0, 1), (1, 2, 3)), 3), (((0, 1, 2, 3, 4, 5),) * 4, 1)]
    for table, k in cases:
        expected = sum(p.numel() for p in PartialConv2d(table, k).parameters())
        got = fn(table, k)
        if got != expected:
            raise AssertionError(f"for a {len(table)}-map table with {k}x{k} kernels: expected {expected}, got {got}")
    print("Correct: your count matches the layer's parameters, 1,516 for C3.")
