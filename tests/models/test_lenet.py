"""LeNet-5: the paper's layer sizes, its 60,000 parameters, C3's table and the RBF output."""

import pytest
import torch
from torch import nn

from cnnbook import models
from cnnbook.models.lenet import C3_TABLE, DIGIT_BITMAPS, EuclideanRBF, PartialConv2d, Subsampling, scaled_tanh


def trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_parameters_per_layer_match_the_paper():
    net = models.create("lenet5")
    c1, _, s2, c3, _, s4, c5, _ = net.features
    # Section II.B of LeCun et al. 1998, layer by layer.
    assert [trainable(m) for m in (c1, s2, c3, s4, c5, net.f6)] == [156, 12, 1516, 32, 48120, 10164]
    assert trainable(net.output) == 0  # the RBF centres are fixed by hand
    assert trainable(net) == 60_000 == models.spec("lenet5").reference.count()


def test_modern_variant_counts_a_full_c3_and_a_linear_output():
    # C1 156 + C3 16*(6*25+1) + C5 48120 + F6 10164 + output 84*10+10
    assert trainable(models.create("lenet5_modern")) == 156 + 2416 + 48120 + 10164 + 850


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_shapes_per_stage(name):
    net = models.create(name)
    x = torch.randn(3, 1, 32, 32)
    shapes = []
    for layer in net.features:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes[0] == (6, 28, 28)  # C1
    assert (6, 14, 14) in shapes and (16, 10, 10) in shapes and (16, 5, 5) in shapes  # S2, C3, S4
    assert shapes[-1] == (120, 1, 1)  # C5
    assert net(torch.randn(3, 1, 32, 32)).shape == (3, 10)


def test_partial_conv_is_a_full_convolution_with_zeros_off_the_table():
    torch.manual_seed(0)
    partial = PartialConv2d(C3_TABLE, 5)
    weight = partial.full_weight()
    assert weight.shape == (16, 6, 5, 5)
    for j, inputs in enumerate(C3_TABLE):
        for i in range(6):
            assert bool(weight[j, i].abs().sum() > 0) == (i in inputs), (j, i)
    x = torch.randn(4, 6, 14, 14)
    torch.testing.assert_close(partial(x), nn.functional.conv2d(x, weight, partial.bias))
    # an output map does not move when an input map outside its table changes
    y = x.clone()
    y[:, 5] += 1.0  # map 5 is not read by C3 map 0 (inputs 0, 1, 2)
    torch.testing.assert_close(partial(x)[:, 0], partial(y)[:, 0])
    assert not torch.allclose(partial(x)[:, 3], partial(y)[:, 3])  # map 3 reads 3, 4, 5
    # and the gradient reaches exactly the table's kernels
    partial(x).sum().backward()
    assert partial.weight.grad.shape == (60, 5, 5) and partial.weight.grad.abs().sum() > 0


def test_subsampling_is_a_scaled_2x2_sum_plus_bias():
    layer = Subsampling(2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, 2.0]))
        layer.bias.copy_(torch.tensor([1.0, -1.0]))
    x = torch.arange(32.0).reshape(1, 2, 4, 4)
    top_left_sum = x[0, :, :2, :2].sum(dim=(1, 2))
    torch.testing.assert_close(layer(x)[0, :, 0, 0], top_left_sum * torch.tensor([0.5, 2.0]) + torch.tensor([1.0, -1.0]))


def test_scaled_tanh_maps_one_to_one():
    # A and S are chosen so that f(1) = 1 and f(-1) = -1 (Appendix A).
    torch.testing.assert_close(scaled_tanh(torch.tensor([1.0, -1.0])), torch.tensor([1.0, -1.0]), atol=1e-4, rtol=0)


def test_rbf_output_is_minus_the_squared_distance_to_the_digit_bitmaps():
    rbf = EuclideanRBF(84, 10)
    assert rbf.centres.shape == (10, 84) and set(rbf.centres.unique().tolist()) == {-1.0, 1.0}
    assert len({tuple(c.tolist()) for c in rbf.centres}) == 10  # ten distinct digits
    assert all(len(b.split("|")) == 12 and all(len(r) == 7 for r in b.split("|")) for b in DIGIT_BITMAPS)
    x = torch.randn(5, 84)
    expected = -((x[:, None, :] - rbf.centres[None]) ** 2).sum(-1)
    torch.testing.assert_close(rbf(x), expected, rtol=1e-4, atol=1e-3)
    # an F6 output equal to the bitmap of a digit is classified as that digit
    assert rbf(rbf.centres).argmax(1).tolist() == list(range(10))
    assert EuclideanRBF(84, 3).centres.shape == (3, 84)


def test_options_swap_one_part_each():
    net = models.create("lenet5", activation="relu", pooling="max")
    assert isinstance(net.features[2], nn.MaxPool2d) and isinstance(net.features[1], nn.ReLU)
    assert isinstance(models.create("lenet5", c3="full").features[3], nn.Conv2d)
    with pytest.raises(ValueError, match="pooling='mean' is not one of"):
        models.create("lenet5", pooling="mean")


@pytest.mark.parametrize(
    "shape, message",
    [((1, 1, 28, 28), "32x32"), ((2, 3, 32, 32), "1 input channel"), ((1, 32, 32), "batch dimension")],
)
def test_wrong_input_shape_says_how_to_fix_it(shape, message):
    with pytest.raises(ValueError, match=message):
        models.create("lenet5")(torch.randn(*shape))


def test_other_class_counts_and_backward():
    net = models.create("lenet5", num_classes=3)
    out = net(torch.randn(2, 1, 32, 32))
    out.sum().backward()
    assert out.shape == (2, 3) and all(p.grad is not None for p in net.parameters())
