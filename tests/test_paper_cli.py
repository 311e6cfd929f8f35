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


def test_the_model_is_loaded_by_alias_and_reloaded_when_the_alias_moves(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd
    from conftest import register_tiny_champion

    from bestex.paper.market import Feed
    from bestex.paper.service import ModelSource
    from models.simulator import SimulatorConfig

    ts = pd.Timestamp("2025-01-13 15:00", tz="UTC") + pd.to_timedelta(np.arange(5), unit="s")
    q = pd.DataFrame({"ts": ts, "available_at": ts, "symbol": "AAA", "bid_px": 9.99,
                      "bid_sz": 100.0, "ask_px": 10.01, "ask_sz": 100.0})
    t = pd.DataFrame({"ts": ts[:1], "available_at": ts[:1], "symbol": "AAA", "px": [10.0],
                      "qty": [10.0], "aggressor": [1]})
    feed = Feed("hand", q, t, SimulatorConfig(venue="PAPER"))
    register_tiny_champion(tmp_path, "reload_a")
    monkeypatch.setenv("BESTEX_HOME", str(tmp_path))
    src = ModelSource(feed)
    assert src.version == "1"
    assert src.check() is False  # nothing moved
    register_tiny_champion(tmp_path, "reload_b")  # version 2 becomes the champion
    assert src.check() is True
    assert src.version == "2"
    assert src.planner is not None
    pinned = ModelSource(feed, alias="1")
    assert pinned.version == "1"
    assert pinned.check() is False  # a version is never reloaded


def test_a_scripted_orders_file_with_a_bad_row_names_the_file_and_row(tmp_path):
    from bestex.paper.service import scripted_orders

    f = tmp_path / "day.csv"
    f.write_text("cl_ord_id,symbol,side,qty,decision_ts\n"
                 "A,AMZN,buy,100,2012-06-21 14:00\n"
                 "B,AMZN,hold,100,2012-06-21 14:05\n")
    with pytest.raises(ValueError, match=r"day.csv: row 3: needs .* side buy/sell"):
        scripted_orders(f)
    f.write_text("cl_ord_id,symbol,qty\nA,AMZN,100\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['side', 'decision_ts'\]"):
        scripted_orders(f)
    f.write_text("cl_ord_id,symbol,side,qty,decision_ts\n"
                 "B,AMZN,-1,50,2012-06-21 14:05\nA,AMZN,buy,100,2012-06-21 14:00\n")
    ok = scripted_orders(f)
    assert list(ok["cl_ord_id"]) == ["A", "B"]  # in decision order
    assert list(ok["side"]) == [1, -1]
