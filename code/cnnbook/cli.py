"""The ``cnnbook`` command: the model zoo and the training loop from a terminal.

    cnnbook list [--family resnet] [--no-macs]     every model: family, input, classes, params, MACs
    cnnbook summary vgg16 [--input 3 224 224]      the layer-by-layer table
    cnnbook train lenet5 --data mnist --pad 2 --epochs 5
    cnnbook bench ...                              benchmarks (see ``cnnbook bench --help``)

It calls the same functions as the notebooks (``cnnbook.summary``,
``cnnbook.data.load``, ``cnnbook.train.fit``). A mistake the library reports
(an unknown model name, a wrong input size, a missing data set) prints its
message and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import models, summary

__all__ = ["main"]

USAGE_ERROR = 2  # the exit status argparse uses for a bad command line


def _human(count: int) -> str:
    """1234567 -> '1.23M': short enough for a table column."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.2f}{unit}"
    return str(count)


def format_table(rows: list[dict]) -> str:
    """``summary.model_table`` rows as aligned text: text columns left, numbers right."""
    header = ("name", "family", "input", "classes", "params", "MACs")
    cells = [
        (
            r["name"],
            r["family"],
            "x".join(map(str, r["input_size"])),
            str(r["num_classes"]),
            f"{r['params']:,}",
            "-" if r["macs"] is None else _human(r["macs"]),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    numeric = [False, False, False, True, True, True]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, cells)])


def _list(args: argparse.Namespace) -> int:
    names = models.names(args.family)
    if not names:
        families = sorted({models.spec(n).family for n in models.names()})
        raise ValueError(f"no models in family {args.family!r}; the families are: {', '.join(families)}.")
    print(format_table(summary.model_table(names, macs=not args.no_macs, progress=True)))
    return 0


def _summary(args: argparse.Namespace) -> int:
    input_size = tuple(args.input) if args.input else None
    print(summary.layer_summary(args.name, input_size, depth=args.depth))
    return 0


def _train(args: argparse.Namespace) -> int:
    # Imported here so that `cnnbook list` does not pay for the data and training machinery.
    from . import data as data_module
    from .train import CheckpointError, TrainConfig, TrainingDiverged, evaluate, fit

    # Fail on a bad model name or option before any data is loaded. Only the options given on the
    # command line reach TrainConfig, so its defaults stay the one place where defaults are set.
    models.spec(args.name)
    options = dict(
        epochs=args.epochs, optimizer=args.optimizer, lr=args.lr, schedule=args.schedule,
        seed=args.seed, checkpoint=args.checkpoint, compile=args.compile or None,
    )  # fmt: skip
    config = TrainConfig(**{key: value for key, value in options.items() if value is not None})
    data = data_module.load(
        args.data, batch_size=args.batch_size, train_size=args.train_size, val_size=args.val_size,
        test_size=args.test_size, pad=args.pad, seed=args.seed,
    )  # fmt: skip
    model = models.create(args.name, num_classes=args.num_classes or len(data.classes))
    try:
        fit(model, data, config)
    except (TrainingDiverged, CheckpointError) as error:  # the message says what to change
        print(f"cnnbook: training stopped: {error}", file=sys.stderr)
        return 1
    loss, acc = evaluate(model, data.test)
    print(f"test loss {loss:.4f}, test accuracy {acc:.2%}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnbook", description="The model zoo and training loop of 'Classic CNN Architectures'."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("list", help="every model: family, input size, classes, parameters, multiply-adds")
    p.add_argument("--family", help="only this family, e.g. resnet (a model file's name)")
    p.add_argument("--no-macs", action="store_true", help="skip counting multiply-adds")
    p.set_defaults(run=_list)

    p = commands.add_parser("summary", help="the layer-by-layer summary of a model")
    p.add_argument("name", help="a model name, see `cnnbook list`")
    p.add_argument("--input", type=int, nargs=3, metavar=("C", "H", "W"), help="input size (default: the paper's)")
    p.add_argument("--depth", type=int, default=3, help="how many levels of nested modules to show (default 3)")
    p.set_defaults(run=_summary)

    p = commands.add_parser("train", help="train a model and report its test accuracy")
    p.add_argument("name", help="a model name, see `cnnbook list`")
    p.add_argument("--data", required=True, help="mnist, fashion_mnist, cifar10, or the path of an image folder")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--optimizer", help="e.g. sgd or adamw (see cnnbook.train.TrainConfig)")
    p.add_argument("--schedule", help="learning-rate schedule (see cnnbook.train.TrainConfig)")
    p.add_argument("--train-size", type=int, help="train on a subset of this many images")
    p.add_argument("--val-size", type=int, default=5000, help="images held out of the training set for validation")
    p.add_argument("--test-size", type=int, help="test on a subset of this many images")
    p.add_argument("--pad", type=int, default=0, help="zero-pad every image by this many pixels (MNIST: 2 for LeNet-5)")
    p.add_argument("--checkpoint", help="file to save to after every epoch and to resume from")
    p.add_argument("--num-classes", type=int, help="default: the number of classes of the data")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="use torch.compile")
    p.set_defaults(run=_train)

    # Listed for --help only: main() hands everything after "bench" to cnnbook.bench unparsed.
    commands.add_parser("bench", help="benchmarks; see `cnnbook bench --help`", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["bench"]:
            from . import bench

            return bench.main(argv[1:]) or 0
        args = _parser().parse_args(argv)
        return args.run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"cnnbook: error: {error}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
