"""Optuna tuning of the mean cost model on a purged cross-validation, with the trials x folds matrix.

:func:`tune` minimizes the mean over folds of the mean model's out-of-fold loss (RMSE or MAE, bps).
The folds are drawn once and each fold's ``xgboost.DMatrix`` pair is built once and reused by every
trial, so a trial costs little more than its ``xgboost.train`` calls (the overhead is measured per
trial and reported). The sampler is TPE with a seed; the pruner is a median pruner on the running
mean of the fold losses. Trials are stored in an Optuna journal file when ``storage_path`` is given,
so several worker processes can share one study (the asset layer puts it under ``BESTEX_HOME``).

Every completed trial keeps its per-fold losses (``user_attrs["fold_losses"]``), which gives the
trials x folds matrix for the probability of backtest overfitting of the selection (CSCV, Bailey et
al. 2017).

A study is resumable: a call that finds trials of its own seed in the study (a run re-executed
after its worker died) fails the ones its dead worker left RUNNING, runs only the trials still
missing, and samples each of them as the uninterrupted run would have (see :func:`tune`, Notes).
"""

from __future__ import annotations

import base64
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb
from numpy.typing import ArrayLike, NDArray

from models.cost_models import (
    CostModelParams,
    Loss,
    Transform,
    _fold_frames,
    _matrix,
    _vector,
    fold_loss,
)
from models.faults import fault_point
from validation.overfitting import PBOResult, pbo

__all__ = [
    "SearchSpace", "TuningResult", "build_folds", "default_search_space", "loss_matrix", "tune",
]

SearchSpace = Callable[[optuna.Trial], Mapping[str, Any]]


def default_search_space(trial: optuna.Trial) -> dict[str, Any]:
    """The default space: learning rate, depth, leaf weight, subsampling, L2 and trees."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 10),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 100.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 100.0, log=True),
        "num_boost_round": trial.suggest_int("num_boost_round", 100, 600, step=50),
    }


@dataclass(frozen=True)
class TuningResult:
    """What :func:`tune` found and measured.

    Attributes
    ----------
    best_params : CostModelParams
        ``base_params`` updated with the best completed trial's parameters.
    best_value : float
        Its mean fold loss (bps).
    study : optuna.Study
        The study (all trials, including other processes' when the storage is shared).
    loss_matrix : pandas.DataFrame
        Rows = folds (index ``fold``, in the order ``cv.split`` yields them: time order for K-fold
        on time-sorted rows), columns = the numbers of the **completed** trials, values = the
        mean model's loss on that fold (bps, lower is better; negate it for a CSCV that expects
        performance). Pruned and failed trials have no full row of folds and are left out.
    timings : pandas.DataFrame
        One row per trial of this call and earlier ones in the study: ``number, state, n_folds``
        (folds run), ``total_s`` (Optuna's start to completion: sampling, storage, training,
        prediction, pruning checks), ``train_s`` (inside ``xgboost.train``) and
        ``overhead_pct = 100 (total_s / train_s - 1)``.
    overhead_pct : float
        The same ratio over all completed trials together.
    prep_s : float
        Seconds spent drawing the folds and building the DMatrix pairs (once per call).
    wall_s : float
        Seconds of the whole call.
    pbo : float or None
        Probability of backtest overfitting of the selection of the best trial:
        ``validation.overfitting.pbo(loss_matrix, n_blocks=None, higher_is_better=False)``, one
        CSCV block per fold (an odd number of folds drops the first). None with fewer than two
        completed trials or folds.
    pbo_result : validation.overfitting.PBOResult or None
        The whole CSCV result (logits, ranks, degradation).
    """

    best_params: CostModelParams
    best_value: float
    study: optuna.Study
    loss_matrix: pd.DataFrame
    timings: pd.DataFrame
    overhead_pct: float
    prep_s: float
    wall_s: float
    pbo: float | None
    pbo_result: PBOResult | None


@dataclass(frozen=True)
class _Fold:
    dtrain: xgb.DMatrix
    dtest: xgb.DMatrix
    y_test: NDArray[np.float64]
    w_test: NDArray[np.float64] | None = None


def build_folds(X: pd.DataFrame, y: ArrayLike, cv: Any, *,
                fit_parametric: Callable[[NDArray[np.intp]], Transform] | None = None,
                sample_weight: ArrayLike | None = None) -> list[_Fold]:
    """Draw every fold of ``cv`` once and build its train and test DMatrix (reused by all trials).

    ``fit_parametric`` is the calibration-as-feature hook of
    :func:`models.cost_models.cross_validate_cost_model`, fitted on each training fold only.
    """
    yv = _vector(y, len(X), "y")
    w = None if sample_weight is None else _vector(sample_weight, len(X), "sample_weight")
    folds = []
    for train, test in cv.split(X):
        train, test = np.asarray(train), np.asarray(test)
        xtr, xte = _fold_frames(X, train, test, fit_parametric)
        names = list(xtr.columns)
        dtrain = xgb.DMatrix(_matrix(xtr), yv[train], weight=None if w is None else w[train],
                             feature_names=names)
        folds.append(_Fold(dtrain, xgb.DMatrix(_matrix(xte, names), feature_names=names),
                           yv[test], None if w is None else w[test]))
    if not folds:
        raise ValueError(f"cv={cv!r} yielded no folds; check its parameters against len(X)={len(X)}")
    return folds


RDB_URL_PREFIXES = ("postgresql+", "sqlite:")
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 30


def _storage(storage_path: str | Path | None, *, heartbeat_interval_s: int = HEARTBEAT_INTERVAL_S,
             grace_period_s: int = GRACE_PERIOD_S) -> optuna.storages.BaseStorage | None:
    """No storage (in memory), a journal file, or a SQLAlchemy URL (``postgresql+…``/``sqlite:``).

    A URL gives an :class:`optuna.storages.RDBStorage` with heartbeats: a trial whose worker
    died (no heartbeat for ``grace_period_s``) is marked FAIL, not left RUNNING, by the next
    ``optimize`` on the study.
    """
    if storage_path is None:
        return None
    if isinstance(storage_path, str) and storage_path.startswith(RDB_URL_PREFIXES):
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna; wanted here
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(storage_path,
                                              heartbeat_interval=heartbeat_interval_s,
                                              grace_period=grace_period_s,
                                              engine_kwargs={"pool_pre_ping": True})
    path = Path(storage_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(str(path))
    return optuna.storages.JournalStorage(backend)


WORKER_ATTR = "worker_seed"
"""User attribute of every trial: the ``seed`` of the :func:`tune` call (the worker) that ran it."""
_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
_ENDED = (*_FINISHED, optuna.trial.TrialState.FAIL)


def _own_trials(study: optuna.Study, seed: int,
                states: tuple[optuna.trial.TrialState, ...] = _FINISHED
                ) -> list[optuna.trial.FrozenTrial]:
    """The trials of ``study`` in ``states`` run by the worker of ``seed``."""
    return [t for t in study.get_trials(deepcopy=False, states=states)
            if t.user_attrs.get(WORKER_ATTR) == seed]


_STATE_ATTR = "bestex:sampler_state"


def _rng_state(rng: np.random.RandomState) -> list[Any]:
    _, key, pos, has_gauss, gauss = rng.get_state(legacy=True)
    return [base64.b64encode(np.asarray(key, "<u4").tobytes()).decode(), int(pos),
            int(has_gauss), float(gauss)]


def _set_rng_state(rng: np.random.RandomState, state: list[Any]) -> None:
    key = np.frombuffer(base64.b64decode(state[0]), "<u4").astype(np.uint32)
    rng.set_state(("MT19937", key, int(state[1]), int(state[2]), float(state[3])))


class _ResumableTPE(optuna.samplers.TPESampler):
    """``TPESampler(seed=seed)`` that a worker resuming a study in a new process continues where
    the dead worker left off.

    Every trial is tagged with its worker's seed (``user_attrs["worker_seed"]``) when it starts;
    when it ends, the sampler's random state is stored on it (system attribute
    ``bestex:sampler_state``: the state that drew nothing of the next trial yet). Before its
    first trial, a sampler whose seed already has finished trials in the study restores the
    state of the last of them, so it draws for the next trial what the uninterrupted worker drew.
    The state lives in TPE's two generators (its own and its startup random sampler's, Optuna 5).
    """

    def __init__(self, seed: int, storage: optuna.storages.BaseStorage | None) -> None:
        super().__init__(seed=seed)
        self._seed = seed
        self._storage = storage
        self._resumed = False

    def _rngs(self) -> tuple[np.random.RandomState, np.random.RandomState]:
        return self._rng.rng, self._random_sampler._rng.rng

    def _trial_id(self, study: optuna.Study, number: int) -> int:
        assert self._storage is not None
        study_id = self._storage.get_study_id_from_name(study.study_name)
        return self._storage.get_trial_id_from_study_id_trial_number(study_id, number)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self._storage is not None:
            if not self._resumed:
                ended = [t for t in _own_trials(study, self._seed, states=_ENDED)
                         if _STATE_ATTR in t.system_attrs]
                if ended:
                    last = max(ended, key=lambda t: t.number).system_attrs[_STATE_ATTR]
                    for rng, state in zip(self._rngs(), last, strict=True):
                        _set_rng_state(rng, state)
            self._storage.set_trial_user_attr(self._trial_id(study, trial.number), WORKER_ATTR,
                                              self._seed)
        self._resumed = True
        super().before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                    state: optuna.trial.TrialState, values: Any) -> None:
        super().after_trial(study, trial, state, values)
        if self._storage is not None:  # the trial is still RUNNING here: it can take the attr
            self._storage.set_trial_system_attr(self._trial_id(study, trial.number), _STATE_ATTR,
                                                [_rng_state(rng) for rng in self._rngs()])


def _fail_dead_workers_trials(study: optuna.Study, storage: optuna.storages.BaseStorage | None,
                              seed: int) -> list[int]:
    """Mark FAIL the trials of ``seed`` left RUNNING in ``study``; return their numbers.

    Only a dead worker of the same seed can have left them (one live worker per seed and study:
    see :func:`tune`). A journal file has no heartbeat, so nothing else would ever end them; on
    an RDB storage Optuna also fails them after the heartbeat's grace period.
    """
    if storage is None:
        return []
    study_id = storage.get_study_id_from_name(study.study_name)
    failed = []
    for t in _own_trials(study, seed, states=(optuna.trial.TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(trial_id, "fail_reason",
                                    "its worker died; failed by the run that resumed the study")
        storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL)
        failed.append(t.number)
    return failed


def loss_matrix(study: optuna.Study) -> pd.DataFrame:
    """Folds x completed trials matrix of fold losses (see :class:`TuningResult`)."""
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
            and "fold_losses" in t.user_attrs]
    data = {t.number: t.user_attrs["fold_losses"] for t in done}
    n = max((len(v) for v in data.values()), default=0)
    m = pd.DataFrame(data, index=pd.RangeIndex(n, name="fold"), dtype=np.float64)
    m.columns.name = "trial"
    return m


def _timings(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        if t.datetime_start is None or t.datetime_complete is None:
            continue
        total = (t.datetime_complete - t.datetime_start).total_seconds()
        train = float(t.user_attrs.get("train_s", np.nan))
        rows.append({"number": t.number, "state": t.state.name,
                     "n_folds": len(t.user_attrs.get("fold_losses", ())), "total_s": total,
                     "train_s": train, "overhead_pct": 100.0 * (total / train - 1.0)})
    return pd.DataFrame(rows, columns=["number", "state", "n_folds", "total_s", "train_s",
                                       "overhead_pct"])


def _pbo(matrix: pd.DataFrame) -> PBOResult | None:
    """CSCV over the folds (one block per fold; needs >= 2 completed trials and >= 2 folds)."""
    if matrix.shape[1] < 2 or matrix.shape[0] < 2:
        return None
    return pbo(matrix.to_numpy(), n_blocks=None, higher_is_better=False)


def tune(X: pd.DataFrame, y: ArrayLike, cv: Any, *, n_trials: int = 30, seed: int = 0,
         storage_path: str | Path | None = None, study_name: str = "cost_model",
         timeout: float | None = None, pruning: bool = True, loss: Loss = "rmse",
         base_params: CostModelParams | None = None, search_space: SearchSpace | None = None,
         fit_parametric: Callable[[NDArray[np.intp]], Transform] | None = None,
         sample_weight: ArrayLike | None = None) -> TuningResult:
    """Tune the mean cost model's hyperparameters on the folds of ``cv`` with Optuna.

    Parameters
    ----------
    X, y : pandas.DataFrame, array_like of float
        Decision-time features and realized cost ``is_bps``.
    cv : object with ``split(X)``
        Any sklearn-style splitter (e.g. ``validation.splitters.PurgedKFold``); drawn once.
    n_trials : int, default=30
        Finished (complete or pruned) trials of this ``seed`` in the study when the call returns:
        a call that finds some already (a resumed run) runs only the rest. Other seeds' trials
        (other workers on a shared study) add to them.
    seed : int, default=0
        Seed of the TPE sampler, and the identity of the worker in the study. Workers sharing
        one study must each pass a different seed, else their trials coincide and each counts
        the other's towards its ``n_trials``.
    storage_path : str or Path, optional
        Optuna journal file (created with its folders); several processes may open the same file
        and add to the same study. None keeps the study in memory.
    study_name : str, default="cost_model"
        Name of the study in the storage (an existing study of that name is resumed).
    timeout : float, optional
        Stop starting new trials after this many seconds.
    pruning : bool, default=True
        Median pruner (after 5 trials, from the second fold on): after fold ``k`` the trial
        reports the mean loss of folds ``0..k`` and is pruned when it is worse than the median of
        earlier trials at the same step.
    loss : {"rmse", "mae"}, default="rmse"
        Fold loss of the mean model.
    base_params : CostModelParams, default=CostModelParams()
        Parameters that are not searched (objective, ``max_bin``, ``nthread``, seed...).
    search_space : callable, default=default_search_space
        ``search_space(trial) -> mapping`` of :class:`CostModelParams` fields to values.
    fit_parametric : callable, optional
        Calibration-as-feature hook, fitted on each training fold (see :func:`build_folds`).
    sample_weight : array_like of float, optional
        Training weights; the fold losses are weighted by them too.

    Returns
    -------
    TuningResult

    Raises
    ------
    ValueError
        ``cv`` yields no folds, or no trial completed.

    Notes
    -----
    Resuming (a stored study). Every trial records its worker's seed (``user_attrs
    ["worker_seed"]``) and, when it ends, the sampler's random state. A call on a study that
    holds trials of its seed first marks FAIL the ones left RUNNING (their worker was killed:
    ``user_attrs["fail_reason"]``), then runs ``n_trials`` minus the seed's finished trials,
    starting from the random state the last of them left. A run killed after k trials and
    resumed therefore samples, prunes and selects exactly as the uninterrupted run (one worker
    per study); the killed trial stays in the study as FAIL.
    """
    started = time.perf_counter()
    base = base_params or CostModelParams()
    space = search_space or default_search_space
    fold_loss(np.zeros(1), np.zeros(1), loss)  # rejects an unknown loss before any work
    folds = build_folds(X, y, cv, fit_parametric=fit_parametric, sample_weight=sample_weight)
    prep_s = time.perf_counter() - started

    def objective(trial: optuna.Trial) -> float:
        sampled = dict(space(trial))
        trial.set_user_attr("params", sampled)
        params = CostModelParams(**{**base.model_dump(), **sampled})
        fault_point("tuning.trial", at=trial.number)  # the re-execution drill (models.faults)
        booster_params = params.booster_params()
        losses: list[float] = []
        train_s = 0.0
        for k, f in enumerate(folds):
            t0 = time.perf_counter()
            booster = xgb.train(booster_params, f.dtrain, params.num_boost_round)
            train_s += time.perf_counter() - t0
            losses.append(fold_loss(f.y_test, booster.predict(f.dtest), loss, f.w_test))
            if pruning and k < len(folds) - 1:
                trial.report(float(np.mean(losses)), k)
                if trial.should_prune():
                    trial.set_user_attr("train_s", train_s)
                    trial.set_user_attr("fold_losses", losses)
                    raise optuna.TrialPruned(f"pruned after fold {k}")
        trial.set_user_attr("train_s", train_s)
        trial.set_user_attr("fold_losses", losses)
        return float(np.mean(losses))

    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1) if pruning
        else optuna.pruners.NopPruner())
    storage = _storage(storage_path)
    study = optuna.create_study(
        study_name=study_name, storage=storage, direction="minimize",
        sampler=_ResumableTPE(seed, storage), pruner=pruner, load_if_exists=True)
    _fail_dead_workers_trials(study, storage, seed)
    missing = n_trials - len(_own_trials(study, seed))
    if missing > 0:
        study.optimize(objective, n_trials=missing, timeout=timeout)
    matrix = loss_matrix(study)
    if matrix.shape[1] == 0:
        raise ValueError(f"no trial of study {study_name!r} completed (all pruned or failed); "
                         "run more trials or set pruning=False")
    best = study.best_trial
    cscv = _pbo(matrix)
    timings = _timings(study)
    done = timings[timings["state"] == "COMPLETE"]
    return TuningResult(
        best_params=CostModelParams(**{**base.model_dump(), **best.user_attrs["params"]}),
        best_value=float(best.value), study=study, loss_matrix=matrix, timings=timings,
        overhead_pct=100.0 * (done["total_s"].sum() / done["train_s"].sum() - 1.0),
        prep_s=prep_s, wall_s=time.perf_counter() - started,
        pbo=None if cscv is None else cscv.pbo, pbo_result=cscv)
