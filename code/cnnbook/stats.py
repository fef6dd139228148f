"""Is a difference between two runs real? Paired tests on a shared test set,
and spread over seeds.

Two models evaluated on the same test images are compared image by image:

    >>> from cnnbook import stats, train
    >>> logits_a, labels = train.predict(model_a, data.test)
    >>> logits_b, _ = train.predict(model_b, data.test)
    >>> right_a = logits_a.argmax(1) == labels
    >>> right_b = logits_b.argmax(1) == labels
    >>> result = stats.compare(right_a, right_b, names=("GAP", "FC"))
    >>> result.verdict
    'GAP beats FC by 1.4 points (80.9% against 79.5%; McNemar p = 0.003, 95%
    interval 0.5 to 2.3 points).'

Only the images where the two models disagree carry information about which is
better: McNemar's test asks whether "A right, B wrong" happens more often than
"A wrong, B right" than a fair coin would give. It is exact here (a binomial
test on the disagreements), so it holds for small test sets too. The interval
is a paired bootstrap of the accuracy difference. A verdict says "A beats B"
only when the test rejects equality at the 5% level; otherwise it says that the
run cannot tell them apart, and by how much they differed.

Two sets of measurements that are not paired (the layer-1 filters of two
networks, say) are compared by :func:`compare_samples`: a permutation test of
the difference of their means, which asks how often relabelling the values at
random gives a difference as large. For booleans (is a filter dead?) the means
are shares, and the test compares the two shares.

Overfitting is a difference of differences: :func:`compare_gaps` takes each
model's correctness on the training images and on the test images and gives a
bootstrap interval of the difference of the two train-test gaps.

Seeds: :func:`over_seeds` runs a function for several seeds and reports the
mean and the standard deviation, the noise a single run cannot show.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

__all__ = [
    "Comparison",
    "compare",
    "GapComparison",
    "compare_gaps",
    "mcnemar_p_value",
    "paired_bootstrap",
    "SeedRuns",
    "over_seeds",
    "SampleComparison",
    "compare_samples",
    "RankCorrelation",
    "rank_correlation",
]

# a difference is called real when the two-sided p-value is below this
LEVEL = 0.05


def mcnemar_p_value(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: ``only_a`` images only A got right,
    ``only_b`` only B.

    Under "A and B are equally good" each disagreement goes either way with
    probability 1/2, so the smaller count follows Binomial(n, 1/2), n = only_a
    + only_b.
    """
    if only_a < 0 or only_b < 0:
        raise ValueError(
            f"counts must not be negative, got {only_a} and {only_b}"
        )
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap(
    correct_a: torch.Tensor,
    correct_b: torch.Tensor,
    *,
    samples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """95% interval of accuracy(A) - accuracy(B), resampling the test images
    (the same images for both).
    """
    a, b = _booleans(correct_a, correct_b)
    generator = torch.Generator().manual_seed(seed)
    index = torch.randint(0, len(a), (samples, len(a)), generator=generator)
    differences = (
        (a[index].double().mean(1) - b[index].double().mean(1)).sort().values
    )
    return differences[int(0.025 * samples)].item(), differences[
        int(0.975 * samples) - 1
    ].item()


@dataclass(frozen=True)
class Comparison:
    """Two models on the same test images: accuracies, the paired test, and
    what may be concluded.
    """

    names: tuple[str, str]
    accuracy: tuple[float, float]
    only: tuple[int, int]  # images only A got right, only B got right
    p_value: float
    # 95% paired bootstrap interval of the difference (fractions)
    interval: tuple[float, float]

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
        """One sentence for the page: who wins, or that the two are within
        the noise of each other.
        """
        (a, b), (acc_a, acc_b) = self.names, self.accuracy
        low, high = (100 * x for x in self.interval)
        if self.significant and self.difference < 0:
            low, high = -high, -low  # the winner's lead, as the verdict reads
        evidence = (
            f"McNemar p = {self.p_value:.2g}, 95% interval {low:+.1f} "
            f"to {high:+.1f} points"
        )
        if self.significant:
            winner, loser, acc_w, acc_l = (
                (a, b, acc_a, acc_b)
                if self.difference > 0
                else (b, a, acc_b, acc_a)
            )
            points = 100 * abs(self.difference)
            return (
                f"{winner} beats {loser} by {points:.1f} points "
                f"({acc_w:.1%} against {acc_l:.1%}; {evidence})."
            )
        return (
            f"{a} and {b} are within the noise of each other: {acc_a:.1%} "
            f"against {acc_b:.1%}, a difference "
            f"of {100 * self.difference:+.1f} points, which this run "
            f"cannot tell from chance ({evidence})."
        )

    def __str__(self) -> str:
        return self.verdict


def compare(
    correct_a: torch.Tensor,
    correct_b: torch.Tensor,
    names: Sequence[str] = ("A", "B"),
) -> Comparison:
    """Compare two models from their per-image correctness on the same test
    set (boolean tensors of equal length).
    """
    a, b = _booleans(correct_a, correct_b)
    if len(names) != 2:
        raise ValueError(
            f"names must be two names, one per model, got {names!r}"
        )
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    return Comparison(
        names=(str(names[0]), str(names[1])),
        accuracy=(a.double().mean().item(), b.double().mean().item()),
        only=(only_a, only_b),
        p_value=mcnemar_p_value(only_a, only_b),
        interval=paired_bootstrap(a, b),
    )


def _booleans(
    correct_a: torch.Tensor, correct_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = (
        torch.as_tensor(correct_a).cpu().flatten(),
        torch.as_tensor(correct_b).cpu().flatten(),
    )
    if a.shape != b.shape or len(a) == 0:
        raise ValueError(
            f"correct_a and correct_b must say, for the same test images, "
            "whether each model was right: got "
            f"{len(a)} and {len(b)} values. Evaluate both models on one test "
            "set (train.predict(model, data.test))."
        )
    if a.dtype != torch.bool or b.dtype != torch.bool:
        raise ValueError(
            "correct_a and correct_b must be boolean tensors, "
            "e.g. logits.argmax(1) == labels"
        )
    return a, b


@dataclass(frozen=True)
class GapComparison:
    """Two models' train-test gaps (training minus test accuracy), each
    measured on the same training and the same test images."""

    names: tuple[str, str]
    gaps: tuple[float, float]  # fractions
    interval: tuple[float, float]  # 95% interval of gap A - gap B
    held_out: str = "test"  # what the verdict calls the held-out images

    @property
    def difference(self) -> float:
        """Gap of A minus gap of B (a fraction)."""
        return self.gaps[0] - self.gaps[1]

    @property
    def significant(self) -> bool:
        """Whether the 95% interval of the difference excludes 0."""
        low, high = self.interval
        return not low <= 0.0 <= high

    @property
    def verdict(self) -> str:
        """One sentence: whose gap is narrower, or within the noise."""
        (a, b), (gap_a, gap_b) = self.names, self.gaps
        low, high = (100 * x for x in self.interval)
        values = f"{100 * gap_a:+.1f} against {100 * gap_b:+.1f} points"
        evidence = (f"95% bootstrap interval of the difference {low:+.1f} "
                    f"to {high:+.1f} points")  # fmt: skip
        if self.significant:
            narrower, wider = (a, b) if self.difference < 0 else (b, a)
            return (f"{narrower} overfits less than {wider}: "
                    f"train-{self.held_out} gaps of {values} ({a} against "
                    f"{b}; {evidence}).")  # fmt: skip
        return (f"{a} and {b} are within the noise of each other in their "
                f"train-{self.held_out} gaps: {values}, which this run "
                f"cannot tell from chance ({evidence}).")  # fmt: skip

    def __str__(self) -> str:
        return self.verdict


def compare_gaps(
    train_a: torch.Tensor,
    train_b: torch.Tensor,
    test_a: torch.Tensor,
    test_b: torch.Tensor,
    names: Sequence[str] = ("A", "B"),
    *,
    samples: int = 2000,
    seed: int = 0,
    held_out: str = "test",
) -> GapComparison:
    """Compare the train-test gaps of two models from their per-image
    correctness (booleans) on the same training images and the same test
    images. The interval resamples the training and the test images
    independently, each pair of models on the same resampled images (a
    paired bootstrap of each accuracy difference, drawn as the counts of
    the images only A and only B got right, without a copy per image).
    ``held_out`` names the held-out images in the verdict (e.g.
    "validation" for train-validation gaps)."""
    if len(names) != 2:
        raise ValueError(
            f"names must be two names, one per model, got {names!r}"
        )
    if samples < 1:
        raise ValueError(f"samples={samples} must be at least 1")
    generator = torch.Generator().manual_seed(seed)

    def differences(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Bootstrap samples of accuracy(a) - accuracy(b), paired: of n
        resampled images, Binomial(n, p_a) only A got right, and
        Binomial(n - that, p_b / (1 - p_a)) of the others only B."""
        n = len(a)
        p_a, p_b = (a & ~b).sum().item() / n, (~a & b).sum().item() / n
        count = torch.full((samples,), float(n), dtype=torch.double)
        only_a = torch.binomial(count, torch.full_like(count, p_a),
                                generator=generator)  # fmt: skip
        rest = p_b / (1 - p_a) if p_a < 1 else 0.0
        only_b = torch.binomial(count - only_a, torch.full_like(count, rest),
                                generator=generator)  # fmt: skip
        return (only_a - only_b) / n

    train_a, train_b = _booleans(train_a, train_b)
    test_a, test_b = _booleans(test_a, test_b)
    gaps = tuple(
        (train.double().mean() - test.double().mean()).item()
        for train, test in ((train_a, test_a), (train_b, test_b))
    )
    d = differences(train_a, train_b) - differences(test_a, test_b)
    d = d.sort().values
    interval = (
        d[int(0.025 * samples)].item(),
        d[int(0.975 * samples) - 1].item(),
    )
    return GapComparison(
        (str(names[0]), str(names[1])), gaps, interval, held_out
    )


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
        """The sample standard deviation (0 for a single run, which shows no
        noise at all).
        """
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.mean:.4g} ± {self.std:.2g} (mean ± standard deviation "
            f"over {len(self.values)} seeds)"
        )


def over_seeds(
    run: Callable[[int], float], seeds: Sequence[int] = (0, 1, 2)
) -> SeedRuns:
    """Call ``run(seed)`` for each seed and collect the numbers it returns
    (e.g. a test accuracy).
    """
    if not seeds:
        raise ValueError("over_seeds needs at least one seed")
    return SeedRuns(tuple(seeds), tuple(float(run(seed)) for seed in seeds))


@dataclass(frozen=True)
class SampleComparison:
    """Two independent samples: their means and a permutation test."""

    names: tuple[str, str]
    what: str  # the quantity, for the verdict ("median share", ...)
    means: tuple[float, float]
    sizes: tuple[int, int]
    p_value: float
    fmt: str = ".3g"  # how the verdict writes the means

    @property
    def difference(self) -> float:
        """Mean of A minus mean of B."""
        return self.means[0] - self.means[1]

    @property
    def significant(self) -> bool:
        """Whether the test rejects "the same mean" at the 5% level."""
        return self.p_value < LEVEL

    @property
    def verdict(self) -> str:
        """One sentence: which mean is larger, or within the noise."""
        (a, b), (mean_a, mean_b) = self.names, self.means
        values = f"{mean_a:{self.fmt}} against {mean_b:{self.fmt}}"
        evidence = (
            f"permutation test p = {self.p_value:.2g}, "
            f"{self.sizes[0]} and {self.sizes[1]} values"
        )
        if self.significant:
            side = "higher" if self.difference > 0 else "lower"
            return (
                f"{a} has a {side} {self.what} than {b} "
                f"({values}; {evidence})."
            )
        return (
            f"{a} and {b} are within the noise of each other in "
            f"{self.what}: {values}, which this run cannot tell from "
            f"chance ({evidence})."
        )

    def __str__(self) -> str:
        return self.verdict


def compare_samples(
    values_a: torch.Tensor,
    values_b: torch.Tensor,
    names: Sequence[str] = ("A", "B"),
    what: str = "mean",
    *,
    permutations: int = 10_000,
    seed: int = 0,
    fmt: str = ".3g",
) -> SampleComparison:
    """Compare the means of two independent samples by a permutation test.

    ``values_a`` and ``values_b`` are 1-D (numbers or booleans, e.g. one
    value per filter of two networks); they need not have the same length.
    The p-value is two-sided: the share of random relabellings of the
    pooled values whose difference of means is at least as large, counting
    the observed labelling (so it is never 0).
    """
    if len(names) != 2:
        raise ValueError(
            f"names must be two names, one per sample, got {names!r}"
        )
    a, b = (
        torch.as_tensor(v).detach().cpu().flatten().double()
        for v in (values_a, values_b)
    )
    if len(a) < 2 or len(b) < 2:
        raise ValueError(
            "compare_samples needs at least two values in each sample, got "
            f"{len(a)} and {len(b)}"
        )
    if not (a.isfinite().all() and b.isfinite().all()):
        raise ValueError(
            "compare_samples: the values must be finite (no NaN or infinity)"
        )
    if permutations < 1:
        raise ValueError(f"permutations={permutations} must be at least 1")
    pooled = torch.cat([a, b])
    observed = (a.mean() - b.mean()).abs()
    generator = torch.Generator().manual_seed(seed)
    order = torch.stack(
        [
            torch.randperm(len(pooled), generator=generator)
            for _ in range(permutations)
        ]
    )
    shuffled = pooled[order]
    n = len(a)
    differences = (shuffled[:, :n].mean(1) - shuffled[:, n:].mean(1)).abs()
    # a tolerance, so that exact ties (booleans) count as "as large"
    extreme = int((differences >= observed - 1e-12).sum())
    return SampleComparison(
        names=(str(names[0]), str(names[1])),
        what=what,
        means=(a.mean().item(), b.mean().item()),
        sizes=(len(a), len(b)),
        p_value=(extreme + 1) / (permutations + 1),
        fmt=fmt,
    )


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 0..n-1, ties given the mean of their ranks."""
    order = values.argsort()
    ranks = torch.empty_like(values)
    ranks[order] = torch.arange(len(values), dtype=values.dtype)
    for value in values.unique():
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rank correlation of two paired samples and its
    permutation p-value."""

    what: str
    rho: float
    p_value: float
    n: int

    @property
    def significant(self) -> bool:
        return self.p_value < LEVEL

    @property
    def verdict(self) -> str:
        values = f"rank correlation {self.rho:+.2f} over {self.n} points"
        evidence = f"permutation test, p = {self.p_value:.2g}"
        if self.significant:
            return f"{self.what}: {values} ({evidence})."
        return (
            f"{self.what}: {values}, which this run cannot tell from "
            f"no relation ({evidence})."
        )

    def __str__(self) -> str:
        return self.verdict


def rank_correlation(
    values_a: Sequence[float] | torch.Tensor,
    values_b: Sequence[float] | torch.Tensor,
    what: str = "rank correlation",
    *,
    permutations: int = 10_000,
    seed: int = 0,
) -> RankCorrelation:
    """Spearman's rho of paired values (the Pearson correlation of their
    ranks), with a two-sided permutation p-value: the share of random
    pairings whose |rho| is at least the observed one, counting the
    observed pairing (so it is never 0)."""
    a, b = (
        torch.as_tensor(v).detach().cpu().flatten().double()
        for v in (values_a, values_b)
    )
    if len(a) != len(b) or len(a) < 3:
        raise ValueError(
            f"rank_correlation needs pairs, at least 3, got {len(a)} and "
            f"{len(b)} values"
        )
    if not (a.isfinite().all() and b.isfinite().all()):
        raise ValueError(
            "rank_correlation: the values must be finite (no NaN or infinity)"
        )
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    scale = (ra.norm() * rb.norm()).item()
    if scale == 0:
        raise ValueError(
            "rank_correlation: one of the samples is constant, so it has "
            "no ranking"
        )
    rho = (ra @ rb).item() / scale
    generator = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randperm(len(rb), generator=generator)
                         for _ in range(permutations)])  # fmt: skip
    shuffled = (rb[order] @ ra) / scale
    extreme = int((shuffled.abs() >= abs(rho) - 1e-12).sum())
    return RankCorrelation(what, rho, (extreme + 1) / (permutations + 1),
                           len(a))  # fmt: skip
