"""Check functions for the chapters' coding exercises.

Each ``check_*`` function runs a student's function on inputs the student has
not seen and compares it with the course's own implementation. It prints a
short "Correct" line, or raises an ``AssertionError`` that says what differs,
so an instructor can grade a notebook by running it.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["check_rbf_logits", "check_partial_conv_params", "check_lrn", "check_unpool", "check_linear_to_conv",
           "check_mlp_as_conv", "check_label_smoothing", "check_grid_sizes",
           "check_inception_macs"]


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


def check_lrn(fn: Callable[..., torch.Tensor]) -> None:
    """Chapter AlexNet: ``fn(a, size, alpha, beta, k)`` must apply local response normalisation (Sec. 3.3).

    ``b_i = a_i / (k + alpha * sum_j a_j^2)^beta``, the sum over the ``size``
    maps centred on map i (cut off at the first and last map); ``a`` is
    N x C x H x W. Compared with ``cnnbook.models.layers.local_response_norm``.
    """
    from .models.layers import local_response_norm

    generator = torch.Generator().manual_seed(2012)
    cases = [  # AlexNet's constants, then others, so that no constant can be hard-wired
        ((2, 7, 4, 4), dict(size=5, alpha=1e-4, beta=0.75, k=2.0)),
        ((1, 3, 2, 5), dict(size=3, alpha=0.05, beta=0.5, k=1.0)),
        ((3, 10, 3, 3), dict(size=7, alpha=0.01, beta=1.0, k=0.5)),  # a window wider than half the maps
    ]
    for shape, constants in cases:
        a = torch.randn(shape, generator=generator) * 30  # large activities, so the sum matters
        expected = local_response_norm(**constants)(a)
        _compare(f"lrn on a batch of shape {shape} with {constants}", fn(a.clone(), **constants), expected)
    print("Correct: your normalisation matches AlexNet's LRN.")


def check_unpool(fn: Callable[[torch.Tensor, torch.Tensor, tuple[int, int]], torch.Tensor]) -> None:
    """Chapter ZFNet: ``fn(signal, switches, size)`` must undo max pooling as the deconvnet does (Sec. 2.1).

    ``signal`` is N x C x h x w, ``switches`` the N x C x h x w flat indices
    that ``F.max_pool2d(..., return_indices=True)`` returned, ``size`` the
    (H, W) of the map before pooling. The answer is N x C x H x W: zero
    everywhere except at the switches, where the signal goes back; where
    overlapping windows picked the same pixel, their signals add up.
    Compared with ``cnnbook.visualize``'s unpooling.
    """
    import torch.nn.functional as F

    from .visualize import _unpool

    generator = torch.Generator().manual_seed(2014)
    shared = torch.zeros(1, 1, 5, 5)
    shared[0, 0, 2, 2] = 1.0  # the maximum of all four overlapping 3x3/2 windows
    cases = [  # (what, the pooled input, kernel, stride)
        ("non-overlapping 2x2/2 pooling", torch.randn(2, 3, 6, 6, generator=generator), 2, 2),
        ("overlapping 3x3/2 pooling (ZFNet's)", torch.randn(2, 4, 9, 9, generator=generator), 3, 2),
        ("four 3x3/2 windows sharing one maximum", shared, 3, 2),
    ]
    for what, x, kernel, stride in cases:
        pooled, switches = F.max_pool2d(x, kernel, stride, ceil_mode=True, return_indices=True)
        signal = torch.rand(pooled.shape, generator=generator) + 0.5
        expected = _unpool(signal, switches, x.shape[-2:])
        got = fn(signal.clone(), switches.clone(), tuple(x.shape[-2:]))
        try:
            _compare(f"unpool after {what}", got, expected)
        except AssertionError as error:
            ordered = switches.flatten(2).sort(dim=2).values
            if (ordered[..., 1:] == ordered[..., :-1]).any():  # some windows share a switch
                raise AssertionError(f"{error}. Here several windows picked the same pixel: their signals must add "
                                     "up (as the gradient of max pooling does); F.max_unpool2d keeps only one "
                                     "of them, and so does an assignment with index_put or scatter_.") from None
            raise
    print("Correct: your unpooling puts every value back at its switch, and adds values that share one.")


def check_linear_to_conv(fn: Callable[..., torch.nn.Conv2d]) -> None:
    """Chapter VGG: ``fn(fc, in_channels, kernel_size)`` must return an ``nn.Conv2d`` that computes ``fc``.

    ``fc`` is an ``nn.Linear`` whose input is an ``in_channels x kernel_size x
    kernel_size`` map flattened in (channel, row, column) order, as VGG's fc6
    reads the last stage (Sec. 3.2, dense evaluation). On a map of exactly
    that size the convolution's 1x1 output must equal ``fc``'s; on a larger map
    every output position must be ``fc`` applied to the window there.
    """
    from torch import nn

    generator = torch.Generator().manual_seed(2015)
    for in_channels, kernel_size, out_features in ((3, 2, 5), (4, 3, 7), (6, 1, 2)):
        fc = nn.Linear(in_channels * kernel_size**2, out_features)
        with torch.no_grad():  # weights and biases not symmetric in any way
            fc.weight.copy_(torch.randn(fc.weight.shape, generator=generator))
            fc.bias.copy_(torch.randn(fc.bias.shape, generator=generator))
        before = [p.detach().clone() for p in fc.parameters()]
        conv = fn(fc, in_channels, kernel_size)
        if not isinstance(conv, nn.Conv2d):
            raise AssertionError(f"expected an nn.Conv2d, got {type(conv).__name__}")
        if any(not torch.equal(p, q) for p, q in zip(before, fc.parameters())):
            raise AssertionError("linear_to_conv changed the Linear layer's parameters; copy them, leave fc as it is")
        case = f"a Linear of {in_channels}x{kernel_size}x{kernel_size} -> {out_features}"
        x = torch.randn(2, in_channels, kernel_size, kernel_size, generator=generator)
        with torch.no_grad():
            got, expected = conv(x), fc(x.flatten(1)).view(2, out_features, 1, 1)
        _compare(f"{case}, on a map of exactly {kernel_size}x{kernel_size}", got, expected)
        big = torch.randn(1, in_channels, kernel_size + 2, kernel_size + 2, generator=generator)
        windows = big.unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)  # 1 x C x 3 x 3 x k x k
        flat = windows.permute(0, 2, 3, 1, 4, 5).reshape(9, -1)  # each window in (channel, row, column) order
        with torch.no_grad():
            got, expected = conv(big), fc(flat).T.reshape(1, out_features, 3, 3)
        _compare(f"{case}, sliding over a {kernel_size + 2}x{kernel_size + 2} map (stride 1, no padding)",
                 got, expected)
    print("Correct: your convolution computes the Linear layer at every position, as VGG's dense evaluation does.")


def check_mlp_as_conv(fn: Callable[[torch.nn.Sequential], torch.nn.Module]) -> None:
    """Chapter Network in Network: ``fn(mlp)`` must return the per-pixel MLP ``mlp`` as a stack of 1x1 convolutions.

    ``mlp`` is an ``nn.Sequential`` of ``nn.Linear`` layers and activations,
    applied to each pixel's channel vector:
    ``mlp(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)`` for ``x`` of shape
    N x C x H x W. The answer must compute the same on ``x`` directly, with
    every ``nn.Linear`` replaced by an ``nn.Conv2d`` with a 1x1 kernel and the
    other layers kept; ``mlp`` itself must stay unchanged.
    """
    from torch import nn

    generator = torch.Generator().manual_seed(2013)
    cases = [  # square layers too, so that a transposed weight matrix is caught by the values, not by a shape error
        ("two layers, 6 -> 5 -> 3", nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3), nn.ReLU())),
        ("square layers, 4 -> 4 -> 4", nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))),
        ("no biases, 3 -> 7 -> 2", nn.Sequential(nn.Linear(3, 7, bias=False), nn.Tanh(), nn.Linear(7, 2, bias=False))),
    ]
    for what, mlp in cases:
        with torch.no_grad():  # weights and biases not symmetric in any way
            for p in mlp.parameters():
                p.copy_(torch.randn(p.shape, generator=generator))
        before = [p.detach().clone() for p in mlp.parameters()]
        convs = fn(mlp)
        if any(not torch.equal(p, q) for p, q in zip(before, mlp.parameters())):
            raise AssertionError(f"{what}: mlp_as_conv changed the MLP's parameters; copy them, leave mlp as it is")
        if any(isinstance(m, nn.Linear) for m in convs.modules()):
            raise AssertionError(f"{what}: the answer still contains an nn.Linear; replace each by a 1x1 nn.Conv2d")
        kernels = [m.kernel_size for m in convs.modules() if isinstance(m, nn.Conv2d)]
        if len(kernels) != 2 or any(k != (1, 1) for k in kernels):
            raise AssertionError(f"{what}: expected two nn.Conv2d with 1x1 kernels, one per nn.Linear, got {kernels}")
        x = torch.randn(2, mlp[0].in_features, 5, 4, generator=generator)
        with torch.no_grad():
            expected = mlp(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            _compare(f"{what}, on a batch of shape {tuple(x.shape)}", convs(x), expected)
    print("Correct: your 1x1 convolutions compute the MLP at every pixel, as NiN's mlpconv layers do.")


def check_label_smoothing(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> None:
    """Chapter Inception v2/v3: ``fn(logits, labels, epsilon)`` must return the label-smoothed cross-entropy (Sec. 7).

    The target of each image is ``(1 - epsilon)`` on its label plus ``epsilon / K``
    on every one of the K classes (the label included); the answer is the mean
    over the batch of ``-sum_k q'(k) log p(k)``, a scalar tensor. Compared with
    ``F.cross_entropy(logits, labels, label_smoothing=epsilon)``.
    """
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(2016)
    for n, classes, epsilon in ((8, 10, 0.1), (5, 3, 0.3), (4, 1000, 0.1), (6, 7, 0.0)):
        logits = torch.randn(n, classes, generator=generator) * 4
        labels = torch.randint(0, classes, (n,), generator=generator)
        expected = F.cross_entropy(logits, labels, label_smoothing=epsilon)
        got = fn(logits.clone(), labels.clone(), epsilon)
        case = f"{n} images, {classes} classes, epsilon = {epsilon}"
        if isinstance(got, torch.Tensor) and got.dim() == 1 and got.shape[0] == n:
            raise AssertionError(f"{case}: got one loss per image; return their mean over the batch (a scalar)")
        _compare(case, got, expected)
    print("Correct: your loss matches PyTorch's label_smoothing, Inception-v3's regulariser.")


def check_grid_sizes(fn: Callable[[int], tuple[int, int, int]]) -> None:
    """Chapter Inception-v4: ``fn(side)`` must return the sides of Inception-v4's three grids for a side x side image.

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
        shapes, _ = output_shapes(model, x, ["stem", "reduction_a", "reduction_b"])
        expected = tuple(shapes[name][-1] for name in ("stem", "reduction_a", "reduction_b"))
        got = fn(side)
        if not isinstance(got, tuple) or len(got) != 3:
            raise AssertionError(f"grid_sizes({side}) must return a tuple of three ints, got {got!r}")
        if got != expected:
            raise AssertionError(
                f"grid_sizes({side}): expected {expected} (stem, Reduction-A, Reduction-B), got {got}. A valid "
                "3x3 layer of stride 2 turns n into (n - 3) // 2 + 1, of stride 1 into n - 2; padded layers keep n."
            )
    print("Correct: your grid sizes match the network's at every input size, (35, 17, 8) at 299x299.")


def check_inception_macs(fn: Callable[[int, tuple[int, ...], int], int]) -> None:
    """Chapter GoogLeNet: ``fn(in_channels, widths, size)`` must return the multiply-adds of an Inception module.

    ``widths`` is a row of Table 1 (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5,
    pool proj); the module (with dimension reductions, as
    ``cnnbook.models.googlenet.inception`` builds it) sees ``in_channels`` maps
    on a ``size`` x ``size`` grid. One multiply-add per weight per output
    position, biases, ReLU and pooling free: ``cnnbook.summary.count_macs``'s rule.
    """
    from .models.googlenet import INCEPTION_MODULES, inception
    from .summary import count_macs

    cases = [(192, INCEPTION_MODULES["3a"], 28), (480, INCEPTION_MODULES["4a"], 14),
             (832, INCEPTION_MODULES["5b"], 7), (5, (1, 2, 3, 4, 6, 7), 3)]  # fmt: skip
    for in_channels, widths, size in cases:
        ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj = widths
        expected = count_macs(inception(in_channels, *widths), (in_channels, size, size), device="meta")
        got = fn(in_channels, tuple(widths), size)
        if got == expected:
            continue
        area = size * size
        hints = {  # what a typical mistake gives, and what it missed
            area * in_channels * (ch1x1 + 9 * ch3x3 + 25 * ch5x5): "the module without its 1x1 reductions (Figure "
            "2(a)): the 3x3 and 5x5 convolutions read the reduced maps, not the input",
            expected - area * in_channels * pool_proj: "the pool proj is missing: the 1x1 convolution after the max "
            "pooling reads all input maps",
            expected // area: "this is the cost of one position: every convolution keeps the size x size grid",
        }  # fmt: skip
        hint = hints.get(got, "count, for each of the six convolutions, (its input maps) x k x k x (its filters) "
                              "x size x size")
        raise AssertionError(f"in_channels={in_channels}, widths={tuple(widths)}, size={size}: expected "
                             f"{expected:,} multiply-adds, got {got!r}. Looks like {hint}.")
    print("Correct: your count matches cnnbook.summary.count_macs on every module, Table 1's rows included.")
