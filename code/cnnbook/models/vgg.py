"""VGG: depth from stacks of 3x3 convolutions.

Paper: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", ICLR 2015 (arXiv:1409.1556), Table 1 (the six
configurations), Table 2 (their parameters), Sec. 2 and 3.

Every configuration is five stages of convolutions, each closed by 2x2 max
pooling with stride 2 (224 -> 112 -> 56 -> 28 -> 14 -> 7), with 64, 128, 256,
512 and 512 maps, then three fully connected layers: fc6 and fc7 of 4096
units with dropout 0.5, fc8 of 1000. Convolutions are 3x3 with stride 1 and
padding 1, each followed by ReLU. :data:`CONFIGS` is Table 1, column by
column, and :func:`make_layers` turns a column into layers:

=============  ======================  =====  ===========
name           Table 1 column          depth  parameters
=============  ======================  =====  ===========
``vgg11``      A                       11     132,863,336
``vgg11_lrn``  A-LRN: A + LRN          11     132,863,336
``vgg13``      B                       13     133,047,848
``vgg16_1x1``  C: D with three 1x1     16     133,638,952
``vgg16``      D                       16     138,357,544
``vgg19``      E                       19     143,667,240
=============  ======================  =====  ===========

The paper's Table 2 rounds these to 133, 133, 133, 134, 138 and 144 million.
A-LRN adds local response normalisation (AlexNet's, k=2, n=5, alpha=1e-4,
beta=0.75) after the first convolution; it has no parameters. C is D with the
last convolution of stages 3, 4 and 5 a 1x1 convolution, "a linear
transformation of the input channels" followed by ReLU.

Dense evaluation (Sec. 3.2): at test time fc6 becomes a 7x7 convolution and
fc7, fc8 1x1 convolutions with the same weights, so the network runs on a
whole image of any size (from 224x224) and gives a map of class scores, which
the paper averages over space. :meth:`VGG.to_fully_convolutional` builds
that network.

Where this code departs from the paper:
- The ``_bn`` models (``vgg11_bn`` ... ``vgg19_bn``) are not in the paper: they
  put BatchNorm (Ioffe & Szegedy 2015) between each convolution and its ReLU,
  as torchvision's do. Their convolutions have no bias, since BatchNorm's
  shift replaces it; torchvision keeps one, so its ``_bn`` models have a bias
  per convolution channel more (2,752 for ``vgg11_bn``, 4,224 for
  ``vgg16_bn``).
- Initialisation: He et al. 2015 (normal, fan-out) for convolutions and
  N(0, 0.01^2) for the fully connected layers, biases 0, as torchvision. The
  paper (Sec. 3.1) drew A's weights from a normal distribution "with the zero
  mean and 10^-2 variance" (a standard deviation of 0.1) and started the
  deeper networks from A's layers; He et al.'s rule was made for training
  such deep ReLU networks from scratch.
- torchvision's adaptive average pooling before fc6 (which lets the fully
  connected head take any input size) is left out: the paper's head takes
  224x224 inputs; for other sizes use the fully convolutional form.

``vgg11_cifar``, ``vgg11_bn_cifar``, ``vgg16_cifar``, ``vgg16_bn_cifar``: the
same convolutional configurations on 3x32x32 CIFAR images (32 -> 16 -> 8 ->
4 -> 2 -> 1 after the five poolings) with a smaller head: fc6 and fc7 of 512
units (dropout 0.5) and fc8 of 10, instead of 4096; fc6 sees the 512 x 1 x 1
output of the last stage. Nothing else changes.

``width`` (an option of every model here, not in the paper) multiplies the
number of maps of every convolution, e.g. ``width=0.25`` for 16, 32, 64, 128
and 128 maps: the same depth and layout at a sixteenth of the convolutions'
multiply-adds, for short runs on a CPU. The fully connected layers keep
their ``hidden`` units.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn

from . import Reference, register
from .layers import conv_bn_relu, expect_input, local_response_norm

Layer = int | str | tuple[int, int]

# Table 1, column by column. An int is a 3x3 convolution with that many maps,
# (maps, 1) a 1x1 convolution, "LRN" local response normalisation and "M" 2x2
# max pooling with stride 2.
CONFIGS: dict[str, list[Layer]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M",
              512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M",
          512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M",
          512, 512, (512, 1), "M", 512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
          512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}  # fmt: skip


def conv_widths(config: list[Layer]) -> list[int]:
    """The number of maps of each convolution of a Table 1 column, in
    order."""
    return [
        entry[0] if isinstance(entry, tuple) else entry
        for entry in config
        if not isinstance(entry, str)
    ]


def scale_widths(config: list[Layer], width: float) -> list[Layer]:
    """A Table 1 column with every convolution's maps times ``width``,
    rounded, at least 1; poolings, LRN and kernel sizes unchanged.

    ``scale_widths(CONFIGS["A"], 0.25)`` starts ``[16, "M", 32, "M", ...]``;
    ``width=1`` returns the column unchanged.
    """
    if not width > 0:
        raise ValueError(
            f"width={width} must be positive: it multiplies the number of "
            "maps of every convolution (1: the paper's network)"
        )

    def scaled(maps: int) -> int:
        return max(1, round(maps * width))

    return [
        entry
        if isinstance(entry, str)
        else (scaled(entry[0]), entry[1])
        if isinstance(entry, tuple)
        else scaled(entry)
        for entry in config
    ]


def make_layers(
    config: list[Layer], batch_norm: bool = False, in_channels: int = 3
) -> nn.Sequential:
    """The convolutional part of one Table 1 column: conv(-BN)-ReLU units,
    LRN and max pooling."""
    layers: list[nn.Module] = []
    for entry in config:
        if entry == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif entry == "LRN":
            layers.append(local_response_norm())
        else:
            maps, kernel = entry if isinstance(entry, tuple) else (entry, 3)
            layers.append(
                conv_bn_relu(in_channels, maps, kernel, batch_norm=batch_norm)
            )
            in_channels = maps
    return nn.Sequential(*layers)


class FullyConvolutionalVGG(nn.Module):
    """A VGG whose fc6, fc7, fc8 are convolutions: images of any size in, a
    map of class scores out."""

    def __init__(
        self,
        features: nn.Sequential,
        head: nn.Sequential,
        in_channels: int,
        min_size: int,
        name: str,
    ) -> None:
        super().__init__()
        self.features = features
        # conv6 (7x7), conv7 (1x1), conv8 (1x1) with fc6-fc8's weights
        self.head = head
        self.in_channels = in_channels
        self.min_size = min_size
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W -> N x num_classes x (H/32 - 6) x (W/32 - 6) class
        scores (for 224-pixel VGG).

        The paper averages the map over space for one score per class:
        ``scores.mean(dim=(2, 3))``.
        """
        expect_input(x, self.name, self.in_channels, min_size=self.min_size)
        return self.head(self.features(x))


class VGG(nn.Module):
    """A VGG network of any Table 1 configuration.

    Args:
        config: a key of :data:`CONFIGS` ("A", "A-LRN", "B", "C", "D", "E")
            or a list in the same form.
        num_classes: units of fc8.
        in_channels: channels of the input images.
        batch_norm: BatchNorm between each convolution and its ReLU (not in
            the paper).
        dropout: dropout probability after fc6 and fc7 (paper: 0.5).
        input_size: side of the input images (224; 32 for the CIFAR
            models), fixed by fc6.
        hidden: units of fc6 and fc7 (paper: 4096).
        width: multiplies the number of maps of every convolution (paper:
            1; see :func:`scale_widths`).
        name: the registered name, used in error messages.
    """

    def __init__(
        self,
        config: str | list[Layer] = "D",
        num_classes: int = 1000,
        in_channels: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.5,
        input_size: int = 224,
        hidden: int = 4096,
        width: float = 1.0,
        name: str = "vgg",
    ) -> None:
        super().__init__()
        if isinstance(config, str):
            if config not in CONFIGS:
                raise ValueError(
                    f"config={config!r} is not one of {list(CONFIGS)} (the "
                    "columns of Table 1)"
                )
            config = CONFIGS[config]
        config = scale_widths(config, width)
        pools = config.count("M")
        if input_size % 2**pools:
            raise ValueError(
                f"input_size={input_size} is not divisible by 2**{pools}, "
                "one halving per max pooling"
            )
        # 224x224 input: N x 512 x 7 x 7 out
        self.features = make_layers(config, batch_norm, in_channels)
        self.map_size = input_size // 2**pools  # 7 for 224x224, 1 for 32x32
        flat = conv_widths(config)[-1] * self.map_size**2  # 25,088 at 224
        self.classifier = nn.Sequential(OrderedDict(
            fc6=nn.Linear(flat, hidden),  # 25,088 -> 4096 at 224x224
            relu6=nn.ReLU(inplace=True),
            drop6=nn.Dropout(dropout),
            fc7=nn.Linear(hidden, hidden),
            relu7=nn.ReLU(inplace=True),
            drop7=nn.Dropout(dropout),
            fc8=nn.Linear(hidden, num_classes),  # N x 1000
        ))  # fmt: skip
        self.in_channels = in_channels
        self.input_size = input_size
        self.name = name
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(
                    module.weight, mode="fan_out", nonlinearity="relu"
                )
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The five stages: N x 3 x 224 x 224 -> N x 512 x 7 x 7."""
        expect_input(x, self.name, self.in_channels, size=self.input_size)
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """fc6, fc7, fc8: the last stage's maps -> N x num_classes logits."""
        return self.classifier(torch.flatten(x, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def to_fully_convolutional(self) -> FullyConvolutionalVGG:
        """A copy of this network with fc6 as a 7x7 convolution, fc7 and fc8
        as 1x1 ones (Sec. 3.2).

        fc6 reads the last stage's maps flattened in (channel, row, column)
        order, so its weight matrix, viewed as (4096, 512, 7, 7), is the
        kernel of a 7x7 convolution that computes the same sums at every
        position. At 224x224 the score map is 1x1 and equals ``forward``'s
        output; a larger image gives one score vector per 224x224 window,
        32 pixels apart. The copy's parameters are independent of this
        model's.
        """
        fc6 = self.classifier.fc6
        fc7 = self.classifier.fc7
        fc8 = self.classifier.fc8
        channels = fc6.in_features // self.map_size**2

        def as_conv(fc: nn.Linear, in_channels: int, k: int) -> nn.Conv2d:
            weight = fc.weight
            conv = nn.Conv2d(
                in_channels,
                fc.out_features,
                k,
                device=weight.device,
                dtype=weight.dtype,
            )
            with torch.no_grad():
                conv.weight.copy_(
                    weight.view(fc.out_features, in_channels, k, k)
                )
                conv.bias.copy_(fc.bias)
            return conv

        head = nn.Sequential(OrderedDict(
            conv6=as_conv(fc6, channels, self.map_size),
            relu6=nn.ReLU(inplace=True),
            drop6=nn.Dropout(self.classifier.drop6.p),
            conv7=as_conv(fc7, fc7.in_features, 1),
            relu7=nn.ReLU(inplace=True),
            drop7=nn.Dropout(self.classifier.drop7.p),
            conv8=as_conv(fc8, fc8.in_features, 1),  # N x classes x h x w
        ))  # fmt: skip
        dense = FullyConvolutionalVGG(
            copy.deepcopy(self.features),
            head,
            self.in_channels,
            self.input_size,
            f"{self.name} (fully convolutional)",
        )
        return dense.train(self.training)


def _torchvision(
    name: str, batch_norm: bool = False, config: str = ""
) -> Reference:
    """torchvision's model counted live; its ``_bn`` convolutions keep a bias
    that ours drop."""
    if not batch_norm:
        return Reference("torchvision", builder=f"torchvision.models.{name}")
    return Reference(
        "torchvision",
        builder=f"torchvision.models.{name}",
        difference=-sum(conv_widths(CONFIGS[config])),
        why="torchvision's convolutions before BatchNorm keep a bias (one "
        "per channel); ours drop it, since BatchNorm's shift does the same "
        "job",
    )


def _vgg(
    config: str,
    batch_norm: bool,
    num_classes: int,
    name: str,
    cifar: bool = False,
    **kwargs,
) -> VGG:
    sizes = dict(input_size=32, hidden=512) if cifar else {}
    options = {**sizes, **kwargs}
    return VGG(
        config, num_classes, batch_norm=batch_norm, name=name, **options
    )


@register(reference=_torchvision("vgg11"))
def vgg11(num_classes: int = 1000, **kwargs) -> VGG:
    """Configuration A: 8 convolutions + 3 fc. Options: see :class:`VGG`."""
    return _vgg("A", False, num_classes, "vgg11", **kwargs)


@register(
    reference=Reference(
        "torchvision (vgg11: A without the LRN, which has no parameters)",
        builder="torchvision.models.vgg11",
    )
)
def vgg11_lrn(num_classes: int = 1000, **kwargs) -> VGG:
    """Configuration A-LRN: A with local response normalisation after the
    first convolution."""
    return _vgg("A-LRN", False, num_classes, "vgg11_lrn", **kwargs)


@register(reference=_torchvision("vgg13"))
def vgg13(num_classes: int = 1000, **kwargs) -> VGG:
    """Configuration B: 10 convolutions + 3 fc."""
    return _vgg("B", False, num_classes, "vgg13", **kwargs)


@register(
    reference=Reference(
        "torchvision (vgg16, configuration D)",
        builder="torchvision.models.vgg16",
        difference=-8 * (256 * 256 + 512 * 512 + 512 * 512),
        why="configuration C has a 1x1 instead of a 3x3 convolution at the "
        "end of stages 3-5: 8 weights fewer per pair of input and output "
        "maps (Table 2: 134 million against D's 138)",
    )
)
def vgg16_1x1(num_classes: int = 1000, **kwargs) -> VGG:
    """Configuration C: D with 1x1 convolutions as the last layer of stages
    3, 4 and 5."""
    return _vgg("C", False, num_classes, "vgg16_1x1", **kwargs)


@register(reference=_torchvision("vgg16"))
def vgg16(num_classes: int = 1000, **kwargs) -> VGG:
    """Configuration D: 13 convolutions + 3 fc."""
    return _vgg("D", False, num_classes, "vgg16", **kwargs)


@register(reference=_torchvision("vgg19"))
def vgg19(num_classes: int = 1000, **kwargs) -> VGG:
    """Configuration E: 16 convolutions + 3 fc."""
    return _vgg("E", False, num_classes, "vgg19", **kwargs)


@register(reference=_torchvision("vgg11_bn", True, "A"))
def vgg11_bn(num_classes: int = 1000, **kwargs) -> VGG:
    """Configuration A with BatchNorm after every convolution."""
    return _vgg("A", True, num_classes, "vgg11_bn", **kwargs)


@register(reference=_torchvision("vgg13_bn", True, "B"))
def vgg13_bn(num_classes: int = 1000, **kwargs) -> VGG:
    """Configuration B with BatchNorm after every convolution."""
    return _vgg("B", True, num_classes, "vgg13_bn", **kwargs)


@register(reference=_torchvision("vgg16_bn", True, "D"))
def vgg16_bn(num_classes: int = 1000, **kwargs) -> VGG:
    """Configuration D with BatchNorm after every convolution."""
    return _vgg("D", True, num_classes, "vgg16_bn", **kwargs)


@register(reference=_torchvision("vgg19_bn", True, "E"))
def vgg19_bn(num_classes: int = 1000, **kwargs) -> VGG:
    """Configuration E with BatchNorm after every convolution."""
    return _vgg("E", True, num_classes, "vgg19_bn", **kwargs)


@register(input_size=(3, 32, 32), num_classes=10)
def vgg11_cifar(num_classes: int = 10, **kwargs) -> VGG:
    """Configuration A on 32x32 images, with fc6/fc7 of 512 units."""
    return _vgg("A", False, num_classes, "vgg11_cifar", cifar=True, **kwargs)


@register(input_size=(3, 32, 32), num_classes=10)
def vgg11_bn_cifar(num_classes: int = 10, **kwargs) -> VGG:
    """Configuration A with BatchNorm on 32x32 images, with fc6/fc7 of 512
    units."""
    return _vgg("A", True, num_classes, "vgg11_bn_cifar", cifar=True, **kwargs)


@register(input_size=(3, 32, 32), num_classes=10)
def vgg16_cifar(num_classes: int = 10, **kwargs) -> VGG:
    """Configuration D on 32x32 images, with fc6/fc7 of 512 units."""
    return _vgg("D", False, num_classes, "vgg16_cifar", cifar=True, **kwargs)


@register(input_size=(3, 32, 32), num_classes=10)
def vgg16_bn_cifar(num_classes: int = 10, **kwargs) -> VGG:
    """Configuration D with BatchNorm on 32x32 images, with fc6/fc7 of 512
    units."""
    return _vgg("D", True, num_classes, "vgg16_bn_cifar", cifar=True, **kwargs)
