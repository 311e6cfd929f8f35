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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
import xgboost as xgb
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

from models.impact_calibration import CalibrationResult, calibrate

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

QUANTILES = (0.1, 0.5, 0.9)
"""Quantile levels of :class:`QuantileCostModel`; p10-p90 is the 80% interval."""
MONOTONE_DEFAULT = ("pct_adv", "implied_participation")
"""Features the quantile model's predictions must not decrease in (size and participation)."""

Floats = NDArray[np.float64]
Loss = Literal["rmse", "mae"]
Transform = Callable[[pd.DataFrame], pd.DataFrame]


class CostModelParams(BaseModel):
    """XGBoost hyperparameters of the cost models (frozen; the defaults are written here only).

    Parameters
    ----------
    objective : {"reg:squarederror", "reg:pseudohubererror"}, default="reg:squarederror"
        Loss of :class:`MeanCostModel` (the quantile model always uses ``reg:quantileerror``).
    huber_slope : float, default=10.0
        Pseudo-Huber ``delta``, bps (residuals beyond it weigh linearly).
    num_boost_round : int, default=400
        Trees.
    learning_rate, max_depth, min_child_weight, subsample, colsample_bytree, reg_lambda, reg_alpha,
    gamma, max_bin : see the XGBoost parameter reference
        Defaults 0.05, 6, 1.0, 0.8, 0.8, 1.0, 0.0, 0.0, 256.
    nthread : int or None, default=None
        Threads; None lets XGBoost use every core.
    seed : int, default=0
        XGBoost's seed (row and column subsampling).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    objective: Literal["reg:squarederror", "reg:pseudohubererror"] = "reg:squarederror"
    huber_slope: float = Field(10.0, gt=0)
    num_boost_round: int = Field(400, ge=1)
    learning_rate: float = Field(0.05, gt=0, le=1)
    max_depth: int = Field(6, ge=1, le=16)
    min_child_weight: float = Field(1.0, ge=0)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    reg_alpha: float = Field(0.0, ge=0)
    gamma: float = Field(0.0, ge=0)
    max_bin: int = Field(256, ge=2)
    nthread: int | None = Field(None, ge=1)
    seed: int = 0

    def booster_params(self, objective: str | None = None) -> dict[str, Any]:
        """The ``params`` dict of :func:`xgboost.train` (``num_boost_round`` is passed apart)."""
        p = self.model_dump(exclude={"num_boost_round", "nthread", "huber_slope"})
        p.update(objective=objective or self.objective, tree_method="hist", verbosity=0)
        if p["objective"] == "reg:pseudohubererror":
            p["huber_slope"] = self.huber_slope
        if self.nthread is not None:
            p["nthread"] = self.nthread
        return p


def _matrix(X: pd.DataFrame, names: Sequence[str] | None = None) -> NDArray[np.float32]:
    """``X[names]`` as a float32 array; the error names missing or non-numeric columns."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas.DataFrame with feature names, got {type(X).__name__}")
    names = list(X.columns) if names is None else list(names)
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise ValueError(f"X lacks feature column(s) {missing} the model was trained on; pass "
                         "the same features as in fit")
    bad = [c for c in names if not pd.api.types.is_numeric_dtype(X[c])]
    if bad:
        raise ValueError(f"feature column(s) {bad} are not numeric; encode them before fitting")
    return X[names].to_numpy(dtype=np.float32, na_value=np.nan)


def _vector(y: ArrayLike, n: int, name: str) -> Floats:
    arr = np.asarray(y, dtype=np.float64).reshape(-1)
    if arr.size != n:
        raise ValueError(f"`{name}` has {arr.size} values but X has {n} rows; align them")
    return arr


def _positive(a: ArrayLike, n: int, name: str) -> Floats:
    v = _vector(a, n, name)
    if np.any(v[np.isfinite(v)] <= 0):
        raise ValueError(f"`{name}` must be > 0 on every row")
    return v


class MeanCostModel:
    """Expected cost (bps) of an order: XGBoost on ``is_bps``.

    Parameters
    ----------
    params : CostModelParams, default=CostModelParams()
        Hyperparameters and the loss (``objective``).
    """

    def __init__(self, params: CostModelParams | None = None) -> None:
        self.params = params or CostModelParams()

    def fit(self, X: pd.DataFrame, y: ArrayLike, *, sample_weight: ArrayLike | None = None
            ) -> MeanCostModel:
        """Train on the orders ``X`` and their realized costs ``y`` (bps)."""
        self.feature_names_ = list(X.columns)
        w = None if sample_weight is None else _vector(sample_weight, len(X), "sample_weight")
        d = xgb.DMatrix(_matrix(X), _vector(y, len(X), "y"), weight=w,
                        feature_names=self.feature_names_)
        self.booster_ = xgb.train(self.params.booster_params(), d, self.params.num_boost_round)
        return self

    def predict(self, X: pd.DataFrame) -> Floats:
        """Expected cost (bps) of each row of ``X``."""
        d = xgb.DMatrix(_matrix(X, self.feature_names_), feature_names=self.feature_names_)
        return self.booster_.predict(d).astype(np.float64)


class QuantileCostModel:
    """p10, p50 and p90 of the cost (bps) in one booster, monotone in size and participation.

    Parameters
    ----------
    params : CostModelParams, default=CostModelParams()
        Hyperparameters (``objective`` is ignored: the loss is the pinball loss of each quantile).
    monotone_increasing : sequence of str, default=MONOTONE_DEFAULT
        Features the predictions may not decrease in, by name; each must be a column of ``X``.

    Notes
    -----
    The constraint binds each tree of every quantile, so each quantile is non-decreasing in those
    features with the others held fixed. The three quantiles share trees but can still cross; the
    predictions are sorted row by row (monotone rearrangement, Chernozhukov et al. 2010), which
    keeps the monotonicity and never increases the pinball loss.
    """

    def __init__(self, params: CostModelParams | None = None, *,
                 monotone_increasing: Sequence[str] = MONOTONE_DEFAULT) -> None:
        self.params = params or CostModelParams()
        self.monotone_increasing = tuple(monotone_increasing)

    def fit(self, X: pd.DataFrame, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
            scale: ArrayLike | None = None) -> QuantileCostModel:
        """Train on the orders ``X`` and their realized costs ``y`` (bps).

        With ``scale`` (> 0 per row, known before the order, e.g. :func:`noise_sd_bps`) the
        booster learns the quantiles of the standardized cost ``y / scale`` and :meth:`predict`
        multiplies them back by the rows' scale: the band then stretches with the noise of a
        regime the training data never reached (a 4x-volatility crisis), where trees that
        learned raw bps would stay as narrow as the widest leaf they saw.
        """
        self.feature_names_ = list(X.columns)
        self.scaled_ = scale is not None
        missing = [c for c in self.monotone_increasing if c not in self.feature_names_]
        if missing:
            raise ValueError(f"monotone_increasing names {missing}, which are not columns of X; "
                             "add the features or drop them from monotone_increasing")
        signs = ",".join("1" if c in self.monotone_increasing else "0" for c in self.feature_names_)
        p = self.params.booster_params("reg:quantileerror")
        p.update(quantile_alpha=np.asarray(QUANTILES), monotone_constraints=f"({signs})")
        w = None if sample_weight is None else _vector(sample_weight, len(X), "sample_weight")
        target = _vector(y, len(X), "y")
        if scale is not None:
            target = target / _positive(scale, len(X), "scale")
        d = xgb.DMatrix(_matrix(X), target, weight=w, feature_names=self.feature_names_)
        self.booster_ = xgb.train(p, d, self.params.num_boost_round)
        return self

    def predict(self, X: pd.DataFrame, scale: ArrayLike | None = None) -> Floats:
        """Array ``(n, 3)``: p10, p50, p90 (bps) of each row, ordered along each row.

        ``scale`` is required, and only allowed, when the model was fitted with one."""
        if getattr(self, "scaled_", False) != (scale is not None):
            raise ValueError("pass `scale` to predict exactly when the model was fitted with one "
                             f"(fitted with scale: {getattr(self, 'scaled_', False)})")
        d = xgb.DMatrix(_matrix(X, self.feature_names_), feature_names=self.feature_names_)
        q = np.sort(self.booster_.predict(d).astype(np.float64).reshape(len(X), -1), axis=1)
        if scale is not None:
            q = q * _positive(scale, len(X), "scale")[:, None]
        return q


class ConformalInterval:
    """Split-conformal calibration of a quantile band (CQR, Romano, Patterson & Candès 2019).

    Parameters
    ----------
    coverage : float, default=0.8
        Target probability that the calibrated band holds the realized cost.

    Notes
    -----
    On a calibration set the model never trained on, the score of row ``i`` is
    ``E_i = max(lo_i - y_i, y_i - hi_i)`` (negative inside the band). With ``n`` scores the margin
    is the ``k``-th smallest, ``k = ceil((n + 1) * coverage)``, and the band becomes
    ``[lo - margin, hi + margin]`` (narrower when the raw band over-covers). If calibration and
    new rows are exchangeable, coverage is at least ``coverage`` and at most
    ``coverage + 1/(n + 1)``. Orders in time are not exactly exchangeable; coverage out of sample
    is measured by :func:`cross_validate_cost_model`.
    """

    def __init__(self, coverage: float = 0.8) -> None:
        if not 0 < coverage < 1:
            raise ValueError(f"`coverage` must be in (0, 1), got coverage={coverage}")
        self.coverage = coverage

    def fit(self, q_pred: ArrayLike, y: ArrayLike, scale: ArrayLike | None = None
            ) -> ConformalInterval:
        """Learn the margin from quantile predictions ``(n, k)`` (first = lo, last = hi) and ``y``.

        With ``scale`` (> 0 per row, e.g. the timing risk known before the order) the scores are
        divided by it and the margin is in units of scale (locally weighted conformal, Lei et
        al. 2018): the band widens where the noise is larger, and a regime whose noise scale
        differs from the calibration set's keeps its coverage.
        """
        q = np.asarray(q_pred, dtype=np.float64)
        y = _vector(y, len(q), "y")
        sc = self._scale(scale, len(q))
        scores = np.maximum(q[:, 0] - y, y - q[:, -1]) / sc
        scores = np.sort(scores[np.isfinite(scores)])
        k = int(np.ceil((len(scores) + 1) * self.coverage))
        self.margin_ = float(scores[k - 1]) if k <= len(scores) else float("inf")
        self.n_ = len(scores)
        self.scaled_ = scale is not None
        return self

    @staticmethod
    def _scale(scale: ArrayLike | None, n: int) -> Floats:
        return np.ones(n) if scale is None else _positive(scale, n, "scale")

    def apply(self, q_pred: ArrayLike, scale: ArrayLike | None = None) -> Floats:
        """A copy of ``q_pred`` with its first column lowered and last raised by the margin
        (times ``scale`` of each row when the interval was fitted with one)."""
        q = np.array(q_pred, dtype=np.float64)
        if getattr(self, "scaled_", False) and scale is None:
            raise ValueError("this interval was fitted with a scale; pass `scale` to apply")
        m = self.margin_ * self._scale(scale, len(q))
        q[:, 0] -= m
        q[:, -1] += m
        return q


_CANDIDATES: dict[str, tuple[str, ...]] = {
    "qty": ("qty",), "adv": ("adv", "adv_est"),
    "sigma": ("sigma", "sigma_seen", "sigma_est", "sigma_daily"),
    "duration_days": ("duration_days",), "shares_outstanding": ("shares_outstanding",)}


class _ImpactBaseline:
    model: Literal["sqrt", "athl"]
    needs: tuple[str, ...]

    def __init__(self, *, columns: Mapping[str, str] | None = None,
                 spread_column: str | None = "arrival_spread_bps") -> None:
        self.columns = dict(columns or {})
        self.spread_column = spread_column

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for name in self.needs:
            cands = (self.columns[name],) if name in self.columns else _CANDIDATES[name]
            col = next((c for c in cands if c in X.columns), None)
            if col is None:
                raise ValueError(f"{type(self).__name__} needs column {name!r} (one of "
                                 f"{list(cands)}) in X; add it or map it with columns=")
            out[name] = X[col].to_numpy(np.float64)
        return pd.DataFrame(out, index=X.index)

    def _half_spread(self, X: pd.DataFrame) -> Floats:
        if self.spread_column is None or self.spread_column not in X.columns:
            return np.zeros(len(X))
        return 0.5 * X[self.spread_column].to_numpy(np.float64)

    def fit(self, X: pd.DataFrame, y: ArrayLike) -> _ImpactBaseline:
        """Calibrate the impact law on ``y`` minus the half spread (when there is one)."""
        df = self._frame(X)
        df["is_bps"] = _vector(y, len(X), "y") - self._half_spread(X)
        self.uses_spread_ = self.spread_column is not None and self.spread_column in X.columns
        self.calibration_: CalibrationResult = calibrate(self.model, df, source=type(self).__name__)
        return self

    def predict(self, X: pd.DataFrame) -> Floats:
        """Half spread plus the calibrated impact (bps) of each row."""
        df = self._frame(X)
        if "duration_days" not in df:
            df["duration_days"] = 1.0
        impact = self.calibration_.impact_model().expected_cost_bps(
            qty=df["qty"].to_numpy(), adv=df["adv"].to_numpy(), sigma_daily=df["sigma"].to_numpy(),
            duration_days=df["duration_days"].to_numpy(),
            shares_outstanding=df["shares_outstanding"].to_numpy() if "shares_outstanding" in df
            else None)
        return impact + self._half_spread(X)


class SquareRootBaseline(_ImpactBaseline):
    """Calibrated square-root law plus the half spread: ``s/2 + Y sigma sqrt(qty/adv) 1e4`` bps.

    Parameters
    ----------
    columns : mapping of str to str, optional
        Column of ``X`` for each input of the law (``qty``, ``adv``, ``sigma``). Unmapped inputs
        are looked up by name: ``adv`` or ``adv_est``; ``sigma``, ``sigma_seen`` (the best
        volatility a desk has at the decision), ``sigma_est`` or ``sigma_daily``.
    spread_column : str or None, default="arrival_spread_bps"
        Quoted spread at arrival (bps). When it is a column of ``X`` the half spread is taken out
        of the label before ``Y`` is fitted and added back to the prediction (crossing the spread
        is observable before the order is sent); when absent or None, only the law is used.
    """

    model = "sqrt"
    needs = ("qty", "adv", "sigma")


class ATHLBaseline(_ImpactBaseline):
    """Calibrated ATHL (Almgren et al. 2005) ``I/2 + K`` plus the half spread, in bps.

    Reads ``qty``, ``adv``, ``sigma``, ``duration_days`` and ``shares_outstanding``;
    ``gamma, eta, beta`` are fitted. Parameters as :class:`SquareRootBaseline`.
    """

    model = "athl"
    needs = ("qty", "adv", "sigma", "duration_days", "shares_outstanding")


def _r2(y: Floats, p: Floats) -> float:
    tss = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - p) ** 2)) / tss if tss > 0 else float("nan")


def _pinball(y: Floats, q: Floats, alpha: float) -> float:
    e = y - q
    return float(np.mean(np.maximum(alpha * e, (alpha - 1) * e)))


def fold_loss(y_true: ArrayLike, pred: ArrayLike, loss: Loss = "rmse",
              weight: ArrayLike | None = None) -> float:
    """RMSE or MAE (bps) of ``pred`` against ``y_true``: the tuning loss (weighted when
    ``weight`` is given: the same inverse-noise weights as the fit make the efficient loss)."""
    e = np.asarray(y_true, dtype=np.float64) - np.asarray(pred, dtype=np.float64)
    w = np.ones(len(e)) if weight is None else np.asarray(weight, dtype=np.float64)
    if loss == "rmse":
        return float(np.sqrt(np.sum(w * e * e) / np.sum(w)))
    if loss == "mae":
        return float(np.sum(w * np.abs(e)) / np.sum(w))
    raise ValueError(f"unknown loss {loss!r}; use 'rmse' or 'mae'")


def noise_sd_bps(timing_risk_bps: ArrayLike, floor_bps: float = 5.0, *,
                 fill_bps: float | None = None) -> Floats:
    """Noise sd of each order, ``sqrt(timing_risk^2 + floor^2)`` bps; the unit of the scaled
    conformal band. A missing risk gets ``fill_bps`` (a deployed model passes its training
    median, so an order's band does not depend on the batch it is priced in), else the median
    risk of ``timing_risk_bps``."""
    r = np.asarray(timing_risk_bps, dtype=np.float64)
    if fill_bps is None:
        fill_bps = np.nanmedian(r) if np.isfinite(r).any() else 0.0
    r = np.where(np.isfinite(r), r, fill_bps)
    return np.sqrt(r * r + floor_bps * floor_bps)


def inverse_noise_weights(timing_risk_bps: ArrayLike, floor_bps: float = 5.0) -> Floats:
    """Regression weights ``1 / (timing_risk^2 + floor^2)``, scaled to mean 1.

    A realized shortfall is its expected cost plus the mid's move while the order works, whose
    sd the desk knows before sending (``timing_risk_bps`` of :mod:`models.features`: ``sigma
    sqrt(sum_kl w_k w_l min(tau_k, tau_l))``). Weighting each order by its inverse noise
    variance is weighted least squares under that heteroscedasticity: long orders in volatile
    markets, whose labels are mostly noise, stop dominating the fit. ``floor_bps`` stands for the
    noise the formula leaves out (tick rounding, jumps); a missing risk gets the median weight.
    """
    r = np.asarray(timing_risk_bps, dtype=np.float64)
    if floor_bps <= 0:
        raise ValueError(f"`floor_bps` must be > 0, got floor_bps={floor_bps}")
    w = 1.0 / (r * r + floor_bps * floor_bps)
    med = np.nanmedian(w) if np.isfinite(w).any() else 1.0
    w = np.where(np.isfinite(w), w, med)
    return w / w.mean()


def evaluate(y_true: ArrayLike, pred: ArrayLike, *, truth: ArrayLike | None = None,
             q_lo: ArrayLike | None = None, q_mid: ArrayLike | None = None,
             q_hi: ArrayLike | None = None,
             baseline_pred: Mapping[str, ArrayLike] | None = None) -> dict[str, float]:
    """Scores of a mean prediction (and optionally quantiles, baselines, the truth).

    Parameters
    ----------
    y_true, pred : array_like of float
        Realized costs and the mean model's predictions (bps).
    truth : array_like of float, optional
        True expected costs (synthetic data): adds ``truth_mae``, ``truth_r2`` (R² of ``pred``
        against the truth), ``oracle_r2`` (R² of the truth predicting ``y_true``: the most any
        model can explain of the noisy labels) and ``r2_over_oracle = r2 / oracle_r2``.
    q_lo, q_mid, q_hi : array_like of float, optional
        p10, p50, p90 predictions: ``pinball_p10``/``_p50``/``_p90`` each given; with both ends,
        ``coverage_80`` (share of ``q_lo <= y <= q_hi``) and ``width_80`` (mean width, bps).
    baseline_pred : mapping of str to array_like, optional
        Baseline predictions by name: ``{name}_mae`` and ``improvement_{name}_pct``
        ``= 100 (1 - mae / {name}_mae)``; with ``truth``, also ``{name}_truth_mae`` and
        ``truth_improvement_{name}_pct`` on the error against the truth.

    Returns
    -------
    dict of str to float
        Always ``n, mae, rmse, r2``; more keys as above.

    Examples
    --------
    >>> m = evaluate([1.0, 2.0, 4.0], [1.0, 3.0, 2.0], q_lo=[0.0, 0.0, 0.0], q_hi=[2.0, 2.0, 5.0])
    >>> m["mae"], round(m["rmse"], 4), m["coverage_80"], round(m["pinball_p10"], 4)
    (1.0, 1.291, 1.0, 0.2333)
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = _vector(pred, len(y), "pred")
    out = {"n": float(len(y)), "mae": fold_loss(y, p, "mae"), "rmse": fold_loss(y, p, "rmse"),
           "r2": _r2(y, p)}
    quants = {"p10": (q_lo, QUANTILES[0]), "p50": (q_mid, QUANTILES[1]), "p90": (q_hi, QUANTILES[2])}
    for key, (q, alpha) in quants.items():
        if q is not None:
            out[f"pinball_{key}"] = _pinball(y, _vector(q, len(y), f"q_{key}"), alpha)
    if q_lo is not None and q_hi is not None:
        lo, hi = _vector(q_lo, len(y), "q_lo"), _vector(q_hi, len(y), "q_hi")
        out["coverage_80"] = float(np.mean((lo <= y) & (y <= hi)))
        out["width_80"] = float(np.mean(hi - lo))
    t = None if truth is None else _vector(truth, len(y), "truth")
    if t is not None:
        out["truth_mae"] = fold_loss(t, p, "mae")
        out["truth_r2"] = _r2(t, p)
        out["oracle_r2"] = _r2(y, t)
        out["r2_over_oracle"] = out["r2"] / out["oracle_r2"]
    for name, b in (baseline_pred or {}).items():
        b = _vector(b, len(y), f"baseline_pred[{name!r}]")
        out[f"{name}_mae"] = fold_loss(y, b, "mae")
        out[f"improvement_{name}_pct"] = 100.0 * (1.0 - out["mae"] / out[f"{name}_mae"])
        if t is not None:
            out[f"{name}_truth_mae"] = fold_loss(t, b, "mae")
            out[f"truth_improvement_{name}_pct"] = 100.0 * (
                1.0 - out["truth_mae"] / out[f"{name}_truth_mae"])
    return out


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
        interval_scale: ArrayLike | None = None) -> CVResult:
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
            oof.iloc[test, pos(name)] = _BASELINES[name]().fit(xtr, yv[train]).predict(xte)
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
