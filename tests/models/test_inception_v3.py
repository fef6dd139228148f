"""Inception-v2 and -v3 (Szegedy et al. 2016): stages, torchvision's count block by block, the v2 -> v3 steps."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnbook import models
from cnnbook.models.googlenet import scaled
from cnnbook.models.inception_v3 import TF_BATCHNORM_EPS
from cnnbook.summary import count_params, output_shapes

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
    shapes, (logits, aux) = output_shapes(model, torch.randn(2, 3, 299, 299), STAGES)
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


def test_same_function_as_torchvision_with_its_weights(randomise_batchnorm_statistics) -> None:
    """torchvision's weights, copied in order, give torchvision's logits: the same layers, order and epsilon."""
    torch.manual_seed(0)
    theirs = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False).double().eval()
    randomise_batchnorm_statistics(theirs)
    ours = models.create("inception_v3", aux_logits=False).double().eval()
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values())))
    x = torch.randn(1, 3, 139, 139, dtype=torch.float64)  # the smallest input whose last grid is 3x3, not 1x1
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-10, atol=1e-10)


def test_batchnorm_uses_tensorflows_epsilon() -> None:
    with torch.device("meta"):
        for name in ["inception_v2", "inception_v3", "inception_v3_cifar"]:
            norms = [m for m in models.create(name).modules() if isinstance(m, nn.BatchNorm2d)]
            assert norms and all(m.eps == TF_BATCHNORM_EPS == 1e-3 for m in norms), name


# inception_v3_cifar at 32x32: each stage's (channels, side) at width 1 (the grids of 35, 17 and 8 become 32, 15, 7).
CIFAR_STAGES = {
    "stem": (192, 32),
    "grid35": (288, 32),
    "reduction17": (768, 15),
    "grid17": (768, 15),
    "reduction8": (1280, 7),
    "grid8": (2048, 7),
}


@pytest.mark.parametrize("width", [1.0, 0.25])
@torch.no_grad()
def test_cifar_stage_shapes(width: float) -> None:
    model = models.create("inception_v3_cifar", width=width).eval()
    shapes, out = output_shapes(model, torch.randn(1, 3, 32, 32), CIFAR_STAGES)
    # At width 0.25 every branch width is a multiple of 4, so each stage has exactly a quarter of the channels.
    assert shapes == {stage: (1, round(c * width), s, s) for stage, (c, s) in CIFAR_STAGES.items()}
    assert out.shape == (1, 10)


def conv(c_in: int, c_out: int, k: int) -> int:
    """A k x k convolution followed by BatchNorm: weights plus BatchNorm's scale and shift."""
    return c_in * c_out * k * k + 2 * c_out


def test_cifar_member_is_inception_v3_with_another_stem() -> None:
    """The same modules as inception_v3, parameter for parameter; only the stem and the 10-class head differ."""
    with torch.device("meta"):
        cifar = models.create("inception_v3_cifar")
        imagenet = models.create("inception_v3", aux_logits=False)
        narrow = models.create("inception_v3_cifar", width=0.25)
    for stage in ["grid35", "reduction17", "grid17", "reduction8", "grid8"]:
        assert count_params(getattr(cifar, stage)) == count_params(getattr(imagenet, stage)), stage
    cifar_stem = conv(3, 32, 3) + conv(32, 64, 3) + conv(64, 192, 3)  # three 3x3 convs at 32x32: 130,464
    imagenet_stem = conv(3, 32, 3) + conv(32, 32, 3) + conv(32, 64, 3) + conv(64, 80, 1) + conv(80, 192, 3)
    assert count_params(cifar.stem) == cifar_stem and count_params(imagenet.stem) == imagenet_stem
    head_difference = 2048 * (10 - 1000) + (10 - 1000)
    assert count_params(cifar) == count_params(imagenet) - imagenet_stem + cifar_stem + head_difference == 21_763_850
    # width scales every convolution (the auxiliary classifier's too) and the parameters by about 1/16.
    with torch.device("meta"):
        full_aux, narrow_aux = (models.create("inception_v3_cifar", aux_logits=True, width=w) for w in (1.0, 0.25))
    widths = [[m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)] for net in (full_aux, narrow_aux)]
    assert [scaled(c, 0.25) for c in widths[0]] == widths[1]
    assert count_params(narrow) == 1_370_666


def test_cifar_auxiliary_classifier_on_the_15x15_grid() -> None:
    model = models.create("inception_v3_cifar", aux_logits=True, width=0.25).train()
    assert model.aux.fc[0].kernel_size == (4, 4), "the 5x5/3 pool turns the 15x15 grid into 4x4"
    assert (model.aux.conv[0].out_channels, model.aux.fc[0].out_channels) == (32, 192)  # 128 and 768, times 0.25
    logits, aux = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)
    (logits.logsumexp(1) + 0.4 * aux.logsumexp(1)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10), "eval mode returns the logits only"


@pytest.mark.parametrize(
    ("aux_logits", "shape", "train", "message"),
    [
        (False, (1, 3, 6, 6), False, "at least 7x7"),  # the stem keeps the size, the two reductions need 7x7
        (True, (2, 3, 16, 16), True, "at least 32x32"),  # the auxiliary head's convolution was built for 32x32
        (False, (1, 1, 32, 32), False, "3 input channel"),
    ],
)
def test_cifar_wrong_input_raises_clear_error(aux_logits: bool, shape: tuple[int, ...], train: bool, message: str):
    model = models.create("inception_v3_cifar", aux_logits=aux_logits, width=0.25).train(train)
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(shape))
