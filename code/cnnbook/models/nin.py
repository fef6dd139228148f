"""Network in Network: convolutions that are small MLPs, and no fully
connected layers.

Paper: M. Lin, Q. Chen, S. Yan, "Network In Network", ICLR 2014
(arXiv:1312.4400), Sec. 3 (mlpconv, global average pooling) and Sec. 4
(the CIFAR-10 network; Table 5 compares global average pooling with a fully
connected head). The paper describes its networks in words; the exact layer
sizes are in the authors' released model definitions: the cuda-convnet/Caffe
CIFAR-10 model and the Caffe Model Zoo ``nin_imagenet`` model.

An mlpconv layer slides a small multilayer perceptron over the image: a
k x k convolution and two 1x1 convolutions ("cccp", cascaded cross channel
parametric pooling, in the authors' code), each followed by ReLU (Eq. 2).
After the last mlpconv layer, which has one map per class, global average
pooling turns each map into that class's score (Sec. 3.2).

``nin_cifar`` (3x32x32, 10 classes), three mlpconv layers:
- 192 5x5 (padding 2), 160 1x1, 96 1x1; 3x3/2 max pooling -> 16x16;
  dropout 0.5;
- 192 5x5 (padding 2), 192 1x1, 192 1x1; 3x3/2 average pooling -> 8x8;
  dropout 0.5;
- 192 3x3 (padding 1), 192 1x1, 10 1x1; global average pooling over 8x8.
966,986 parameters (the layers' weights and biases, written out in the tests).

``nin`` (3x224x224, 1000 classes), four mlpconv layers (``nin_imagenet``):
- 96 11x11/4, 96 1x1, 96 1x1 -> 54x54; 3x3/2 max pooling -> 27x27;
- 256 5x5 (padding 2), 256 1x1, 256 1x1; 3x3/2 max pooling -> 13x13;
- 384 3x3 (padding 1), 384 1x1, 384 1x1; 3x3/2 max pooling -> 6x6; dropout 0.5;
- 1024 3x3 (padding 1), 1024 1x1, 1000 1x1; global average pooling over 6x6.
7,595,176 parameters (29 MiB of float32 weights, the size the Model Zoo gives).

As in both released models, a ReLU follows the last 1x1 convolution too,
before the average pooling, so the scores are never negative.

Where this code departs from the papers' models:
- Pooling rounds its output size up (``ceil_mode=True``), as Caffe and
  cuda-convnet do: 32 -> 16 -> 8 and 54 -> 27 -> 13 -> 6.
- Global average pooling is ``AdaptiveAvgPool2d(1)`` instead of a fixed 8x8
  (6x6) window: the same at the paper's input size, and any larger input
  works too (``nin_cifar`` from 4x4, ``nin`` from 39x39).
- Initialisation: He et al. 2015's (``init="he"``: weights N(0, 2 / fan-in),
  biases zero), where the released models use Gaussians with hand-picked
  standard deviations per layer; ``init="pytorch"`` gives PyTorch's default,
  with which the class scores start so close to zero that a short run barely
  moves.
- The CIFAR-10 input preprocessing (global contrast normalisation and ZCA
  whitening) belongs to the data pipeline, not the model.

Options for the chapter: ``width`` multiplies the number of maps of every
convolution but the class maps (``width=0.25``: a sixteenth of the
multiply-adds, for the chapter's CPU runs); ``head="fc"`` replaces global
average pooling by a fully connected layer, as in Table 5 ("mlpconv + fully
connected"): the last 1x1 convolution then keeps the width of its block (192
or 1024 maps) and a linear layer maps all of its values (192 x 8 x 8 for
CIFAR) to the classes, with dropout before it if ``fc_dropout > 0`` (Table
5's second row). With ``head="fc"`` the input size is fixed. ``mlp_layers``
(paper: 2) sets the number of 1x1 convolutions in every mlpconv layer, to
measure what they bring: 1 keeps the last one (the block's k x k
convolution, then one 1x1 convolution to the block's output maps), 0 none
(each block is its k x k convolution alone, and the last block's k x k
convolution makes the class maps).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from . import Reference, register
from .layers import expect_input, he_init_


def mlpconv(
    in_channels: int,
    channels: Sequence[int],
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
) -> nn.Sequential:
    """One mlpconv layer: a k x k convolution with ``channels[0]`` maps,
    then a 1x1 convolution for each further entry of ``channels``, each
    followed by ReLU. The paper's have two 1x1 layers: (192, 160, 96)."""
    c1, *rest = channels
    layers = [nn.Conv2d(in_channels, c1, kernel_size, stride, padding),
              nn.ReLU(inplace=True)]  # fmt: skip
    for c_in, c_out in zip(channels, rest):
        # cccp: an MLP layer applied at every pixel
        layers += [nn.Conv2d(c_in, c_out, kernel_size=1),
                   nn.ReLU(inplace=True)]  # fmt: skip
    return nn.Sequential(*layers)


class NiN(nn.Module):
    """Network in Network, for CIFAR or ImageNet.

    Args:
        num_classes: maps of the last mlpconv layer (``head="gap"``) or
            outputs of the fc layer.
        in_channels: channels of the input images.
        variant: "cifar" (three mlpconv layers, 32x32 input) or
            "imagenet" (four, 224x224).
        head: "gap" (global average pooling of one map per class; paper)
            or "fc" (a linear layer).
        dropout: dropout between mlpconv layers (paper: 0.5).
        fc_dropout: dropout before the linear layer of ``head="fc"``.
        width: multiplies the number of maps of every convolution except
            the class maps (paper: 1).
        mlp_layers: 1x1 convolutions per mlpconv layer: 2 (paper), 1, 0.
        init: "he" (He et al. 2015) or "pytorch" (PyTorch's default).
        name: the registered name, used in error messages.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        variant: str = "cifar",
        head: str = "gap",
        dropout: float = 0.5,
        fc_dropout: float = 0.0,
        width: float = 1.0,
        mlp_layers: int = 2,
        init: str = "he",
        name: str = "nin_cifar",
    ) -> None:
        super().__init__()
        for option, value, choices in (
            ("variant", variant, ("cifar", "imagenet")),
            ("head", head, ("gap", "fc")),
            ("init", init, ("he", "pytorch")),
            ("mlp_layers", mlp_layers, (0, 1, 2)),
        ):
            if value not in choices:
                raise ValueError(f"{option}={value!r} is not one of {choices}")

        def scaled(*channels: int) -> tuple[int, ...]:
            return tuple(max(1, round(c * width)) for c in channels)

        def kept(channels: tuple[int, ...]) -> tuple[int, ...]:
            """The k x k convolution's maps, then the last mlp_layers."""
            return channels[:1] + channels[3 - mlp_layers :]

        def final(channels: tuple[int, ...]) -> tuple[int, ...]:
            """The last block: its last layer makes the output maps."""
            return kept(channels) if mlp_layers else channels[-1:]

        def max_pool() -> nn.MaxPool2d:
            return nn.MaxPool2d(3, 2, ceil_mode=True)

        # Shape comments: the paper's network (mlp_layers=2, width=1).
        if variant == "cifar":
            b1, b2 = kept(scaled(192, 160, 96)), kept(scaled(192, 192, 192))
            c3 = scaled(192)[0]
            last = num_classes if head == "gap" else c3  # the last maps
            self.features = nn.Sequential(OrderedDict(
                mlpconv1=mlpconv(in_channels, b1, 5, padding=2),  # 96x32x32
                pool1=max_pool(), drop1=nn.Dropout(dropout),  # 96 x 16 x 16
                mlpconv2=mlpconv(b1[-1], b2, 5, padding=2),  # 192 x 16 x 16
                pool2=nn.AvgPool2d(3, 2, ceil_mode=True),  # 192 x 8 x 8
                drop2=nn.Dropout(dropout),
                mlpconv3=mlpconv(b2[-1], final((c3, c3, last)), 3,
                                 padding=1),  # 10 x 8 x 8
            ))  # fmt: skip
            input_size, map_size, min_size = 32, 8, 4
        else:
            c1, c2, c3, c4 = scaled(96, 256, 384, 1024)
            last = num_classes if head == "gap" else c4
            b1, b2, b3 = kept((c1,) * 3), kept((c2,) * 3), kept((c3,) * 3)
            self.features = nn.Sequential(OrderedDict(
                mlpconv1=mlpconv(in_channels, b1, 11, stride=4),  # 96x54x54
                pool1=max_pool(),  # N x 96 x 27 x 27
                mlpconv2=mlpconv(b1[-1], b2, 5, padding=2),  # 256 x 27 x 27
                pool2=max_pool(),  # N x 256 x 13 x 13
                mlpconv3=mlpconv(b2[-1], b3, 3, padding=1),  # 384 x 13 x 13
                pool3=max_pool(), drop3=nn.Dropout(dropout),  # 384 x 6 x 6
                mlpconv4=mlpconv(b3[-1], final((c4, c4, last)), 3,
                                 padding=1),  # 1000 x 6 x 6
            ))  # fmt: skip
            input_size, map_size, min_size = 224, 6, 39
        if head == "gap":
            # One map per class, averaged to one score per class: nothing
            # here to train (Sec. 3.2). N x num_classes
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        else:
            self.head = nn.Sequential(
                nn.Flatten(),
                nn.Dropout(fc_dropout),
                nn.Linear(last * map_size**2, num_classes),
            )  # N x num_classes
        self.in_channels = in_channels
        # With the fc head the input size is fixed; with GAP, min_size is
        # the smallest input whose maps stay large enough for every pooling.
        self.input_size = input_size if head == "fc" else None
        self.min_size = min_size
        self.name = name
        if init == "he":
            he_init_(self, "relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The mlpconv layers: N x 3 x 32 x 32 -> N x classes x 8 x 8."""
        expect_input(x, self.name, self.in_channels, size=self.input_size,
                     min_size=self.min_size)  # fmt: skip
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register(
    input_size=(3, 32, 32),
    num_classes=10,
    reference=Reference(
        "Lin et al. 2014, CIFAR-10 model (the authors' cuda-convnet/Caffe "
        "definition), counted layer by layer",
        params=966_986,
    ),
)
def nin_cifar(num_classes: int = 10, **kwargs) -> NiN:
    """The paper's CIFAR-10 network: three mlpconv layers and global
    average pooling. Options: see :class:`NiN`."""
    return NiN(
        num_classes, **{**dict(variant="cifar", name="nin_cifar"), **kwargs}
    )


@register(
    reference=Reference(
        "Lin et al. 2014, ImageNet model (Caffe Model Zoo nin_imagenet, "
        "'29 MB'), counted layer by layer",
        params=7_595_176,
    )
)
def nin(num_classes: int = 1000, **kwargs) -> NiN:
    """The authors' ImageNet network: four mlpconv layers and global
    average pooling. Options: see :class:`NiN`."""
    return NiN(
        num_classes, **{**dict(variant="imagenet", name="nin"), **kwargs}
    )
