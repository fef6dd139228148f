"""Small building blocks shared by several families of the zoo.

Only what at least two model files need lives here; a block that belongs to
one paper stays in that paper's file, where the reader looks for it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def expect_input(x: torch.Tensor, model: str, channels: int, size: int | None = None, min_size: int = 1) -> None:
    """Raise a ``ValueError`` that says how to fix it when ``x`` is not what ``model`` takes.

    ``size`` demands an exact square input (networks with fully connected
    layers); ``min_size`` a smallest side (fully convolutional networks).
    """
    if x.dim() != 4:
        raise ValueError(
            f"{model} expects a batch of images of shape (N, {channels}, H, W), got a tensor of shape "
            f"{tuple(x.shape)}; add a batch dimension with x.unsqueeze(0)."
        )
    n, c, h, w = x.shape
    if c != channels:
        raise ValueError(
            f"{model} expects {channels} input channel(s), got {c} (input shape {tuple(x.shape)}); "
            f"{'convert RGB to grey' if channels == 1 else 'repeat a grey channel to RGB'} or build the model "
            f"with in_channels={c}."
        )
    if size is not None and (h, w) != (size, size):
        raise ValueError(
            f"{model} expects {size}x{size} images, got {h}x{w}; resize or pad the input "
            f"(torch.nn.functional.interpolate or pad) to {size}x{size}."
        )
    if min(h, w) < min_size:
        raise ValueError(f"{model} needs images of at least {min_size}x{min_size}, got {h}x{w}; upsample the input.")


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
        padding = tuple(k // 2 for k in kernel_size) if isinstance(kernel_size, tuple) else kernel_size // 2
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=not batch_norm)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class LocalResponseNorm(nn.LocalResponseNorm):
    """``nn.LocalResponseNorm`` (same constants, same results), 2.5-5x faster on a CPU.

    PyTorch sums the squares of neighbouring maps with a 3-D average pooling
    and raises to the power beta with ``pow``; both are slow on CPUs, where
    the two LRN layers took half of an AlexNet training step. Here the sum
    over the ``size`` maps around each map is one 1x1 convolution with a
    banded matrix (entry (i, j) is alpha / size when map j is in map i's
    window), and x^-beta is exp(-beta log x). `cnnbook bench lrn` times both.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        index = torch.arange(channels, device=x.device)
        offset = index[None, :] - index[:, None]  # j - i
        # Map i's window: maps i - size//2 .. i + (size-1)//2, as in nn.LocalResponseNorm.
        in_window = (offset >= -(self.size // 2)) & (offset <= (self.size - 1) // 2)
        band = (in_window * (self.alpha / self.size)).to(x.dtype)[:, :, None, None]
        denominator = F.conv2d(x.square(), band, bias=torch.full((channels,), self.k, dtype=x.dtype, device=x.device))
        return x * torch.exp(-self.beta * torch.log(denominator))


def local_response_norm(size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> LocalResponseNorm:
    """Local response normalisation with the constants as Krizhevsky et al. 2012 (Sec. 3.3) write them.

    b_i = a_i / (k + alpha * sum_j a_j^2)^beta, the sum over the ``size`` maps
    centred on map i. PyTorch's ``nn.LocalResponseNorm`` (like Caffe's LRN)
    divides its alpha by ``size``, so it gets ``alpha * size`` here. The
    defaults are AlexNet's (k=2, n=5, alpha=1e-4, beta=0.75), which VGG's
    A-LRN and ZFNet reuse.
    """
    return LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)


def he_init_(model: nn.Module, nonlinearity: str = "relu", last: nn.Module | None = None) -> nn.Module:
    """He et al. 2015's initialisation: weights N(0, gain^2 / fan_in), biases zero; returns ``model``.

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
