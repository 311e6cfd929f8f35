"""Parametric estimates as features: the square-root law and ATHL fitted on earlier orders only
(the fit/apply contract of :mod:`models.features`)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from models._feature_registry import FeatureConfig
from models.impact_calibration import ROWS_PER_PARAM, CalibrationResult, calibrate


class ParametricCalibrations(BaseModel):
    """Square-root and ATHL fits on training rows, with the time span of the data they saw."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sqrt: CalibrationResult | None
    athl: CalibrationResult | None
    n_rows: int
    label: str
    net_of_half_spread: bool
    fitted_from_ts: datetime | None
    fitted_through_ts: datetime | None  # latest knowledge time of a row used (rounded up to us)


_FIT_COLS: Final = ("qty", "adv", "sigma_daily", "duration_days")


def calibration_rows(features: pd.DataFrame, labels: pd.DataFrame, *,
                     label: str = "is_bps") -> pd.DataFrame:
    """Training rows for :func:`fit_parametric`: features joined with labels on ``order_id``.

    Keeps ``order_id, decision_ts, t1`` (and the labels' ``available_at`` if any: the row's
    knowledge time), ``label``, the calibration inputs and ``arrival_spread_bps``.
    """
    keep = ["order_id", "decision_ts", *_FIT_COLS, "shares_outstanding", "arrival_spread_bps"]
    lab = ["order_id", "t1", label, *(["available_at"] if "available_at" in labels else [])]
    return features[keep].merge(labels[lab], on="order_id", how="inner", validate="one_to_one")


def _fit_frame(rows: pd.DataFrame, label: str, net: bool, cfg: FeatureConfig) -> pd.DataFrame:
    missing = [c for c in (*_FIT_COLS, label, "t1") if c not in rows.columns]
    if missing:
        raise ValueError(f"fit_parametric: training rows lack column(s) {missing} "
                         "(build them with calibration_rows)")
    y = rows[label].to_numpy(np.float64, na_value=np.nan)
    if net and "arrival_spread_bps" in rows.columns:
        y = y - 0.5 * rows["arrival_spread_bps"].to_numpy(np.float64, na_value=np.nan)
    so = (rows["shares_outstanding"].to_numpy(np.float64, na_value=np.nan)
          if "shares_outstanding" in rows.columns else np.full(len(rows), np.nan))
    adv = rows["adv"].to_numpy(np.float64, na_value=np.nan)
    df = pd.DataFrame({
        "qty": rows["qty"].to_numpy(np.float64), "adv": adv,
        "sigma": rows["sigma_daily"].to_numpy(np.float64, na_value=np.nan),
        "duration_days": rows["duration_days"].to_numpy(np.float64, na_value=np.nan),
        "shares_outstanding": np.where(np.isfinite(so) & (so > 0), so, cfg.turnover * adv),
        "is_bps": y})
    num = df.to_numpy()
    good = np.isfinite(num).all(axis=1) & (num[:, :5] > 0).all(axis=1)
    return df[good]


def fit_parametric(rows: pd.DataFrame, *, label: str = "is_bps",
                   config: FeatureConfig | None = None) -> ParametricCalibrations:
    """Fit the square-root law and ATHL on training rows only (see the module's contract).

    ``rows`` needs ``qty, adv, sigma_daily, duration_days, t1`` and ``label`` (optional
    ``shares_outstanding``, ``arrival_spread_bps``, ``available_at``). Rows with a non-finite
    or non-positive input are left out; a family with too few rows is ``None``.
    """
    cfg = config or FeatureConfig()
    net = cfg.net_of_half_spread
    df = _fit_frame(rows, label, net, cfg)
    when = rows["available_at"] if "available_at" in rows.columns else rows["t1"]
    when = pd.to_datetime(when, utc=True)
    dts = pd.to_datetime(rows["decision_ts"], utc=True) if "decision_ts" in rows else when
    sq = calibrate("sqrt", df) if len(df) >= ROWS_PER_PARAM else None
    at = calibrate("athl", df) if len(df) >= 3 * ROWS_PER_PARAM else None
    return ParametricCalibrations(
        sqrt=sq, athl=at, n_rows=len(df), label=label, net_of_half_spread=net,
        # datetime holds microseconds: round the knowledge bound up, never down
        fitted_from_ts=None if dts.isna().all() else dts.min().floor("us").to_pydatetime(),
        fitted_through_ts=None if when.isna().all() else when.max().ceil("us").to_pydatetime())


def _predict(cols: dict[str, np.ndarray], cal: ParametricCalibrations, idx: np.ndarray) -> None:
    kw = dict(qty=cols["qty"][idx], adv=cols["adv"][idx], sigma_daily=cols["sigma_daily"][idx],
              duration_days=cols["duration_days"][idx],
              shares_outstanding=cols["shares_outstanding"][idx])
    with np.errstate(divide="ignore", invalid="ignore"):
        if cal.sqrt is not None:
            cols["sqrt_pred_bps"][idx] = cal.sqrt.impact_model().expected_cost_bps(**kw)
        if cal.athl is not None:
            cols["athl_pred_bps"][idx] = cal.athl.impact_model().expected_cost_bps(**kw)


def apply_parametric(features: pd.DataFrame, calibrations: ParametricCalibrations, *,
                     update_knowledge: bool = True,
                     config: FeatureConfig | None = None) -> pd.DataFrame:
    """A copy of ``features`` with ``sqrt_pred_bps`` and ``athl_pred_bps`` from ``calibrations``.

    With ``update_knowledge`` (default) ``knowledge_ts`` becomes ``max(knowledge_ts,
    calibrations.fitted_through_ts)``: a row decided before the calibration's data was known is
    then flagged by ``validation.leakage.knowledge_after_decision``.
    """
    cfg = config or FeatureConfig()
    out = features.copy()
    n = len(out)
    adv = out["adv"].to_numpy(np.float64, na_value=np.nan)
    so = (out["shares_outstanding"].to_numpy(np.float64, na_value=np.nan)
          if "shares_outstanding" in out else np.full(n, np.nan))
    cols = {c: out[c].to_numpy(np.float64, na_value=np.nan) for c in _FIT_COLS}
    cols["shares_outstanding"] = np.where(np.isfinite(so) & (so > 0), so, cfg.turnover * adv)
    cols["sqrt_pred_bps"] = np.full(n, np.nan)
    cols["athl_pred_bps"] = np.full(n, np.nan)
    _predict(cols, calibrations, np.arange(n))
    out["sqrt_pred_bps"] = cols["sqrt_pred_bps"]
    out["athl_pred_bps"] = cols["athl_pred_bps"]
    if update_knowledge and calibrations.fitted_through_ts is not None:
        ft = pd.Timestamp(calibrations.fitted_through_ts).tz_convert("UTC").as_unit("ns")
        k = pd.to_datetime(out["knowledge_ts"], utc=True).dt.as_unit("ns")
        out["knowledge_ts"] = k.where(k.notna() & (k >= ft), ft)
    return out

