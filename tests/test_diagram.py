"""Diagrams drawn from the models: what they draw agrees with what runs (forward hooks) and with cnnbook.summary."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections import Counter

import pytest
import torch
from torch import nn

from cnnbook import diagram, models, summary

SVG = "{http://www.w3.org/2000/svg}"


def build(name: str) -> nn.Module:
    """A zoo model as ``draw`` builds it: ImageNet-size ones on the meta device, CIFAR-size ones on the CPU."""
    with torch.device("meta") if min(models.spec(name).input_size[1:]) > 64 else contextlib.nullcontext():
        return models.create(name)


def boxes_by_hooks(model: nn.Module, input_size: tuple[int, ...], depth: int) -> Counter:
    """(path, output shape) of every module call that is a box at ``depth``, counted with forward hooks.

    A call is a box when it is at ``depth`` (a closed block or a layer), or
    above it with no module calls inside (a layer): the rule of the module
    docstring, computed here independently of the diagram code.
    """
    paths = {id(m): path for path, m in model.named_modules()}
    stack: list[dict] = []
    calls: list[dict] = []

    def pre(module, args):
        call = dict(path=paths[id(module)], depth=len(stack), leaf=True)
        if stack:
            stack[-1]["leaf"] = False
        stack.append(call)
        calls.append(call)

    def post(module, args, output):
        # A module that returns several tensors shows the first one's shape, as the diagram does.
        first = output[0] if isinstance(output, (tuple, list)) else output
        stack.pop()["shape"] = tuple(first.shape[1:])

    handles = [h for m in model.modules() for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=next(model.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
    return Counter(
        (c["path"], c["shape"])
        for c in calls
        if c["depth"] == depth or (1 <= c["depth"] < depth and c["leaf"])
    )


def drawn_modules(drawn: diagram.Diagram) -> Counter:
    return Counter((layer.name, layer.output_shape) for layer in drawn.layers if layer.module is not None)


def svg_nodes(svg: str) -> list[str]:
    """The titles of the SVG's node groups (Graphviz writes the node's name as its <title>), the legend left out."""
    root = ET.fromstring(svg)
    titles = [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    return [t for t in titles if t != "legend"]


@pytest.mark.parametrize("name", models.names())
def test_every_model_draws_the_layers_that_run(name):
    model = build(name)
    input_size = models.spec(name).input_size
    drawn = diagram.draw(model, input_size)
    assert len(svg_nodes(drawn.svg)) == len(drawn.nodes)
    assert drawn_modules(drawn) == boxes_by_hooks(model, input_size, drawn.depth)
    assert [n.kind for n in drawn.nodes].count("input") == 1
    assert drawn.nodes[-1].kind == "output" and drawn.nodes[-1].output_shape == (models.spec(name).num_classes,)
    # Every edge joins two drawn boxes, and every box but the input has one coming in.
    assert all(0 <= a < len(drawn.nodes) and 0 <= b < len(drawn.nodes) for a, b in drawn.edges)
    assert {b for _, b in drawn.edges} == set(range(len(drawn.nodes))) - {0}


SMALL = ["lenet5", "alexnet_cifar", "nin_cifar", "vgg11_bn_cifar", "resnet20", "densenet40_k12"]


@pytest.mark.parametrize("name", SMALL)
def test_full_depth_draws_every_leaf_module_that_runs_with_its_shape(name):
    model = build(name)
    input_size = models.spec(name).input_size
    drawn = diagram.draw(model, input_size, depth=50)
    leaves = boxes_by_hooks(model, input_size, depth=50)
    assert drawn_modules(drawn) == leaves
    assert not any(layer.kind == "block" for layer in drawn.layers)


def test_draw_by_name_builds_the_registered_model():
    by_name = diagram.draw("resnet20", depth=3)
    by_module = diagram.draw(models.create("resnet20"), (3, 32, 32), depth=3)
    assert by_name.source == by_module.source
    assert by_name.input_size == (3, 32, 32) and by_name.title == "resnet20"


class TwoBranches(nn.Module):
    """Two convolutions on the same input, concatenated: the Inception pattern."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 6, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], dim=1)


class Residual(nn.Module):
    """x + f(x), the residual unit's addition."""

    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


class IdentityShortcut(nn.Module):
    """ResNet's unit: identities that return their input object must not chain the paths together."""

    def __init__(self) -> None:
        super().__init__()
        self.preact, self.shortcut, self.branch = nn.Identity(), nn.Identity(), nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.preact(x)
        return self.shortcut(x) + self.branch(pre)


def graph(drawn: diagram.Diagram) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    nodes = [(n.name, n.kind) for n in drawn.nodes]
    return nodes, {(drawn.nodes[a].name, drawn.nodes[b].name) for a, b in drawn.edges}


def test_two_branches_and_their_concatenation():
    drawn = diagram.draw(TwoBranches(), (3, 8, 8))
    nodes, edges = graph(drawn)
    assert sorted(nodes) == sorted(
        [("input", "input"), ("a", "convolution"), ("b", "convolution"), ("cat", "merge"), ("output", "output")]
    )
    assert edges == {("input", "a"), ("input", "b"), ("a", "cat"), ("b", "cat"), ("cat", "output")}
    assert [n.output_shape for n in drawn.nodes if n.name == "cat"] == [(10, 8, 8)]
    assert len(drawn.edges) == 5


def test_residual_addition_takes_the_input_and_the_branch():
    nodes, edges = graph(diagram.draw(Residual(), (3, 8, 8)))
    assert sorted(nodes) == sorted([("input", "input"), ("f", "convolution"), ("add", "merge"), ("output", "output")])
    assert edges == {("input", "f"), ("input", "add"), ("f", "add"), ("add", "output")}


def test_identity_modules_keep_the_shortcut_and_the_branch_apart():
    nodes, edges = graph(diagram.draw(IdentityShortcut(), (3, 8, 8)))
    assert edges == {
        ("input", "preact"), ("input", "shortcut"), ("preact", "branch"),
        ("shortcut", "add"), ("branch", "add"), ("add", "output"),
    }  # fmt: skip


def inception_depth(googlenet: nn.Module) -> int:
    """The depth at which GoogLeNet's Inception modules (``Concat``) are boxes of their own."""
    drawings = (diagram.draw(googlenet, (3, 224, 224), depth) for depth in range(1, 5))
    return next(d.depth for d in drawings if any(layer.type == "Concat" for layer in d.layers))


def test_depth_opens_the_inception_modules_into_four_branches_and_their_cat():
    model = build("googlenet")
    concats = [path for path, m in model.named_modules() if type(m).__name__ == "Concat"]
    assert len(concats) == 9
    depth = inception_depth(model)
    closed = diagram.draw(model, (3, 224, 224), depth)
    opened = diagram.draw(model, (3, 224, 224), depth + 1)
    assert sorted(l.name for l in closed.layers if l.type == "Concat") == sorted(concats)
    assert all(l.kind == "block" for l in closed.layers if l.type == "Concat")
    for path in concats:
        inside = [l for l in opened.layers if l.name.startswith(path + ".")]
        assert sorted(l.name for l in inside) == sorted(f"{path}.{i}" for i in ["0", "1", "2", "3", "cat"])
        assert [l.kind for l in inside if l.name.endswith(".cat")] == ["merge"]
    # Each closed module (1 box) became 4 branches + cat; the dashed frame names it.
    assert len([l for l in opened.layers if l.type == "cat"]) == 9
    assert "(Concat)" in opened.source and "(Concat)" not in closed.source


def test_depth_zero_is_one_box_and_depth_none_fits_max_boxes():
    whole = diagram.draw("resnet20", depth=0)
    assert [(l.name, l.kind) for l in whole.layers] == [("ResNet", "block")]
    auto = diagram.draw("resnet20", max_boxes=20)
    deeper = diagram.draw("resnet20", depth=auto.depth + 1)

    def module_boxes(d):
        return sum(layer.module is not None for layer in d.layers)

    assert module_boxes(auto) <= 20 < module_boxes(deeper)


@pytest.mark.parametrize(
    "name, depth", [("lenet5", 0), ("lenet5", 50), ("googlenet", 1), ("googlenet", 3), ("resnet20", 2),
                    ("densenet40_k12", 3), ("vgg11_bn", None), ("inception_v4", 2)],
)  # fmt: skip
def test_layer_table_totals_are_summarys_counts(name, depth):
    model = build(name)
    input_size = models.spec(name).input_size
    table = diagram.draw(model, input_size, depth).table()
    assert table.params == summary.count_params(model)
    assert table.macs == summary.count_macs(model, input_size)
    assert str(table).splitlines()[-1].split()[1:] == [f"{table.params:,}", f"{table.macs:,}"]
    assert "<table>" in table._repr_html_()


def test_layer_table_names_the_parameters_that_are_in_no_box():
    googlenet = build("googlenet")  # its auxiliary classifiers only run in training
    rows = {row[0]: row[3] for row in diagram.draw(googlenet, (3, 224, 224), 1).table().rows}
    aux = [name for name, _ in googlenet.named_children() if name.startswith("aux")]
    assert aux
    assert all(rows[f"(not run: {name})"] == summary.count_params(googlenet.get_submodule(name)) for name in aux)

    class Scaled(nn.Module):  # a parameter of an opened block itself, used outside its children
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.scale = nn.Conv2d(3, 3, 1), nn.Parameter(torch.ones(3, 1, 1))

        def forward(self, x):
            return self.conv(x) * self.scale

    table = diagram.draw(Scaled(), (3, 4, 4), depth=1).table()
    assert table.rows[-1][0] == "(elsewhere)" and table.rows[-1][3] == 3
    assert table.params == 3 * 3 + 3 + 3


def test_the_drawn_model_is_left_as_it_was():
    model = models.create("lenet5").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    drawn = diagram.draw(model, (1, 32, 32))
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) and v.device.type == "cpu" for k, v in model.state_dict().items())
    assert not model._forward_hooks and not model._forward_pre_hooks
    assert nn.Module.__call__.__name__ == "_wrapped_call_impl"  # torchview's recorder is gone
    assert drawn.layers[0].module is model.get_submodule(drawn.layers[0].name)


def test_errors_say_what_is_expected():
    with pytest.raises(ValueError, match="Did you mean: lenet5"):
        diagram.draw("lenet")
    with pytest.raises(TypeError, match="nn.Module or a model name"):
        diagram.draw(3)
    with pytest.raises(ValueError, match=r"lenet5 takes 1×32×32 images .* input of size 1×28×28"):
        diagram.draw("lenet5", input_size=(1, 28, 28))
    with pytest.raises(ValueError, match=r"Conv2d .*input of size 1×28×28"):
        diagram.draw(nn.Conv2d(3, 8, 3), (1, 28, 28))
    with pytest.raises(ValueError, match="needs input_size"):
        diagram.draw(nn.Conv2d(3, 8, 3))
    with pytest.raises(ValueError, match="positive ints"):
        diagram.draw("lenet5", input_size=(1, 0, 32))
    with pytest.raises(ValueError, match="depth must be 0 or more"):
        diagram.draw("lenet5", depth=-1)
    with pytest.raises(TypeError, match="depth must be an int"):
        diagram.draw("lenet5", depth=1.5)


def test_save_writes_the_format_of_the_suffix(tmp_path):
    drawn = diagram.draw("lenet5")
    assert drawn._repr_svg_() == drawn.svg
    assert ET.fromstring(drawn.save(tmp_path / "net.svg").read_text(encoding="utf-8")).tag == f"{SVG}svg"
    assert drawn.save(tmp_path / "net.png").read_bytes()[:4] == b"\x89PNG"
    assert drawn.save(tmp_path / "net.dot").read_text() == drawn.source
    with pytest.raises(ValueError, match="cannot save a diagram as 'net.txt'"):
        drawn.save(tmp_path / "net.txt")


def test_missing_graphviz_says_how_to_install_it(monkeypatch):
    drawn = diagram.draw("lenet5")  # drawing needs no dot; rendering does
    monkeypatch.setattr(diagram.shutil, "which", lambda program: None)
    with pytest.raises(FileNotFoundError, match="install Graphviz .*apt-get install graphviz"):
        drawn.svg


def test_boxes_say_what_they_are():
    drawn = diagram.draw("alexnet", depth=2)
    first = drawn.layers[0]
    assert (first.kind, first.description) == ("convolution", "Conv2d 11×11 /4")
    assert {l.kind for l in drawn.layers} >= {"convolution", "pooling", "activation", "fully connected", "dropout"}
    assert all(kind in diagram.KINDS for kind in (l.kind for l in drawn.nodes))
    assert "Conv2d 11×11 /4" in drawn.svg and "96×55×55" in drawn.svg


@pytest.mark.parametrize(
    "layer, text",
    [
        (nn.Conv2d(8, 8, (1, 7), padding=(0, 3)), "Conv2d 1×7"),
        (nn.Conv2d(8, 8, 3, stride=(1, 2), groups=4), "Conv2d 3×3 /1×2, 4 groups"),
        (nn.MaxPool1d(2), "MaxPool1d 2 /2"),
        (nn.AvgPool2d(5, stride=3), "AvgPool2d 5×5 /3"),
        (nn.BatchNorm2d(8), "BatchNorm2d"),
    ],
)
def test_layer_descriptions(layer, text):
    input_size = (8, 16) if isinstance(layer, nn.MaxPool1d) else (8, 16, 16)
    (drawn,) = diagram.draw(nn.Sequential(layer), input_size).layers
    assert drawn.description == text


def test_closed_blocks_say_what_they_hold():
    stages = [l for l in diagram.draw("resnet20", depth=1).layers if l.name.startswith("stages")]
    assert [l.description for l in stages] == ["3 × BasicBlock"] * 3 and {l.kind for l in stages} == {"block"}
    googlenet = build("googlenet")
    path = next(p for p, m in googlenet.named_modules() if type(m).__name__ == "Concat")
    opened = diagram.draw(googlenet, (3, 224, 224), depth=inception_depth(googlenet) + 1)
    branches = {l.name: l.description for l in opened.layers}
    assert branches[f"{path}.1"] == "Conv2d 1×1 → Conv2d 3×3"  # Table 1's "3x3 reduce" then "3x3"
    assert branches[f"{path}.3"] == "MaxPool2d 3×3 → Conv2d 1×1"  # the pool projection


def test_inline_svg_and_diagrams_side_by_side():
    from cnnbook.diagram import side_by_side

    a, b = diagram.draw("lenet5", depth=1), diagram.draw("lenet5_modern", depth=1)
    inline = a.inline()
    assert inline.startswith('<svg class="cnnbook-diagram"') and "<?xml" not in inline
    ET.fromstring(inline)  # still one well-formed SVG element
    row = side_by_side(a, b, titles=("1998", "today"))
    page = row._repr_html_()
    assert page.count('<svg class="cnnbook-diagram"') == 2 and "<strong>1998</strong>" in page
    assert side_by_side(a).titles == (a.title,)
    with pytest.raises(ValueError, match="2 titles for 1 diagrams"):
        side_by_side(a, titles=("x", "y"))
    with pytest.raises(TypeError, match="takes one or more Diagrams"):
        side_by_side("lenet5")
