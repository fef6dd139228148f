"""FractalNet (Larsson et al. 2017): the expansion rule, the joins, drop-path and single columns."""

import pytest
import torch

from cnnbook import models
from cnnbook.models.fractalnet import FractalBlock, FractalNet
from cnnbook.summary import count_params


def convs(module: torch.nn.Module) -> list[torch.nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]


@pytest.mark.parametrize("columns", [1, 2, 3, 4])
def test_expansion_rule_gives_2_to_the_c_minus_1_convolutions(columns):
    block = FractalBlock(3, 4, columns)
    assert len(convs(block)) == 2**columns - 1
    x = torch.randn(2, 3, 8, 8)
    paths = block.eval().paths(x)
    assert len(paths) == columns and all(p.shape == (2, 4, 8, 8) for p in paths)
    assert torch.allclose(block(x), torch.stack(paths).mean(0))  # the join is the mean


def test_f2_is_the_mean_of_conv_and_two_stacked_convs():
    block = FractalBlock(3, 4, 2).eval()
    x = torch.randn(2, 3, 6, 6)
    expected = (block.second.conv(block.first.conv(x)) + block.conv(x)) / 2
    assert torch.allclose(block(x), expected, atol=1e-6)


def test_a_single_column_is_a_plain_chain():
    block = FractalBlock(3, 4, 3).eval()
    x = torch.randn(2, 3, 6, 6)
    deepest = block.second.second.conv(block.second.first.conv(block.first.second.conv(block.first.first.conv(x))))
    assert torch.allclose(block(x, column=2), deepest, atol=1e-6)
    assert torch.allclose(block(x, column=0), block.conv(x))


def test_local_drop_path_keeps_at_least_one_input(monkeypatch):
    block = FractalBlock(3, 4, 3).train()
    block.local_drop = 0.999999
    for module in block.modules():
        module.local_drop = 0.999999
    out = block(torch.randn(2, 3, 6, 6))
    assert torch.isfinite(out).all() and out.shape == (2, 4, 6, 6)


def test_global_drop_path_runs_one_column():
    torch.manual_seed(0)
    net = models.create("fractalnet20", width=0.125, blocks=3, drop_path=True).train()
    calls = []
    for block in net.blocks:
        block.conv.register_forward_hook(lambda m, i, o: calls.append(1))
    monkey = net.global_fraction
    net.global_fraction = 1.0
    torch.manual_seed(1)
    net(torch.randn(2, 3, 8, 8))
    assert len(calls) in (0, 3)  # column 0 of every block, or of none
    net.global_fraction = monkey


def test_fractalnet20_shapes_depth_and_parameters():
    net = models.create("fractalnet20")
    assert net.depth() == 20 and net.depth(0) == 5
    widths, previous, expected = (64, 128, 256, 512, 512), 3, 0
    for w in widths:  # per block: 3 convolutions from the input width, 4 at the block's width; BN 2 per conv
        expected += 3 * 9 * previous * w + 4 * 9 * w * w + 7 * 2 * w
        previous = w
    assert count_params(net) == expected + 512 * 10 + 10
    assert len(convs(net)) == 5 * 7
    x = torch.randn(2, 3, 32, 32)
    for block, width, size in zip(net.blocks, widths, (16, 8, 4, 2, 1)):
        x = net.pool(block(x))
        assert x.shape == (2, width, size, size)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="local_drop"):
        FractalNet(local_drop=1.5)
    with pytest.raises(ValueError, match="32x32"):
        FractalNet(input_size=28)
    with pytest.raises(ValueError, match="columns 0 to 2"):
        models.create("fractalnet20", blocks=2, width=0.1)(torch.randn(1, 3, 4, 4), column=3)
    with pytest.raises(ValueError, match="at least one column"):
        FractalBlock(3, 4, 0)


def test_a_join_of_one_input_passes_it_through_and_joins_average():
    block = FractalBlock(3, 4, 2).train()
    block.local_drop = 0.5
    x = torch.randn(2, 4, 5, 5)
    assert block.join([x]) is x and block.join([None, x]) is x
    y = torch.randn(2, 4, 5, 5)
    assert torch.allclose(block.eval().join([x, y]), (x + y) / 2)
