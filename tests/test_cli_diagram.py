"""`cnnbook diagram`: draws a model of the zoo into a file."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from cnnbook.cli import main


def test_diagram_writes_an_svg_and_says_where(tmp_path, capsys):
    path = tmp_path / "x.svg"
    assert main(["diagram", "lenet5", "-o", str(path)]) == 0
    root = ET.fromstring(path.read_text(encoding="utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "Conv2d 5×5" in path.read_text(encoding="utf-8")
    assert capsys.readouterr().out.strip() == f"{path}: lenet5 at depth 3, 14 boxes"


def test_diagram_depth_and_input(tmp_path, capsys):
    assert main(["diagram", "resnet20", "--depth", "1", "--input", "3", "64", "64", "-o", str(tmp_path / "r.dot")]) == 0
    assert "3×64×64" in (tmp_path / "r.dot").read_text(encoding="utf-8")
    assert "at depth 1," in capsys.readouterr().out


def test_diagram_errors_exit_2_with_the_message(tmp_path, capsys):
    assert main(["diagram", "lenet", "-o", str(tmp_path / "x.svg")]) == 2
    assert "unknown model name 'lenet'" in capsys.readouterr().err
    assert main(["diagram", "lenet5", "--input", "1", "28", "28", "-o", str(tmp_path / "x.svg")]) == 2
    assert "1×28×28" in capsys.readouterr().err
    assert main(["diagram", "lenet5", "--depth", "-1", "-o", str(tmp_path / "x.svg")]) == 2
    assert not (tmp_path / "x.svg").exists()
