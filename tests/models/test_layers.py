"""The shared building blocks: the fast LRN and He initialisation."""

import math

import pytest
import torch
from torch import nn

from cnnbook.models.layers import LocalResponseNorm, he_init_, local_response_norm


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("channels", [1, 3, 8])
def test_lrn_equals_pytorchs_layer_with_gradients(size, channels):
    torch.manual_seed(size * 10 + channels)
    x = (torch.rand(3, channels, 6, 7) * 40).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    ours = LocalResponseNorm(size, alpha=3e-3, beta=0.6, k=1.5)
    reference = nn.LocalResponseNorm(size, alpha=3e-3, beta=0.6, k=1.5)
    torch.testing.assert_close(ours(x), reference(x_ref))
    upstream = torch.randn(3, channels, 6, 7)
    ours(x).backward(upstream)
    reference(x_ref).backward(upstream)
    torch.testing.assert_close(x.grad, x_ref.grad)


def test_lrn_keeps_channels_last_and_dtype():
    x = torch.rand(2, 6, 5, 5, dtype=torch.float64).to(memory_format=torch.channels_last)
    y = local_response_norm()(x)
    assert y.dtype == torch.float64 and y.shape == x.shape
    torch.testing.assert_close(y, nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)(x.contiguous()))


def test_he_init_keeps_the_signal_and_shrinks_the_last_layer():
    torch.manual_seed(0)
    layers = [nn.Linear(512, 512) for _ in range(8)]
    net = nn.Sequential(*[m for layer in layers for m in (layer, nn.ReLU())], nn.Linear(512, 10))
    assert he_init_(net, "relu", last=net[-1]) is net
    for layer in layers:
        assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.02)
        assert torch.count_nonzero(layer.bias) == 0
    assert net[-1].weight.std().item() == pytest.approx(0.01, rel=0.05)
    # Through eight ReLU layers the mean square of the signal stays within a factor of two.
    x = torch.randn(4096, 512)
    h = nn.Sequential(*list(net)[:-1])(x)
    assert 0.5 < h.pow(2).mean().item() / x.pow(2).mean().item() < 2


def test_he_init_uses_the_gain_of_tanh():
    conv = nn.Conv2d(16, 32, 3)
    he_init_(conv, "tanh")
    assert conv.weight.std().item() == pytest.approx((5 / 3) / math.sqrt(16 * 9), rel=0.05)


def test_bench_lrn_times_both_layers(capsys):
    from cnnbook import bench

    rows = bench.bench_lrn(batch_size=2, repeats=1, device="cpu")
    assert [r["shape"][1:] for r in rows] == [(24, 32, 32), (64, 16, 16), (48, 32, 32), (128, 16, 16)]
    assert all(r["pytorch_ms"] > 0 and r["cnnbook_ms"] > 0 for r in rows)
    assert bench.main(["lrn", "--batch-size", "2", "--repeats", "1", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.count("nn.LocalResponseNorm") == 4
