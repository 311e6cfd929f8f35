"""Point-in-time features: hand-checkable as-of rules, registry, parametric fit/apply, speed."""

import time

import numpy as np
import pandas as pd
import pytest

from models.desk_history import (
    PLAN_COLUMNS,
    DeskHistoryConfig,
    generate_parent_orders,
    simulate_desk_history,
)
from models.features import (
    FEATURES,
    MODEL_FEATURES,
    FeatureConfig,
    apply_parametric,
    build_features,
    calibration_rows,
    feature_table,
    features_from_state,
    fit_parametric,
    regimes_known_at_close,
)
from models.synthetic_market import SyntheticMarketConfig, generate_market
from models.tca import compute_tca
from validation.leakage import knowledge_after_decision

T = pd.Timestamp("2024-11-06 15:00:00", tz="UTC")  # Wednesday; XNYS opens 14:30 UTC (EST)
MS = pd.Timedelta("1ms")
SYMS = ("A", "B", "C")


def _hand_quotes() -> pd.DataFrame:
    """3 symbols x 12 timestamps (every 10 s from 15:00:00, known 1 ms later) + one late quote."""
    rows = []
    for k, s in enumerate(SYMS):
        for i in range(12):
            ts = T + pd.Timedelta(seconds=10 * i)
            mid = 100.0 * (k + 1) + (0.1 if i % 2 else 0.0)
            rows.append((ts, ts + MS, s, mid - 0.05, 100.0 + i, mid + 0.05, 300.0))
    # stamped before A's decision (15:00:59.5) but known only after it: must NOT be used
    rows.append((T + pd.Timedelta("59s"), T + pd.Timedelta("65s"), "A", 500.0, 1.0, 510.0, 1.0))
    return pd.DataFrame(rows, columns=["ts", "available_at", "symbol", "bid_px", "bid_sz",
                                       "ask_px", "ask_sz"])


def _hand_bars() -> pd.DataFrame:
    rows = []
    for s in SYMS:
        for date, close, vol in (("2024-11-01", 100.0, 1000.0), ("2024-11-04", 105.0, 2000.0),
                                 ("2024-11-05", 110.0, 3000.0), ("2024-11-06", 50.0, 1e9)):
            rows.append((pd.Timestamp(date), s, close, close, close, close, vol,
                         pd.Timestamp(date + " 21:00", tz="UTC")))
    return pd.DataFrame(rows, columns=["date", "symbol", "open", "high", "low", "close",
                                       "volume", "available_at"])


def _hand_trades() -> pd.DataFrame:
    rows = [(T - pd.Timedelta("20min"), "A", 100.0, 1),   # outside the 15-min window
            (T - pd.Timedelta("10min"), "A", 300.0, 1),
            (T - pd.Timedelta("5min"), "A", 100.0, -1)]
    df = pd.DataFrame(rows, columns=["ts", "symbol", "qty", "aggressor"])
    df["available_at"] = df["ts"] + MS
    # stamped before A's decision, known after it
    late = pd.DataFrame({"ts": [T + pd.Timedelta("58s")], "symbol": ["A"], "qty": [1e6],
                         "aggressor": [1], "available_at": [T + pd.Timedelta("70s")]})
    df = pd.concat([df, late], ignore_index=True)
    df["px"] = 100.0
    return df[["ts", "available_at", "symbol", "px", "qty", "aggressor"]]


def _hand_depth() -> pd.DataFrame:
    rows = []
    for ts, av, sz in ((T + pd.Timedelta("30s"), T + pd.Timedelta("30s") + MS, 10.0),
                       (T + pd.Timedelta("55s"), T + pd.Timedelta("62s"), 999.0)):  # late
        for lvl in (1, 2):
            rows.append((ts, av, "A", lvl, 99.9, sz * lvl, 100.1, 2 * sz * lvl))
    return pd.DataFrame(rows, columns=["ts", "available_at", "symbol", "level", "bid_px",
                                       "bid_sz", "ask_px", "ask_sz"])


def _hand_orders() -> pd.DataFrame:
    d = [T + pd.Timedelta("59.5s"), T + pd.Timedelta("60s") + MS, T + pd.Timedelta("110s") + MS]
    return pd.DataFrame({"order_id": ["oA", "oB", "oC"], "symbol": list(SYMS), "side": [1, -1, 1],
                         "qty": [300.0, 500.0, 100.0], "decision_ts": d,
                         "end_ts": [x + pd.Timedelta("30min") for x in d],
                         "strategy": ["twap"] * 3})


@pytest.fixture(scope="module")
def hand():
    orders = _hand_orders()
    regimes = regimes_known_at_close(["2024-11-04", "2024-11-05", "2024-11-06"],
                                     ["calm", "volatile", "crisis"])
    f = build_features(orders, quotes=_hand_quotes(), trades=_hand_trades(),
                       daily_bars=_hand_bars(), depth=_hand_depth(), regimes=regimes,
                       knowledge_by_group=True)
    return orders, f.set_index("order_id")


def test_quote_stamped_before_but_known_after_decision_is_not_used(hand):
    _, f = hand
    a = f.loc["oA"]
    # last quote of A known at 15:00:59.5 is the one of 15:00:50 (mid 100.1), not the late 505
    assert a["arrival_mid"] == pytest.approx(100.1)
    assert a["arrival_spread_bps"] == pytest.approx(0.1 / 100.1 * 1e4)
    assert a["knowledge_ts__l1"] == T + pd.Timedelta("50s") + MS
    assert a["quote_age_s"] == pytest.approx(9.5)
    assert a["l1_imbalance"] == pytest.approx((105.0 - 300.0) / 405.0)
    assert a["l1_imbalance_signed"] == pytest.approx(a["l1_imbalance"])


def test_quote_known_exactly_at_decision_is_used(hand):
    _, f = hand
    b = f.loc["oB"]  # decision == available_at of B's 15:01:00 quote (allow_exact_matches)
    assert b["arrival_mid"] == pytest.approx(200.0)
    assert b["knowledge_ts__l1"] == b["decision_ts"]
    assert b["l1_imbalance_signed"] == pytest.approx(-(106.0 - 300.0) / 406.0)


def test_as_of_matches_merge_asof_on_available_at(hand):
    orders, f = hand
    q = _hand_quotes().sort_values("available_at")
    q["mid"] = 0.5 * (q["bid_px"] + q["ask_px"])
    m = pd.merge_asof(orders.sort_values("decision_ts"), q[["available_at", "symbol", "mid"]],
                      left_on="decision_ts", right_on="available_at", by="symbol",
                      allow_exact_matches=True).set_index("order_id")
    np.testing.assert_allclose(f.loc[m.index, "arrival_mid"], m["mid"])


def test_daily_bar_of_decision_day_is_not_used(hand):
    _, f = hand
    for oid in ("oA", "oB", "oC"):
        r = f.loc[oid]
        assert r["adv"] == pytest.approx(2000.0)  # 1000, 2000, 3000; never the 1e9 of 11-06
        assert r["sigma_daily"] == pytest.approx(np.std([np.log(1.05), np.log(110 / 105)],
                                                        ddof=1))
        assert r["knowledge_ts__daily"] == pd.Timestamp("2024-11-05 21:00", tz="UTC")
    assert f.loc["oA", "pct_adv"] == pytest.approx(300 / 2000)


def test_realized_vol_window_and_trade_window(hand):
    _, f = hand
    a = f.loc["oA"]
    # A's known quotes in (d-30min, d]: 15:00:00..15:00:50, mids alternating 100 / 100.1
    # 5 returns covering 50 s: under the default 1-minute coverage, NaN; at 0.5 min, the value
    assert np.isnan(a["rv_intraday"])
    orders = _hand_orders()
    g = build_features(orders, quotes=_hand_quotes(), trades=_hand_trades(),
                       daily_bars=_hand_bars(), config=FeatureConfig(rv_min_coverage_min=0.5))
    r = np.log(100.1 / 100.0)
    assert g["rv_intraday"].iloc[0] == pytest.approx(np.sqrt(5 * r * r / (50 / 60) * 390))
    # trades in (d-15min, d]: 300 buy and 100 sell; the late 1e6 print is not known yet
    assert a["trade_intensity"] == pytest.approx(2 / 15)
    assert a["trade_imbalance"] == pytest.approx((300 - 100) / 400)
    assert a["knowledge_ts__trades"] == T - pd.Timedelta("5min") + MS
    assert f.loc["oB", "trade_intensity"] == 0.0
    assert np.isnan(f.loc["oB", "trade_imbalance"])


def test_depth_snapshot_as_of_and_nan_without_depth(hand):
    _, f = hand
    a = f.loc["oA"]
    assert (a["depth_bid"], a["depth_ask"]) == (30.0, 60.0)  # 10+20 / 20+40, not the late 999s
    assert a["depth_imbalance"] == pytest.approx(-1 / 3)
    assert a["qty_over_depth"] == pytest.approx(300 / 60)  # a buy takes the ask
    assert np.isnan(f.loc["oB", "depth_bid"])


def test_calendar_features_and_regime_table(hand):
    _, f = hand
    a = f.loc["oA"]
    assert a["time_of_day"] == pytest.approx(30 + 59.5 / 60)
    assert a["time_to_close_min"] == pytest.approx(390 - 30 - 59.5 / 60)
    assert a["day_of_week"] == 2  # Wednesday
    assert a["duration_min"] == pytest.approx(30.0)
    assert a["duration_days"] == pytest.approx(30 / 390)
    # the truth's regime of 11-06 is released at its close: a decision on 11-06 sees 11-05's
    assert list(f["regime_known"]) == ["volatile"] * 3
    assert list(f["regime_code"]) == [1.0] * 3


def test_knowledge_ts_is_max_over_groups_and_before_decision(hand):
    _, f = hand
    groups = [c for c in f.columns if c.startswith("knowledge_ts__")]
    assert (f["knowledge_ts"] == f[groups].max(axis=1)).all()
    assert (f["knowledge_ts"] <= f["decision_ts"]).all()


def test_registry_covers_every_column_with_sources_and_lookback(hand):
    _, f = hand
    names = [x.name for x in FEATURES]
    assert len(names) == len(set(names))
    assert set(names) <= set(f.columns)
    for spec in FEATURES:
        assert spec.sources
        assert spec.lookback
    table = feature_table(FeatureConfig(rv_window_min=15))
    assert table.set_index("name").loc["rv_intraday", "lookback"] == "15 min"
    for required in ("pct_adv", "duration_min", "implied_participation", "arrival_spread_bps",
                     "depth_imbalance", "rv_intraday", "sigma_daily", "trade_intensity_rel",
                     "session_frac", "day_of_week", "regime_code", "sqrt_pred_bps",
                     "athl_pred_bps", "side", "adv_turnover", "pct_mdv",
                     "qty_over_touch_depth", "arrival_spread_ticks", "sigma_horizon_bps",
                     "regime_p_calm", "regime_p_volatile", "regime_p_crisis"):
        assert required in MODEL_FEATURES


def test_no_share_currency_or_count_scaled_model_input():
    """Issue 13: raw price- or currency-scaled inputs are not features. The raw columns stay
    (the ratios and the parametric fits read them) but the model sees only the ratios."""
    raw = {"qty", "adv", "shares_outstanding", "depth_bid", "depth_ask", "touch_bid_sz",
           "touch_ask_sz", "trade_intensity", "trade_intensity_base", "tick_size",
           "time_of_day", "arrival_mid", "expected_volume"}
    assert raw.isdisjoint(MODEL_FEATURES)
    assert raw <= {f.name for f in FEATURES}
    units = feature_table().set_index("name")["unit"]
    for name in MODEL_FEATURES:
        assert units[name] not in ("shares", "shares/day", "currency", "trades/min"), name


def test_dimensionless_ratios_on_the_hand_case(hand):
    _, f = hand
    a, b = f.loc["oA"], f.loc["oB"]
    # A buys 300 against the ask of its last known quote (15:00:50: 300 shares at 100.15)
    assert (a["touch_bid_sz"], a["touch_ask_sz"]) == (105.0, 300.0)
    assert a["qty_over_touch_depth"] == pytest.approx(1.0)
    assert b["qty_over_touch_depth"] == pytest.approx(500 / 106)  # B sells into the bid
    # A's known bids and asks move by 0.10 and its spread is 0.10: one tick
    assert a["tick_size"] == pytest.approx(0.1)
    assert a["arrival_spread_ticks"] == pytest.approx(1.0)
    assert a["knowledge_ts__tick"] == a["knowledge_ts__l1"]
    # shares_outstanding falls back to turnover * adv = 200 * 2000
    assert a["adv_turnover"] == pytest.approx(1 / 200)
    # the median of the known 1000, 2000, 3000 is the mean: normal volume, pct_mdv = pct_adv
    assert (a["mdv"], a["pct_mdv"]) == (2000.0, 0.15)
    assert a["temp_impact_shape_bps"] == pytest.approx(
        a["sigma_seen"] * 0.15 ** 0.6 * a["plan_rate_shape"] * 1e4, nan_ok=True)
    assert a["session_frac"] == pytest.approx((30 + 59.5 / 60) / 390)
    np.testing.assert_allclose(f["sigma_horizon_bps"],
                               f["sigma_seen"] * np.sqrt(f["duration_days"]) * 1e4)
    # no earlier session: A's baseline is today's 3 known trades since the 14:30 open
    minutes = 30 + 59.5 / 60
    assert a["trade_intensity_base"] == pytest.approx(3 / minutes)
    assert a["trade_intensity_rel"] == pytest.approx((2 / 15) / (3 / minutes))
    assert a["knowledge_ts__intensity_base"] == T - pd.Timedelta("5min") + MS
    assert np.isnan(b["trade_intensity_rel"])  # B has no trade at all


# ----------------------------------------------------------------------- synthetic desk history
@pytest.fixture(scope="module")
def desk():
    market = generate_market(SyntheticMarketConfig(n_symbols=3, n_sessions=8, seed=1))
    hist = simulate_desk_history(market, DeskHistoryConfig(n_orders=300, seed=3))
    labels = compute_tca(hist.parent_orders, hist.child_fills, market.quotes).labels
    return market, hist, labels


def test_matches_the_desk_point_in_time_columns(desk):
    market, hist, _ = desk
    po = hist.parent_orders
    f = build_features(po, quotes=market.quotes, trades=market.trades,
                       daily_bars=market.daily_bars)
    assert list(f["order_id"]) == list(po["order_id"])
    np.testing.assert_allclose(f["adv"], po["adv_est"], rtol=1e-12)
    np.testing.assert_allclose(f["sigma_daily"], po["sigma_est"], rtol=1e-10)
    np.testing.assert_allclose(f["pct_adv"], po["pct_adv"], rtol=1e-12)
    np.testing.assert_allclose(f["arrival_spread_bps"], po["arrival_spread_bps"], rtol=1e-12)
    np.testing.assert_allclose(f["duration_days"], po["duration_days"], rtol=1e-9)
    assert knowledge_after_decision(f).empty
    assert f["implied_participation"].gt(0).all()
    assert f["regime_known"].isin(["calm", "volatile", "crisis"]).all()
    # the plan is passed through, the strategy one-hot sums to one
    for c in PLAN_COLUMNS:
        np.testing.assert_allclose(f[c], po[c], rtol=1e-12)
    onehot = f[[c for c in f.columns if c.startswith("strategy_")]].to_numpy()
    np.testing.assert_array_equal(onehot.sum(axis=1), 1.0)
    # sigma_seen measures, from the quotes known at the decision, the volatility the
    # synthetic impact physics uses (the feed's latency is a constant 1 ms)
    np.testing.assert_allclose(f["sigma_seen"], po["true_sigma"], rtol=1e-9)
    np.testing.assert_allclose(f["timing_risk_bps"],
                               f["sigma_seen"] * np.sqrt(po["plan_timing_var_days"]) * 1e4)


def test_parametric_point_in_time_and_fold_contract(desk):
    market, hist, labels = desk
    po = hist.parent_orders
    src = dict(quotes=market.quotes, trades=market.trades, daily_bars=market.daily_bars)
    base = build_features(po, **src)
    rows = calibration_rows(base, labels)
    assert {"t1", "is_bps", "qty", "adv", "sigma_daily", "duration_days"} <= set(rows.columns)

    # point in time: each decision day refits on labels known by that day's midnight
    pit = build_features(po, **src, labels_history=rows)
    assert knowledge_after_decision(pit).empty
    first_day = pit["decision_ts"].dt.normalize().min()
    later = pit["decision_ts"].dt.normalize() > first_day
    assert pit.loc[~later, "sqrt_pred_bps"].isna().all()  # no earlier labels yet
    assert pit.loc[later, "sqrt_pred_bps"].notna().all()
    assert pit.loc[later, "athl_pred_bps"].notna().all()
    assert (pit.loc[later, "sqrt_pred_bps"] > 0).all()

    # fold contract: fit on an earlier training window, apply to later rows
    split = pit["decision_ts"].dt.normalize().max()
    train = rows[rows["t1"] < split]
    cal = fit_parametric(train)
    assert cal.sqrt is not None
    assert cal.athl is not None
    assert cal.n_rows == len(train)
    assert pd.Timestamp(cal.fitted_through_ts) >= train["t1"].max()
    test_rows = base[base["decision_ts"] >= split]
    applied = apply_parametric(test_rows, cal)
    assert applied["sqrt_pred_bps"].notna().all()
    assert knowledge_after_decision(applied).empty
    # applied to rows decided before the calibration's data was known: flagged
    early = apply_parametric(base[base["decision_ts"] < split], cal)
    assert len(knowledge_after_decision(early)) > 0
    # and through build_features(calibrations=...)
    one = build_features(po, **src, calibrations=cal)
    np.testing.assert_allclose(one["sqrt_pred_bps"], apply_parametric(base, cal)["sqrt_pred_bps"])
    with pytest.raises(ValueError, match="not both"):
        build_features(po, **src, calibrations=cal, labels_history=rows)


def test_fit_parametric_with_too_few_rows_gives_none(desk):
    market, hist, labels = desk
    po = hist.parent_orders
    base = build_features(po, quotes=market.quotes, trades=market.trades,
                          daily_bars=market.daily_bars)
    rows = calibration_rows(base, labels).iloc[:5]
    cal = fit_parametric(rows)
    assert cal.sqrt is None
    assert cal.athl is None
    out = apply_parametric(base, cal)
    assert out["sqrt_pred_bps"].isna().all()
    with pytest.raises(ValueError, match="lack column"):
        fit_parametric(rows.drop(columns="t1"))


def test_speed_12k_orders_on_a_million_quotes():
    market = generate_market(SyntheticMarketConfig())  # 8 symbols x 30 sessions, ~1 M quotes
    orders = generate_parent_orders(market, DeskHistoryConfig(n_orders=12_000))
    build_features(orders.iloc[:50], quotes=market.quotes, trades=market.trades,
                   daily_bars=market.daily_bars)  # warm the calendar cache
    t0 = time.perf_counter()
    f = build_features(orders, quotes=market.quotes, trades=market.trades,
                       daily_bars=market.daily_bars)
    elapsed = time.perf_counter() - t0
    assert len(f) == 12_000
    assert knowledge_after_decision(f).empty
    assert elapsed < 5.0, f"build_features took {elapsed:.2f}s on {len(market.quotes)} quotes"


def test_the_feature_dictionary_in_the_docs_is_the_registry():
    """docs/features.md is generated from the registry (its first paragraph says how); a
    feature added without regenerating it fails here."""
    from pathlib import Path

    from models._feature_registry import KNOWN_AT, feature_dictionary_markdown, feature_table

    doc = Path(__file__).resolve().parent.parent / "docs" / "features.md"
    assert doc.read_text() == feature_dictionary_markdown()
    assert set(feature_table()["group"]) <= set(KNOWN_AT)  # every group has a knowledge time


def test_trade_intensity_against_each_symbol_own_earlier_sessions():
    """A trades 3 times and B 39 times over the full 390-minute session of 11-05; on 11-06 each
    is measured against its own baseline, never the other's (a per-symbol prefix sum)."""
    day = pd.Timestamp("2024-11-05 15:00", tz="UTC")
    rows = [(day + pd.Timedelta(minutes=i), s) for s, n in (("A", 3), ("B", 39)) for i in range(n)]
    prev = pd.DataFrame(rows, columns=["ts", "symbol"]).assign(
        available_at=lambda d: d["ts"] + MS, px=100.0, qty=100.0, aggressor=1)
    trades = pd.concat([prev, _hand_trades()], ignore_index=True)
    f = build_features(_hand_orders(), quotes=_hand_quotes(), trades=trades,
                       daily_bars=_hand_bars(), knowledge_by_group=True).set_index("order_id")
    assert f.loc["oA", "trade_intensity_base"] == pytest.approx(3 / 390)
    assert f.loc["oB", "trade_intensity_base"] == pytest.approx(39 / 390)
    assert f.loc["oA", "trade_intensity_rel"] == pytest.approx((2 / 15) / (3 / 390))
    assert f.loc["oB", "knowledge_ts__intensity_base"] == day + pd.Timedelta(minutes=38) + MS
    assert np.isnan(f.loc["oC", "trade_intensity_rel"])  # C never traded: no baseline


def test_participation_in_the_normal_volume_ignores_a_spike():
    """A spike (10x volume on 11-05, a stress day) lifts the mean; the median stays at the
    normal 1000 shares, and the impact shapes measure the order in it."""
    bars = _hand_bars()
    bars["volume"] = np.where(bars["date"] == pd.Timestamp("2024-11-05"), 10_000.0,
                              np.where(bars["date"] < pd.Timestamp("2024-11-05"), 1000.0, 1e9))
    f = build_features(_hand_orders(), quotes=_hand_quotes(), trades=_hand_trades(),
                       daily_bars=bars, knowledge_by_group=True).set_index("order_id")
    a = f.loc["oA"]
    assert a["adv"] == pytest.approx(4000.0)
    assert a["mdv"] == 1000.0
    assert a["pct_mdv"] == pytest.approx(300 / 1000)
    np.testing.assert_allclose(a["perm_impact_shape_bps"], a["sigma_seen"] * 0.3 * 1e4)
    assert a["knowledge_ts__mdv"] == pd.Timestamp("2024-11-05 21:00", tz="UTC")
    served = features_from_state(f.drop(columns="mdv").reset_index())  # no mdv: adv stands in
    assert served["pct_mdv"].iloc[0] == pytest.approx(300 / 4000)
