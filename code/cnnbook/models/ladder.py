"""Ladder networks: semi-supervised learning by denoising every layer of an
encoder.

Paper: A. Rasmus, H. Valpola, M. Honkala, M. Berglund, T. Raiko,
"Semi-Supervised Learning with Ladder Networks", NeurIPS 2015
(arXiv:1507.02672). The notation follows its Algorithm 1.

Three passes share the encoder's weights W^(l):

- the **noisy encoder** adds Gaussian noise (std 0.3) to the input and to
  every normalised pre-activation: z~^(l) = BN(W^(l) h~^(l-1)) + noise,
  h~^(l) = ReLU(z~^(l) + beta^(l)) (softmax(gamma (z~ + beta)) at the top); its
  output y~ is what the supervised cost sees;
- the **clean encoder**, the same without noise, gives the targets z^(l) and
  the batch statistics mu^(l), sigma^(l);
- the **decoder** goes from the top down: u^(L) = BN(h~^(L)), then
  u^(l) = BN(V^(l+1) z^^(l+1)); at every layer a **combinator** g^(l) merges
  the lateral, noisy z~^(l) with the top-down u^(l) into a denoised z^^(l).
  The paper's vanilla combinator, per unit i (10 parameters a_1..a_10 each):

      z^ = (z~ - mu(u)) v(u) + mu(u),
      mu(u) = a1 sigmoid(a2 u + a3) + a4 u + a5,
      v(u) = a6 sigmoid(a7 u + a8) + a9 u + a10.

The cost is the cross-entropy of y~ on the labelled examples plus the
layer-wise **denoising costs** on all examples, labelled or not,

    C = -log P(y~ = y | x)
        + sum_l lambda_l / m_l || z^(l) - (z^^(l) - mu^(l)) / sigma^(l) ||^2,

with lambda = (1000, 10, 0.1, 0.1, 0.1, 0.1, 0.1) from the input up for the
MNIST network 784-1000-500-250-250-250-10 (``ladder_mnist``). The
**Gamma-model** (``decoder="gamma"``) keeps only the top layer's combinator
and cost: the cheapest ladder, a denoising of the class scores alone.

The pieces are modules, so that a diagram (``cnnbook.diagram``) shows them
as boxes: an :class:`EncoderLayer` per layer (W, :class:`BatchNormalize`,
the noise, beta and the activation), run twice in training, once noisy and
once clean; a :class:`Combinator` per decoded layer; the decoder's V^(l)
(``decoder_weights``) and normalisations; and :class:`DenoisingCost`.

:class:`LadderNetwork` returns, in training mode, a :class:`LadderOutput`
``(logits, costs)``: the noisy encoder's logits and the unweighted
denoising cost of every decoded layer for every example (N x layers). The
weighting and the mixing of labelled and unlabelled mini-batches are
:func:`fit_ladder`'s, a short training loop of its own: ``train.fit`` trains
on labelled batches only and would read ``costs`` as auxiliary logits. In
evaluation mode the network is the clean encoder and returns the logits.

Where this code departs from the paper, or chooses where it is silent:
- The combinator's parameters start as in the authors' code (a2 = a7 = 1,
  everything else 0, so z^ starts at 0); the weights W and V are
  He-initialised.
- BatchNorm at test time uses running averages collected by the clean
  encoder during training (the paper's code re-estimates the averages after
  training).
- :func:`fit_ladder` draws a labelled and an unlabelled mini-batch of 100
  each per step and runs them through the encoders together (each group
  normalised with its own statistics, as the authors' code does); the
  denoising costs are averaged over both groups; the learning
  rate (Adam, 0.002) decays linearly to 0 over the last third of the steps
  (the paper: 100 epochs, then 50 of decay).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..train import History
from . import register
from .layers import expect_input

MNIST_SIZES = (784, 1000, 500, 250, 250, 250, 10)
# The denoising weights lambda_l, the input layer first (the authors' code
# for MNIST with 100 labels).
MNIST_LAMBDAS = (1000.0, 10.0, 0.1, 0.1, 0.1, 0.1, 0.1)
DECODERS = ("full", "gamma")
EPS = 1e-5


class LadderOutput(NamedTuple):
    """What the network returns in training mode."""

    logits: torch.Tensor  # N x classes, of the noisy encoder
    # N x decoded layers: || z - z^_BN ||^2 / m_l per example, unweighted
    costs: torch.Tensor


class Combinator(nn.Module):
    """The vanilla combinator g(z~, u) of the paper, ten parameters per
    unit.
    """

    def __init__(self, units: int) -> None:
        super().__init__()
        init = torch.zeros(10, units)
        init[[1, 6]] = 1.0  # a2 = a7 = 1: the sigmoids start as sigmoid(u)
        self.a = nn.Parameter(init)

    def forward(self, z_noisy: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        a = self.a
        mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
        v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
        return (z_noisy - mu) * v + mu  # z^, the denoised z~


def batch_normalize(
    x: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x - mean) / std over the batch, and the mean and std themselves (no
    learned scale or shift).
    """
    mean, var = x.mean(0), x.var(0, unbiased=False)
    std = torch.sqrt(var + EPS)
    return (x - mean) / std, mean, std


class BatchNormalize(nn.Module):
    """BatchNorm without a learned scale and shift, that also returns the
    statistics it used.

    In training mode the rows are normalised by their batch's mean and std,
    the first ``num_labeled`` rows and the others as two separate groups;
    ``update=True`` moves the running averages towards the last group's
    statistics. In evaluation mode (``track=True`` only) the running averages
    are used. Returns ``(z, mean, std)``, the statistics per row (N x units).
    """

    def __init__(
        self, units: int, momentum: float = 0.1, track: bool = True
    ) -> None:
        super().__init__()
        self.momentum, self.track = momentum, track
        if track:
            self.register_buffer("running_mean", torch.zeros(units))
            self.register_buffer("running_var", torch.ones(units))

    def forward(
        self, x: torch.Tensor, num_labeled: int = 0, update: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.training or not self.track:
            groups = [
                g
                for g in (slice(0, num_labeled), slice(num_labeled, len(x)))
                if g.stop > g.start
            ]
            parts = [batch_normalize(x[g]) for g in groups]
            if update and self.track:
                with torch.no_grad():
                    self.running_mean.lerp_(parts[-1][1], self.momentum)
                    self.running_var.lerp_(
                        parts[-1][2] ** 2 - EPS, self.momentum
                    )
            if len(parts) == 1:
                z, mean, std = parts[0]
                return z, mean.expand_as(z), std.expand_as(z)
            return (
                torch.cat([p[0] for p in parts]),
                torch.cat([p[1].expand_as(p[0]) for p in parts]),
                torch.cat([p[2].expand_as(p[0]) for p in parts]),
            )
        mean, std = self.running_mean, torch.sqrt(self.running_var + EPS)
        return (x - mean) / std, mean.expand_as(x), std.expand_as(x)


class EncoderLayer(nn.Module):
    """One encoder layer l: z = BN(W h) (+ noise), h_next = ReLU(z + beta),
    or gamma (z + beta) at the top.

    The same layer serves the noisy and the clean pass (shared weights);
    ``forward`` returns ``(h_next, z, mean, std)``, z being z~ when noisy.
    """

    def __init__(
        self,
        in_units: int,
        units: int,
        top: bool = False,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        # W^(l), He-initialised by the network
        self.linear = nn.Linear(in_units, units, bias=False)
        self.norm = BatchNormalize(units, momentum)
        # The shift that BatchNorm leaves out, and the top layer's scale.
        self.beta = nn.Parameter(torch.zeros(units))
        self.gamma = nn.Parameter(torch.ones(units)) if top else None

    def forward(
        self, h: torch.Tensor, noise_std: float = 0.0, num_labeled: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        # N x m_l; the clean pass updates the running averages.
        z, mean, std = self.norm(
            self.linear(h), num_labeled, update=noise_std == 0
        )
        if noise_std:
            z = z + noise_std * torch.randn_like(z)
        h = (
            self.gamma * (z + self.beta)
            if self.gamma is not None
            else torch.relu(z + self.beta)
        )
        return h, z, mean, std


class DenoisingCost(nn.Module):
    """|| z - (z^ - mu) / sigma ||^2 / m_l for every example: the clean
    target against the normalised estimate.
    """

    def forward(
        self,
        z_clean: torch.Tensor,
        z_hat: torch.Tensor,
        mean: torch.Tensor | None,
        std: torch.Tensor | None,
    ) -> torch.Tensor:
        z_hat_bn = (z_hat - mean) / std if mean is not None else z_hat
        return (z_clean - z_hat_bn).square().mean(1)  # N


class LadderNetwork(nn.Module):
    """An MLP encoder with BatchNorm and the ladder's decoder (module
    docstring).

    The encoder is ``encoder`` (one :class:`EncoderLayer` per layer, run
    twice in training: noisy and clean); the decoder is ``combinators`` (one
    :class:`Combinator` per decoded layer, top first in the loop),
    ``decoder_weights`` (V^(l)), ``decoder_norms`` and ``cost``.

    Args:
        sizes: units per layer, the input first (MNIST: 784, 1000, 500,
            250, 250, 250, 10).
        noise_std: the Gaussian noise of the noisy encoder (the paper: 0.3).
        decoder: "full" (every layer denoised) or "gamma" (the top layer
            only, the Gamma-model).
        momentum: of the running averages used at test time.
    """

    def __init__(
        self,
        sizes: Sequence[int] = MNIST_SIZES,
        noise_std: float = 0.3,
        decoder: str = "full",
        in_channels: int = 1,
        image_size: int = 28,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(
                f"decoder={decoder!r}: use 'full' (every layer) or "
                "'gamma' (top layer only)"
            )
        if noise_std < 0:
            raise ValueError(
                f"noise_std={noise_std} must not be negative (the paper: 0.3)"
            )
        if len(sizes) < 2 or sizes[0] != in_channels * image_size * image_size:
            raise ValueError(
                f"sizes={tuple(sizes)}: the first size must be the "
                f"flattened input, {in_channels} x {image_size} x "
                f"{image_size} = {in_channels * image_size**2}"
            )
        self.sizes, self.noise_std = tuple(sizes), noise_std
        self.decoder, self.momentum = decoder, momentum
        self.in_channels, self.image_size = in_channels, image_size
        top = len(sizes) - 1  # L
        self.encoder = nn.ModuleList(
            [
                EncoderLayer(
                    sizes[l - 1], sizes[l], top=l == top, momentum=momentum
                )
                for l in range(1, top + 1)
            ]
        )
        for layer in self.encoder:
            nn.init.kaiming_normal_(layer.linear.weight, nonlinearity="relu")
        # Decoded layers: all of 0..L, or only L (Gamma-model).
        self.cost_layers = list(range(top + 1)) if decoder == "full" else [top]
        self.combinators = nn.ModuleList(
            [Combinator(sizes[l]) for l in self.cost_layers]
        )
        # V^(l) maps z^(l) down to layer l-1, for l = L..1 (full decoder
        # only); u is normalised after it.
        full = decoder == "full"
        self.decoder_weights = nn.ModuleList(
            [
                nn.Linear(sizes[l], sizes[l - 1], bias=False)
                for l in range(1, top + 1)
            ]
            if full
            else []
        )
        for layer in self.decoder_weights:
            nn.init.kaiming_normal_(layer.weight)
        # u^(L) = BN(h~^(L)), then u^(l-1) = BN(V^(l) z^(l))
        self.top_norm = BatchNormalize(sizes[top], track=False)
        self.decoder_norms = nn.ModuleList(
            [
                BatchNormalize(sizes[l - 1], track=False)
                for l in range(1, top + 1)
            ]
            if full
            else []
        )
        self.cost = DenoisingCost()

    def encode(
        self, x: torch.Tensor, noise_std: float, num_labeled: int = 0
    ) -> tuple[torch.Tensor, list, list]:
        """One encoder pass: the logits, every layer's z (z~ when noisy) and
        its batch statistics (mean, std).

        In training mode each layer is normalised with batch statistics, the
        first ``num_labeled`` rows (the labelled examples) and the others
        separately, as in the authors' code: normalised together, the
        labelled rows' class scores would be defined against the unlabelled
        ones. The statistics are returned per row (N x m), and the clean pass
        (``noise_std=0``) updates the running averages from the last group. In
        evaluation mode the running averages are used.
        """
        expect_input(x, "ladder_mnist", self.in_channels, size=self.image_size)
        h = torch.flatten(x, 1)  # N x 784
        h = h + noise_std * torch.randn_like(h) if noise_std else h
        zs, stats = [h], [(None, None)]
        for layer in self.encoder:
            h, z, mean, std = layer(h, noise_std, num_labeled)  # N x m_l
            zs.append(z)
            stats.append((mean, std))
        # h: N x classes, the logits (softmax is in the loss)
        return h, zs, stats

    def decode(
        self,
        logits_noisy: torch.Tensor,
        zs_noisy: list,
        zs_clean: list,
        stats: list,
    ) -> torch.Tensor:
        """The denoising cost of every decoded layer for every example:
        N x len(cost_layers).
        """
        costs = [None] * len(self.cost_layers)
        # u^(L) = BN(h~^(L)), normalised over the whole batch
        u, _, _ = self.top_norm(torch.softmax(logits_noisy, 1))
        for k in reversed(range(len(self.cost_layers))):
            l = self.cost_layers[k]
            # z^(l) = g(z~(l), u(l)), N x m_l, and || z - z^_BN ||^2 / m_l
            z_hat = self.combinators[k](zs_noisy[l], u)
            costs[k] = self.cost(zs_clean[l], z_hat, *stats[l])
            if l > 0 and self.decoder == "full":
                # u^(l-1) = BN(V^(l) z^(l))
                v_z = self.decoder_weights[l - 1](z_hat)
                u, _, _ = self.decoder_norms[l - 1](v_z)
        return torch.stack(costs, 1)

    def forward(
        self, x: torch.Tensor, num_labeled: int = 0
    ) -> torch.Tensor | LadderOutput:
        """Evaluation: the clean encoder's logits. Training: the noisy logits
        and the denoising costs.

        ``num_labeled``: the batch's first rows that are labelled,
        normalised as a group of their own.
        """
        if not self.training:
            return self.encode(x, 0.0)[0]
        logits_noisy, zs_noisy, _ = self.encode(x, self.noise_std, num_labeled)
        # The clean pass: targets and statistics (gradients flow here too).
        _, zs_clean, stats = self.encode(x, 0.0, num_labeled)
        return LadderOutput(
            logits_noisy, self.decode(logits_noisy, zs_noisy, zs_clean, stats)
        )


def fit_ladder(
    model: LadderNetwork,
    labeled: tuple[torch.Tensor, torch.Tensor],
    unlabeled: torch.Tensor | None,
    val: object,
    *,
    steps: int,
    lambdas: Sequence[float] | None = MNIST_LAMBDAS,
    batch_size: int = 100,
    lr: float = 0.002,
    eval_every: int = 100,
    seed: int = 0,
) -> History:
    """Train a ladder network: cross-entropy on labelled batches plus
    weighted denoising costs on all.

    Args:
        labeled: images and labels of the labelled examples (e.g. 100
            MNIST digits, normalised).
        unlabeled: images without labels, or None to train on the labelled
            ones alone.
        val: a loader of (x, y) batches, evaluated every ``eval_every`` steps.
        lambdas: one weight per layer of the network, input first (the
            model's ``cost_layers`` pick theirs; the Gamma-model uses only
            the last); None trains with cross-entropy alone.
        steps: optimiser steps; the learning rate decays linearly to 0 over
            the last third.

    Returns a :class:`cnnbook.train.History` with one record per
    ``eval_every`` steps (its ``epoch`` column counts evaluations), and the
    mean weighted denoising cost in a ``cost`` column.
    """
    x_lab, y_lab = labeled
    if lambdas is not None and len(lambdas) != len(model.sizes):
        raise ValueError(
            "lambdas: one weight per layer, input first "
            f"({len(model.sizes)}), got {len(lambdas)}"
        )
    if steps < 1 or eval_every < 1 or batch_size < 1:
        raise ValueError(
            f"steps={steps}, eval_every={eval_every}, "
            f"batch_size={batch_size} must be positive"
        )
    weights = (
        None
        if lambdas is None
        else torch.tensor(
            [float(lambdas[l]) for l in model.cost_layers],
            device=next(model.parameters()).device,
        )
    )
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr)
    decay_from = steps - steps // 3
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            1.0
            if s < decay_from
            else max(0.0, (steps - s) / (steps - decay_from))
        ),
    )
    history, started = History(), time.perf_counter()
    sums = torch.zeros(4)  # loss, cost, hits, seen
    for step in range(steps):
        model.train()
        pick = torch.randint(
            len(x_lab), (min(batch_size, len(x_lab)),), generator=generator
        )
        x, y = x_lab[pick], y_lab[pick]
        if unlabeled is not None:
            other = torch.randint(
                len(unlabeled), (batch_size,), generator=generator
            )
            x = torch.cat([x, unlabeled[other]])
        logits, costs = model(x, num_labeled=len(y))
        supervised = F.cross_entropy(logits[: len(y)], y)
        cost = (
            (costs.mean(0) * weights).sum()
            if weights is not None
            else logits.new_zeros(())
        )
        loss = supervised + cost
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_now = optimizer.param_groups[0]["lr"]
        schedule.step()
        hits = (logits[: len(y)].argmax(1) == y).sum()
        sums += torch.tensor(
            [
                supervised.item() * len(y),
                cost.item() * len(y),
                hits.item(),
                len(y),
            ]
        )
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            val_loss, val_acc = _evaluate(model, val)
            history.records.append(
                {
                    "epoch": len(history) + 1,
                    "train_loss": (sums[0] / sums[3]).item(),
                    "train_acc": (sums[2] / sums[3]).item(),
                    "val_loss": val_loss,
                    "val_acc": val_acc,
                    "lr": lr_now,
                    "seconds": time.perf_counter() - started,
                    "cost": (sums[1] / sums[3]).item(),
                }
            )
            sums.zero_()
    model.eval()
    return history


@torch.no_grad()
def _evaluate(model: nn.Module, loader: object) -> tuple[float, float]:
    model.eval()
    logits, labels = zip(*[(model(x), y) for x, y in loader])
    logits, labels = torch.cat(logits), torch.cat(labels)
    return F.cross_entropy(logits, labels).item(), (
        logits.argmax(1) == labels
    ).float().mean().item()


@register(input_size=(1, 28, 28), num_classes=10)
def ladder_mnist(
    num_classes: int = 10,
    decoder: str = "full",
    noise_std: float = 0.3,
    sizes: Sequence[int] = MNIST_SIZES,
    **options,
) -> LadderNetwork:
    """The paper's MNIST ladder, 784-1000-500-250-250-250-10;
    ``decoder="gamma"`` for the Gamma-model.
    """
    return LadderNetwork(
        (*sizes[:-1], num_classes), noise_std, decoder, **options
    )
