"""The policy's validation end to end on a small synthetic market (issue 14): the backtest
against the benchmarks, the loop with off-policy evaluation, and the policy's mix executed as
one desk costing what each plan cost alone."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from models.cost_models import CostModelParams
from models.cost_training import TrainingConfig, fit_bundle, model_features
from models.desk_history import DESK_FEES, DeskHistoryConfig, execute_plan, simulate_desk_history
from models.features import FeatureConfig, fit_parametric
from models.policy import Z80, decide
from models.simulator import SimulatorConfig
from models.synthetic_market import SyntheticMarketConfig, generate_market
from validation.policy_backtest import BENCHMARKS
from validation.policy_stage import PolicyStageConfig, evaluate_policy
from validation.stress import desk_features

PARAMS = CostModelParams(num_boost_round=120, learning_rate=0.1, max_depth=4)


@pytest.fixture(scope="module")
def stage():
    market = generate_market(SyntheticMarketConfig(n_symbols=3, n_sessions=30, seed=7,
                                                   micro={"quote_interval_s": 30.0}))
    hist = simulate_desk_history(market, DeskHistoryConfig(n_orders=4000, seed=1))
    feats = desk_features(market, hist)
    out = hist.outcomes.set_index("order_id").reindex(hist.parent_orders["order_id"])
    feats["is_bps"] = out["shortfall_bps"].to_numpy()
    feats["t1"] = feats["end_ts"]  # the label is known when the order ends
    feats = feats[np.isfinite(feats["is_bps"])].sort_values("decision_ts").reset_index(drop=True)
    start = feats["decision_ts"].quantile(0.7)
    train = feats[feats["decision_ts"] < start].reset_index(drop=True)
    fcfg = FeatureConfig()
    bundle = fit_bundle(train, PARAMS, model_features(train), TrainingConfig(),
                        feature_config=fcfg, calibrations=fit_parametric(train, config=fcfg))
    cfg = PolicyStageConfig(n_orders=300, loop_blocks=3, loop_orders=150, n_boot=300,
                            frontier=[0.0, 4.0], scenarios=[])
    res = evaluate_policy(market, bundle, train, PARAMS, start=start, config=cfg)
    return market, res


def test_the_backtest_pairs_the_policy_with_every_benchmark(stage):
    _, res = stage
    t = res.table
    a = t[t["group"] == "all"].set_index("strategy")
    assert list(a.index) == ["policy", *BENCHMARKS]
    assert (a["n"] == 300).all()
    # the policy optimizes the objective: on the truth it beats every fixed recipe
    for b in ("twap", "vwap", "pov", "ac_fixed"):
        assert a.loc[b, "policy_minus_objective_hi"] < 0, b
    # the oracle is the best plan of each order on the truth: nothing beats its objective
    assert a.loc["oracle", "policy_minus_objective_lo"] >= -1e-9
    # the frontier: more risk aversion, less timing risk and more expected cost
    f = res.frontier.set_index("risk_aversion")
    assert f.loc[4.0, "true_sd_bps"] < f.loc[0.0, "true_sd_bps"]
    assert f.loc[4.0, "truth_bps"] > f.loc[0.0, "truth_bps"]


def test_the_policys_mix_costs_what_each_plan_cost_alone(stage):
    market, res = stage
    ch = res.chosen_children()
    tot = ch.groupby("order_id")["qty"].sum().reindex(res.orders["order_id"].astype(str))
    np.testing.assert_allclose(tot.to_numpy(), res.orders["qty"].to_numpy(), rtol=1e-12)
    sim = SimulatorConfig.from_truth(market.truth.impact, fees=DESK_FEES)
    h = execute_plan(market, res.orders, ch, sim)
    i = np.arange(len(res.orders))
    c = res.decisions.chosen["candidate"].to_numpy()
    got = h.outcomes.set_index("order_id")["truth_bps"].reindex(
        res.orders["order_id"].astype(str)).to_numpy()
    np.testing.assert_allclose(got, res.outcomes.truth[i, c], rtol=1e-9, atol=1e-9)


def test_the_loop_logs_propensities_and_estimates_off_policy(stage):
    _, res = stage
    it, ope = res.loop.iterations, res.loop.ope
    assert it["iteration"].tolist() == [0, 1, 2]
    assert len(res.loop.bundles) == 3
    # each block's fills joined, those known before the next block's first decision only
    added = it["train_rows"].diff().dropna().to_numpy()
    assert (added > 0).all()
    assert (added <= it["n_orders"].to_numpy()[:-1]).all()
    assert it["explored_share"].between(0.02, 0.25).all()
    assert it[["eval_model_mae_all_plans_bps", "eval_regret_bps"]].notna().all().all()
    assert it["eval_decisions_changed"].iloc[1:].between(0, 1).all()
    g = ope[ope["target"] == "greedy"]
    assert set(g["estimator"]) == {"ips", "snips", "dr"}
    assert g["estimate_bps"].notna().all()
    # the greedy policy is what the logging policy mostly did: the estimates cover its truth
    assert g["covers_truth"].mean() >= 2 / 3
    assert (g["ess"].to_numpy() > 0.7 * np.repeat(it["n_orders"].to_numpy(), 3)).all()


class KnowsTheTruth:
    """A cost model that predicts each plan's true expected cost and true timing sd (the
    simulator's), in ``decide``'s candidate-major row order."""

    features: ClassVar[list[str]] = ["timing_risk_bps"]

    def __init__(self, truth: np.ndarray, sd: np.ndarray) -> None:
        self.truth, self.sd = truth, sd

    def predict(self, feats):
        m, s = self.truth.T.ravel(), self.sd.T.ravel()
        return m, m - Z80 * s, m + Z80 * s


def test_with_a_model_that_knows_the_truth_the_policy_is_the_oracle(stage):
    from validation.policy_backtest import benchmark_choices

    _, res = stage
    out = res.outcomes
    lam = res.decisions.config.risk_aversion
    state = res.orders.assign(adv=res.orders["adv_est"])
    dec = decide(KnowsTheTruth(out.truth, out.true_sd), state, config=res.decisions.config,
                 grid=res.decisions.grid, children=res.children)
    oracle = benchmark_choices(out, lam)["oracle"]
    assert (dec.chosen["candidate"].to_numpy() == oracle).all()
    # and, by hand for the first order: the plan with the least truth + lambda x sd
    j = out.truth[0] + lam * out.true_sd[0]
    assert dec.chosen["candidate"].iloc[0] == int(np.argmin(j))
    assert dec.chosen["objective"].iloc[0] == pytest.approx(j.min())
