"""Deeply-fused nets (Wang et al. 2016): fused blocks, shapes, and ResNet as the identity special case."""

import pytest
import torch

from cnnbook import models
from cnnbook.models.deeply_fused import DeeplyFusedNet, FusedBlock, load_in_order
from cnnbook.summary import count_params


def test_a_fused_block_sums_both_pieces():
    block = FusedBlock(4, 4, deep_layers=2).eval()
    x = torch.randn(2, 4, 8, 8)
    assert torch.allclose(block(x), torch.relu(block.deep(x) + block.shallow(x)))


def test_shapes_per_stage_and_parameters():
    net = models.create("dfn_cifar")
    x = net.stem(torch.randn(2, 3, 32, 32))
    for stage, shape in zip(net.stages, [(16, 32, 32), (32, 16, 16), (64, 8, 8)]):
        x = stage(x)
        assert x.shape == (2, *shape)
    resnet20_b = count_params(models.create("resnet20", shortcut="B"))
    shallow_convs = 9 * (16 * 16 * 3 + 16 * 32 + 32 * 32 * 2 + 32 * 64 + 64 * 64 * 2) + 2 * (16 * 3 + 32 * 3 + 64 * 3)
    projections = 16 * 32 + 32 * 64 + 2 * (32 + 64)
    assert count_params(net) == resnet20_b - projections + shallow_convs


def test_identity_shallow_network_is_resnet20_with_projection_shortcuts():
    resnet = models.create("resnet20", shortcut="B", seed=0).eval()
    fused = load_in_order(models.create("dfn_cifar", shallow="identity"), resnet).eval()
    assert count_params(fused) == count_params(resnet)
    x = torch.randn(3, 3, 32, 32)
    assert torch.equal(fused(x), resnet(x))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="shallow='none'"):
        FusedBlock(4, 4, shallow="none")
    with pytest.raises(ValueError, match="deep_layers"):
        FusedBlock(4, 4, deep_layers=0)
    with pytest.raises(ValueError, match="blocks"):
        DeeplyFusedNet(blocks=0)
    with pytest.raises(ValueError, match="state entries"):
        load_in_order(models.create("dfn_cifar"), models.create("resnet20"))
