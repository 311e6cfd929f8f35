"""Two Optuna workers on one study in the services' PostgreSQL (RDBStorage, via tuning._storage).

Each worker process runs N/2 trials of a cheap deterministic objective on the same study; the
study must then hold exactly N COMPLETE trials numbered 0..N-1 once each, from both workers,
none left RUNNING.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import optuna
import pytest

from bestex import services
from models.tuning import _storage

N_TRIALS = 20
STUDY = "two_workers"


@pytest.fixture(scope="module")
def pg_home():
    try:
        services.ensure_binaries()
    except services.ServicesError as exc:
        pytest.fail(str(exc))
    with services.ephemeral() as home:
        yield home


def _objective(trial: optuna.Trial) -> float:
    trial.set_user_attr("worker_pid", os.getpid())
    x = trial.suggest_float("x", -10.0, 10.0)
    time.sleep(0.02)  # long enough for the two workers to interleave
    return (x - 2.0) ** 2


def _worker(url: str, n_trials: int, start) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=STUDY, storage=_storage(url))
    start.wait(30)
    study.optimize(_objective, n_trials=n_trials)


def test_two_workers_share_one_study(pg_home):
    url = services.optuna_storage_url(pg_home)
    optuna.create_study(study_name=STUDY, storage=_storage(url), direction="minimize",
                        sampler=optuna.samplers.RandomSampler(seed=0))
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_worker, args=(url, N_TRIALS // 2, start)) for _ in range(2)]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]

    trials = optuna.load_study(study_name=STUDY, storage=_storage(url)).get_trials(deepcopy=False)
    states = [t.state for t in trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == N_TRIALS == len(trials)
    assert sorted(t.number for t in trials) == list(range(N_TRIALS)), "duplicate or lost trial"
    assert {t.user_attrs["worker_pid"] for t in trials} == {w.pid for w in workers}
    assert optuna.trial.TrialState.RUNNING not in states
    rows = services.status(pg_home)["databases"]["bestex_optuna"]["rows"]
    assert rows == {"studies": 1, "trials": N_TRIALS}


# ------------------------------------------------------------------ a worker killed mid-trial
FAULT_STUDY = "killed_worker"
FAULT_N = 8


def _slow_objective(trial: optuna.Trial) -> float:
    trial.set_user_attr("worker_pid", os.getpid())
    x = trial.suggest_float("x", -10.0, 10.0)
    if trial.number == 3:
        print("IN-TRIAL", flush=True)
        time.sleep(600)  # killed here
    return (x - 2.0) ** 2


def _doomed_worker(url: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=FAULT_STUDY,
                              storage=_storage(url, heartbeat_interval_s=1, grace_period_s=2))
    study.optimize(_slow_objective, n_trials=FAULT_N)


def test_a_killed_workers_trial_is_failed_and_a_rerun_completes_the_study(pg_home):
    import signal
    import subprocess
    import sys
    import textwrap

    url = services.optuna_storage_url(pg_home)
    storage = _storage(url, heartbeat_interval_s=1, grace_period_s=2)
    optuna.create_study(study_name=FAULT_STUDY, storage=storage,
                        sampler=optuna.samplers.RandomSampler(seed=1))
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(os.getcwd())!r}); sys.path.insert(0, 'tests')
        from test_optuna_workers import _doomed_worker
        _doomed_worker({url!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the worker is inside trial 3
    assert line.strip() == "IN-TRIAL"
    proc.send_signal(signal.SIGKILL)  # kill -9: no chance to record anything
    proc.wait(10)
    study = optuna.load_study(study_name=FAULT_STUDY, storage=storage)
    running = [t.number for t in study.get_trials(deepcopy=False)
               if t.state == optuna.trial.TrialState.RUNNING]
    assert running == [3]  # left behind by the dead worker
    time.sleep(3.5)  # past the grace period without a heartbeat
    # the re-run: a new worker fails the stale trial and completes the study
    study.optimize(_objective, callbacks=[optuna.study.MaxTrialsCallback(
        FAULT_N, states=(optuna.trial.TrialState.COMPLETE,))])
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == FAULT_N
    assert [t.number for t in trials if t.state == optuna.trial.TrialState.FAIL] == [3]
    assert optuna.trial.TrialState.RUNNING not in states
    assert sorted(t.number for t in trials) == list(range(len(trials))), "duplicate or lost"
    assert len(trials) == FAULT_N + 1  # the killed trial is kept, failed, not lost
