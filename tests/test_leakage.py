"""Leakage guards: knowledge time, truncation test, label end times, calibration windows, canary."""

import numpy as np
import pandas as pd
import pytest

from models.desk_history import DeskHistoryConfig, simulate_desk_history
from models.features import build_features, calibration_rows, fit_parametric
from models.synthetic_market import SyntheticMarketConfig, generate_market
from models.tca import compute_tca
from validation.errors import LeakageError
from validation.leakage import (
    assert_calibration_fitted_before,
    assert_knowledge_before_decision,
    assert_labels_end_after_decisions,
    assert_no_leakage,
    assert_truncation_invariant,
    calibration_fitted_before,
    inject_future_feature,
    knowledge_after_decision,
    labels_end_after_decisions,
    truncation_test,
)


@pytest.fixture(scope="module")
def desk():
    market = generate_market(SyntheticMarketConfig(n_symbols=3, n_sessions=8, seed=1))
    hist = simulate_desk_history(market, DeskHistoryConfig(n_orders=300, seed=3))
    labels = compute_tca(hist.parent_orders, hist.child_fills, market.quotes).labels
    orders = hist.parent_orders
    src = dict(quotes=market.quotes, trades=market.trades, daily_bars=market.daily_bars)
    features = build_features(orders, **src)
    return market, orders, labels, src, features


# ----------------------------------------------------------------------- knowledge time
def test_real_features_pass_and_the_canary_fails(desk):
    _, _, labels, _, features = desk
    assert knowledge_after_decision(features).empty
    assert_no_leakage(features, labels)  # green without the canary

    leaky = inject_future_feature(features, labels)
    assert "leak_future_label" in leaky.columns
    np.testing.assert_allclose(
        leaky.set_index("order_id")["leak_future_label"],
        labels.set_index("order_id").loc[leaky["order_id"], "is_bps"])
    ev = knowledge_after_decision(leaky)
    assert len(ev) == len(features)  # every label ends after its decision
    assert (ev["excess"] > pd.Timedelta(0)).all()
    with pytest.raises(LeakageError, match="knowledge_ts > decision_ts"):
        assert_no_leakage(leaky, labels)
    with pytest.raises(LeakageError, match="order_id"):
        assert_knowledge_before_decision(leaky)


def test_knowledge_check_needs_the_column():
    with pytest.raises(LeakageError, match="knowledge_ts"):
        knowledge_after_decision(pd.DataFrame({"decision_ts": [pd.Timestamp(0, tz="UTC")]}))


# ----------------------------------------------------------------------- truncation
def test_truncation_passes_on_build_features(desk):
    _, orders, labels, src, features = desk
    hist = calibration_rows(features, labels)
    sources = {**src, "labels_history": hist}  # labels known at t1
    ev = truncation_test(orders, build_features, sources, n_sample=12, seed=1)
    assert ev.empty, ev
    assert_truncation_invariant(orders, build_features, sources, n_sample=4, seed=2)


def _leaky_daily_builder(orders, *, quotes, trades, daily_bars, **kw):
    """Joins daily bars on their date: the bar of the decision day is used (a classic leak)."""
    f = build_features(orders, quotes=quotes, trades=trades, daily_bars=daily_bars, **kw)
    bars = daily_bars.assign(day=pd.to_datetime(daily_bars["date"]).dt.normalize())
    day = pd.to_datetime(orders["decision_ts"]).dt.tz_localize(None).dt.normalize()
    key = pd.DataFrame({"symbol": orders["symbol"].astype(str).to_numpy(), "day": day})
    got = key.merge(bars[["symbol", "day", "volume"]].astype({"symbol": str}),
                    on=["symbol", "day"], how="left")
    f["volume_today"] = got["volume"].to_numpy()
    return f


def test_truncation_fails_on_a_leaky_builder(desk):
    _, orders, _, src, _ = desk
    ev = truncation_test(orders, _leaky_daily_builder, src, n_sample=6, seed=0)
    assert set(ev["feature"]) == {"volume_today"}
    assert len(ev) == 6
    assert ev["truncated"].isna().all()  # the bar is not known at the decision
    with pytest.raises(LeakageError, match="volume_today"):
        assert_truncation_invariant(orders, _leaky_daily_builder, src, n_sample=3)


def test_truncation_fails_on_a_builder_with_the_canary(desk):
    _, orders, labels, src, _ = desk

    def canary_builder(orders, *, labels, **sources):
        return inject_future_feature(build_features(orders, **sources), labels)

    ev = truncation_test(orders, canary_builder, {**src, "labels": labels}, n_sample=5)
    assert {"leak_future_label", "knowledge_ts"} <= set(ev["feature"])


def test_truncation_catches_an_as_of_on_event_time():
    """The hand fixture: a quote stamped before the decision but known after it."""
    t = pd.Timestamp("2024-11-06 15:00", tz="UTC")
    ts = [t + pd.Timedelta(seconds=10 * i) for i in range(12)] + [t + pd.Timedelta("59s")]
    quotes = pd.DataFrame({"ts": ts, "symbol": "A", "bid_px": [99.95] * 12 + [500.0],
                           "bid_sz": 1.0, "ask_px": [100.05] * 12 + [510.0], "ask_sz": 1.0})
    quotes["available_at"] = quotes["ts"] + pd.Timedelta("1ms")
    quotes.loc[12, "available_at"] = t + pd.Timedelta("65s")
    orders = pd.DataFrame({"order_id": ["o1"], "symbol": ["A"], "side": [1], "qty": [1.0],
                           "decision_ts": [t + pd.Timedelta("59.5s")],
                           "end_ts": [t + pd.Timedelta("10min")]})

    def on_ts(orders, *, quotes):
        q = quotes.sort_values("ts")
        m = pd.merge_asof(orders, q, left_on="decision_ts", right_on="ts", by="symbol")
        return pd.DataFrame({"order_id": m["order_id"], "decision_ts": m["decision_ts"],
                             "ask": m["ask_px"], "knowledge_ts": m["available_at"]})

    def on_available_at(orders, *, quotes):
        q = quotes.sort_values("available_at")
        m = pd.merge_asof(orders, q, left_on="decision_ts", right_on="available_at",
                          by="symbol", allow_exact_matches=True)
        return pd.DataFrame({"order_id": m["order_id"], "decision_ts": m["decision_ts"],
                             "ask": m["ask_px"], "knowledge_ts": m["available_at"]})

    bad = truncation_test(orders, on_ts, {"quotes": quotes})
    assert set(bad["feature"]) == {"ask", "knowledge_ts"}
    assert bad.set_index("feature").loc["ask", "full"] == 510.0
    assert len(knowledge_after_decision(on_ts(orders, quotes=quotes))) == 1
    assert truncation_test(orders, on_available_at, {"quotes": quotes}).empty


def test_truncation_needs_a_time_column(desk):
    _, orders, _, src, _ = desk
    with pytest.raises(ValueError, match="knowledge-time column"):
        truncation_test(orders, build_features,
                        {**src, "quotes": src["quotes"].drop(columns="available_at")},
                        n_sample=1)


# ----------------------------------------------------------------------- labels
def test_labels_end_after_decisions(desk):
    _, _, labels, _, _ = desk
    assert labels_end_after_decisions(labels).empty
    assert_labels_end_after_decisions(labels)
    bad = labels.copy()
    bad.loc[0, "t1"] = bad.loc[0, "decision_ts"] - pd.Timedelta("1s")
    bad.loc[1, "t1"] = pd.NaT
    ev = labels_end_after_decisions(bad)
    assert list(ev["reason"]) == ["t1 < decision_ts", "t1 missing"]
    assert list(ev["order_id"]) == list(labels["order_id"].iloc[:2])
    with pytest.raises(LeakageError, match="t1"):
        assert_labels_end_after_decisions(bad)
    with pytest.raises(LeakageError, match="t1"):
        assert_no_leakage(desk[4], bad)


# ----------------------------------------------------------------------- calibrations
def test_calibration_fitted_before_the_fold_end(desk):
    _, _, labels, _, features = desk
    rows = calibration_rows(features, labels)
    split = rows["decision_ts"].dt.normalize().max()
    cal = fit_parametric(rows[rows["t1"] < split])
    through = pd.Timestamp(cal.fitted_through_ts)
    assert calibration_fitted_before(split, cal).empty
    assert_calibration_fitted_before(split, cal)
    ev = calibration_fitted_before(through - pd.Timedelta("1s"), cal)
    assert list(ev["reason"]) == ["fitted on data after the training window"]
    with pytest.raises(LeakageError, match="training window"):
        assert_calibration_fitted_before(through - pd.Timedelta("1s"), cal)

    # per fold: mapping of fold -> calibration (or its meta dict), and a meta table
    folds = {0: cal, 1: {"fitted_through_ts": through}, 2: {"n": 3}}
    ends = {0: split, 1: through - pd.Timedelta("1h"), 2: split}
    ev = calibration_fitted_before(ends, folds)
    assert list(ev["fold"]) == [1, 2]
    assert list(ev["reason"]) == ["fitted on data after the training window",
                                  "no fitted_through_ts"]
    table = pd.DataFrame({"fold": [0, 1], "fitted_through_ts": [through, through]})
    assert list(calibration_fitted_before({0: split, 1: split - pd.Timedelta("2D")},
                                          table)["fold"]) == [1]
