"""GoogLeNet (Inception v1) and its CIFAR adaptation.

Paper: C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov,
D. Erhan, V. Vanhoucke, A. Rabinovich, "Going Deeper with Convolutions",
CVPR 2015 (arXiv:1409.4842), Table 1, Figures 2(b) and 3, Section 5.

``googlenet`` follows Table 1 row by row at 224x224:

- stem: 7x7/2 conv 64, 3x3/2 max pool, LRN, 1x1 conv 64 (the "3x3 reduce"),
  3x3 conv 192, LRN, 3x3/2 max pool (the LRNs are in Figure 3, not Table 1);
- nine Inception modules (Figure 2(b)): a 1x1 branch, 1x1 -> 3x3, 1x1 -> 5x5
  (real 5x5 convolutions) and 3x3 max pool -> 1x1 ("pool proj"), concatenated;
  a 3x3/2 max pool before 4a and before 5a;
- 7x7 average pool, dropout 40%, a linear layer;
- ReLU after every convolution (including the reductions), no BatchNorm;
- two auxiliary classifiers on the outputs of 4a and 4d (Section 5): 5x5/3
  average pool (-> 4x4), 1x1 conv 128, fully connected 1024, dropout 70%, a
  linear layer. ``aux_logits=True`` builds them; in training mode ``forward``
  returns ``(logits, aux_4a, aux_4d)``, in eval mode the logits only. The
  paper weights their losses by 0.3; that belongs to the training loss.

Parameters. Table 1's "params" column counts weights only, in units of
K = 1024: conv2 is 64*64 + 64*9*192 = 114,688 = 112K exactly and the linear
layer 1024*1000 = 1000K exactly. Summed it gives 6,797.7K, the "about 6.8M"
quoted for GoogLeNet. The column agrees (within 1K) with the filter counts
printed in the same table for conv2, 3a, 3b, 4b and the linear layer; for the
other rows it does not, and we follow the filter counts (for 4c, 4d, 4e and
5b the table's own "ops" column agrees with the filter counts, not with the
params column):

    row      Table 1   from its filter counts
    conv1      2.7K      9.2K (7*7*3*64 = 9,408)
    4a         364K    366.8K
    4c         463K    497.5K
    4d         580K    590.5K
    4e         840K      847K
    5a        1072K     1018K
    5b        1388K     1409K

``tests/models/test_googlenet.py`` checks every row. Our full count adds the
biases and, by default, the two auxiliary classifiers (Table 1 leaves both
out); ``googlenet(aux_logits=False)`` has 6,998,552 parameters.

Where this code departs from the paper:
- LRN's constants are not given in the paper; we use those of the Caffe
  reference model (bvlc_googlenet): size 5, alpha 1e-4 (Caffe's, divided by
  the size), beta 0.75, k 1.
- Max pools use ``ceil_mode=True`` (Caffe's rounding), which gives Table 1's
  56/28/14/7 grids without padding.
- The main classifier's average pool is a global one (the same 7x7 pool at
  224x224).
- Initialisation: PyTorch's default; the paper trained with DistBelief and
  does not describe it.
- ``batch_norm=True`` (off by default) adds BatchNorm after every
  convolution, a later practice that makes the network easy to train from
  scratch on small data.

torchvision's ``googlenet`` is not a reference for this model: it puts
BatchNorm after every convolution, uses 3x3 instead of 5x5 convolutions in
the "5x5" branches (a known bug, kept for its pretrained weights), and its
auxiliary classifiers have BatchNorm too (6.6M parameters without them).

``googlenet_cifar`` keeps the nine Inception modules, the pools between them
and the head, and changes only what a 32x32 image needs: the stem (conv1,
pool, LRN, conv2, LRN, pool: /8 at 224) becomes a single 3x3 conv to 192
channels, so the Inception stages see 32x32, 16x16 and 8x8 grids. This is
the common CIFAR adaptation (e.g. kuangliu/pytorch-cifar, which also adds
BatchNorm). The auxiliary classifiers are off by default (``aux_logits=True``
puts them on the 16x16 grid, where the 5x5/3 pool again gives 4x4).

``width`` (both networks; 1 by default) multiplies the channels of every
convolution: the stem, each branch of Table 1 and the auxiliary classifiers'
128 maps and 1024 units, each rounded to the nearest whole number (at least
one). Parameters and multiply-adds shrink about as ``width`` squared:
``googlenet_cifar(width=0.25)`` has 0.37M parameters and 91M multiply-adds
per 32x32 image, against 5.86M and 1.45G at ``width=1``; the chapters
train such narrow versions on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

import torch
from torch import nn

from . import Reference, register
from .layers import conv_bn_relu, expect_input, local_response_norm

# A number of channels, or a (nested) tuple of them, as ``scaled`` takes it.
Widths = int | tuple["Widths", ...]

# Table 1: for each Inception module, #1x1, #3x3 reduce, #3x3, #5x5 reduce,
# #5x5, pool proj. A 3x3/2 max pool comes before 4a and before 5a. Output sizes
# at 224x224 on the right.
INCEPTION_MODULES: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),  # N x 256 x 28 x 28
    "3b": (128, 128, 192, 32, 96, 64),  # N x 480 x 28 x 28
    "4a": (192, 96, 208, 16, 48, 64),  # N x 512 x 14 x 14
    "4b": (160, 112, 224, 24, 64, 64),  # N x 512 x 14 x 14
    "4c": (128, 128, 256, 24, 64, 64),  # N x 512 x 14 x 14
    "4d": (112, 144, 288, 32, 64, 64),  # N x 528 x 14 x 14
    "4e": (256, 160, 320, 32, 128, 128),  # N x 832 x 14 x 14
    "5a": (256, 160, 320, 32, 128, 128),  # N x 832 x 7 x 7
    "5b": (384, 192, 384, 48, 128, 128),  # N x 1024 x 7 x 7
}
POOL_BEFORE = ("4a", "5a")
AUX_AFTER = ("4a", "4d")

# Table 1's "params" column, in K = 1024 weights (see the module docstring for
# the rows that disagree).
TABLE1_PARAMS_K: dict[str, float] = {
    "conv1": 2.7,
    "conv2": 112,
    "3a": 159,
    "3b": 380,
    "4a": 364,
    "4b": 437,
    "4c": 463,
    "4d": 580,
    "4e": 840,
    "5a": 1072,
    "5b": 1388,
    "linear": 1000,
}


def max_pool() -> nn.MaxPool2d:
    """The 3x3/2 max pooling between stages; it rounds up like Caffe (112 ->
    56 -> 28 -> 14 -> 7).
    """
    return nn.MaxPool2d(3, stride=2, ceil_mode=True)


def caffe_lrn() -> nn.LocalResponseNorm:
    """LRN with the constants of the Caffe reference model (the paper gives
    none): size 5, alpha 1e-4, beta 0.75, k 1.

    Caffe divides its alpha by the size, so in the paper-style formula of
    ``layers.local_response_norm`` (AlexNet's) alpha is 1e-4 / 5.
    """
    return local_response_norm(size=5, alpha=1e-4 / 5, beta=0.75, k=1.0)


def scaled(channels: Widths, width: float) -> Widths:
    """``channels`` (a number or a nested tuple of numbers) times ``width``,
    rounded, each at least 1.

    The one rule by which every ``width`` option of the Inception family
    narrows a network; ``width=1`` returns the numbers unchanged.
    """
    if isinstance(channels, tuple):
        return tuple(scaled(c, width) for c in channels)
    return max(1, round(channels * width))


class Concat(nn.ModuleList):
    """Parallel branches applied to the same input, their outputs concatenated
    along the channels.

    This is the Inception idea; the later Inception networks
    (``inception_v3.py``, ``inception_v4.py``) build all their modules from it.
    """

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self], dim=1)


# Layers that pass their input's number of channels on.
_KEEP_CHANNELS = (
    nn.BatchNorm2d,
    nn.ReLU,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.LocalResponseNorm,
    nn.Identity,
)


def out_channels(module: nn.Module, in_channels: int) -> int:
    """The number of channels ``module`` outputs for an input with
    ``in_channels``.

    Works through convolutions, pools, BatchNorm, ReLU, ``nn.Sequential`` and
    ``Concat`` (whose max pool branches pass all input channels on), so that a
    network can chain its blocks without restating their widths.
    """
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    if isinstance(module, Concat):
        return sum(out_channels(branch, in_channels) for branch in module)
    if isinstance(module, nn.Sequential):
        for layer in module:
            in_channels = out_channels(layer, in_channels)
        return in_channels
    if isinstance(module, _KEEP_CHANNELS):
        return in_channels
    raise TypeError(
        f"out_channels cannot tell how many channels a "
        f"{type(module).__name__} outputs"
    )


def stack(
    in_channels: int, builders: Iterable[Callable[[int], nn.Module]]
) -> nn.Sequential:
    """Blocks one after another, each built by ``builder(in_channels)`` for
    what the previous one outputs.

    With ``width`` != 1 a block's output need not equal its input (rounding),
    so a stage of Inception modules is chained rather than repeated.
    """
    blocks: list[nn.Module] = []
    for builder in builders:
        blocks.append(builder(in_channels))
        in_channels = out_channels(blocks[-1], in_channels)
    return nn.Sequential(*blocks)


def inception(
    in_channels: int,
    ch1x1: int,
    ch3x3_reduce: int,
    ch3x3: int,
    ch5x5_reduce: int,
    ch5x5: int,
    pool_proj: int,
    batch_norm: bool = False,
) -> Concat:
    """The Inception module with dimension reductions (Figure 2(b)); one row of
    Table 1.

    The 1x1 convolutions in front of the 3x3 and 5x5 ones shrink the channels
    they see, which keeps the expensive convolutions cheap; the pooling branch
    gets a 1x1 projection so that it does not pass all input channels on.
    """
    conv = partial(conv_bn_relu, batch_norm=batch_norm)
    return Concat(
        conv(in_channels, ch1x1, 1),
        nn.Sequential(
            conv(in_channels, ch3x3_reduce, 1), conv(ch3x3_reduce, ch3x3, 3)
        ),
        nn.Sequential(
            conv(in_channels, ch5x5_reduce, 1), conv(ch5x5_reduce, ch5x5, 5)
        ),
        nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1),
            conv(in_channels, pool_proj, 1),
        ),
    )


class AuxClassifier(nn.Module):
    """An auxiliary classifier (Section 5) on a 14x14 grid (16x16 for
    CIFAR); ``width`` scales its layers.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        batch_norm: bool = False,
        dropout: float = 0.7,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        maps, units = scaled((128, 1024), width)
        self.pool = nn.AvgPool2d(5, stride=3)  # N x C x 4 x 4
        # N x 128 x 4 x 4
        self.conv = conv_bn_relu(in_channels, maps, 1, batch_norm=batch_norm)
        # N x 1024
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(maps * 4 * 4, units), nn.ReLU(inplace=True)
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(units, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.fc(self.conv(self.pool(x)))))


class GoogLeNet(nn.Module):
    """GoogLeNet (``small_input=False``: Table 1 at 224x224) or its CIFAR
    adaptation (``small_input=True``: 32x32).

    Options: ``aux_logits`` builds the two auxiliary classifiers (returned in
    training mode only), ``batch_norm`` adds BatchNorm after every convolution,
    ``dropout`` is the main classifier's (40%) and ``aux_dropout`` the
    auxiliary ones' (70%), ``width`` multiplies every convolution's channels
    (and the auxiliary classifiers' units).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = True,
        small_input: bool = False,
        batch_norm: bool = False,
        dropout: float = 0.4,
        aux_dropout: float = 0.7,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        conv = partial(conv_bn_relu, batch_norm=batch_norm)
        c64, c192 = scaled((64, 192), width)
        if small_input:
            # N x 192 x 32 x 32
            self.stem: nn.Module = conv(in_channels, c192, 3)
        else:
            self.stem = nn.Sequential(
                # conv1: N x 64 x 112 x 112
                conv(in_channels, c64, 7, stride=2),
                max_pool(),  # N x 64 x 56 x 56
                caffe_lrn(),
                conv(c64, c64, 1),  # conv2's "3x3 reduce": N x 64 x 56 x 56
                conv(c64, c192, 3),  # conv2: N x 192 x 56 x 56
                caffe_lrn(),
                max_pool(),  # N x 192 x 28 x 28
            )
        self.inception = nn.ModuleDict()
        self.aux = nn.ModuleDict()
        channels = c192
        for name, widths in INCEPTION_MODULES.items():
            self.inception[name] = inception(
                channels, *scaled(widths, width), batch_norm=batch_norm
            )
            # #1x1 + #3x3 + #5x5 + pool proj
            channels = out_channels(self.inception[name], channels)
            if aux_logits and name in AUX_AFTER:
                self.aux[name] = AuxClassifier(
                    channels, num_classes, batch_norm, aux_dropout, width
                )
        self.pool = max_pool()  # before 4a and 5a
        # N x 1024
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout)
        )
        self.classifier = nn.Linear(channels, num_classes)
        self.in_channels = in_channels
        self.input_size = 32 if small_input else 224
        self.name = "googlenet_cifar" if small_input else "googlenet"

    def _forward_features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The last Inception module's output, and the auxiliary logits (in
        training mode only, else []).
        """
        expect_input(x, self.name, self.in_channels, size=self.input_size)
        aux_logits: list[torch.Tensor] = []
        x = self.stem(x)  # N x 192 x 28 x 28 (32 x 32 for CIFAR)
        for name, module in self.inception.items():
            if name in POOL_BEFORE:
                x = self.pool(x)
            x = module(x)  # sizes in INCEPTION_MODULES
            if self.training and name in self.aux:
                aux_logits.append(self.aux[name](x))
        return x, aux_logits  # N x 1024 x 7 x 7 (8 x 8 for CIFAR)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward_features(x)[0]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(x))

    def forward(
        self, x: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        features, aux_logits = self._forward_features(x)
        logits = self.forward_head(features)
        return (logits, *aux_logits) if aux_logits else logits


@register(
    input_size=(3, 224, 224),
    reference=Reference(
        "Szegedy et al. 2014, Table 1: the params column summed (K = 1024 "
        "weights)",
        params=round(1024 * sum(TABLE1_PARAMS_K.values())),
        rounded_to=1024,
        difference=6_417_435,
        why="the two auxiliary classifiers (6,379,728; Table 1 leaves them "
        "out), the biases (8,280; Table 1 counts "
        "weights only) and the rows of Table 1 whose params disagree with the "
        "table's own filter counts (+29,427 net: "
        "conv1 2.7K for 9,408 weights, 4c 463K for 509,440, 5a 1072K for "
        "1,042,432, ...); "
        "googlenet(aux_logits=False) has 6,998,552",
    ),
)
def googlenet(num_classes: int = 1000, **kwargs) -> GoogLeNet:
    """GoogLeNet as in Table 1 of Szegedy et al. 2014 (224x224, real 5x5
    branches, LRN, no BatchNorm).
    """
    return GoogLeNet(num_classes, **kwargs)


@register(input_size=(3, 32, 32), num_classes=10)
def googlenet_cifar(
    num_classes: int = 10,
    aux_logits: bool = False,
    width: float = 1.0,
    **kwargs,
) -> GoogLeNet:
    """GoogLeNet's nine Inception modules behind a 3x3 conv stem for 32x32
    images; aux classifiers off.

    ``width`` multiplies every convolution's channels (0.25: a sixteenth of the
    cost, for a CPU).
    """
    return GoogLeNet(
        num_classes,
        aux_logits=aux_logits,
        small_input=True,
        width=width,
        **kwargs,
    )
