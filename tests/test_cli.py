"""The `cnnbook` command: list, summary, train, and its error messages."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cnnbook import models
from cnnbook.cli import main


def test_list_shows_each_model_with_its_parameters(capsys):
    # One family keeps this fast; test_summary runs model_table over the whole zoo.
    assert main(["list", "--family", "lenet"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["name", "family", "input", "classes", "params", "MACs"]
    lenet = next(line for line in lines if line.startswith("lenet5 "))
    assert lenet.split() == ["lenet5", "lenet", "1x32x32", "10", "60,000", "325.68K"]
    assert len(lines) == 2 + len(models.names("lenet"))  # header, rule, one line per model


def test_list_family_without_macs(capsys):
    assert main(["list", "--family", "lenet", "--no-macs"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [row.split()[0] for row in rows] == ["lenet5", "lenet5_modern"]
    assert all(row.split()[-1] == "-" for row in rows)


def test_list_unknown_family_names_the_families(capsys):
    assert main(["list", "--family", "lenett"]) == 2
    assert "lenet" in capsys.readouterr().err


def test_unknown_model_exits_2_with_close_matches_and_no_traceback(capsys):
    assert main(["summary", "lenet"]) == 2
    err = capsys.readouterr().err
    assert "unknown model name 'lenet'" in err and "lenet5" in err
    assert "Traceback" not in err


def test_summary_prints_the_layer_table(capsys):
    assert main(["summary", "lenet5", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 60,000" in out and "features" in out


def test_summary_with_a_wrong_input_prints_the_models_message(capsys):
    assert main(["summary", "lenet5", "--input", "1", "28", "28"]) == 2
    assert "lenet5 expects 32x32 images, got 28x28" in capsys.readouterr().err


def test_console_script_is_installed():
    # The entry point declared in code/pyproject.toml, run as a user runs it.
    script = Path(sys.executable).with_name("cnnbook")
    assert script.is_file(), "install the package: pip install -e ./code"
    result = subprocess.run([str(script), "summary", "nope"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown model name" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_lenet5_on_mnist_end_to_end(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_CACHE", str(tmp_path / "cache"))
    checkpoint = tmp_path / "lenet5.pt"
    argv = "train lenet5 --data mnist --pad 2 --epochs 1 --train-size 512 --val-size 256 --test-size 256"
    assert main([*argv.split(), "--batch-size", "64", "--checkpoint", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    match = re.search(r"test accuracy (\d+\.\d+)%", out)
    assert match and 0 <= float(match.group(1)) <= 100, out
    assert checkpoint.is_file()  # the options reach TrainConfig


def test_train_with_a_missing_data_folder_exits_2(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_CACHE", str(tmp_path / "cache"))
    assert main(["train", "lenet5", "--data", str(tmp_path / "no-such-folder")]) == 2
    assert "no-such-folder" in capsys.readouterr().err


def test_train_with_a_bad_option_exits_2_before_loading_data(capsys):
    assert main(["train", "lenet5", "--data", "no-such-data-set", "--optimizer", "sgdd"]) == 2
    err = capsys.readouterr().err
    assert "--optimizer 'sgdd' is not one of" in err and "no-such-data-set" not in err


def test_bench_gets_the_rest_of_the_command_line_unparsed(monkeypatch):
    import cnnbook.bench

    calls = []
    monkeypatch.setattr(cnnbook.bench, "main", lambda argv: calls.append(argv) or 3)
    assert main(["bench", "pipeline", "--help", "--images", "10"]) == 3
    assert calls == [["pipeline", "--help", "--images", "10"]]


# --------------------------------------------------------------------------
# Reliability: the same seed gives the same run, bad options are refused before any work,
# advice names this command's options, and Ctrl-C says how to resume.
# --------------------------------------------------------------------------

SMALL_RUN = "train lenet5 --data mnist --pad 2 --epochs 1 --train-size 512 --val-size 256 --test-size 256 --batch-size 64"


def train(capsys, extra: str = "") -> tuple[int, str, str]:
    """Run a small `cnnbook train` in this process; returns (status, stdout, stderr)."""
    status = main([*SMALL_RUN.split(), *extra.split()])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_same_seed_gives_the_same_weights(capsys, tmp_path):
    import torch

    weights = {}
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        torch.rand(int(run == "b"))  # the global generator is in another state before each run, as in a long session
        assert train(capsys, f"--seed {seed} --checkpoint {tmp_path / run}.pt")[0] == 0
        weights[run] = torch.load(tmp_path / f"{run}.pt", weights_only=True)["model"]
    assert all(torch.equal(weights["a"][k], weights["b"][k]) for k in weights["a"])
    assert not all(torch.equal(weights["a"][k], weights["c"][k]) for k in weights["a"])


def test_an_unwritable_checkpoint_is_refused_before_anything_runs(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # The data set does not exist either: the checkpoint is checked before the data is loaded.
    status = main(["train", "lenet5", "--data", "no-such-data", "--checkpoint", str(blocker / "run.pt")])
    out, err = capsys.readouterr()
    assert status == 2 and "epoch 1/" not in out
    assert f"cannot write the checkpoint '{blocker / 'run.pt'}'" in err and "--checkpoint runs/model.pt" in err
    assert "no-such-data" not in err and "checkpoint=" not in err


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--val-size", "0", "argument --val-size: 0 is less than 1"),
        ("--test-size", "0", "argument --test-size: 0 is less than 1"),
        ("--train-size", "-5", "argument --train-size: -5 is less than 1"),
        ("--epochs", "0", "argument --epochs: 0 is less than 1"),
        ("--batch-size", "1.5", "argument --batch-size: '1.5' is not a whole number"),
        ("--num-classes", "0", "argument --num-classes: 0 is less than 1"),
        ("--num-classes", "-3", "argument --num-classes: -3 is less than 1"),
        ("--pad", "-1", "argument --pad: -1 is less than 0"),
    ],
)
def test_bad_counts_are_refused_by_the_parser(capsys, option, value, expected):
    with pytest.raises(SystemExit) as exit:
        main(["train", "lenet5", "--data", "mnist", option, value])
    assert exit.value.code == 2 and expected in capsys.readouterr().err


def test_fewer_classes_than_the_data_has_are_refused_before_training(capsys):
    status, out, err = train(capsys, "--num-classes 5")
    assert status == 2 and "epoch 1/" not in out
    assert "--num-classes 5 is fewer than the 10 classes of mnist" in err


def test_library_advice_is_rewritten_as_options():
    from cnnbook.cli import for_the_command_line

    message = "val_size=60000 leaves no images; try val_size=5000, checkpoint=PATH or grad_clip=1.0 (model.seed=3)"
    assert for_the_command_line(message) == (
        "--val-size 60000 leaves no images; try --val-size 5000, --checkpoint PATH or --grad-clip 1.0 (model.seed=3)"
    )
    assert for_the_command_line("invalid TrainConfig: lr=-1 must be positive") == "invalid options: --lr -1 must be positive"


def test_a_data_error_names_the_commands_options(capsys):
    status, _, err = main([*SMALL_RUN.split(), "--val-size", "60000"]), *capsys.readouterr()
    assert status == 2 and "--val-size 60000" in err
    assert "val_size=" not in err and "fraction" not in err


def test_a_checkpoint_of_other_data_options_is_not_resumed(capsys, tmp_path):
    checkpoint = tmp_path / "run.pt"
    assert train(capsys, f"--checkpoint {checkpoint}")[0] == 0
    status, out, err = main([*SMALL_RUN.replace("--val-size 256", "--val-size 128").split(),
                             "--checkpoint", str(checkpoint)]), *capsys.readouterr()  # fmt: skip
    assert status == 1 and "belongs to a different run" in err and "data." in err and "epoch 1/" not in out


def test_a_checkpoint_of_another_model_with_the_same_shapes_is_not_resumed(capsys, tmp_path):
    # resnet110 and resnet110_stochastic_depth have the same parameters, by name and shape.
    checkpoint, folder = tmp_path / "run.pt", tmp_path / "images"
    write_image_folder(folder)  # 32x32 RGB images, what the CIFAR ResNets take
    run = f"--data {folder} --epochs 1 --val-size 8 --batch-size 16"
    assert main(["train", "resnet110", *run.split(), "--checkpoint", str(checkpoint)]) == 0
    capsys.readouterr()
    assert main(["train", "resnet110_stochastic_depth", *run.split(), "--checkpoint", str(checkpoint)]) == 1
    err = capsys.readouterr().err
    assert "model.name='resnet110' there, 'resnet110_stochastic_depth' here" in err


def write_image_folder(folder: Path, per_class: int = 12) -> None:
    """Two classes of 32x32 PNG images, train/ and test/."""
    from PIL import Image

    for split in ("train", "test"):
        for label, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
            (folder / split / label).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (32, 32), tuple(c + i for c in colour)).save(folder / split / label / f"{i}.png")


def test_the_profile_variable_is_not_silently_ignored(capsys, monkeypatch):
    monkeypatch.setenv("CNNBOOK_PROFILE", "smoke")
    status, out, _ = train(capsys)
    assert status == 0 and "CNNBOOK_PROFILE=smoke sets the chapters' budgets" in out


def test_the_help_quotes_the_defaults_that_apply():
    from cnnbook.cli import _parser
    from cnnbook.train import TrainConfig

    train_parser = _parser()._subparsers._group_actions[0].choices["train"]
    helps = {action.dest: action.help for action in train_parser._actions if action.dest != "help"}
    assert all(helps.values()), [dest for dest, text in helps.items() if not text]
    defaults = TrainConfig()
    for name in ("epochs", "lr", "optimizer", "schedule"):
        assert f"(default: {getattr(defaults, name)})" in helps[name], (name, helps[name])


def test_help_does_not_import_torch():
    # `cnnbook --help` answers at once: torch (seconds to import) waits until a command runs.
    code = "import sys, cnnbook.cli; assert 'torch' not in sys.modules, 'torch was imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    result = subprocess.run([sys.executable, "-m", "cnnbook", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "train" in result.stdout


def test_summary_total_reads_as_a_number(capsys):
    assert main(["summary", "lenet5", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "Units." not in out and re.search(r"Total mult-adds: [\d,]+\n", out)


def run_until_first_epoch(command: list[str]) -> subprocess.Popen:
    """Start `cnnbook` as a user does, and return it once it has printed its first epoch line."""
    # A test suite started in the background (`make test &` in a script) hands its children an
    # ignored SIGINT, which Python then leaves ignored; a user's terminal does not: restore it.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("epoch 1/"):
            return process
    process.wait()
    raise AssertionError(f"no epoch line before the end: {''.join(lines)}{process.stderr.read()}")


@pytest.mark.parametrize("with_checkpoint", [True, False])
def test_ctrl_c_during_training_says_how_to_resume(tmp_path, with_checkpoint):
    script = Path(sys.executable).with_name("cnnbook")
    checkpoint = tmp_path / "run.pt"
    command = [str(script), *SMALL_RUN.replace("--epochs 1", "--epochs 200").split()]
    if with_checkpoint:
        command += ["--checkpoint", str(checkpoint)]
    process = run_until_first_epoch(command)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    if with_checkpoint:
        assert f"{checkpoint} holds the last finished epoch: rerun the same command to resume" in err
        import torch

        done = torch.load(checkpoint, weights_only=True)["epoch"]
        # The same command, asked for one epoch more than the checkpoint holds, resumes and finishes it.
        rerun = [str(done + 1) if part == "200" else part for part in command]
        result = subprocess.run(rerun, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert f"resumed from {checkpoint}: {done} of {done + 1} epochs done" in result.stdout
    else:
        assert "nothing was saved: rerun with --checkpoint FILE" in err


def test_a_folder_of_images_of_several_sizes_is_trained_with_image_size(capsys, tmp_path):
    from PIL import Image

    folder = tmp_path / "images"
    write_image_folder(folder)
    Image.new("RGB", (40, 36)).save(folder / "train" / "red" / "big.png")
    run = ["train", "resnet20", "--data", str(folder), "--epochs", "1", "--val-size", "4"]
    assert main(run) == 2
    err = capsys.readouterr().err
    assert "differ in size" in err and "e.g. --image-size 64 for load" in err
    assert main([*run, "--image-size", "32"]) == 0


# --------------------------------------------------------------------------
# Recipes, synchronised BatchNorm and the training benchmark
# --------------------------------------------------------------------------


def test_the_fast_recipe_trains_a_few_steps_on_the_cpu(capsys, tmp_path):
    # Its own numbers (20 epochs of batches of 512) need a GPU; the options given change them.
    folder = tmp_path / "images"
    write_image_folder(folder)
    run = f"train resnet18_cifar --recipe fast --data {folder} --epochs 1 --val-size 4 --batch-size 8"
    assert main(run.split()) == 0
    out = capsys.readouterr().out
    assert "recipe fast: aims at 94%" in out and "epoch 1/1 " in out
    assert re.search(r"test accuracy [\d.]+% \(with flip test-time augmentation\)", out)


def test_an_unknown_recipe_names_the_recipes(capsys):
    assert main(["train", "resnet20", "--data", "cifar10", "--recipe", "fastest"]) == 2
    assert "there is no recipe 'fastest'; the recipes are: fast." in capsys.readouterr().err


def test_sync_bn_on_the_cpu_says_it_needs_gpus(capsys, tmp_path):
    folder = tmp_path / "images"
    write_image_folder(folder)
    assert main(["train", "resnet20", "--data", str(folder), "--val-size", "4", "--sync-bn"]) == 2
    assert "(--sync-bn) needs CUDA GPUs" in capsys.readouterr().err


def test_bench_train_prints_both_loops_and_their_ratio(capsys):
    argv = "bench train --images 64 --batch-size 32 --workers 0 --threads 1 --device cpu --rounds 1"
    assert main(argv.split()) == 0
    out = capsys.readouterr().out
    assert "resnet20 training on 64 CIFAR-10 images, 1 epoch each, batches of 32, on cpu" in out
    assert re.search(r"plain loop .* [\d,]+ images/s", out) and re.search(r"cnnbook.train.fit .* [\d,]+ images/s", out)
    assert re.search(r"ratio, fit over the plain loop +\d+\.\d\dx", out)


def test_after_ctrl_c_only_tqdms_complaint_is_dropped(monkeypatch):
    from types import SimpleNamespace

    from tqdm import tqdm

    from cnnbook import cli

    passed_on = []
    monkeypatch.setattr(sys, "__unraisablehook__", passed_on.append)
    cut_bar = SimpleNamespace(object=tqdm.__del__)
    other = SimpleNamespace(object=print)
    cli._quiet_about_cut_progress_bars(cut_bar)
    cli._quiet_about_cut_progress_bars(other)
    assert passed_on == [other]
