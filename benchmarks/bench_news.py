"""Benchmark: the lift of point-in-time news features on orders that overlap news events.

The demo's synthetic market and desk (``SyntheticMarketConfig()``, ``DeskHistoryConfig()``:
8 symbols x 30 sessions, 12,000 parent orders) are generated unchanged; a synthetic news feed
(:func:`models.news.news_feed`) is drawn over the same sessions and symbols, and its **true**
effect is laid over the desk's outcomes by :func:`models.news.apply_news_effect` (spread part x
spread_mult, impact part x impact_mult, the market's move x vol_mult, plus the drift the news
causes while the order works). The market itself, and so the demo's figures, do not move.

Two mean cost models (:class:`models.cost_models.MeanCostModel`, the training core's defaults and
its inverse-noise weights) are fitted on the first 70% of orders in decision time (orders whose
label runs past the cut left out) and scored on the last 30%:

* **base**: the registry's model inputs (:data:`models.features.MODEL_FEATURES`, built by
  :func:`models.features.build_features`, point in time);
* **+ news**: the same plus :func:`models.news.news_features` (only headlines with
  ``available_at <= decision_ts``, scored by VADER).

MAE is against the true expected cost with the news (``truth_news_bps``: the best any model can
do) and against the realized cost; rows split by whether the order's working window overlaps an
event's effect, and whether a headline of that event was known at the decision.

Run: ``.venv/bin/python benchmarks/bench_news.py [--seeds 0 1 2]`` (markdown on stdout).
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

from models.cost_models import CostModelParams, MeanCostModel, inverse_noise_weights  # noqa: E402
from models.desk_history import DeskHistoryConfig, simulate_desk_history  # noqa: E402
from models.features import MODEL_FEATURES, build_features  # noqa: E402
from models.news import (  # noqa: E402
    apply_news_effect,
    desk_cost_parts,
    news_effect,
    news_feature_names,
    news_features,
    news_feed,
    vader_agreement,
)
from models.synthetic_market import SyntheticMarketConfig, generate_market  # noqa: E402

WINDOW_H = 4.0
TRAIN_SHARE = 0.7


def _known_overlap(costs: pd.DataFrame, feed: pd.DataFrame) -> np.ndarray:
    """An order overlaps an event whose headline it could read at its decision."""
    ev = feed.assign(t1=feed["ts"] + pd.to_timedelta(feed["effect_hours"], unit="h"))
    p = costs[["order_id", "symbol", "decision_ts", "end_ts"]].merge(
        ev[["symbol", "ts", "available_at", "t1"]], on="symbol")
    hit = (p["ts"] <= p["end_ts"]) & (p["t1"] > p["decision_ts"]) \
        & (p["available_at"] <= p["decision_ts"])
    known = set(p.loc[hit, "order_id"])
    return costs["order_id"].isin(known).to_numpy()


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b))) if len(a) else float("nan")


def run(seed: int, market, history, base: pd.DataFrame, rate: float) -> tuple[pd.DataFrame, dict]:
    """One news feed: the lift table rows and the feed's summary."""
    feed = news_feed(market, seed=seed, rate_per_symbol_day=rate)
    parts = desk_cost_parts(history)
    costs = apply_news_effect(parts, news_effect(parts, feed))
    contract = feed[["ts", "available_at", "symbol", "headline", "event_type"]]
    nf = news_features(costs, contract, window_hours=WINDOW_H)
    ds = costs.merge(base, on="order_id", suffixes=("", "_f")).merge(nf, on="order_id")
    ds = ds.sort_values("decision_ts", kind="stable").reset_index(drop=True)
    cut = ds["decision_ts"].iloc[int(len(ds) * TRAIN_SHARE)]
    train = ds[ds["end_ts"] < cut]
    test = ds[ds["decision_ts"] >= cut].reset_index(drop=True)
    known = _known_overlap(test, feed)
    feats = [c for c in MODEL_FEATURES if c in ds.columns] + ["qty", "shares_outstanding"]
    news_cols = list(news_feature_names(WINDOW_H))
    w = inverse_noise_weights(train["timing_risk_bps"], 5.0)
    pred = {}
    for name, cols in (("base", feats), ("+ news", feats + news_cols)):
        m = MeanCostModel(CostModelParams(seed=seed)).fit(train[cols], train["cost_news_bps"],
                                                         sample_weight=w)
        pred[name] = m.predict(test[cols])
    ov = test["news_overlap"].to_numpy()
    subsets = {"all": np.ones(len(test), bool), "overlap an event": ov,
               "overlap, headline known at decision": ov & known,
               "overlap, not yet known": ov & ~known, "no overlap": ~ov}
    rows = []
    for label, m in subsets.items():
        t, y = test["truth_news_bps"].to_numpy()[m], test["cost_news_bps"].to_numpy()[m]
        b, n = pred["base"][m], pred["+ news"][m]
        rows.append({"orders": label, "n": int(m.sum()), "MAE truth base": _mae(b, t),
                     "MAE truth +news": _mae(n, t),
                     "lift %": 100 * (1 - _mae(n, t) / _mae(b, t)) if m.any() else np.nan,
                     "MAE realized base": _mae(b, y), "MAE realized +news": _mae(n, y)})
    summary = {"headlines": len(feed), "agreement": vader_agreement(feed),
               "agreement_distinct": vader_agreement(feed.drop_duplicates(["ts", "headline"])),
               "overlap_share": float(costs["news_overlap"].mean()), "train": len(train),
               "test": len(test)}
    return pd.DataFrame(rows), summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rate", type=float, default=0.6, help="company headlines per symbol-day")
    args = ap.parse_args()
    t0 = time.perf_counter()
    market = generate_market(SyntheticMarketConfig())
    history = simulate_desk_history(market, DeskHistoryConfig())
    base = build_features(history.parent_orders, quotes=market.quotes, trades=market.trades,
                          daily_bars=market.daily_bars)
    base = base.drop(columns=["symbol", "decision_ts", "end_ts"])
    setup_s = time.perf_counter() - t0
    tables = []
    for seed in args.seeds:
        t1 = time.perf_counter()
        table, s = run(seed, market, history, base, args.rate)
        print(f"### news seed {seed}: {s['headlines']} headline rows, VADER sign agreement "
              f"{s['agreement']:.1%} of rows ({s['agreement_distinct']:.1%} of distinct "
              f"stories); {s['overlap_share']:.1%} of orders overlap an event; train "
              f"{s['train']}, test {s['test']} orders ({time.perf_counter() - t1:.1f} s)\n")
        print(table.to_markdown(index=False, floatfmt=".2f"))
        print()
        tables.append(table.assign(seed=seed))
    if len(tables) > 1:
        allt = pd.concat(tables)
        g = allt.groupby("orders", sort=False).agg(
            n=("n", "mean"), base=("MAE truth base", "mean"), news=("MAE truth +news", "mean"),
            lift_mean=("lift %", "mean"), lift_sd=("lift %", "std"))
        print(f"### mean over news seeds {args.seeds} (MAE against the true cost, bps)\n")
        print(g.reset_index().to_markdown(index=False, floatfmt=".2f"))
    print(f"\nsetup (market, desk, base features): {setup_s:.1f} s")


if __name__ == "__main__":
    main()
