"""Deeply-supervised nets: a companion classifier on every hidden stage,
trained together with the network.

Paper: C.-Y. Lee, S. Xie, P. Gallagher, Z. Zhang, Z. Tu, "Deeply-Supervised
Nets", AISTATS 2015 (arXiv:1409.5185).

Besides the output classifier, each hidden stage m gets a **companion**
classifier w^(m) that reads that stage's features. The training objective
is the output loss plus the companions' losses (the paper's Eq. 3),

    L = ||w^(out)||^2 + L(W, w^(out))
        + sum_m alpha_m [ ||w^(m)||^2 + L(W, w^(m)) - gamma ]_+ ,

so every hidden layer receives, besides the gradient that comes down from the
output, a direct one from its own companion: the features of each stage are
pushed to be discriminative on their own, and the early layers' gradients do
not have to cross the whole network. The companions are used only in
training; at test time the network is its output classifier. The paper lets
the companion weights decay as training goes on, alpha_m (1 - t/N) at epoch
t of N, so that the output loss has the last word.

Here :class:`DeeplySupervisedNet` wraps any network cut into stages: in
training mode it returns ``(logits, *companion_logits)``, which
:func:`cnnbook.train.fit` trains with the loss
``CE(logits) + aux_weight * sum(CE(companion))``; ``aux_weight`` is alpha.
``decay_steps=N`` (training mini-batches) makes the companions' weight fall
linearly from 1 to 0 over the first N mini-batches: the companions' outputs
pass through :class:`ScaleGradient`, which leaves their values alone and
multiplies their gradients by the current weight, so fit's loss is unchanged
and its gradient is that of alpha (1 - t/N) CE.
:meth:`DeeplySupervisedNet.all_logits` gives every classifier's logits in
any mode, for each companion's accuracy.

``dsn_cifar`` is the paper's CIFAR-10 base network, Network in Network
(three mlpconv stages, ``nin.py``), with a companion on each of the first
two stages.

Where this code departs from the paper, or chooses where it is silent:
- The companions are linear softmax classifiers trained with cross-entropy
  (the paper compares squared hinge (SVM) and softmax and uses the hinge) on
  the flattened output of their stage (after its pooling and dropout), and
  the threshold gamma, which switches a companion off once its loss is low,
  is left out (the decay does a similar job). The authors' released Caffe
  model (github.com/s9xie/DSN) attaches a squared-hinge companion to the
  first convolution of each of the three mlpconv blocks, before its ReLU.
- The weight decays per mini-batch rather than per epoch, and ``aux_weight``
  is one alpha for all companions.
- The companions add parameters the paper does not count;
  ``companions=False`` gives the same network without them (its trunk and
  output classifier have the same initial weights for the same seed).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from . import register
from .layers import expect_input
from .nin import NiN


class ScaleGradient(torch.autograd.Function):
    """The identity in the forward pass; the gradient times ``weight`` in
    the backward pass.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.weight, None


class DeeplySupervisedNet(nn.Module):
    """``stages`` run in turn, ``head`` classifies the last one's output,
    ``companions[m]`` the output of stage m.

    Args:
        stages: the network cut into pieces; a companion may follow any
            but the last.
        head: the output classifier, applied to the last stage's output.
        companions: one classifier per stage but the last (None for a
            stage without one).
        decay_steps: the companions' weight falls linearly from 1 to 0
            over this many training mini-batches (0: it stays 1).
        in_channels, input_size: what the input must be (``input_size``:
            an exact side), for clear errors.
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        head: nn.Module,
        companions: Sequence[nn.Module | None],
        decay_steps: int = 0,
        in_channels: int = 3,
        input_size: int | None = None,
        name: str = "dsn",
    ) -> None:
        super().__init__()
        if len(companions) != len(stages) - 1:
            raise ValueError(
                "one companion (or None) per stage but the last: "
                f"{len(stages) - 1}, "
                f"got {len(companions)}"
            )
        if not (isinstance(decay_steps, int) and decay_steps >= 0):
            raise ValueError(
                f"decay_steps={decay_steps!r} must be a whole number >= 0 "
                "(0: no decay)"
            )
        self.stages, self.head = nn.ModuleList(stages), head
        self.companions = nn.ModuleList(
            [c if c is not None else nn.Identity() for c in companions]
        )
        self.supervised = [c is not None for c in companions]
        self.decay_steps, self.name = decay_steps, name
        self.in_channels, self.input_size = in_channels, input_size
        # The training mini-batches seen, for the decay.
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @property
    def companion_weight(self) -> float:
        """The companions' current weight: 1 - t/N, not below 0 (1 without
        decay).
        """
        if self.decay_steps == 0:
            return 1.0
        return max(0.0, 1.0 - int(self.steps) / self.decay_steps)

    def all_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The logits of every companion, from the first stage up, then the
        output classifier's.
        """
        expect_input(x, self.name, self.in_channels, size=self.input_size)
        logits = []
        for m, stage in enumerate(self.stages):
            x = stage(x)
            if m < len(self.companions) and self.supervised[m]:
                logits.append(self.companions[m](x))  # N x num_classes
        return logits + [self.head(x)]

    def forward(
        self, x: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Eval mode (or no companion): the logits. Training mode:
        ``(logits, *companion_logits)``.
        """
        if not self.training or not any(self.supervised):
            return self.all_logits(x)[-1]
        *companions, logits = self.all_logits(x)
        weight = self.companion_weight
        if torch.is_grad_enabled():
            self.steps += 1
        return (logits, *(ScaleGradient.apply(c, weight) for c in companions))


def linear_companion(
    channels: int, size: int, num_classes: int
) -> nn.Sequential:
    """A linear classifier on the flattened ``channels`` x ``size`` x
    ``size`` maps of a stage.
    """
    return nn.Sequential(
        nn.Flatten(), nn.Linear(channels * size * size, num_classes)
    )


@register(input_size=(3, 32, 32), num_classes=10)
def dsn_cifar(
    num_classes: int = 10,
    companions: bool = True,
    decay_steps: int = 0,
    width: float = 1.0,
    **nin_options,
) -> DeeplySupervisedNet:
    """NiN for CIFAR-10 with companions on its first two mlpconv stages
    (Lee et al. 2015, Sec. 4).

    ``companions=False`` gives the same network without them; ``width`` and
    other options go to :class:`~cnnbook.models.nin.NiN`.
    """
    nin = NiN(
        num_classes,
        variant="cifar",
        width=width,
        name="dsn_cifar",
        **nin_options,
    )
    f = nin.features
    stages = [
        nn.Sequential(f.mlpconv1, f.pool1, f.drop1),  # N x 96 x 16 x 16
        nn.Sequential(f.mlpconv2, f.pool2, f.drop2),  # N x 192 x 8 x 8
        nn.Sequential(f.mlpconv3),  # N x 10 x 8 x 8, one map per class
    ]
    c1, c2 = f.mlpconv1[-2].out_channels, f.mlpconv2[-2].out_channels
    heads = (
        [
            linear_companion(c1, 16, num_classes),
            linear_companion(c2, 8, num_classes),
        ]
        if companions
        else [None, None]
    )
    # The companions read every position of their stage's maps, so the
    # input must be 32x32.
    return DeeplySupervisedNet(
        stages,
        nin.head,
        heads,
        decay_steps,
        nin.in_channels,
        input_size=32,
        name="dsn_cifar",
    )
