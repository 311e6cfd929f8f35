"""TCA labels and report: implementation shortfall checked by hand on tiny orders.

Contract under test (models/tca.py docstring): every component is in bps of the arrival notional
N = Q·m0 and they sum to is_bps; the arrival mid is the mid *known* at decision_ts; fill-time mids
are the last quote strictly before the fill; t1 = max(end_ts, last fill).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.tca import LABEL_COLUMNS, compute_labels, compute_tca
from models.tca_report import bootstrap_mean_ci, bucket_summary, tca_report
from validation.contracts import split_valid

T0 = pd.Timestamp("2024-01-02 15:00", tz="UTC")
COMPONENTS = ["delay_bps", "spread_bps", "impact_bps", "timing_bps", "opportunity_bps", "fees_bps"]


def _s(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def _quotes(rows: list[tuple[str, float, float, float, float]]) -> pd.DataFrame:
    """rows of (symbol, ts_s, available_at_s, bid, ask), times in seconds after T0."""
    return pd.DataFrame({
        "ts": [_s(r[1]) for r in rows], "available_at": [_s(r[2]) for r in rows],
        "symbol": [r[0] for r in rows], "bid_px": [r[3] for r in rows],
        "bid_sz": 100.0, "ask_px": [r[4] for r in rows], "ask_sz": 100.0,
    })


def _orders(rows: list[tuple[str, str, int, float, float, float]]) -> pd.DataFrame:
    """rows of (order_id, symbol, side, qty, decision_s, end_s)."""
    return pd.DataFrame({
        "order_id": [r[0] for r in rows], "symbol": [r[1] for r in rows],
        "side": [r[2] for r in rows], "qty": [r[3] for r in rows],
        "decision_ts": [_s(r[4]) for r in rows], "end_ts": [_s(r[5]) for r in rows],
        "strategy": "twap",
    })


def _fills(rows: list[tuple[str, float, float, float, float]]) -> pd.DataFrame:
    """rows of (order_id, fill_s, px, qty, fee)."""
    return pd.DataFrame({
        "order_id": [r[0] for r in rows], "fill_ts": [_s(r[1]) for r in rows],
        "px": [r[2] for r in rows], "qty": [r[3] for r in rows], "fee": [r[4] for r in rows],
        "liquidity": "taker", "venue": "XNAS",
    })


# X: mid 100.00 (t-60s), 100.02 (t+30s), 100.06 (t+75s), 100.12 (t+400s); feed latency 0.1 s
QUOTES = _quotes([
    ("X", -60, -59.9, 99.99, 100.01), ("X", 30, 30.1, 100.01, 100.03),
    ("X", 75, 75.1, 100.05, 100.07), ("X", 400, 400.1, 100.11, 100.13),
    ("Y", -5, -4.9, 49.99, 50.01), ("Y", 10, 10.1, 49.98, 50.00),
    ("Z", -1, -0.9, 19.99, 20.01), ("Z", 300, 300.1, 20.09, 20.11),
])
ORDERS = _orders([
    ("BUY", "X", 1, 200.0, 0, 600),     # full fill, two fills
    ("SELL", "Y", -1, 100.0, 0, 600),   # full fill, one fill
    ("PART", "Z", 1, 400.0, 0, 600),    # a quarter filled
    ("NONE", "Z", 1, 100.0, 0, 600),    # nothing filled
])
FILLS = _fills([
    ("BUY", 60, 100.05, 100.0, 1.0), ("BUY", 120, 100.10, 100.0, 1.0),  # fee 0.01/share
    ("SELL", 30, 49.97, 100.0, 0.5),
    ("PART", 60, 20.02, 100.0, 0.0),
])


@pytest.fixture(scope="module")
def labels() -> pd.DataFrame:
    return compute_labels(ORDERS, FILLS, QUOTES).set_index("order_id")


def test_buy_two_fills_decomposes_by_hand(labels):
    # m0 = 100.00, N = 200·100 = 20,000 so 1 currency unit = 0.5 bps.
    # m_1 = 100.02 (before t+60), m_2 = 100.06 (before t+120), m_a = 100.02
    # m̃ over [60, 120]: 100.02 for 15 s, 100.06 for 45 s -> 100.05
    # delay  = 200·(100.02-100.00)                  = 4   -> 2.0
    # spread = 100·(100.05-100.02)+100·(100.10-100.06) = 7 -> 3.5
    # impact = 200·(100.05-100.02)                  = 6   -> 3.0
    # timing = 100·(100.02-100.05)+100·(100.06-100.05) = -2 -> -1.0
    # fees   = 2.00                                       -> 1.0
    # is     = (100.075-100)/100·1e4 + 1 = 8.5
    row = labels.loc["BUY"]
    assert row["arrival_mid"] == pytest.approx(100.00)
    assert row["avg_px"] == pytest.approx(100.075)
    assert row["filled_qty"] == 200.0
    expected = {"is_bps": 8.5, "delay_bps": 2.0, "spread_bps": 3.5, "impact_bps": 3.0,
                "timing_bps": -1.0, "opportunity_bps": 0.0, "fees_bps": 1.0}
    assert row[list(expected)].to_dict() == pytest.approx(expected, abs=1e-9)


def test_sell_sign(labels):
    # m0 = 50.00, N = 5,000 so 1 unit = 2 bps; sold at 49.97 (below the mid: a cost)
    # delay  = -1·100·(49.99-50.00) = 1 -> 2.0 ; spread = -1·100·(49.97-49.99) = 2 -> 4.0
    # fees 0.5 -> 1.0 ; is = -(49.97-50)/50·1e4 + 1 = 7.0
    row = labels.loc["SELL"]
    expected = {"is_bps": 7.0, "delay_bps": 2.0, "spread_bps": 4.0, "impact_bps": 0.0,
                "timing_bps": 0.0, "opportunity_bps": 0.0, "fees_bps": 1.0}
    assert row[list(expected)].to_dict() == pytest.approx(expected, abs=1e-9)


def test_partial_fill_opportunity_at_end_mid(labels):
    # m0 = 20.00, Q = 400, N = 8,000 so 1 unit = 1.25 bps; 100 filled at 20.02 (mid 20.00)
    # filled part: 100·0.02 = 2 -> 2.5 (all spread) ; unfilled 300 marked at end mid 20.10:
    # 300·0.10 = 30 -> 37.5 ; = 0.25·10 bps + 0.75·50 bps
    row = labels.loc["PART"]
    expected = {"is_bps": 40.0, "delay_bps": 0.0, "spread_bps": 2.5, "impact_bps": 0.0,
                "timing_bps": 0.0, "opportunity_bps": 37.5, "fees_bps": 0.0}
    assert row[list(expected)].to_dict() == pytest.approx(expected, abs=1e-9)


def test_no_fill_is_pure_opportunity(labels):
    # nothing filled: avg_px null, is = (20.10-20.00)/20·1e4 = 50
    row = labels.loc["NONE"]
    assert np.isnan(row["avg_px"])
    assert row["filled_qty"] == 0.0
    assert row["is_bps"] == pytest.approx(50.0)
    assert row["opportunity_bps"] == pytest.approx(50.0)


def test_components_sum_to_is(labels):
    assert labels[COMPONENTS].sum(axis=1).to_numpy() == pytest.approx(labels["is_bps"].to_numpy(),
                                                                       abs=1e-9)


def test_labels_meet_the_contract_and_t1(labels):
    df = labels.reset_index()
    assert tuple(df.columns) == LABEL_COLUMNS
    clean, failures = split_valid("labels", df)
    assert failures == []
    assert len(clean) == 4
    assert (df["t1"] >= df["decision_ts"]).all()
    assert (df["t1"] == _s(600)).all()  # every last fill is before end_ts


def test_t1_covers_a_fill_after_end():
    fills = _fills([("BUY", 60, 100.05, 100.0, 0.0), ("BUY", 630, 100.10, 100.0, 0.0)])
    out = compute_labels(ORDERS.iloc[:1], fills, QUOTES)
    assert out["t1"].iloc[0] == _s(630)


def test_arrival_mid_uses_only_quotes_known_at_decision():
    # the 10.50 quote is stamped 1 s before the decision but arrives 1 s after it
    quotes = _quotes([("W", -60, -60, 9.99, 10.01), ("W", -1, 1, 10.49, 10.51)])
    orders = _orders([("A", "W", 1, 10.0, 0, 60), ("B", "W", 1, 10.0, 2, 60)])
    out = compute_labels(orders, _fills([]), quotes).set_index("order_id")
    assert out.loc["A", "arrival_mid"] == pytest.approx(10.00)  # not 10.50
    assert out.loc["B", "arrival_mid"] == pytest.approx(10.50)  # known by then


def test_benchmarks_vwap_twap_markouts_participation():
    trades = pd.DataFrame({
        "ts": [_s(-10), _s(100), _s(200), _s(700)], "available_at": [_s(-10), _s(100), _s(200),
                                                                     _s(700)],
        "symbol": "X", "px": [99.0, 100.0, 100.10, 101.0], "qty": [50.0, 100.0, 300.0, 50.0],
        "aggressor": [1, 1, 1, 1],
    })
    b = compute_tca(ORDERS, FILLS, QUOTES, trades=trades).benchmarks.set_index("order_id")
    row = b.loc["BUY"]
    # in [0, 600] only the 100.00×100 and 100.10×300 prints: VWAP = 100.075 = avg_px
    assert row["interval_vwap"] == pytest.approx(100.075)
    assert row["vwap_bps"] == pytest.approx(0.0, abs=1e-9)
    assert row["market_volume"] == 400.0
    assert row["participation"] == pytest.approx(0.5)
    # mid TWAP over [0, 600]: 100.00·30 s, 100.02·45 s, 100.06·325 s, 100.12·200 s -> 100.074
    assert row["interval_twap_mid"] == pytest.approx(100.074)
    assert row["twap_bps"] == pytest.approx((100.075 - 100.074) / 100.074 * 1e4)
    # execution-interval TWAP (60..120 s) is m̃ = 100.05
    assert row["exec_twap_mid"] == pytest.approx(100.05)
    # markouts from the last fill (t+120): 60 s -> mid 100.06, 300 s and 1800 s -> 100.12
    assert row["markout_60s_bps"] == pytest.approx((100.06 - 100.075) / 100.075 * 1e4)
    assert row["markout_300s_bps"] == pytest.approx((100.12 - 100.075) / 100.075 * 1e4)
    assert row["markout_1800s_bps"] == pytest.approx((100.12 - 100.075) / 100.075 * 1e4)
    assert row["markout_t1"] == _s(120 + 1800)
    # sell markout is side-signed: mid 49.99 after selling at 49.97 is -4 bps for the seller
    assert b.loc["SELL", "markout_60s_bps"] == pytest.approx(-(49.99 - 49.97) / 49.97 * 1e4)
    # no trades for Y: no VWAP, no participation
    assert np.isnan(b.loc["SELL", "interval_vwap"])
    assert np.isnan(b.loc["NONE", "markout_60s_bps"])


def test_errors_name_the_order():
    with pytest.raises(ValueError, match=r"unknown parent orders, e\.g\. order_id='GHOST'"):
        compute_labels(ORDERS, _fills([("GHOST", 60, 100.0, 1.0, 0.0)]), QUOTES)
    with pytest.raises(ValueError, match=r"before their decision_ts, e\.g\. order_id='BUY'"):
        compute_labels(ORDERS, _fills([("BUY", -1, 100.0, 1.0, 0.0)]), QUOTES)
    with pytest.raises(ValueError, match=r"filled more than their qty, e\.g\. order_id='SELL'"):
        compute_labels(ORDERS, _fills([("SELL", 30, 50.0, 101.0, 0.0)]), QUOTES)
    late = _orders([("EARLY", "X", 1, 1.0, -120, 0)])
    with pytest.raises(ValueError, match=r"no quote of symbol 'X' with available_at <= "
                                         r"decision_ts .*order_id='EARLY'"):
        compute_labels(late, _fills([]), QUOTES)


def test_vectorized_matches_one_order_at_a_time():
    rng = np.random.default_rng(7)
    n = 40
    t = np.arange(0, 3600, 5.0)
    rows = []
    for sym, p0 in (("P", 50.0), ("Q", 80.0)):
        mids = p0 + np.cumsum(rng.normal(0, 0.01, len(t)))
        rows += [(sym, ti, ti + 0.05, m - 0.01, m + 0.01) for ti, m in zip(t, mids, strict=True)]
    quotes = _quotes(rows)
    dec = rng.uniform(10, 1800, n)
    orders = _orders([(f"O{i}", "PQ"[i % 2], int(rng.choice([-1, 1])), 1000.0, dec[i],
                       dec[i] + 600) for i in range(n)])
    fills = _fills([(f"O{i}", dec[i] + rng.uniform(0, 600), 60.0 + rng.normal(), 100.0, 0.1)
                    for i in range(n) for _ in range(int(rng.integers(0, 8)))])
    whole = compute_labels(orders, fills, quotes).set_index("order_id")
    for i in range(n):
        one = compute_labels(orders.iloc[[i]], fills[fills["order_id"] == f"O{i}"], quotes)
        got = whole.loc[f"O{i}", ["is_bps", *COMPONENTS]].to_numpy(float)
        assert got == pytest.approx(one[["is_bps", *COMPONENTS]].to_numpy(float)[0], abs=1e-9)
    assert whole[COMPONENTS].sum(axis=1).to_numpy() == pytest.approx(
        whole["is_bps"].to_numpy(), abs=1e-8)


# --------------------------------------------------------------------------- report
def _desk(n: int = 300, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    pct = np.exp(rng.uniform(np.log(0.001), np.log(0.2), n))
    is_bps = 0.8 * 0.02 * np.sqrt(pct) * 1e4 + rng.normal(0, 5, n)
    ids = [f"R{i}" for i in range(n)]
    labels = pd.DataFrame({
        "order_id": ids, "decision_ts": T0, "t1": _s(600), "arrival_mid": 100.0,
        "avg_px": 100.0, "filled_qty": 100.0, "is_bps": is_bps, "delay_bps": 0.0,
        "spread_bps": is_bps, "impact_bps": 0.0, "timing_bps": 0.0, "opportunity_bps": 0.0,
        "fees_bps": 0.0,
    })
    orders = pd.DataFrame({"order_id": ids, "symbol": "X", "side": 1, "qty": 100.0,
                           "decision_ts": T0, "end_ts": _s(600),
                           "strategy": rng.choice(["twap", "vwap", "pov"], n)})
    feats = pd.DataFrame({"order_id": ids, "pct_adv": pct, "sigma_est": 0.02,
                          "regime": rng.choice(["calm", "volatile", "crisis"], n)})
    return labels, orders, feats


def test_bootstrap_is_deterministic_and_brackets_the_mean():
    x = np.random.default_rng(0).normal(3.0, 1.0, 500)
    a = bootstrap_mean_ci(x, rng=np.random.default_rng(42))
    b = bootstrap_mean_ci(x, rng=np.random.default_rng(42))
    assert a == b
    assert a[0] < x.mean() < a[1]
    assert a[1] - a[0] == pytest.approx(2 * 1.96 / np.sqrt(500), rel=0.2)


def test_bucket_summary_by_hand():
    s = bucket_summary(pd.Series([1.0, 3.0, 10.0]), pd.Series(["a", "a", "b"]), seed=0,
                       section="t", n_boot=200)
    assert s["bucket"].tolist() == ["a", "b"]
    assert s["n"].tolist() == [2, 1]
    assert s["mean"].tolist() == [2.0, 10.0]
    assert s.loc[1, ["ci_lo", "ci_hi"]].tolist() == [10.0, 10.0]
    assert 1.0 <= s.loc[0, "ci_lo"] <= s.loc[0, "ci_hi"] <= 3.0


def test_report_writes_markdown_and_plots_deterministically(tmp_path):
    labels, orders, feats = _desk()
    paths = [tca_report(labels, orders, order_features=feats, fitted_sqrt=0.8,
                        out_dir=tmp_path / d, seed=5, n_boot=200) for d in ("a", "b")]
    for p in paths:
        assert p.name == "tca_report.md"
        for png in ("cost_vs_adv.png", "cost_by_schedule.png", "cost_by_regime.png",
                    "is_distribution.png"):
            assert (p.parent / png).stat().st_size > 1000
            assert f"]({png})" in p.read_text()
    assert paths[0].read_text() == paths[1].read_text()
    other = tca_report(labels, orders, order_features=feats, out_dir=tmp_path / "c", seed=6,
                       n_boot=200)
    assert other.read_text() != paths[0].read_text()  # the seed drives the CIs


def test_report_without_features_says_what_is_missing(tmp_path):
    labels, orders, _ = _desk(50)
    text = tca_report(labels, orders, out_dir=tmp_path, n_boot=50).read_text()
    assert "Not available: order_features has no `pct_adv`." in text
    assert "Not available: no `regime` column." in text
    assert (tmp_path / "cost_by_schedule.png").exists()
    with pytest.raises(ValueError, match="fitted_sqrt needs a daily volatility"):
        tca_report(labels, orders, fitted_sqrt=1.0, out_dir=tmp_path)
