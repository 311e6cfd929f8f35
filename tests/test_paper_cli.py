"""``bestex paper`` and ``bestex kill`` refuse what they must, with exit status 2."""

from __future__ import annotations

import pytest

from bestex.cli import main
from bestex.paper.journal import Journal


def test_paper_refuses_to_start_without_a_password(monkeypatch, capsys):
    monkeypatch.delenv("BESTEX_FIX_PASSWORD", raising=False)
    assert main(["paper", "--feed", "amzn"]) == 2
    assert "BESTEX_FIX_PASSWORD" in capsys.readouterr().err


def test_paper_binds_only_the_loopback_unless_told(monkeypatch, capsys):
    monkeypatch.setenv("BESTEX_FIX_PASSWORD", "pw")
    assert main(["paper", "--feed", "amzn", "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "why"), [
    (["--feed", "nasdaq"], "choose one of amzn, bitmex, synth"),
    (["--feed", "synth", "--speed", "-1"], "negative"),
    (["--feed", "synth"], "make demo"),  # no synthetic lake in this home
])
def test_paper_names_bad_options(monkeypatch, capsys, args, why):
    monkeypatch.setenv("BESTEX_FIX_PASSWORD", "pw")
    assert main(["paper", *args]) == 2
    assert why in capsys.readouterr().err


def test_kill_needs_a_session_and_a_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BESTEX_HOME", str(tmp_path))
    assert main(["kill", "--reason", "x", "--session", "nope"]) == 2
    assert "no paper session journal" in capsys.readouterr().err
    Journal(tmp_path / "paper" / "s1.db")
    assert main(["kill", "--reason", "  ", "--session", "s1"]) == 2
    assert main(["kill", "--reason", "fat finger on desk 3", "--session", "s1"]) == 0
    assert main(["kill", "--reset", "--reason", "cleared", "--session", "s1"]) == 0
    req = Journal(tmp_path / "paper" / "s1.db", readonly=True).requests()
    assert list(req["action"]) == ["kill", "reset"]
    assert list(req["reason"]) == ["fat finger on desk 3", "cleared"]
