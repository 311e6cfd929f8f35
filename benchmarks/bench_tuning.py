"""Benchmark of the cost-model tuner (issue 4, item 5): 30 trials x 5 folds on 50,000 orders, 2 cores.

    .venv/bin/python benchmarks/bench_tuning.py                 # markdown tables on stdout
    .venv/bin/python benchmarks/bench_tuning.py --no-pruning    # every trial runs all 5 folds

Data: 50,000 synthetic orders with 15 decision-time features (size, participation, volatility,
spread, depth, imbalance, time of day, regime, ...) and a nonlinear expected cost (half spread
widening at the open, a square-root law scaled by the regime, a participation term, an imbalance
term) plus timing noise ``~ sigma sqrt(T)``. Folds: ``KFold(5)`` on the rows in time order.
XGBoost runs with ``nthread=2``.

(a) :func:`models.tuning.tune` end to end (default search space, TPE seed 0, median pruner, a
    journal file in a temporary folder): wall time, and the time spent building the folds'
    DMatrix pairs (once).
(b) Per-trial overhead over a bare loop: after tuning, every trial's hyperparameters are run
    again as a bare ``xgboost.train`` loop over the folds that trial ran (its own DMatrix pairs,
    built once per fold and reused, as the tuner does). Overhead = the tuner's trial time
    (Optuna's start to completion: sampling, journal writes, training, prediction, loss, pruning
    checks) over the bare loop's ``xgboost.train`` time, minus 1; also against the tuner's own
    ``xgboost.train`` time of the trial (measured in the same moment, so it is immune to other
    load on the machine; the bare-loop comparison is not: check the load averages printed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.model_selection import KFold  # noqa: E402

from models.cost_models import CostModelParams  # noqa: E402
from models.tuning import build_folds, tune  # noqa: E402


def synthetic_orders(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` orders, 15 features, realized cost ``is_bps`` (truth + timing noise)."""
    rng = np.random.default_rng(seed)
    adv = np.exp(rng.normal(np.log(2e6), 1.0, n))
    pct = np.exp(rng.uniform(np.log(1e-3), np.log(0.2), n))
    sigma = np.exp(rng.normal(np.log(0.02), 0.35, n))
    dur = np.exp(rng.uniform(np.log(5 / 390), 0.0, n))
    spread = np.exp(rng.normal(np.log(4.0), 0.5, n))
    tod = rng.uniform(0, 1, n)
    regime = rng.integers(0, 3, n).astype(float)
    imbalance = rng.uniform(-1, 1, n)
    part = np.minimum(pct / dur, 1.0)
    X = pd.DataFrame({
        "pct_adv": pct, "implied_participation": part, "duration_days": dur,
        "log_adv": np.log(adv), "sigma_daily": sigma,
        "sigma_intraday": sigma * np.exp(rng.normal(0, 0.3, n)),
        "arrival_spread_bps": spread, "depth_top_pct_adv": np.exp(rng.normal(-7, 1, n)),
        "imbalance": imbalance, "trade_intensity": rng.gamma(2.0, 1.0, n),
        "time_of_day": tod, "day_of_week": rng.integers(0, 5, n).astype(float),
        "regime": regime, "side": rng.choice([-1.0, 1.0], n),
        "sqrt_pred_bps": 0.7 * sigma * np.sqrt(pct) * 1e4})
    truth = (0.5 * spread * (1 + 0.5 * (tod < 0.1)) + 0.8 * sigma * np.sqrt(pct) * 1e4
             * (1 + 0.5 * regime) + 3e3 * sigma * part ** 1.5 + 2 * X["side"] * imbalance)
    y = truth + rng.normal(0, 1, n) * 0.3 * sigma * np.sqrt(dur) * 1e4
    return X, y.to_numpy()


def bare_loop(folds, params: CostModelParams, n_folds: int) -> float:
    """Seconds inside ``xgboost.train`` for ``params`` on the first ``n_folds`` folds."""
    booster_params = params.booster_params()
    spent = 0.0
    for f in folds[:n_folds]:
        t0 = time.perf_counter()
        xgb.train(booster_params, f.dtrain, params.num_boost_round)
        spent += time.perf_counter() - t0
    return spent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--no-pruning", action="store_true")
    ap.add_argument("--repeats", type=int, default=1, help="bare loop: best of this many runs")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    X, y = synthetic_orders(args.orders)
    cv = KFold(args.folds)
    base = CostModelParams(nthread=2)
    with tempfile.TemporaryDirectory() as tmp:
        res = tune(X, y, cv, n_trials=args.trials, seed=0, pruning=not args.no_pruning,
                   storage_path=Path(tmp) / "optuna.journal", base_params=base)
        trials = res.study.trials  # read while the journal file exists
    folds = build_folds(X, y, cv)
    t = res.timings.set_index("number")
    bare = {}
    for trial in trials:
        params = CostModelParams(**{**base.model_dump(), **trial.user_attrs["params"]})
        n_folds = int(t.loc[trial.number, "n_folds"])
        bare[trial.number] = min(bare_loop(folds, params, n_folds) for _ in range(args.repeats))
    t["bare_train_s"] = pd.Series(bare)
    t["overhead_vs_bare_pct"] = 100 * (t["total_s"] / t["bare_train_s"] - 1)

    n_pruned = int((t["state"] == "PRUNED").sum())
    print(f"### Tuning: {args.trials} trials x {args.folds} folds on {args.orders:,} orders, "
          f"{X.shape[1]} features, 2 threads\n")
    print("| measure | value |\n|---|---|")
    print(f"| tuning wall time (s) | {res.wall_s:.1f} |")
    print(f"| of which building the fold DMatrix pairs, once (s) | {res.prep_s:.2f} |")
    print(f"| trials completed / pruned | {len(t) - n_pruned} / {n_pruned} |")
    print(f"| folds trained (of {args.trials * args.folds}) | {int(t['n_folds'].sum())} |")
    print(f"| sum of trial times (s) | {t['total_s'].sum():.1f} |")
    print(f"| sum inside `xgboost.train`, tuner (s) | {t['train_s'].sum():.1f} |")
    print(f"| sum of the bare `xgboost.train` loop (s) | {t['bare_train_s'].sum():.1f} |")
    tot, bare_tot = t["total_s"].sum(), t["bare_train_s"].sum()
    print(f"| overhead over the bare loop, all trials (%) | {100 * (tot / bare_tot - 1):.1f} |")
    print(f"| overhead over the tuner's own `xgboost.train` (%) | "
          f"{100 * (tot / t['train_s'].sum() - 1):.1f} |")
    q = t["overhead_vs_bare_pct"].quantile([0.5, 0.9]).to_numpy()
    print(f"| per-trial overhead vs bare, median / p90 (%) | {q[0]:.1f} / {q[1]:.1f} |")
    print(f"| best mean fold RMSE (bps) | {res.best_value:.2f} |")
    print(f"| PBO of the selection (CSCV, one block per fold) | {res.pbo:.3f} |")
    print(f"| load average before / after (1, 5, 15 min) | {' '.join(load_before)} / "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])} |\n")
    print("Per trial:\n")
    print("| trial | state | folds | trial s | tuner train s | bare train s | overhead vs bare % |")
    print("|---|---|---|---|---|---|---|")
    for n, r in t.iterrows():
        print(f"| {n} | {r['state']} | {r['n_folds']} | {r['total_s']:.2f} | {r['train_s']:.2f} "
              f"| {r['bare_train_s']:.2f} | {r['overhead_vs_bare_pct']:.1f} |")


if __name__ == "__main__":
    main()
