"""Benchmark of the online corrector and the ensemble (issue 16, item 3).

    .venv/bin/python benchmarks/bench_ensemble.py --home DIR            # a `make demo` home
    .venv/bin/python benchmarks/bench_ensemble.py --home DIR --windows 4 --json out.json
    .venv/bin/python benchmarks/bench_ensemble.py --home DIR --drift-bps 5   # a planted break

Runs :func:`validation.ensemble_stage.compare` on ``DIR``'s synthetic training set
(``lake/training_set/synth.parquet``) with the champion's configuration: its tuned
hyperparameters and features (the registry's run parameters), fitted with fixed parameters (no
tuning) on the holdout's training rows and on every walk-forward window. Prints the markdown
table (holdout and walk-forward, per model), the frozen ensemble weights and ``beats_singles``,
and how long it took.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def champion_params(home: Path):
    """The champion's hyperparameters and features (None, None without one)."""
    os.environ["BESTEX_HOME"] = str(home)
    from models.cost_models import CostModelParams
    from pipelines.registry import default_registry

    reg = default_registry()
    champ = reg.champion()
    if champ is None:
        return None, None, None
    raw = reg.run_params(champ.run_id)
    fields = CostModelParams.model_fields
    vals = {k: v for k, v in raw.items() if k in fields and v not in ("None", "")}
    params = CostModelParams.model_validate(vals)  # pydantic coerces the logged strings
    feats = raw["features"].split(",") if raw.get("features") else None
    return params, feats, champ.version


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--windows", type=int, default=6)
    ap.add_argument("--half-life", type=float, default=None)
    ap.add_argument("--prior", type=float, default=None, help="OnlineConfig.prior_orders")
    ap.add_argument("--group", default=None, help="per-group ensemble weights (e.g. regime_code)")
    ap.add_argument("--drift-bps", type=float, default=0.0,
                    help="plant a step of this many bps in is_bps and truth_bps from the "
                         "holdout's first decision on (a regime break the models never saw)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import pandas as pd

    from models.ensemble import EnsembleConfig
    from models.online import OnlineConfig
    from validation.ensemble_stage import FAST_PARAMS, compare, mean_learner

    path = args.home / "lake/training_set/synth.parquet"
    if not path.is_file():
        sys.exit(f"bench_ensemble: {path} is missing; run `make demo` with BESTEX_HOME={args.home}")
    ds = pd.read_parquet(path)
    drift = ""
    if args.drift_bps:
        from models.cost_training import TrainingConfig, holdout_split

        start = holdout_split(ds, TrainingConfig()).holdout_start
        after = ds["decision_ts"] >= start
        ds.loc[after, ["is_bps", "truth_bps"]] += args.drift_bps
        drift = f", planted drift {args.drift_bps:+g} bps on {int(after.sum())} orders from {start}"
    params, feats, version = champion_params(args.home)
    source = f"champion v{version}" if params is not None else "FAST_PARAMS (no champion)"
    online = OnlineConfig(**{k: v for k, v in (("half_life_orders", args.half_life),
                                                ("prior_orders", args.prior)) if v is not None})
    t0 = time.perf_counter()
    res = compare(ds, fit=mean_learner(params or FAST_PARAMS, feats), online=online,
                  ensemble=EnsembleConfig(group=args.group), n_windows=args.windows,
                  progress=lambda m: print("  " + m, file=sys.stderr))
    took = time.perf_counter() - t0
    print(f"## Ensemble stage on {path} ({len(ds)} orders), learned model: {source}{drift}\n")
    print(f"online: {online.model_dump()}; ensemble: {EnsembleConfig(group=args.group).model_dump()}"
          f"\n")
    print(res.markdown())
    print(f"\nmetric: {res.metric}; beats_singles: {res.beats_singles}; took {took:.1f} s\n")
    print("### Frozen ensemble weights\n")
    print(res.weights.to_markdown(index=False, floatfmt=".3f")
          if _has_tabulate() else res.weights.to_string(index=False))
    if args.json is not None:
        args.json.write_text(json.dumps({"table": res.table.to_dict("records"),
                                         "beats_singles": res.beats_singles,
                                         "metric": res.metric, "seconds": took}, default=str))
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
