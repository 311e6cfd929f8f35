"""The execution policy on the recorded books (issue 14, item 2): the same paired table as on
the synthetic market, on the real replays (AMZN 2012-06-21, BitMEX 2020-03-10).

The stage-4 desk's orders of a book (:func:`validation._stress_real.replay_book`: the same
orders, point-in-time state with the desk's estimates) are worked with every candidate plan of
the policy on the recorded quotes with the simulator's fills and footprint
(:func:`models.simulator.replay_l1`). A recorded market has no true expected cost: each plan is
scored by its **market-adjusted cost** (the realized cost less the recorded mid's move to each
fill's slot start, :func:`models.desk_history.market_drift_bps`: our footprint, spread and fees
on that book) and its realized cost, and the "oracle" rows are the ex-post best plans on the
adjusted cost plus lambda x the desk's timing-risk estimate. VWAP and POV need an intraday volume
profile of earlier sessions, which a one-day file does not have: they are not candidates here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models._desk_execution import _MarketPath, _sim_children
from models.desk_history import market_drift_bps, plan_summary
from models.features import FeatureConfig
from models.policy import Candidate, PolicyConfig, candidate_children, candidate_grid, decide
from models.simulator import Parents, replay_l1
from validation._stress_real import BookSpec, Replayed, replay_book
from validation.policy_backtest import CandidateOutcomes, backtest_table

__all__ = ["real_book_policy"]


def _replay_plan(replayed: Replayed, spec: BookSpec, ch: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """Realized and market-adjusted cost (bps) of each order of ``replayed`` worked with
    children ``ch``, and the timing-variance factor of the plan."""
    orders = replayed.history.parent_orders
    est = spec.estimates
    n = len(orders)
    dec = orders["decision_ts"].dt.as_unit("ns").array.asi8
    end = orders["end_ts"].dt.as_unit("ns").array.asi8
    par = Parents(symbol_idx=np.zeros(n, np.int64), arrival_mid=orders["arrival_mid"].to_numpy(),
                  sigma_daily=np.full(n, est["sigma_daily"]), adv=np.full(n, est["adv"]),
                  spread_bps=orders["arrival_spread_bps"].to_numpy(),
                  shares_outstanding=np.full(n, est["shares_outstanding"]), start_ns=dec,
                  end_ns=end, order_id=orders["order_id"].to_numpy())
    kids = _sim_children(ch, orders)
    q = replayed.quotes
    book = q[["ts", "available_at", "symbol", "bid_px", "bid_sz", "ask_px", "ask_sz"]]
    res = replay_l1(book, par, kids, replayed.sim, symbols=[str(orders["symbol"].iloc[0])])
    realized = np.asarray(res.shortfall_bps, np.float64)
    drift = market_drift_bps(orders, ch, res.child_fills(), _MarketPath(q))
    adjusted = realized - drift.reindex(orders["order_id"].astype(str)).to_numpy(np.float64)
    var = plan_summary(ch, orders)["plan_timing_var_days"].to_numpy(np.float64)
    return realized, adjusted, var


def real_book_policy(book: Any, spec: BookSpec, name: str, bundle: Any, *,
                     config: PolicyConfig | None = None, n_orders: int = 500, seed: int = 1,
                     n_boot: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(table, chosen)``: :func:`validation.policy_backtest.backtest_table` of the policy on
    the recorded ``book`` (``truth_bps`` = the market-adjusted cost; ``realized_bps`` the
    realized one; ``true_sd_bps`` the desk's timing-risk estimate) with a ``book`` column, and
    the policy's choices.

    ``seed`` draws the desk's orders: the default (1) is not the seed of the real books' training
    rows (``training_set/real``, seed 0), so the policy is scored on orders its model did not
    see (the same recorded day, though: see the module docstring)."""
    cfg = config or PolicyConfig()
    rep = replay_book(book, spec, n_orders=n_orders, seed=seed, name=name,
                      calibrations=getattr(bundle, "calibrations", None))
    orders = rep.history.parent_orders.reset_index(drop=True)
    state = rep.features.reset_index(drop=True)
    pcfg = cfg.model_copy(update={"child_interval_min": spec.child_interval_min})
    grid: tuple[Candidate, ...] = tuple(c for c in candidate_grid()
                                        if c.family not in ("vwap", "pov"))
    kids = [candidate_children(orders, c, config=pcfg) for c in grid]
    dec = decide(bundle, state, config=pcfg, grid=grid, children=kids,
                 feature_config=FeatureConfig(calendar=spec.calendar))
    n, k = len(orders), len(grid)
    real, adj, sd = (np.full((n, k), np.nan) for _ in range(3))
    sigma = float(spec.estimates["sigma_daily"]) * np.sqrt(390.0 / (spec.session_ns / 60e9))
    for j, ch in enumerate(kids):
        r, a, v = _replay_plan(rep, spec, ch)
        real[:, j], adj[:, j], sd[:, j] = r, a, sigma * np.sqrt(v) * 1e4
    out = CandidateOutcomes(adj, real, sd, tuple(c.name for c in grid), grid)
    choice = dec.chosen["candidate"].to_numpy()
    lam = cfg.risk_aversion
    j_obj = adj + lam * sd
    ac = np.array([j for j, c in enumerate(grid) if c.family == "almgren_chriss"
                   and c.passive == 0])
    twap = next(j for j, c in enumerate(grid) if c.family == "twap" and c.passive == 0)
    kt2 = next(j for j, c in enumerate(grid) if c.family == "almgren_chriss" and c.param == 2
               and c.passive == 0)
    bench = {"twap": np.full(n, twap), "ac_fixed": np.full(n, kt2),
             "oracle_ac": ac[np.nanargmin(j_obj[:, ac], axis=1)],
             "oracle": np.nanargmin(j_obj, axis=1)}
    pct = orders["qty"].to_numpy(np.float64) / float(spec.estimates["adv"])
    table = backtest_table(out, choice, risk_aversion=lam, pct_adv=pct, n_boot=n_boot,
                           seed=seed, benchmarks=bench)
    table.insert(0, "book", name)
    return table, dec.chosen.assign(book=name)
