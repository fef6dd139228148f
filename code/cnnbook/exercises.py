"""Check functions for the chapters' coding exercises.

Each ``check_*`` function runs a student's function on inputs the student has
not seen and compares it with the course's own implementation. It prints a
short "Correct" line, or raises an ``AssertionError`` that says what differs,
so an instructor can grade a notebook by running it.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = [
    "check_rbf_logits",
    "check_partial_conv_params",
    "check_lrn",
    "check_unpool",
    "check_linear_to_conv",
    "check_mlp_as_conv",
    "check_label_smoothing",
    "check_grid_sizes",
    "check_inception_macs",
    "check_resnet_params",
    "check_preact_unit",
    "check_equal_cost_width",
    "check_linear_decay",
    "check_densenet_channels",
    "check_highway_layer",
    "check_ladder_combinator",
    "check_pareto_front",
]


def _compare(
    what: str, got: object, expected: torch.Tensor, atol: float = 1e-4
) -> None:
    if not isinstance(got, torch.Tensor):
        raise AssertionError(
            f"{what}: expected a torch.Tensor, got {type(got).__name__}"
        )
    if got.shape != expected.shape:
        raise AssertionError(
            f"{what}: expected shape "
            f"{tuple(expected.shape)}, got {tuple(got.shape)}"
        )
    if not torch.allclose(got.float(), expected, atol=atol, rtol=1e-4):
        worst = (got.float() - expected).abs().max().item()
        raise AssertionError(
            f"{what}: values differ from the reference by up to {worst:.3g}"
        )


def check_rbf_logits(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Chapter LeNet-5: ``fn(f6, centres)`` must return LeNet-5's output as
    logits, -||f6_n - centre_i||^2.

    ``f6`` is N x 84, ``centres`` 10 x 84; the answer is N x 10.
    """
    from .models.lenet import EuclideanRBF

    rbf = EuclideanRBF(84, 10)
    generator = torch.Generator().manual_seed(1998)
    for n in (1, 5, 32):
        f6 = torch.randn(n, 84, generator=generator) * 1.7
        _compare(
            f"rbf_logits on a batch of {n}",
            fn(f6, rbf.centres.clone()),
            rbf(f6),
            atol=1e-3,
        )
    # Logits, not distances: the nearest centre must score highest.
    if fn(rbf.centres.clone(), rbf.centres.clone()).argmax(1).tolist() != list(
        range(10)
    ):
        raise AssertionError(
            "the nearest centre must get the largest logit: "
            "return minus the squared distance"
        )
    print("Correct: your RBF output layer matches LeNet-5's.")


def check_partial_conv_params(
    fn: Callable[[tuple[tuple[int, ...], ...], int], int],
) -> None:
    """Chapter LeNet-5: ``fn(table, kernel_size)`` must count the trainable
    parameters of a partially connected layer.
    """
    from .models.lenet import C3_TABLE, PartialConv2d

    cases = [
        (C3_TABLE, 5),
        (((0,), (0, 1), (1, 2, 3)), 3),
        (((0, 1, 2, 3, 4, 5),) * 4, 1),
    ]
    for table, k in cases:
        expected = sum(p.numel() for p in PartialConv2d(table, k).parameters())
        got = fn(table, k)
        if got != expected:
            raise AssertionError(
                f"for a {len(table)}-map table with {k}x{k} "
                f"kernels: expected {expected}, got {got}"
            )
    print("Correct: your count matches the layer's parameters, 1,516 for C3.")


def check_lrn(fn: Callable[..., torch.Tensor]) -> None:
    """Chapter AlexNet: ``fn(a, size, alpha, beta, k)`` must apply local
    response normalisation (Sec. 3.3).

    ``b_i = a_i / (k + alpha * sum_j a_j^2)^beta``, the sum over the ``size``
    maps centred on map i (cut off at the first and last map); ``a`` is N x C x
    H x W. Compared with ``cnnbook.models.layers.local_response_norm``.
    """
    from .models.layers import local_response_norm

    generator = torch.Generator().manual_seed(2012)
    # AlexNet's constants, then others, so that no constant can be hard-wired
    cases = [
        ((2, 7, 4, 4), dict(size=5, alpha=1e-4, beta=0.75, k=2.0)),
        ((1, 3, 2, 5), dict(size=3, alpha=0.05, beta=0.5, k=1.0)),
        # a window wider than half the maps
        ((3, 10, 3, 3), dict(size=7, alpha=0.01, beta=1.0, k=0.5)),
    ]
    for shape, constants in cases:
        # large activities, so the sum matters
        a = torch.randn(shape, generator=generator) * 30
        expected = local_response_norm(**constants)(a)
        _compare(
            f"lrn on a batch of shape {shape} with {constants}",
            fn(a.clone(), **constants),
            expected,
        )
    print("Correct: your normalisation matches AlexNet's LRN.")


def check_unpool(
    fn: Callable[[torch.Tensor, torch.Tensor, tuple[int, int]], torch.Tensor],
) -> None:
    """Chapter ZFNet: ``fn(signal, switches, size)`` must undo max pooling as
    the deconvnet does (Sec. 2.1).

    ``signal`` is N x C x h x w, ``switches`` the N x C x h x w flat indices
    that ``F.max_pool2d(..., return_indices=True)`` returned, ``size`` the (H,
    W) of the map before pooling. The answer is N x C x H x W: zero everywhere
    except at the switches, where the signal goes back; where overlapping
    windows picked the same pixel, their signals add up. Compared with
    ``cnnbook.visualize``'s unpooling.
    """
    import torch.nn.functional as F

    from .visualize import _unpool

    generator = torch.Generator().manual_seed(2014)
    shared = torch.zeros(1, 1, 5, 5)
    # the maximum of all four overlapping 3x3/2 windows
    shared[0, 0, 2, 2] = 1.0
    cases = [  # (what, the pooled input, kernel, stride)
        (
            "non-overlapping 2x2/2 pooling",
            torch.randn(2, 3, 6, 6, generator=generator),
            2,
            2,
        ),
        (
            "overlapping 3x3/2 pooling (ZFNet's)",
            torch.randn(2, 4, 9, 9, generator=generator),
            3,
            2,
        ),
        ("four 3x3/2 windows sharing one maximum", shared, 3, 2),
    ]
    for what, x, kernel, stride in cases:
        pooled, switches = F.max_pool2d(
            x, kernel, stride, ceil_mode=True, return_indices=True
        )
        signal = torch.rand(pooled.shape, generator=generator) + 0.5
        expected = _unpool(signal, switches, x.shape[-2:])
        got = fn(signal.clone(), switches.clone(), tuple(x.shape[-2:]))
        try:
            _compare(f"unpool after {what}", got, expected)
        except AssertionError as error:
            ordered = switches.flatten(2).sort(dim=2).values
            # some windows share a switch
            if (ordered[..., 1:] == ordered[..., :-1]).any():
                raise AssertionError(
                    f"{error}. Here several windows picked "
                    "the same pixel: their signals must add "
                    "up (as the gradient of max pooling "
                    "does); F.max_unpool2d keeps only one "
                    "of them, and so does an assignment with "
                    "index_put or scatter_."
                ) from None
            raise
    print(
        "Correct: your unpooling puts every value back at its switch, and "
        "adds values that share one."
    )


def check_linear_to_conv(fn: Callable[..., torch.nn.Conv2d]) -> None:
    """Chapter VGG: ``fn(fc, in_channels, kernel_size)`` must return an
    ``nn.Conv2d`` that computes ``fc``.

    ``fc`` is an ``nn.Linear`` whose input is an ``in_channels x kernel_size x
    kernel_size`` map flattened in (channel, row, column) order, as VGG's fc6
    reads the last stage (Sec. 3.2, dense evaluation). On a map of exactly that
    size the convolution's 1x1 output must equal ``fc``'s; on a larger map
    every output position must be ``fc`` applied to the window there.
    """
    from torch import nn

    generator = torch.Generator().manual_seed(2015)
    for in_channels, kernel_size, out_features in (
        (3, 2, 5),
        (4, 3, 7),
        (6, 1, 2),
    ):
        fc = nn.Linear(in_channels * kernel_size**2, out_features)
        with torch.no_grad():  # weights and biases not symmetric in any way
            fc.weight.copy_(torch.randn(fc.weight.shape, generator=generator))
            fc.bias.copy_(torch.randn(fc.bias.shape, generator=generator))
        before = [p.detach().clone() for p in fc.parameters()]
        conv = fn(fc, in_channels, kernel_size)
        if not isinstance(conv, nn.Conv2d):
            raise AssertionError(
                f"expected an nn.Conv2d, got {type(conv).__name__}"
            )
        if any(not torch.equal(p, q) for p, q in zip(before, fc.parameters())):
            raise AssertionError(
                "linear_to_conv changed the Linear layer's "
                "parameters; copy them, leave fc as it is"
            )
        case = (
            f"a Linear of {in_channels}x{kernel_size}x{kernel_size} -> "
            f"{out_features}"
        )
        x = torch.randn(
            2, in_channels, kernel_size, kernel_size, generator=generator
        )
        with torch.no_grad():
            got, expected = (
                conv(x),
                fc(x.flatten(1)).view(2, out_features, 1, 1),
            )
        _compare(
            f"{case}, on a map of exactly {kernel_size}x{kernel_size}",
            got,
            expected,
        )
        big = torch.randn(
            1,
            in_channels,
            kernel_size + 2,
            kernel_size + 2,
            generator=generator,
        )
        # 1 x C x 3 x 3 x k x k
        windows = big.unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)
        # each window in (channel, row, column) order
        flat = windows.permute(0, 2, 3, 1, 4, 5).reshape(9, -1)
        with torch.no_grad():
            got, expected = (
                conv(big),
                fc(flat).T.reshape(1, out_features, 3, 3),
            )
        _compare(
            f"{case}, sliding over a {kernel_size + 2}x{kernel_size + 2} "
            "map (stride 1, no padding)",
            got,
            expected,
        )
    print(
        "Correct: your convolution computes the Linear layer at every "
        "position, as VGG's dense evaluation does."
    )


def check_mlp_as_conv(
    fn: Callable[[torch.nn.Sequential], torch.nn.Module],
) -> None:
    """Chapter Network in Network: ``fn(mlp)`` must return the per-pixel MLP
    ``mlp`` as a stack of 1x1 convolutions.

    ``mlp`` is an ``nn.Sequential`` of ``nn.Linear`` layers and activations,
    applied to each pixel's channel vector: ``mlp(x.permute(0, 2, 3,
    1)).permute(0, 3, 1, 2)`` for ``x`` of shape N x C x H x W. The answer must
    compute the same on ``x`` directly, with every ``nn.Linear`` replaced by an
    ``nn.Conv2d`` with a 1x1 kernel and the other layers kept; ``mlp`` itself
    must stay unchanged.
    """
    from torch import nn

    generator = torch.Generator().manual_seed(2013)
    # square layers too, so that a transposed weight matrix is caught by the
    # values, not by a shape error
    cases = [
        (
            "two layers, 6 -> 5 -> 3",
            nn.Sequential(
                nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3), nn.ReLU()
            ),
        ),
        (
            "square layers, 4 -> 4 -> 4",
            nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4)),
        ),
        (
            "no biases, 3 -> 7 -> 2",
            nn.Sequential(
                nn.Linear(3, 7, bias=False),
                nn.Tanh(),
                nn.Linear(7, 2, bias=False),
            ),
        ),
    ]
    for what, mlp in cases:
        with torch.no_grad():  # weights and biases not symmetric in any way
            for p in mlp.parameters():
                p.copy_(torch.randn(p.shape, generator=generator))
        before = [p.detach().clone() for p in mlp.parameters()]
        convs = fn(mlp)
        if any(
            not torch.equal(p, q) for p, q in zip(before, mlp.parameters())
        ):
            raise AssertionError(
                f"{what}: mlp_as_conv changed the MLP's "
                "parameters; copy them, leave mlp as it is"
            )
        if any(isinstance(m, nn.Linear) for m in convs.modules()):
            raise AssertionError(
                f"{what}: the answer still contains an "
                "nn.Linear; replace each by a 1x1 nn.Conv2d"
            )
        kernels = [
            m.kernel_size for m in convs.modules() if isinstance(m, nn.Conv2d)
        ]
        if len(kernels) != 2 or any(k != (1, 1) for k in kernels):
            raise AssertionError(
                f"{what}: expected two nn.Conv2d with 1x1 "
                f"kernels, one per nn.Linear, got {kernels}"
            )
        x = torch.randn(2, mlp[0].in_features, 5, 4, generator=generator)
        with torch.no_grad():
            expected = mlp(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            _compare(
                f"{what}, on a batch of shape {tuple(x.shape)}",
                convs(x),
                expected,
            )
    print(
        "Correct: your 1x1 convolutions compute the MLP at every pixel, as "
        "NiN's mlpconv layers do."
    )


def check_label_smoothing(
    fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor],
) -> None:
    """Chapter Inception v2/v3: ``fn(logits, labels, epsilon)`` must return the
    label-smoothed cross-entropy (Sec. 7).

    The target of each image is ``(1 - epsilon)`` on its label plus ``epsilon /
    K`` on every one of the K classes (the label included); the answer is the
    mean over the batch of ``-sum_k q'(k) log p(k)``, a scalar tensor. Compared
    with ``F.cross_entropy(logits, labels, label_smoothing=epsilon)``.
    """
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(2016)
    for n, classes, epsilon in (
        (8, 10, 0.1),
        (5, 3, 0.3),
        (4, 1000, 0.1),
        (6, 7, 0.0),
    ):
        logits = torch.randn(n, classes, generator=generator) * 4
        labels = torch.randint(0, classes, (n,), generator=generator)
        expected = F.cross_entropy(logits, labels, label_smoothing=epsilon)
        got = fn(logits.clone(), labels.clone(), epsilon)
        case = f"{n} images, {classes} classes, epsilon = {epsilon}"
        if (
            isinstance(got, torch.Tensor)
            and got.dim() == 1
            and got.shape[0] == n
        ):
            raise AssertionError(
                f"{case}: got one loss per image; return "
                "their mean over the batch (a scalar)"
            )
        _compare(case, got, expected)
    print(
        "Correct: your loss matches PyTorch's label_smoothing, "
        "Inception-v3's regulariser."
    )


def check_grid_sizes(fn: Callable[[int], tuple[int, int, int]]) -> None:
    """Chapter Inception-v4: ``fn(side)`` must return the sides of
    Inception-v4's three grids for a side x side image.

    The grids are the outputs of the stem (Figure 3), of Reduction-A (Fig. 7)
    and of Reduction-B (Fig. 8): (35, 17, 8) for a 299x299 image. A "V"
    (valid) k x k layer of stride s turns n into floor((n - k) / s) + 1; the
    other layers keep the size. Compared with the shapes of
    ``cnnbook.models.inception_v4`` run on the meta device.
    """
    from .models import create
    from .summary import output_shapes

    with torch.device("meta"):
        model = create("inception_v4").eval()
    for side in (299, 75, 139, 224, 300, 331, 512):
        x = torch.empty(1, 3, side, side, device="meta")
        shapes, _ = output_shapes(
            model, x, ["stem", "reduction_a", "reduction_b"]
        )
        expected = tuple(
            shapes[name][-1] for name in ("stem", "reduction_a", "reduction_b")
        )
        got = fn(side)
        if not isinstance(got, tuple) or len(got) != 3:
            raise AssertionError(
                f"grid_sizes({side}) must return a tuple of "
                f"three ints, got {got!r}"
            )
        if got != expected:
            raise AssertionError(
                f"grid_sizes({side}): expected {expected} (stem, Reduction-A, "
                f"Reduction-B), got {got}. A valid "
                "3x3 layer of stride 2 turns n into (n - 3) // 2 + 1, of "
                "stride 1 into n - 2; padded layers keep n."
            )
    print(
        "Correct: your grid sizes match the network's at every input size, "
        "(35, 17, 8) at 299x299."
    )


def check_inception_macs(
    fn: Callable[[int, tuple[int, ...], int], int],
) -> None:
    """Chapter GoogLeNet: ``fn(in_channels, widths, size)`` must return the
    multiply-adds of an Inception module.

    ``widths`` is a row of Table 1 (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5,
    pool proj); the module (with dimension reductions, as
    ``cnnbook.models.googlenet.inception`` builds it) sees ``in_channels`` maps
    on a ``size`` x ``size`` grid. One multiply-add per weight per output
    position, biases, ReLU and pooling free: ``cnnbook.summary.count_macs``'s
    rule.
    """
    from .models.googlenet import INCEPTION_MODULES, inception
    from .summary import count_macs

    cases = [
        (192, INCEPTION_MODULES["3a"], 28),
        (480, INCEPTION_MODULES["4a"], 14),
        (832, INCEPTION_MODULES["5b"], 7),
        (5, (1, 2, 3, 4, 6, 7), 3),
    ]
    for in_channels, widths, size in cases:
        ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj = widths
        expected = count_macs(
            inception(in_channels, *widths),
            (in_channels, size, size),
            device="meta",
        )
        got = fn(in_channels, tuple(widths), size)
        if got == expected:
            continue
        area = size * size
        hints = {  # what a typical mistake gives, and what it missed
            area * in_channels * (ch1x1 + 9 * ch3x3 + 25 * ch5x5): "the "
            "module "
            "without "
            "its 1x1 "
            "reductions (Figure "
            "2(a)): the 3x3 and 5x5 convolutions read the reduced maps, not "
            "the input",
            expected - area * in_channels * pool_proj: "the pool proj is "
            "missing: the 1x1 "
            "convolution after the "
            "max "
            "pooling reads all input maps",
            expected // area: "this is the cost of one position: every "
            "convolution keeps the size x size grid",
        }
        hint = hints.get(
            got,
            "count, for each of the six convolutions, (its "
            "input maps) x k x k x (its filters) "
            "x size x size",
        )
        raise AssertionError(
            f"in_channels={in_channels}, "
            f"widths={tuple(widths)}, size={size}: expected "
            f"{expected:,} multiply-adds, got {got!r}. Looks "
            f"like {hint}."
        )
    print(
        "Correct: your count matches cnnbook.summary.count_macs on every "
        "module, Table 1's rows included."
    )


def check_equal_cost_width(fn: Callable[[int, int, int], int]) -> None:
    """Chapter ResNeXt: ``fn(cardinality, channels, width)`` must return the
    bottleneck width d of Table 2.

    A block with ``channels`` channels in and out made of C = ``cardinality``
    paths (1x1 to d, 3x3 d to d, 1x1 back) has C·(2·channels·d + 9·d²) weights;
    the answer is the whole d for which this is closest to the cost of one path
    of ``width`` channels (a ResNet bottleneck), as in Table 2 of Xie et al.
    2017: d = 40, 24, 14, 4 for C = 2, 4, 8, 32 at 256 channels.
    """
    from .models.resnext import grouped_convolution
    from .summary import count_params

    def weights(c: int, d: int, channels: int) -> int:
        return c * (2 * channels * d + 9 * d * d)

    # the same count, from the block itself
    def convs(c: int, d: int, channels: int) -> int:
        transform = grouped_convolution(
            channels, c * d, channels, stride=1, cardinality=c
        )
        return sum(
            count_params(m)
            for m in transform.modules()
            if isinstance(m, torch.nn.Conv2d)
        )

    cases = (
        [(c, 256, 64) for c in (1, 2, 4, 8, 32)]
        + [(c, 128, 32) for c in (2, 4, 8, 32)]
        + [(3, 64, 16), (16, 512, 128), (64, 512, 128)]
    )
    for cardinality, channels, width in cases:
        target = weights(1, width, channels)
        expected = min(
            range(1, width + 1),
            key=lambda d: (abs(weights(cardinality, d, channels) - target), d),
        )
        assert weights(cardinality, expected, channels) == convs(
            cardinality, expected, channels
        )
        got = fn(cardinality, channels, width)
        if isinstance(got, bool) or not isinstance(got, int):
            raise AssertionError(
                f"return a whole number of channels (an int), got {got!r}"
            )
        if got == expected:
            continue
        hints = {  # what a typical mistake gives
            width // cardinality: "the width split evenly among the paths: C "
            "paths of width/C channels cost less "
            "than one path of width channels, because the 1x1 layers grow "
            "with d and only the 3x3 with d²",
            round(width / cardinality**0.5): "only the 3x3 convolution "
            "counted: the two 1x1 "
            "convolutions "
            "(channels x d each, per path) cost as much or more",
        }
        hint = hints.get(
            got,
            "the whole d whose cost C·(2·channels·d + 9·d²) "
            "is nearest to that of one path of "
            "width channels (round to the nearest, not down)",
        )
        raise AssertionError(
            f"cardinality={cardinality}, channels={channels}, width={width}: "
            f"expected d = {expected} "
            f"({weights(cardinality, expected, channels):,} weights against "
            f"{target:,}), got {got} "
            f"({weights(cardinality, got, channels):,} weights). Looks like "
            f"{hint}."
        )
    print(
        "Correct: your widths reproduce Table 2 (d = 64, 40, 24, 14, 4 for "
        "C = 1, 2, 4, 8, 32)."
    )


def check_preact_unit(fn: Callable[..., torch.Tensor]) -> None:
    """Chapter pre-activation ResNet: ``fn(x, bn1, conv1, bn2, conv2)`` must
    compute a full pre-activation unit.

    That is x + conv2(relu(bn2(conv1(relu(bn1(x)))))) (He et al. 2016b, Fig.
    4(e)), with the identity shortcut and nothing after the addition; the four
    layers are given as modules (BatchNorm in evaluation mode).
    """
    from torch.nn import functional as F

    from .models.resnet import BasicBlock

    generator = torch.Generator().manual_seed(2016)
    for channels, size in ((4, 5), (8, 6)):
        block = BasicBlock(channels, channels, unit="full_preactivation")
        # BatchNorm statistics that make every ordering give a different answer
        for m in block.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.data = torch.rand(channels, generator=generator) + 0.5
                m.bias.data = torch.randn(channels, generator=generator)
                m.running_mean = torch.randn(channels, generator=generator)
                m.running_var = torch.rand(channels, generator=generator) + 0.5
        block.eval()
        bn1, (transform, _) = block.preact[0], block.branch
        conv1, bn2, conv2 = transform.conv1, transform.bn1, transform.conv2
        x = torch.randn(3, channels, size, size, generator=generator)
        with torch.no_grad():
            expected = block(x)
            got = fn(x.clone(), bn1, conv1, bn2, conv2)
            if (
                not isinstance(got, torch.Tensor)
                or got.shape != expected.shape
            ):
                _compare("the unit's output", got, expected)
            mistakes = {  # what typical mistakes compute
                "the identity shortcut is missing: add x to the branch's "
                "output": expected - x,
                "a ReLU follows the addition (the original unit's f); in (e) "
                "nothing comes after it": F.relu(expected),
                "the layers are in the original order, conv-BN-ReLU; "
                "pre-activation puts BN-ReLU before each "
                "convolution": x + bn2(conv2(F.relu(bn1(conv1(x))))),
                "the shortcut reads the activated input relu(bn1(x)); it must "
                "carry x itself": expected - x + F.relu(bn1(x)),
            }
            if not torch.allclose(got.float(), expected, atol=1e-4, rtol=1e-4):
                for hint, wrong in mistakes.items():
                    if torch.allclose(
                        got.float(), wrong, atol=1e-4, rtol=1e-4
                    ):
                        raise AssertionError(
                            f"for {channels} channels the "
                            f"output differs: {hint}."
                        )
                _compare(
                    f"the unit's output for {channels} channels", got, expected
                )
    print(
        "Correct: your unit computes x + "
        "conv2(relu(bn2(conv1(relu(bn1(x)))))), Fig. 4(e)."
    )


def check_highway_layer(fn: Callable[..., torch.Tensor]) -> None:
    """Chapter Other networks: ``fn(x, w_h, b_h, w_t, b_t)`` must return a
    highway layer's output (Eq. 3).

    y = H(x) T(x) + x (1 - T(x)), with H(x) = ReLU(x w_h^T + b_h) and T(x) =
    sigmoid(x w_t^T + b_t); ``x`` is N x m, the weights m x m (as ``nn.Linear``
    stores them).
    """
    generator = torch.Generator().manual_seed(14)
    for n, m in ((3, 4), (5, 7)):
        x, w_h, w_t = (
            torch.randn(*shape, generator=generator)
            for shape in ((n, m), (m, m), (m, m))
        )
        b_h, b_t = (
            torch.randn(m, generator=generator),
            torch.randn(m, generator=generator) - 2.0,
        )
        h, t = torch.relu(x @ w_h.T + b_h), torch.sigmoid(x @ w_t.T + b_t)
        expected = h * t + x * (1 - t)
        got = fn(x, w_h, b_h, w_t, b_t)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            hints = {
                "the gates are swapped: H is multiplied by T, and x by "
                "the carry gate 1 - T": t * x + h * (1 - t),
                "the carry term x (1 - T) is missing": h * t,
                "T needs the sigmoid, so that it lies between 0 and 1": h
                * (x @ w_t.T + b_t)
                + x * (1 - (x @ w_t.T + b_t)),
            }
            for hint, wrong in hints.items():
                if torch.allclose(
                    got.float(), wrong, atol=1e-4
                ) and not torch.allclose(wrong, expected, atol=1e-4):
                    raise AssertionError(f"x of shape {(n, m)}: {hint}.")
        _compare(f"highway layer, x of shape {(n, m)}", got, expected)
    print("Correct: your layer computes y = H(x) T(x) + x (1 - T(x)).")


def check_linear_decay(fn: Callable[[int, float], "list[float]"]) -> None:
    """Chapter stochastic depth: ``fn(num_blocks, p_last)`` must return the
    survival probabilities p_1 ... p_L.

    The linear decay rule of Huang et al. 2016 (Eq. 4): p_l = 1 - l / L (1 -
    p_L) for blocks l = 1 ... L, from nearly 1 at the first block to ``p_last``
    at the last; compared with
    ``cnnbook.models.stochastic_depth.linear_decay``.
    """
    from .models.stochastic_depth import linear_decay

    for blocks, p_last in ((54, 0.5), (3, 0.5), (15, 0.2), (1, 0.8), (7, 1.0)):
        expected = torch.tensor(
            linear_decay(blocks, p_last), dtype=torch.float64
        )
        try:
            got = torch.as_tensor(
                [float(p) for p in fn(blocks, p_last)], dtype=torch.float64
            )
        except TypeError:
            raise AssertionError(
                f"fn({blocks}, {p_last}) must return a list of {blocks} floats"
            ) from None
        if got.shape != expected.shape:
            raise AssertionError(
                f"fn({blocks}, {p_last}) returned {len(got)} "
                f"probabilities; a network of {blocks} "
                "blocks needs one per block"
            )
        if torch.allclose(got, expected, atol=1e-6):
            continue
        steps = torch.arange(blocks, dtype=torch.float64)
        hints = {  # what a typical mistake gives, and what it missed
            "blocks counted from l = 0: the rule numbers them 1 ... L, so the "
            "first block is already below 1 "
            "and the last one is exactly p_last": 1
            - steps / blocks * (1 - p_last),
            "a line from 1 at the first block to p_last at the last: the "
            "rule's line starts at the input, "
            "p_0 = 1, one step before the first block": 1
            - steps / max(blocks - 1, 1) * (1 - p_last),
            "the probabilities rise with depth: the first blocks, which "
            "compute the low-level features every "
            "later block uses, must be the safest": expected.flip(0),
            "the uniform rule (every block p_last): the linear decay rule "
            "falls from nearly 1 to p_last": torch.full_like(expected, p_last),
        }
        hint = next(
            (
                h
                for h, wrong in hints.items()
                if torch.allclose(got, wrong, atol=1e-6)
            ),
            "p_l = 1 - l / L (1 - p_last) for l = 1 ... L",
        )
        shown = ", ".join(f"{p:.4f}" for p in got[:3].tolist())
        raise AssertionError(
            f"fn({blocks}, {p_last}): expected "
            f"{expected[0]:.4f}, {expected[1 % blocks]:.4f}, "
            "... "
            f"{expected[-1]:.4f}; got {shown}, ... "
            f"{got[-1]:.4f}. Looks like {hint}."
        )
    print(
        "Correct: your survival probabilities follow the linear decay rule; "
        "sum them for the expected depth."
    )


def check_resnet_params(fn: Callable[[int, str], int]) -> None:
    """Chapter ResNet: ``fn(n, shortcut)`` must return the parameters of the
    CIFAR ResNet with 6n+2 layers.

    The network of the paper's Section 4.2 for 10 classes: a 3x3 convolution to
    16 maps, three stages of ``n`` basic blocks with 16, 32 and 64 channels,
    global average pooling and a linear classifier; BatchNorm (a scale and a
    shift per channel) after every convolution, convolutions without biases.
    ``shortcut`` is "A" (zero padding, no parameters), "B" (1x1 convolution +
    BatchNorm where the shape changes) or "C" (in every block). Compared with
    ``cnnbook.models.resnet.cifar_resnet`` counted on the meta device.
    """
    from torch import nn

    from .models.resnet import ResidualUnit, cifar_resnet
    from .summary import count_params

    for n, shortcut in [
        (3, "A"),
        (9, "A"),
        (1, "B"),
        (5, "C"),
        (18, "B"),
        (2, "C"),
    ]:
        with torch.device("meta"):
            model = cifar_resnet(
                6 * n + 2, 10, f"resnet{6 * n + 2}", shortcut=shortcut
            )
        expected = count_params(model)
        got = fn(n, shortcut)
        if got == expected:
            continue
        norms = sum(
            p.numel()
            for m in model.modules()
            if isinstance(m, nn.BatchNorm2d)
            for p in m.parameters()
        )
        projections = [
            u.shortcut
            for u in model.modules()
            if isinstance(u, ResidualUnit) and u.project
        ]
        projection_norms = sum(
            p.numel() for s in projections for p in s[1].parameters()
        )
        hints = {  # what a typical mistake gives, and what it missed
            expected - norms: "the BatchNorm layers are missing: each has a "
            "scale and a shift per channel",
            expected - 64 * 10 - 10: "the classifier is missing: a linear "
            "layer from 64 features to 10 classes",
            expected - 10: "the classifier's 10 biases are missing",
            expected - sum(count_params(s) for s in projections): "the "
            "projection "
            "shortcuts "
            "are "
            "missing: "
            "option "
            f"{shortcut} has a 1x1 convolution (and a BatchNorm) in "
            f"{len(projections)} blocks",
            expected - projection_norms: "the BatchNorm after each projection "
            "shortcut is missing",
        }
        hint = hints.get(
            got,
            "count the stem, then each block's two 3x3 "
            "convolutions (in x 9 x out weights) "
            "with their BatchNorms, the projections of the "
            "shortcut option, and the classifier",
        )
        raise AssertionError(
            f"n={n} ({6 * n + 2} layers), "
            f"shortcut={shortcut!r}: expected {expected:,} "
            "parameters, "
            f"got {got!r}. Looks like {hint}."
        )
    print(
        "Correct: your count matches the networks of Section 4.2 for every "
        "depth and shortcut option "
        "(ResNet-20 with option A: 269,722, Table 6's 0.27M)."
    )


def check_densenet_channels(
    fn: Callable[[int, int, float, bool], "list[int]"],
) -> None:
    """Chapter DenseNet: ``fn(depth, growth_rate, compression, bottleneck)``
    must return the maps of a CIFAR DenseNet.

    The answer is a list of five ints: the maps after dense block 1, transition
    1, block 2, transition 2 and block 3 of the three-block network of the
    paper's Sec. 3 (a first conv with 16 maps, or 2k for DenseNet-BC; (depth -
    4) / 3 layers per block, / 6 with the bottleneck; a transition keeps
    floor(compression * m) of m maps). Compared with
    ``cnnbook.models.densenet.cifar_densenet``.
    """
    from .models.densenet import cifar_densenet

    cases = [
        (40, 12, 1.0, False),
        (100, 12, 0.5, True),
        (250, 24, 0.5, True),
        (190, 40, 0.5, True),
        (100, 12, 1.0, True),
        (40, 12, 0.5, False),
        (22, 6, 0.5, True),
        (52, 8, 0.7, True),
    ]
    for depth, k, theta, bottleneck in cases:
        with torch.device("meta"):
            model = cifar_densenet(depth, k, bottleneck, theta)
        features = dict(model.features.named_children())
        expected = [
            features["block1"].out_channels,
            features["transition1"].out_channels,
            features["block2"].out_channels,
            features["transition2"].out_channels,
            features["block3"].out_channels,
        ]
        call = (
            f"densenet_channels({depth}, {k}, {theta}, "
            f"bottleneck={bottleneck})"
        )
        got = fn(depth, k, theta, bottleneck)
        if not isinstance(got, (list, tuple)) or len(got) != 5:
            raise AssertionError(
                f"{call} must return a list of five ints, got {got!r}"
            )
        got = [int(c) for c in got]
        if got != expected:
            names = [
                "block 1",
                "transition 1",
                "block 2",
                "transition 2",
                "block 3",
            ]
            first = next(
                i for i, (a, b) in enumerate(zip(got, expected)) if a != b
            )
            raise AssertionError(
                f"{call}: expected {expected}, got {got}; the first "
                f"difference is after {names[first]} "
                f"({got[first]} instead of {expected[first]}). Remember the "
                "first conv's maps (16, or 2k for "
                "DenseNet-BC), k maps per layer, and floor(theta * m) maps "
                "out of each transition."
            )
    print(
        "Correct: your channel counts match the networks' for all eight "
        "configurations, "
        "e.g. [216, 108, 300, 150, 342] for DenseNet-BC (L=100, k=12)."
    )


def check_ladder_combinator(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Chapter DSN, ladder and DFN: ``fn(z_noisy, u, a)`` must be g(z~, u).

    The vanilla combinator of the ladder network, per unit,
    z^ = (z~ - mu(u)) v(u) + mu(u) with
    mu(u) = a1 sigmoid(a2 u + a3) + a4 u + a5 and
    v(u) = a6 sigmoid(a7 u + a8) + a9 u + a10.
    ``z_noisy`` and ``u`` are N x m, ``a`` is 10 x m (row i holds a_(i+1)
    for every unit). Compared with ``cnnbook.models.ladder.Combinator``.
    """
    from .models.ladder import Combinator

    generator = torch.Generator().manual_seed(2015)
    for n, m in ((4, 3), (7, 5)):
        z, u = (torch.randn(n, m, generator=generator) for _ in range(2))
        g = Combinator(m)
        with torch.no_grad():
            g.a.copy_(torch.randn(10, m, generator=generator))
            expected = g(z, u)
        a = g.a.detach().clone()
        got = fn(z.clone(), u.clone(), a.clone())
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            sig = torch.sigmoid
            mu = a[0] * sig(a[1] * u + a[2]) + a[3] * u + a[4]
            v = a[5] * sig(a[6] * u + a[7]) + a[8] * u + a[9]
            mu_lin = a[0] * sig(a[1] * u + a[2]) + a[4]
            v_lin = a[5] * sig(a[6] * u + a[7]) + a[9]
            mu_sig = a[0] * (a[1] * u + a[2]) + a[3] * u + a[4]
            v_sig = a[5] * (a[6] * u + a[7]) + a[8] * u + a[9]
            hints = {  # what a typical mistake gives, and what it missed
                "mu and v are swapped: a1 ... a5 make the mean mu(u), "
                "a6 ... a10 the scale v(u)": (z - v) * mu + v,
                "z~ is scaled without centring: subtract mu(u) before "
                "multiplying by v(u), then add it back": z * v + mu,
                "mu(u) is not added back after the scaling": (z - mu) * v,
                "the linear terms a4 u and a9 u are missing": (z - mu_lin)
                * v_lin
                + mu_lin,
                "the sigmoids are missing": (z - mu_sig) * v_sig + mu_sig,
            }
            for hint, wrong in hints.items():
                if torch.allclose(
                    got.float(), wrong, atol=1e-4
                ) and not torch.allclose(wrong, expected, atol=1e-4):
                    raise AssertionError(f"z~ of shape {(n, m)}: {hint}.")
        _compare(f"combinator, z~ of shape {(n, m)}", got, expected)
    print(
        "Correct: your combinator computes z^ = (z~ - mu(u)) v(u) + mu(u), "
        "the ladder's vanilla g."
    )


def check_pareto_front(
    fn: Callable[["list[float]", "list[float]"], "list[int]"],
) -> None:
    """Chapter side by side: ``fn(costs, scores)`` must return the indices
    of the points on the Pareto front, by increasing cost.

    A point is on the front when no other point costs no more and scores
    no less while being better in one of the two; of identical points, the
    first. Compared with ``cnnbook.costs.pareto_front``.
    """
    from .costs import pareto_front

    generator = torch.Generator().manual_seed(2012)
    cases = [
        ([1.0, 2.0, 3.0, 4.0], [0.5, 0.4, 0.7, 0.7]),  # a tie in score
        ([3.0, 1.0, 2.0], [0.9, 0.1, 0.5]),  # not sorted by cost
        ([1.0, 1.0, 2.0], [0.3, 0.6, 0.6]),  # a tie in cost
        ([1.0, 1.0], [0.5, 0.5]),  # identical points
        ([2.0], [0.4]),
    ]
    for _ in range(20):
        costs = torch.rand(8, generator=generator).tolist()
        scores = torch.rand(8, generator=generator).tolist()
        cases.append((costs, scores))
    for costs, scores in cases:
        expected = pareto_front(costs, scores)
        got = fn(list(costs), list(scores))
        if not isinstance(got, (list, tuple)) or any(
            not isinstance(i, int) for i in got
        ):
            raise AssertionError(
                f"fn must return a list of int indices, got {got!r}"
            )
        if list(got) != expected:
            call = f"costs={costs}, scores={scores}"
            if sorted(got) == sorted(expected):
                hint = "the right points, in the wrong order: sort by cost"
            elif set(got) > set(expected):
                hint = (
                    "extra points: a point is off the front when another "
                    "costs no more and scores no less (ties included)"
                )
            else:
                hint = (
                    "points missing: a point is on the front when every "
                    "cheaper point scores less"
                )
            raise AssertionError(
                f"{call}: expected {expected}, got {list(got)}; {hint}."
            )
    print(
        f"Correct: your front matches on all {len(cases)} cases, ties and "
        "unsorted costs included."
    )
