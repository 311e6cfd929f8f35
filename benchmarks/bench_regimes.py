"""Regime recovery on the synthetic market: walk-forward filtered HMM against the true regimes.

    .venv/bin/python benchmarks/bench_regimes.py                 # 8x250 (seeds 7,1,2,3) + 8x60 demo
    .venv/bin/python benchmarks/bench_regimes.py --quick         # 8x250 seed 7 and the demo only

For each market: ``regime_inputs`` (market level; with quotes, and from daily bars alone), then
``walk_forward_regimes`` (expanding window, refit every 5 sessions, BIC state count, seed 0), scored
by ``score_regimes`` on every session that has a model. Beside it, two references that are *not*
point in time: the majority class ("always calm": the accuracy to beat; balanced accuracy 1/3) and
one HMM (BIC state count) fitted on the whole sample and filtered. The latter is no ceiling: an
unsupervised fit finds the structure that explains the data best, which on daily bars alone can be
the slow volatility factor rather than the regimes (seed 1).
Markets of 250 sessions use 60-second quotes (the regime inputs need session medians only).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.regimes import (  # noqa: E402
    DEFAULT_LABELS,
    filtered_probabilities,
    fit_regime_hmm,
    regime_inputs,
    score_regimes,
    walk_forward_regimes,
)
from models.synthetic_market import SyntheticMarketConfig, generate_market  # noqa: E402

# name, symbols, sessions, market seed, quote interval (s), min_train
CASES = [("8x250", 8, 250, s, 60.0, 60) for s in (7, 1, 2, 3)] + [("8x60 demo", 8, 60, 7, 5.0, 20)]


def _row(name: str, seed: int, inputs: str, score, secs: float) -> dict:
    s = score.summary()
    return {"market": name, "seed": seed, "inputs": inputs, "n": s["n"],
            "accuracy": s["accuracy"], "balanced": s["balanced_accuracy"],
            "recall c/v/x": "/".join(f"{score.recall.get(k, float('nan')):.2f}"
                                     for k in DEFAULT_LABELS),
            "switches": s["n_switches"], "detected": s["detection_rate"],
            "delay mean": s["mean_delay"], "delay median": s["median_delay"],
            "false alarm calm": s["false_alarm_rate"], "s": secs}


def bench(cases=CASES) -> list[dict]:
    """One row per (market, inputs): walk-forward scores, then the two references."""
    rows = []
    for name, n_sym, n_sess, seed, qi, min_train in cases:
        m = generate_market(SyntheticMarketConfig(n_symbols=n_sym, n_sessions=n_sess, seed=seed,
                                                  micro={"quote_interval_s": qi}))
        truth = pd.Series(m.truth.regime_path,
                          index=pd.DatetimeIndex(pd.to_datetime(list(m.truth.sessions))))
        for label, quotes in (("bars+quotes", m.quotes), ("bars", None)):
            t0 = time.perf_counter()
            inp = regime_inputs(m.daily_bars, quotes=quotes)
            wf = walk_forward_regimes(inp, seed=0, min_train=min_train)
            secs = time.perf_counter() - t0
            true = truth.reindex(pd.DatetimeIndex(wf["date"])).to_numpy()
            probs = wf[[f"p_{k}" for k in DEFAULT_LABELS]].to_numpy()
            rows.append(_row(name, seed, label, score_regimes(probs, true), secs))
            scored = ~np.isnan(probs).any(axis=1)
            majority = np.where(scored, "calm", None)
            rows.append(_row(name, seed, f"{label}: always calm", score_regimes(majority, true),
                             0.0))
            feats = [c for c in inp.columns if c.endswith("_rel")]
            ok = inp[feats].notna().all(axis=1).to_numpy()
            full = fit_regime_hmm(inp.loc[ok, feats], seed=0, min_states=1)
            p_in = np.where(scored[:, None], filtered_probabilities(full, inp[feats]), np.nan)
            rows.append(_row(name, seed, f"{label}: in-sample fit", score_regimes(p_in, true),
                             0.0))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8x250 seed 7 and the demo only")
    args = ap.parse_args()
    cases = [c for c in CASES if not args.quick or c[3] == 7]
    df = pd.DataFrame(bench(cases))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df.to_markdown(index=False, floatfmt=".3f"))
        main_rows = df[~df["inputs"].str.contains(":")]
        print("\nmean over the 8x250 markets (walk-forward):")
        print(main_rows[main_rows["market"] == "8x250"].groupby("inputs")[
            ["accuracy", "balanced", "detected", "delay mean", "delay median",
             "false alarm calm"]].mean().to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
