"""The `cnnbook` command: list, summary, train, and its error messages."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
    assert "optimizer='sgdd'" in err and "no-such-data-set" not in err


def test_bench_gets_the_rest_of_the_command_line_unparsed(monkeypatch):
    import cnnbook.bench

    calls = []
    monkeypatch.setattr(cnnbook.bench, "main", lambda argv: calls.append(argv) or 3)
    assert main(["bench", "pipeline", "--help", "--images", "10"]) == 3
    assert calls == [["pipeline", "--help", "--images", "10"]]
