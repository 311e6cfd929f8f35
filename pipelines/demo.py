"""``make demo``: materialize the whole asset graph in-process and print a summary.

Runs are recorded in the Dagster instance under ``BESTEX_HOME/dagster`` (so ``make ui`` shows
them) and tables land in the Parquet lake under ``BESTEX_HOME/lake``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import dagster as dg

from bestex import settings

# Dagster's console logger prints every event at DEBUG; the demo prints its own progress and a
# summary, and every event stays in the instance (the UI shows it).
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def dagster_config() -> str:
    """``dagster.yaml`` of the profile: local storage under ``DAGSTER_HOME``, or runs, events
    and schedules in the services' ``bestex_dagster`` database (``BESTEX_PROFILE=services``)."""
    text = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
    if settings.profile() == "services":
        # a URL naming the driver: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3
        url = settings.service_url("bestex_dagster")
        text += f"storage:\n  postgres:\n    postgres_url: \"{url}\"\n"
    return text


def dagster_instance() -> dg.DagsterInstance:
    """The Dagster instance under ``BESTEX_HOME/dagster`` (runs recorded for ``make ui``); its
    ``dagster.yaml`` follows ``BESTEX_PROFILE`` (:func:`dagster_config`)."""
    dagster_home = settings.home() / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    text = dagster_config()
    if not config.exists() or config.read_text() != text:
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a password in it
        with os.fdopen(fd, "w") as f:
            f.write(text)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dg.DagsterInstance.get()


def _summarize(result: dg.ExecuteInProcessResult, rows: list[list[Any]],
               checks: list[list[Any]]) -> None:
    for ev in result.get_asset_materialization_events():
        mat = ev.step_materialization_data.materialization
        meta = mat.metadata
        n = meta.get("dagster/row_count")
        q = meta.get("rows_quarantined")
        rows.append([
            mat.asset_key.to_user_string() + (f" [{mat.partition}]" if mat.partition else ""),
            n.value if n is not None else "",
            q.value if q is not None else "",
        ])
    for ev in result.get_asset_check_evaluations():
        # a failed WARN check (the drift monitor: a moving market is news, not a broken run)
        warn = getattr(ev, "severity", None) == dg.AssetCheckSeverity.WARN
        checks.append([
            ev.asset_key.to_user_string() + (f" [{ev.partition}]" if ev.partition else ""),
            ev.check_name,
            "PASS" if ev.passed else ("WARN" if warn else "FAIL"),
        ])


def _table(header: Sequence[str], rows: list[list[Any]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(lines)


_DEGRADED = {"ops": {"synth_cost_model": {"config": {"shuffle_labels": True}}}}


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.2f}" if isinstance(x, float) else str(x)


def _registry_step(instance: dg.DagsterInstance) -> tuple[bool, list[str]]:
    """After the runs: the first version passing its gates becomes champion (the demo stands in
    for the person who promotes); later versions stay challengers, with their gate decision and
    promotion report. Returns (ok, summary lines)."""
    from pipelines import promotion
    from pipelines.registry import default_registry

    reg = default_registry()
    new = reg.challenger()
    champ = reg.champion()
    lines: list[str] = []
    if new is None:
        return champ is not None, ["no new model version was registered"]
    verdict = "PASS" if new.gates_passed else "FAIL"
    lines.append(f"new version v{new.version}: gates {verdict}"
                 + ("" if new.gates_passed else " — " + " | ".join(new.gate_failures)))
    if champ is None and new.gates_passed:
        res = promotion.promote.execute_in_process(instance=instance, raise_on_error=False,
                                                   run_config={**_QUIET, "ops": {
                                                       "promote_version": {"config": {
                                                           "version": new.version,
                                                           "reason": "demo: first model, every "
                                                           "gate passed", "user": "bestex-demo"}}}})
        if not res.success:
            return False, [*lines, "promotion of the first champion FAILED"]
        lines.append(f"v{new.version} promoted to champion (promote job, audit recorded); "
                     f"report {res.output_for_node('promote_version')['report']}")
    elif new.gates_passed:
        res = promotion.promotion_report_job.execute_in_process(
            instance=instance, raise_on_error=False, run_config={**_QUIET, "ops": {
                "write_promotion_report": {"config": {"version": new.version}}}})
        lines.append(f"v{new.version} is challenger to champion v{champ.version}; promotion "
                     f"report {res.output_for_node('write_promotion_report')}; promote with "
                     f"`bestex promote {new.version} --reason TEXT`")
    else:
        lines.append(f"v{new.version} is refused promotion by its gates; champion stays "
                     + (f"v{champ.version}" if champ else "none"))
    return reg.champion() is not None, lines


def _results_summary(champion: str | None) -> list[str]:
    """Champion metrics against the baselines and the oracle, and the stress table."""
    import json as _json

    import pandas as pd

    home = settings.home()
    out: list[str] = []
    cm = home / "lake" / "cost_model" / "synth.json"
    if cm.is_file():
        m = _json.loads(cm.read_text())
        h = m["holdout"]
        out.append(f"cost model (run {m['mlflow_run_id'][:8]}), holdout {m['holdout_start'][:10]}"
                   f" .. {m['holdout_end'][:10]}:")
        out.append(f"  MAE vs true expected cost {h['truth_mae']:.2f} bps; square-root law "
                   f"{h['sqrt_truth_mae']:.2f} (ratio {h['truth_mae'] / h['sqrt_truth_mae']:.2f})"
                   f"; R2/oracle R2 {h['r2_over_oracle']:.3f}; 80% band coverage "
                   f"{h['coverage_80']:.3f}; PBO {_fmt(m.get('pbo'))}")
    st = home / "reports" / "validation" / "stress" / "calibration.csv"
    if st.is_file():
        t = pd.read_csv(st)
        cols = [c for c in ("scenario", "kind", "n", "bias_bps", "noise_sd_bps", "coverage_80",
                            "outside_domain", "outside_features") if c in t.columns]
        out += ["stress (stage 4):", _table(cols, t[cols].round(3).fillna("").values.tolist())]
    pol = home / "reports" / "validation" / "policy" / "backtest.csv"
    if pol.is_file():
        t = pd.read_csv(pol)
        a = t[t["group"] == "all"].set_index("strategy")
        if {"policy", "twap", "oracle_ac"} <= set(a.index):
            out.append(f"execution policy (stage 4): mean true IS {a.loc['policy', 'truth_bps']:.2f}"
                       f" bps vs TWAP {a.loc['twap', 'truth_bps']:.2f}, oracle Almgren-Chriss "
                       f"{a.loc['oracle_ac', 'truth_bps']:.2f}")
    pap = home / "reports" / "validation" / "paper" / "summary.json"
    if pap.is_file():
        p = _json.loads(pap.read_text())
        out.append(f"paper trading (stage 5, `bestex paper --feed {p['feed']}`): {p['compared']} "
                   f"orders, paper - backtest mean |diff| {p['mean_abs_diff_bps']:.2f} bps "
                   f"(latency {p['mean_latency_bps']:+.2f}, feed time {p['mean_feed_bps']:+.2f})"
                   f", fill rate {p['paper_fill_rate']:.3f} vs {p['bt_fill_rate']:.3f}; journal "
                   f"{p['journal']}")
    out += [f"champion: {'v' + champion if champion else 'none'} (bestex models; "
            "bestex lineage champion)",
            "look: `make ui` -> Dagster http://127.0.0.1:3000 (asset groups learning, "
            "validation, registry) and MLflow http://127.0.0.1:5000 (experiment "
            "cost_model_xgboost, model bestex-cost-model); reports in "
            f"{home / 'reports'}"]
    return out


def run_demo(*, real_data: bool = True, degraded: bool = False) -> int:
    """Materialize every asset (partitions one by one); return 0 when every run and check passed.

    ``degraded``: only retrain, validate and register the cost model, on shuffled labels (a
    drill: the gates must refuse it).
    """
    from pipelines.definitions import build_definitions

    started = time.perf_counter()
    if not real_data:
        os.environ["BESTEX_DATA"] = "/nonexistent"
    defs = build_definitions()
    instance = dagster_instance()
    resources = defs.resources
    all_assets = list(defs.assets or [])
    # the "studies" group (the break scenario) is materialized on demand, not by the demo
    unpartitioned = [a for a in all_assets if isinstance(a, dg.AssetsDefinition)
                     and a.partitions_def is None
                     and "studies" not in a.group_names_by_key.values()]
    partitioned = [a for a in all_assets if isinstance(a, dg.AssetsDefinition)
                   and a.partitions_def is not None]
    rows: list[list[Any]] = []
    checks: list[list[Any]] = []
    ok = True
    print(f"bestex demo: BESTEX_HOME={settings.home()}  real data: "
          f"{settings.data_dir() or 'not found (synthetic only)'}", flush=True)

    def _run(assets: list[dg.AssetsDefinition], partition: str | None, label: str,
             selection: list[dg.AssetKey] | None = None) -> None:
        nonlocal ok
        t0 = time.perf_counter()
        print(f"- materializing {label} ...", flush=True)
        result = dg.materialize(assets, instance=instance, resources=resources,
                                partition_key=partition, raise_on_error=False, selection=selection,
                                run_config={**_QUIET, **(_DEGRADED if degraded else {})})
        ok = ok and result.success
        _summarize(result, rows, checks)
        print(f"  {'ok' if result.success else 'FAILED'} in {time.perf_counter() - t0:.1f} s",
              flush=True)

    if degraded:  # retrain from the training set already in the lake; nothing upstream reruns
        if not (settings.lake() / "training_set").exists():
            print("bestex demo --degraded-challenger: no training set in "
                  f"{settings.lake()}; run `make demo` first", file=sys.stderr)
            return 2
        from assets.learning import COST_MODEL_KEY, HOLDOUT_KEY

        graph = dg.AssetSelection.assets(COST_MODEL_KEY, HOLDOUT_KEY).downstream()
        keys = sorted(graph.resolve(unpartitioned), key=lambda k: k.to_user_string())
        _run(unpartitioned, None, f"{len(keys)} assets on shuffled labels", selection=keys)
        partitioned = []
    elif unpartitioned:
        _run(unpartitioned, None, f"{len(unpartitioned)} asset definitions")
    by_def: dict[Any, list[dg.AssetsDefinition]] = {}
    for a in partitioned:
        by_def.setdefault(a.partitions_def, []).append(a)
    for pdef, group in by_def.items():
        for key in pdef.get_partition_keys(dynamic_partitions_store=instance):
            _run(group, key, f"partition {key}")

    print()
    print(_table(["asset", "rows", "quarantined"], rows))
    print()
    print(_table(["asset", "check", "result"], checks))
    failed = [c for c in checks if c[2] == "FAIL"]
    has_champion, lines = _registry_step(instance) if ok else (False, [])
    from pipelines.registry import default_registry

    champ = default_registry().champion()
    print()
    print("\n".join(lines + _results_summary(champ.version if champ else None)))
    print(f"\n{len(rows)} materializations, {len(checks)} checks "
          f"({len(failed)} failed), {time.perf_counter() - started:.0f} s; "
          f"state in {settings.home()}")
    if ok and not has_champion:
        print("NO CHAMPION: no version has passed every promotion gate yet (the gate report "
              f"is in {settings.home() / 'reports' / 'validation' / 'gates' / 'report.md'})")
    # a refusal by the gates is an outcome of the product, not a failure of the demo
    return 0 if ok and not failed else 1


if __name__ == "__main__":
    sys.exit(run_demo())
