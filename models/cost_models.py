"""Pre-trade cost models: XGBoost mean and quantile models of ``is_bps``, conformal intervals, baselines.

The cost model predicts, before an order is sent, what it will cost in bps of the arrival price
(positive = cost). One row of ``X`` is one parent order at its decision time; ``X`` is a
``pandas.DataFrame`` of numeric features and the models keep its column names (``predict`` selects
the same columns by name, in the training order).

* :class:`MeanCostModel`: the expected cost, ``reg:squarederror`` or ``reg:pseudohubererror``.
* :class:`QuantileCostModel`: p10, p50 and p90 in one booster (``reg:quantileerror`` with
  ``quantile_alpha``), constrained to be non-decreasing in the size and participation features.
* :class:`ConformalInterval`: conformalized quantile regression (Romano, Patterson & Candès 2019)
  widens the p10-p90 band so that the 80% interval covers 80% of new orders.
* :class:`SquareRootBaseline`, :class:`ATHLBaseline`: :func:`models.impact_calibration.calibrate`
  fitted on the same training fold, plus the observable half spread.
* :func:`evaluate` and :func:`cross_validate_cost_model` score them fold by fold.

Hyperparameters live once, in :class:`CostModelParams`.

Layout: the XGBoost models and their inputs are in ``models._cost_models_xgb``, the baselines in
``models._cost_models_baselines``, the scores in ``models._cost_models_metrics``; this module
holds the cross-validation and re-exports every public name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from models._cost_models_baselines import ATHLBaseline, SquareRootBaseline
from models._cost_models_metrics import (
    Loss,
    evaluate,
    fold_loss,
    inverse_noise_weights,
    noise_sd_bps,
)
from models._cost_models_xgb import (
    MONOTONE_DEFAULT,
    QUANTILES,
    ConformalInterval,
    CostModelParams,
    Floats,
    MeanCostModel,
    QuantileCostModel,
    _matrix,  # noqa: F401 - input conversion shared with models.tuning and models.cost_bundle
    _vector,
)

__all__ = [
    "MONOTONE_DEFAULT",
    "QUANTILES",
    "ATHLBaseline",
    "CVResult",
    "ConformalInterval",
    "CostModelParams",
    "MeanCostModel",
    "QuantileCostModel",
    "SquareRootBaseline",
    "cross_validate_cost_model",
    "evaluate",
    "fold_loss",
    "inverse_noise_weights",
    "noise_sd_bps",
]

Transform = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class CVResult:
    """What :func:`cross_validate_cost_model` measured.

    Attributes
    ----------
    folds : pandas.DataFrame
        One row per fold: ``fold, n_train, n_test`` and the :func:`evaluate` metrics of its test
        rows (``coverage_80`` after conformal calibration, ``raw_coverage_80`` before).
    oof : pandas.DataFrame
        Indexed like ``X``: ``fold`` (-1 where a row was never tested), ``mean``, ``p10``, ``p50``,
        ``p90`` (raw quantiles), ``lo80``, ``hi80`` (calibrated band) and one column per baseline.
    fold_losses : numpy.ndarray
        ``loss`` of the mean model on each fold's test rows.
    metrics : dict of str to float
        :func:`evaluate` over every out-of-fold row together.
    loss : {"rmse", "mae"}
        The loss in ``fold_losses``.
    """

    folds: pd.DataFrame
    oof: pd.DataFrame
    fold_losses: Floats
    metrics: dict[str, float]
    loss: Loss


def _fold_frames(X: pd.DataFrame, train: NDArray[np.intp], test: NDArray[np.intp],
                 fit_parametric: Callable[[NDArray[np.intp]], Transform] | None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fold's train and test features, parametric features fitted on ``train`` only."""
    xtr, xte = X.iloc[train], X.iloc[test]
    if fit_parametric is None:
        return xtr, xte
    transform = fit_parametric(train)
    return transform(xtr), transform(xte)


_BASELINES = {"sqrt": SquareRootBaseline, "athl": ATHLBaseline}


def cross_validate_cost_model(
        X: pd.DataFrame, y: ArrayLike, cv: Any, params: CostModelParams | None = None, *,
        truth: ArrayLike | None = None, baselines: bool | Sequence[Literal["sqrt", "athl"]] = True,
        fit_parametric: Callable[[NDArray[np.intp]], Transform] | None = None,
        quantiles: bool = True, monotone_increasing: Sequence[str] = MONOTONE_DEFAULT,
        calibration_fraction: float = 0.2, coverage: float = 0.8, loss: Loss = "rmse",
        sample_weight: ArrayLike | None = None,
        interval_scale: ArrayLike | None = None,
        baseline_X: pd.DataFrame | None = None) -> CVResult:
    """Fit and score the cost models on every fold of ``cv`` (out of sample).

    Parameters
    ----------
    X : pandas.DataFrame
        Decision-time features, one row per order, sorted by decision time.
    y : array_like of float
        Realized cost ``is_bps``.
    cv : object with ``split(X)``
        Any sklearn-style splitter (e.g. ``validation.splitters.PurgedKFold``) yielding integer
        ``(train, test)`` positions. Every fold trains.
    params : CostModelParams, default=CostModelParams()
        Hyperparameters of both models.
    truth : array_like of float, optional
        True expected cost (synthetic data), passed to :func:`evaluate`.
    baselines : bool or sequence of {"sqrt", "athl"}, default=True
        Parametric baselines calibrated on each training fold (True: both; False: none).
    fit_parametric : callable, optional
        Calibration-as-feature hook: ``fit_parametric(train_positions) -> transform`` fits on the
        training fold only; ``transform(frame) -> frame`` then adds (or replaces) feature columns
        of that fold's train and test rows (the parametric cost estimates fed back as features).
    quantiles : bool, default=True
        Also fit :class:`QuantileCostModel` and calibrate its band with :class:`ConformalInterval`.
    monotone_increasing : sequence of str, default=MONOTONE_DEFAULT
        Passed to :class:`QuantileCostModel`.
    calibration_fraction : float, default=0.2
        Share of each training fold (its last positions, i.e. its latest orders when ``X`` is in
        time order) held out of the quantile model to calibrate the band; the mean model and the
        baselines train on the whole fold.
    coverage : float, default=0.8
        Target coverage of the calibrated band.
    loss : {"rmse", "mae"}, default="rmse"
        The per-fold loss in ``fold_losses``.
    sample_weight : array_like of float, optional
        Weights of the XGBoost fits (and of ``fold_losses``).
    interval_scale : array_like of float, optional
        Per-row noise scale (> 0, known pre-trade). The quantile model then learns the
        standardized cost ``y / scale`` (unweighted: its noise is homoscedastic) and the
        conformal scores are in units of scale (:meth:`QuantileCostModel.fit`,
        :meth:`ConformalInterval.fit`).
    baseline_X : pandas.DataFrame, optional
        The baselines' inputs (``qty``, ``adv``, ``sigma_*``, ...), row-aligned with ``X``, when
        the model's features are dimensionless and so lack the raw size and volume the laws
        need; default ``X``.

    Returns
    -------
    CVResult
    """
    if not 0 < calibration_fraction < 1:
        raise ValueError("`calibration_fraction` must be in (0, 1), got "
                         f"calibration_fraction={calibration_fraction}")
    params = params or CostModelParams()
    yv = _vector(y, len(X), "y")
    t = None if truth is None else _vector(truth, len(X), "truth")
    w = None if sample_weight is None else _vector(sample_weight, len(X), "sample_weight")
    isc = None if interval_scale is None else _vector(interval_scale, len(X), "interval_scale")
    bx = X if baseline_X is None else baseline_X
    if len(bx) != len(X):
        raise ValueError(f"`baseline_X` has {len(bx)} rows, X has {len(X)}")
    names = tuple(_BASELINES) if baselines is True else tuple(baselines or ())
    cols = ["mean", *(["p10", "p50", "p90", "lo80", "hi80"] if quantiles else []), *names]
    oof = pd.DataFrame(np.nan, index=X.index, columns=cols)
    oof.insert(0, "fold", -1)
    rows, losses = [], []
    for k, (train, test) in enumerate(cv.split(X)):
        train, test = np.asarray(train), np.asarray(test)
        xtr, xte = _fold_frames(X, train, test, fit_parametric)
        wtr = None if w is None else w[train]
        pos = oof.columns.get_loc
        oof.iloc[test, pos("fold")] = k
        oof.iloc[test, pos("mean")] = MeanCostModel(params).fit(
            xtr, yv[train], sample_weight=wtr).predict(xte)
        if quantiles:
            n_cal = max(1, round(calibration_fraction * len(train)))
            fit_rows, cal_rows = slice(0, len(train) - n_cal), slice(len(train) - n_cal, None)
            qm = QuantileCostModel(params, monotone_increasing=monotone_increasing)
            if isc is None:
                qm.fit(xtr.iloc[fit_rows], yv[train][fit_rows],
                       sample_weight=None if wtr is None else wtr[fit_rows])
                sc_cal = sc_te = None
            else:  # standardized target: its noise is homoscedastic, so no weights
                qm.fit(xtr.iloc[fit_rows], yv[train][fit_rows], scale=isc[train][fit_rows])
                sc_cal, sc_te = isc[train][cal_rows], isc[test]
            conf = ConformalInterval(coverage).fit(
                qm.predict(xtr.iloc[cal_rows], sc_cal), yv[train][cal_rows], sc_cal)
            q = qm.predict(xte, sc_te)
            band = conf.apply(q, None if isc is None else isc[test])
            for j, c in enumerate(("p10", "p50", "p90")):
                oof.iloc[test, pos(c)] = q[:, j]
            oof.iloc[test, pos("lo80")] = band[:, 0]
            oof.iloc[test, pos("hi80")] = band[:, -1]
        for name in names:
            oof.iloc[test, pos(name)] = _BASELINES[name]().fit(
                bx.iloc[train], yv[train]).predict(bx.iloc[test])
        part = oof.iloc[test]
        rows.append({"fold": k, "n_train": len(train), "n_test": len(test),
                     **_metrics(yv[test], part, None if t is None else t[test], quantiles, names)})
        losses.append(fold_loss(yv[test], part["mean"], loss, None if w is None else w[test]))
    tested = oof["fold"].to_numpy() >= 0
    metrics = _metrics(yv[tested], oof[tested], None if t is None else t[tested], quantiles, names)
    return CVResult(pd.DataFrame(rows), oof, np.asarray(losses), metrics, loss)


def _metrics(y: Floats, part: pd.DataFrame, truth: Floats | None, quantiles: bool,
             names: Sequence[str]) -> dict[str, float]:
    kw: dict[str, Any] = {}
    raw: dict[str, float] = {}
    if quantiles:
        kw = {"q_lo": part["lo80"], "q_mid": part["p50"], "q_hi": part["hi80"]}
        raw = evaluate(y, part["mean"], q_lo=part["p10"], q_hi=part["p90"])
    m = evaluate(y, part["mean"], truth=truth, baseline_pred={n: part[n] for n in names}, **kw)
    if quantiles:  # pinball of the raw quantiles; coverage both before and after calibration
        m.update(pinball_p10=raw["pinball_p10"], pinball_p90=raw["pinball_p90"],
                 raw_coverage_80=raw["coverage_80"])
    return m
