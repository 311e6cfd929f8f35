"""Registry workflow: versions, aliases, gated promotion with overrides, rollback, audit, lineage.

One SQLite tracking database and two real (tiny) XGBoost models are logged once per module; each
test works on its own registered-model name and audit table so the tests stay independent.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid

import numpy as np
import pandas as pd
import pytest

from bestex.lineage import format_lineage
from pipelines.registry import (
    AUDIT_COLUMNS,
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    PREVIOUS,
    ModelRegistry,
    PromotionRefused,
    UnknownVersion,
    default_registry,
)
from validation.leakage import embargo_proof

os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")


@contextlib.contextmanager
def _tracking(uri: str):
    import mlflow

    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield mlflow
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Tracking URI and two runs, each with an XGBoost booster logged as ``mean_model``."""
    import xgboost as xgb

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=X.sum(axis=1)), 2)
    runs = []
    with _tracking(uri) as mlflow:
        exp = mlflow.create_experiment("registry_test",
                                       artifact_location=(root / "artifacts").as_uri())
        for i in range(2):
            tags = {"dagster_run_id": f"dagster-run-{i}", "code_version": f"sha{i}",
                    "cv_scheme": "PurgedKFold(n_splits=5, embargo_pct=0.01)"}
            with mlflow.start_run(experiment_id=exp, run_name=f"train-{i}", tags=tags) as run:
                df = pd.DataFrame({"decision_ts": pd.date_range("2025-01-02", periods=4,
                                                                freq="D"), "x": 1.0})
                mlflow.log_input(mlflow.data.from_pandas(df, name="synth_train", digest=f"d{i}"),
                                 context="training",
                                 tags={"time_min": "2025-01-02", "time_max": "2025-01-05"})
                info = mlflow.xgboost.log_model(booster, name="mean_model",
                                                pip_requirements=["xgboost-cpu"])
                runs.append((run.info.run_id, info.model_uri))
    return uri, runs


@pytest.fixture
def reg(logged, tmp_path):
    uri, _ = logged
    root = uri.removeprefix("sqlite:///").removesuffix("/mlflow.db")
    return ModelRegistry(root=root, audit_path=str(tmp_path / "registry" / "audit.parquet"),
                         model_name=f"test-model-{uuid.uuid4().hex[:8]}")


def _lineage_tags(holdout_start: str = "2025-01-20T14:31:00Z",
                  train_max_t1: str = "2025-01-17T20:59:00Z",
                  embargo_s: float = 3 * 3600.0) -> dict[str, str]:
    return {
        "train_start": "2025-01-02T14:30:00Z", "train_end": "2025-01-17T20:00:00Z",
        "train_max_t1": train_max_t1, "holdout_start": holdout_start,
        "holdout_end": "2025-01-31T21:00:00Z", "embargo_s": str(embargo_s),
        "holdout_purged_orders": "17",
        "dataset_digest_train": "abc123", "dataset_digest_holdout": "def456",
        "source_partitions": json.dumps(["raw/synth/quotes", "raw/synth/orders/2025-01-02"]),
        "code_version": "857f530", "dagster_run_id": "dagster-run-0",
        "cv_scheme": "PurgedKFold(n_splits=5, embargo_pct=0.01)",
    }


def _register(reg: ModelRegistry, logged, i: int = 0, *, passed: bool = True,
              failures: list[str] | None = None, tags: dict[str, str] | None = None):
    run_id, model_uri = logged[1][i]
    return reg.register(run_id, "mean_model", tags=tags or _lineage_tags(), gates_passed=passed,
                        gate_failures=failures or [], user="alice", model_uri=model_uri)


def test_register_creates_challenger_with_tags_and_audit(reg, logged):
    v1 = _register(reg, logged, 0)
    assert v1.version == "1"
    assert v1.run_id == logged[1][0][0]
    assert v1.aliases == (CHALLENGER,)
    assert v1.tags["gates_passed"] == "true"
    assert v1.tags["gate_failures"] == ""
    assert v1.tags["mlflow_run_id"] == v1.run_id
    assert v1.tags["dataset_digest_train"] == "abc123"
    assert v1.tags["audit.registered_by"] == "alice"
    assert v1.tags["audit.registered_at"]
    v2 = _register(reg, logged, 1)
    assert reg.challenger().version == v2.version == "2"
    assert reg.version("1").aliases == ()
    assert reg.champion() is None
    audit = reg.audit()
    assert list(audit["action"]) == ["register", "register"]
    assert list(audit["run_id"]) == [logged[1][0][0], logged[1][1][0]]
    versions = reg.versions()
    assert list(versions["version"]) == ["1", "2"]
    assert list(versions["aliases"]) == ["", CHALLENGER]


def test_registered_version_loads_by_alias(reg, logged):
    import mlflow.xgboost

    _register(reg, logged, 0)
    with _tracking(logged[0]):
        booster = mlflow.xgboost.load_model(f"models:/{reg.name}@{CHALLENGER}")
    assert booster.num_boosted_rounds() == 2


def test_register_from_run_and_artifact_path_without_model_uri(reg, logged):
    run_id, model_uri = logged[1][1]
    v = reg.register(run_id, "mean_model", tags={}, gates_passed=True, gate_failures=[])
    mv = reg.client.get_model_version(reg.name, v.version)
    assert mv.source == reg.client.get_logged_model(model_uri.split("/")[-1]).artifact_location
    with pytest.raises(LookupError, match="no model named 'nope'"):
        reg.register(run_id, "nope", tags={}, gates_passed=True, gate_failures=[])


def test_promotion_moves_champion_and_previous(reg, logged):
    _register(reg, logged, 0)
    _register(reg, logged, 1)
    v1 = reg.promote("1", reason="first model", user="bob")
    assert v1.aliases == (CHAMPION,)
    assert reg.previous() is None
    assert reg.challenger().version == "2"
    assert v1.tags["audit.promoted_by"] == "bob"
    assert v1.tags["audit.promotion_reason"] == "first model"
    assert "audit.override_reason" not in v1.tags

    v2 = reg.promote("2", reason="beats v1 on holdout MAE", user="bob")
    assert v2.aliases == (CHAMPION,)  # challenger removed on promotion
    assert reg.challenger() is None
    assert reg.champion().version == "2"
    assert reg.previous().version == "1"
    with pytest.raises(ValueError, match="already the champion"):
        reg.promote("2", reason="again")
    audit = reg.audit()
    assert list(audit["action"]) == ["register", "register", "promote", "promote"]
    assert audit["previous_champion"].iloc[-1] == "1"
    assert pd.isna(audit["previous_champion"].iloc[-2])


def test_failed_gates_refuse_promotion_until_overridden(reg, logged):
    _register(reg, logged, 0)
    reg.promote("1", reason="baseline")
    failures = ["coverage_80 0.71 < 0.75", "stress: 1 of 5 pass; failing: crisis_2008",
                "pbo 0.62 > 0.5"]
    _register(reg, logged, 1, passed=False, failures=failures)
    with pytest.raises(PromotionRefused) as exc:
        reg.promote("2", reason="looks better", user="carol")
    assert exc.value.reasons == failures
    assert "coverage_80 0.71 < 0.75" in str(exc.value)
    assert reg.champion().version == "1"
    refused = reg.audit().iloc[-1]
    assert refused["action"] == "refused"
    assert refused["user"] == "carol"
    assert refused["reason"] == "looks better"
    assert not refused["gates_passed"]
    assert refused["gate_failures"] == "".join(f + "\n" for f in failures)  # ';' in a detail
    assert reg.version("2").gate_failures == failures

    v2 = reg.promote("2", reason="desk needs the new venue", user="carol",
                     override="coverage miss is one illiquid name; accepted by risk")
    assert reg.champion().version == "2"
    assert reg.previous().version == "1"
    assert v2.tags["audit.override_reason"] == "coverage miss is one illiquid name; accepted by risk"
    row = reg.audit().iloc[-1]
    assert row["action"] == "override"
    assert row["override_reason"] == "coverage miss is one illiquid name; accepted by risk"
    assert row["previous_champion"] == "1"


def test_rollback_restores_previous_champion_once(reg, logged):
    _register(reg, logged, 0)
    _register(reg, logged, 1)
    reg.promote("1", reason="first")
    reg.promote("2", reason="second")
    restored = reg.rollback(reason="v2 drifts on open auction orders", user="dave")
    assert restored.version == "1"
    assert reg.champion().version == "1"
    assert reg.previous() is None
    v2 = reg.version("2")
    assert CHAMPION not in v2.aliases
    assert v2.tags["audit.rolled_back_by"] == "dave"
    assert v2.tags["audit.rolled_back_reason"] == "v2 drifts on open auction orders"
    assert v2.tags["audit.rolled_back_at"]
    row = reg.audit().iloc[-1]
    assert (row["action"], row["version"], row["previous_champion"]) == ("rollback", "1", "2")
    with pytest.raises(ValueError, match="nothing to roll back to"):
        reg.rollback(reason="flip back")
    # going forward again is an explicit, reasoned promotion
    reg.promote("2", reason="fixed the auction feature")
    assert (reg.champion().version, reg.previous().version) == ("2", "1")


def test_reasons_are_required(reg, logged):
    _register(reg, logged, 0)
    for reason in ("", "   "):
        with pytest.raises(ValueError, match="non-empty reason"):
            reg.promote("1", reason=reason)
    with pytest.raises(ValueError, match="non-empty reason"):
        reg.promote("1", reason="ok", override="")
    with pytest.raises(ValueError, match="non-empty reason"):
        reg.rollback(reason="")
    with pytest.raises(ValueError, match="nothing to roll back to"):
        reg.rollback(reason="no champion yet")
    assert reg.champion() is None
    assert list(reg.audit()["action"]) == ["register"]


def test_unknown_version_names_the_versions(logged, tmp_path):
    root = logged[0].removeprefix("sqlite:///").removesuffix("/mlflow.db")
    reg = ModelRegistry(root=root, audit_path=str(tmp_path / "audit.parquet"))  # real name
    assert reg.name == MODEL_NAME
    with pytest.raises(UnknownVersion, match="has no version 1; versions: \\(none registered\\)"):
        reg.version("1")
    _register(reg, logged, 0)
    _register(reg, logged, 1)
    msg = "model bestex-cost-model has no version 7; versions: 1, 2"
    with pytest.raises(UnknownVersion) as exc:
        reg.version(7)
    assert str(exc.value) == msg
    with pytest.raises(LookupError, match=msg):
        reg.promote("7", reason="typo")
    with pytest.raises(ValueError, match="has no version abc"):
        reg.version("abc")


def test_lineage_chain_and_proof(reg, logged):
    _register(reg, logged, 0)
    info = reg.lineage("1")
    assert info["mlflow_run"]["run_id"] == logged[1][0][0]
    assert info["mlflow_run"]["run_name"] == "train-0"
    assert info["dagster_run_id"] == "dagster-run-0"
    assert info["datasets"]["train"]["digest"] == "abc123"
    assert info["datasets"]["holdout"]["start"] == "2025-01-20T14:31:00Z"
    assert info["source_partitions"] == ["raw/synth/quotes", "raw/synth/orders/2025-01-02"]
    assert [d["digest"] for d in info["logged_datasets"]] == ["d0"]
    proof = info["proof"]
    assert proof["holds"] is True
    assert proof["holdout_after_train_end"] is True
    assert proof["margin"] == pd.Timedelta("2 days 14:32:00")
    assert proof["margin_s"] == pd.Timedelta("2 days 14:32:00").total_seconds()
    text = format_lineage(info)
    assert f"{reg.name} v1" in text
    assert "<- MLflow run" in text
    assert "<- Dagster run dagster-run-0" in text
    assert "raw/synth/quotes" in text
    assert "purged   17 orders" in text
    assert text.splitlines()[-1] == (
        "PROOF holdout_start 2025-01-20T14:31:00Z > train max t1 2025-01-17T20:59:00Z "
        "+ embargo 0 days 03:00:00 = 2025-01-17T23:59:00Z : OK (margin 2 days 14:32:00)")


def test_lineage_proof_fails_inside_the_embargo(reg, logged):
    # holdout starts one hour after the last training label, inside a three-hour embargo
    _register(reg, logged, 0, tags=_lineage_tags(holdout_start="2025-01-17T21:59:00Z"))
    info = reg.lineage("1")
    assert info["proof"]["holds"] is False
    assert info["proof"]["margin"] == pd.Timedelta(hours=-2)
    assert ": FAIL (margin -1 days +22:00:00)" in format_lineage(info)


def test_embargo_proof_is_strict_and_reports_missing_tags():
    at_bound = _lineage_tags(holdout_start="2025-01-17T23:59:00Z")
    assert embargo_proof(at_bound)["holds"] is False  # equality is not enough
    assert embargo_proof({**at_bound, "embargo_s": "0"})["holds"] is True
    naive = _lineage_tags(holdout_start="2025-01-20 14:31", train_max_t1="2025-01-17 20:59")
    assert embargo_proof(naive)["holds"] is True
    missing = embargo_proof({"holdout_start": "2025-01-20T14:31:00Z"})
    assert missing["holds"] is False
    assert missing["missing"] == ["train_max_t1", "embargo_s"]


def test_lineage_falls_back_to_run_tags(reg, logged):
    run_id, model_uri = logged[1][1]
    reg.register(run_id, "mean_model", tags={}, gates_passed=True, gate_failures=[],
                 model_uri=model_uri)
    info = reg.lineage("1")
    assert (info["dagster_run_id"], info["code_version"]) == ("dagster-run-1", "sha1")
    assert info["proof"]["missing"] == ["holdout_start", "train_max_t1", "embargo_s"]
    assert "UNPROVEN, missing holdout_start" in format_lineage(info)


def test_audit_records_who_when_why(reg, logged, monkeypatch):
    assert list(reg.audit().columns) == list(AUDIT_COLUMNS)
    assert reg.audit().empty
    monkeypatch.setenv("BESTEX_USER", "erin")
    run_id, model_uri = logged[1][0]
    reg.register(run_id, "mean_model", tags={}, gates_passed=True, gate_failures=[],
                 model_uri=model_uri)
    reg.register(run_id, "mean_model", tags={}, gates_passed=True, gate_failures=[],
                 model_uri=model_uri)
    reg.promote("1", reason="first")
    reg.promote("2", reason="second")
    reg.rollback(reason="bad fills")
    audit = reg.audit()
    assert list(audit.columns) == list(AUDIT_COLUMNS)
    assert list(audit["action"]) == ["register", "register", "promote", "promote", "rollback"]
    assert (audit["user"] == "erin").all()
    assert audit["ts"].notna().all()
    assert audit["ts"].is_monotonic_increasing
    assert str(audit["ts"].dt.tz) == "UTC"
    assert list(audit["reason"].iloc[2:]) == ["first", "second", "bad fills"]
    assert audit["run_id"].notna().all()
    assert audit["gates_passed"].all()


def test_default_registry_uses_the_projects_tracking_database(tmp_path, monkeypatch):
    from pipelines.resources import local_resources

    monkeypatch.setenv("BESTEX_HOME", str(tmp_path))
    reg = default_registry()
    assert reg.tracking_uri == local_resources()["registry"].tracking_uri
    assert reg.audit_file == tmp_path.resolve() / "registry" / "audit.parquet"
    assert reg.name == MODEL_NAME
    assert reg.champion() is None
    assert reg.versions().empty
    assert PREVIOUS == "previous-champion"


def test_gate_failures_written_before_one_per_line_still_split(reg, logged):
    v = _register(reg, logged, 0, passed=False)
    reg.client.set_model_version_tag(reg.name, v.version, "gate_failures", "oos: 30%; pbo 0.6")
    assert reg.version(v.version).gate_failures == ["oos: 30%", "pbo 0.6"]


def _append_rows(path: str, who: str, n: int) -> None:
    from datetime import UTC, datetime
    from pathlib import Path

    from pipelines.registry._audit import append_audit

    for i in range(n):
        append_audit(Path(path), ts=datetime.now(UTC), action="register", version=f"{who}{i}",
                     user=who, gates_passed=True)


def test_concurrent_audit_appends_keep_every_row(tmp_path):
    """Two processes append to one audit table at once: every row is there (the table is
    rewritten per append; without the lock one writer's rewrite drops the other's rows)."""
    import multiprocessing as mp

    from pipelines.registry._audit import read_audit

    path = tmp_path / "audit.parquet"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_rows, args=(str(path), who, 40)) for who in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    got = read_audit(path)
    assert sorted(got["version"]) == sorted(f"{w}{i}" for w in "ab" for i in range(40))
    assert not list(tmp_path.glob("*.tmp"))
