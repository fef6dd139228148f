"""Highway networks: layers that learn how much of their input to carry.

Paper: R. K. Srivastava, K. Greff, J. Schmidhuber, "Highway Networks",
ICML 2015 Deep Learning Workshop (arXiv:1505.00387); the long version is
"Training Very Deep Networks", NeurIPS 2015.

A plain layer computes y = H(x). A highway layer adds a **transform gate**
T(x) = sigmoid(W_T x + b_T) and computes (the paper's Eq. 3)

    y = H(x) * T(x) + x * (1 - T(x)),

element by element: where T is 0 the layer copies its input (the "carry"
gate C = 1 - T), where T is 1 it is the plain layer. The gate bias b_T starts
negative (Sec. 2.2: -1 to -3), so that at initialisation every layer mostly
carries its input and a deep stack starts close to the identity, which the
gradient crosses undamped.

Networks (the paper's Fig. 1 experiment on MNIST), 1x28x28 inputs flattened:
one plain fully connected layer from 784 to ``width`` units, ``depth - 2``
highway (or plain) layers of ``width`` units, and a linear classifier; depth
counts all the layers with weights, as the paper's 10, 20, 50 and 100.
``highway_mnist`` is registered with the paper's 50 units and the depth as an
option; ``kind="plain"`` gives the plain network of the same shape (the paper
gave its plain networks 71 units, about the highway networks' parameters;
:func:`plain_width` computes such a width).

Where this code departs from the paper, or chooses where it is silent:
- H is a linear layer with ReLU and the gate's bias starts at -2 by default
  (the paper searched the activation and the bias, from -1 to -10, per
  network; its best 50-layer MNIST network started at -2, Fig. 2). Sec. 2.2
  suggests more negative biases for deeper networks (-1, -2, -3 for about
  10, 20, 30 layers): at initialisation each layer shrinks the signal by
  about sqrt(t^2 + (1 - t)^2), t = sigmoid(b_T), so ``gate_bias`` matters
  more the deeper the network (the chapter uses -depth / 10).
- Weights are He-initialised; the paper says "normalized initialization",
  the same for plain and highway networks.
- The paper's convolutional highway networks (CIFAR-10, 19 and 32 layers)
  are not built here: their exact layer list is only in the authors' code.
"""

from __future__ import annotations

import torch
from torch import nn

from . import register
from .layers import expect_input

KINDS = ("highway", "plain")


class HighwayLayer(nn.Module):
    """y = H(x) T(x) + x (1 - T(x)), the paper's Eq. 3.

    H(x) = ReLU(W_H x + b_H) is the layer's own output, T(x) = sigmoid(W_T x
    + b_T) the transform gate; ``gate_bias`` is b_T at initialisation.
    """

    def __init__(self, features: int, gate_bias: float = -2.0) -> None:
        super().__init__()
        self.transform = nn.Linear(features, features)  # H
        self.gate = nn.Linear(features, features)  # T, before its sigmoid
        nn.init.kaiming_normal_(self.transform.weight, nonlinearity="relu")
        nn.init.zeros_(self.transform.bias)
        # negative: every layer carries its input at first
        nn.init.constant_(self.gate.bias, gate_bias)

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """T(x), in (0, 1) per unit: 0 carries the input, 1 transforms it."""
        return torch.sigmoid(self.gate(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, t = torch.relu(self.transform(x)), self.gates(x)
        return h * t + x * (1 - t)  # N x features


def plain_layer(
    features: int, out_features: int | None = None
) -> nn.Sequential:
    """y = ReLU(W x + b), He-initialised (``out_features``: ``features``)."""
    linear = nn.Linear(features, out_features or features)
    nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
    nn.init.zeros_(linear.bias)
    return nn.Sequential(linear, nn.ReLU())


class FullyConnectedNet(nn.Module):
    """A plain layer, ``depth - 2`` highway or plain layers, a classifier.

    Args:
        depth: layers with weights, the classifier included (the paper: 10,
            20, 50, 100); at least 3.
        width: units of every hidden layer (the paper: 50 for highway, 71
            for plain networks).
        kind: "highway" or "plain".
        gate_bias: the initial bias of every transform gate (highway only).
        in_channels, image_size: the input images (1 x 28 x 28 for MNIST),
            flattened by the first layer.
    """

    def __init__(
        self,
        depth: int = 10,
        width: int = 50,
        kind: str = "highway",
        gate_bias: float = -2.0,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(
                f"kind={kind!r}: use 'highway' (gated layers) or 'plain' "
                "(ReLU layers)"
            )
        if not (isinstance(depth, int) and depth >= 3):
            raise ValueError(
                f"depth={depth!r}: a network needs at least 3 layers "
                "(first, one hidden, classifier)"
            )
        if not (isinstance(width, int) and width >= 1):
            raise ValueError(f"width={width!r} must be a positive integer")
        self.kind, self.depth = kind, depth
        self.in_channels, self.image_size = in_channels, image_size
        pixels = in_channels * image_size * image_size
        self.first = plain_layer(pixels, width)  # 784 -> width
        if kind == "highway":
            hidden = [HighwayLayer(width, gate_bias) for _ in range(depth - 2)]
        else:
            hidden = [plain_layer(width) for _ in range(depth - 2)]
        self.layers = nn.Sequential(*hidden)  # N x width, every one
        self.classifier = nn.Linear(width, num_classes)

    def forward_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of the first layer and of every hidden layer after it.

        ``depth - 1`` tensors of N x width.
        """
        expect_input(x, "highway_mnist", self.in_channels, self.image_size)
        outputs = [self.first(torch.flatten(x, 1))]  # N x width
        for layer in self.layers:
            outputs.append(layer(outputs[-1]))
        return outputs

    @torch.no_grad()
    def gate_values(self, x: torch.Tensor) -> list[torch.Tensor]:
        """T(x) of every highway layer: ``depth - 2`` tensors of N x width."""
        if self.kind != "highway":
            raise ValueError(
                "a plain network has no transform gates; build it with "
                "kind='highway'"
            )
        inputs = self.forward_layers(x)[:-1]  # what each layer receives
        return [layer.gates(h) for layer, h in zip(self.layers, inputs)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_layers(x)[-1])  # N x classes


def plain_width(
    depth: int,
    highway_width: int = 50,
    in_features: int = 784,
    num_classes: int = 10,
) -> int:
    """The width of a plain network with about the parameters of the highway
    network of the same depth."""

    def params(width: int, per_layer: int) -> int:
        first, last = (in_features + 1) * width, (width + 1) * num_classes
        return first + (depth - 2) * per_layer + last

    target = params(highway_width, 2 * highway_width * (highway_width + 1))
    return min(
        range(1, 4 * highway_width),
        key=lambda w: abs(params(w, w * (w + 1)) - target),
    )


@register(input_size=(1, 28, 28), num_classes=10)
def highway_mnist(
    num_classes: int = 10,
    depth: int = 10,
    width: int = 50,
    kind: str = "highway",
    **options,
) -> FullyConnectedNet:
    """The fully connected highway network of the paper's Fig. 1 (MNIST).

    ``kind="plain"`` gives its plain twin.
    """
    return FullyConnectedNet(
        depth, width, kind, num_classes=num_classes, **options
    )
