"""Is a difference between two runs real? Paired tests on a shared test set, and spread over seeds.

Two models evaluated on the same test images are compared image by image:

    >>> from cnnbook import stats, train
    >>> logits_a, labels = train.predict(model_a, data.test)
    >>> logits_b, _ = train.predict(model_b, data.test)
    >>> result = stats.compare(logits_a.argmax(1) == labels, logits_b.argmax(1) == labels, names=("GAP", "FC"))
    >>> result.verdict
    'GAP beats FC by 1.4 points (80.9% against 79.5%; McNemar p = 0.003, 95% interval 0.5 to 2.3 points).'

Only the images where the two models disagree carry information about which
is better: McNemar's test asks whether "A right, B wrong" happens more often
than "A wrong, B right" than a fair coin would give. It is exact here (a
binomial test on the disagreements), so it holds for small test sets too.
The interval is a paired bootstrap of the accuracy difference. A verdict says
"A beats B" only when the test rejects equality at the 5% level; otherwise it
says that the run cannot tell them apart, and by how much they differed.

Seeds: :func:`over_seeds` runs a function for several seeds and reports the
mean and the standard deviation, the noise a single run cannot show.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

__all__ = ["Comparison", "compare", "mcnemar_p_value", "paired_bootstrap", "SeedRuns", "over_seeds"]

LEVEL = 0.05  # a difference is called real when the two-sided p-value is below this


def mcnemar_p_value(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: ``only_a`` images only A got right, ``only_b`` only B.

    Under "A and B are equally good" each disagreement goes either way with
    probability 1/2, so the smaller count follows Binomial(n, 1/2), n = only_a + only_b.
    """
    if only_a < 0 or only_b < 0:
        raise ValueError(f"counts must not be negative, got {only_a} and {only_b}")
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap(
    correct_a: torch.Tensor, correct_b: torch.Tensor, *, samples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% interval of accuracy(A) - accuracy(B), resampling the test images (the same images for both)."""
    a, b = _booleans(correct_a, correct_b)
    generator = torch.Generator().manual_seed(seed)
    index = torch.randint(0, len(a), (samples, len(a)), generator=generator)
    differences = (a[index].double().mean(1) - b[index].double().mean(1)).sort().values
    return differences[int(0.025 * samples)].item(), differences[int(0.975 * samples) - 1].item()


@dataclass(frozen=True)
class Comparison:
    """Two models on the same test images: accuracies, the paired test, and what may be concluded."""

    names: tuple[str, str]
    accuracy: tuple[float, float]
    only: tuple[int, int]  # images only A got right, only B got right
    p_value: float
    interval: tuple[float, float]  # 95% paired bootstrap interval of the difference (fractions)

    @property
    def difference(self) -> float:
        """Accuracy of A minus accuracy of B (a fraction)."""
        return self.accuracy[0] - self.accuracy[1]

    @property
    def significant(self) -> bool:
        """Whether the paired test rejects "equally good" at the 5% level."""
        return self.p_value < LEVEL

    @property
    def verdict(self) -> str:
        """One sentence for the page: who wins, or that the two are within the noise of each other."""
        (a, b), (acc_a, acc_b) = self.names, self.accuracy
        low, high = (100 * x for x in self.interval)
        evidence = f"McNemar p = {self.p_value:.2g}, 95% interval {low:+.1f} to {high:+.1f} points"
        if self.significant:
            winner, loser, acc_w, acc_l = (a, b, acc_a, acc_b) if self.difference > 0 else (b, a, acc_b, acc_a)
            points = 100 * abs(self.difference)
            return f"{winner} beats {loser} by {points:.1f} points ({acc_w:.1%} against {acc_l:.1%}; {evidence})."
        return (f"{a} and {b} are within the noise of each other: {acc_a:.1%} against {acc_b:.1%}, a difference "
                f"of {100 * self.difference:+.1f} points, which this run cannot tell from chance ({evidence}).")  # fmt: skip

    def __str__(self) -> str:
        return self.verdict


def compare(correct_a: torch.Tensor, correct_b: torch.Tensor, names: Sequence[str] = ("A", "B")) -> Comparison:
    """Compare two models from their per-image correctness on the same test set (boolean tensors of equal length)."""
    a, b = _booleans(correct_a, correct_b)
    if len(names) != 2:
        raise ValueError(f"names must be two names, one per model, got {names!r}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    return Comparison(
        names=(str(names[0]), str(names[1])),
        accuracy=(a.double().mean().item(), b.double().mean().item()),
        only=(only_a, only_b),
        p_value=mcnemar_p_value(only_a, only_b),
        interval=paired_bootstrap(a, b),
    )


def _booleans(correct_a: torch.Tensor, correct_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = torch.as_tensor(correct_a).cpu().flatten(), torch.as_tensor(correct_b).cpu().flatten()
    if a.shape != b.shape or len(a) == 0:
        raise ValueError(
            f"correct_a and correct_b must say, for the same test images, whether each model was right: got "
            f"{len(a)} and {len(b)} values. Evaluate both models on one test set (train.predict(model, data.test))."
        )
    if a.dtype != torch.bool or b.dtype != torch.bool:
        raise ValueError("correct_a and correct_b must be boolean tensors, e.g. logits.argmax(1) == labels")
    return a, b


@dataclass(frozen=True)
class SeedRuns:
    """One measurement repeated over seeds."""

    seeds: tuple[int, ...]
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        """The sample standard deviation (0 for a single run, which shows no noise at all)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.std:.2g} (mean ± standard deviation over {len(self.values)} seeds)"


def over_seeds(run: Callable[[int], float], seeds: Sequence[int] = (0, 1, 2)) -> SeedRuns:
    """Call ``run(seed)`` for each seed and collect the numbers it returns (e.g. a test accuracy)."""
    if not seeds:
        raise ValueError("over_seeds needs at least one seed")
    return SeedRuns(tuple(seeds), tuple(float(run(seed)) for seed in seeds))
