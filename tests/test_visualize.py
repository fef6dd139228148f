"""The visualisation toolkit, checked against Captum and against answers worked out by hand."""

from __future__ import annotations

import copy
import math

import matplotlib

matplotlib.use("Agg")  # headless, as in CI and the book build

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from captum.attr import Deconvolution, Occlusion  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from cnnbook import models  # noqa: E402
from cnnbook import visualize as vis  # noqa: E402


def small_net() -> nn.Sequential:
    """A ZFNet-like chain with what makes the deconvnet tricky: a strided conv, overlapping ceil-mode pooling."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 5, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),  # 20 -> 9 -> 4
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.5),
        nn.Conv2d(8, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),  # 4 -> 2
    ).double()  # fmt: skip


def zfnet_without_lrn() -> nn.Module:
    """zfnet_cifar with its two LRNs replaced by identities: Captum differentiates LRN, the deconvnet skips it."""
    torch.manual_seed(0)
    model = models.create("zfnet_cifar", hidden=16).double()
    model.features.layer1[3] = nn.Identity()
    model.features.layer2[3] = nn.Identity()
    return model


def captum_deconvolution(model: nn.Module, x: torch.Tensor, layer: nn.Module, mask: torch.Tensor) -> torch.Tensor:
    """Captum's Deconvolution of 1/2 ||mask * layer output||^2, whose gradient at the layer is the masked map.

    Captum runs the ordinary backward pass but replaces ReLU's backward by a
    ReLU of the incoming gradient; max pooling's backward is unpooling with
    the switches and a convolution's is the transposed convolution.
    """
    chain = copy.deepcopy(nn.Sequential(*vis.layers_up_to(model, layer)))
    for module in chain.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False  # Captum's backward hooks cannot follow in-place ReLUs

    class MaskedEnergy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.chain = chain

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 0.5 * (mask * self.chain(x)).pow(2).flatten(1).sum(dim=1, keepdim=True)

    return Deconvolution(MaskedEnergy().eval()).attribute(x.clone().requires_grad_(), target=0).detach()


def mask_for(maps: torch.Tensor, channel: int, position: str | None) -> torch.Tensor:
    mask = torch.zeros_like(maps)
    if position is None:
        mask[:, channel] = 1
    else:  # the strongest activation of the map in each image, found here independently of the toolkit
        for n in range(len(maps)):
            row, col = divmod(int(maps[n, channel].argmax()), maps.shape[-1])
            mask[n, channel, row, col] = 1
    return mask


@pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")
@pytest.mark.parametrize("position", [None, "max"])
@pytest.mark.parametrize("which", ["small", "zfnet_cifar"])
def test_deconvnet_equals_captum_deconvolution(which, position):
    if which == "small":
        model, x = small_net(), torch.randn(2, 3, 20, 20, dtype=torch.double)
        layers = [model[2], model[8]]  # after the first pooling, and the top
    else:
        model, x = zfnet_without_lrn(), torch.randn(2, 3, 32, 32, dtype=torch.double)
        layers = [model.features.layer2, model.features.layer5]
    for layer in layers:
        maps = nn.Sequential(*vis.layers_up_to(model, layer)).eval()(x.clone())
        channel = int(maps.sum(dim=(0, 2, 3)).argmax())  # a map that is alive
        ours = vis.deconvnet(model, x, layer, channel, position=position)
        theirs = captum_deconvolution(model, x, layer, mask_for(maps.detach(), channel, position))
        assert ours.shape == x.shape
        assert ours.abs().max() > 0
        torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12)


def test_deconvnet_on_zfnet_cifar_with_lrn_has_image_shape_and_stays_in_the_receptive_field():
    torch.manual_seed(0)
    model = models.create("zfnet_cifar", hidden=16)
    x = torch.randn(3, 3, 32, 32)
    layer = model.features.layer2
    out = vis.deconvnet(model, x, layer, channel=5, position="max")
    assert out.shape == (3, 3, 32, 32)
    # One unit's projection lives inside what that unit sees.
    field = vis.receptive_field(vis.layers_up_to(model, layer))
    assert field == (17, 4, -5)
    maps = vis.top_activations(model, layer, x[:1], [5], k=1)[5]
    row, col = maps.position[0].tolist()
    inside = torch.zeros(32, 32, dtype=torch.bool)
    top, left = field.offset + row * field.stride, field.offset + col * field.stride
    inside[max(top, 0) : top + field.size, max(left, 0) : left + field.size] = True
    assert out[0, :, inside].abs().sum() > 0
    assert out[0, :, ~inside].abs().max() == 0


def test_deconvnet_of_one_first_layer_unit_is_its_filter_scaled_by_its_activation():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 5, stride=2)
    model = nn.Sequential(conv, nn.ReLU())
    x = torch.randn(1, 3, 15, 15)
    position = torch.tensor([[2, 3]])
    out = vis.deconvnet(model, x, model[1], channel=1, position=position)
    activation = F.relu(conv(x))[0, 1, 2, 3].detach()
    expected = torch.zeros(3, 15, 15)
    expected[:, 4:9, 6:11] = activation * conv.weight[1].detach()  # rows 2*2.., columns 2*3..
    torch.testing.assert_close(out[0], expected)


def test_deconvnet_and_layers_up_to_explain_what_they_cannot_do():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    with pytest.raises(ValueError, match="BatchNorm2d"):
        vis.deconvnet(model, torch.randn(1, 3, 8, 8), model[2], 0)
    with pytest.raises(ValueError, match="not part of the model's chain"):
        vis.layers_up_to(model, nn.ReLU())
    with pytest.raises(ValueError, match="plain chain"):
        vis.layers_up_to(models.create("resnet20"), nn.ReLU())

    class Branches(nn.Module):  # e.g. an Inception module inside a Sequential: not a chain
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 3, padding=1)

    branchy = nn.Sequential(Branches(), nn.ReLU())
    with pytest.raises(ValueError, match=r"plain chain.*Branches"):
        vis.layers_up_to(branchy, branchy[1])
    with pytest.raises(ValueError, match="channel 9"):
        vis.deconvnet(model[:1], torch.randn(1, 3, 8, 8), model[0], 9)


# ---------------------------------------------------------------- receptive fields


def test_receptive_field_of_stacked_convs_and_alexnet():
    def convs(n: int) -> list[nn.Module]:
        return [nn.Conv2d(1, 1, 3, padding=1) for _ in range(n)]

    assert vis.receptive_field(convs(2)).size == 5
    assert vis.receptive_field(convs(3)) == (7, 1, -3)
    alexnet = models.create("alexnet", hidden=8)
    assert vis.receptive_field(vis.layers_up_to(alexnet, alexnet.features.conv1)) == (11, 4, 0)
    assert vis.receptive_field(vis.layers_up_to(alexnet, alexnet.features.pool2)) == (67, 16, -16)
    assert vis.receptive_field(vis.layers_up_to(alexnet, alexnet.features.pool5)) == (195, 32, -64)
    zfnet = models.create("zfnet", hidden=8)
    assert vis.receptive_field(vis.layers_up_to(zfnet, zfnet.features.layer1[0])) == (7, 2, -1)


def test_receptive_field_patch_is_cut_at_the_image_edges():
    image = torch.arange(100.0).view(1, 10, 10)
    field = vis.ReceptiveField(size=5, stride=2, offset=-1)
    assert torch.equal(vis.receptive_field_patch(image, field, (2, 1)), image[:, 3:8, 1:6])
    assert vis.receptive_field_patch(image, field, (0, 0)).shape == (1, 4, 4)
    assert vis.receptive_field_patch(image, field, (4, 4)).shape == (1, 3, 3)


# ---------------------------------------------------------------- top activations


def test_top_activations_rank_images_by_their_strongest_position():
    images = torch.zeros(5, 2, 4, 4)
    for n, (value, row, col) in enumerate([(3, 0, 1), (9, 2, 2), (1, 3, 3), (7, 1, 0), (5, 0, 0)]):
        images[n, 0, row, col] = value
        images[n, 1, 3 - row, col] = 10 - value
    images[2, 0, 0, 0] = 0.5  # a weaker second activation does not count twice
    model = nn.Sequential(nn.Identity())
    top = vis.top_activations(model, model[0], images, channels=[0, 1], k=3, batch_size=2)
    assert top[0].index.tolist() == [1, 3, 4]
    assert top[0].value.tolist() == [9, 7, 5]
    assert top[0].position.tolist() == [[2, 2], [1, 0], [0, 0]]
    assert top[1].index.tolist() == [2, 0, 4]
    assert top[1].position.tolist() == [[0, 3], [3, 1], [3, 0]]
    # An iterable of (x, y) batches counts images in order, like the tensor.
    loader = [(images[:3], None), (images[3:], None)]
    assert vis.top_activations(model, model[0], loader, [0], k=3)[0].index.tolist() == [1, 3, 4]


# ---------------------------------------------------------------- occlusion


def linear_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 1), nn.Flatten(), nn.Linear(3 * 12 * 12, 4))


def test_occlusion_of_a_linear_model_removes_the_windows_contribution():
    model, image = linear_net(), torch.randn(2, 12, 12)
    maps = vis.occlusion(model, image, target=2, window=4, stride=4, layer=model[0], channel=1)
    assert maps.probability.shape == maps.label.shape == maps.activation.shape == (3, 3)
    conv, linear = model[0], model[2]
    v = conv.weight.detach()[:, :, 0, 0]  # 3 x 2
    per_pixel = torch.einsum("kc,chw->khw", v, image)  # each pixel's contribution to each map (bias aside)
    w = linear.weight.detach().view(4, 3, 12, 12)
    logits = model(image[None])[0].detach()
    total = conv(image[None])[0, 1].sum().detach()
    for i in range(3):
        for j in range(3):
            window = (slice(None), slice(4 * i, 4 * i + 4), slice(4 * j, 4 * j + 4))
            occluded_logits = logits - torch.einsum("tkhw,khw->t", w[window[:1] + window], per_pixel[window])
            probs = occluded_logits.softmax(dim=0)
            assert maps.probability[i, j] == pytest.approx(probs[2].item(), rel=1e-5)
            assert maps.label[i, j] == probs.argmax()
            occluded_total = total - per_pixel[window][1].sum()
            assert maps.activation[i, j] == pytest.approx(occluded_total.item(), rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("window,stride", [(4, 4), (6, 3)])
def test_occlusion_agrees_with_captum(window, stride):
    """Captum gives each pixel f(x) - f(occluded), averaged over the windows that cover it."""
    model, image, fill = linear_net().double(), torch.randn(2, 12, 12, dtype=torch.double), 0.3
    maps = vis.occlusion(model, image, target=1, window=window, stride=stride, fill=fill, layer=model[0], channel=2)

    def spread(per_window: torch.Tensor) -> torch.Tensor:
        """Each window's value averaged onto the pixels it covers."""
        box = torch.ones(1, 1, window, window, dtype=torch.double)
        total = F.conv_transpose2d(per_window[None, None], box, stride=stride)[0, 0]
        count = F.conv_transpose2d(torch.ones_like(per_window)[None, None], box, stride=stride)[0, 0]
        return total / count

    captum = Occlusion(lambda x: model(x).softmax(dim=1)).attribute(
        image[None], sliding_window_shapes=(2, window, window), strides=(2, stride, stride), baselines=fill, target=1
    )[0, 0]
    p = model(image[None]).softmax(dim=1)[0, 1].detach()
    torch.testing.assert_close(spread(p - maps.probability.double()).float(), captum.float())  # both float32
    activation = Occlusion(lambda x: model[0](x)[:, 2].sum(dim=(1, 2))).attribute(
        image[None], sliding_window_shapes=(2, window, window), strides=(2, stride, stride), baselines=fill
    )[0, 0]
    a = model[0](image[None])[0, 2].sum().detach()
    torch.testing.assert_close(spread(a - maps.activation.double()).float(), activation.float())


def test_occlusion_picks_the_strongest_map_and_rejects_a_window_that_does_not_fit():
    model, image = linear_net(), torch.randn(2, 12, 12)
    maps = vis.occlusion(model, image, target=0, layer=model[0])
    assert maps.channel == int(model[0](image[None])[0].sum(dim=(1, 2)).argmax())
    with pytest.raises(ValueError, match="does not fit"):
        vis.occlusion(model, image, target=0, window=13)


# ---------------------------------------------------------------- class activation maps


class GapLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(6, 4))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def test_class_activation_map_of_gap_linear_head_averages_to_the_logit():
    torch.manual_seed(0)
    model, x = GapLinear(), torch.randn(2, 3, 7, 7)
    cam = vis.class_activation_map(model, x, class_idx=torch.tensor([1, 3]))
    assert cam.shape == (2, 7, 7)
    model.eval()
    logits = model(x).detach()
    bias = model.head[3].bias.detach()
    torch.testing.assert_close(cam.mean(dim=(1, 2)), torch.stack([logits[0, 1] - bias[1], logits[1, 3] - bias[3]]))
    features = model.forward_features(x).detach()
    torch.testing.assert_close(cam[0], torch.einsum("k,khw->hw", model.head[3].weight[1].detach(), features[0]))
    assert vis.class_activation_map(model, x, 2, size=(14, 14)).shape == (2, 14, 14)


def test_class_activation_map_of_nin_is_its_class_map_and_needs_a_gap_head():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    nin = models.create("nin_cifar")
    cam = vis.class_activation_map(nin, x, class_idx=7)
    nin.eval()
    torch.testing.assert_close(cam, nin.forward_features(x)[:, 7].detach())
    with pytest.raises(ValueError, match="not global average pooling"):
        vis.class_activation_map(models.create("nin_cifar", head="fc"), x, class_idx=7)


# ---------------------------------------------------------------- filter spectra


def test_high_frequency_share_separates_noise_from_smooth_filters():
    torch.manual_seed(0)
    grid = torch.arange(7.0) - 3
    gaussian = torch.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * 1.5**2))
    smooth = gaussian.expand(4, 3, 7, 7) * torch.randn(4, 3, 1, 1)
    noise = torch.randn(4, 3, 7, 7)
    assert vis.high_frequency_share(smooth).max() < 0.05 < 0.4 < vis.high_frequency_share(noise).min()
    assert vis.high_frequency_share(torch.ones(2, 3, 7, 7)).tolist() == [0.0, 0.0]  # dead filters: no energy
    spectrum = vis.filter_spectrum(smooth)
    assert spectrum.shape == (7, 7)
    assert spectrum[3, 3] < 1e-6  # zero frequency at the centre, removed with the mean
    assert spectrum[3, 4] > spectrum[3, 6]  # the lowest frequency beats the highest for a smooth filter


def test_high_frequency_share_of_a_grating_depends_on_the_cutoff():
    columns = torch.arange(10.0)  # 3 whole periods: no leakage
    grating = torch.cos(2 * math.pi * 0.3 * columns).expand(1, 1, 10, 10)  # 0.3 cycles per pixel
    assert vis.high_frequency_share(grating, cutoff=0.25).item() == pytest.approx(1.0)
    assert vis.high_frequency_share(grating, cutoff=0.35).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="cutoff=0.8"):
        vis.high_frequency_share(grating, cutoff=0.8)
    with pytest.raises(ValueError, match="out x in x kh x kw"):
        vis.high_frequency_share(torch.randn(7, 7))


def test_zero_padding_puts_filters_of_two_sizes_on_one_grid():
    """White-noise filters have a flat spectrum whatever their size; on their own coarse grids a 7x7 and
    an 11x11 filter get different mid-band shares, on one padded grid the same."""
    torch.manual_seed(0)
    small, large = torch.randn(400, 3, 7, 7), torch.randn(400, 3, 11, 11)

    def mid(weight, size=None):
        high = vis.high_frequency_share(weight, 1 / 4, size=size)
        return (vis.high_frequency_share(weight, 1 / 8, size=size) - high).mean().item()

    assert abs(mid(small) - mid(large)) > 0.03  # the grids differ
    assert abs(mid(small, 64) - mid(large, 64)) < 0.01  # one grid
    assert vis.filter_spectrum(small, size=32).shape == (32, 32)
    with pytest.raises(ValueError, match="size=5 is smaller"):
        vis.high_frequency_share(large, size=5)


def test_dead_filters_are_small_against_the_layers_median():
    torch.manual_seed(0)
    weight = torch.randn(10, 3, 7, 7)
    weight[[2, 5]] *= 0.05  # two filters that stayed small
    weight[7] *= 0.5  # smaller, but not dead
    rms = vis.filter_rms(weight)
    assert rms.shape == (10,)
    torch.testing.assert_close(rms[0], weight[0].pow(2).mean().sqrt())
    assert vis.dead_filters(weight).nonzero().flatten().tolist() == [2, 5]
    assert vis.dead_filters(weight, fraction=0.6).nonzero().flatten().tolist() == [2, 5, 7]
    assert vis.dead_filters(10 * weight).equal(vis.dead_filters(weight))  # the scale does not matter
    with pytest.raises(ValueError, match="fraction=1.5"):
        vis.dead_filters(weight, fraction=1.5)
    with pytest.raises(ValueError, match="out x in x kh x kw"):
        vis.filter_rms(weight[0])


# ---------------------------------------------------------------- figures


def images_in(fig: Figure) -> list:
    return [image for ax in fig.axes for image in ax.get_images()]


def test_figures_have_one_picture_per_patch_epoch_and_panel():
    torch.manual_seed(0)
    model = models.create("zfnet_cifar", hidden=16)
    images = torch.randn(12, 3, 32, 32)
    layer = model.features.layer2
    fig = vis.plot_top_patches(model, layer, images, channels=[0, 3], k=4, denormalize=lambda x: x * 0.25 + 0.5)
    assert isinstance(fig, Figure) and len(images_in(fig)) == 2 * 2 * 4
    snapshot = vis.snapshot_maps(model, layer, images, channels=[0, 3, 5])
    assert snapshot.shape == (3, 3, 32, 32)
    fig = vis.plot_feature_evolution({1: snapshot, 2: snapshot, 5: snapshot})
    assert len(images_in(fig)) == 9
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["epoch 1", "epoch 2", "epoch 5"]
    maps = vis.occlusion(model, images[0], target=3, window=8, stride=8, layer=layer)
    fig = vis.plot_occlusion(images[0], maps, classes=[f"c{i}" for i in range(10)])
    assert len(images_in(fig)) == 4
    fig = vis.plot_filter_spectra({"7x7/2": torch.randn(8, 3, 7, 7), "11x11/4": torch.randn(8, 3, 11, 11)})
    assert len(images_in(fig)) == 2
