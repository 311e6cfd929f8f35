"""Promotion: the human decision, as a Dagster job, and the promotion report behind it.

``promote`` and ``rollback`` are op jobs over :mod:`pipelines.registry` (``bestex promote`` and
``bestex rollback`` run them in process, so every decision is also a Dagster run).
``promotion_report`` writes the challenger-against-champion report
(``BESTEX_HOME/reports/promotion/v<N>.md``, also logged to the challenger's MLflow run); the
``challenger_passed_gates`` sensor requests it when a registered version passes its gates — the
promotion itself stays a person's decision.
"""


from pathlib import Path
from typing import Any

import dagster as dg

from bestex import settings
from pipelines.registry import default_registry

_METRICS = ("holdout_truth_mae", "holdout_sqrt_truth_mae", "holdout_athl_truth_mae",
            "holdout_r2_over_oracle", "holdout_coverage_80", "holdout_mae", "holdout_rmse",
            "holdout_wrmse", "cv_wrmse", "oos_degradation_pct", "pbo", "gates_passed")


def demote_headings(md: str) -> str:
    """``md`` with every markdown heading one level lower, code fences left as they are."""
    out, fence = [], None
    for line in md.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            mark = stripped[:3]
            fence = mark if fence is None else (None if mark == fence else fence)
        elif fence is None and line.startswith("#"):
            line = "#" + line
        out.append(line)
    return "\n".join(out) + ("\n" if md.endswith("\n") else "")


def promotion_report(version: str) -> Path:
    """Markdown report of ``version`` against the champion: metrics side by side, gates, stress."""
    reg = default_registry()
    cand = reg.version(version)
    champ = reg.champion()
    runs = {"challenger v" + cand.version: cand.run_id}
    if champ is not None and champ.version != cand.version:
        runs["champion v" + champ.version] = champ.run_id
    cols = {name: reg.run_metrics(rid) for name, rid in runs.items()}
    lines = [f"# Promotion report — bestex-cost-model v{cand.version}", "",
             f"Gates passed: **{cand.gates_passed}**"
             + (f" — failures: {' | '.join(cand.gate_failures)}" if cand.gate_failures else ""),
             "", "| metric | " + " | ".join(cols) + " |",
             "|---|" + "---|" * len(cols)]
    for m in _METRICS:
        vals = [cols[n].get(m) for n in cols]
        lines.append(f"| {m} | " + " | ".join("" if v is None else f"{v:.4f}" for v in vals)
                     + " |")
    for stage in ("gates", "stress", "walk_forward"):
        # the stage report logged on the version's own run, not the latest file on disk
        text = reg.stage_report(cand.run_id, stage)
        if text is not None:
            lines += ["", demote_headings(text)]
    lines += ["", "## Lineage", "", *_lineage_table(reg.lineage(version))]
    out = settings.home() / "reports" / "promotion" / f"v{cand.version}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    with reg.resume_run(cand.run_id) as run:
        run.log_artifact(out, artifact_path="promotion")
    return out


def _lineage_table(info: dict[str, Any]) -> list[str]:
    """The lineage record as a markdown table (``bestex lineage`` prints the full chain)."""
    tr, ho, p = info["datasets"]["train"], info["datasets"]["holdout"], info["proof"]
    rows = [("model", info["model"]["uri"]), ("MLflow run", info["mlflow_run"].get("run_id")),
            ("Dagster run", info["dagster_run_id"]), ("code", info["code_version"]),
            ("CV", info["cv_scheme"]),
            ("train", f"{tr['start']} .. {tr['end']} (max t1 {tr['max_t1']}) {tr['digest']}"),
            ("holdout", f"{ho['start']} .. {ho['end']} {ho['digest']}"),
            ("embargo proof", "OK" if p["holds"] else f"FAIL {p['missing'] or ''}")]
    return ["| | |", "|---|---|", *(f"| {k} | {v or '?'} |" for k, v in rows)]


class PromoteConfig(dg.Config):
    version: str
    reason: str
    override: str | None = None
    user: str | None = None


class RollbackConfig(dg.Config):
    reason: str
    user: str | None = None


@dg.op
def promote_version(context: dg.OpExecutionContext, config: PromoteConfig) -> dict[str, Any]:
    report = promotion_report(config.version)
    # keyed by the root run: a re-execution after a worker died mid-promotion finishes it
    info = default_registry().promote(config.version, reason=config.reason, user=config.user,
                                      override=config.override,
                                      run_key=context.run.root_run_id or context.run.run_id)
    context.log.info(f"v{info.version} is champion ({config.reason}); report {report}")
    return {"version": info.version, "report": str(report)}


@dg.op
def rollback_champion(context: dg.OpExecutionContext, config: RollbackConfig) -> dict[str, Any]:
    info = default_registry().rollback(reason=config.reason, user=config.user)
    context.log.info(f"rolled back: v{info.version} is champion again ({config.reason})")
    return {"version": info.version}


class ReportConfig(dg.Config):
    version: str


@dg.op
def write_promotion_report(context: dg.OpExecutionContext, config: ReportConfig) -> str:
    path = promotion_report(config.version)
    context.log.info(f"promotion report for v{config.version}: {path}")
    return str(path)


@dg.job(description="Promote a registered version to champion (refused when its gates failed, "
        "unless overridden with a reason, which is recorded).")
def promote():
    promote_version()


@dg.job(description="Restore the previous champion.")
def rollback():
    rollback_champion()


@dg.job(description="Write the challenger-against-champion promotion report of a version.")
def promotion_report_job():
    write_promotion_report()


def build_promotion_sensor() -> dg.SensorDefinition:
    @dg.asset_sensor(asset_key=dg.AssetKey(["registry", "cost_model_version"]),
                     job=promotion_report_job, name="challenger_passed_gates",
                     default_status=dg.DefaultSensorStatus.RUNNING)
    def challenger_passed_gates(context: dg.SensorEvaluationContext,
                                asset_event: dg.EventLogEntry):
        mat = asset_event.asset_materialization
        meta = mat.metadata if mat is not None else {}
        if not (meta.get("gates_passed") and meta["gates_passed"].value):
            return dg.SkipReason("the new version did not pass its gates")
        version = str(meta["version"].value)
        return dg.RunRequest(run_key=f"promotion-report-v{version}",
                             run_config={"ops": {"write_promotion_report": {
                                 "config": {"version": version}}}})

    return challenger_passed_gates
