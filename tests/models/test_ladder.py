"""Ladder networks (Rasmus et al. 2015): the combinator, the costs, the Gamma-model, fit_ladder."""

import pytest
import torch

from cnnbook import diagram, models
from cnnbook.models.ladder import BatchNormalize, Combinator, EncoderLayer, LadderNetwork, LadderOutput, fit_ladder
from cnnbook.summary import count_params

SMALL = (784, 20, 10)


def test_the_vanilla_combinator_starts_at_zero_and_is_the_papers_formula():
    g = Combinator(5)
    z, u = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.allclose(g(z, u), torch.zeros(3, 5))
    with torch.no_grad():
        g.a.normal_()
    a = g.a
    mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
    v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
    assert torch.allclose(g(z, u), (z - mu) * v + mu)


def test_outputs_and_parameter_count_of_the_mnist_ladder():
    net = models.create("ladder_mnist")
    out = net.train()(torch.randn(4, 1, 28, 28))
    assert isinstance(out, LadderOutput) and out.logits.shape == (4, 10) and out.costs.shape == (4, 7)
    sizes = (784, 1000, 500, 250, 250, 250, 10)
    weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
    expected = 2 * weights + sum(sizes[1:]) + 10 + 10 * sum(sizes)  # W and V, beta, gamma, combinators
    assert count_params(net) == expected
    assert net.eval()(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_gamma_model_decodes_the_top_layer_only():
    net = LadderNetwork(SMALL, decoder="gamma")
    assert net.train()(torch.randn(4, 1, 28, 28)).costs.shape == (4, 1)
    assert len(net.decoder_weights) == 0 and len(net.combinators) == 1


def test_without_noise_the_clean_and_noisy_paths_agree():
    net = LadderNetwork(SMALL, noise_std=0.0).train()
    x = torch.randn(6, 1, 28, 28)
    logits, costs = net(x)
    clean = net.encode(x, 0.0)[0]
    assert torch.allclose(logits, clean, atol=1e-6)
    assert (costs >= 0).all()


def test_fit_ladder_learns_a_toy_problem_and_refuses_bad_lambdas():
    torch.manual_seed(0)
    y = torch.arange(40) % 2
    x = 0.3 * torch.randn(40, 1, 28, 28)
    x[:, 0, :14] += 2.0 * (2 * y - 1)[:, None, None]  # the top half tells the class
    net = LadderNetwork(SMALL)
    val = [(x, y)]
    history = fit_ladder(net, (x[:20], y[:20]), x[20:], val, steps=40, lambdas=(1.0, 1.0, 1.0), eval_every=20,
                         batch_size=20)
    assert len(history) == 2 and history.last["val_acc"] > 0.8 and "cost" in history.last
    assert not net.training
    with pytest.raises(ValueError, match="one weight per layer"):
        fit_ladder(net, (x, y), None, val, steps=1, lambdas=(1.0,))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="decoder='half'"):
        LadderNetwork(SMALL, decoder="half")
    with pytest.raises(ValueError, match="flattened input"):
        LadderNetwork((100, 10))
    with pytest.raises(ValueError, match="28x28"):
        LadderNetwork(SMALL).eval()(torch.randn(1, 1, 32, 32))


def test_batch_normalize_keeps_the_groups_apart_and_tracks_the_last_one():
    norm = BatchNormalize(3, momentum=0.5)
    x = torch.cat([torch.randn(4, 3) + 5.0, torch.randn(6, 3) - 2.0])
    z, mean, std = norm(x, num_labeled=4, update=True)
    assert z.shape == mean.shape == std.shape == (10, 3)
    assert torch.allclose(z[:4].mean(0), torch.zeros(3), atol=1e-5) and torch.allclose(z[4:].mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(norm.running_mean, 0.5 * x[4:].mean(0))  # half-way from 0 towards the second group
    norm.eval()
    z_eval, _, _ = norm(x)
    assert torch.allclose(z_eval, (x - norm.running_mean) / torch.sqrt(norm.running_var + 1e-5))


def test_an_encoder_layer_is_shared_by_the_clean_and_the_noisy_pass():
    torch.manual_seed(0)
    layer = EncoderLayer(5, 4)
    h = torch.randn(8, 5)
    clean, z, _, _ = layer(h)
    assert torch.allclose(clean, torch.relu(z + layer.beta)) and (clean >= 0).all()
    noisy, z_noisy, _, _ = layer(h, noise_std=0.3)
    assert not torch.allclose(z_noisy, z) and torch.allclose(z_noisy, z, atol=2.0)
    top = EncoderLayer(5, 3, top=True)
    logits, z, _, _ = top(h)
    assert torch.allclose(logits, top.gamma * (z + top.beta))


class _Training(torch.nn.Module):
    """The ladder in training mode, as the chapter draws it (a diagram runs models in evaluation mode)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        self.net.train()
        return tuple(self.net(x))


def test_a_diagram_shows_the_ladder_as_its_parts():
    d = diagram.draw(_Training(LadderNetwork(SMALL)), input_size=(1, 28, 28), depth=2)
    kinds = [layer.type for layer in d.layers]
    assert kinds.count("EncoderLayer") == 4  # two layers, a noisy and a clean pass
    assert kinds.count("Combinator") == 3 and kinds.count("DenoisingCost") == 3
    assert len(d.layers) < 30
