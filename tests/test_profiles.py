"""Run profiles and the notebook helpers."""

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
