"""``BESTEX_PROFILE=services`` puts the Dagster instance, the MLflow tracking store and registry,
and the Optuna studies on the services' PostgreSQL, with nothing else changed (issue 17).

One throw-away server (``bestex.services.ephemeral``); under the profile: a Dagster run of a
real asset is recorded in ``bestex_dagster``, an MLflow run and a registered model in
``bestex_mlflow``, an Optuna study in ``bestex_optuna`` — counted in PostgreSQL itself
(``services.status`` row counts). The local profile is untouched: its URIs are still files
under ``BESTEX_HOME``.
"""

from __future__ import annotations

import dagster as dg
import optuna
import pytest

from bestex import services, settings


@pytest.fixture(scope="module")
def home():
    with services.ephemeral() as h:
        yield h


@pytest.fixture
def profile(home, monkeypatch):
    monkeypatch.setenv("BESTEX_HOME", str(home))
    monkeypatch.setenv("BESTEX_PROFILE", "services")
    return home


def test_a_dagster_run_is_recorded_in_postgres(profile):
    from pipelines.demo import dagster_instance

    instance = dagster_instance()
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"

    @dg.asset
    def one() -> int:
        return 1

    assert dg.materialize([one], instance=instance).success
    counts = services.status(profile)["databases"]["bestex_dagster"]["rows"]
    assert counts["runs"] >= 1
    assert counts["event_logs"] > 0
    instance.dispose()


def test_mlflow_runs_and_the_registry_are_in_postgres(profile):
    from pipelines.registry import default_registry

    reg = default_registry()
    assert reg.tracking_uri.startswith("postgresql+psycopg2://127.0.0.1:") is False  # user:pw@
    assert reg.tracking_uri.startswith("postgresql+psycopg2://")
    assert reg.tracking_uri.endswith("/bestex_mlflow")
    client = reg.client
    exp = client.create_experiment("profile_test",
                                   artifact_location=str(reg.artifact_root / "profile_test"))
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "mae", 1.5)
    client.create_registered_model("bestex-profile-test")
    rows = services.status(profile)["databases"]["bestex_mlflow"]["rows"]
    assert rows["runs"] >= 1
    assert rows["registered_models"] >= 1
    # artifacts stay in a folder under BESTEX_HOME
    assert str(reg.artifact_root).startswith(str(profile))


def test_optuna_studies_are_in_postgres(profile):
    from models.tuning import _storage

    url = settings.optuna_storage()
    assert isinstance(url, str)
    assert url.endswith("/bestex_optuna")
    study = optuna.create_study(study_name="profile_test", storage=_storage(url))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=3)
    assert services.status(profile)["databases"]["bestex_optuna"]["rows"]["trials"] >= 3


def test_the_local_profile_keeps_files_under_home(tmp_path, monkeypatch):
    from pipelines.registry import default_registry

    monkeypatch.setenv("BESTEX_HOME", str(tmp_path))
    monkeypatch.delenv("BESTEX_PROFILE", raising=False)
    assert default_registry().tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert settings.optuna_storage() == tmp_path / "optuna" / "journal.log"
    monkeypatch.setenv("BESTEX_PROFILE", "cluster")
    with pytest.raises(ValueError, match="BESTEX_PROFILE='cluster' is not a profile"):
        settings.profile()


def test_the_services_profile_without_services_says_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BESTEX_HOME", str(tmp_path))
    monkeypatch.setenv("BESTEX_PROFILE", "services")
    with pytest.raises(FileNotFoundError, match="bestex services up"):
        settings.optuna_storage()


def test_the_services_profile_runs_steps_in_processes_of_their_own(profile, monkeypatch):
    import os
    from pathlib import Path

    from pipelines.definitions import build_executor
    from pipelines.demo import dagster_instance

    monkeypatch.setenv("BESTEX_WORKERS", "2")
    assert build_executor().name == "bestex_multiprocess"
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import _mp_graph

    instance = dagster_instance()
    with dg.execute_job(dg.reconstructable(_mp_graph.get_job), instance=instance) as result:
        assert result.success

    def pid(key: str) -> int:
        ev = instance.get_latest_materialization_event(dg.AssetKey(key))
        return int(ev.asset_materialization.metadata["pid"].value)

    # every step ran in a process of its own, none in this one
    pids = {pid("source_pid"), pid("left"), pid("right")}
    assert len(pids) == 3
    assert os.getpid() not in pids
    # the run and its events are in PostgreSQL, where any worker can see them
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    assert run.is_success
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert "multiprocess" in " ".join(
        e.message for e in instance.all_logs(result.run_id) if e.message).lower()
    instance.dispose()


def test_the_local_profile_runs_in_process(monkeypatch):
    from pipelines.definitions import build_executor

    monkeypatch.delenv("BESTEX_PROFILE", raising=False)
    assert build_executor() is dg.in_process_executor


def test_a_postgres_restart_between_trials_is_survived(profile):
    """The server restarted under a live study and a live MLflow client: both go on (their
    connection pools check a connection before use) with nothing lost."""
    from models.tuning import _storage
    from pipelines.registry import default_registry

    storage = _storage(settings.optuna_storage())
    study = optuna.create_study(study_name="restart_test", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    client = default_registry().client
    exp = client.create_experiment("restart_test")
    before = services.status(profile)["pid"]
    services.down(profile)
    services.up(profile)
    assert services.status(profile)["pid"] != before  # a new server process
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    done = [t for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.number for t in done) == list(range(6))
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "after_restart", 1.0)
    assert client.get_run(run.info.run_id).data.metrics["after_restart"] == 1.0
