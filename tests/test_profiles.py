"""Run profiles and the notebook helpers."""

from pathlib import Path

import pytest
import torch

from cnnbook import book, profiles


def test_profile_from_the_environment(monkeypatch):
    monkeypatch.setenv("CNNBOOK_PROFILE", "smoke")
    profile = profiles.current()
    assert profile.name == "smoke" and profile.pick(smoke=1, cpu=2, full=3) == 1
    monkeypatch.setenv("CNNBOOK_PROFILE", " CPU ")
    assert profiles.current().pick(smoke=1, cpu=2, full=3) == 2


def test_default_profile_follows_the_hardware(monkeypatch):
    monkeypatch.delenv("CNNBOOK_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profiles.current() == profiles.Profile("cpu", torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert profiles.current() == profiles.Profile("full", torch.device("cuda"))


def test_unknown_profile_says_which_exist(monkeypatch):
    monkeypatch.setenv("CNNBOOK_PROFILE", "fast")
    with pytest.raises(ValueError, match="smoke, cpu, full"):
        profiles.current()


def test_show_prints_the_banner(monkeypatch, capsys):
    monkeypatch.setenv("CNNBOOK_PROFILE", "smoke")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profiles.show().name == "smoke"
    out = capsys.readouterr().out
    assert "profile 'smoke' on cpu" in out and "CNNBOOK_PROFILE" in out


def test_check_learned_passes_and_fails_loudly(capsys):
    smoke = profiles.Profile("smoke", torch.device("cpu"))
    book.check_learned(0.6, smoke, smoke=0.5, cpu=0.98, full=0.99, what="test accuracy")
    assert "OK: test accuracy 60.00%" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="below the 98.0%.*'cpu'"):
        book.check_learned(0.6, profiles.Profile("cpu", torch.device("cpu")), smoke=0.5, cpu=0.98, full=0.99,
                           what="test accuracy")
    with pytest.raises(AssertionError):
        book.check_learned(float("nan"), smoke, smoke=0.5, cpu=0.98, full=0.99, what="test accuracy")


def test_glue_without_myst_nb_prints_the_value(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_myst(name, *args, **kwargs):
        if name.startswith("myst_nb"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst)
    assert book.glue("acc", 0.5) is None  # nothing for a notebook cell to display
    assert "acc = 0.5" in capsys.readouterr().out


def test_show_source_gives_the_code_as_markdown_and_text():
    from cnnbook.models import resnet

    shown = book.show_source(resnet.BasicBlock)
    markdown = shown._repr_markdown_()
    assert markdown.startswith("```python\nclass BasicBlock(ResidualUnit):")
    assert "cnnbook/models/resnet.py, lines " in markdown
    start, end = map(int, shown.where.rsplit(" ", 1)[1].split("-"))
    source = Path(resnet.__file__).read_text().splitlines()
    assert source[start - 1].startswith("class BasicBlock") and end - start + 1 == len(shown.code.splitlines())
    assert repr(shown).splitlines()[1] == "class BasicBlock(ResidualUnit):"


def test_show_source_dedents_a_method():
    from cnnbook.models.resnet import ResNet

    assert book.show_source(ResNet.forward).code.startswith("def forward(self")


def test_show_source_says_what_it_needs():
    with pytest.raises(TypeError, match="pass a class, function or module"):
        book.show_source(len)
    with pytest.raises(TypeError, match="no Python source"):
        book.show_source(3)


def test_show_source_of_a_constant_by_name():
    from cnnbook.models import vgg

    shown = book.show_source(vgg, "CONFIGS")
    assert "CONFIGS: dict" in shown.code and shown.code.rstrip().endswith("}")
    assert "fmt: skip" not in shown.code, "the formatter's marker is not shown"
    compiled = {}
    exec(shown.code, dict(vars(vgg)), compiled)  # the module's names, for the annotation
    compiled.pop("__annotations__", None)
    assert compiled == {"CONFIGS": vgg.CONFIGS}  # the whole statement, nothing more
    with pytest.raises(ValueError, match="assigns no 'NOT_THERE'"):
        book.show_source(vgg, "NOT_THERE")
    with pytest.raises(TypeError, match="needs a module"):
        book.show_source(vgg.VGG, "CONFIGS")
