"""Tuning: seeded and reproducible, a folds x completed-trials matrix, pruning, a shared journal."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.model_selection import KFold

from models.cost_models import CostModelParams
from models.tuning import tune

ROOT = Path(__file__).resolve().parent.parent
BASE = CostModelParams(nthread=1)


def _data(n: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"x{i}" for i in range(5)])
    y = 10 * np.sin(X["x0"]) + 5 * X["x1"] ** 2 + 3 * X["x2"] * X["x3"] + rng.normal(0, 2, n)
    return X, y.to_numpy()


def _space(trial: optuna.Trial) -> dict:
    return {"learning_rate": trial.suggest_float("learning_rate", 0.02, 0.5, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 5),
            "num_boost_round": trial.suggest_int("num_boost_round", 10, 40, step=10)}


def _bad_region_space(trial: optuna.Trial) -> dict:
    # learning rates below ~1e-2 barely move from the mean in 20 trees: losses far above median
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-5, 0.5, log=True),
            "num_boost_round": 20, "max_depth": 3}


def test_same_seed_same_study(tmp_path):
    # Arrange
    X, y = _data()
    kw = dict(n_trials=6, seed=3, search_space=_space, base_params=BASE)
    # Act: two journals, same seed
    a = tune(X, y, KFold(3), storage_path=tmp_path / "a" / "optuna.journal", **kw)
    b = tune(X, y, KFold(3), storage_path=tmp_path / "b" / "optuna.journal", **kw)
    # Assert
    assert [t.params for t in a.study.trials] == [t.params for t in b.study.trials]
    pd.testing.assert_frame_equal(a.loss_matrix, b.loss_matrix)
    assert a.best_params == b.best_params
    assert (tmp_path / "a" / "optuna.journal").stat().st_size > 0


def test_loss_matrix_is_folds_by_completed_trials():
    X, y = _data()
    res = tune(X, y, KFold(4), n_trials=8, seed=0, search_space=_space, base_params=BASE)
    done = [t.number for t in res.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert res.loss_matrix.shape == (4, len(done))
    assert list(res.loss_matrix.columns) == done
    assert np.allclose(res.loss_matrix.mean(axis=0), [res.study.trials[i].value for i in done])
    assert res.best_value == pytest.approx(res.loss_matrix.mean(axis=0).min())
    assert 0.0 <= res.pbo <= 1.0
    assert (res.timings["train_s"] > 0).all()
    assert (res.timings["total_s"] >= res.timings["train_s"]).all()


def test_pruning_stops_trials_in_a_bad_region():
    X, y = _data()
    res = tune(X, y, KFold(4), n_trials=20, seed=0, search_space=_bad_region_space,
               base_params=BASE)
    states = res.timings.set_index("number")["state"]
    pruned = states.index[states == "PRUNED"]
    assert len(pruned) >= 2, states.value_counts()
    assert not set(pruned) & set(res.loss_matrix.columns)
    assert (res.timings.set_index("number").loc[pruned, "n_folds"] < 4).all()


def test_no_pruning_completes_every_trial():
    X, y = _data(600)
    res = tune(X, y, KFold(3), n_trials=8, seed=0, search_space=_bad_region_space,
               base_params=BASE, pruning=False)
    assert res.loss_matrix.shape == (3, 8)


def test_resuming_a_study_adds_trials(tmp_path):
    X, y = _data(600)
    path = tmp_path / "optuna.journal"
    tune(X, y, KFold(3), n_trials=3, storage_path=path, search_space=_space, base_params=BASE)
    res = tune(X, y, KFold(3), n_trials=2, seed=1, storage_path=path, search_space=_space,
               base_params=BASE)
    assert len(res.study.trials) == 5


def test_two_processes_share_one_journal(tmp_path):
    # Arrange: two workers (different seeds) on one journal file, run at the same time
    path = tmp_path / "shared.journal"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from sklearn.model_selection import KFold
        from test_tuning import BASE, _data, _space
        from models.tuning import tune
        X, y = _data(600)
        tune(X, y, KFold(3), n_trials=3, seed=int(sys.argv[1]), storage_path={str(path)!r},
             search_space=_space, base_params=BASE)
    """)
    # Act
    procs = [subprocess.Popen([sys.executable, "-c", script, str(seed)]) for seed in (1, 2)]
    codes = [p.wait(timeout=120) for p in procs]
    # Assert
    assert codes == [0, 0]
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(path)))
    study = optuna.load_study(study_name="cost_model", storage=storage)
    assert len(study.trials) == 6
    assert sorted(t.number for t in study.trials) == list(range(6))
