"""The break scenario (issue 16 item 4) on a demo home: detection delay, false alarms, recovery.

    .venv/bin/python benchmarks/bench_drift_break.py --home /tmp/demoP [--factor 1.4142]

The synthetic training set of ``--home`` (``lake/training_set/synth.parquet``: features,
realized cost ``is_bps``, true expected cost ``truth_bps``, label knowledge time ``t1``) and its
ground truth's calendar (calm sessions without the flash crash and the crisis week); the
champion's hyperparameters and features (fewer rounds: the study's clock is the retrain). The
study is :func:`validation.drift_break.run_break_study`, the code of the Dagster asset
``studies/break_scenario`` (:func:`assets.monitoring.run_break_ground`). Thresholds:
``validation/drift.toml``.

Targets (issue 16): detection delay <= 1 trading day; <= 1 false alarm per 60 calm days; after
the break the error back within 10 % of its pre-break level within 2 days for the
drift-triggered or the online path. Prints the report and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="a `make demo` BESTEX_HOME")
    ap.add_argument("--factor", type=float, default=math.sqrt(2.0))
    ap.add_argument("--break-day", type=int, default=45)
    ap.add_argument("--rounds", type=int, default=120)
    a = ap.parse_args(argv)
    import pandas as pd
    from bench_ensemble import champion_params

    params, feats, version = champion_params(a.home.resolve())
    if params is None:
        sys.exit(f"bench_drift_break: {a.home} has no champion; run `make demo` there first")
    from assets.monitoring import BreakStudyConfig, run_break_ground

    lake = a.home / "lake"
    ds = pd.read_parquet(lake / "training_set/synth.parquet")
    truth = json.loads((lake / "raw/synth/ground_truth.json").read_text())
    t0 = time.perf_counter()
    st = run_break_ground(ds, truth, feats, params.model_dump(), 5.0,
                          BreakStudyConfig(break_day=a.break_day, factor=a.factor,
                                           num_boost_round=a.rounds))
    took = time.perf_counter() - t0
    print(f"champion v{version} of {a.home}; {len(ds):,} orders, "
          f"{ds['decision_ts'].dt.date.nunique()} sessions; {took:.0f} s\n")
    print(st.to_markdown())
    rec = st.recovery.set_index("path")["days_to_recover"]
    delay = st.detection["cusum_delay"]
    ok = {"delay": delay is not None and delay <= 1,
          "false_alarms": st.false_alarms["per_60_days"] <= 1.0
          and st.false_alarms["calm_alarms"] == 0,
          "recovery": any(pd.notna(rec[p]) and rec[p] <= 2 for p in ("drift_triggered", "online"))}
    print(f"\ntargets: {', '.join(f'{k} {"ok" if v else "MISSED"}' for k, v in ok.items())}")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
