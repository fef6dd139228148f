"""Deeply-supervised nets (Lee et al. 2015): companions, their decaying weight, their logits."""

import pytest
import torch

from cnnbook import models, train
from cnnbook.models.dsn import DeeplySupervisedNet, ScaleGradient
from cnnbook.summary import count_params


def test_training_returns_companions_and_eval_the_logits():
    net = models.create("dsn_cifar", width=0.25)
    out = net.train()(torch.randn(2, 3, 32, 32))
    assert isinstance(out, tuple) and len(out) == 3 and all(o.shape == (2, 10) for o in out)
    assert net.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert len(net.all_logits(torch.randn(1, 3, 32, 32))) == 3


def test_without_companions_it_is_nin_with_the_same_weights():
    nin, plain = models.create("nin_cifar", seed=0), models.create("dsn_cifar", companions=False, seed=0)
    dsn = models.create("dsn_cifar", seed=0)
    assert count_params(plain) == count_params(nin) == 966_986
    assert count_params(dsn) - count_params(nin) == (96 * 16 * 16 + 1) * 10 + (192 * 8 * 8 + 1) * 10
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(plain.eval()(x), nin.eval()(x)) and torch.allclose(dsn.eval()(x), nin(x))
    assert not isinstance(plain.train()(x), tuple)


def test_the_weight_decays_and_scales_only_the_gradient():
    x = torch.randn(3, 4, requires_grad=True)
    ScaleGradient.apply(x, 0.25).sum().backward()
    assert torch.allclose(x.grad, torch.full((3, 4), 0.25))
    net = models.create("dsn_cifar", width=0.25, decay_steps=4).train()
    weights = []
    for _ in range(5):
        weights.append(net.companion_weight)
        net(torch.randn(2, 3, 32, 32))
    assert weights == [1.0, 0.75, 0.5, 0.25, 0.0]
    with torch.no_grad():
        net(torch.randn(2, 3, 32, 32))
    assert int(net.steps) == 5  # no step counted without gradients


def test_fit_trains_companions_as_auxiliary_outputs():
    torch.manual_seed(0)
    net = models.create("dsn_cifar", width=0.1, decay_steps=2)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    outputs = net.train()(x)
    loss, logits = train.training_loss(outputs, y, torch.nn.CrossEntropyLoss(), 0.3)
    loss.backward()
    assert all(p.grad is not None for p in net.companions.parameters())


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="one companion"):
        DeeplySupervisedNet([torch.nn.Identity()] * 3, torch.nn.Identity(), [None])
    with pytest.raises(ValueError, match="decay_steps"):
        models.create("dsn_cifar", decay_steps=-1)
    with pytest.raises(ValueError, match="32x32"):
        models.create("dsn_cifar")(torch.randn(1, 3, 28, 28))
