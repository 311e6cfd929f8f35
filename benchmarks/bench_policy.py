"""Benchmark of the execution policy (issue 14): one plan decision, and a closed-loop backtest.

    .venv/bin/python benchmarks/bench_policy.py --home DIR                 # a `make demo` home
    .venv/bin/python benchmarks/bench_policy.py --home DIR --orders 10000 --json out.json

``DIR`` is a home with a champion cost model and its synthetic market: the lake's cleansed
``quotes``, ``trades``, ``daily_bars``, the ground truth (``lake/raw/synth/ground_truth.json``)
and the training set, whose holdout window (``holdout_split``) is where the out-of-sample
orders are decided (:func:`validation.policy_stage.oos_orders`, seed 777, as the policy stage).
The process is pinned to 2 cores (``--cores``) when the machine has more.

(a) One decision: :class:`models._policy_fast.FastPlanner` ``.decide_one(row)`` on one order's
    state row (a mapping, :meth:`FastPlanner.records`; a different order each call), all 14
    candidates scored, VWAP/POV on the symbols' volume histories. The planner is built once
    (boosters copied, the volume history of each symbol read on its first order: shown apart);
    50 warm-up calls, then ``--calls`` timed, 3 series: p50 / p99 are the medians over the
    series (the worst p99 beside them). Target p99 <= 1 ms. Beside it: the same on a one-row
    frame, and :func:`models.policy.decide` on a one-row frame (children, volume profiles and
    features rebuilt each call; ``--decide-calls`` calls, 3 series).
(b) ``decide`` on a batch of ``--batch`` orders (children computed inside), median of 3:
    amortized time per order.
(c) The closed loop on ``--orders`` out-of-sample orders: the orders and their market state
    (:func:`validation.policy_stage.oos_orders`, the regime filter, ``decision_state``, the
    volume histories), the decision (the 14 candidates' children, ``decide``), and the
    policy's own plans executed (the children of each order's chosen candidate, one
    :func:`models.desk_history.execute_plan` call on the market's path, with and without our
    impact). Target <= 60 s on 2 cores. Beside it: the same decisions order by order with
    ``FastPlanner``, and how many agree with ``decide``.

Prints a markdown table and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = {"one_decision_p99_ms": 1.0, "backtest_s": 60.0}


def pin_cores(n: int) -> list[int]:
    """Pin this process to ``n`` cores (before numpy/xgboost start their threads)."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > n:
        os.sched_setaffinity(0, cores[:n])
    return sorted(os.sched_getaffinity(0))


def load(home: Path):
    """The champion bundle, the synthetic market and the holdout start of ``home``."""
    import pandas as pd

    from models.cost_training import TrainingConfig, holdout_split
    from models.synthetic_market import GroundTruth
    from pipelines.registry import default_registry

    lake = home / "lake"
    missing = [p for p in ("cleansed/synth/quotes.parquet", "cleansed/synth/trades.parquet",
                           "cleansed/synth/daily_bars.parquet", "raw/synth/ground_truth.json",
                           "training_set/synth.parquet") if not (lake / p).is_file()]
    if missing:
        sys.exit(f"bench_policy: {home} lacks {missing}; run `make demo` with BESTEX_HOME={home}")
    reg = default_registry()
    champ = reg.champion()
    if champ is None:
        sys.exit(f"bench_policy: {home} has no champion cost model")
    bundle = reg.load_bundle(champ.version)
    truth = GroundTruth.model_validate(json.loads(
        (lake / "raw/synth/ground_truth.json").read_text()))
    market = SimpleNamespace(**{t: pd.read_parquet(lake / f"cleansed/synth/{t}.parquet")
                                for t in ("quotes", "trades", "daily_bars")}, truth=truth)
    split = holdout_split(pd.read_parquet(lake / "training_set/synth.parquet"), TrainingConfig())
    return bundle, champ.version, market, split.holdout["decision_ts"].min()


# ----------------------------------------------------------------------------- (c)
def closed_loop(market, bundle, start, n: int, seed: int) -> dict:
    """Orders + state, decision, execution of the chosen plans (the timed closed loop)."""
    import numpy as np
    import pandas as pd

    from models._desk_execution import _MarketPath, _volume_history
    from models.desk_history import DESK_FEES, execute_plan
    from models.features import regime_probability_table
    from models.policy import PolicyConfig, candidate_children, candidate_grid, decide
    from models.simulator import SimulatorConfig
    from validation.policy_stage import decision_state, oos_orders

    t: dict[str, float] = {}
    t0 = time.perf_counter()
    path = _MarketPath(market.quotes)
    orders = oos_orders(market, start, n, seed=seed, path=path)
    regimes = regime_probability_table(market.daily_bars, market.quotes,
                                       config=bundle.feature_config)
    state = decision_state(orders, market, bundle, regimes)
    vh = {s: _volume_history(market.trades, s) for s in orders["symbol"].unique()}
    t["orders_features_s"] = time.perf_counter() - t0
    grid, cfg = candidate_grid(), PolicyConfig(seed=seed)
    t0 = time.perf_counter()
    kids = [candidate_children(orders, c, config=cfg, volume_history=vh) for c in grid]
    t["children_s"] = time.perf_counter() - t0
    dec = decide(bundle, state, config=cfg, grid=grid, children=kids)
    t["decide_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    choice = dec.chosen["candidate"].to_numpy()
    ids = orders["order_id"].astype(str).to_numpy()
    parts = [ch[ch["order_id"].astype(str).isin(ids[choice == j])] for j, ch in enumerate(kids)]
    chosen = pd.concat(parts, ignore_index=True)
    pos = pd.Index(ids).get_indexer(chosen["order_id"].astype(str))
    chosen = chosen.iloc[np.lexsort((chosen["decision_ts"].to_numpy(), pos))]
    sim = SimulatorConfig.from_truth(market.truth.impact, fees=DESK_FEES)
    hist = execute_plan(market, orders, chosen.reset_index(drop=True), sim, path=path)
    t["simulate_s"] = time.perf_counter() - t0
    t["total_s"] = t["orders_features_s"] + t["decide_s"] + t["simulate_s"]
    out = hist.outcomes
    return {"times": t, "orders": orders, "state": state, "volume_history": vh, "config": cfg,
            "decisions": dec, "n_children": len(chosen),
            "truth_bps": float(np.nanmean(out["truth_bps"])),
            "shortfall_bps": float(np.nanmean(out["shortfall_bps"])),
            "mix": dec.chosen["name"].value_counts().head(4).to_dict()}


# ----------------------------------------------------------------------------- (a), (b)
def series(fn, rows: list, calls: int, warmup: int, repeats: int) -> dict:
    """``fn(row)`` on ``rows[warmup:warmup + calls]`` after ``rows[:warmup]``, ``repeats``
    times: p50 / p99 per series, their medians, the worst p99 (this VM's speed drifts)."""
    import numpy as np

    for r in rows[:warmup]:
        fn(r)
    timed = rows[warmup:warmup + calls]
    out = []
    for _ in range(repeats):
        ms = []
        for r in timed:
            t0 = time.perf_counter()
            fn(r)
            ms.append((time.perf_counter() - t0) * 1e3)
        a = np.array(ms)
        out.append({"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
                    "max_ms": float(a.max())})
    return {"calls": len(timed), "repeats": repeats,
            "p50_ms": statistics.median(s["p50_ms"] for s in out),
            "p99_ms": statistics.median(s["p99_ms"] for s in out),
            "worst_p99_ms": max(s["p99_ms"] for s in out), "series": out}


def machine_reference(calls: int = 2000) -> dict:
    """p50 / p99 of a fixed workload shaped like a decision's (80 numpy calls on 14-element
    arrays, small allocations, no model), timed just before (a). This VM's speed drifts with
    its neighbours' load, memory-bound numpy code most: a slow phase shows here first."""
    import numpy as np

    x = np.linspace(0.1, 1.4, 14)

    def work() -> float:
        y = x
        for _ in range(20):
            y = np.where(y > 0.5, np.sqrt(y), y * 1.01)
            y = np.maximum(y, 0.1) / 1.001
        return float(y.sum())

    for _ in range(100):
        work()
    ms = []
    for _ in range(calls):
        t0 = time.perf_counter()
        work()
        ms.append((time.perf_counter() - t0) * 1e3)
    a = np.array(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99))}


def one_decision(bundle, loop: dict, calls: int, decide_calls: int, repeats: int) -> dict:
    from models._policy_fast import FastPlanner
    from models.policy import decide

    state, vh, cfg = loop["state"], loop["volume_history"], loop["config"]
    t0 = time.perf_counter()
    planner = FastPlanner(bundle, config=cfg, volume_history=vh)
    build_s = time.perf_counter() - t0
    records = FastPlanner.records(state)
    first = set(state.groupby("symbol", sort=False).head(1).index)  # first order per symbol
    t0 = time.perf_counter()
    for i in first:
        planner.decide_one(records[i])
    first_s = (time.perf_counter() - t0) / len(first)
    rows = [r for i, r in enumerate(records) if i not in first]
    ref = machine_reference()
    fast = series(planner.decide_one, rows, calls, 50, repeats)
    frames = [state.iloc[[i]] for i in range(50 + calls)]
    fast_frame = series(planner.decide_one, frames, calls, 50, repeats)
    slow = series(lambda f: decide(bundle, f, config=cfg, volume_history=vh), frames,
                  decide_calls, 5, repeats)
    return {"planner_build_s": build_s, "first_order_per_symbol_ms": first_s * 1e3,
            "machine_reference": ref, "fast": fast, "fast_frame": fast_frame, "decide_one_row": slow}


def batch(bundle, loop: dict, n: int, repeats: int) -> dict:
    from models.policy import decide

    st = loop["state"].head(n)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        decide(bundle, st, config=loop["config"], volume_history=loop["volume_history"])
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"orders": len(st), "repeats": repeats, "median_s": med,
            "per_order_ms": med / len(st) * 1e3}


def fast_loop(bundle, loop: dict) -> dict:
    """The closed loop's decisions order by order with FastPlanner, against ``decide``."""
    import numpy as np

    from models._policy_fast import FastPlanner

    t0 = time.perf_counter()
    planner = FastPlanner(bundle, config=loop["config"], volume_history=loop["volume_history"])
    got = np.array([planner.decide_one(r).candidate
                    for r in FastPlanner.records(loop["state"])])
    took = time.perf_counter() - t0
    want = loop["decisions"].chosen["candidate"].to_numpy()
    return {"seconds": took, "agree": int((got == want).sum()), "orders": len(want)}


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, required=True, help="a `make demo` BESTEX_HOME")
    ap.add_argument("--orders", type=int, default=10_000)
    ap.add_argument("--calls", type=int, default=1000, help="timed one-order calls per series")
    ap.add_argument("--decide-calls", type=int, default=100,
                    help="timed one-row `decide` calls per series (~0.15 s each)")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    a = ap.parse_args(argv)
    cores = pin_cores(a.cores)
    os.environ["BESTEX_HOME"] = str(a.home.resolve())
    warnings.simplefilter("ignore")
    load_avg = os.getloadavg()

    t0 = time.perf_counter()
    bundle, version, market, start = load(a.home.resolve())
    load_s = time.perf_counter() - t0
    loop = closed_loop(market, bundle, start, a.orders, a.seed)
    one = one_decision(bundle, loop, a.calls, a.decide_calls, a.repeats)
    big = batch(bundle, loop, a.batch, a.repeats)
    fl = fast_loop(bundle, loop)
    tl = loop["times"]
    ok = {"one_decision_p99_ms": one["fast"]["p99_ms"] <= TARGETS["one_decision_p99_ms"],
          "backtest_s": tl["total_s"] <= TARGETS["backtest_s"]}

    def yes(k: str) -> str:
        return "ok" if ok[k] else "MISSED"

    f, ff, sl = one["fast"], one["fast_frame"], one["decide_one_row"]
    print(f"model: champion v{version} of {a.home} ({len(bundle.features)} features, "
          f"{bundle.mean.num_boosted_rounds()} + {bundle.quantile.num_boosted_rounds()} rounds); "
          f"{len(loop['decisions'].grid)} candidates; orders decided from {start}")
    print(f"machine: cores {cores} of {os.cpu_count()}, Python {platform.python_version()}, "
          f"{platform.platform()}; load average (1 min) {load_avg[0]:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end\n")
    print("| measure | figure | target | |")
    print("|---|---:|---:|---|")
    print(f"| (a) one decision, `FastPlanner.decide_one(row)`, p50 / p99 of {f['calls']} "
          f"(median of {f['repeats']} series; worst p99 {f['worst_p99_ms']:.3f} ms) | "
          f"{f['p50_ms']:.3f} / {f['p99_ms']:.3f} ms | p99 ≤ 1 ms | "
          f"{yes('one_decision_p99_ms')} |")
    print(f"| … beside it: `decide_one` on a one-row frame, p50 / p99 | "
          f"{ff['p50_ms']:.3f} / {ff['p99_ms']:.3f} ms | | |")
    print(f"| … beside it: `decide` on a one-row frame, p50 / p99 of {sl['calls']} "
          f"(median of {sl['repeats']} series) | {sl['p50_ms']:.1f} / {sl['p99_ms']:.1f} ms | | |")
    ref = one["machine_reference"]
    print(f"| … beside it: the machine's speed just before, a fixed numpy workload (80 calls "
          f"on 14 numbers), p50 / p99 | {ref['p50_ms']:.3f} / {ref['p99_ms']:.3f} ms | | |")
    print(f"| … beside it: building the planner / the first order of a symbol (reads its "
          f"volume history) | {one['planner_build_s'] * 1e3:.0f} ms / "
          f"{one['first_order_per_symbol_ms']:.1f} ms | | |")
    print(f"| (b) `decide` on {big['orders']:,} orders (children inside), per order, median "
          f"of {big['repeats']} | {big['per_order_ms']:.3f} ms ({big['median_s']:.2f} s) | | |")
    print(f"| (c) closed loop, {a.orders:,} out-of-sample orders: orders + market state | "
          f"{tl['orders_features_s']:.1f} s | | |")
    print(f"| … decide: children of the {len(loop['decisions'].grid)} candidates + `decide` | "
          f"{tl['children_s']:.1f} + {tl['decide_s'] - tl['children_s']:.1f} = "
          f"{tl['decide_s']:.1f} s | | |")
    print(f"| … simulate the chosen plans ({loop['n_children']:,} children, with and without "
          f"impact) | {tl['simulate_s']:.1f} s | | |")
    print(f"| … total | {tl['total_s']:.1f} s | ≤ 60 s | {yes('backtest_s')} |")
    print(f"| … beside it: the same decisions with `FastPlanner`, order by order "
          f"({fl['agree']:,} of {fl['orders']:,} as `decide`) | {fl['seconds']:.1f} s | | |")
    print(f"\npolicy's plans: mean truth {loop['truth_bps']:.2f} bps, mean realized "
          f"{loop['shortfall_bps']:.2f} bps; most chosen {loop['mix']}")
    print(f"(data and model load, not timed above: {load_s:.1f} s)")

    if a.json:
        a.json.write_text(json.dumps({
            "model_version": version, "home": str(a.home), "cores": cores,
            "load_average": load_avg, "one_decision": one, "batch": big,
            "closed_loop": {**tl, "orders": a.orders, "n_children": loop["n_children"],
                            "truth_bps": loop["truth_bps"],
                            "shortfall_bps": loop["shortfall_bps"]},
            "fast_loop": fl, "targets": TARGETS, "ok": ok}, indent=2, default=str))
    missed = [k for k, v in ok.items() if not v]
    if missed:
        print(f"\nbench_policy: target(s) missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
