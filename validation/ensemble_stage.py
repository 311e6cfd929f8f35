"""Validation stage: does the ensemble beat its single models on the holdout and walk-forward?

Four models are scored on the same rows (issue 16, item 3, "adapting between retrains"):

* ``physics``: the row's calibrated parametric law (:func:`models.ensemble.physics_bps`; a row
  without one gets the training window's mean label);
* ``learned``: the learned mean model, fitted by ``fit`` on the training window;
* ``online``: ``learned`` plus the online residual correction
  (:class:`models.online.OnlineCorrector`), started empty at the window's first decision and fed
  the window's own labels as they become known (``t1``): the correction never sees a label
  before its knowledge time;
* ``ensemble``: :class:`models.ensemble.CostEnsemble` of the three, weights fitted on the last
  ``validation_fraction`` of the training window (with a learned model fitted on the rows before
  it, purged and embargoed like the holdout, and a corrector run through the slice), then
  frozen and applied with the learned model refitted on the whole window.

:func:`compare` scores them on the holdout (:func:`models.cost_training.holdout_split`) and on
the walk-forward windows (:func:`validation.walk_forward_stage.walk_forward`, the ensemble as
the model and the others as baselines, one fit shared by the four per window), and says whether
the ensemble ``beats_singles``: the lowest holdout error and the lowest mean walk-forward error
(truth MAE where the synthetic truth is known, else MAE against the realized cost). Only then
should it be registered. Pure: callables in, tables out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.cost_models import CostModelParams, evaluate, inverse_noise_weights
from models.cost_training import TrainingConfig, holdout_split, mean_fitter, model_features
from models.ensemble import CostEnsemble, EnsembleConfig, physics_bps
from models.online import OnlineConfig, OnlineCorrector
from validation.walk_forward_stage import Scheme, walk_forward

__all__ = ["MODELS", "EnsembleComparison", "Learner", "compare", "mean_learner", "window_predictions"]

Learner = Callable[[pd.DataFrame], Callable[[pd.DataFrame], np.ndarray]]
"""``fit(train) -> predict``: fits the learned mean model on ``train`` and returns its
``predict(frame) -> bps``."""

MODELS = ("physics", "learned", "online", "ensemble")

FAST_PARAMS = CostModelParams(num_boost_round=100, learning_rate=0.0665, max_depth=4,
                              min_child_weight=3.4, subsample=0.89, colsample_bytree=0.73,
                              reg_lambda=0.7)
"""Fixed parameters for a fast stage (no tuning): the demo champion's tuned values, rounded."""


def mean_learner(params: CostModelParams | None = None, features: Sequence[str] | None = None,
                 noise_floor_bps: float = 5.0) -> Learner:
    """The learned mean model as :func:`models.cost_training.fit_mean_predictor` fits it (label
    ``is_bps``, inverse-noise weights), with fixed ``params`` (default :data:`FAST_PARAMS`) on
    ``features`` (default: :func:`models.cost_training.model_features` of the training rows)."""
    p = params or FAST_PARAMS

    def fit(train: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
        feats = list(features) if features is not None else model_features(train)
        return mean_fitter(p, feats, noise_floor_bps=noise_floor_bps)(train)
    return fit


def _validation_cut(train: pd.DataFrame, fraction: float, embargo: pd.Timedelta
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last ``fraction`` of ``train`` (the validation slice) and the rows before it whose
    label ended an embargo before the slice's first decision."""
    cut = int(len(train) * (1 - fraction))
    if cut < 2 or len(train) - cut < 2:
        raise ValueError(f"ensemble stage: {len(train)} training orders leave no inner fit or "
                         f"no validation slice at validation_fraction={fraction}")
    val = train.iloc[cut:]
    inner = train.iloc[:cut]
    inner = inner[inner["t1"] + embargo < val["decision_ts"].iloc[0]]
    if len(inner) < 2:
        raise ValueError("ensemble stage: fewer than 2 inner training orders after the embargo; "
                         "lower validation_fraction or the embargo")
    return inner, val


def window_predictions(train: pd.DataFrame, test: pd.DataFrame, fit: Learner, *,
                       online: OnlineConfig | None = None,
                       ensemble: EnsembleConfig | None = None,
                       validation_fraction: float = 0.2,
                       embargo: pd.Timedelta | None = None,
                       noise_floor_bps: float = 5.0) -> tuple[dict[str, np.ndarray],
                                                              CostEnsemble]:
    """The four models' predictions for ``test`` after training on ``train`` (both sorted by
    ``decision_ts``; every training label known before the test), and the fitted ensemble."""
    ocfg = online or OnlineConfig()
    embargo = pd.Timedelta(0) if embargo is None else embargo
    fill = float(np.nanmean(train["is_bps"]))
    inner, val = _validation_cut(train, validation_fraction, embargo)
    inner_model = fit(inner)
    val_preds = {"physics": physics_bps(val, fill), "learned": inner_model(val),
                 "online": OnlineCorrector(inner_model, ocfg).observe(val).predict(val)}
    ens = CostEnsemble(ensemble).fit(
        val_preds, val["is_bps"].to_numpy(np.float64),
        weight=inverse_noise_weights(val["timing_risk_bps"], noise_floor_bps), frame=val)
    model = fit(train)
    preds = {"physics": physics_bps(test, fill), "learned": model(test),
             "online": OnlineCorrector(model, ocfg).observe(test).predict(test)}
    preds["ensemble"] = ens.predict(preds, frame=test)
    return preds, ens


@dataclass(frozen=True)
class EnsembleComparison:
    """What :func:`compare` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (evaluation, model): ``evaluation`` (``holdout``, ``walk_forward``: the
        mean over every window, ``wf_expanding``, ``wf_rolling``), ``model``, ``n``, ``mae``,
        ``rmse``, ``bias`` (mean realized minus predicted) and ``truth_mae`` when known.
    windows : pandas.DataFrame
        :func:`validation.walk_forward_stage.walk_forward`'s table (``model_*`` is the ensemble).
    weights : pandas.DataFrame
        The frozen ensemble weights: holdout first, then each walk-forward window.
    metric : str
        The error that decides (``truth_mae`` or ``mae``).
    beats_singles : bool
        The ensemble has the lowest holdout error and the lowest mean walk-forward error.
    """

    table: pd.DataFrame
    windows: pd.DataFrame
    weights: pd.DataFrame
    metric: str
    beats_singles: bool

    def markdown(self) -> str:
        """The table as markdown (2 decimals)."""
        t = self.table.copy()
        cols = list(t.columns)
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for _, r in t.iterrows():
            lines.append("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v)
                                           for v in r) + " |")
        return "\n".join(lines)


def _holdout_rows(hold: pd.DataFrame, preds: dict[str, np.ndarray], has_truth: bool
                  ) -> list[dict[str, Any]]:
    y = hold["is_bps"].to_numpy(np.float64)
    tv = hold["truth_bps"].to_numpy(np.float64) if has_truth else None
    rows = []
    for name in MODELS:
        m = evaluate(y, preds[name], truth=tv)
        row = {"evaluation": "holdout", "model": name, "n": float(len(y)), "mae": m["mae"],
               "rmse": m["rmse"], "bias": float(np.mean(y - preds[name]))}
        if has_truth:
            row["truth_mae"] = m["truth_mae"]
        rows.append(row)
    return rows


def _window_rows(windows: pd.DataFrame, has_truth: bool) -> list[dict[str, Any]]:
    rows = []
    keys = ["mae", "rmse", "bias", *(["truth_mae"] if has_truth else [])]
    parts = [("walk_forward", windows)]
    parts += [(f"wf_{s}", g) for s, g in windows.groupby("scheme", sort=False)]
    for evaluation, g in parts:
        for name in MODELS:
            col = "model" if name == "ensemble" else name
            row = {"evaluation": evaluation, "model": name, "n": float(g["n_test"].sum())}
            row.update({k: float(g[f"{col}_{k}"].mean()) for k in keys})
            rows.append(row)
    return rows


def compare(ds: pd.DataFrame, *, fit: Learner | None = None,
            training: TrainingConfig | None = None, online: OnlineConfig | None = None,
            ensemble: EnsembleConfig | None = None, validation_fraction: float = 0.2,
            n_windows: int = 6, schemes: Sequence[Scheme] = ("expanding", "rolling"),
            progress: Callable[[str], None] | None = None) -> EnsembleComparison:
    """Score physics, learned, learned + online and the ensemble on the holdout and walk-forward.

    Parameters
    ----------
    ds : pandas.DataFrame
        The training set: one row per order sorted by ``decision_ts``, with ``t1``, ``is_bps``,
        ``timing_risk_bps``, the model features, ``athl_pred_bps`` / ``sqrt_pred_bps`` and, for
        synthetic data, ``truth_bps``.
    fit : callable, optional
        ``fit(train) -> predict`` (default :func:`mean_learner` with :data:`FAST_PARAMS`).
    training : TrainingConfig, optional
        Its ``holdout_fraction``, ``holdout_embargo_hours`` (also the walk-forward and
        validation-slice embargo) and ``noise_floor_bps`` are used.
    online, ensemble : OnlineConfig, EnsembleConfig, optional
    validation_fraction : float, default=0.2
        The share of each training window that fits the ensemble weights.
    n_windows, schemes
        As :func:`validation.walk_forward_stage.walk_forward`.
    progress : callable, optional

    Returns
    -------
    EnsembleComparison
    """
    cfg = training or TrainingConfig()
    learner = fit or mean_learner(noise_floor_bps=cfg.noise_floor_bps)
    embargo = pd.Timedelta(hours=cfg.holdout_embargo_hours)
    has_truth = "truth_bps" in ds.columns
    say = progress or (lambda _m: None)
    kw: dict[str, Any] = {"online": online, "ensemble": ensemble, "embargo": embargo,
                          "validation_fraction": validation_fraction,
                          "noise_floor_bps": cfg.noise_floor_bps}

    split = holdout_split(ds, cfg)
    preds, ens = window_predictions(split.train, split.holdout, learner, **kw)
    weights = [ens.weights_table().assign(evaluation="holdout", scheme="", window=-1)]
    rows = _holdout_rows(split.holdout, preds, has_truth)
    say(f"holdout: {len(split.train)} train, {len(split.holdout)} test, weights "
        f"{ens.weights_['pooled']}")

    cache: dict[str, Any] = {}

    def fit_ensemble(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
        p, e = window_predictions(train, test, learner, **kw)
        cache.update(train=train, test=test, preds=p)
        weights.append(e.weights_table().assign(evaluation="walk_forward", scheme="",
                                                window=len(weights) - 1))
        return p["ensemble"]

    def single(name: str) -> Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]:
        def fn(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
            if cache.get("train") is not train or cache.get("test") is not test:
                raise RuntimeError("ensemble stage: a baseline was called before the ensemble "
                                   "of the same window")
            return cache["preds"][name]
        return fn

    windows = walk_forward(ds, fit_ensemble, baselines={n: single(n) for n in MODELS[:3]},
                           n_windows=n_windows, schemes=schemes, embargo=embargo,
                           truth="truth_bps" if has_truth else None, progress=say)
    rows += _window_rows(windows, has_truth)
    table = pd.DataFrame(rows)
    metric = "truth_mae" if has_truth else "mae"
    beats = True
    for evaluation in ("holdout", "walk_forward"):
        t = table[table["evaluation"] == evaluation].set_index("model")[metric]
        beats &= bool(t["ensemble"] < t.drop("ensemble").min())
    w = pd.concat(weights, ignore_index=True)
    wf = w["evaluation"] == "walk_forward"
    w.loc[wf, "scheme"] = np.repeat(windows["scheme"].to_numpy(),
                                    w[wf].groupby("window").size().to_numpy())
    w.loc[wf, "window"] = np.repeat(windows["window"].to_numpy(),
                                    w[wf].groupby("window").size().to_numpy())
    return EnsembleComparison(table=table, windows=windows, weights=w, metric=metric,
                              beats_singles=beats)
