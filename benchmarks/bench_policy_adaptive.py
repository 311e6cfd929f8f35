"""The adaptive policy against the static one (issue 14): the same out-of-sample orders, the
same paths, paired.

    .venv/bin/python benchmarks/bench_policy_adaptive.py --home DIR [--orders 300]

``DIR`` is a `make demo` home (champion, synthetic market in the lake, training set). The static
policy decides once per order (:func:`models.policy.decide`); the adaptive one
(:func:`models.policy.adaptive_children`) re-plans the urgency of what is left at every child
interval from the market state rebuilt point in time at that interval's start
(:func:`validation.policy_stage.decision_state`). Both plans are executed through the simulator
with the true impact parameters on the market's own path; printed: the mean true IS and
objective of each and the paired difference with its 95 % bootstrap interval.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--risk-aversion", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=99)
    a = ap.parse_args()
    os.environ["BESTEX_HOME"] = str(a.home)
    from models._desk_execution import _MarketPath, _volume_history
    from models.cost_training import TrainingConfig, holdout_split
    from models.desk_history import DESK_FEES, execute_plan
    from models.features import regime_probability_table
    from models.policy import (
        PolicyConfig,
        adaptive_children,
        candidate_children,
        candidate_grid,
        decide,
    )
    from models.simulator import SimulatorConfig
    from models.synthetic_market import GroundTruth
    from pipelines.registry import default_registry
    from validation.policy_backtest import paired_ci, simulate_candidates
    from validation.policy_stage import decision_state, oos_orders

    lake = a.home / "lake"
    q = pd.read_parquet(lake / "cleansed/synth/quotes.parquet")
    tr = pd.read_parquet(lake / "cleansed/synth/trades.parquet")
    db = pd.read_parquet(lake / "cleansed/synth/daily_bars.parquet")
    truth = GroundTruth.model_validate(json.loads((lake / "raw/synth/ground_truth.json")
                                                  .read_text()))
    market = SimpleNamespace(quotes=q, trades=tr, daily_bars=db, truth=truth)
    reg = default_registry()
    bundle = reg.load_bundle(reg.champion().version)
    split = holdout_split(pd.read_parquet(lake / "training_set/synth.parquet"), TrainingConfig())
    path = _MarketPath(q)
    orders = oos_orders(market, split.holdout["decision_ts"].min(), a.orders, seed=a.seed,
                        path=path)
    regimes = regime_probability_table(db, q, config=bundle.feature_config)
    state = decision_state(orders, market, bundle, regimes)
    vh = {s: _volume_history(tr, s) for s in orders["symbol"].unique()}
    grid, cfg = candidate_grid(), PolicyConfig(risk_aversion=a.risk_aversion)
    kids = [candidate_children(orders, c, config=cfg, volume_history=vh) for c in grid]
    dec = decide(bundle, state, config=cfg, grid=grid, children=kids)
    sim = SimulatorConfig.from_truth(truth.impact, fees=DESK_FEES)
    out = simulate_candidates(market, orders, grid, kids, sim, path=path)
    so = orders.set_index("order_id")["shares_outstanding"]

    def state_at(sub: pd.DataFrame) -> pd.DataFrame:
        s = sub.assign(shares_outstanding=so.reindex(sub["order_id"]).to_numpy())
        return decision_state(s, market, bundle, regimes)

    t0 = time.perf_counter()
    ach, log = adaptive_children(orders, state_at, bundle, config=cfg, grid=grid,
                                 volume_history=vh)
    took = time.perf_counter() - t0
    h = execute_plan(market, orders, ach, sim, path=path)
    i, c = np.arange(len(orders)), dec.chosen["candidate"].to_numpy()
    ta = h.outcomes["truth_bps"].to_numpy()
    sa = orders["true_sigma"].to_numpy() * np.sqrt(
        h.parent_orders["plan_timing_var_days"].to_numpy()) * 1e4
    ts, ss = out.truth[i, c], out.true_sd[i, c]
    lam = a.risk_aversion
    d_t, d_o = paired_ci(ta - ts), paired_ci((ta + lam * sa) - (ts + lam * ss))
    print(f"{len(orders)} orders, {len(ach)} adaptive children, up to "
          f"{int(log['interval'].max()) + 1} re-plans per order ({took:.0f} s)\n")
    print("| policy | true IS bps | objective bps |\n|---|---:|---:|")
    print(f"| static | {ts.mean():.3f} | {(ts + lam * ss).mean():.3f} |")
    print(f"| adaptive | {ta.mean():.3f} | {(ta + lam * sa).mean():.3f} |")
    print(f"| adaptive - static [95 % CI] | {d_t[0]:+.3f} [{d_t[1]:+.3f}, {d_t[2]:+.3f}] | "
          f"{d_o[0]:+.3f} [{d_o[1]:+.3f}, {d_o[2]:+.3f}] |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
