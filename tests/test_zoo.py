"""Every registered model: it builds, runs forward and backward, and matches its reference count."""

import pytest
import torch

from cnnbook import models

NAMES = models.names()


@pytest.fixture(scope="module", params=NAMES)
def built(request: pytest.FixtureRequest) -> tuple[str, torch.nn.Module]:
    """One registered model, built once for the tests that take it: ``(name, model)``.

    Module-scoped and parametrized, so pytest runs the tests of one name together and
    drops each model before building the next. Only one model is alive at a time: a
    dict of all of them (VGG-19 alone is 575 MB) held 12 GB in a test worker.
    """
    torch.manual_seed(0)
    return request.param, models.create(request.param)


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_the_interface_contract_names_exist():
    contract = (
        "lenet5 alexnet zfnet nin vgg11 vgg11_lrn vgg13 vgg16_1x1 vgg16 vgg19 vgg11_bn vgg13_bn vgg16_bn vgg19_bn "
        "googlenet inception_v2 inception_v3 inception_v4 inception_resnet_v1 inception_resnet_v2 "
        "resnet18 resnet34 resnet50 resnet101 resnet152 preact_resnet18 preact_resnet34 preact_resnet50 "
        "preact_resnet101 preact_resnet152 resnext50_32x4d resnext101_32x8d densenet121 densenet169 densenet201 "
        "densenet161 resnet20 resnet32 resnet44 resnet56 resnet110 resnet1202 preact_resnet110 preact_resnet164 "
        "preact_resnet1001 resnet110_stochastic_depth resnext29_8x64d resnext29_16x64d densenet40_k12 "
        "densenet100_k12 densenet_bc100_k12 densenet_bc250_k24 densenet_bc190_k40 nin_cifar "
        "alexnet_cifar vgg16_bn_cifar googlenet_cifar resnet18_cifar"
    ).split()
    missing = sorted(set(contract) - set(NAMES))
    assert not missing, f"names of COURSE.md's interface contract not registered: {missing}"


def test_parameter_count_matches_the_reference(built):
    name, model = built
    reference = models.spec(name).reference
    if reference is None:
        pytest.skip(f"{name} is not a paper's model (no reference count)")
    ours = trainable(model)
    expected = reference.count() + reference.difference
    assert abs(ours - expected) <= reference.rounded_to // 2, (
        f"{name}: {ours:,} parameters, reference {reference.count():,} ({reference.where})"
        + (f" + declared difference {reference.difference:,} ({reference.why})" if reference.difference else "")
    )
    if reference.difference:
        assert reference.why, f"{name}: a declared difference needs its explanation"


def test_forward_and_backward_on_a_small_batch(built):
    name, model = built
    entry = models.spec(name)
    model.train()
    x = torch.randn(2, *entry.input_size)
    out = model(x)
    logits = out[0] if isinstance(out, (tuple, list)) else out
    assert logits.shape == (2, entry.num_classes)
    loss = sum(o.float().logsumexp(1).mean() for o in (out if isinstance(out, (tuple, list)) else [out]))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    if "stochastic_depth" in name:  # a block dropped for this batch gets no gradient, by design
        grads = [g for g in grads if g is not None]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert grads[0].abs().sum() > 0, "no gradient reaches the first layer"
    model.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        assert model(x[:1]).shape == (1, entry.num_classes)  # eval mode returns the logits alone


@pytest.mark.parametrize("name", NAMES)
def test_num_classes_is_passed_through(name):
    entry = models.spec(name)
    if entry.input_size[1] > 64:
        pytest.skip("checked on the small-input models; the builders share the same num_classes path")
    model = models.create(name, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, *entry.input_size)).shape == (1, 7)


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"unknown model name 'lenet'.*lenet5"):
        models.create("lenet")
    with pytest.raises(ValueError, match="cnnbook list"):
        models.spec("no-such-model")


def test_names_by_family_and_registering_twice():
    assert models.names("lenet") == ["lenet5", "lenet5_modern"]
    assert set(models.names("lenet")) <= set(models.names())
    with pytest.raises(ValueError, match="registered twice"):
        models.register("lenet5")(lambda num_classes=10: torch.nn.Identity())


def test_reference_counts_live_from_a_reference_implementation():
    reference = models.Reference("torchvision", builder="torchvision.models.resnet18")
    assert reference.count() == 11_689_512
    with pytest.raises(ValueError, match="neither"):
        models.Reference("nowhere").count()
