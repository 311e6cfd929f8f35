"""``bestex score BOOK``: a registered model scored on a book it has not seen (issue 13, item 7).

The replay and the scoring are the stress stage's (``validation.stress.score_book`` is what stage
4 runs on its real episodes), so the figures of a known episode must be the stage's; estimates of
an unknown book come from the book itself.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import register_tiny_champion

from bestex.cli import main
from models.desk_history import RecordedBook
from pipelines.scoring import SCORE_COLUMNS
from sources import book_kind, recorded_books
from validation.stress import (
    _EPISODES,
    StressLimits,
    _real_episode,
    estimates_from_book,
    score_book,
)


def _book(minutes: int = 30, step_s: float = 1.0) -> RecordedBook:
    """A calm synthetic book: mid 100 * exp(0.0001 * k) (one tick of log return per minute),
    one trade of 100 shares per second."""
    n = int(minutes * 60 / step_s)
    ts = pd.date_range("2024-04-11 14:00", periods=n, freq=f"{int(step_s * 1000)}ms", tz="UTC")
    minute = np.arange(n) * step_s // 60
    mid = 100 * np.exp(1e-4 * minute)
    q = pd.DataFrame({"ts": ts, "available_at": ts, "symbol": "TEST", "bid_px": mid - 0.01,
                      "bid_sz": 500.0, "ask_px": mid + 0.01, "ask_sz": 500.0})
    t = pd.DataFrame({"ts": ts, "available_at": ts, "symbol": "TEST", "px": mid, "qty": 100.0,
                      "aggressor": 1})
    return RecordedBook.of(q, t, "TEST", "synthetic")


def test_estimates_from_the_book_by_hand():
    book = _book(minutes=30)
    est = estimates_from_book(book, 23_400_000_000_000)
    span_s = 30 * 60 - 1  # first to last quote
    assert est["adv"] == pytest.approx(100 * 1800 * 23_400 / span_s)
    # one log return of 1e-4 per minute: sigma_daily = 1e-4 * sqrt(390 minutes)
    assert est["sigma_daily"] == pytest.approx(1e-4 * np.sqrt(390), rel=1e-6)
    assert est["shares_outstanding"] == pytest.approx(200 * est["adv"])


@pytest.mark.parametrize(("name", "kind"), [
    ("LOBSTER_SampleFile_AMZN_2012-06-21_1.zip", "lobster"),
    ("AMZN_2012-06-21_34200000_57600000_message_1.csv", "lobster"),
    ("bitmex_2020-03-10_orderbook10_snapshots.csv.gz", "bitmex"),
])
def test_book_kind(tmp_path, name, kind):
    f = tmp_path / name
    f.write_text("x")
    assert book_kind(f) == kind


def test_score_refuses_what_is_not_a_book(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("x")
    assert main(["score", str(f)]) == 2
    assert "not a book bestex can score" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "missing.zip")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.realdata
def test_score_book_is_the_stress_stage_on_a_known_episode():
    """The same desk, seed and predictor give the stage-4 row of the AMZN reference day (its
    realized-cost figures; ``bestex score`` adds the market-adjusted ones)."""
    from bestex.settings import require_data_dir

    zip_path = require_data_dir() / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip"
    book, kind = recorded_books(zip_path)[0]

    def predict(f: pd.DataFrame):  # half spread + 5 bps, a band of +-10 bps
        m = f["arrival_spread_bps"].to_numpy(float) / 2 + 5
        return m, m - 10, m + 10

    got = score_book(book, _EPISODES["amzn_2012_06_21"], predict, n_orders=60, seed=3)
    cal, *_ = _real_episode("amzn_2012_06_21", book, predict, StressLimits(), 60, 3)
    assert kind == "equity"
    assert got["n"] == cal["n"] == 60
    assert got["bias_realized_bps"] == pytest.approx(cal["bias_bps"])
    assert got["coverage80"] == pytest.approx(cal["coverage_80"])
    assert got["mae_realized_bps"] == pytest.approx(cal["mae"])
    # against the cost less the market's own move: the same mean within a few standard errors
    # of the 60 orders' shared path, and a smaller error
    assert abs(got["bias_bps"] - got["bias_realized_bps"]) < 10
    assert got["mae_bps"] < got["mae_realized_bps"]
    assert 0 <= got["coverage80_paths"] <= 1


@pytest.fixture(scope="module")
def champion_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("score_home")
    register_tiny_champion(home, "score_test")
    return home


@pytest.mark.realdata
def test_bestex_score_prints_every_figure_for_each_day(champion_home, monkeypatch, capsys):
    from bestex.settings import require_data_dir

    monkeypatch.setenv("BESTEX_HOME", str(champion_home))
    folder = require_data_dir() / "lobster"
    assert main(["score", str(folder), "--orders", "40", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"amzn_2012_06_21", "AAPL_2012-06-21"}
    amzn = rows["amzn_2012_06_21"]
    assert set(SCORE_COLUMNS) <= set(amzn)
    assert amzn["n"] == 40
    assert 0 <= amzn["coverage80"] <= 1
    assert 0 <= amzn["share_in_domain"] <= 1
    assert amzn["fallback_share"] == 0
    assert np.isfinite(amzn["mae_bps"])
    # the AAPL sample holds 49 seconds of book: said, not scored
    assert rows["AAPL_2012-06-21"]["n"] == 0
    assert "needs more than 7" in rows["AAPL_2012-06-21"]["note"]


def test_a_one_day_book_has_no_gap_the_training_data_never_had():
    """Issue 13: the replay's features fill what a one-day book cannot know from the desk's
    estimates (the trees sent the gaps down arbitrary branches: BitMEX bias -147 bps)."""
    from validation.stress import equity_spec, replay_book

    book = _book(minutes=40)
    spec = equity_spec(estimates_from_book(book, 23_400_000_000_000), "test")
    f = replay_book(book, spec, n_orders=30, seed=1, name="t").features
    for c in ("adv", "sigma_daily", "pct_adv", "rv_prev_session", "sigma_seen", "rv_open",
              "timing_risk_bps", "temp_impact_shape_bps", "perm_impact_shape_bps"):
        assert f[c].notna().all(), c
    want = f["sigma_seen"] * np.sqrt(f["plan_timing_var_days"]) * 1e4
    np.testing.assert_allclose(f["timing_risk_bps"], want, rtol=1e-9)
