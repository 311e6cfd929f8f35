"""Promotion as Dagster runs: the promote and rollback jobs, the per-version promotion report, the
sensor that prepares it when a challenger passes its gates.

Two tiny XGBoost models are logged in the project's own tracking database under the temporary
``BESTEX_HOME``, each with the stage reports the validation assets attach to a model's run.
"""

import dagster as dg
import numpy as np
import pytest

from pipelines import promotion
from pipelines.registry import default_registry

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

GATES_MD = """# Promotion gates

**Promotion gates: {verdict}**

```toml
# a comment of the gate file, not a heading
[oos]
```
"""


def _log_model(home, i: int, passed: bool) -> str:
    """Log model ``i`` with a gates report; register it; return its version."""
    import mlflow
    import xgboost as xgb

    reg = default_registry()
    mlflow.set_tracking_uri(reg.tracking_uri)
    if mlflow.get_experiment_by_name("promo") is None:
        mlflow.create_experiment("promo", artifact_location=(home / "artifacts").as_uri())
    X = np.random.default_rng(i).normal(size=(40, 2))
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=X[:, 0]), 2)
    with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name("promo").experiment_id,
                          run_name=f"m{i}") as run:
        mlflow.log_metrics({"holdout_truth_mae": 3.0 + i, "gates_passed": float(passed)})
        mlflow.log_text(GATES_MD.format(verdict="PASS" if passed else "FAIL"),
                        "validation/gates/report.md")  # where the gates stage logs it
        info = mlflow.xgboost.log_model(booster, name="mean_model",
                                        pip_requirements=["xgboost-cpu"])
    tags = {"holdout_start": "2025-01-20T14:31:00Z", "train_max_t1": "2025-01-17T20:59:00Z",
            "embargo_s": "3600.0", "train_start": "2025-01-02T14:30:00Z",
            "train_end": "2025-01-17T20:00:00Z", "holdout_end": "2025-01-31T21:00:00Z"}
    v = reg.register(run.info.run_id, "mean_model", tags=tags, gates_passed=passed,
                     gate_failures=[] if passed else ["stress: 1 of 5 pass; failing: crisis"],
                     user="test", model_uri=info.model_uri)
    return v.version


def _promote(version: str, reason: str, override: str | None = None):
    return promotion.promote.execute_in_process(
        run_config={**QUIET, "ops": {"promote_version": {"config": {
            "version": version, "reason": reason, "override": override, "user": "dana"}}}},
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


@pytest.fixture
def home(_bestex_home):
    return _bestex_home


def test_demote_headings_leaves_code_fences_alone():
    md = "# Title\n\ntext\n\n```toml\n# comment\n```\n## Sub\n"
    assert promotion.demote_headings(md) == "## Title\n\ntext\n\n```toml\n# comment\n```\n### Sub\n"


def test_promote_refuse_override_and_rollback_as_dagster_runs(home):
    v1, v2, v3 = _log_model(home, 0, True), _log_model(home, 1, True), _log_model(home, 2, False)
    reg = default_registry()

    # a version whose gates passed is promoted by the job; the report is written first
    res = _promote(v1, "first model")
    assert res.success
    assert reg.champion().version == v1
    assert res.output_for_node("promote_version")["report"].endswith(f"v{v1}.md")

    # a failing version is refused: the run fails, the champion stays, the audit says refused
    res = _promote(v3, "looks fine")
    assert not res.success
    assert reg.champion().version == v1
    last = reg.audit().iloc[-1]
    assert (last["action"], last["version"], last["user"]) == ("refused", v3, "dana")

    # a second passing version: champion moves, the first becomes previous-champion
    assert _promote(v2, "weekly retrain").success
    assert (reg.champion().version, reg.previous().version) == (v2, v1)

    # rollback restores the previous champion, as its own run
    res = promotion.rollback.execute_in_process(
        run_config={**QUIET, "ops": {"rollback_champion": {"config": {
            "reason": "desk complaint", "user": "dana"}}}},
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert res.success
    assert reg.champion().version == v1

    # the override is recorded with its reason
    assert _promote(v3, "drill", override="accepted by risk for the drill").success
    assert reg.champion().version == v3
    last = reg.audit().iloc[-1]
    assert (last["action"], last["override_reason"]) == ("override",
                                                         "accepted by risk for the drill")


def test_promotion_report_uses_the_versions_own_stage_reports(home):
    v1 = _log_model(home, 0, True)
    assert _promote(v1, "first").success
    v2 = _log_model(home, 1, False)
    # the newest stage report on disk belongs to v2: v1's promotion report must not read it
    stale = home / "reports" / "validation" / "gates" / "report.md"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text(GATES_MD.format(verdict="FAIL"))

    text = promotion.promotion_report(v1).read_text()
    # v1's own gate report (PASS), its headings one level down, the toml comment untouched
    assert "**Promotion gates: PASS**" in text
    assert "\n## Promotion gates\n" in text
    assert "\n# a comment of the gate file, not a heading\n" in text
    text2 = promotion.promotion_report(v2).read_text()
    assert "**Promotion gates: FAIL**" in text2
    # side by side with the champion: challenger 4.0 and champion 3.0
    assert f"| metric | challenger v{v2} | champion v{v1} |" in text2
    assert "| holdout_truth_mae | 4.0000 | 3.0000 |" in text2


def test_sensor_requests_a_report_only_for_versions_that_passed():
    sensor = promotion.build_promotion_sensor()
    key = dg.AssetKey(["registry", "cost_model_version"])
    instance = dg.DagsterInstance.ephemeral()

    instance.report_runless_asset_event(dg.AssetMaterialization(
        key, metadata={"version": "7", "gates_passed": False}))
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert not data.run_requests
    assert "did not pass" in (data.skip_message or "")

    instance.report_runless_asset_event(dg.AssetMaterialization(
        key, metadata={"version": "8", "gates_passed": True}))
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=data.cursor))
    assert [r.run_key for r in data.run_requests] == ["promotion-report-v8"]
    cfg = data.run_requests[0].run_config["ops"]["write_promotion_report"]["config"]
    assert cfg == {"version": "8"}


def test_cli_promote_lists_the_failed_gates_and_exits_1(home, capsys):
    from bestex.cli import main

    v1, v2 = _log_model(home, 0, True), _log_model(home, 1, False)
    assert main(["promote", v1, "--reason", "first"]) == 0
    capsys.readouterr()
    assert main(["promote", v2, "--reason", "try"]) == 1
    err = capsys.readouterr().err
    assert f"promotion of v{v2} REFUSED" in err
    assert "  - stress: 1 of 5 pass; failing: crisis\n" in err  # one gate per line, whole
    # not a refusal: a blank reason is bad input (exit 2, issue 12), not reported as REFUSED
    assert main(["promote", v2, "--reason", " ", "--override", "x"]) == 2
    err = capsys.readouterr().err
    assert "REFUSED" not in err
    assert "--reason is blank" in err
    assert main(["promote", "99", "--reason", "x"]) == 2  # unknown version: bad input


def test_a_promotion_killed_half_way_is_finished_by_its_re_execution(home):
    """The promote job's worker dies after the champion alias moved, before the promotion's tags
    and audit row (``BESTEX_FAULT=registry.promoted``). A re-execution of that run (same root
    run key) finishes it: one audit row, the tags, the aliases as an uninterrupted promotion
    leaves them; a call with another key is refused as before (already the champion)."""
    import os
    import signal
    import subprocess
    import sys

    v1, v2 = _log_model(home, 0, True), _log_model(home, 1, True)
    reg = default_registry()
    reg.promote(v1, reason="first model", user="dana")
    code = ("from pipelines.registry import default_registry\n"
            f"default_registry().promote({v2!r}, reason='weekly retrain', user='dana', "
            "run_key='ROOT1')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "BESTEX_FAULT": "registry.promoted"}, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (reg.champion().version, reg.previous().version) == (v2, v1)
    audit = reg.audit()
    assert not ((audit["version"] == v2) & (audit["action"] == "promote")).any()
    assert "audit.promoted_by" not in reg.version(v2).tags

    with pytest.raises(ValueError, match="already the champion"):
        reg.promote(v2, reason="weekly retrain", user="dana", run_key="ANOTHER")
    for _ in range(2):  # the re-execution, then once more: nothing written twice
        info = reg.promote(v2, reason="weekly retrain", user="dana", run_key="ROOT1")
        assert info.version == v2
    assert (reg.champion().version, reg.previous().version) == (v2, v1)
    rows = reg.audit()
    rows = rows[(rows["version"] == v2) & (rows["action"] == "promote")]
    assert len(rows) == 1
    assert (rows.iloc[0]["previous_champion"], rows.iloc[0]["user"]) == (v1, "dana")
    tags = reg.version(v2).tags
    assert tags["audit.promoted_by"] == "dana"
    assert tags["audit.promoted_at"] == tags["audit.promotion_started_at"]
    assert v2 not in (reg.challenger().version if reg.challenger() else "",)
