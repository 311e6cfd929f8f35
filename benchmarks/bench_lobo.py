"""Leave one real book out (issue 13): the champion's hyperparameters refit on the synthetic
desk alone and on the synthetic desk plus every other real book, scored on each held-out book.

    .venv/bin/python benchmarks/bench_lobo.py --home DIR [--orders 500] [--seed 0]

``DIR`` is a ``make demo`` home: its champion (hyperparameters and feature list from the MLflow
run; square-root/ATHL calibrations for the replays' missing estimates) and its training set
(``lake/training_set/synth.parquet``, the rows before the holdout cut). The real books are every
LOBSTER day and BitMEX symbol of the data folder long enough to replay a desk on
(``sources.recorded_books``). Prints the table of
``validation._stress_lobo.leave_one_book_out`` and the checks of issue 13's gates: per held-out
book |bias| <= 1 noise sd and 80 % coverage in [0.70, 0.90]; pooled MAE <= 0.8 x the
square-root law's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real-share", type=float, default=None,
                    help="the real rows' share of the mean model's weight (default: the "
                    "training config's, 0.10)")
    ap.add_argument("--mean-label", default="adjusted_bps",
                    help="the real rows' mean-model label: adjusted_bps (default) or is_bps")
    a = ap.parse_args()
    os.environ["BESTEX_HOME"] = str(a.home)
    warnings.simplefilter("ignore")

    from bestex.settings import data_dir
    from models.cost_models import CostModelParams
    from models.cost_training import TrainingConfig, holdout_split
    from pipelines.registry import default_registry
    from sources import recorded_books
    from validation._stress_lobo import leave_one_book_out, real_book_rows
    from validation.stress import book_spec, replay_book

    reg = default_registry()
    champ = reg.champion()
    if champ is None:  # a home whose last model did not pass its gates: its latest version
        vs = reg.versions()
        if not len(vs):
            sys.exit(f"bench_lobo: {a.home} has no model (run make demo with BESTEX_HOME={a.home})")
        champ = reg.version(str(max(int(v) for v in vs["version"])))
    bundle = reg.load_bundle(champ.version)
    logged = reg.run_params(champ.run_id)
    params = CostModelParams(**{k: v for k, v in logged.items()  # pydantic reads the text
                                if k in CostModelParams.model_fields and v != "None"})
    cfg = TrainingConfig(seed=a.seed)
    train = holdout_split(pd.read_parquet(a.home / "lake" / "training_set" / "synth.parquet"),
                          cfg).train
    data = data_dir()
    books = []
    for path in (data / "lobster", data / "crypto" / "bitmex_2020-03-10_orderbook10_snapshots.csv.gz"):
        books += recorded_books(path)
    reps, venues = {}, {}
    for book, kind in books:
        spec, name = book_spec(book, kind)
        try:
            reps[name] = replay_book(book, spec, n_orders=a.orders, seed=a.seed, name=name,
                                     calibrations=bundle.calibrations)
        except ValueError as exc:
            print(f"left out: {name}: {exc}")
            continue
        venues[name] = "LOBSTER" if kind == "equity" else "BitMEX"
    t0 = time.perf_counter()
    table = leave_one_book_out(train, real_book_rows(reps, venues=venues), params=params,
                               features=bundle.features, config=cfg, real_share=a.real_share,
                               mean_label=None if a.mean_label == "is_bps" else a.mean_label)
    took = time.perf_counter() - t0
    print(f"model v{champ.version}; {len(train)} synthetic training rows; "
          f"{len(reps)} real books x {a.orders} orders; fits {took:.0f} s\n")
    print(table.to_markdown(index=False, floatfmt=".3f"))
    books_rows = table[(table["book"] != "pooled") & (table["variant"] == "synthetic+real")]
    pooled = table[(table["book"] == "pooled") & (table["variant"] == "synthetic+real")].iloc[0]
    checks = {
        "bias within 1 noise sd (every book)": bool((books_rows["bias_over_sd"] <= 1).all()),
        "coverage80 over resampled paths in [0.70, 0.90] (every book)":
            bool(books_rows["coverage80_paths"].between(0.70, 0.90).all()),
        "coverage80 on the recorded path in [0.70, 0.90] (every book)":
            bool(books_rows["coverage80"].between(0.70, 0.90).all()),
        "pooled MAE <= 0.8 x square-root law": bool(pooled["mae_ratio"] <= 0.8),
    }
    print("\n" + json.dumps(checks, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
