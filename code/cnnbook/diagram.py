"""Network diagrams drawn from the model itself, in the style of Netscope.

    >>> from cnnbook import diagram
    >>> # a zoo name, or any nn.Module with input_size=(C, H, W)
    >>> d = diagram.draw("googlenet", depth=2)
    >>> d  # the last line of a notebook cell: the inline SVG
    >>> d.table()  # the same layers: shape, parameters, multiply-adds
    >>> d.save("googlenet.svg")  # or .png, .pdf; .dot/.gv: Graphviz source

One box per layer, coloured by its kind (see :data:`KINDS`), with its name,
what it is (``Conv2d 7×7 /2``) and its output shape (channels×height×
width, for one image). Function calls in a ``forward`` (``torch.cat`` of the
Inception branches, the ``+`` of a residual unit) are boxes too, so the
branches and shortcuts show as they run.

``depth`` says how far blocks are opened: ``depth=0`` is one box for the
whole network, ``depth=1`` its top-level parts (``features``, ``classifier``,
each Inception module as one box), and each step deeper opens the blocks of
the level above into their layers, drawn inside a dashed frame that names
the block (an Inception module with its four branches and their ``cat``, a
residual unit with its shortcut and its ``add``). Depth counts calls, not
attributes: a module that calls another one passed to it (``drop(branch,
x)`` in ``cnnbook.models.resnet``) is a level of its own. ``depth=None``
(the default) picks the deepest level that draws at most ``max_boxes``
layer boxes, so small networks come out whole and ResNet-1202 as its stages.

API, for a book page:

- :func:`draw` ``(model, input_size=None, depth=None, *, max_boxes=60,
  direction="TB", legend=True) -> Diagram``;
- :class:`Diagram`: ``.svg`` (str), ``.source`` (the Graphviz dot text),
  ``.save(path)``, ``.depth`` (the one drawn), ``.nodes`` / ``.layers`` /
  ``.edges`` (what it drew, as :class:`Layer` records: name, kind, type,
  output_shape, description, params, macs, module), ``.table()`` (a
  :class:`LayerTable`: ``.rows``, ``.params``, ``.macs``; it prints as text
  and shows as HTML in a notebook); a notebook shows a ``Diagram`` as its
  SVG (``_repr_svg_``: Jupyter, Colab, myst-nb).

The parameters and multiply-adds of each box are counted with forward hooks
while the model runs for the diagram, by :func:`cnnbook.summary.layer_macs`
(the rule of :func:`cnnbook.summary.count_macs`), so a table's totals equal
``count_params`` and ``count_macs`` (parameters of layers that do not run in
eval mode, such as GoogLeNet's auxiliary classifiers, get a row of their own).

How it is drawn. torchview (``torchview.draw_graph``) records the forward
pass: every module call and every torch function on a tensor that came from
the input, nested as the calls are. This module restyles its nodes (labels,
colours, a legend) and renders them with Graphviz's ``dot`` program, which
must be installed (``apt-get install graphviz``, ``brew install graphviz``;
Colab has it). No trained weights or data are needed: a zoo model given by
name is built on PyTorch's ``meta`` device (shapes only, nothing computed)
unless its input is CIFAR-sized, where building it on the CPU and running
one 32x32 image is faster than the meta device's bookkeeping for the
1000-layer networks. A
module you pass stays where it is (its weights are not touched) and runs
twice on a zero image. Blocks that stay closed run as plain PyTorch, not
recorded: every model of the zoo draws in under 1.5 s on one CPU core
(ResNet-1202, by its stages, is the slowest), most in a tenth of that.
"""

from __future__ import annotations

import contextlib
import functools
import html
import itertools
import operator
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import graphviz
import torch
from torch import nn
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torchview.computation_graph import ComputationGraph
from torchview.computation_node import (
    FunctionNode,
    ModuleNode,
    NodeContainer,
    TensorNode,
)
from torchview.recorder_tensor import (
    Recorder,
    RecorderTensor,
    _orig_module_forward,
    collect_tensor_node,
    module_forward_wrapper,
    reduce_data_info,
)
from torchview.torchview import get_recorder_tensor

from . import models, summary

__all__ = [
    "KINDS",
    "Layer",
    "LayerTable",
    "Diagram",
    "Row",
    "draw",
    "side_by_side",
]

# The kinds of box and their fill colours, in the legend's order (pastel fills,
# so black text reads on all).
KINDS: dict[str, str] = {
    "convolution": "#9cc3e6",
    "pooling": "#f4a9a8",
    "normalisation": "#cdb4e3",
    "activation": "#fbe29b",
    "merge": "#f9c089",  # concatenation, addition
    "fully connected": "#b2dba1",
    "dropout": "#dcdcdc",
    # a closed block: a module whose layers are not drawn at this depth
    "block": "#a6dcd9",
    "other": "#f3f3f3",  # flatten, reshape, identity, ...
    "input": "#ffffff",
    "output": "#ffffff",
}

_ACTIVATIONS = (
    "ReLU",
    "Tanh",
    "Sigmoid",
    "GELU",
    "SiLU",
    "ELU",
    "Softmax",
    "Hardtanh",
    "Mish",
    "Softplus",
)
# Function calls by name (``x + y`` is ``add``, see _function_name).
_FUNCTION_KINDS = {
    "merge": {"cat", "concat", "concatenate", "stack", "add", "add_"},
    "activation": {
        "relu",
        "relu_",
        "tanh",
        "tanh_",
        "sigmoid",
        "sigmoid_",
        "gelu",
        "silu",
        "softmax",
        "hardtanh",
    },
    "pooling": {
        "max_pool2d",
        "avg_pool2d",
        "adaptive_avg_pool2d",
        "adaptive_max_pool2d",
        "max_pool1d",
        "avg_pool1d",
    },
    "convolution": {"conv1d", "conv2d", "conv3d"},
    "fully connected": {"linear"},
    "dropout": {"dropout", "dropout2d"},
}
# Above this, ``depth=None`` draws one level less.
DEFAULT_MAX_BOXES = 60


@dataclass(frozen=True)
class Layer:
    """One box of a diagram.

    ``name`` is the module's attribute path in the model (``"features.0"``,
    ``"inception3a"``) or, for a function call, the function with the path of
    the module that called it (``"stages.0.0.add"``; the whole model's own
    calls have no prefix). ``kind`` is a key of :data:`KINDS`; ``type`` the
    module's class or the function's name; ``output_shape`` the shape for one
    image (no batch dimension). ``params`` are the trainable parameters first
    used in this box (a module called twice counts them once) and ``macs`` the
    multiply-adds of this call, both as :mod:`cnnbook.summary` counts them.
    ``description`` is what the box says it is (``"Conv2d 3×3 /2"``, ``"3 ×
    BasicBlock"``). ``module`` is the module (``None`` for a function call, the
    input and the output).
    """

    name: str
    kind: str
    type: str
    output_shape: tuple[int, ...]
    description: str = ""
    params: int = 0
    macs: int = 0
    module: nn.Module | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class LayerTable:
    """The layers of a diagram with their output shapes, parameters and
    multiply-adds.

    Prints as an aligned text table and shows as an HTML table in a notebook.
    ``rows`` are ``(layer, type, output, params, macs)``; the last rows may
    hold parameters outside the drawn boxes (layers that did not run, such as
    auxiliary classifiers in eval mode). ``params`` and ``macs`` are the
    totals, equal to ``summary.count_params`` and ``summary.count_macs``.
    """

    rows: tuple[tuple[str, str, str, int, int], ...]
    params: int
    macs: int

    def _cells(self) -> list[tuple[str, ...]]:
        """Header, rows and total as text."""
        body = [
            (name, kind, shape, f"{p:,}", f"{m:,}")
            for name, kind, shape, p, m in self.rows
        ]
        total = ("total", "", "", f"{self.params:,}", f"{self.macs:,}")
        return [("layer", "type", "output", "params", "MACs"), *body, total]

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max(len(row[i]) for row in cells) for i in range(5)]

        def line(row: Sequence[str]) -> str:
            return "  ".join(
                c.rjust(w) if i >= 3 else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths))
            ).rstrip()

        rule = line(["-" * w for w in widths])
        return "\n".join(
            [
                line(cells[0]),
                rule,
                *map(line, cells[1:-1]),
                rule,
                line(cells[-1]),
            ]
        )

    __repr__ = __str__

    def _repr_html_(self) -> str:
        header, *body, total = self._cells()

        def row(cells: Sequence[str], tag: str = "td") -> str:
            return (
                "<tr>"
                + "".join(
                    f'<{tag} style="text-align:'
                    f'{"right" if i >= 3 else "left"}">'
                    f"{html.escape(c)}</{tag}>"
                    for i, c in enumerate(cells)
                )
                + "</tr>"
            )

        rows = "".join(row(cells) for cells in body)
        return (
            f"<table><thead>{row(header, 'th')}</thead><tbody>{rows}</tbody>"
            f"<tfoot>{row(total, 'th')}</tfoot></table>"
        )


@dataclass(frozen=True)
class Diagram:
    """A drawn network: its Graphviz ``source``, the boxes it drew and their
    edges.

    ``nodes`` are all the boxes, the input and output included, in drawing
    order; ``edges`` are ``(tail, head)`` indices into ``nodes``; ``layers``
    are the nodes without the input and output. ``svg`` renders with Graphviz's
    ``dot`` (once, then cached); a notebook shows the SVG.
    """

    title: str
    input_size: tuple[int, ...]
    depth: int
    source: str
    nodes: tuple[Layer, ...]
    edges: tuple[tuple[int, int], ...]
    # parameters outside the boxes: (what, count)
    other_params: tuple[tuple[str, int], ...] = ()

    @property
    def layers(self) -> list[Layer]:
        """The boxes of layers, blocks and function calls: ``nodes`` without
        the input and output.
        """
        return [
            node for node in self.nodes if node.kind not in ("input", "output")
        ]

    @functools.cached_property
    def svg(self) -> str:
        """The diagram as SVG text (needs Graphviz's ``dot``)."""
        return _render(self.source, "svg").decode("utf-8")

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return (
            f"<Diagram of {self.title}: {len(self.layers)} boxes "
            f"at depth {self.depth}>"
        )

    def save(self, path: str | Path) -> Path:
        """Write the diagram to ``path``; its suffix chooses the format:
        .svg, .png, .pdf, or .dot/.gv (the source).
        """
        path = Path(path)
        suffix = path.suffix.lower().lstrip(".")
        if suffix in ("dot", "gv"):
            path.write_text(self.source, encoding="utf-8")
        elif suffix == "svg":
            path.write_text(self.svg, encoding="utf-8")
        elif suffix in graphviz.FORMATS:
            path.write_bytes(_render(self.source, suffix))
        else:
            raise ValueError(
                f"cannot save a diagram as {path.name!r}: use a "
                ".svg, .png, .pdf, .dot or .gv file name."
            )
        return path

    def inline(self) -> str:
        """The SVG as an element of an HTML page (no XML declaration),
        scaled down to the page's width when wider.
        """
        svg = self.svg[self.svg.index("<svg") :]
        return svg.replace(
            "<svg ",
            '<svg class="cnnbook-diagram" '
            'style="max-width: 100%; height: auto" ',
            1,
        )

    def table(self) -> LayerTable:
        """The drawn layers with output shape, parameters and multiply-adds
        (totals as ``cnnbook.summary``'s).
        """
        rows = [
            (
                layer.name,
                layer.description,
                _shape_text(layer.output_shape),
                layer.params,
                layer.macs,
            )
            for layer in self.layers
        ]
        rows += [(what, "", "", count, 0) for what, count in self.other_params]
        return LayerTable(
            tuple(rows), sum(r[3] for r in rows), sum(r[4] for r in rows)
        )


@dataclass(frozen=True)
class Row:
    """Diagrams side by side, each under its title; a notebook shows them as
    one row of inline SVGs.
    """

    diagrams: tuple[Diagram, ...]
    titles: tuple[str, ...]

    def _repr_html_(self) -> str:
        cells = "".join(
            '<figure style="margin: 0; flex: 1 1 0; min-width: 0">'
            '<figcaption style="text-align: center">'
            f"<strong>{html.escape(title)}</strong></figcaption>"
            f"{diagram.inline()}</figure>"
            for diagram, title in zip(self.diagrams, self.titles)
        )
        style = "display: flex; gap: 1em; align-items: flex-start"
        return f'<div style="{style}">{cells}</div>'


def side_by_side(*diagrams: Diagram, titles: Sequence[str] = ()) -> Row:
    """Show ``diagrams`` in one row, to compare them (titles default to the
    diagrams' own).
    """
    if not diagrams or not all(isinstance(d, Diagram) for d in diagrams):
        raise TypeError(
            "side_by_side takes one or more Diagrams, as draw() returns them."
        )
    if titles and len(titles) != len(diagrams):
        raise ValueError(
            f"{len(titles)} titles for {len(diagrams)} diagrams: "
            "give one title per diagram, or none."
        )
    return Row(
        tuple(diagrams), tuple(titles) or tuple(d.title for d in diagrams)
    )


def draw(
    model: nn.Module | str,
    input_size: Sequence[int] | None = None,
    depth: int | None = None,
    *,
    max_boxes: int = DEFAULT_MAX_BOXES,
    direction: str = "TB",
    legend: bool = True,
) -> Diagram:
    """Draw ``model`` (an ``nn.Module`` or a name of
    ``cnnbook.models.names()``) as a :class:`Diagram`.

    ``input_size`` is one image's (C, H, W); a name defaults to the paper's
    (``models.spec(name).input_size``), a module needs it. ``depth`` is how far
    blocks are opened (module docstring); ``None`` picks the deepest level with
    at most ``max_boxes`` layer boxes. ``direction`` is Graphviz's rankdir:
    "TB" (top to bottom) or "LR" (left to right). ``legend`` adds the colour
    key of the kinds drawn.

    Raises ``ValueError`` for an unknown model name (with close matches), a
    negative depth, or an input the model cannot take (naming the size it
    expects); ``TypeError`` when ``model`` is neither a module nor a name.
    """
    if depth is not None and (
        isinstance(depth, bool) or not isinstance(depth, int)
    ):
        raise TypeError(
            f"depth must be an int (0 = the whole model as one "
            f"box) or None, got {depth!r}."
        )
    if depth is not None and depth < 0:
        raise ValueError(
            f"depth must be 0 or more (0 = the whole model as "
            f"one box), got {depth}."
        )
    if direction not in ("TB", "LR", "BT", "RL"):
        raise ValueError(
            f"direction must be 'TB' (top to bottom) or 'LR' "
            f"(left to right), got {direction!r}."
        )
    model, title, input_size, expected = _resolve(model, input_size)
    device = _device_of(model)
    with _evaluating(model):
        calls = _trace(model, input_size, device, title, expected)
        if depth is None:
            depth = _auto_depth(calls, max_boxes)
        graph = _record(model, input_size, device, calls, depth, direction)
    nodes, edges = graph.drawn()
    if legend:
        graph.add_legend(
            [
                kind
                for kind in KINDS
                if any(node.kind == kind for node in nodes)
            ]
        )
    return Diagram(
        title=title,
        input_size=input_size,
        depth=depth,
        source=graph.visual_graph.source,
        nodes=tuple(nodes),
        edges=tuple(edges),
        other_params=tuple(_other_params(model, calls, nodes)),
    )


# ----- the model and its input
# ----------------------------------------------------------------


def _resolve(
    model: nn.Module | str, input_size: Sequence[int] | None
) -> tuple[nn.Module, str, tuple[int, ...], tuple[int, ...] | None]:
    """The module to draw, its title, the input size to use and the size it
    expects (None: unknown).
    """
    if isinstance(model, str):
        # an unknown name raises the registry's ValueError
        expected = models.spec(model).input_size
        size = _check_size(input_size) if input_size is not None else expected
        # Shapes only: on the meta device nothing is allocated. At CIFAR's
        # 32x32 a real forward pass is cheaper than meta's per-operation
        # bookkeeping (ResNet-1202: 0.7 s against 1.7 s).
        with (
            torch.device("meta")
            if min(expected[1:]) > 64
            else contextlib.nullcontext()
        ):
            return models.create(model), model, size, expected
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"draw() takes a torch.nn.Module or a model name such as 'lenet5' "
            "(see cnnbook.models.names()), "
            f"got {type(model).__name__} {model!r}."
        )
    if input_size is None:
        raise ValueError(
            f"draw() needs input_size=(channels, height, width) to run a "
            f"{type(model).__name__}, "
            "e.g. input_size=(3, 32, 32); only a model name brings its own."
        )
    return model, type(model).__name__, _check_size(input_size), None


def _check_size(input_size: Sequence[int]) -> tuple[int, ...]:
    size = (
        tuple(input_size)
        if isinstance(input_size, (tuple, list, torch.Size))
        else None
    )
    if not size or not all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in size
    ):
        raise ValueError(
            f"input_size must be one image's size as positive ints, e.g. (3, "
            "224, 224) (no batch dimension), "
            f"got {input_size!r}."
        )
    return size


def _device_of(model: nn.Module) -> torch.device:
    """Where ``model`` lives: its first parameter's (or buffer's) device;
    the CPU for a model with neither.
    """
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


@dataclass
class _Call:
    """One module call of the forward pass (pass 1), with what it adds to
    the counts.
    """

    module: nn.Module
    depth: int  # call nesting: the model 0, what its forward calls 1, ...
    # the module calls made directly inside this one
    inner: list[_Call] = field(default_factory=list)
    # trainable parameters first used in this call or inside it
    params: int = 0
    macs: int = 0  # multiply-adds of this call, inside calls included
    # parameters first used by this module itself
    own_params: list[nn.Parameter] = field(default_factory=list)


@contextlib.contextmanager
def _hooks(pre: Callable, post: Callable) -> Iterator[None]:
    """Forward hooks on every module call while the block runs.

    Global hooks: two registrations instead of two per module (ResNet-1202
    has 7,210 modules, and registering hooks on each took a second).
    """
    handles = [
        register_module_forward_pre_hook(pre),
        register_module_forward_hook(post),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _trace(
    model: nn.Module,
    input_size: tuple[int, ...],
    device: torch.device,
    title: str,
    expected: tuple[int, ...] | None,
) -> list[_Call]:
    """Run ``model`` once with plain tensors and record every module call, in
    order, with its counts.

    This pass also checks that the model takes the input: its error, if any,
    becomes a ``ValueError`` naming the expected and given sizes.
    """
    calls: list[_Call] = []
    # open calls with the counts when they started
    stack: list[tuple[_Call, int, int]] = []
    seen: set[int] = set()  # parameters already counted
    totals = {"params": 0, "macs": 0}

    def pre(module: nn.Module, args: tuple) -> None:
        call = _Call(module, depth=len(stack))
        if stack:
            stack[-1][0].inner.append(call)
        calls.append(call)
        stack.append((call, totals["params"], totals["macs"]))

    def post(module: nn.Module, args: tuple, output: Any) -> None:
        call, params_before, macs_before = stack.pop()
        new = [
            p
            for p in module.parameters(recurse=False)
            if p.requires_grad and id(p) not in seen
        ]
        seen.update(id(p) for p in new)
        call.own_params = new
        totals["params"] += sum(p.numel() for p in new)
        if isinstance(output, torch.Tensor):
            totals["macs"] += summary.layer_macs(module, args, output)
        call.params, call.macs = (
            totals["params"] - params_before,
            totals["macs"] - macs_before,
        )

    try:
        with _hooks(pre, post):
            model(torch.zeros(1, *input_size, device=device))
    # Any failure here is the input not fitting (or a broken model).
    except Exception as error:  # noqa: BLE001
        wanted = (
            f" takes {_shape_text(expected)} images (C×H×W)"
            if expected
            else ""
        )
        raise ValueError(
            f"{title}{wanted} and cannot run on an input of size "
            f"{_shape_text(input_size)}: {error}"
        ) from error
    return calls


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode (what a diagram shows: no dropout draws, no
    auxiliary heads), without autograd.
    """
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _auto_depth(calls: list[_Call], max_boxes: int) -> int:
    """The deepest level that draws at most ``max_boxes`` module boxes (at
    least 1 when the model has parts).
    """
    deepest = max(call.depth for call in calls)
    best = min(1, deepest)
    for depth in range(1, deepest + 1):
        boxes = sum(
            1
            for c in calls
            if 1 <= c.depth
            and (c.depth == depth or (c.depth < depth and not c.inner))
        )
        if boxes > max_boxes:
            break
        best = depth
    return best


def _other_params(
    model: nn.Module, calls: list[_Call], nodes: list[Layer]
) -> list[tuple[str, int]]:
    """Trainable parameters in no box, as table rows: those of parts that did
    not run, then any others.

    Parts that do not run in eval mode (GoogLeNet's auxiliary classifiers) get
    a row per top-level child, ``("(not run: aux1)", count)``; what is left
    (parameters a block uses itself, drawn open, or used outside any module
    call) gets one row ``("(elsewhere)", count)``.
    """
    ran = {id(p) for call in calls for p in call.own_params}
    rows = []
    for name, child in model.named_children():
        count = sum(
            p.numel()
            for p in child.parameters()
            if p.requires_grad and id(p) not in ran
        )
        if count:
            rows.append((f"(not run: {name})", count))
    rest = (
        summary.count_params(model)
        - sum(n.params for n in nodes)
        - sum(count for _, count in rows)
    )
    return rows + [("(elsewhere)", rest)] if rest else rows


# ----- recording and styling with torchview
# ---------------------------------------------------


def _record(
    model: nn.Module,
    input_size: tuple[int, ...],
    device: torch.device,
    calls: list[_Call],
    depth: int,
    direction: str,
) -> _StyledGraph:
    """Record the forward pass with torchview down to ``depth`` (pass 2) and
    lay out its boxes.

    Like ``torchview.draw_graph``, but without moving the model to a device (a
    reader's trained model must not end up on ``meta``), and a block that is
    drawn closed runs as plain PyTorch inside its box, with torchview's
    recorder paused: recording costs some 50 microseconds per operation and
    module call, seconds for ResNet-1202's 40,000 operations.
    """
    names = {id(m): name for name, m in model.named_modules()}
    x = get_recorder_tensor(torch.zeros(1, *input_size, device=device))
    visual = graphviz.Digraph(
        name=type(model).__name__,
        # one edge per pair of boxes (torchview labels repeated ones "x2")
        strict=True,
        graph_attr=dict(
            rankdir=direction,
            ordering="in",
            bgcolor="white",
            nodesep="0.2",
            ranksep="0.3",
            fontname="Helvetica",
            fontsize="10",
            color="#888888",
            fontcolor="#555555",
        ),
        node_attr=dict(
            shape="box",
            style="filled,rounded",
            fontname="Helvetica",
            fontsize="10",
            margin="0.08,0.03",
            penwidth="0.8",
            color="#555555",
        ),
        edge_attr=dict(
            color="#555555",
            arrowsize="0.6",
            fontsize="9",
            fontname="Helvetica",
        ),
    )
    graph = _StyledGraph(
        visual, NodeContainer(x.tensor_nodes), depth=depth, names=names
    )
    recorder = Recorder(
        _orig_module_forward, module_forward_wrapper(graph), graph
    )
    # the calls come in the same order as in pass 1
    counter = itertools.count()
    # the block running closed (at most one) and its input
    closed: list[tuple[nn.Module, RecorderTensor]] = []

    def pre(module: nn.Module, args: tuple) -> tuple | None:
        index = next(counter)
        if closed:  # inside a closed block: plain PyTorch
            return None
        recorded = reduce_data_info(args, collect_tensor_node, NodeContainer())
        # a tensor that does not come from the input: torchview made no node
        if not recorded:
            return None
        # torchview has just made this call's node and hung it on the inputs
        # (their last node's parent).
        node = next(iter(next(iter(recorded)).parents))
        graph.calls[node] = calls[index]
        if node.depth == depth and calls[index].inner:
            closed.append(
                (
                    module,
                    next(
                        t
                        for t in _tensors(args)
                        if isinstance(t, RecorderTensor)
                    ),
                )
            )
            # pause: module calls and tensor creation as usual
            recorder.__exit__(None, None, None)
            return _map_tensors(args, lambda t: t.as_subclass(torch.Tensor))
        return None

    def post(module: nn.Module, args: tuple, output: Any) -> Any:
        if closed and closed[-1][0] is module:
            _, anchor = closed.pop()
            recorder.__enter__()
            # A recorded op on the block's input that yields its output:
            # torchview links input -> box -> output.
            return _map_tensors(
                output,
                lambda t: anchor.new_empty(t.shape, dtype=t.dtype).copy_(t),
            )
        if closed:
            return None
        inputs = [t for t in _tensors(args) if isinstance(t, RecorderTensor)]
        if any(output is t for t in inputs):
            # nn.Identity (or an in-place ReLU) hands back its input object,
            # and torchview then takes every later use of that tensor for a use
            # of this output: ResNet's shortcut would seem to feed the branch.
            # A new tensor object on the same data keeps the two apart.
            return output.view_as(output)
        return None

    with _hooks(pre, post), recorder:
        model(x)
    graph.fill_visual_graph()
    return graph


def _tensors(data: Any) -> list[torch.Tensor]:
    if isinstance(data, torch.Tensor):
        return [data]
    if isinstance(data, dict):
        data = list(data.values())
    if isinstance(data, (list, tuple)):
        return [t for item in data for t in _tensors(item)]
    return []


def _map_tensors(data: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(data, torch.Tensor):
        return fn(data)
    if isinstance(data, dict):
        return {key: _map_tensors(value, fn) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        items = [_map_tensors(item, fn) for item in data]
        # a named tuple takes fields
        return (
            type(data)(*items)
            if hasattr(data, "_fields")
            else type(data)(items)
        )
    return data


class _StyledGraph(ComputationGraph):
    """torchview's graph with Netscope-style boxes; it keeps a
    :class:`Layer` for every box it draws.
    """

    def __init__(
        self,
        visual: graphviz.Digraph,
        inputs: NodeContainer,
        *,
        depth: int,
        names: dict[int, str],
    ) -> None:
        super().__init__(
            visual,
            inputs,
            show_shapes=True,
            expand_nested=True,
            hide_inner_tensors=True,
            hide_module_functions=True,
            roll=False,
            depth=depth,
        )
        self.names = names  # id(module) -> its attribute path in the model
        self.calls: dict[ModuleNode, _Call] = {}  # filled while recording
        # graphviz node name -> the box's layer, in drawing order
        self.layers: dict[str, Layer] = {}
        self.edge_names: list[tuple[str, str]] = []

    def fill_visual_graph(self) -> None:
        self._prepare()
        super().fill_visual_graph()

    def _prepare(self) -> None:
        """Before torchview draws: mark what is a block, name the frames of
        open blocks and the calls in them.
        """
        # id(node) -> the path of the module that made the call
        self.where: dict[int, str] = {}

        def walk(tree: dict, path: str) -> None:
            ((node, children),) = tree.items()
            module_path = self._path(node) if node.depth >= 0 else ""
            if isinstance(node, ModuleNode) and node.depth >= 0:
                # torchview takes a module without submodules for a leaf and
                # hides what it calls, also the modules it is handed
                # (StochasticDepth's branch): it is a block if modules ran
                # inside.
                if any(isinstance(c, dict) for c in children):
                    node.is_container = False
                    # the dashed frame's label when drawn open
                    node.name = f"{self._short(node)}  ({node.name})"
            for child in children:
                if isinstance(child, dict):
                    self.where[id(next(iter(child)))] = module_path
                    walk(child, module_path)
                else:
                    self.where[id(child)] = module_path

        walk(self.node_hierarchy, "")

    def _path(self, node: ModuleNode) -> str:
        """The module's attribute path in the model; "" for the model itself
        (and a module not in it).
        """
        return self.names.get(node.compute_unit_id, "")

    def _short(self, node: ModuleNode) -> str:
        """The name to print: the path without that of the nearest enclosing
        frame (which shows it).
        """
        path = self._path(node)
        outer = self.where.get(id(node), "")
        while outer:
            if path.startswith(outer + "."):
                return path[len(outer) + 1 :]
            outer = outer.rpartition(".")[0]
        return path

    def _layer(self, node: TensorNode | ModuleNode | FunctionNode) -> Layer:
        if isinstance(node, TensorNode):
            kind = "input" if node.is_root() else "output"
            return Layer(
                kind, kind, "tensor", node.tensor_shape[1:], description=kind
            )
        shape = tuple(node.output_shape[0][1:]) if node.output_shape else ()
        if isinstance(node, FunctionNode):
            where = self.where.get(id(node), "")
            name = _function_name(node.name)
            return Layer(
                f"{where}.{name}" if where else name,
                _function_kind(node.name),
                name,
                shape,
                name,
            )
        call = self.calls.get(node)
        # a module that is not part of the model (made during forward): its
        # class only
        if call is None:
            return Layer(node.name, "other", node.name, shape, node.name)
        module = call.module
        kind = "block" if call.inner else _module_kind(module)
        description = (
            _block_description(call) if call.inner else _describe(module)
        )
        return Layer(
            self._path(node) or type(module).__name__,
            kind,
            type(module).__name__,
            shape,
            description,
            call.params,
            call.macs,
            module,
        )

    def add_node(
        self,
        node: TensorNode | ModuleNode | FunctionNode,
        subgraph: graphviz.Digraph | None = None,
    ) -> None:
        if node.node_id not in self.id_dict:
            self.id_dict[node.node_id] = self.running_node_id
            self.running_node_id += 1
        gv_name = str(self.id_dict[node.node_id])
        layer = self._layer(node)
        self.layers[gv_name] = layer
        # Netscope's box: what it is (bold), the module's name (small, grey),
        # the output shape for one image.
        lines = [f"<B>{html.escape(layer.description)}</B>"]
        if isinstance(node, ModuleNode) and self._short(node):
            lines.append(
                f'<FONT POINT-SIZE="8" '
                f'COLOR="#555555">{html.escape(self._short(node))}</FONT>'
            )
        lines.append(
            '<FONT POINT-SIZE="9">'
            f"{html.escape(_shape_text(layer.output_shape))}</FONT>"
        )
        attrs = dict(fillcolor=KINDS[layer.kind])
        if layer.kind in ("input", "output"):
            attrs.update(style="rounded", penwidth="1.2")
        (subgraph if subgraph is not None else self.visual_graph).node(
            gv_name, label="<" + "<BR/>".join(lines) + ">", **attrs
        )
        self.node_set.add(id(node))

    def add_edge(self, edge_ids: tuple[int, int], edg_cnt: int) -> None:
        super().add_edge(edge_ids, edg_cnt)
        self.edge_names.append((str(edge_ids[0]), str(edge_ids[1])))

    def resize_graph(self, *args: Any, **kwargs: Any) -> None:
        """Keep the natural size (torchview scales big graphs into a fixed
        box, shrinking the text).
        """

    def drawn(self) -> tuple[list[Layer], list[tuple[int, int]]]:
        """The boxes in drawing order and the edges between them, as
        indices.
        """
        index = {name: i for i, name in enumerate(self.layers)}
        edges = list(
            dict.fromkeys((index[a], index[b]) for a, b in self.edge_names)
        )
        return list(self.layers.values()), edges

    def add_legend(self, kinds: list[str]) -> None:
        """A key of the colours used, one HTML table in a corner (no edges,
        so dot puts it beside the graph).
        """
        rows = "".join(
            f'<TR><TD BGCOLOR="{KINDS[k]}" WIDTH="14"> </TD><TD '
            f'ALIGN="LEFT">{k}</TD></TR>'
            for k in kinds
            if k not in ("input", "output")
        )
        table = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2">'
        label = f"<{table}{rows}</TABLE>>"
        self.visual_graph.node(
            "legend",
            label=label,
            shape="box",
            style="rounded",
            color="#bbbbbb",
            fontsize="9",
        )


# ----- kinds and labels
# -----------------------------------------------------------------------


def _module_kind(module: nn.Module | None) -> str:
    """The kind of a module that is drawn as one layer: by its torch.nn base
    class, else by its class name.
    """
    name = type(module).__name__
    kinds = [
        ("convolution", nn.modules.conv._ConvNd, ("Conv",)),
        (
            "pooling",
            (
                nn.modules.pooling._MaxPoolNd,
                nn.modules.pooling._AvgPoolNd,
                nn.modules.pooling._AdaptiveAvgPoolNd,
                nn.modules.pooling._AdaptiveMaxPoolNd,
            ),
            ("Pool", "Subsampling"),
        ),
        (
            "normalisation",
            (
                nn.modules.batchnorm._NormBase,
                nn.LocalResponseNorm,
                nn.GroupNorm,
                nn.LayerNorm,
            ),
            ("Norm",),
        ),
        ("fully connected", (nn.Linear, nn.Bilinear), ("Linear", "RBF")),
        (
            "dropout",
            nn.modules.dropout._DropoutNd,
            ("Dropout", "StochasticDepth"),
        ),
        ("activation", (), _ACTIVATIONS),
    ]
    for kind, classes, words in kinds:
        if (classes and isinstance(module, classes)) or any(
            word in name for word in words
        ):
            return kind
    if type(module).__module__ == "torch.nn.modules.activation":
        return "activation"
    return "other"


def _function_name(name: str) -> str:
    """``__add__``, ``__iadd__``, ``__radd__`` -> ``add``: torchview gives
    an operator's method name.
    """
    core = name.strip("_")
    if (
        name.startswith("__")
        and core[:1] in ("i", "r")
        and hasattr(operator, core[1:])
    ):
        return core[1:]  # the in-place or reflected form of an operator
    return core if name.startswith("__") else name


def _function_kind(name: str) -> str:
    return next(
        (
            kind
            for kind, names in _FUNCTION_KINDS.items()
            if _function_name(name) in names
        ),
        "other",
    )


def _describe(module: nn.Module) -> str:
    """What a layer is, in a few characters: ``Conv2d 3×3 /2``, ``MaxPool2d
    3×3 /2``, ``Linear``.
    """
    text = type(module).__name__
    if isinstance(
        module,
        (
            nn.modules.conv._ConvNd,
            nn.modules.pooling._MaxPoolNd,
            nn.modules.pooling._AvgPoolNd,
        ),
    ):
        # MaxPool1d: 1; pooling sizes may be one int
        dims = int(text[-2]) if text[-2:-1].isdigit() else 2
        kernel, stride = (
            _repeat(module.kernel_size, dims),
            _repeat(module.stride, dims),
        )
        text += " " + "×".join(map(str, kernel))
        if any(s != 1 for s in stride):
            text += " /" + (
                "×".join(map(str, stride))
                if len(set(stride)) > 1
                else str(stride[0])
            )
        if getattr(module, "groups", 1) > 1:
            text += f", {module.groups} groups"
    return text


def _block_description(call: _Call) -> str:
    """What a closed block is: its class, or for a plain ``nn.Sequential`` what
    it holds.

    The chain of its convolutions, poolings and linear layers when there are at
    most three (``Conv2d 1×1 → Conv2d 3×3``, an Inception branch), else ``3 ×
    BasicBlock`` for a run of equal blocks (a ResNet stage), else
    ``Sequential``.
    """
    name = type(call.module).__name__
    if type(call.module) is not nn.Sequential:
        return name

    def main_layers(c: _Call) -> list[nn.Module]:
        if not c.inner:
            return (
                [c.module]
                if _module_kind(c.module)
                in ("convolution", "pooling", "fully connected")
                else []
            )
        return [m for inner in c.inner for m in main_layers(inner)]

    layers = main_layers(call)
    if 0 < len(layers) <= 3:
        return " → ".join(map(_describe, layers))
    classes = {type(c.module) for c in call.inner}
    if len(call.inner) > 1 and len(classes) == 1:
        return f"{len(call.inner)} × {classes.pop().__name__}"
    return name


def _repeat(value: int | Sequence[int], dims: int) -> tuple[int, ...]:
    return (
        tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
    )


def _shape_text(shape: Sequence[int]) -> str:
    """``(64, 56, 56)`` -> ``64×56×56``."""
    return "×".join(map(str, shape)) or "scalar"


def _render(source: str, fmt: str) -> bytes:
    """Run Graphviz's ``dot`` on ``source``; a clear error when it is not
    installed.
    """
    if shutil.which("dot") is None:
        raise FileNotFoundError(
            "Graphviz's `dot` program is needed to draw diagrams and was not "
            "found: install Graphviz "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install "
            "graphviz; conda install graphviz; "
            "Colab has it)."
        )
    return graphviz.Source(source).pipe(format=fmt)
