"""Parametric baselines of :mod:`models.cost_models`: calibrated square-root law and ATHL plus the half spread.

Each baseline calibrates its law with :func:`models.impact_calibration.calibrate` on the training
fold and predicts through the fitted :class:`models.impact.ImpactModel`.
:mod:`models.cost_models` re-exports the public names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from models._cost_models_xgb import Floats, _vector
from models.impact_calibration import CalibrationResult, calibrate

__all__ = ["ATHLBaseline", "SquareRootBaseline"]


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
