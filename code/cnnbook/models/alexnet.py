"""AlexNet: the network that won ILSVRC 2012, as it was trained on two GPUs.

Paper: A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet Classification
with Deep Convolutional Neural Networks", NeurIPS 2012, Sections 3-5 and
Fig. 2.

The network (``alexnet``), layer by layer:

- conv1: 96 kernels 11x11, stride 4, on the 3-channel image -> 55x55 maps.
- conv2: 256 kernels 5x5 (padding 2); conv3: 384, conv4: 384, conv5: 256
  kernels 3x3 (padding 1).
- The two GPUs: each held half of every layer's kernels, and the kernels of
  conv2, conv4 and conv5 saw only the maps on their own GPU; conv3 and the
  fully connected layers saw both halves. Here that connectivity is a grouped
  convolution (``groups=2``) on one device: the same function and the same
  parameters. (conv1 is split too, but each half sees all three input
  channels, so it is an ordinary convolution.)
- ReLU after every convolution and every hidden fully connected layer.
- Local response normalisation (Sec. 3.3; k=2, n=5, alpha=1e-4, beta=0.75)
  after the ReLU of conv1 and conv2.
- Overlapping max pooling, 3x3 windows with stride 2 (Sec. 3.4), after both
  normalisations and after conv5: 55 -> 27, 27 -> 13, 13 -> 6.
- fc6 and fc7: 4096 units each, with dropout 0.5 on their outputs (Sec. 4.2);
  fc8: 1000 units (the softmax is in the loss).
- Initialisation (Sec. 5): weights from N(0, 0.01^2); biases 1 in conv2,
  conv4, conv5, fc6 and fc7 ("to give the ReLUs positive inputs"), 0 elsewhere.

Parameters: the paper says "60 million"; counted layer by layer the two-GPU
network has 60,965,224 (conv1 34,944; conv2 307,456; conv3 885,120; conv4
663,936; conv5 442,624; fc6 37,752,832; fc7 16,781,312; fc8 4,097,000), the
same as Caffe's ``bvlc_alexnet``. torchvision's ``alexnet`` (61,100,840) is a
different network: the one-GPU variant of Krizhevsky's 2014 "One weird trick"
paper, with 64/192/384/256/256 kernels, no grouping and no normalisation.

Where this code departs from the paper:
- Input 227x227, not the 224x224 the paper states: (224 - 11) / 4 + 1 is not
  a whole number, while 227 gives Fig. 2's 55x55 maps.
- Max pooling rounds its output size up (``ceil_mode=True``, as Caffe does).
  At 227x227 every window fits exactly, so nothing changes there; on 32x32
  inputs it makes overlapping 3x3/2 and plain 2x2/2 pooling give the same map
  sizes, so the two can be compared with the same fully connected layers.
- What the paper does to the data (the PCA colour augmentation, 224x224 random
  crops and their flips, averaging over ten crops at test time) belongs to
  the data pipeline, not to the model.

Options, for the chapter's experiments
(``create("alexnet", activation="tanh")``): ``activation`` ("relu" |
"tanh", Sec. 3.1), ``lrn`` (Sec. 3.3), ``pool`` ("overlap": 3x3/2 |
"plain": 2x2/2, Sec. 3.4), ``dropout`` (Sec. 4.2), ``groups`` (2: the
two-GPU connectivity | 1: every kernel sees all maps), ``init`` ("paper" |
"he": He et al. 2015 | "pytorch": PyTorch's default), and the sizes
``width`` (multiplies every convolution's number of kernels) and ``hidden``
(units of fc6 and fc7).

``alexnet_cifar`` is AlexNet for 3x32x32 CIFAR images; what changed:
- conv1 is 5x5 with stride 1 and padding 2 (an 11x11/4 stem would leave 6x6
  maps after the first layer), so the maps are 32 -> 16 -> 8 -> 4 instead of
  55 -> 27 -> 13 -> 6; the other four convolutions, the normalisations, the
  pooling and the grouping are AlexNet's.
- Half the kernels (``width=0.5``: 48, 128, 192, 192, 128) and fc6/fc7 of 512
  units (fc6 sees 128 x 4 x 4 = 2,048 values), so that the chapter's runs
  take minutes on a GPU (on a CPU the chapter halves the kernels again,
  ``width=0.25``); ``width=1, hidden=4096`` gives the full sizes.
- He et al.'s initialisation (``init="he"``; ``init="paper"`` gives Sec. 5's):
  weights N(0, gain^2 / fan-in) with the gain of the activation (sqrt(2) for
  ReLU, 5/3 for tanh), so every layer keeps the size of its input signal, and
  fc8 N(0, 0.01^2). The paper's N(0, 0.01^2) weights, chosen for 90 epochs on
  ImageNet, scale a layer's output by about 0.01 x sqrt(fan-in), 0.09 to 0.45
  here; PyTorch's default (uniform, bound 1/sqrt(fan-in)) by 1/sqrt(3). Either
  way little of the signal reaches fc8 at the start, and a short run sits at
  chance for its first epochs.

``Fig1Net`` is the small network of the paper's Fig. 1, not registered in the
zoo: "a four-layer convolutional neural network" on CIFAR-10, trained with
ReLUs and with tanh units. The paper does not list its layers; these are
those of cuda-convnet's ``layers-18pct.cfg``, Krizhevsky's own four-layer
CIFAR-10 network of the time (conv 5x5 with 32, 32 and 64 kernels, max then
average 3x3/2 pooling, fc10), without its two response normalisations: the
figure's networks had "no regularization of any kind", and the normalisation
layers would add a third non-linearity to a comparison of two. Initialisation
as in Sec. 5: weights from N(0, 0.01^2), bias 1 in the second convolutional
layer (as in AlexNet's conv2), 0 elsewhere.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from . import Reference, register
from .layers import expect_input, he_init_, local_response_norm

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}

# Kernels of conv1..conv5 (the two GPUs' halves together).
CHANNELS: tuple[int, ...] = (96, 256, 384, 384, 256)


def _choose(option: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{option}={value!r} is not one of {choices}")
    return value


class AlexNet(nn.Module):
    """AlexNet; the defaults are the 2012 paper's (227x227 inputs).

    Args:
        num_classes: units of fc8.
        in_channels: channels of the input images.
        stem: "imagenet" (conv1 11x11/4, 227x227 input) or "cifar"
            (conv1 5x5/1, 32x32 input).
        activation: "relu" (paper) or "tanh", after every convolution and
            hidden fc layer.
        lrn: local response normalisation after conv1 and conv2 (paper).
        pool: "overlap" (3x3 windows, stride 2; paper) or "plain" (2x2,
            stride 2).
        dropout: dropout probability on fc6's and fc7's outputs (paper: 0.5).
        groups: groups of conv2, conv4 and conv5 (paper: 2, one per GPU;
            1: dense).
        width: multiplies every convolution's number of kernels (paper: 1).
        hidden: units of fc6 and fc7 (paper: 4096).
        init: "paper" (Sec. 5), "he" (He et al. 2015, with the
            activation's gain) or "pytorch" (its default).
        name: the registered name, used in error messages.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        stem: str = "imagenet",
        activation: str = "relu",
        lrn: bool = True,
        pool: str = "overlap",
        dropout: float = 0.5,
        groups: int = 2,
        width: float = 1.0,
        hidden: int = 4096,
        init: str = "paper",
        name: str = "alexnet",
    ) -> None:
        super().__init__()
        _choose("stem", stem, ("imagenet", "cifar"))
        act = ACTIVATIONS[
            _choose("activation", activation, tuple(ACTIVATIONS))
        ]
        _choose("pool", pool, ("overlap", "plain"))
        _choose("init", init, ("paper", "he", "pytorch"))
        c1, c2, c3, c4, c5 = (round(c * width) for c in CHANNELS)
        if any(c % groups for c in (c1, c2, c3, c4, c5)):
            raise ValueError(
                f"width={width} gives {c1, c2, c3, c4, c5} kernels, not all "
                f"divisible by groups={groups}; choose a width that keeps "
                "them even (0.25, 0.5, 1, ...) or groups=1."
            )

        def pooling() -> nn.MaxPool2d:
            # Overlapping: neighbouring windows share a row/column
            # (z=3 > s=2); plain: they tile (z=s=2).
            return (
                nn.MaxPool2d(3, 2, ceil_mode=True)
                if pool == "overlap"
                else nn.MaxPool2d(2, 2)
            )

        def normalisation() -> nn.Module:
            return (
                local_response_norm(size=5, alpha=1e-4, beta=0.75, k=2.0)
                if lrn
                else nn.Identity()
            )

        if stem == "imagenet":  # N x 96 x 55 x 55
            conv1 = nn.Conv2d(in_channels, c1, kernel_size=11, stride=4)
        else:  # N x 96 x 32 x 32
            conv1 = nn.Conv2d(in_channels, c1, kernel_size=5, padding=2)
        self.features = nn.Sequential(OrderedDict(
            conv1=conv1, act1=act(), norm1=normalisation(),
            pool1=pooling(),  # N x 96 x 27 x 27 (cifar: 16 x 16)
            conv2=nn.Conv2d(c1, c2, 5, padding=2, groups=groups),
            act2=act(), norm2=normalisation(),
            pool2=pooling(),  # N x 256 x 13 x 13 (cifar: 8 x 8)
            conv3=nn.Conv2d(c2, c3, 3, padding=1),  # both GPUs' maps
            act3=act(),
            conv4=nn.Conv2d(c3, c4, 3, padding=1, groups=groups),
            act4=act(),
            conv5=nn.Conv2d(c4, c5, 3, padding=1, groups=groups),
            act5=act(),
            pool5=pooling(),  # N x 256 x 6 x 6 (cifar: 4 x 4)
        ))  # fmt: skip
        self.map_size = 6 if stem == "imagenet" else 4  # pool5's maps
        self.classifier = nn.Sequential(OrderedDict(
            fc6=nn.Linear(c5 * self.map_size**2, hidden),  # N x 4096
            act6=act(), drop6=nn.Dropout(dropout),
            fc7=nn.Linear(hidden, hidden),  # N x 4096
            act7=act(), drop7=nn.Dropout(dropout),
            fc8=nn.Linear(hidden, num_classes),  # N x 1000
        ))  # fmt: skip
        self.in_channels = in_channels
        self.input_size = 227 if stem == "imagenet" else 32
        self.name = name
        if init == "paper":
            self.init_paper_()
        elif init == "he":
            he_init_(self, activation, last=self.classifier.fc8)

    @torch.no_grad()
    def init_paper_(self) -> None:
        """Sec. 5: weights from N(0, 0.01^2); biases 1 in conv2, conv4,
        conv5, fc6 and fc7, 0 elsewhere."""
        ones = {"conv2", "conv4", "conv5", "fc6", "fc7"}
        for name, module in [
            *self.features.named_children(),
            *self.classifier.named_children(),
        ]:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight, mean=0.0, std=0.01)
                nn.init.constant_(module.bias, 1.0 if name in ones else 0.0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The five convolutional layers: N x 3 x 227 x 227 to
        N x 256 x 6 x 6."""
        expect_input(x, self.name, self.in_channels, size=self.input_size)
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """fc6, fc7, fc8: pool5's maps -> N x num_classes logits."""
        return self.classifier(torch.flatten(x, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register(
    input_size=(3, 227, 227),
    reference=Reference(
        "Krizhevsky et al. 2012, Fig. 2, counted layer by layer (the "
        "paper rounds it to '60 million'; Caffe's bvlc_alexnet has the "
        "same count)",
        params=60_965_224,
    ),
)
def alexnet(num_classes: int = 1000, **kwargs) -> AlexNet:
    """AlexNet as trained on two GPUs in 2012: 60,965,224 parameters.
    Options: see :class:`AlexNet`."""
    return AlexNet(num_classes, **kwargs)


@register(input_size=(3, 32, 32), num_classes=10)
def alexnet_cifar(num_classes: int = 10, **kwargs) -> AlexNet:
    """AlexNet on 32x32 images: a 5x5/1 conv1, half the kernels, fc6 and
    fc7 of 512, He init (see the module docstring)."""
    options = dict(
        stem="cifar", width=0.5, hidden=512, init="he", name="alexnet_cifar"
    )
    return AlexNet(num_classes, **{**options, **kwargs})


class Fig1Net(nn.Module):
    """The four-layer network of the paper's Fig. 1 (see the module
    docstring): 89,578 parameters.

    Args:
        activation: "relu" or "tanh", after each of the three convolutions.
        num_classes: units of the output layer.
        in_channels: channels of the 32x32 input images.
    """

    def __init__(
        self,
        activation: str = "relu",
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        act = ACTIVATIONS[
            _choose("activation", activation, tuple(ACTIVATIONS))
        ]
        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(in_channels, 32, 5, padding=2),  # N x 32 x 32 x 32
            act1=act(),
            pool1=nn.MaxPool2d(3, 2, ceil_mode=True),  # N x 32 x 16 x 16
            conv2=nn.Conv2d(32, 32, 5, padding=2), act2=act(),
            pool2=nn.AvgPool2d(3, 2, ceil_mode=True),  # N x 32 x 8 x 8
            conv3=nn.Conv2d(32, 64, 5, padding=2), act3=act(),
            pool3=nn.AvgPool2d(3, 2, ceil_mode=True),  # N x 64 x 4 x 4
        ))  # fmt: skip
        self.fc = nn.Linear(64 * 4 * 4, num_classes)
        self.in_channels = in_channels
        self.init_paper_()

    @torch.no_grad()
    def init_paper_(self) -> None:
        """Sec. 5: weights from N(0, 0.01^2); bias 1 in the second
        convolutional layer (as in AlexNet's conv2), 0 elsewhere."""
        for name, module in [*self.features.named_children(), ("fc", self.fc)]:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight, mean=0.0, std=0.01)
                nn.init.constant_(module.bias, 1.0 if name == "conv2" else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expect_input(x, "Fig1Net", self.in_channels, size=32)
        return self.fc(torch.flatten(self.features(x), 1))
