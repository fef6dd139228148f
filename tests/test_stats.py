"""cnnbook.stats: the exact McNemar test, the paired bootstrap, verdicts, and runs over seeds."""

from __future__ import annotations

import math

import pytest
import torch

from cnnbook import stats


@pytest.mark.parametrize(
    "only_a, only_b, expected",
    [
        (10, 0, 2 / 1024),  # all ten disagreements one way: 2 * (1/2)^10
        (2, 8, 2 * (1 + 10 + 45) / 1024),  # 2 * P(Binomial(10, 1/2) <= 2)
        (5, 5, 1.0),
        (0, 0, 1.0),  # no disagreement: no evidence either way
    ],
)
def test_mcnemar_exact_p_values(only_a, only_b, expected):
    assert math.isclose(stats.mcnemar_p_value(only_a, only_b), expected)
    assert math.isclose(stats.mcnemar_p_value(only_b, only_a), expected)  # symmetric


def correctness(both: int, only_a: int, only_b: int, neither: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image correctness of two models with the given agreement counts."""
    a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    return torch.tensor(a), torch.tensor(b)


def test_a_clear_difference_gets_a_verdict():
    a, b = correctness(both=700, only_a=60, only_b=20, neither=220)
    result = stats.compare(a, b, names=("GAP", "FC"))
    assert result.only == (60, 20) and math.isclose(result.difference, 0.04)
    assert result.significant and result.p_value < 1e-4
    low, high = result.interval
    assert low < 0.04 < high and low > 0
    assert result.verdict.startswith("GAP beats FC by 4.0 points (76.0% against 72.0%; McNemar p = ")
    # Which one is named first does not change who wins, nor the interval of its lead.
    swapped = stats.compare(b, a, names=("FC", "GAP")).verdict
    assert swapped.startswith("GAP beats FC by 4.0 points")
    interval = f"95% interval {100 * low:+.1f} to {100 * high:+.1f} points"
    assert interval in result.verdict and interval in swapped


def test_a_difference_within_the_noise_says_the_run_cannot_tell():
    a, b = correctness(both=700, only_a=12, only_b=8, neither=280)
    result = stats.compare(a, b, names=("ReLU", "tanh"))
    assert not result.significant and result.p_value > 0.05
    assert result.interval[0] < 0 < result.interval[1]
    assert result.verdict.startswith("ReLU and tanh are within the noise of each other: 71.2% against 70.8%, "
                                  "a difference of +0.4")
    assert str(result) == result.verdict


def test_the_bootstrap_interval_narrows_with_more_images():
    small = stats.paired_bootstrap(*correctness(70, 6, 2, 22))
    large = stats.paired_bootstrap(*correctness(7000, 600, 200, 2200))
    assert large[1] - large[0] < (small[1] - small[0]) / 5  # ~sqrt(100) = 10 times narrower
    assert stats.paired_bootstrap(*correctness(70, 6, 2, 22)) == small  # seeded: the same interval again


def test_bad_inputs_are_refused():
    a, b = correctness(10, 1, 1, 0)
    with pytest.raises(ValueError, match="for the same test images.*got 12 and 11"):
        stats.compare(a, b[:-1])
    with pytest.raises(ValueError, match="boolean tensors"):
        stats.compare(a.long(), b.long())
    with pytest.raises(ValueError, match="two names"):
        stats.compare(a, b, names=("only one",))
    with pytest.raises(ValueError, match="must not be negative"):
        stats.mcnemar_p_value(-1, 3)


def test_over_seeds_reports_mean_and_spread():
    runs = stats.over_seeds(lambda seed: 0.5 + 0.01 * seed, seeds=(0, 1, 2))
    assert runs.values == (0.5, 0.51, 0.52) and math.isclose(runs.mean, 0.51) and math.isclose(runs.std, 0.01)
    assert str(runs).endswith("(mean ± standard deviation over 3 seeds)")
    assert stats.over_seeds(lambda seed: 1.0, seeds=(7,)).std == 0.0
    with pytest.raises(ValueError, match="at least one seed"):
        stats.over_seeds(lambda seed: 1.0, seeds=())


def test_compare_samples_finds_a_clear_difference_and_its_direction():
    torch.manual_seed(0)
    a, b = torch.randn(40) + 1.0, torch.randn(50)
    result = stats.compare_samples(a, b, names=("ZF", "Alex"), what="share")
    assert result.significant and result.p_value < 0.001
    assert result.sizes == (40, 50)
    assert result.difference == pytest.approx(a.mean().item() - b.mean().item())
    assert result.verdict.startswith("ZF has a higher share than Alex")
    assert stats.compare_samples(b, a, names=("Alex", "ZF"), what="share").verdict.startswith(
        "Alex has a lower share than ZF")


def test_compare_samples_within_the_noise_and_on_booleans():
    torch.manual_seed(0)
    same = stats.compare_samples(torch.randn(30), torch.randn(30), names=("A", "B"))
    assert not same.significant and "within the noise" in same.verdict
    # Booleans: the means are shares. 3 of 48 against 4 of 48 cannot be told apart ...
    few = torch.zeros(48, dtype=torch.bool)
    few[:3] = True
    more = torch.zeros(48, dtype=torch.bool)
    more[:4] = True
    assert stats.compare_samples(few, more).p_value > 0.5
    # ... 0 of 48 against 20 of 48 can; an exact tie of the two samples gives p = 1.
    many = torch.zeros(48, dtype=torch.bool)
    many[:20] = True
    assert stats.compare_samples(torch.zeros(48, dtype=torch.bool), many).p_value < 0.001
    assert stats.compare_samples(few, few).p_value == 1.0


def test_compare_samples_refuses_bad_input():
    with pytest.raises(ValueError, match="at least two values"):
        stats.compare_samples(torch.ones(1), torch.ones(5))
    with pytest.raises(ValueError, match="finite"):
        stats.compare_samples(torch.tensor([1.0, float("nan")]), torch.ones(5))
    with pytest.raises(ValueError, match="two names"):
        stats.compare_samples(torch.ones(3), torch.ones(3), names=("only one",))



def test_compare_gaps_finds_the_narrower_gap():
    # A fits all training images and half the test images (gap +50 points);
    # B three quarters of both (gap 0).
    train_a = torch.ones(400, dtype=torch.bool)
    test_a = torch.arange(400) % 2 == 0
    train_b = torch.arange(400) % 4 != 0
    test_b = torch.arange(400) % 4 != 1
    result = stats.compare_gaps(train_a, train_b, test_a, test_b, names=("A", "B"))
    assert result.gaps == pytest.approx((0.5, 0.0))
    assert result.difference == pytest.approx(0.5)
    low, high = result.interval
    assert 0 < low < 0.5 < high
    assert result.significant
    assert result.verdict.startswith("B overfits less than A")
    assert "train-test gaps" in result.verdict
    val = stats.compare_gaps(train_a, train_b, test_a, test_b,
                             names=("A", "B"), held_out="validation")
    assert "train-validation gaps" in val.verdict
    assert val.interval == result.interval


def test_compare_gaps_within_the_noise_and_bad_input():
    g = torch.Generator().manual_seed(0)
    a, b, c, d = (torch.rand(200, generator=g) < 0.6 for _ in range(4))
    same = stats.compare_gaps(a, b, c, d, names=("A", "B"))
    assert not same.significant
    assert same.verdict.startswith("A and B are within the noise")
    assert same.interval[0] < same.difference < same.interval[1]
    with pytest.raises(ValueError, match="same test images"):
        stats.compare_gaps(a, b[:10], c, d)
    with pytest.raises(ValueError, match="two names"):
        stats.compare_gaps(a, b, c, d, names=("one",))


def test_rank_correlation_is_spearmans_rho_with_a_permutation_p_value():
    # ranks of b: 1, 2, 3.5, 5, 3.5 (a tie); Pearson of the ranks: 8/sqrt(95)
    r = stats.rank_correlation([1, 2, 3, 4, 5], [5, 6, 7, 8, 7], "b on a")
    assert r.rho == pytest.approx(8 / 95**0.5) and r.n == 5
    assert 0 < r.p_value <= 1
    perfect = stats.rank_correlation(range(12), [x**3 for x in range(12)])
    assert perfect.rho == pytest.approx(1) and perfect.significant
    assert "rank correlation +1.00 over 12 points" in perfect.verdict
    reverse = stats.rank_correlation(range(12), range(12, 0, -1))
    assert reverse.rho == pytest.approx(-1) and reverse.significant
    few = stats.rank_correlation([1, 2, 3], [1, 3, 2], "few")
    assert not few.significant and "cannot tell" in few.verdict


def test_rank_correlation_refuses_bad_input():
    with pytest.raises(ValueError, match="at least 3"):
        stats.rank_correlation([1, 2], [1, 2])
    with pytest.raises(ValueError, match="at least 3"):
        stats.rank_correlation([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        stats.rank_correlation([1, 2, float("nan")], [1, 2, 3])
    with pytest.raises(ValueError, match="constant"):
        stats.rank_correlation([1, 1, 1], [1, 2, 3])
