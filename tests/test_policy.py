"""The execution policy (issue 14): plans that are valid, decisions that follow the objective,
the risk limits, the two limits of the risk aversion, exploration with propensities, and the
paired benchmarks of the backtest."""

from __future__ import annotations

import itertools
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from models.desk_history import plan_summary
from models.features import features_from_state
from models.policy import (
    Z80,
    Candidate,
    PolicyConfig,
    candidate_children,
    candidate_grid,
    decide,
    limits_mask,
)
from models.risk_controls import RiskLimits
from models.synthetic_market import SyntheticMarketConfig, generate_market
from validation.policy_backtest import (
    CandidateOutcomes,
    backtest_table,
    benchmark_choices,
    paired_ci,
)

T0 = pd.Timestamp("2025-01-15 14:35", tz="UTC")  # 09:35 New York


def _orders(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dec = T0 + pd.to_timedelta(rng.integers(0, 120, n), unit="min")
    dur = rng.integers(10, 200, n)
    return pd.DataFrame({
        "order_id": [f"o{i}" for i in range(n)], "symbol": "SYM0",
        "side": rng.choice([-1, 1], n), "qty": rng.integers(100, 50_000, n).astype(float),
        "decision_ts": dec, "end_ts": dec + pd.to_timedelta(dur, unit="min"),
        "adv": 2e6, "sigma_daily": 0.02, "arrival_mid": 50.0, "arrival_spread_bps": 4.0,
        "sigma_seen": 0.02, "shares_outstanding": 4e8})


class ImpactAndRisk:
    """A cost model that knows a simple truth: the mean is the ATHL temporary term of the plan
    (``temp_impact_shape_bps``, eta = 1), the 80 % band is +-Z80 x its timing risk."""

    features: ClassVar[list[str]] = ["temp_impact_shape_bps", "timing_risk_bps"]

    def predict(self, feats: pd.DataFrame):
        m = feats["temp_impact_shape_bps"].to_numpy(np.float64)
        r = feats["timing_risk_bps"].to_numpy(np.float64)
        return m, m - Z80 * r, m + Z80 * r


def _plan_features(orders: pd.DataFrame, ch: pd.DataFrame, cand: Candidate) -> pd.DataFrame:
    plan = plan_summary(ch, orders)
    rows = orders.assign(strategy=cand.family, **{c: plan[c].to_numpy() for c in plan.columns
                                                  if c != "order_id"})
    return features_from_state(rows)


@pytest.fixture(scope="module")
def volume():
    from models._desk_execution import _volume_history

    m = generate_market(SyntheticMarketConfig(n_symbols=1, n_sessions=12, seed=5,
                                              start_date="2025-01-01"))
    sym = str(m.daily_bars["symbol"].iloc[0])
    return {"SYM0": _volume_history(m.trades, sym)}


def test_every_plan_sums_to_the_parent_inside_its_window(volume):
    o = _orders()
    for cand in candidate_grid():
        ch = candidate_children(o, cand, volume_history=volume)
        assert set(ch.columns) == {"order_id", "decision_ts", "qty", "side", "kind", "strategy"}
        g = ch.groupby("order_id", sort=False)
        tot = g["qty"].sum().reindex(o["order_id"])
        np.testing.assert_allclose(tot.to_numpy(), o["qty"].to_numpy(), rtol=1e-12,
                                   err_msg=cand.name)
        first = g["decision_ts"].min().reindex(o["order_id"]).to_numpy()
        last = g["decision_ts"].max().reindex(o["order_id"]).to_numpy()
        assert (first >= o["decision_ts"].to_numpy()).all(), cand.name
        assert (last < o["end_ts"].to_numpy()).all(), cand.name
        assert (ch["qty"] > 0).all()
        share = (ch["kind"] == 1).groupby(ch["order_id"]).mean()
        if cand.passive == 0:
            assert share.max() == 0
        else:  # every other child rests at the touch
            assert share[g.size() >= 4].between(0.4, 0.5).all()


def test_the_choice_is_the_argmin_of_mean_plus_lambda_sd():
    o = _orders()
    grid = candidate_grid()
    lam = 0.7
    dec = decide(ImpactAndRisk(), o, config=PolicyConfig(risk_aversion=lam), grid=grid)
    # the objective of each plan, computed here from the plan's own features
    j = np.column_stack([
        (f := _plan_features(o, candidate_children(o, c), c))["temp_impact_shape_bps"]
        + lam * f["timing_risk_bps"] for c in grid])
    np.testing.assert_allclose(dec.chosen["objective"], j.min(axis=1), rtol=1e-9)
    assert (dec.chosen["candidate"].to_numpy() == j.argmin(axis=1)).all()
    # the predicted sd is the band's half width over Z80
    np.testing.assert_allclose(dec.chosen["pred_sd_bps"], (dec.chosen["pred_hi_bps"]
                                                           - dec.chosen["pred_lo_bps"]) / (2 * Z80))
    # every decision is explained: all candidates, best first
    ex = dec.explain("o3")
    assert len(ex) == len(grid)
    assert ex["objective"].is_monotonic_increasing
    assert ex["candidate"].iloc[0] == dec.chosen.set_index("order_id").loc["o3", "candidate"]


def test_risk_aversion_limits_fast_and_patient():
    o = _orders()
    grid = candidate_grid()
    fast = decide(ImpactAndRisk(), o, config=PolicyConfig(risk_aversion=1e6), grid=grid)
    slow = decide(ImpactAndRisk(), o, config=PolicyConfig(risk_aversion=0.0), grid=grid)
    kt = max(c.param for c in grid if c.family == "almgren_chriss")
    # lambda -> infinity: the most urgent plan (AC at the largest kappa T: the least timing risk)
    assert (fast.chosen["name"] == f"almgren_chriss(kT={kt:g})").all()
    # lambda -> 0: the least impact, trading evenly to the horizon
    assert set(slow.chosen["family"]) <= {"twap", "vwap"}
    ch = candidate_children(o, grid[slow.chosen["candidate"].iloc[0]])
    plan = plan_summary(ch, o)
    # n equal children at the starts of n equal slots: front load (n - 1) / 2n, i.e. evenly
    # to the horizon (0.5 in the limit)
    n = plan["plan_n_children"].to_numpy()
    np.testing.assert_allclose(plan["plan_front_load"], (n - 1) / (2 * n), atol=0.02)


def test_the_policy_never_breaks_a_limit_and_trades_as_fast_as_they_allow():
    o = _orders()
    grid = candidate_grid()
    kids = [candidate_children(o, c) for c in grid]
    twap_max = kids[0].groupby("order_id")["qty"].max()
    lim = RiskLimits(max_child_qty=1.01 * float(twap_max.max()))
    ok = limits_mask(o, kids, lim)
    assert ok[:, 0].all()  # TWAP's even children are all within the size limit
    # the largest kappa T front-loads big first children: the size limit rules it out often
    assert (~ok[:, -3]).sum() > 0
    dec = decide(ImpactAndRisk(), o, config=PolicyConfig(risk_aversion=1e6), grid=grid,
                 children=kids, allowed=ok)
    c = dec.chosen["candidate"].to_numpy()
    assert ok[np.arange(len(o)), c].all()
    # as fast as the limits allow: the least predicted sd among the allowed plans
    sd = dec.candidates["pred_sd_bps"].to_numpy().reshape(len(grid), -1).T
    best = np.where(ok, sd, np.inf).min(axis=1)
    np.testing.assert_allclose(dec.chosen["pred_sd_bps"], best)
    for i, j in enumerate(c):
        child = kids[j][kids[j]["order_id"] == o["order_id"].iloc[i]]
        assert child["qty"].max() <= lim.max_child_qty + 1e-9
    # an order no plan can work within the limits is refused, with the reason
    small = limits_mask(o, kids, RiskLimits(max_child_qty=float(twap_max.min())))
    d = decide(ImpactAndRisk(), o, grid=grid, children=kids, allowed=small)
    out = ~small.any(axis=1)
    assert out.any()
    assert not out.all()
    assert (d.chosen.loc[out, "name"] == "refused").all()
    assert (d.chosen.loc[out, "candidate"] == -1).all()
    assert d.chosen.loc[out, "reason"].str.contains("risk limits").all()
    assert (d.chosen.loc[~out, "reason"] == "").all()
    # the kill switch allows nothing: every order is refused
    ks = decide(ImpactAndRisk(), o, grid=grid, children=kids,
                allowed=limits_mask(o, kids, RiskLimits(kill_switch=True)))
    assert (ks.chosen["candidate"] == -1).all()


def test_exploration_logs_its_propensities():
    o = _orders(n=3000, seed=1)
    grid = candidate_grid()
    eps, k = 0.2, len(grid)
    dec = decide(ImpactAndRisk(), o, config=PolicyConfig(risk_aversion=0.5, explore=eps),
                 grid=grid)
    ch = dec.chosen
    greedy = ch["candidate"] == ch["greedy"]
    np.testing.assert_allclose(ch.loc[greedy, "propensity"], 1 - eps + eps / k)
    np.testing.assert_allclose(ch.loc[~greedy, "propensity"], eps / k)
    # a uniform draw lands off the greedy plan with probability eps (k - 1) / k
    share, p = (~greedy).mean(), eps * (k - 1) / k
    assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / len(o))
    assert (ch["explored"] == ~greedy).all()


def test_paired_ci_and_the_oracles():
    mu, lo, hi = paired_ci(np.full(50, -2.0))
    assert (mu, lo, hi) == (-2.0, -2.0, -2.0)
    d = np.random.default_rng(0).normal(1.0, 2.0, 4000)
    mu, lo, hi = paired_ci(d)
    assert lo < 1.0 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * 2.0 / np.sqrt(4000), rel=0.1)
    grid = candidate_grid()
    k = len(grid)
    truth = np.full((2, k), 30.0)
    sd = np.full((2, k), 10.0)
    names = [c.name for c in grid]
    # order 0: AC kT=4 is the truth's best AC plan, twap+passive the best plan overall
    truth[0, names.index("almgren_chriss(kT=4)")] = 20.0
    truth[0, names.index("twap+passive0.5")] = 12.0
    # order 1: with lambda = 1, AC kT=16 (sd 2) beats AC kT=1 (cost 25, sd 10)
    truth[1, names.index("almgren_chriss(kT=1)")] = 25.0
    truth[1, names.index("almgren_chriss(kT=16)")] = 28.0
    sd[1, names.index("almgren_chriss(kT=16)")] = 2.0
    out = CandidateOutcomes(truth, truth + 1.0, sd, tuple(names), grid)
    b = benchmark_choices(out, 1.0)
    assert [names[j] for j in b["oracle_ac"]] == ["almgren_chriss(kT=4)", "almgren_chriss(kT=16)"]
    assert [names[j] for j in b["oracle"]] == ["twap+passive0.5", "almgren_chriss(kT=16)"]
    assert names[b["ac_fixed"][0]] == "almgren_chriss(kT=2)"
    t = backtest_table(out, b["oracle"], risk_aversion=1.0, n_boot=200)
    row = t[(t["group"] == "all") & (t["strategy"] == "twap")].iloc[0]
    # policy (= the oracle here) minus TWAP: (12 - 30 + 28 - 30) / 2 = -10 bps
    assert row["policy_minus_truth_bps"] == pytest.approx(-10.0)
    assert t[(t["strategy"] == "oracle")]["policy_minus_objective_bps"].iloc[0] == 0.0


def test_the_adaptive_policy_replans_within_the_window_and_keeps_a_time_consistent_plan():
    from models.policy import adaptive_children

    o = _orders(n=25, seed=3)
    grid = candidate_grid()
    seen = []

    def state_at(sub: pd.DataFrame) -> pd.DataFrame:  # the market does not change
        seen.append(sub["decision_ts"].min())
        const = o.set_index("order_id").loc[sub["order_id"], ["adv", "sigma_daily",
                                                              "arrival_mid", "arrival_spread_bps",
                                                              "sigma_seen", "shares_outstanding"]]
        return sub.reset_index(drop=True).join(const.reset_index(drop=True))

    for lam in (0.0, 1e6):
        seen.clear()
        cfg = PolicyConfig(risk_aversion=lam)
        ch, log = adaptive_children(o, state_at, ImpactAndRisk(), config=cfg, grid=grid)
        tot = ch.groupby("order_id")["qty"].sum().reindex(o["order_id"])
        np.testing.assert_allclose(tot.to_numpy(), o["qty"].to_numpy(), rtol=1e-12)
        t = ch.set_index("order_id")["decision_ts"]
        lo = o.set_index("order_id")["decision_ts"].reindex(t.index)
        hi = o.set_index("order_id")["end_ts"].reindex(t.index)
        assert (t >= lo).all()
        assert (t < hi).all()
        # re-planned at every interval, each time from the state at that interval's start
        assert log["interval"].max() >= 3
        assert all(a < b for a, b in itertools.pairwise(seen))  # one state per interval
        # nothing changes in the market: the re-plans reproduce the static plan, child by
        # child (the urgency is kept per unit of time, not per remaining horizon)
        static = decide(ImpactAndRisk(), o, config=cfg, grid=grid)
        first = log[log["interval"] == 0].set_index("order_id")["name"]
        assert (first.reindex(o["order_id"]).to_numpy() == static.chosen["name"].to_numpy()).all()
        for i in (0, 7, 13):
            oid = o["order_id"].iloc[i]
            j = int(static.chosen["candidate"].iloc[i])
            want = candidate_children(o.iloc[[i]], grid[j])["qty"].to_numpy()
            got = ch[ch["order_id"] == oid]["qty"].to_numpy()
            m = min(len(got), len(want)) - 2  # whole-lot rounding may move the last shares
            np.testing.assert_allclose(got[:m], want[:m], atol=1.0,
                                       err_msg=f"{oid} {grid[j].name}")
            assert abs(len(got) - len(want)) <= 1


def test_the_adaptive_policy_sends_nothing_for_a_refused_order():
    from models.policy import adaptive_children

    o = _orders(n=6, seed=4)

    def state_at(sub: pd.DataFrame) -> pd.DataFrame:
        const = o.set_index("order_id").loc[sub["order_id"], ["adv", "sigma_daily",
                                                              "arrival_mid", "arrival_spread_bps",
                                                              "sigma_seen", "shares_outstanding"]]
        return sub.reset_index(drop=True).join(const.reset_index(drop=True))

    ch, _ = adaptive_children(o, state_at, ImpactAndRisk(), grid=candidate_grid(),
                              limits=RiskLimits(kill_switch=True))
    assert len(ch) == 0
