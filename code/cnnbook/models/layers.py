"""Small building blocks shared by several families of the zoo.

Only what at least two model files need lives here; a block that belongs to
one paper stays in that paper's file, where the reader looks for it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def expect_input(
    x: torch.Tensor,
    model: str,
    channels: int,
    size: int | None = None,
    min_size: int = 1,
) -> None:
    """Raise a ``ValueError`` that says how to fix it when ``x`` is not what
    ``model`` takes.

    ``size`` demands an exact square input (networks with fully connected
    layers); ``min_size`` a smallest side (fully convolutional networks).
    """
    if x.dim() != 4:
        raise ValueError(
            f"{model} expects a batch of images of shape (N, {channels}, H, "
            "W), got a tensor of shape "
            f"{tuple(x.shape)}; add a batch dimension with x.unsqueeze(0)."
        )
    n, c, h, w = x.shape
    if c != channels:
        convert = "RGB to grey" if channels == 1 else "a grey channel to RGB"
        raise ValueError(
            f"{model} expects {channels} input channel(s), got {c} (input "
            f"shape {tuple(x.shape)}); convert {convert} or build the model "
            f"with in_channels={c}."
        )
    if size is not None and (h, w) != (size, size):
        raise ValueError(
            f"{model} expects {size}x{size} images, got {h}x{w}; resize or "
            "pad the input "
            f"(torch.nn.functional.interpolate or pad) to {size}x{size}."
        )
    if min(h, w) < min_size:
        raise ValueError(
            f"{model} needs images of at least "
            f"{min_size}x{min_size}, got {h}x{w}; upsample the "
            "input."
        )


def conv_bn_relu(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    stride: int = 1,
    padding: int | tuple[int, int] | None = None,
    groups: int = 1,
    batch_norm: bool = True,
) -> nn.Sequential:
    """Conv -> BatchNorm -> ReLU, the unit most post-2015 networks are made of.

    ``padding=None`` keeps the spatial size at stride 1 ("same" padding for odd
    kernels). Without BatchNorm the convolution gets its own bias back.
    """
    if padding is None:
        padding = (
            tuple(k // 2 for k in kernel_size)
            if isinstance(kernel_size, tuple)
            else kernel_size // 2
        )
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            groups=groups,
            bias=not batch_norm,
        )
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class LocalResponseNorm(nn.LocalResponseNorm):
    """``nn.LocalResponseNorm`` (same constants, same results), 2.5-5x faster
    on a CPU.

    PyTorch sums the squares of neighbouring maps with a 3-D average pooling
    and raises to the power beta with ``pow``; both are slow on CPUs, where the
    two LRN layers took half of an AlexNet training step. Here the sum over the
    ``size`` maps around each map is one 1x1 convolution with a banded matrix
    (entry (i, j) is alpha / size when map j is in map i's window), and x^-beta
    is exp(-beta log x). `cnnbook bench lrn` times both.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        index = torch.arange(channels, device=x.device)
        offset = index[None, :] - index[:, None]  # j - i
        # Map i's window: maps i - size//2 .. i + (size-1)//2, as in
        # nn.LocalResponseNorm.
        in_window = (offset >= -(self.size // 2)) & (
            offset <= (self.size - 1) // 2
        )
        band = (in_window * (self.alpha / self.size)).to(x.dtype)[
            :, :, None, None
        ]
        denominator = F.conv2d(
            x.square(),
            band,
            bias=torch.full(
                (channels,), self.k, dtype=x.dtype, device=x.device
            ),
        )
        return x * torch.exp(-self.beta * torch.log(denominator))


def local_response_norm(
    size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0
) -> LocalResponseNorm:
    """Local response normalisation with the constants as Krizhevsky et al.
    2012 (Sec. 3.3) write them.

    b_i = a_i / (k + alpha * sum_j a_j^2)^beta, the sum over the ``size`` maps
    centred on map i. PyTorch's ``nn.LocalResponseNorm`` (like Caffe's LRN)
    divides its alpha by ``size``, so it gets ``alpha * size`` here. The
    defaults are AlexNet's (k=2, n=5, alpha=1e-4, beta=0.75), which VGG's A-LRN
    and ZFNet reuse.
    """
    return LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)


def he_init_(
    model: nn.Module, nonlinearity: str = "relu", last: nn.Module | None = None
) -> nn.Module:
    """He et al. 2015's initialisation: weights N(0, gain^2 / fan_in), biases
    zero; returns ``model``.

    ``gain`` is the non-linearity's (sqrt(2) for ReLU, 5/3 for tanh), which
    keeps the signal's size from layer to layer, where PyTorch's default
    (uniform, bound 1/sqrt(fan_in)) shrinks it in every layer. ``last``, the
    output layer, gets N(0, 0.01^2) instead, so the first logits are small and
    the first loss is about ln(classes).
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity=nonlinearity)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    if last is not None:
        nn.init.normal_(last.weight, std=0.01)
    return model


DROP_MODES = ("batch", "row")


def linear_decay(num_blocks: int, p_last: float = 0.5) -> list[float]:
    """Survival probabilities p_l = 1 - l/L (1 - p_last) of blocks l = 1..L
    (Eq. 4); the last is ``p_last``.
    """
    if not 0.0 < p_last <= 1.0:
        raise ValueError(
            f"p_last={p_last} is not a probability in (0, 1]; "
            "the paper uses 0.5, 1 turns dropping off"
        )
    return [
        1.0 - l / num_blocks * (1.0 - p_last) for l in range(1, num_blocks + 1)
    ]


class StochasticDepth(nn.Module):
    """Keeps a residual branch with probability ``survival_prob`` in training;
    scales it by it at test time.

    Called as ``drop(branch, x)`` rather than on the branch's output so that a
    dropped branch is not computed. ``mode="batch"`` (the paper) draws once per
    call for the whole mini-batch; ``mode="row"`` once per sample. With
    ``survival_prob=1`` it simply returns ``branch(x)``.
    """

    def __init__(
        self, survival_prob: float = 1.0, mode: str = "batch"
    ) -> None:
        super().__init__()
        if not 0.0 < survival_prob <= 1.0:
            raise ValueError(
                f"survival_prob={survival_prob} is not a probability in (0, 1]"
            )
        if mode not in DROP_MODES:
            raise ValueError(
                f"drop_mode={mode!r}: use 'batch' (one draw per "
                "mini-batch, the paper) "
                "or 'row' (one per sample)"
            )
        self.survival_prob, self.mode = survival_prob, mode

    def keep_branch(self) -> bool:
        """One Bernoulli(p_l) draw for the whole mini-batch (from the CPU
        generator: no wait for a GPU).
        """
        return bool(torch.rand(()) < self.survival_prob)

    def forward(self, branch: nn.Module, x: torch.Tensor) -> torch.Tensor:
        p = self.survival_prob
        if p == 1.0:
            return branch(x)
        if not self.training:
            return branch(x) * p  # Eq. 5: the branch's expected contribution
        if self.mode == "batch":
            # A dropped branch adds a zero scalar, which broadcasts to any
            # shape: the unit is its shortcut alone.
            return branch(x) if self.keep_branch() else x.new_zeros(())
        # one draw per sample
        keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < p
        return branch(x) * keep

    def extra_repr(self) -> str:
        return f"survival_prob={self.survival_prob:.4f}, mode={self.mode!r}"
