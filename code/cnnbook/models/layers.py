"""Small building blocks shared by several families of the zoo.

Only what at least two model files need lives here; a block that belongs to
one paper stays in that paper's file, where the reader looks for it.
"""

from __future__ import annotations

import torch
from torch import nn


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


def local_response_norm(size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> nn.LocalResponseNorm:
    """Local response normalisation with the constants as Krizhevsky et al. 2012 (Sec. 3.3) write them.

    b_i = a_i / (k + alpha * sum_j a_j^2)^beta, the sum over the ``size`` maps
    centred on map i. PyTorch's ``nn.LocalResponseNorm`` (like Caffe's LRN)
    divides its alpha by ``size``, so it gets ``alpha * size`` here. The
    defaults are AlexNet's (k=2, n=5, alpha=1e-4, beta=0.75), which VGG's
    A-LRN and ZFNet reuse.
    """
    return nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)
