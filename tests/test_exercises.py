"""The exercises' check functions accept a right answer and reject typical wrong ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnbook import exercises
from cnnbook.costs import pareto_front  # the side-by-side chapter's answer


# ---------------------------------------------------------------- ZFNet: unpooling with switches


def unpool_by_adding(signal: torch.Tensor, switches: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A right answer, written independently of cnnbook.visualize: the gradient of max pooling is unpooling."""
    n, c, h, w = signal.shape
    x = torch.zeros(n, c, *size, requires_grad=True)
    # Rebuild pooled values from the switches: y[k] = x.flat[switch[k]]; its gradient scatters the signal back, adding.
    y = x.flatten(2).gather(2, switches.flatten(2))
    (y * signal.flatten(2)).sum().backward()
    return x.grad


def test_check_unpool_accepts_the_gradient_of_max_pooling(capsys) -> None:
    exercises.check_unpool(unpool_by_adding)
    assert "Correct" in capsys.readouterr().out


def test_check_unpool_rejects_max_unpool2d_which_overwrites_shared_switches() -> None:
    def overwriting(signal, switches, size):
        return F.max_unpool2d(signal, switches, kernel_size=3, stride=2, output_size=size)

    with pytest.raises(AssertionError, match="must add up"):
        exercises.check_unpool(overwriting)


def test_check_unpool_rejects_a_wrong_shape() -> None:
    with pytest.raises(AssertionError, match="shape"):
        exercises.check_unpool(lambda signal, switches, size: signal)


# ---------------------------------------------------------------- VGG: a Linear layer as a convolution


def linear_to_conv(fc: torch.nn.Linear, in_channels: int, kernel_size: int) -> torch.nn.Conv2d:
    """A right answer: the weight matrix viewed as out x C x k x k kernels."""
    conv = torch.nn.Conv2d(in_channels, fc.out_features, kernel_size)
    with torch.no_grad():
        conv.weight.copy_(fc.weight.view(fc.out_features, in_channels, kernel_size, kernel_size))
        conv.bias.copy_(fc.bias)
    return conv


def test_check_linear_to_conv_accepts_the_reshaped_weights(capsys) -> None:
    exercises.check_linear_to_conv(linear_to_conv)
    assert "Correct" in capsys.readouterr().out


def test_check_linear_to_conv_rejects_channels_last_order() -> None:
    def channels_last(fc, in_channels, kernel_size):  # reads the input as (row, column, channel): wrong for PyTorch
        conv = linear_to_conv(fc, in_channels, kernel_size)
        with torch.no_grad():
            kernels = fc.weight.view(fc.out_features, kernel_size, kernel_size, in_channels).permute(0, 3, 1, 2)
            conv.weight.copy_(kernels)
        return conv

    with pytest.raises(AssertionError, match="differ"):
        exercises.check_linear_to_conv(channels_last)


def test_check_linear_to_conv_rejects_a_lost_bias() -> None:
    def no_bias(fc, in_channels, kernel_size):
        conv = linear_to_conv(fc, in_channels, kernel_size)
        torch.nn.init.zeros_(conv.bias)
        return conv

    with pytest.raises(AssertionError, match="differ"):
        exercises.check_linear_to_conv(no_bias)


def test_check_linear_to_conv_rejects_a_linear_layer() -> None:
    with pytest.raises(AssertionError, match="nn.Conv2d"):
        exercises.check_linear_to_conv(lambda fc, in_channels, kernel_size: fc)



# ---------------------------------------------------------------- Network in Network: a per-pixel MLP as 1x1 convolutions


def mlp_as_conv(mlp: torch.nn.Sequential) -> torch.nn.Sequential:
    """A right answer: each Linear's C_out x C_in matrix becomes a C_out x C_in x 1 x 1 kernel."""
    layers = []
    for layer in mlp:
        if isinstance(layer, torch.nn.Linear):
            conv = torch.nn.Conv2d(layer.in_features, layer.out_features, 1, bias=layer.bias is not None)
            with torch.no_grad():
                conv.weight.copy_(layer.weight[:, :, None, None])
                if layer.bias is not None:
                    conv.bias.copy_(layer.bias)
            layer = conv
        layers.append(layer)
    return torch.nn.Sequential(*layers)


def test_check_mlp_as_conv_accepts_1x1_kernels(capsys) -> None:
    exercises.check_mlp_as_conv(mlp_as_conv)
    assert "Correct" in capsys.readouterr().out


def test_check_mlp_as_conv_rejects_transposed_weights() -> None:
    def transposed(mlp):
        convs = mlp_as_conv(mlp)
        with torch.no_grad():
            for conv in convs:
                if isinstance(conv, torch.nn.Conv2d) and conv.in_channels == conv.out_channels:
                    conv.weight.copy_(conv.weight.transpose(0, 1).clone())
        return convs

    with pytest.raises(AssertionError, match="differ"):
        exercises.check_mlp_as_conv(transposed)


def test_check_mlp_as_conv_rejects_a_lost_bias() -> None:
    def no_bias(mlp):
        convs = mlp_as_conv(mlp)
        for conv in convs:
            if isinstance(conv, torch.nn.Conv2d) and conv.bias is not None:
                torch.nn.init.zeros_(conv.bias)
        return convs

    with pytest.raises(AssertionError, match="differ"):
        exercises.check_mlp_as_conv(no_bias)


def test_check_mlp_as_conv_rejects_the_mlp_wrapped_in_permutes() -> None:
    class Permuted(torch.nn.Module):  # right values, but still an MLP, not a convolution
        def __init__(self, mlp):
            super().__init__()
            self.mlp = mlp

        def forward(self, x):
            return self.mlp(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    with pytest.raises(AssertionError, match="nn.Linear"):
        exercises.check_mlp_as_conv(Permuted)


def test_check_mlp_as_conv_rejects_changing_the_mlp() -> None:
    def in_place(mlp):
        convs = mlp_as_conv(mlp)
        torch.nn.init.zeros_(mlp[0].weight)
        return convs

    with pytest.raises(AssertionError, match="changed"):
        exercises.check_mlp_as_conv(in_place)


# ---------------------------------------------------------------- LeNet-5: the RBF output and C3's parameters


def test_check_rbf_logits_accepts_minus_the_squared_distance(capsys) -> None:
    exercises.check_rbf_logits(lambda f6, centres: -torch.cdist(f6, centres) ** 2)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda f6, centres: torch.cdist(f6, centres) ** 2, "differ"),  # distances, not logits
        (lambda f6, centres: -torch.cdist(f6, centres), "differ"),  # not squared
        (lambda f6, centres: f6 @ centres.T, "differ"),
        (lambda f6, centres: (f6 @ centres.T).tolist(), "torch.Tensor"),
    ],
)
def test_check_rbf_logits_rejects_wrong_answers(wrong, message) -> None:
    with pytest.raises(AssertionError, match=message):
        exercises.check_rbf_logits(wrong)


def test_check_partial_conv_params(capsys) -> None:
    exercises.check_partial_conv_params(lambda table, k: sum(len(t) * k * k + 1 for t in table))
    assert "1,516" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="expected 1516, got 1500"):
        exercises.check_partial_conv_params(lambda table, k: sum(len(t) * k * k for t in table))  # no biases


# ---------------------------------------------------------------- Inception v2/v3: label smoothing


def smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, epsilon: float) -> torch.Tensor:
    """A right answer written from the paper's q'(k) = (1 - epsilon) delta(k, y) + epsilon / K."""
    classes = logits.shape[1]
    target = torch.full_like(logits, epsilon / classes)
    target[torch.arange(len(labels)), labels] += 1 - epsilon
    return -(target * logits.log_softmax(1)).sum(1).mean()


def test_check_label_smoothing_accepts_the_papers_target(capsys) -> None:
    exercises.check_label_smoothing(smoothed_cross_entropy)
    assert "Correct" in capsys.readouterr().out


def smoothing_the_other_classes_only(logits: torch.Tensor, labels: torch.Tensor, epsilon: float) -> torch.Tensor:
    """A common variant, wrong here: epsilon / (K - 1) on the other classes, 1 - epsilon on the label."""
    classes = logits.shape[1]
    target = torch.full_like(logits, epsilon / (classes - 1))
    target[torch.arange(len(labels)), labels] = 1 - epsilon
    return -(target * logits.log_softmax(1)).sum(1).mean()


@pytest.mark.parametrize(
    "wrong, message",
    [
        (smoothing_the_other_classes_only, "differ"),
        (lambda logits, labels, epsilon: F.cross_entropy(logits, labels), "differ"),  # epsilon ignored
        (lambda logits, labels, epsilon: smoothed_cross_entropy(logits, labels, epsilon) * len(labels), "differ"),
        (lambda logits, labels, epsilon: F.cross_entropy(logits, labels, reduction="none", label_smoothing=epsilon),
         "one loss per image"),
        (lambda logits, labels, epsilon: 2.3, "expected a torch.Tensor"),
    ],
)
def test_check_label_smoothing_rejects_wrong_answers(wrong, message) -> None:
    with pytest.raises(AssertionError, match=message):
        exercises.check_label_smoothing(wrong)


# ---------------------------------------------------------------- Inception-v4: the sides of the three grids


def valid(n: int, k: int = 3, s: int = 1) -> int:
    return (n - k) // s + 1


def grid_sizes_by_hand(side: int) -> tuple[int, int, int]:
    """Figure 3's stem, then Reductions A and B, written from the figures."""
    n = valid(valid(side, s=2))  # 3x3/2 V, 3x3 V; the padded 3x3 keeps n
    n = valid(valid(valid(n, s=2)), s=2)  # pool | 3x3/2 V, then 3x3 V (and 1x7, 7x1 padded), then 3x3/2 V | pool
    a = valid(n, s=2)
    return n, a, valid(a, s=2)


def test_check_grid_sizes_accepts_the_figures_arithmetic(capsys) -> None:
    assert grid_sizes_by_hand(299) == (35, 17, 8)
    exercises.check_grid_sizes(grid_sizes_by_hand)
    assert "(35, 17, 8)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda side: (35, 17, 8), r"grid_sizes\(75\): expected \(7, 3, 1\)"),  # hard-wired for 299
        (lambda side: (side // 8, side // 16, side // 32), "expected"),  # halving, as if everything were padded
        (lambda side: [35, 17, 8], "tuple of three ints"),
    ],
)
def test_check_grid_sizes_rejects_wrong_answers(wrong, message) -> None:
    with pytest.raises(AssertionError, match=message):
        exercises.check_grid_sizes(wrong)


# ---------------------------------------------------------------- GoogLeNet: multiply-adds of an Inception module


def inception_macs(in_channels: int, widths: tuple[int, ...], size: int) -> int:
    """A right answer: six convolutions, each size^2 x (input maps) x k^2 x (filters)."""
    ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj = widths
    reads_input = ch1x1 + ch3x3_reduce + ch5x5_reduce + pool_proj  # the four 1x1 convolutions on the input
    return size * size * (in_channels * reads_input + 9 * ch3x3_reduce * ch3x3 + 25 * ch5x5_reduce * ch5x5)


def test_check_inception_macs_accepts_the_count(capsys) -> None:
    exercises.check_inception_macs(inception_macs)
    assert "Correct" in capsys.readouterr().out
    assert inception_macs(192, (64, 96, 128, 16, 32, 32), 28) == 128_049_152  # Table 1: 3a, 128M ops


def test_check_inception_macs_names_the_naive_module() -> None:
    def naive(in_channels, widths, size):
        ch1x1, _, ch3x3, _, ch5x5, _ = widths
        return size * size * in_channels * (ch1x1 + 9 * ch3x3 + 25 * ch5x5)

    with pytest.raises(AssertionError, match="without its 1x1 reductions"):
        exercises.check_inception_macs(naive)


def test_check_inception_macs_names_a_missing_pool_proj() -> None:
    def no_pool_proj(in_channels, widths, size):
        return inception_macs(in_channels, widths, size) - size * size * in_channels * widths[5]

    with pytest.raises(AssertionError, match="pool proj is missing"):
        exercises.check_inception_macs(no_pool_proj)


def test_check_inception_macs_rejects_a_wrong_kernel_with_the_general_advice() -> None:
    def three_by_three_everywhere(in_channels, widths, size):  # torchvision's bug: 3x3 in the "5x5" branch
        return inception_macs(in_channels, widths, size) - size * size * 16 * widths[3] * widths[4]

    with pytest.raises(AssertionError, match=r"expected 128,049,152 multiply-adds.*for each of the six"):
        exercises.check_inception_macs(three_by_three_everywhere)


# ---------------------------------------------------------------- ResNeXt: the bottleneck width of Table 2


def equal_cost_width(cardinality: int, channels: int, width: int) -> int:
    """A right answer: solve C (2 channels d + 9 d^2) = 2 channels width + 9 width^2 for d, take the nearest."""
    target = (2 * channels * width + 9 * width**2) / cardinality
    return round((-2 * channels + (4 * channels**2 + 36 * target) ** 0.5) / 18)


def test_check_equal_cost_width_accepts_table_2(capsys) -> None:
    assert [equal_cost_width(c, 256, 64) for c in (1, 2, 4, 8, 32)] == [64, 40, 24, 14, 4]  # Table 2
    exercises.check_equal_cost_width(equal_cost_width)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda c, channels, width: width // c, "width split evenly"),
        (lambda c, channels, width: round(width / c**0.5), "only the 3x3 convolution"),
        (lambda c, channels, width: equal_cost_width(c, channels, width) - 1, r"expected d = 64 .*nearest"),
        (lambda c, channels, width: float(equal_cost_width(c, channels, width)), "an int"),
    ],
)
def test_check_equal_cost_width_rejects_wrong_answers(wrong, message) -> None:
    with pytest.raises(AssertionError, match=message):
        exercises.check_equal_cost_width(wrong)


# ---------------------------------------------------------------- Pre-activation ResNet: the full pre-activation unit


def preact_unit(x, bn1, conv1, bn2, conv2):
    """A right answer: BN-ReLU-conv twice on the branch, the identity on the shortcut, nothing after the sum."""
    return x + conv2(F.relu(bn2(conv1(F.relu(bn1(x))))))


def test_check_preact_unit_accepts_the_unit(capsys) -> None:
    exercises.check_preact_unit(preact_unit)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda x, bn1, conv1, bn2, conv2: preact_unit(x, bn1, conv1, bn2, conv2) - x, "shortcut is missing"),
    (lambda x, bn1, conv1, bn2, conv2: F.relu(preact_unit(x, bn1, conv1, bn2, conv2)), "ReLU follows the addition"),
    (lambda x, bn1, conv1, bn2, conv2: x + bn2(conv2(F.relu(bn1(conv1(x))))), "original order"),
    (lambda x, bn1, conv1, bn2, conv2: F.relu(bn1(x)) + conv2(F.relu(bn2(conv1(F.relu(bn1(x)))))),
     "shortcut reads the activated input"),
    (lambda x, bn1, conv1, bn2, conv2: x + conv2(F.relu(bn2(conv1(bn1(x))))), "values differ from the reference"),
    (lambda x, bn1, conv1, bn2, conv2: x[:, :1], "expected shape"),
])  # fmt: skip
def test_check_preact_unit_says_what_is_wrong(wrong, message) -> None:
    with pytest.raises(AssertionError, match=message):
        exercises.check_preact_unit(wrong)


def highway_layer(x, w_h, b_h, w_t, b_t):
    """A right answer: Eq. 3 of Srivastava et al. 2015."""
    t = torch.sigmoid(x @ w_t.T + b_t)
    return torch.relu(x @ w_h.T + b_h) * t + x * (1 - t)


def test_check_highway_layer_accepts_eq_3(capsys) -> None:
    exercises.check_highway_layer(highway_layer)
    assert "Correct" in capsys.readouterr().out


def test_check_highway_layer_names_swapped_gates_and_a_missing_carry() -> None:
    def swapped(x, w_h, b_h, w_t, b_t):
        t = torch.sigmoid(x @ w_t.T + b_t)
        return torch.relu(x @ w_h.T + b_h) * (1 - t) + x * t

    def no_carry(x, w_h, b_h, w_t, b_t):
        return torch.relu(x @ w_h.T + b_h) * torch.sigmoid(x @ w_t.T + b_t)

    with pytest.raises(AssertionError, match="swapped"):
        exercises.check_highway_layer(swapped)
    with pytest.raises(AssertionError, match="carry term"):
        exercises.check_highway_layer(no_carry)


# ---------------------------------------------------------------- Stochastic depth: the linear decay rule


def survival_probabilities(num_blocks: int, p_last: float) -> list[float]:
    """A right answer: p_l = 1 - l / L (1 - p_L) for l = 1 ... L."""
    return [1 - l / num_blocks * (1 - p_last) for l in range(1, num_blocks + 1)]


def test_check_linear_decay_accepts_the_rule(capsys) -> None:
    exercises.check_linear_decay(survival_probabilities)
    assert "Correct" in capsys.readouterr().out
    assert sum(survival_probabilities(54, 0.5)) == pytest.approx((3 * 54 - 1) / 4)  # the paper's E(L) = 40.25


@pytest.mark.parametrize("wrong, message", [
    (lambda L, p: [1 - l / L * (1 - p) for l in range(L)], "counted from l = 0"),
    (lambda L, p: [1 - l / max(L - 1, 1) * (1 - p) for l in range(L)], "one step before the first block"),
    (lambda L, p: survival_probabilities(L, p)[::-1], "rise with depth"),
    (lambda L, p: [p] * L, "uniform rule"),
    (lambda L, p: [1 - l / (L + 1) * (1 - p) for l in range(1, L + 1)], r"expected 0\.9907, 0\.9815, \.\.\. 0\.5000"),
    (lambda L, p: survival_probabilities(L, p)[1:], "returned 53 probabilities"),
])  # fmt: skip
def test_check_linear_decay_names_the_mistake(wrong, message) -> None:
    with pytest.raises(AssertionError, match=message):
        exercises.check_linear_decay(wrong)


# ---------------------------------------------------------------- ResNet: parameters of a CIFAR ResNet


def resnet_params(n: int, shortcut: str) -> int:
    """A right answer: stem, 3n basic blocks, the shortcut option's projections, the classifier."""
    conv_bn = lambda c_in, c_out, k: k * k * c_in * c_out + 2 * c_out  # noqa: E731  no bias; BN scale and shift
    total, channels = conv_bn(3, 16, 3), 16
    for width in (16, 32, 64):
        for i in range(n):
            total += conv_bn(channels, width, 3) + conv_bn(width, width, 3)
            if shortcut == "C" or (shortcut == "B" and channels != width):
                total += conv_bn(channels, width, 1)
            channels = width
    return total + 64 * 10 + 10


def test_check_resnet_params_accepts_the_count(capsys) -> None:
    assert resnet_params(3, "A") == 269_722 and resnet_params(9, "A") == 853_018  # Table 6: 0.27M, 0.85M
    exercises.check_resnet_params(resnet_params)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda n, s: resnet_params(n, "A"), r"shortcut='B': expected .*projection shortcuts are missing"),
        (lambda n, s: resnet_params(n, s) - 10, "classifier's 10 biases"),
        (lambda n, s: resnet_params(n, s) - 650, "classifier is missing"),
        (lambda n, s: 269_722, r"n=9 \(56 layers\), shortcut='A': expected 853,018"),
        (lambda n, s: resnet_params(n, s) + 1, "count the stem"),
    ],
)
def test_check_resnet_params_says_what_differs(wrong, message) -> None:
    with pytest.raises(AssertionError, match=message):
        exercises.check_resnet_params(wrong)


def test_check_resnet_params_names_missing_batchnorm() -> None:
    def weights_only(n: int, shortcut: str) -> int:
        bn = 2 * 16 + sum(2 * 2 * n * w for w in (16, 32, 64))  # stem and two per block
        bn += {"A": 0, "B": 2 * (32 + 64), "C": 2 * (n * 16 + n * 32 + n * 64)}[shortcut]
        return resnet_params(n, shortcut) - bn

    with pytest.raises(AssertionError, match="BatchNorm layers are missing"):
        exercises.check_resnet_params(weights_only)


# ---------------------------------------------------------------- DenseNet: maps after each block and transition


def densenet_channels(depth: int, growth_rate: int, compression: float, bottleneck: bool) -> list[int]:
    """A right answer, from the paper's Sec. 3."""
    layers = (depth - 4) // (6 if bottleneck else 3)
    channels = 2 * growth_rate if bottleneck and compression < 1 else 16
    out = []
    for block in range(3):
        channels += layers * growth_rate
        out.append(channels)
        if block < 2:
            channels = int(compression * channels)
            out.append(channels)
    return out


def test_check_densenet_channels_accepts_the_paper_arithmetic(capsys) -> None:
    assert densenet_channels(100, 12, 0.5, True) == [216, 108, 300, 150, 342]
    exercises.check_densenet_channels(densenet_channels)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda d, k, t, b: [216, 108, 300, 150, 342], r"densenet_channels\(40, 12, 1.0, bottleneck=False\)"),
        (lambda d, k, t, b: [c * 2 if i == 0 else c for i, c in enumerate(densenet_channels(d, k, t, b))],
         "after block 1"),
        (lambda d, k, t, b: densenet_channels(d, k, t, b)[:3], "five ints"),
        (lambda d, k, t, b: densenet_channels(d, k, 1.0, b), "DenseNet-BC"),  # compression forgotten
    ],
)
def test_check_densenet_channels_rejects_wrong_answers(wrong, message) -> None:
    with pytest.raises(AssertionError, match=message):
        exercises.check_densenet_channels(wrong)


# ---------------------------------------------------------------- Ladder networks: the vanilla combinator


def combinator(z_noisy: torch.Tensor, u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """A right answer: z^ = (z~ - mu(u)) v(u) + mu(u), ten parameters per unit."""
    mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
    v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
    return (z_noisy - mu) * v + mu


def test_check_ladder_combinator_accepts_the_vanilla_g(capsys) -> None:
    exercises.check_ladder_combinator(combinator)
    assert "Correct" in capsys.readouterr().out


def _mu_v(u, a, linear=True, sigmoid=True):
    s = torch.sigmoid if sigmoid else (lambda t: t)
    mu = a[0] * s(a[1] * u + a[2]) + (a[3] * u if linear else 0) + a[4]
    v = a[5] * s(a[6] * u + a[7]) + (a[8] * u if linear else 0) + a[9]
    return mu, v


@pytest.mark.parametrize("wrong, message", [
    (lambda z, u, a: (lambda mu, v: (z - v) * mu + v)(*_mu_v(u, a)), "swapped"),
    (lambda z, u, a: (lambda mu, v: z * v + mu)(*_mu_v(u, a)), "without centring"),
    (lambda z, u, a: (lambda mu, v: (z - mu) * v)(*_mu_v(u, a)), "not added back"),
    (lambda z, u, a: (lambda mu, v: (z - mu) * v + mu)(*_mu_v(u, a, linear=False)), "linear terms"),
    (lambda z, u, a: (lambda mu, v: (z - mu) * v + mu)(*_mu_v(u, a, sigmoid=False)), "sigmoids are missing"),
    (lambda z, u, a: z, "values differ"),
    (lambda z, u, a: combinator(z, u, a)[:, :1], "shape"),
])  # fmt: skip
def test_check_ladder_combinator_names_the_mistake(wrong, message) -> None:
    with pytest.raises(AssertionError, match=message):
        exercises.check_ladder_combinator(wrong)



def test_check_pareto_front_accepts_a_correct_front(capsys) -> None:
    exercises.check_pareto_front(pareto_front)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda c, s: sorted(pareto_front(c, s), reverse=True), "wrong order"),
        (lambda c, s: list(range(len(c))), "extra points"),
        # ties: a point that only equals the best so far is kept
        (lambda c, s: [i for i in sorted(range(len(c)), key=lambda i: (c[i], -s[i]))
                       if s[i] >= max([s[j] for j in range(len(c)) if c[j] < c[i]], default=-1)], "extra points"),
        (lambda c, s: pareto_front(c, s)[:1], "points missing"),
        (lambda c, s: None, "list of int indices"),
    ],
)
def test_check_pareto_front_rejects_wrong_answers(wrong, message) -> None:
    with pytest.raises(AssertionError, match=message):
        exercises.check_pareto_front(wrong)
