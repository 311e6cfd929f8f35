"""Desk history (issue 3, item 6): synthetic desk executed through the simulator with the truth
kept aside; the AMZN replay; the loader of a desk's real files; the calibration frame.

Acceptance (measured here):
* over >= 10,000 synthetic orders the mean simulated shortfall per %ADV bucket matches the mean
  true expected cost within two standard errors;
* calibration on the desk history recovers the true impact parameters within 10% with standard
  errors: the square-root ``Y`` on the realized shortfall, ATHL ``gamma, eta, beta`` on the
  counterfactual-differenced cost (also for parameters the test did not choose the defaults of).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.desk_history import (
    STRATEGIES,
    DeskExecutionConfig,
    DeskHistory,
    DeskHistoryConfig,
    _MarketPath,
    calibration_frame,
    generate_parent_orders,
    market_drift_bps,
    plan_summary,
    replay_desk_history,
    seen_volatility,
    simulate_desk_history,
)
from models.impact_calibration import calibrate
from models.risk_controls import RiskLimits
from models.simulator import SimulatorConfig
from models.synthetic_market import SyntheticMarketConfig, generate_market
from sources.desk import calibrate_file, load_desk_history
from validation.contracts import ContractError, columns, split_valid

N_ORDERS = 12_000
OUTCOME_COLUMNS = ["order_id", "shortfall_bps", "truth_bps", "impact_bps", "model_bps",
                   "filled_qty", "unfilled_qty", "avg_px", "arrival_mid", "end_mid", "fees",
                   "n_children"]


@pytest.fixture(scope="module")
def market():
    return generate_market(SyntheticMarketConfig(n_symbols=4, n_sessions=12, seed=3,
                                                 micro={"quote_interval_s": 30.0}))


@pytest.fixture(scope="module")
def desk(market) -> DeskHistory:
    return simulate_desk_history(market, DeskHistoryConfig(n_orders=N_ORDERS))


# ----------------------------------------------------------------------------- shape and contracts
def test_tables_meet_their_contracts(desk):
    po, fills, out = desk.parent_orders, desk.child_fills, desk.outcomes
    assert len(po) == len(out) == N_ORDERS
    assert split_valid("child_fills", fills)[1] == []
    contract_cols = [c for c in columns("parent_orders") if c in po.columns]
    assert split_valid("parent_orders", po[contract_cols])[1] == []
    assert list(out.columns) == OUTCOME_COLUMNS
    assert (out["order_id"].to_numpy() == po["order_id"].to_numpy()).all()
    assert set(po["strategy"]) == set(STRATEGIES)  # vwap/pov really executed on volume profiles
    assert desk.rejections.empty
    assert out["unfilled_qty"].eq(0).all()
    assert np.allclose(out["filled_qty"], po["qty"])
    assert {"maker", "taker"} == set(fills["liquidity"])


def test_parent_orders_are_those_of_generate_parent_orders(market, desk):
    gen = generate_parent_orders(market, DeskHistoryConfig(n_orders=N_ORDERS))
    cols = [c for c in gen.columns if c != "true_sigma"]
    pd.testing.assert_frame_equal(desk.parent_orders[cols], gen[cols])
    # the latent daily vol is kept; the physics ran on the volatility the market had seen
    np.testing.assert_array_equal(desk.parent_orders["latent_sigma"], gen["true_sigma"])
    seen = desk.parent_orders["true_sigma"] / desk.parent_orders["latent_sigma"]
    assert not np.allclose(seen, 1.0)
    assert 0.5 < np.median(seen) < 1.5  # the same scale: intraday RV tracks the daily vol


def _quotes_with_returns(day: str, r: float, minutes: int) -> pd.DataFrame:
    """One symbol's quotes, one a minute, mid moving by exp(+-r) alternately."""
    ts = pd.date_range(f"{day} 14:30", periods=minutes + 1, freq="1min", tz="UTC")
    mid = 100.0 * np.exp(r * (np.arange(minutes + 1) % 2))
    return pd.DataFrame({"ts": ts, "available_at": ts + pd.Timedelta("1ms"), "symbol": "X",
                         "bid_px": mid - 0.005, "ask_px": mid + 0.005,
                         "bid_sz": 100.0, "ask_sz": 100.0})


def test_seen_volatility_blends_yesterday_into_today_by_hand():
    q = pd.concat([_quotes_with_returns("2024-01-02", 0.001, 390),
                   _quotes_with_returns("2024-01-03", 0.002, 120)], ignore_index=True)
    path = _MarketPath(q)
    at = pd.DatetimeIndex(["2024-01-03 14:30:30", "2024-01-03 15:30:30",
                           "2024-01-02 16:00:30"], tz="UTC").as_unit("ns").asi8
    sig, ok = seen_volatility(path, np.array(["X"] * 3), at, blend_min=60.0)
    # mid log returns are exactly +-r each minute (the spread is constant), so RV = r^2 * 390
    assert ok.all()
    assert sig[0] == pytest.approx(0.001 * np.sqrt(390), rel=1e-9)  # minute 0: yesterday's
    # minute 60 today: w = 60 / 120, half of each day's variance
    assert sig[1] == pytest.approx(np.sqrt(0.5 * 0.002**2 * 390 + 0.5 * 0.001**2 * 390),
                                   rel=1e-9)
    # the first session, 90 minutes in, has only today's part
    assert sig[2] == pytest.approx(0.001 * np.sqrt(390), rel=1e-9)


def test_plan_summary_by_hand():
    t0 = pd.Timestamp("2024-01-02 14:30", tz="UTC")
    day = pd.Timedelta(seconds=23_400)
    orders = pd.DataFrame({"order_id": ["A", "B"], "decision_ts": [t0, t0],
                           "end_ts": [t0 + day, t0 + day], "qty": [200.0, 200.0]})
    ch = pd.DataFrame({"order_id": ["A", "A", "B", "B"],
                       "decision_ts": [t0, t0 + day / 2, t0, t0 + day / 2],
                       "qty": [100.0, 100.0, 100.0, 100.0], "kind": [0, 0, 0, 1]})
    p = plan_summary(ch, orders, beta=0.6).set_index("order_id")
    assert p.loc["A", "plan_n_children"] == 2
    assert p.loc["A", "plan_passive_share"] == 0.0
    assert p.loc["B", "plan_passive_share"] == 0.5
    # children at tau = 0 and 1/2 day, half each: front load (0 + 1/2) / 2 = 1/4;
    # timing variance sum_kl w_k w_l min(tau_k, tau_l) = 1/4 * 1/2 = 1/8 day
    assert p.loc["A", "plan_front_load"] == pytest.approx(0.25)
    assert p.loc["A", "plan_timing_var_days"] == pytest.approx(0.125)
    # rate shape: each child w = 1/2 over a 1/2-day slot -> 1/2 * 1^0.6 each; B's passive
    # child pays no temporary impact
    assert p.loc["A", "plan_rate_shape"] == pytest.approx(1.0)
    assert p.loc["B", "plan_rate_shape"] == pytest.approx(0.5)


def test_children_respect_the_parent(desk):
    po = desk.parent_orders.set_index("order_id")
    ch = desk.child_orders
    assert np.allclose(ch.groupby("order_id")["qty"].sum().reindex(po.index), po["qty"])
    par = po.loc[ch["order_id"]]
    assert (ch["decision_ts"].to_numpy() >= par["decision_ts"].to_numpy()).all()
    assert (ch["decision_ts"].to_numpy() <= par["end_ts"].to_numpy()).all()
    assert (ch["side"].to_numpy() == par["side"].to_numpy()).all()
    fills = desk.child_fills
    assert (fills["fill_ts"].to_numpy() >= po.loc[fills["order_id"], "decision_ts"].to_numpy()).all()
    n = ch.groupby("order_id").size().reindex(po.index)
    assert (desk.outcomes.set_index("order_id")["n_children"] == n).all()


def test_arrival_is_the_quote_known_at_the_decision(market, desk):
    q = market.quotes
    for _, o in desk.parent_orders.sample(20, random_state=0).iterrows():
        known = q[(q["symbol"] == o["symbol"]) & (q["available_at"] <= o["decision_ts"])].iloc[-1]
        assert o["arrival_mid"] == pytest.approx(0.5 * (known["bid_px"] + known["ask_px"]))


def test_fills_ride_on_the_market_path(market, desk):
    """Realized minus true cost is exactly the market's move at the fills (sides random)."""
    po, out, fills = desk.parent_orders, desk.outcomes, desk.child_fills
    q = market.quotes
    oid = po["order_id"].iloc[123]
    f = fills[fills["order_id"] == oid]
    sym, side = po["symbol"].iloc[123], po["side"].iloc[123]
    qs = q[q["symbol"] == sym]
    j = np.searchsorted(qs["ts"].to_numpy(), f["fill_ts"].to_numpy(), side="right") - 1
    mid = 0.5 * (qs["bid_px"].to_numpy() + qs["ask_px"].to_numpy())[j]
    m0 = out["arrival_mid"].iloc[123]
    move_bps = side * (f["qty"].to_numpy() * (mid - m0)).sum() / (m0 * f["qty"].sum()) * 1e4
    assert out["shortfall_bps"].iloc[123] - out["truth_bps"].iloc[123] == pytest.approx(
        move_bps, abs=1e-6)


# ----------------------------------------------------------------------------- acceptance 1
def test_mean_shortfall_matches_the_true_expected_cost_per_adv_bucket(desk):
    """>= 10,000 orders, 6 log buckets of %ADV from 0.1% to 20%: |mean(shortfall - truth)| < 2 SE."""
    po, out = desk.parent_orders, desk.outcomes
    edges = np.geomspace(0.001, 0.20, 7)
    bucket = np.digitize(po["pct_adv"], edges[1:-1])
    diff = out["shortfall_bps"] - out["truth_bps"]
    rows = []
    for b in range(6):
        d = diff[bucket == b]
        se = d.std(ddof=1) / np.sqrt(len(d))
        rows.append((edges[b], edges[b + 1], len(d), out["shortfall_bps"][bucket == b].mean(),
                     out["truth_bps"][bucket == b].mean(), se))
        assert len(d) >= 100
        assert abs(d.mean()) < 2 * se, rows[-1]
    assert sum(r[2] for r in rows) >= 10_000


# ----------------------------------------------------------------------------- acceptance 2
def test_sqrt_law_recovered_from_realized_shortfall(market, desk):
    """Realized shortfall (spread and fees observed and taken out), true sigma and ADV: Y within
    10% of the truth 0.8, and of the pseudo-true Y (the sqrt fit of the true expected cost: the
    physics is ATHL, so the square-root law is an approximation of it)."""
    fit = calibrate("sqrt", calibration_frame(desk), robust=True)
    oracle = calibrate("sqrt", calibration_frame(desk, label="truth_bps"), robust=True)
    y, se = fit.params["y"], fit.std_errors["y"]
    assert 0 < se < 0.05 * y
    assert y == pytest.approx(market.truth.impact.sqrt_law_y, rel=0.10)
    assert y == pytest.approx(oracle.params["y"], rel=0.10)


def _athl_fit(desk):
    frame = calibration_frame(desk, label="impact_bps", strategies=("twap",),
                              marketable_only=True)
    assert len(frame) > 1_000
    return calibrate("athl", frame, robust=True)


def test_athl_recovered_from_the_counterfactual_differenced_cost(market, desk):
    res = _athl_fit(desk)
    truth = market.truth.impact
    for p, v in (("gamma", truth.athl_gamma), ("eta", truth.athl_eta), ("beta", truth.athl_beta)):
        assert res.params[p] == pytest.approx(v, rel=0.10), p
        assert np.isfinite(res.std_errors[p])
        assert 0 <= res.std_errors[p] < 0.1 * v
    assert res.at_bounds == ()


def test_athl_recovered_for_parameters_not_seen(market):
    sim = SimulatorConfig(gamma=0.45, eta=0.10, beta=0.50)
    desk = simulate_desk_history(market, DeskHistoryConfig(n_orders=6_000, seed=5), sim=sim)
    res = _athl_fit(desk)
    for p in ("gamma", "eta", "beta"):
        assert res.params[p] == pytest.approx(getattr(sim, p), rel=0.10), p
        assert np.isfinite(res.std_errors[p])


def test_calibration_frame_feeds_the_cli_contract(desk, tmp_path):
    frame = calibration_frame(desk)
    assert {"is_bps", "qty", "adv", "sigma", "duration_days", "shares_outstanding",
            "symbol"} <= set(frame.columns)
    assert np.allclose(frame["adv"], desk.parent_orders["true_adv"])  # synthetic: the truth
    est = calibration_frame(desk, features="estimate")
    assert np.allclose(est["adv"], desk.parent_orders["adv_est"])
    path = tmp_path / "desk.csv"
    frame.head(500).to_csv(path, index=False)
    assert calibrate_file(path, "sqrt").n == 500


# ----------------------------------------------------------------------------- options
def test_risk_limits_reject_and_are_recorded(market):
    limits = RiskLimits(max_child_qty=2_000.0)
    desk = simulate_desk_history(market, DeskHistoryConfig(n_orders=500), limits=limits)
    rej = desk.rejections
    assert len(rej) > 0
    assert set(rej["reason"]) == {"max_child_size"}
    assert desk.child_fills["qty"].max() <= 2_000.0
    assert desk.outcomes["unfilled_qty"].sum() > 0


def test_volume_schedules_fall_back_to_twap_honestly(market):
    bare = type(market)(market.quotes, market.trades.iloc[:0], market.daily_bars,
                        market.membership, market.truth)
    desk = simulate_desk_history(bare, DeskHistoryConfig(n_orders=300),
                                 execution=DeskExecutionConfig(passive_order_share=0.0))
    assert not {"vwap", "pov"} & set(desk.parent_orders["strategy"])
    assert set(desk.child_fills["liquidity"]) == {"taker"}


# ----------------------------------------------------------------------------- AMZN replay
@pytest.mark.realdata
def test_amzn_replay_desk_history():
    from bestex.settings import require_data_dir
    from sources.lobster import read_lobster

    day = read_lobster(require_data_dir() / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")[0]
    desk = replay_desk_history(day, n_orders=1_000, seed=1)
    po, out = desk.parent_orders, desk.outcomes
    assert len(po) == len(out) == 1_000
    assert list(out.columns) == [*OUTCOME_COLUMNS, "adjusted_bps"]
    assert split_valid("child_fills", desk.child_fills)[1] == []
    assert out["truth_bps"].isna().all()
    # the market's own move taken out: the same mean cost (within 2 standard errors of the
    # difference), a small fraction of the noise
    diff = out["shortfall_bps"] - out["adjusted_bps"]
    assert abs(diff.mean()) < 2 * diff.std() / np.sqrt(len(diff))
    assert out["adjusted_bps"].std() < 0.2 * out["shortfall_bps"].std()
    assert out["model_bps"].gt(0).all()
    assert out["impact_bps"].ge(-1e-9).all()  # our footprint never helps us
    assert np.allclose(out["filled_qty"] + out["unfilled_qty"], po["qty"])
    assert (po["strategy"] == "twap").all()
    assert (po["symbol"] == "AMZN").all()
    assert 200 < po["arrival_mid"].median() < 250  # AMZN traded ~ $220 on 2012-06-21
    frame = calibration_frame(desk)  # estimates only (no truth on a recorded market)
    assert len(frame) == 1_000
    assert (frame["adv"] == 3.5e6).all()


def test_market_drift_is_what_separates_realized_from_true_cost(market, desk):
    """On the synthetic desk (fills laid on the market's own mid path) the true expected cost is
    exactly the realized cost less the market's move to each fill's slot start: the definition
    of a replay's ``adjusted_bps`` is the synthetic holdout's truth."""
    out = desk.outcomes.set_index("order_id")
    drift = market_drift_bps(desk.parent_orders, desk.child_orders, desk.child_fills,
                             market.quotes).reindex(out.index)
    ok = out["filled_qty"] > 0
    assert ok.mean() > 0.95
    np.testing.assert_allclose((out["shortfall_bps"] - drift)[ok], out["truth_bps"][ok],
                               atol=1e-6)
    assert drift[ok].std() > 10 * (out["shortfall_bps"] - out["truth_bps"] - drift)[ok].abs().max()


# ----------------------------------------------------------------------------- loader
def _desk_files(desk: DeskHistory, tmp_path, fmt: str):
    po = desk.parent_orders[list(columns("parent_orders"))[:-1]].head(50).copy()
    ids = set(po["order_id"])
    fills = desk.child_fills[desk.child_fills["order_id"].isin(ids)].reset_index(drop=True)
    po.loc[3, "qty"] = -5.0  # contract: qty > 0
    fills.loc[0, "liquidity"] = "both"  # contract: maker/taker
    fills.loc[1, "order_id"] = "NOPE"  # orphan
    last = fills.index[fills["order_id"] != po["order_id"].iloc[3]][-1]  # a fill before its decision
    decided = po.set_index("order_id").loc[fills.loc[last, "order_id"], "decision_ts"]
    fills.loc[last, "fill_ts"] = decided - pd.Timedelta("1s")
    p_path, f_path = tmp_path / f"po.{fmt}", tmp_path / f"fills.{fmt}"
    for frame, path in ((po, p_path), (fills, f_path)):
        frame.to_parquet(path) if fmt == "parquet" else frame.to_csv(path, index=False)
    return p_path, f_path, po, fills


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_load_desk_history_quarantines_bad_rows(desk, tmp_path, fmt):
    p_path, f_path, po, fills = _desk_files(desk, tmp_path, fmt)
    parents, got = load_desk_history(p_path, f_path)
    assert parents.rows_in == len(parents.clean) + len(parents.quarantine) == 50
    assert len(parents.quarantine) == 1
    assert got.rows_in == len(got.clean) + len(got.quarantine) == len(fills)
    bad_order = po["order_id"].iloc[3]
    n_bad_parent = int((fills["order_id"] == bad_order).sum())  # orphaned by the bad parent
    assert len(got.quarantine) == 3 + n_bad_parent - int(fills["order_id"].iloc[:3]
                                                         .eq(bad_order).sum())
    assert {"orphan_fill", "fill_before_decision"} <= set(got.quarantine["rule"])
    assert split_valid("child_fills", got.clean)[1] == []


def test_load_desk_history_names_a_missing_column(desk, tmp_path):
    p_path, f_path, _, fills = _desk_files(desk, tmp_path, "csv")
    fills.drop(columns="venue").to_csv(f_path, index=False)
    with pytest.raises(ContractError, match=r"fills\.csv.*missing columns \['venue'\]"):
        load_desk_history(p_path, f_path)
