"""The policy's validation, end to end (issue 14): out-of-sample orders on the synthetic market,
the closed-loop backtest against the benchmarks, the efficient frontier over risk aversions
and the reflexive loop. Pure (no Dagster, no MLflow): the ``assets`` layer and
``benchmarks/bench_policy.py`` call :func:`evaluate_policy`.

The out-of-sample orders are drawn by the desk's generator (its size, horizon and symbol mix)
with decisions from ``start`` on: the holdout window of the cost model's training set, which
no model of the chain has seen. Their market state is built point in time
(:func:`models.features.build_features` with the model's own calibrations).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models._desk_execution import _MarketPath, _volume_history
from models.cost_models import CostModelParams
from models.desk_history import DESK_FEES, DeskHistoryConfig, arrival_state, generate_parent_orders
from models.features import build_features, regime_probability_table
from models.policy import PolicyConfig, PolicyDecisions, candidate_children, candidate_grid, decide
from models.simulator import SimulatorConfig
from validation.policy_backtest import (
    CandidateOutcomes,
    backtest_table,
    simulate_candidates,
)
from validation.policy_loop import LoopResult, run_loop

__all__ = ["PolicyStageConfig", "PolicyStageResult", "decision_state", "evaluate_policy",
           "oos_orders"]

_ORDER_COLUMNS = ["order_id", "symbol", "side", "qty", "decision_ts", "end_ts",
                  "shares_outstanding"]


class PolicyStageConfig(BaseModel):
    """Sizes and seeds of the policy's validation (frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_orders: int = Field(3000, ge=10)  # out-of-sample orders of the backtest
    risk_aversion: float = Field(0.5, ge=0)
    frontier: list[float] = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]  # risk aversions of the frontier
    loop_blocks: int = Field(4, ge=2)  # iterations of the reflexive loop
    loop_orders: int = Field(1000, ge=10)  # orders per iteration
    loop_share: float = Field(0.6, gt=0, lt=1)  # the loop's part of the window (the first)
    explore: float = Field(0.1, ge=0, lt=1)
    n_boot: int = Field(2000, ge=100)
    scenarios: list[str] = ["crisis_2008"]  # stress scenarios (calm sessions, then the stress)
    scenario_orders: int = Field(1000, ge=10)
    seed: int = 777


@dataclass(frozen=True)
class PolicyStageResult:
    """Everything :func:`evaluate_policy` measured."""

    orders: pd.DataFrame
    decisions: PolicyDecisions
    outcomes: CandidateOutcomes
    table: pd.DataFrame
    frontier: pd.DataFrame
    loop: LoopResult
    timings_s: dict[str, float]
    children: list[pd.DataFrame]
    scenarios: pd.DataFrame

    def chosen_children(self) -> pd.DataFrame:
        """The children of the plan each backtest order's policy chose."""
        c = self.decisions.chosen
        parts = [ch[ch["order_id"].isin(set(c.loc[c["candidate"] == j, "order_id"]))]
                 for j, ch in enumerate(self.children)]
        return pd.concat(parts, ignore_index=True)


def oos_orders(market: Any, start: pd.Timestamp, n: int, *, seed: int,
               path: _MarketPath | None = None) -> pd.DataFrame:
    """``n`` parent orders of the desk's generator decided at or after ``start`` (time order),
    with the state the simulator starts them from (:func:`arrival_state`)."""
    sessions = pd.to_datetime(list(market.truth.sessions))
    share = max(float(np.mean(sessions >= pd.Timestamp(start).tz_localize(None).normalize())),
                1e-3)
    draw = int(np.ceil(n / share * 1.3)) + 10
    po = generate_parent_orders(market, DeskHistoryConfig(n_orders=draw, seed=seed))
    po = po[po["decision_ts"] >= start].head(n).reset_index(drop=True)
    if len(po) < n:
        raise ValueError(f"only {len(po)} orders decided after {start}; wanted {n}")
    return arrival_state(market, po, path=path)


def decision_state(orders: pd.DataFrame, market: Any, bundle: Any,
                   regime_probabilities: pd.DataFrame | None = None) -> pd.DataFrame:
    """The market state of each order at its decision, point in time, with the model's own
    parametric calibrations (what serving does)."""
    return build_features(orders[_ORDER_COLUMNS], quotes=market.quotes, trades=market.trades,
                          daily_bars=market.daily_bars,
                          calibrations=getattr(bundle, "calibrations", None),
                          config=getattr(bundle, "feature_config", None),
                          regime_probabilities=regime_probabilities)


def scenario_table(name: str, bundle: Any, *, config: PolicyStageConfig,
                   policy: PolicyConfig) -> pd.DataFrame:
    """The paired backtest table of the policy on a stress scenario's market
    (:data:`validation.stress.SCENARIOS`: calm sessions, then the stress), with a
    ``scenario`` column: the calm regime the out-of-sample window may lack, and the crisis."""
    from validation.stress import SCENARIOS, stress_market

    market = stress_market(SCENARIOS[name], seed=config.seed)
    path = _MarketPath(market.quotes)
    po = generate_parent_orders(market, DeskHistoryConfig(n_orders=config.scenario_orders,
                                                          seed=config.seed))
    orders = arrival_state(market, po, path=path)
    state = decision_state(orders, market, bundle)
    vh = {s: _volume_history(market.trades, s) for s in orders["symbol"].unique()}
    grid = candidate_grid()
    kids = [candidate_children(orders, c, config=policy, volume_history=vh) for c in grid]
    dec = decide(bundle, state, config=policy, grid=grid, children=kids)
    sim = SimulatorConfig.from_truth(market.truth.impact, fees=DESK_FEES)
    out = simulate_candidates(market, orders, grid, kids, sim, path=path)
    table = backtest_table(out, dec.chosen["candidate"].to_numpy(),
                           risk_aversion=policy.risk_aversion,
                           regime=orders["regime"].astype(str).to_numpy(),
                           pct_adv=orders["pct_adv"].to_numpy(np.float64), n_boot=config.n_boot,
                           seed=config.seed)
    table.insert(0, "scenario", name)
    return table


def _after(t: pd.Timestamp, orders: pd.DataFrame, state: pd.DataFrame, kids: list[pd.DataFrame],
           out: CandidateOutcomes) -> tuple[pd.DataFrame, list[pd.DataFrame], CandidateOutcomes]:
    """The orders (state, children, outcomes) decided after ``t``."""
    m = (orders["decision_ts"] > t).to_numpy()
    ids = set(orders.loc[m, "order_id"].astype(str))
    return (state[m].reset_index(drop=True),
            [ch[ch["order_id"].isin(ids)].reset_index(drop=True) for ch in kids],
            CandidateOutcomes(out.truth[m], out.realized[m], out.true_sd[m], out.names,
                              out.grid))


def evaluate_policy(market: Any, bundle: Any, training_rows: pd.DataFrame,
                    params: CostModelParams, *, start: pd.Timestamp,
                    config: PolicyStageConfig | None = None,
                    progress: Callable[[str], object] | None = None) -> PolicyStageResult:
    """Backtest, frontier and loop of the policy with ``bundle`` on ``market`` (a synthetic
    market with its truth), on orders decided from ``start`` on. ``training_rows``: the rows the
    bundle was trained on (the loop adds its fills to them)."""
    import time

    cfg = config or PolicyStageConfig()
    say = progress or (lambda _m: None)
    t = {}
    t0 = time.perf_counter()
    path = _MarketPath(market.quotes)
    sim = SimulatorConfig.from_truth(market.truth.impact, fees=DESK_FEES)
    regimes = regime_probability_table(market.daily_bars, market.quotes,
                                       config=getattr(bundle, "feature_config", None))
    n_all = cfg.n_orders + cfg.loop_blocks * cfg.loop_orders
    orders = oos_orders(market, start, n_all, seed=cfg.seed, path=path)
    state = decision_state(orders, market, bundle, regimes)
    vh = {s: _volume_history(market.trades, s) for s in orders["symbol"].unique()}
    t["orders_and_features"] = time.perf_counter() - t0
    say(f"policy: {len(orders)} out-of-sample orders from {start} "
        f"({t['orders_and_features']:.1f} s)")
    # the backtest: every other order (the loop uses the rest, in time order)
    rng = np.random.default_rng(cfg.seed)
    is_bt = np.zeros(len(orders), bool)
    is_bt[rng.choice(len(orders), cfg.n_orders, replace=False)] = True
    bt_o, bt_s = orders[is_bt].reset_index(drop=True), state[is_bt].reset_index(drop=True)
    grid = candidate_grid()
    pcfg = PolicyConfig(risk_aversion=cfg.risk_aversion, seed=cfg.seed)
    t0 = time.perf_counter()
    kids = [candidate_children(bt_o, c, config=pcfg, volume_history=vh) for c in grid]
    dec = decide(bundle, bt_s, config=pcfg, grid=grid, children=kids)
    t["decide"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = simulate_candidates(market, bt_o, grid, kids, sim, path=path)
    t["simulate"] = time.perf_counter() - t0
    table = backtest_table(out, dec.chosen["candidate"].to_numpy(), risk_aversion=cfg.risk_aversion,
                           regime=bt_o["regime"].astype(str).to_numpy(),
                           pct_adv=bt_o["pct_adv"].to_numpy(np.float64), n_boot=cfg.n_boot,
                           seed=cfg.seed)
    say(f"policy backtest: {len(bt_o)} orders x {len(grid)} plans ({t['decide']:.1f} s to "
        f"decide, {t['simulate']:.1f} s to simulate)")
    i = np.arange(len(bt_o))
    fr = []
    for lam in cfg.frontier:
        d = decide(bundle, bt_s, config=pcfg.model_copy(update={"risk_aversion": lam}),
                   grid=grid, children=kids)
        c = d.chosen["candidate"].to_numpy()
        fr.append({"risk_aversion": lam, "truth_bps": float(np.nanmean(out.truth[i, c])),
                   "true_sd_bps": float(np.nanmean(out.true_sd[i, c])),
                   "realized_bps": float(np.nanmean(out.realized[i, c])),
                   "realized_sd_bps": float(np.nanstd(out.realized[i, c], ddof=1))})
    frontier = pd.DataFrame(fr)
    # the loop: consecutive blocks of the other orders in the first part of the window; its
    # models are scored on the backtest orders decided after the last block's fills are known
    dec_ts = orders["decision_ts"]
    cut = dec_ts.quantile(cfg.loop_share)
    in_loop = ~is_bt & (dec_ts < cut).to_numpy()
    rest_o, rest_s = orders[in_loop].reset_index(drop=True), state[in_loop].reset_index(drop=True)
    edges = np.linspace(0, len(rest_o), cfg.loop_blocks + 1).astype(int)
    blocks = [(rest_o.iloc[a:b].reset_index(drop=True), rest_s.iloc[a:b].reset_index(drop=True))
              for a, b in itertools.pairwise(edges)]
    t0 = time.perf_counter()
    loop = run_loop(blocks, market, bundle, training_rows, params, sim, grid=grid,
                    policy=pcfg.model_copy(update={"explore": cfg.explore}),
                    volume_history=vh, path=path, evaluation=_after(
                        rest_o["end_ts"].max(), bt_o, bt_s, kids, out),
                    progress=say)
    t["loop"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scen = [scenario_table(name, bundle, config=cfg, policy=pcfg) for name in cfg.scenarios]
    t["scenarios"] = time.perf_counter() - t0
    say(f"policy on scenarios {cfg.scenarios} ({t['scenarios']:.1f} s)")
    return PolicyStageResult(bt_o, dec, out, table, frontier, loop, t, kids,
                             pd.concat(scen, ignore_index=True) if scen else pd.DataFrame())
