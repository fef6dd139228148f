"""Inception-v2 and -v3 (Szegedy et al. 2016): stages, torchvision's count block by block, the v2 -> v3 steps."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnbook import models
from cnnbook.summary import count_params

# torchvision's inception_v3 warns that its default initialisation will change; the counts do not.
pytestmark = pytest.mark.filterwarnings("ignore:The default weight initialization of inception_v3:FutureWarning")

NAMES = ["inception_v2", "inception_v3"]
# Each stage's (channels, side) at 299x299: the 35x35, 17x17 and 8x8 grids of Table 1.
STAGES = {
    "stem": (192, 35),
    "grid35": (288, 35),
    "reduction17": (768, 17),
    "grid17": (768, 17),
    "reduction8": (1280, 8),
    "grid8": (2048, 8),
}


def test_inception_v3_matches_torchvision_block_by_block() -> None:
    ours = models.create("inception_v3")
    theirs = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    pairs = {
        "stem": [theirs.Conv2d_1a_3x3, theirs.Conv2d_2a_3x3, theirs.Conv2d_2b_3x3, theirs.Conv2d_3b_1x1,
                 theirs.Conv2d_4a_3x3],  # fmt: skip
        "grid35": [theirs.Mixed_5b, theirs.Mixed_5c, theirs.Mixed_5d],
        "reduction17": [theirs.Mixed_6a],
        "grid17": [theirs.Mixed_6b, theirs.Mixed_6c, theirs.Mixed_6d, theirs.Mixed_6e],
        "aux": [theirs.AuxLogits],
        "reduction8": [theirs.Mixed_7a],
        "grid8": [theirs.Mixed_7b, theirs.Mixed_7c],
        "classifier": [theirs.fc],
    }
    for stage, modules in pairs.items():
        assert count_params(getattr(ours, stage)) == sum(count_params(m) for m in modules), stage
    assert count_params(ours) == count_params(theirs) == models.spec("inception_v3").reference.count()


def test_inception_v2_is_v3_minus_table3_steps() -> None:
    v2, v3 = models.create("inception_v2"), models.create("inception_v3")
    reference = models.spec("inception_v2").reference
    assert count_params(v2) - reference.count() == reference.difference
    # "Factorized 7x7": one 7x7/2 conv (weights + BatchNorm) against three 3x3 convs.
    seven = 7 * 7 * 3 * 64 + 2 * 64
    three = 9 * (3 * 32 + 32 * 32 + 32 * 64) + 2 * (32 + 32 + 64)
    # "BN-auxiliary": the auxiliary fully connected layer's BatchNorm (2 x 768) against a bias (768).
    assert reference.difference == (seven - three) + (768 - 2 * 768)
    assert v2.stem[0][0].kernel_size == (7, 7) and v2.stem[0][0].stride == (2, 2)
    assert [m[0].kernel_size for m in v3.stem[:3]] == [(3, 3)] * 3
    assert isinstance(v3.aux.fc[1], nn.BatchNorm2d) and v3.aux.fc[0].bias is None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in v2.aux.fc) and v2.aux.fc[0].bias is not None
    # Everything after the first layers is the same network.
    for stage in ["grid35", "reduction17", "grid17", "reduction8", "grid8", "classifier"]:
        assert count_params(getattr(v2, stage)) == count_params(getattr(v3, stage)), stage


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_stage_shapes_and_auxiliary_output_in_training(name: str) -> None:
    model = models.create(name).train()  # BatchNorm in training mode needs two images at 1x1 (the auxiliary FC)
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        getattr(model, stage).register_forward_hook(lambda m, i, o, s=stage: shapes.__setitem__(s, tuple(o.shape)))
        for stage in STAGES
    ]
    logits, aux = model(torch.randn(2, 3, 299, 299))
    for hook in hooks:
        hook.remove()
    assert shapes == {stage: (2, c, s, s) for stage, (c, s) in STAGES.items()}
    assert logits.shape == aux.shape == (2, 1000)


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_and_eval_output(name: str) -> None:
    # Backward at the smallest input the main path takes (75x75; the auxiliary head needs 299x299),
    # which runs every layer of the main path at a sixteenth of the cost.
    model = models.create(name, aux_logits=False, num_classes=10).train()
    out = model(torch.randn(2, 3, 75, 75))
    assert out.shape == (2, 10)
    out.logsumexp(1).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # The auxiliary head on its own: gradients reach it too.
    with_aux = models.create(name, num_classes=10).train()
    with_aux.aux(torch.randn(2, 768, 17, 17)).sum().backward()
    assert all(p.grad is not None for p in with_aux.aux.parameters())
    with torch.no_grad():
        eval_out = with_aux.eval()(torch.randn(1, 3, 75, 75))
    assert isinstance(eval_out, torch.Tensor) and eval_out.shape == (1, 10), "eval mode returns the logits only"


@pytest.mark.parametrize(
    ("shape", "train", "message"),
    [
        ((1, 3, 64, 64), False, "at least 75x75"),
        ((2, 3, 298, 298), True, "at least 299x299"),  # the auxiliary head in training
        ((1, 1, 299, 299), False, "3 input channel"),
        ((3, 299, 299), False, "batch"),
    ],
)
def test_wrong_input_raises_clear_error(shape: tuple[int, ...], train: bool, message: str) -> None:
    model = models.create("inception_v3").train(train)
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(shape))
