"""ZFNet: AlexNet with a smaller first layer, found by looking at what the
layers learn.

Paper: M. D. Zeiler, R. Fergus, "Visualizing and Understanding Convolutional
Networks", ECCV 2014, Sec. 3 and Fig. 3 (the architecture), Sec. 4.1 (why
layer 1 changed), Sec. 2.1 (the deconvnet and its "switches").

The network (``zfnet``), as Fig. 3 draws it, on 224x224 crops:

- layer 1: 96 filters 7x7, stride 2 (AlexNet: 11x11, stride 4) -> 110x110;
  ReLU; 3x3 max pooling, stride 2 -> 55x55; contrast normalisation across
  feature maps.
- layer 2: 256 filters 5x5, stride 2 -> 26x26; ReLU; 3x3/2 max pooling ->
  13x13; normalisation.
- layers 3, 4, 5: 384, 384, 256 filters 3x3, stride 1, padding 1 -> 13x13;
  ReLU; after layer 5, 3x3/2 max pooling -> 6x6.
- layers 6, 7: 4096 units each, ReLU, dropout 0.5; output: 1000 classes.
- Every connection is dense: the network ran on one GPU, so layers 2, 4 and
  5 see all maps of the layer below (AlexNet's "sparse" two-GPU connections
  are gone, which is also where its extra parameters come from).
- Initialisation: weights 10^-2 (read as N(0, 0.01^2)), biases 0. During
  training, every convolutional filter whose RMS exceeds 0.1 is scaled back
  to RMS 0.1 (:meth:`ZFNet.clip_filter_rms_`, to call after each step).

Parameters: the paper gives no count; from Fig. 3's sizes it is 62,357,608
(layer 1 14,208; 2 614,656; 3 885,120; 4 1,327,488; 5 884,992; 6 37,752,832;
7 16,781,312; output 4,097,000), written out again in the tests.

The switches: each max-pooling layer can report where each maximum came from
(``return_indices``), which the deconvnet needs to undo the pooling.
:meth:`ZFNet.forward_with_switches` returns the five layers' outputs and the
switches of layers 1, 2 and 5; ``torch.nn.functional.max_unpool2d(y,
s.indices, 3, 2, output_size=s.input_size)`` puts a map back where it came
from.

Where this code departs from the paper:
- Padding, chosen so that the maps have Fig. 3's sizes: layer 1 pads by 1
  ((224 + 2 - 7) // 2 + 1 = 110; without padding 109), layers 3-5 by 1;
  layer 2 has none ((55 - 5) // 2 + 1 = 26). The max pooling rounds up
  (``ceil_mode=True``, as Caffe does): 110 -> 55 and 26 -> 13, where rounding
  down would give 54 and 12; 13 -> 6 either way.
- The paper does not give the constants of its contrast normalisation; we use
  AlexNet's local response normalisation (k=2, n=5, alpha=1e-4, beta=0.75).
- Returns logits: the softmax is in the loss.

Options for the chapter's first-layer experiment (Sec. 4.1, Fig. 6):
- ``stem="alexnet"`` gives AlexNet's first two layers instead: layer 1
  11x11, stride 4 (padding 2: 224 -> 55 -> 27 after pooling), layer 2 5x5,
  stride 1 (padding 2: 27 -> 13 after pooling); the rest is ZFNet's, dense.
  It is the network the paper started from, minus AlexNet's two-GPU groups.
- ``input_size`` sets the side of the square input (default 224, CIFAR
  32); layer 5's pooled maps, and so the size of fc6, follow from it
  (64 -> 1x1, 96 -> 2x2, 128 -> 3x3 for both first layers).
- ``clip_rms`` (the paper: 0.1) renormalises the filters with
  :meth:`ZFNet.clip_filter_rms_` at the start of every forward pass, so the
  weights the network uses are always renormalised: each update is followed
  by the renormalisation before the weights are used again, the paper's
  "after each update". None (the default) leaves the filters alone.

``zfnet_cifar`` is ZFNet for 3x32x32 CIFAR images; what changed:
- layer 1 is 3x3 with stride 1 (ZFNet's move from AlexNet, a smaller first
  filter, taken one step further for 32x32 images) and layer 2 has stride 1
  and padding 2, so the maps are 32 -> 16 -> 8 -> 4; layers 3-5, the
  normalisations, the pooling and the switches are ZFNet's.
- Half the filters (``width=0.5``: 48, 128, 192, 192, 128) and layers 6 and
  7 of 512 units, so that runs take minutes on a GPU (the chapter halves the
  filters again on a CPU).
- He et al.'s initialisation (``init="he"``: weights N(0, 2 / fan-in),
  biases zero, the output layer N(0, 0.01^2)), as for ``alexnet_cifar``:
  with the paper's N(0, 0.01^2) (70 epochs on ImageNet) or PyTorch's default
  so little of the signal reaches the output through eight layers and two
  normalisations that a short run sits at chance for its first epochs.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import Reference, register
from .layers import expect_input, he_init_, local_response_norm

# Filters of layers 1..5.
CHANNELS: tuple[int, ...] = (96, 256, 384, 384, 256)
# The first two layers: ZFNet's, AlexNet's, or the CIFAR adaptation's.
STEMS: tuple[str, ...] = ("imagenet", "alexnet", "cifar")


class Switches(NamedTuple):
    """Where each maximum of a max-pooling layer came from, and the size of
    the map it pooled."""

    # flat positions in the input map, as max_pool2d(return_indices=True)
    # gives them
    indices: torch.Tensor
    input_size: torch.Size  # (H, W) before pooling: max_unpool2d's output_size


class ZFNet(nn.Module):
    """ZFNet; the defaults are the paper's (``stem="imagenet"``, 224x224).

    Args:
        num_classes: units of the output layer.
        in_channels: channels of the input images.
        stem: "imagenet" (layer 1 7x7/2, layer 2 5x5/2), "alexnet"
            (AlexNet's 11x11/4 and 5x5/1) or "cifar" (3x3/1 and 5x5/1).
        dropout: dropout on the outputs of layers 6 and 7 (paper: 0.5).
        width: multiplies the number of filters of every convolution.
        hidden: units of layers 6 and 7 (paper: 4096).
        init: "paper" (N(0, 0.01^2) weights, zero biases), "he" (He et
            al. 2015) or "pytorch" (its default).
        input_size: side of the square input (default: 224, CIFAR 32).
        clip_rms: renormalise every filter to at most this RMS before each
            forward pass (paper: 0.1); None: never.
        name: the registered name, used in error messages.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        stem: str = "imagenet",
        dropout: float = 0.5,
        width: float = 1.0,
        hidden: int = 4096,
        init: str = "paper",
        input_size: int | None = None,
        clip_rms: float | None = None,
        name: str = "zfnet",
    ) -> None:
        super().__init__()
        for option, value, choices in (
            ("stem", stem, STEMS),
            ("init", init, ("paper", "he", "pytorch")),
        ):
            if value not in choices:
                raise ValueError(f"{option}={value!r} is not one of {choices}")
        if clip_rms is not None and not clip_rms > 0:
            raise ValueError(
                f"clip_rms={clip_rms!r} must be positive, or None for no "
                "renormalisation (the paper: 0.1)"
            )
        c1, c2, c3, c4, c5 = (round(c * width) for c in CHANNELS)
        if stem == "imagenet":
            conv1 = nn.Conv2d(in_channels, c1, 7, stride=2, padding=1)
            conv2 = nn.Conv2d(c1, c2, 5, stride=2)
        elif stem == "alexnet":  # AlexNet's conv1 and conv2, dense
            conv1 = nn.Conv2d(in_channels, c1, 11, stride=4, padding=2)
            conv2 = nn.Conv2d(c1, c2, 5, stride=1, padding=2)
        else:
            conv1 = nn.Conv2d(in_channels, c1, 3, stride=1, padding=1)
            conv2 = nn.Conv2d(c1, c2, 5, stride=1, padding=2)

        def pool() -> nn.MaxPool2d:
            return nn.MaxPool2d(3, 2, ceil_mode=True)

        def conv3x3(cin: int, cout: int) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, kernel_size=3, padding=1)

        relu = partial(nn.ReLU, inplace=True)
        norm = local_response_norm
        # Map sizes for 224x224 (alexnet: 55, 27; cifar: 32 -> 16 -> 8 -> 4).
        self.features = nn.Sequential(OrderedDict(
            # conv 110x110 -> pool 55x55
            layer1=nn.Sequential(conv1, relu(), pool(), norm()),
            # conv 26x26 -> pool 13x13 (alexnet: 27 -> 13)
            layer2=nn.Sequential(conv2, relu(), pool(), norm()),
            layer3=nn.Sequential(conv3x3(c2, c3), relu()),  # 384 x 13 x 13
            layer4=nn.Sequential(conv3x3(c3, c4), relu()),  # 384 x 13 x 13
            layer5=nn.Sequential(conv3x3(c4, c5), relu(), pool()),  # 256x6x6
        ))  # fmt: skip
        if input_size is None:
            input_size = 32 if stem == "cifar" else 224
        self.map_size = _map_size(self.features, input_size, name)
        self.classifier = nn.Sequential(OrderedDict(
            fc6=nn.Linear(c5 * self.map_size**2, hidden),
            relu6=relu(), drop6=nn.Dropout(dropout),
            fc7=nn.Linear(hidden, hidden),
            relu7=relu(), drop7=nn.Dropout(dropout),
            fc8=nn.Linear(hidden, num_classes),  # N x 1000
        ))  # fmt: skip
        self.in_channels = in_channels
        self.input_size = input_size
        self.clip_rms = clip_rms
        self.name = name
        if init == "paper":
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.init.normal_(module.weight, mean=0.0, std=0.01)
                    nn.init.zeros_(module.bias)
        elif init == "he":
            he_init_(self, "relu", last=self.classifier.fc8)

    def convs(self) -> list[nn.Conv2d]:
        """The five convolutions, layer 1 first."""
        return [m for m in self.features.modules()
                if isinstance(m, nn.Conv2d)]  # fmt: skip

    @torch.no_grad()
    def clip_filter_rms_(self, radius: float = 0.1) -> None:
        """Scale every filter whose RMS exceeds ``radius`` back to it (Sec. 3).

        The paper does this after each update, to keep layer 1's filters
        from being dominated by a few large ones.
        """
        for conv in self.convs():
            # one RMS per filter
            rms = conv.weight.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
            conv.weight.mul_((radius / rms).clamp(max=1.0))

    def _start(self, x: torch.Tensor) -> None:
        expect_input(x, self.name, self.in_channels, size=self.input_size)
        if self.clip_rms is not None:
            self.clip_filter_rms_(self.clip_rms)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Layers 1-5: N x 3 x 224 x 224 -> N x 256 x 6 x 6."""
        self._start(x)
        return self.features(x)

    def forward_with_switches(
        self, x: torch.Tensor
    ) -> tuple[list[torch.Tensor], dict[str, Switches]]:
        """Layers 1-5, keeping what the deconvnet needs.

        Returns the output of each of the five layers (after its pooling and
        normalisation, if any; the last one equals :meth:`forward_features`)
        and the switches of the pooling layers, keyed by layer name
        ("layer1", "layer2", "layer5"). The same modules run as in
        ``forward``: only the pooling is called with ``return_indices=True``.
        """
        self._start(x)
        outputs: list[torch.Tensor] = []
        switches: dict[str, Switches] = {}
        for name, layer in self.features.named_children():
            for module in layer:
                if isinstance(module, nn.MaxPool2d):
                    size = x.shape[-2:]
                    x, indices = F.max_pool2d(
                        x, module.kernel_size, module.stride, module.padding,
                        ceil_mode=module.ceil_mode, return_indices=True,
                    )  # fmt: skip
                    switches[name] = Switches(indices, size)
                else:
                    x = module(x)
            outputs.append(x)
        return outputs, switches

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Layers 6, 7 and the output: layer 5's maps -> N x classes."""
        return self.classifier(torch.flatten(x, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _map_size(features: nn.Sequential, input_size: int, name: str) -> int:
    """The side of layer 5's pooled maps for a square input of this side."""
    side = _last_side(features, input_size)
    if side < 1:
        smallest = next(n for n in range(input_size, 100 * input_size)
                        if _last_side(features, n) >= 1)  # fmt: skip
        raise ValueError(
            f"{name}: a {input_size}x{input_size} input leaves no pixel "
            f"for layer 5; this stem needs input_size of at least {smallest}"
        )
    return side


def _last_side(features: nn.Sequential, side: int) -> int:
    """Follow a square map's side through the convolutions and poolings."""
    for module in features.modules():
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
            k, s, p = (
                v[0] if isinstance(v, tuple) else v
                for v in (module.kernel_size, module.stride, module.padding)
            )
            ceil = getattr(module, "ceil_mode", False)
            side = (math.ceil if ceil else math.floor)((side + 2 * p - k) / s)
            side += 1
            if side < 1:
                return 0
    return side


@register(
    reference=Reference(
        "Zeiler & Fergus 2014, Fig. 3, counted layer by layer "
        "(the paper gives no count)",
        params=62_357_608,
    )
)
def zfnet(num_classes: int = 1000, **kwargs) -> ZFNet:
    """ZFNet as in Zeiler & Fergus 2014, Fig. 3: 62,357,608 parameters.

    Options: see :class:`ZFNet`.
    """
    return ZFNet(num_classes, **kwargs)


@register(input_size=(3, 32, 32), num_classes=10)
def zfnet_cifar(num_classes: int = 10, **kwargs) -> ZFNet:
    """ZFNet on 32x32 images: a 3x3/1 layer 1, stride 1 in layer 2, half
    the filters, layers 6-7 of 512, He init."""
    options = dict(
        stem="cifar", width=0.5, hidden=512, init="he", name="zfnet_cifar"
    )
    return ZFNet(num_classes, **{**options, **kwargs})
