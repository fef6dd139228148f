"""LeNet-5 and a modern variant of it.

Paper: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning
Applied to Document Recognition", Proc. IEEE 86(11), 1998, Section II.B.

``lenet5`` follows the paper layer by layer and has its 60,000 trainable
parameters: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164.

- Input: 32x32 grey images (MNIST's 28x28 digits padded by 2 pixels).
- C1, C3, C5: 5x5 convolutions. C3 sees only some of S2's maps, by the
  paper's Table I (``C3_TABLE``), to break symmetry and save parameters.
- S2, S4: "subsampling": the sum of each 2x2 block times one trainable
  coefficient plus one trainable bias per map.
- Squashing function after every layer up to F6: f(a) = 1.7159 tanh(2a/3).
- Output: ten Euclidean radial basis function (RBF) units whose centres are
  fixed (not trained) 7x12 bitmaps of the digits, drawn with +1/-1 pixels;
  unit i outputs the squared distance between F6 and centre i.

Where this code departs from the paper:
- ``forward`` returns the negated RBF distances as logits, so that the usual
  cross-entropy loss applies. The paper's MAP loss is the same cross-entropy
  with one extra constant "rubbish" class, e^{-j}, in the denominator.
- Not a departure, though it reads like one: the paper passes S2's and S4's
  sums through "a sigmoidal function", by which it means an S-shaped squashing
  function, and Appendix A names the one its networks use, the scaled tanh
  above. S2 and S4 use it here, as every other layer does.
- For a number of classes other than ten the RBF centres are random +1/-1
  codes (seeded), since the paper's bitmaps exist for digits only.
- Initialisation: PyTorch's default, uniform in +-1/sqrt(F) for a fan-in F,
  not the paper's Appendix C rule, uniform in +-2.4/F. The ratio of the two
  ranges, sqrt(F)/2.4, depends on the fan-in: about 2 for C1 (F = 25), 8 for
  C5 (F = 400), so PyTorch starts the wide layers relatively larger. S2's and
  S4's coefficients start at 1 and their biases at 0, where the paper's rule
  (F = 4) would draw them from +-0.6.

``lenet5_modern`` keeps the layer sizes but uses what later networks did
instead: ReLU, max pooling, a full C3 and a linear output layer. Each of
these four changes is also an option of ``lenet5`` on its own, for the
chapter's ablation.
"""

from __future__ import annotations

import torch
from torch import nn

from . import Reference, register
from .layers import expect_input

# Table I of the paper: for each of C3's 16 maps, the S2 maps it reads.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1),
    (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip

# The RBF centres of the output layer: stylised 7x12 bitmaps of the ten
# digits (the paper's Fig. 3), side by side; "#" is a +1 pixel, "." a -1.
DIGITS_PICTURE = """
.#####. ...#... .#####. .#####. .....#. ####### .#####. ####### .#####. .#####.
#.....# ..##... #.....# #.....# ....##. #...... #.....# ......# #.....# #.....#
#.....# .#.#... ......# ......# ...#.#. #...... #...... .....#. #.....# #.....#
#.....# ...#... ......# ......# ..#..#. #...... #...... .....#. #.....# #.....#
#.....# ...#... .....#. ..####. .#...#. ######. ######. ....#.. .#####. #.....#
#.....# ...#... ....#.. ......# #....#. ......# #.....# ....#.. #.....# .######
#.....# ...#... ...#... ......# ####### ......# #.....# ...#... #.....# ......#
#.....# ...#... ..#.... ......# .....#. ......# #.....# ...#... #.....# ......#
#.....# ...#... .#..... ......# .....#. ......# #.....# ..#.... #.....# ......#
#.....# ...#... #...... #.....# .....#. #.....# #.....# ..#.... #.....# #.....#
.#####. .#####. ####### .#####. .....#. .#####. .#####. ..#.... .#####. .#####.
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
"""
# One string per digit, its 12 rows of 7 pixels joined by "|" ("#" and " ").
DIGIT_BITMAPS: tuple[str, ...] = tuple(
    "|".join(
        row[8 * digit : 8 * digit + 7].replace(".", " ")
        for row in DIGITS_PICTURE.strip().split("\n")
    )
    for digit in range(10)
)


def scaled_tanh(a: torch.Tensor) -> torch.Tensor:
    """The paper's squashing function (its Appendix A).

    f(a) = A tanh(S a), A = 1.7159, S = 2/3.
    """
    return 1.7159 * torch.tanh(a * (2.0 / 3.0))


class ScaledTanh(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scaled_tanh(x)


class Subsampling(nn.Module):
    """S2/S4: each map's 2x2 sums, times a coefficient, plus a bias.

    One trainable coefficient and one trainable bias per map; they start at
    1 and 0 (the activation that follows is a separate module).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sums = nn.functional.avg_pool2d(x, 2) * 4
        shape = (1, -1, 1, 1)  # one coefficient and one bias per map
        return sums * self.weight.view(shape) + self.bias.view(shape)


class PartialConv2d(nn.Module):
    """A convolution whose output map j sees only the input maps ``table[j]``.

    The layer holds exactly the paper's weights: one kernel per (output,
    input) pair of the table plus one bias per output map (for C3: 60 kernels
    of 5x5 and 16 biases, 1,516 parameters). Each forward pass scatters the
    kernels into a full out x in grid whose other entries stay zero, then runs
    one ordinary convolution, which is far faster than one small convolution
    per map.
    """

    def __init__(
        self, table: tuple[tuple[int, ...], ...], kernel_size: int
    ) -> None:
        super().__init__()
        self.table = table
        self.in_channels = max(i for inputs in table for i in inputs) + 1
        self.out_channels = len(table)
        pairs = [(j, i) for j, inputs in enumerate(table) for i in inputs]
        # PyTorch's default initialisation, uniform in +-1/sqrt(fan-in), with
        # each output map's true fan-in (its inputs times the kernel area).
        fan_in = torch.tensor(
            [len(inputs) * kernel_size**2 for inputs in table]
        )
        bound = 1 / fan_in.sqrt()
        weight = torch.rand(len(pairs), kernel_size, kernel_size) * 2 - 1
        self.weight = nn.Parameter(
            weight * bound[[j for j, _ in pairs]].view(-1, 1, 1)
        )
        self.bias = nn.Parameter((torch.rand(len(table)) * 2 - 1) * bound)
        # Where each kernel goes in the flattened out x in grid.
        slot = torch.tensor([j * self.in_channels + i for j, i in pairs])
        self.register_buffer("slot", slot, persistent=False)

    def full_weight(self) -> torch.Tensor:
        """The out x in x k x k weight of the equivalent full convolution.

        Zeros off the table.
        """
        k = self.weight.shape[-1]
        grid = self.weight.new_zeros(
            self.out_channels * self.in_channels, k, k
        )
        grid = grid.index_copy(0, self.slot, self.weight)
        return grid.view(self.out_channels, self.in_channels, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.full_weight(), self.bias)

    def multiply_adds(
        self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
    ) -> int:
        """Only the table's kernels count, at every output position.

        (Read by ``cnnbook.summary``.)
        """
        positions = output.numel() // self.out_channels
        return positions * self.weight.numel()


class EuclideanRBF(nn.Module):
    """Output layer: y_i = sum_j (x_j - w_ij)^2 against fixed centres w_i.

    Returns -y as logits.
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        if num_classes == 10 and in_features == 84:
            pixels = [bitmap.replace("|", "") for bitmap in DIGIT_BITMAPS]
            signs = [[1.0 if p == "#" else -1.0 for p in d] for d in pixels]
            centres = torch.tensor(signs)
        else:
            generator = torch.Generator().manual_seed(0)
            bits = torch.randint(
                0, 2, (num_classes, in_features), generator=generator
            )
            centres = bits.float() * 2 - 1
        # A buffer: fixed by hand, not trained.
        self.register_buffer("centres", centres)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(x, self.centres).pow(2)


class LeNet5(nn.Module):
    """LeNet-5: the defaults are the 1998 paper's; each option swaps one part.

    ``activation``: "scaled_tanh" (paper) or "relu"; ``pooling``: "subsample"
    (paper: trainable 2x2 sums, then the activation) or "max" (2x2 max
    pooling); ``c3``: "partial" (paper's Table I) or "full"; ``output``: "rbf"
    (paper: fixed Euclidean RBF centres) or "linear".
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        activation: str = "scaled_tanh",
        pooling: str = "subsample",
        c3: str = "partial",
        output: str = "rbf",
        name: str = "lenet5",
    ) -> None:
        super().__init__()
        for option, value, allowed in (
            ("activation", activation, ("scaled_tanh", "relu")),
            ("pooling", pooling, ("subsample", "max")),
            ("c3", c3, ("partial", "full")),
            ("output", output, ("rbf", "linear")),
        ):
            if value not in allowed:
                raise ValueError(f"{option}={value!r} is not one of {allowed}")
        act: type[nn.Module] = (
            ScaledTanh if activation == "scaled_tanh" else nn.ReLU
        )

        def pool(channels: int) -> nn.Module:
            if pooling == "max":
                return nn.MaxPool2d(2)
            return nn.Sequential(Subsampling(channels), act())

        c3_layer = (
            PartialConv2d(C3_TABLE, 5)
            if c3 == "partial"
            else nn.Conv2d(6, 16, 5)
        )
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), act(),  # C1: N x 6 x 28 x 28
            pool(6),                              # S2: N x 6 x 14 x 14
            c3_layer, act(),                      # C3: N x 16 x 10 x 10
            pool(16),                             # S4: N x 16 x 5 x 5
            nn.Conv2d(16, 120, 5), act(),         # C5: N x 120 x 1 x 1
        )  # fmt: skip
        # F6: N x 84
        self.f6 = nn.Sequential(nn.Flatten(), nn.Linear(120, 84), act())
        if output == "rbf":
            self.output = EuclideanRBF(84, num_classes)
        else:
            self.output = nn.Linear(84, num_classes)
        self.in_channels = in_channels
        self.name = name

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        expect_input(x, self.name, self.in_channels, size=32)
        return self.f6(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.forward_features(x))


@register(
    input_size=(1, 32, 32),
    num_classes=10,
    reference=Reference("LeCun et al. 1998, Sec. II.B", params=60_000),
)
def lenet5(num_classes: int = 10, **kwargs) -> LeNet5:
    """LeNet-5 as in LeCun et al. 1998: 60,000 trainable parameters.

    Options: see :class:`LeNet5`.
    """
    return LeNet5(num_classes, **kwargs)


@register(input_size=(1, 32, 32), num_classes=10)
def lenet5_modern(num_classes: int = 10, **kwargs) -> LeNet5:
    """LeNet-5's layer sizes; ReLU, max pooling, full C3, linear output."""
    options = dict(
        activation="relu",
        pooling="max",
        c3="full",
        output="linear",
        name="lenet5_modern",
    )
    return LeNet5(num_classes, **{**options, **kwargs})
