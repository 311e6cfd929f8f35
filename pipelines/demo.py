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


def _instance() -> dg.DagsterInstance:
    dagster_home = settings.home() / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
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
        checks.append([
            ev.asset_key.to_user_string() + (f" [{ev.partition}]" if ev.partition else ""),
            ev.check_name,
            "PASS" if ev.passed else "FAIL",
        ])


def _table(header: Sequence[str], rows: list[list[Any]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(lines)


def run_demo(*, real_data: bool = True) -> int:
    """Materialize every asset (partitions one by one); return 0 when every run and check passed."""
    from pipelines.definitions import build_definitions

    started = time.perf_counter()
    if not real_data:
        os.environ["BESTEX_DATA"] = "/nonexistent"
    defs = build_definitions()
    instance = _instance()
    resources = defs.resources
    all_assets = list(defs.assets or [])
    unpartitioned = [a for a in all_assets if isinstance(a, dg.AssetsDefinition)
                     and a.partitions_def is None]
    partitioned = [a for a in all_assets if isinstance(a, dg.AssetsDefinition)
                   and a.partitions_def is not None]
    rows: list[list[Any]] = []
    checks: list[list[Any]] = []
    ok = True
    print(f"bestex demo: BESTEX_HOME={settings.home()}  real data: "
          f"{settings.data_dir() or 'not found (synthetic only)'}", flush=True)

    def _run(selection: list[dg.AssetsDefinition], partition: str | None, label: str) -> None:
        nonlocal ok
        t0 = time.perf_counter()
        print(f"- materializing {label} ...", flush=True)
        result = dg.materialize(selection, instance=instance, resources=resources,
                                partition_key=partition, raise_on_error=False,
                                run_config=_QUIET)
        ok = ok and result.success
        _summarize(result, rows, checks)
        print(f"  {'ok' if result.success else 'FAILED'} in {time.perf_counter() - t0:.1f} s",
              flush=True)

    if unpartitioned:
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
    failed = [c for c in checks if c[2] != "PASS"]
    print(f"\n{len(rows)} materializations, {len(checks)} checks "
          f"({len(failed)} failed), {time.perf_counter() - started:.0f} s; "
          f"state in {settings.home()}")
    return 0 if ok and not failed else 1


if __name__ == "__main__":
    sys.exit(run_demo())
