"""Scores of :mod:`models.cost_models`: fold losses, noise weights and :func:`evaluate`.

:mod:`models.cost_models` re-exports the public names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from models._cost_models_xgb import QUANTILES, Floats, _vector

__all__ = ["Loss", "evaluate", "fold_loss", "inverse_noise_weights", "noise_sd_bps"]

Loss = Literal["rmse", "mae"]


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
