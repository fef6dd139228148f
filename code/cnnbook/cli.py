"""The ``cnnbook`` command: the model zoo and the training loop from a
terminal.

    cnnbook list [--family resnet] [--no-macs]  # every model, its counts
    cnnbook summary vgg16 [--input 3 224 224]   # the layer-by-layer table
    cnnbook diagram vgg16 [--depth 2] -o vgg16.svg  # SVG, PNG or PDF
    cnnbook train lenet5 --data mnist --pad 2 --epochs 5
    cnnbook bench ...  # benchmarks (see ``cnnbook bench --help``)

It calls the same functions as the notebooks (``cnnbook.summary``,
``cnnbook.data.load``, ``cnnbook.train.fit``). A mistake the library reports
(an unknown model name, a wrong input size, a missing data set) prints its
message and exits with status 2, without a traceback; the library's advice
(``val_size=1000``) is rewritten as this command's options (``--val-size
1000``). Ctrl-C exits with status 130 and says how to resume. torch is imported
only once a command runs, so that ``cnnbook --help`` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from typing import Sequence

__all__ = ["main", "for_the_command_line"]

USAGE_ERROR = 2  # the exit status argparse uses for a bad command line
# the shell's status for a program ended by Ctrl-C (128 + SIGINT)
INTERRUPTED = 130

# The library's arguments that `cnnbook train` has as options: advice in the
# library's messages ("choose another file: checkpoint=PATH") is rewritten with
# them ("--checkpoint PATH").
OPTIONS = {
    name: "--" + name.replace("_", "-")
    for name in (
        "epochs",
        "batch_size",
        "lr",
        "optimizer",
        "schedule",
        "grad_clip",
        "train_size",
        "val_size",
        "test_size",
        "pad",
        "image_size",
        "checkpoint",
        "num_classes",
        "seed",
    )
}


def for_the_command_line(message: str) -> str:
    """A library message with its Python arguments as this command's
    options: ``val_size=0`` -> ``--val-size 0``.
    """
    message = message.replace("invalid TrainConfig: ", "invalid options: ")
    names = "|".join(OPTIONS)
    return re.sub(
        rf"(?<![\w.-])({names})=",
        lambda match: OPTIONS[match.group(1)] + " ",
        message,
    )


def _count(minimum: int):
    """An argparse type: a whole number of at least ``minimum``, refused
    with the option's own message.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in its message
    return parse


def _human(count: int) -> str:
    """1234567 -> '1.23M': short enough for a table column."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.2f}{unit}"
    return str(count)


def format_table(rows: list[dict]) -> str:
    """``summary.model_table`` rows as aligned text: text columns left,
    numbers right.
    """
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
    widths = [
        max(len(row[i]) for row in [header, *cells])
        for i in range(len(header))
    ]
    numeric = [False, False, False, True, True, True]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric)
        ).rstrip()

    return "\n".join(
        [line(header), line(["-" * w for w in widths]), *map(line, cells)]
    )


def _list(args: argparse.Namespace) -> int:
    from . import models, summary

    names = models.names(args.family)
    if not names:
        families = sorted({models.spec(n).family for n in models.names()})
        raise ValueError(
            f"no models in family {args.family!r}; the families "
            f"are: {', '.join(families)}."
        )
    print(
        format_table(
            summary.model_table(names, macs=not args.no_macs, progress=True)
        )
    )
    return 0


def _summary(args: argparse.Namespace) -> int:
    from . import summary

    input_size = tuple(args.input) if args.input else None
    print(summary.layer_summary(args.name, input_size, depth=args.depth))
    return 0


def _diagram(args: argparse.Namespace) -> int:
    from . import diagram

    drawn = diagram.draw(
        args.name, tuple(args.input) if args.input else None, depth=args.depth
    )
    path = drawn.save(args.output)
    print(
        f"{path}: {args.name} at depth {drawn.depth}, {len(drawn.layers)} "
        "boxes"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    # Imported here so that `cnnbook --help` does not wait for torch.
    from . import distributed

    device = distributed.setup()  # under torchrun: this process's GPU
    try:
        return _train_here(args, device, distributed.is_main())
    finally:
        distributed.teardown()


def _quiet_about_cut_progress_bars(unraisable) -> None:
    """An unraisable-exception hook that drops tqdm's complaint when Ctrl-C
    cut a progress bar off mid-construction (its ``__del__`` then fails with
    an AttributeError); the interrupted command says what happened."""
    if getattr(unraisable.object, "__qualname__", "") != "tqdm.__del__":
        sys.__unraisablehook__(unraisable)


def _train_here(args: argparse.Namespace, device, main: bool) -> int:
    """`cnnbook train` in one process; only the ``main`` one prints."""
    from . import data as data_module
    from . import distributed, models
    from .train import (
        RECIPES, CheckpointError, Recipe, TrainingDiverged, check_writable,
        evaluate, fit,
    )  # fmt: skip

    say = print if main else lambda *args, **kwargs: None
    if os.environ.get("CNNBOOK_PROFILE"):
        say(f"note: CNNBOOK_PROFILE={os.environ['CNNBOOK_PROFILE']} sets the "
            "chapters' budgets; `cnnbook train` runs what its options say "
            "(--epochs, --train-size, ...).")  # fmt: skip
    if args.recipe is not None and args.recipe not in RECIPES:
        raise ValueError(f"there is no recipe {args.recipe!r}; the recipes "
                         f"are: {', '.join(RECIPES)}.")  # fmt: skip
    recipe = RECIPES[args.recipe] if args.recipe else Recipe()
    if args.recipe:
        say(f"recipe {args.recipe}: {recipe.about}")
    # Everything that can be checked without data first: the model's name,
    # the options, the checkpoint's folder. Only the options given on the
    # command line change the recipe's config, so that TrainConfig and the
    # recipes stay the one place where defaults are set.
    models.spec(args.name)
    options = dict(
        epochs=args.epochs,
        optimizer=args.optimizer,
        lr=args.lr,
        schedule=args.schedule,
        grad_clip=args.grad_clip,
        seed=args.seed,
        checkpoint=args.checkpoint,
        compile=args.compile or None,
    )
    given = {key: value for key, value in options.items() if value is not None}
    config = dataclasses.replace(recipe.config, **given)
    if args.checkpoint:
        try:
            check_writable(args.checkpoint)
        except CheckpointError as error:
            # a usage error: nothing has run yet
            raise ValueError(str(error)) from None
    data = data_module.load(
        args.data, batch_size=args.batch_size or recipe.batch_size,
        train_size=args.train_size, val_size=args.val_size or recipe.val_size,
        test_size=args.test_size, pad=args.pad, seed=args.seed,
        image_size=args.image_size, device=device,
    )  # fmt: skip
    classes = len(data.classes)
    if args.num_classes is not None and args.num_classes < classes:
        raise ValueError(
            f"--num-classes {args.num_classes} is fewer than the "
            f"{classes} classes of {data.name}: "
            f"leave it out (the default is the data's {classes})."
        )
    # The seed also draws the initial weights: the same command gives the same
    # run.
    model = models.create(
        args.name, num_classes=args.num_classes or classes, seed=args.seed
    )
    if args.sync_bn:
        model = distributed.sync_batchnorm(model, device)
    try:
        fit(model, data, config, device=device)
    # the message says what to change
    except (TrainingDiverged, CheckpointError) as error:
        if main:
            message = for_the_command_line(str(error))
            print(f"cnnbook: training stopped: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        sys.unraisablehook = _quiet_about_cut_progress_bars
        if args.checkpoint:
            advice = (
                f"{args.checkpoint} holds the last finished epoch: rerun "
                "the same command to resume."
            )
        else:
            advice = (
                "nothing was saved: rerun with --checkpoint FILE to be "
                "able to resume after an interruption."
            )
        if main:
            print(f"\ncnnbook: interrupted; {advice}", file=sys.stderr)
        return INTERRUPTED
    if main:  # every process holds the same model
        loss, acc = evaluate(model, data.test, device=device, amp=config.amp,
                             tta=recipe.tta)  # fmt: skip
        flip = " (with flip test-time augmentation)" if recipe.tta else ""
        print(f"test loss {loss:.4f}, test accuracy {acc:.2%}{flip}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnbook",
        description="The model zoo and training loop of "
        "'Classic CNN Architectures'.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND"
    )

    p = commands.add_parser(
        "list",
        help="every model: family, input size, "
        "classes, parameters, multiply-adds",
    )
    p.add_argument(
        "--family", help="only this family, e.g. resnet (a model file's name)"
    )
    p.add_argument(
        "--no-macs", action="store_true", help="skip counting multiply-adds"
    )
    p.set_defaults(run=_list)

    p = commands.add_parser(
        "summary", help="the layer-by-layer summary of a model"
    )
    p.add_argument("name", help="a model name, see `cnnbook list`")
    p.add_argument(
        "--input",
        type=int,
        nargs=3,
        metavar=("C", "H", "W"),
        help="input size (default: the paper's)",
    )
    p.add_argument(
        "--depth",
        type=int,
        default=3,
        help="how many levels of nested modules to show (default 3)",
    )
    p.set_defaults(run=_summary)

    p = commands.add_parser(
        "diagram",
        help="draw a model's diagram (Graphviz) into an SVG, PNG or PDF file",
    )
    p.add_argument("name", help="a model name, see `cnnbook list`")
    p.add_argument(
        "--input",
        type=int,
        nargs=3,
        metavar=("C", "H", "W"),
        help="input size (default: the paper's)",
    )
    p.add_argument(
        "--depth",
        type=int,
        help="how many levels of blocks to "
        "open (default: as many as fit "
        "60 boxes)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="the file to write: .svg, .png, .pdf, or .dot (the source)",
    )
    p.set_defaults(run=_diagram)

    # The defaults that TrainConfig sets are quoted in the help;
    # tests/test_cli.py checks that they agree.
    p = commands.add_parser(
        "train", help="train a model and report its test accuracy"
    )
    p.add_argument("name", help="a model name, see `cnnbook list`")
    p.add_argument(
        "--data",
        required=True,
        help="mnist, fashion_mnist, cifar10, or the path of an image folder",
    )
    p.add_argument(
        "--epochs",
        type=_count(1),
        help="passes over the training set (default: 10)",
    )
    p.add_argument(
        "--batch-size",
        type=_count(1),
        help="images per training batch, of all processes "
        "together under torchrun (default: 128)",
    )
    p.add_argument(
        "--lr", type=float, help="peak learning rate (default: 0.05)"
    )
    p.add_argument(
        "--optimizer", help="sgd, adam, adamw or rmsprop (default: sgd)"
    )
    p.add_argument(
        "--schedule",
        help="constant, step, cosine, onecycle or plateau (default: onecycle)",
    )
    p.add_argument(
        "--grad-clip",
        type=float,
        help="clip the gradients' norm to this (default: no clipping)",
    )
    p.add_argument(
        "--train-size",
        type=_count(1),
        help="train on a subset of this many images (default: all)",
    )
    p.add_argument(
        "--val-size",
        type=_count(1),
        help="images held out of the training set for "
        "validation (default: 5000)",
    )
    p.add_argument(
        "--test-size",
        type=_count(1),
        help="test on a subset of this many images (default: all)",
    )
    p.add_argument(
        "--pad",
        type=_count(0),
        default=0,
        help="zero-pad every image by this many pixels, e.g. 2 to "
        "make MNIST 32x32 for LeNet-5 (default: 0)",
    )
    p.add_argument(
        "--image-size",
        type=_count(1),
        help="scale the images of a folder to this many pixels "
        "(default: as they are)",
    )
    p.add_argument(
        "--checkpoint",
        help="file to save to after every epoch "
        "and to resume from (default: none)",
    )
    p.add_argument(
        "--num-classes",
        type=_count(1),
        help="outputs of the model (default: the data's number of classes)",
    )
    p.add_argument(
        "--seed",
        type=_count(0),
        default=0,
        help="seeds the weights, the split, the order and the "
        "augmentation (default: %(default)s)",
    )
    p.add_argument("--compile", action="store_true", help="use torch.compile")
    p.add_argument(
        "--recipe",
        metavar="NAME",
        help="start from a recipe's settings instead of the "
        "defaults quoted here; the options given change "
        "them. fast: resnet18_cifar's minute on an H100 "
        "(20 epochs, batches of 512, label smoothing, flip "
        "test-time augmentation; cnnbook.train.RECIPES)",
    )
    p.add_argument(
        "--sync-bn",
        action="store_true",
        help="under torchrun on GPUs: BatchNorm over the whole "
        "batch, not each process's part",
    )
    p.set_defaults(run=_train)

    # Listed for --help only: main() hands everything after "bench" to
    # cnnbook.bench unparsed.
    commands.add_parser(
        "bench", help="benchmarks; see `cnnbook bench --help`", add_help=False
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns
    the exit status.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["bench"]:
            from . import bench

            return bench.main(argv[1:]) or 0
        args = _parser().parse_args(argv)
        return args.run(args)
    except (ValueError, FileNotFoundError) as error:
        print(
            f"cnnbook: error: {for_the_command_line(str(error))}",
            file=sys.stderr,
        )
        return USAGE_ERROR
    # e.g. while a data set is decoded: it cleans up after itself
    except KeyboardInterrupt:
        print("\ncnnbook: interrupted.", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
