"""A worker killed in the middle of a run; the run re-executed from failure finishes with the
results of an uninterrupted run and nothing duplicated (issue 17, "Faults").

The training -> registration path of the synthetic cost model (``synth_cost_model`` then
``cost_model_version``) runs on Dagster's multiprocess executor with a SQLite instance under
``BESTEX_HOME``: every step is a worker process of its own. Its inputs (the synthetic desk's
training set, the real rows, empty without a data folder) are materialized first, in process;
the promotion gates are a fixed pass in the lake (stages 2-4 take minutes and are not what is
under test). ``BESTEX_FAULT`` (:mod:`models.faults`) makes a worker ``SIGKILL`` itself:

1. the reference: the training step, uninterrupted;
2. run A: the training step's worker is killed inside Optuna trial 2, trials 0 and 1 complete;
3. run B, A re-executed from failure: training resumes the study, registration's worker is
   killed after MLflow created the version, before its alias and audit row;
4. run C, B re-executed from failure: registration only, and the run succeeds.

Then: one version, challenger, one audit row; the study holds 4 COMPLETE trials and the killed
one as FAIL, none RUNNING, each number once; one MLflow training run; one whole file per asset in
the lake; the model record and the holdout predictions equal the reference's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import optuna
import pandas as pd
import pytest

from assets.cleansed import cleansed_table
from assets.execution import execution_assets
from assets.learning import _TRAINING_KEY, COST_MODEL_KEY, HOLDOUT_KEY, learning_assets
from assets.real_books import REAL_ROWS_KEY, real_training_rows
from assets.sources import synthetic_market
from assets.validation import GATES_KEY, VERSION_KEY, cost_model_version
from bestex import settings
from models.tuning import _storage
from pipelines.definitions import _contract, _market
from pipelines.registry import CHALLENGER, ROOT_RUN_TAG, default_registry
from pipelines.resources import ParquetLakeIOManager, local_resources

N_TRIALS = 4
KILLED_TRIAL = 2
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
_TRAINING = {"synth_cost_model": {"config": {"n_trials": N_TRIALS, "n_splits": 3,
                                             "max_depth": 3, "max_rounds": 100, "seed": 0}}}
_INPUTS = {"synthetic_market": {"config": {"n_symbols": 3, "n_sessions": 8, "seed": 1}},
           "synth_desk_history": {"config": {"n_orders": 300, "seed": 3}}}
# what differs between two runs that train the same model: where and when it was logged
_RUN_FIELDS = {"mlflow_run_id", "model_uri", "dagster_run_id"}


@dg.asset(key=GATES_KEY, group_name="validation",
          description="Stand-in for the promotion gates: a fixed pass.")
def gates_pass() -> dict:
    return {"passed": True, "failures": [], "champion_compared": None, "results": {}}


def _assets() -> list:
    return [synthetic_market,
            *(cleansed_table("synth", t, _market) for t in ("quotes", "trades")),
            *(cleansed_table("synth", t, _contract) for t in ("daily_bars", "membership")),
            *execution_assets(), *learning_assets(), real_training_rows, gates_pass,
            cost_model_version]


def train_and_register() -> dg.JobDefinition:
    """The job under test (module level: each worker process rebuilds it)."""
    defs = dg.Definitions(
        assets=_assets(), resources=local_resources(),
        executor=dg.multiprocess_executor.configured({"max_concurrent": 2}),
        jobs=[dg.define_asset_job("train_and_register",
                                  selection=[COST_MODEL_KEY, HOLDOUT_KEY, VERSION_KEY])])
    return defs.resolve_job_def("train_and_register")


@pytest.fixture
def instance(monkeypatch):
    from pipelines.demo import dagster_instance

    monkeypatch.setenv("BESTEX_DATA", "/nonexistent")  # no real books: small and the same
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the same trees in every worker, and fast
    monkeypatch.setenv("DAGSTER_HOME", "")  # dagster_instance() sets it; restored afterwards
    monkeypatch.delenv("BESTEX_FAULT", raising=False)
    inst = dagster_instance()
    # the inputs, once, in process: training set, real rows, and the gates' fixed pass
    inputs = (dg.AssetSelection.assets(_TRAINING_KEY, REAL_ROWS_KEY).upstream()
              .required_multi_asset_neighbors() | dg.AssetSelection.assets(GATES_KEY))
    prepared = dg.materialize(_assets(), instance=inst, resources=local_resources(),
                              selection=inputs, run_config={**_QUIET, "ops": _INPUTS})
    assert prepared.success
    yield inst
    inst.dispose()


def _execute(instance, monkeypatch, fault: str | None, *, parent: str | None = None,
             selection: list[dg.AssetKey] | None = None) -> dg.DagsterRun:
    if fault is None:
        monkeypatch.delenv("BESTEX_FAULT", raising=False)
    else:
        monkeypatch.setenv("BESTEX_FAULT", fault)  # read by the spawned workers
    options = None if parent is None else dg.ReexecutionOptions.from_failure(parent, instance)
    # rebuilt by name in each worker, the tests folder as its working directory
    job = dg.build_reconstructable_job(
        "test_reexecution", "train_and_register",
        reconstructor_working_directory=str(Path(__file__).resolve().parent))
    with dg.execute_job(job, instance=instance,
                        run_config=None if parent else {**_QUIET, "ops": _TRAINING},
                        reexecution_options=options, asset_selection=selection) as result:
        run_id = result.run_id
    monkeypatch.delenv("BESTEX_FAULT", raising=False)
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run


def _steps(instance, run_id: str, event: dg.DagsterEventType) -> list[str]:
    return sorted(e.step_key for e in instance.all_logs(run_id, of_type=event))


def _record() -> dict:
    data = json.loads((settings.lake() / "cost_model" / "synth.json").read_text())
    return {k: v for k, v in data.items() if k not in _RUN_FIELDS}


def _complete_params(study: optuna.Study) -> list[dict]:
    return [t.params for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


@pytest.mark.slow
def test_a_killed_worker_and_re_execution_from_failure_leave_one_result(instance, monkeypatch):
    storage = _storage(settings.optuna_storage())
    # Arrange: the reference, the training step uninterrupted
    ref = _execute(instance, monkeypatch, None, selection=[COST_MODEL_KEY, HOLDOUT_KEY])
    assert ref.is_success
    ref_record = _record()
    ref_holdout = pd.read_parquet(settings.lake() / "validation" / "holdout_predictions"
                                  / "synth.parquet")
    ref_study = optuna.load_study(study_name=f"cost_model_synth_{ref.run_id[:8]}",
                                  storage=storage)

    # Act: A killed inside trial 2; B (from A's failure) killed after the version was created;
    # C (from B's failure) ends it
    a = _execute(instance, monkeypatch, f"tuning.trial:{KILLED_TRIAL}")
    b = _execute(instance, monkeypatch, "registry.registered", parent=a.run_id)
    c = _execute(instance, monkeypatch, None, parent=b.run_id)

    # Assert: the runs — two failures by a killed worker, then success
    assert (a.is_failure, b.is_failure, c.is_success) == (True, True, True)
    assert (b.parent_run_id, b.root_run_id, c.parent_run_id, c.root_run_id) == (
        a.run_id, a.run_id, b.run_id, a.run_id)
    failed = dg.DagsterEventType.STEP_FAILURE
    assert _steps(instance, a.run_id, failed) == ["synth_cost_model"]
    assert _steps(instance, b.run_id, failed) == ["registry__cost_model_version"]
    for run in (a, b):  # not an error of the step: its worker died
        (event,) = instance.all_logs(run.run_id, of_type=failed)
        error = event.dagster_event.step_failure_data.error
        assert error.cls_name == "ChildProcessCrashException", error
    done = dg.DagsterEventType.STEP_SUCCESS
    assert _steps(instance, b.run_id, done) == ["synth_cost_model"]
    assert _steps(instance, c.run_id, done) == ["registry__cost_model_version"]  # training not redone

    # the registry: one version for the chain, with its alias and one audit row
    reg = default_registry()
    versions = reg.versions()
    assert list(versions["version"]) == ["1"], versions
    v = reg.version("1")
    assert v.tags[ROOT_RUN_TAG] == a.run_id
    assert v.aliases == (CHALLENGER,)
    assert v.gates_passed
    audit = reg.audit()
    assert list(zip(audit["action"], audit["version"], strict=True)) == [("register", "1")]
    # one MLflow training run for the chain (the run killed in tuning logged nothing)
    record = json.loads((settings.lake() / "cost_model" / "synth.json").read_text())
    assert v.run_id == record["mlflow_run_id"]
    runs = reg.client.search_runs(
        [r.experiment_id for r in reg.client.search_experiments()],
        filter_string=f"tags.dagster_root_run_id = '{a.run_id}'")
    assert [r.info.run_id for r in runs] == [v.run_id]

    # the study: resumed, not restarted; the killed trial kept as FAIL, nothing RUNNING
    study = optuna.load_study(study_name=f"cost_model_synth_{a.run_id[:8]}", storage=storage)
    states = {t.number: t.state.name for t in study.trials}
    assert states == {0: "COMPLETE", 1: "COMPLETE", 2: "FAIL", 3: "COMPLETE", 4: "COMPLETE"}
    assert "worker died" in study.trials[KILLED_TRIAL].user_attrs["fail_reason"]
    assert _complete_params(study) == _complete_params(ref_study)

    # the lake: one whole file per asset, no file left aside by a killed writer
    files = [p.relative_to(settings.lake()) for p in settings.lake().rglob("*") if p.is_file()]
    assert not [f for f in files if f.name.startswith(".") or f.suffix == ".tmp"], files
    stems = [f.with_suffix("") for f in files]
    assert len(stems) == len(set(stems)), sorted(map(str, files))
    assert json.loads((settings.lake() / "registry" / "cost_model_version.json").read_text())[
        "version"] == "1"

    # the results: those of the uninterrupted run
    assert _record() == ref_record
    pd.testing.assert_frame_equal(
        pd.read_parquet(settings.lake() / "validation" / "holdout_predictions"
                        / "synth.parquet"), ref_holdout)


def test_a_writer_killed_mid_write_leaves_the_old_lake_file(tmp_path):
    # Arrange: version 1 of a table in the lake
    lake = ParquetLakeIOManager(base_path=str(tmp_path / "lake"))
    key = dg.AssetKey(["t", "synth"])

    def write(frame: pd.DataFrame) -> None:
        lake.handle_output(dg.build_output_context(asset_key=key), frame)

    write(pd.DataFrame({"x": [1, 2, 3]}))
    # Act: a writer killed between writing version 2 aside and moving it in place
    code = textwrap.dedent(f"""
        import dagster as dg, pandas as pd
        from pipelines.resources import ParquetLakeIOManager
        lake = ParquetLakeIOManager(base_path={str(tmp_path / "lake")!r})
        lake.handle_output(dg.build_output_context(asset_key=dg.AssetKey(["t", "synth"])),
                           pd.DataFrame({{"x": [4, 5]}}))
    """)
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent, timeout=120,
                            env={**os.environ, "BESTEX_FAULT": "lake.replace"})
    # Assert: version 1 is whole; the killed writer's file aside is removed by the next write
    assert killed.returncode == -9, killed.stderr
    path = tmp_path / "lake" / "t" / "synth.parquet"
    assert list(pd.read_parquet(path)["x"]) == [1, 2, 3]
    assert len(list(path.parent.glob(".synth.parquet.*.tmp"))) == 1
    write(pd.DataFrame({"x": [6]}))
    assert list(pd.read_parquet(path)["x"]) == [6]
    assert sorted(p.name for p in path.parent.iterdir()) == ["synth.parquet"]
