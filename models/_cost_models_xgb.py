"""XGBoost cost models of :mod:`models.cost_models`: mean, quantiles, conformal band, hyperparameters.

:class:`CostModelParams` holds the hyperparameters (written once); :class:`MeanCostModel` and
:class:`QuantileCostModel` are the boosters; :class:`ConformalInterval` calibrates the quantile
band. ``_matrix``, ``_vector`` and ``_positive`` check and convert inputs for every part of the
cost models. :mod:`models.cost_models` re-exports the public names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xgboost as xgb
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MONOTONE_DEFAULT",
    "QUANTILES",
    "ConformalInterval",
    "CostModelParams",
    "Floats",
    "MeanCostModel",
    "QuantileCostModel",
]

QUANTILES = (0.1, 0.5, 0.9)
"""Quantile levels of :class:`QuantileCostModel`; p10-p90 is the 80% interval."""
MONOTONE_DEFAULT = ("pct_adv", "implied_participation")
"""Features the quantile model's predictions must not decrease in (size and participation)."""

Floats = NDArray[np.float64]


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

        With ``scale`` (> 0 per row, known before the order, e.g.
        :func:`models.cost_models.noise_sd_bps`) the
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
    is measured by :func:`models.cost_models.cross_validate_cost_model`.
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
