"""Highway networks (Srivastava et al. 2015): the gated layer, the networks, the gate statistics."""

import pytest
import torch

from cnnbook import models
from cnnbook.models.highway import FullyConnectedNet, HighwayLayer, plain_width
from cnnbook.summary import count_params


def test_the_layer_is_eq_3_and_starts_mostly_carrying():
    torch.manual_seed(0)
    layer = HighwayLayer(8, gate_bias=-2.0)
    x = torch.randn(5, 8)
    t = torch.sigmoid(layer.gate(x))
    assert torch.allclose(layer(x), torch.relu(layer.transform(x)) * t + x * (1 - t))
    assert torch.allclose(layer.gate.bias, torch.full((8,), -2.0))
    with torch.no_grad():
        layer.gate.bias.fill_(-100.0)  # T = 0: the layer copies its input
    assert torch.allclose(layer(x), x)


@pytest.mark.parametrize("kind", ["highway", "plain"])
def test_shapes_and_parameter_counts(kind):
    net = models.create("highway_mnist", depth=10, kind=kind)
    outputs = net.forward_layers(torch.randn(3, 1, 28, 28))
    assert len(outputs) == 9 and all(o.shape == (3, 50) for o in outputs)
    per_layer = 2 * (50 * 50 + 50) if kind == "highway" else 50 * 50 + 50
    assert count_params(net) == 785 * 50 + 8 * per_layer + 51 * 10
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_gate_values_per_layer_and_plain_width():
    net = models.create("highway_mnist", depth=6)
    gates = net.gate_values(torch.randn(4, 1, 28, 28))
    assert len(gates) == 4 and all(g.shape == (4, 50) and (g > 0).all() and (g < 1).all() for g in gates)
    assert all(g.mean() < 0.2 for g in gates)  # bias -2: sigmoid(-2) = 0.12 plus the weights' spread
    with pytest.raises(ValueError, match="no transform gates"):
        models.create("highway_mnist", kind="plain").gate_values(torch.randn(1, 1, 28, 28))
    width = plain_width(50)
    plain = count_params(models.create("highway_mnist", depth=50, width=width, kind="plain"))
    highway = count_params(models.create("highway_mnist", depth=50))
    assert abs(plain - highway) / highway < 0.05


def test_bad_options_and_inputs_are_refused():
    with pytest.raises(ValueError, match="kind='gated'"):
        FullyConnectedNet(kind="gated")
    with pytest.raises(ValueError, match="at least 3 layers"):
        FullyConnectedNet(depth=2)
    with pytest.raises(ValueError, match="28x28"):
        models.create("highway_mnist")(torch.randn(1, 1, 32, 32))
