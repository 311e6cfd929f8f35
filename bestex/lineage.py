"""``bestex lineage``: the chain from a registered version back to its sources, as text."""

from __future__ import annotations

from typing import Any

import pandas as pd


def _ts(raw: str) -> pd.Timestamp:
    ts = pd.Timestamp(raw)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _fmt_ts(ts: Any) -> str:
    if not ts:
        return "?"
    try:
        t = _ts(str(ts))
    except ValueError:
        return str(ts)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_lineage(info: dict[str, Any]) -> str:
    """The chain printed by ``bestex lineage VERSION``, ending with the ``PROOF`` line."""
    m, run, ds = info["model"], info["mlflow_run"], info["datasets"]
    aliases = f" [{', '.join(m['aliases'])}]" if m["aliases"] else ""
    gates = "passed" if m["gates_passed"] else f"FAILED ({' | '.join(m['gate_failures']) or '?'})"
    lines = [f"model          {m['name']} v{m['version']}{aliases}  {m['uri']}  "
             f"created {_fmt_ts(str(m['created']))}  gates {gates}"]
    run_bits = f"{run.get('run_id') or '?'}"
    if run.get("missing"):
        run_bits += " (run not found)"
    elif "experiment_id" in run:
        run_bits += (f"  experiment {run['experiment_id']}  run '{run['run_name']}'  "
                     f"{run['status']}")
    lines.append(f"  <- MLflow run {run_bits}")
    lines.append(f"  <- Dagster run {info['dagster_run_id'] or '?'}  code {info['code_version'] or '?'}"
                 f"  cv {info['cv_scheme'] or '?'}")
    lines.append("  <- datasets")
    tr, ho = ds["train"], ds["holdout"]
    lines.append(f"       train    digest {tr['digest'] or '?'}  decision_ts "
                 f"{_fmt_ts(tr['start'])} .. {_fmt_ts(tr['end'])}  max t1 {_fmt_ts(tr['max_t1'])}")
    if tr.get("purged"):
        lines.append(f"       purged   {tr['purged']} orders before the holdout whose label "
                     "(decision .. t1) ended within the embargo of holdout_start: in neither set")
    lines.append(f"       holdout  digest {ho['digest'] or '?'}  decision_ts "
                 f"{_fmt_ts(ho['start'])} .. {_fmt_ts(ho['end'])}")
    for d in info.get("logged_datasets", []):
        lines.append(f"       logged   {d['name']} ({d['context'] or '?'}) digest {d['digest']}"
                     f"  {d['time_min'] or '?'} .. {d['time_max'] or '?'}")
    lines.append("  <- source partitions")
    lines.extend(f"       {p}" for p in info["source_partitions"] or ["?"])
    p = info["proof"]
    if p["missing"]:
        lines.append(f"PROOF holdout_start > train max t1 + embargo: UNPROVEN, missing "
                     f"{', '.join(p['missing'])}")
    else:
        verdict = "OK" if p["holds"] else "FAIL"
        lines.append(f"PROOF holdout_start {_fmt_ts(p['holdout_start'])} > train max t1 "
                     f"{_fmt_ts(p['train_max_t1'])} + embargo {p['embargo']} = "
                     f"{_fmt_ts(p['bound'])} : {verdict} (margin {p['margin']})")
    return "\n".join(lines)
