"""The cost model as it is deployed: one object from raw order rows to a cost, a band and a flag.

:class:`CostModelBundle` holds the mean and quantile boosters, the conformal margin, the training
domain, the feature configuration and the parametric calibrations of its training run. It
predicts on two kinds of rows:

* :meth:`CostModelBundle.predict` on **feature** rows (the columns of
  :func:`models.features.build_features`): ``(mean, lo, hi)`` in bps, used inside training and
  validation;
* :meth:`CostModelBundle.predict_raw` on **raw** rows of parent order + point-in-time market
  state (:data:`SERVING_INPUTS`), the serving contract of the registered model: the features are
  built inside with :func:`models.features.features_from_state`, the same code training used,
  and the output is :data:`SERVING_OUTPUTS`.

:meth:`save` / :meth:`load` keep it in one folder (``mean.json``, ``quantile.json`` in XGBoost's
JSON format, ``bundle.json``); the registry logs that folder as the MLflow model's artifacts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import xgboost as xgb
from numpy.typing import NDArray

from models.cost_models import _matrix, noise_sd_bps
from models.features import (
    PLAN_INPUTS,
    FeatureConfig,
    ParametricCalibrations,
    feature_columns,
    features_from_state,
)

__all__ = ["BUNDLE_FORMAT", "SERVING_INPUTS", "SERVING_OUTPUTS", "CostModelBundle", "ServingColumn",
           "ServingInputError", "check_serving_rows"]

Floats = NDArray[np.float64]

BUNDLE_FORMAT: Final = 3
"""Version of ``bundle.json``: 2 added the standardized quantile booster, the training domain
and the risk fill; 3 the feature configuration and the parametric calibrations (what serving on
raw rows needs). A loader refuses a newer format than it knows (it would misread the band)."""


class ServingInputError(ValueError):
    """Rows that do not meet :data:`SERVING_INPUTS`; the message names the column (and the row).

    Its own class, not :class:`validation.contracts.ContractError`: the serving path must not
    import the contracts module (pandera is a fifth of a cold model load)."""


@dataclass(frozen=True)
class ServingColumn:
    """One input column of the serving contract."""

    name: str
    type: str  # "string" | "double" | "long" (MLflow ColSpec types); timestamps are ISO strings
    required: bool
    unit: str
    description: str


def _col(name: str, type_: str, required: bool, unit: str, description: str) -> ServingColumn:
    return ServingColumn(name, type_, required, unit, description)


SERVING_INPUTS: Final[tuple[ServingColumn, ...]] = (
    _col("symbol", "string", True, "", "instrument"),
    _col("side", "long", True, "+1 / -1", "+1 buy, -1 sell"),
    _col("qty", "double", True, "shares", "parent order size"),
    _col("decision_ts", "string", True, "ISO 8601 UTC", "decision time (naive = UTC)"),
    _col("end_ts", "string", True, "ISO 8601 UTC", "end of the order's window"),
    _col("arrival_mid", "double", True, "currency", "mid of the last quote known at decision_ts"),
    _col("arrival_spread_bps", "double", True, "bps", "(ask - bid) / mid of that quote"),
    _col("adv", "double", True, "shares/day", "mean daily volume of the last 20 known sessions"),
    _col("sigma_daily", "double", True, "daily log-return sd",
         "sd of daily log close returns, last 20 known sessions"),
    _col("l1_imbalance", "double", False, "[-1, 1]", "(bid_sz - ask_sz) / (bid_sz + ask_sz)"),
    _col("quote_age_s", "double", False, "s", "decision_ts - ts of the last quote"),
    _col("rv_intraday", "double", False, "daily vol units", "realized vol, last 30 min"),
    _col("rv_prev_session", "double", False, "daily vol units",
         "1-minute realized vol of the previous session"),
    _col("rv_open", "double", False, "daily vol units", "the same from today's open"),
    _col("sigma_seen", "double", False, "daily vol units",
         "volatility the market has seen (blend of the two above)"),
    _col("trade_intensity", "double", False, "trades/min", "trades per minute, last 15 min"),
    _col("trade_imbalance", "double", False, "[-1, 1]",
         "sum(aggressor * qty) / sum(qty), last 15 min"),
    _col("expected_volume", "double", False, "shares",
         "volume expected in [decision_ts, end_ts] from the intraday profile"),
    _col("vol_ratio", "double", False, "ratio", "recent vol / median session vol"),
    _col("regime_known", "string", False, "calm|volatile|crisis", "regime as known at decision"),
    _col("depth_bid", "double", False, "shares", "bid size over the top 5 levels"),
    _col("depth_ask", "double", False, "shares", "ask size over the top 5 levels"),
    _col("strategy", "string", False, "", "twap|vwap|pov|almgren_chriss|is_urgency"),
    *(_col(c, "double", False, "", "plan summary (models.desk_history.plan_summary)")
      for c in PLAN_INPUTS[1:]),
    _col("shares_outstanding", "double", False, "shares", "else 200 x adv"),
    _col("sqrt_pred_bps", "double", False, "bps",
         "desk's square-root estimate; else the model's own calibration"),
    _col("athl_pred_bps", "double", False, "bps", "desk's ATHL estimate; else the model's own"),
)
"""The registered model's input: one row per parent order with the market state known at its
decision. Optional columns may be absent or NaN (the domain flag says when that is outside the
training data)."""

SERVING_OUTPUTS: Final = ("mean_bps", "p10_bps", "p90_bps", "noise_sd_bps", "in_domain",
                          "domain_reason")
"""Expected cost, the conformal 80% band, the order's noise sd, and the training-domain flag."""

_TIMESTAMPS: Final = ("decision_ts", "end_ts")


def _bad_row(values: pd.Series | NDArray[Any], ok: NDArray[np.bool_]) -> str:
    i = int(np.flatnonzero(~ok)[0])
    return f"row {i} ({np.asarray(values, dtype=object)[i]!r})"


def check_serving_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` checked against :data:`SERVING_INPUTS` and typed (timestamps UTC, numbers
    float64); a :class:`ServingInputError` names the column (and the row)."""
    cols = _checked_columns(rows)
    for c in _TIMESTAMPS:
        cols[c] = pd.to_datetime(cols[c], utc=True)
    return pd.DataFrame(cols, index=rows.index)


def _checked_columns(rows: pd.DataFrame) -> dict[str, Any]:
    """:func:`check_serving_rows` as a mapping of column to array (the serving columns only;
    others are ignored): the serving path reads each input column once and never indexes a
    frame again (microseconds per column per order)."""
    if not isinstance(rows, pd.DataFrame):
        raise ServingInputError(f"cost model input: expected a table of rows, got {type(rows).__name__}")
    given = _columns_of(rows)
    missing = [c.name for c in SERVING_INPUTS if c.required and c.name not in given]
    if missing:
        raise ServingInputError(f"cost model input: missing required column(s) {missing}")
    cols: dict[str, Any] = {}
    for c in SERVING_INPUTS:
        v = given.get(c.name)
        if v is None:
            continue
        if c.name in _TIMESTAMPS:
            try:
                ts = pd.to_datetime(v.to_numpy(), utc=True, format="ISO8601")
            except (ValueError, TypeError) as exc:
                raise ServingInputError(f"cost model input: column {c.name!r} must be ISO 8601 "
                                    f"timestamps: {exc}") from None
            if ts.isna().any():
                raise ServingInputError(f"cost model input: column {c.name!r} is missing at "
                                    f"{_bad_row(v, ts.notna())}")
            cols[c.name] = ts.tz_localize(None).as_unit("ns").to_numpy()  # UTC, datetime64[ns]
        elif c.type in ("double", "long"):
            cols[c.name] = _numbers(c, v)
        else:
            cols[c.name] = v.to_numpy()
    side = cols["side"]
    ok = np.isin(side, (-1.0, 1.0))
    if not ok.all():
        raise ServingInputError(f"cost model input: column 'side' must be +1 or -1: "
                            f"{_bad_row(given['side'], ok)}")
    cols["side"] = side.astype(np.int64)
    return cols


def _columns_of(rows: pd.DataFrame) -> dict[str, Any]:
    """The serving columns of ``rows`` by name: the float64 ones as arrays of one block read
    (``select_dtypes``, a quarter of a millisecond less per one-order call than a Series per
    column), the others as Series."""
    names = {c.name for c in SERVING_INPUTS}
    if rows.columns.has_duplicates:
        dup = sorted({str(c) for c in rows.columns[rows.columns.duplicated()]})
        raise ServingInputError(f"cost model input: column(s) {dup} appear more than once")
    floats = rows.select_dtypes(include=[np.float64])
    block = floats.to_numpy()
    given: dict[str, Any] = {c: block[:, i] for i, c in enumerate(floats.columns) if c in names}
    for c in rows.columns:
        if c in names and c not in given:
            given[c] = rows[c]
    return given


def _numbers(c: ServingColumn, v: pd.Series | Floats) -> Floats:
    """Column ``v`` as float64, refusing booleans, text and (when required) gaps."""
    if v.dtype == np.float64:  # the wire form: nothing to convert, only gaps to check
        num = np.asarray(v)
        if c.required and np.isnan(num).any():
            raise ServingInputError(f"cost model input: required column {c.name!r} is missing "
                                f"at {_bad_row(v, ~np.isnan(num))}")
        return num
    if v.dtype.kind in "iu":  # numpy integers cannot be missing
        return v.to_numpy(np.float64)
    if pd.api.types.is_bool_dtype(v):
        raise ServingInputError(f"cost model input: column {c.name!r} is boolean, "
                            f"expected a number ({c.unit or c.type})")
    num_s = pd.to_numeric(v, errors="coerce")
    bad = num_s.isna() & v.notna()
    if bad.any():
        raise ServingInputError(f"cost model input: column {c.name!r} must be numeric "
                            f"({c.unit or c.type}): {_bad_row(v, ~bad.to_numpy())}")
    if c.required and num_s.isna().any():
        raise ServingInputError(f"cost model input: required column {c.name!r} is missing "
                            f"at {_bad_row(v, num_s.notna().to_numpy())}")
    return num_s.to_numpy(np.float64, na_value=np.nan)


def _as_floats(v: Any) -> Floats:
    if isinstance(v, np.ndarray) and v.dtype.kind in "fiu":
        return v.astype(np.float64, copy=False)
    return np.asarray(pd.to_numeric(v, errors="coerce"), np.float64)


class CostModelBundle:
    """A trained cost model as it is deployed: mean and quantile boosters, the conformal margin.

    ``predict(frame) -> (mean, lo, hi)`` in bps: the mean model, and the 80% band of the
    quantile model widened by ``margin`` times each order's noise scale
    ``sqrt(timing_risk_bps^2 + noise_floor_bps^2)`` (the scaled conformal calibration of the
    training run). With ``quantile_scaled`` the quantile booster predicts the standardized cost
    (:meth:`QuantileCostModel.fit` with ``scale``) and its outputs are multiplied by the same
    noise scale.
    """

    def __init__(self, mean: xgb.Booster, quantile: xgb.Booster, features: Sequence[str],
                 margin: float, noise_floor_bps: float, *, quantile_scaled: bool = False,
                 domain: Mapping[str, Sequence[float | bool]] | None = None,
                 risk_fill_bps: float | None = None,
                 feature_config: FeatureConfig | None = None,
                 calibrations: ParametricCalibrations | None = None) -> None:
        self.mean, self.quantile = mean, quantile
        self.features = list(features)
        self.margin, self.noise_floor_bps = float(margin), float(noise_floor_bps)
        self.quantile_scaled = bool(quantile_scaled)
        self.risk_fill_bps = None if risk_fill_bps is None else float(risk_fill_bps)
        self.domain = {k: (float(v[0]), float(v[1]), bool(v[2]))
                       for k, v in (domain or {}).items()}
        self.feature_config = feature_config or FeatureConfig()
        self.calibrations = calibrations

    @staticmethod
    def fit_domain(X: pd.DataFrame, q: float = 0.005) -> dict[str, tuple[float, float, bool]]:
        """The training domain of each column of ``X``: its ``q`` and ``1 - q`` quantiles and
        whether it was ever missing (trees send a missing value down a learned branch only
        when training had some)."""
        out = {}
        for c in X.columns:
            v = pd.to_numeric(X[c], errors="coerce").to_numpy(np.float64)
            ok = v[np.isfinite(v)]
            lo, hi = (np.quantile(ok, [q, 1 - q]) if ok.size else (np.nan, np.nan))
            out[str(c)] = (float(lo), float(hi), bool(ok.size < v.size))
        return out

    def outside_domain(self, frame: pd.DataFrame | Mapping[str, Any]) -> list[str]:
        """Per row of ``frame``, the features outside the training domain (comma-separated;
        '' when every feature is inside): below the 0.5% or above the 99.5% training quantile,
        or missing where training never was. Empty strings when no domain was recorded."""
        names = [c for c, (lo, hi, _) in self.domain.items()
                 if c in frame and np.isfinite(lo) and np.isfinite(hi)]
        n = len(frame) if isinstance(frame, pd.DataFrame) else len(next(iter(frame.values())))
        if not names:
            return [""] * n
        v = np.column_stack([_as_floats(frame[c]) for c in names])
        lo, hi, nan_seen = (np.array([self.domain[c][k] for c in names]) for k in range(3))
        with np.errstate(invalid="ignore"):
            out = (v < lo) | (v > hi) | (~np.isfinite(v) & ~nan_seen.astype(bool))
        reasons = [""] * n
        for i in np.flatnonzero(out.any(axis=1)):
            reasons[i] = ",".join(c for c, f in zip(names, out[i], strict=True) if f)
        return reasons

    def scale(self, frame: pd.DataFrame | Mapping[str, Any]) -> Floats:
        """Noise sd of each order (bps): the conformal unit (:func:`noise_sd_bps`)."""
        r = frame["timing_risk_bps"] if "timing_risk_bps" in frame \
            else np.full(len(frame), np.nan)
        return noise_sd_bps(r, self.noise_floor_bps, fill_bps=self.risk_fill_bps)

    def predict(self, frame: pd.DataFrame) -> tuple[Floats, Floats, Floats]:
        """``(mean, lo, hi)`` in bps on feature rows."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"the cost model needs feature column(s) {missing}")
        return self._predict(_matrix(frame, self.features), self.scale(frame))

    def _predict(self, x: NDArray[np.float32], sc: Floats) -> tuple[Floats, Floats, Floats]:
        # in-place prediction: no DMatrix, the same trees and the same numbers
        mean = self.mean.inplace_predict(x, missing=np.nan).astype(np.float64)
        q = np.sort(self.quantile.inplace_predict(x, missing=np.nan).astype(np.float64)
                    .reshape(len(x), -1), axis=1)
        if self.quantile_scaled:
            q = q * sc[:, None]
        m = self.margin * sc
        return mean, q[:, 0] - m, q[:, -1] + m

    def features_of(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Model inputs of raw serving rows (checked), with the training run's configuration."""
        return features_from_state(check_serving_rows(rows), config=self.feature_config,
                                   calibrations=self.calibrations)

    def predict_raw(self, rows: pd.DataFrame) -> pd.DataFrame:
        """:data:`SERVING_OUTPUTS` of raw rows of order + market state (:data:`SERVING_INPUTS`).

        The features come from :func:`models.features.feature_columns` (what
        :meth:`features_of` frames), kept as arrays: one order costs a few milliseconds."""
        feats = feature_columns(_checked_columns(rows), config=self.feature_config,
                                calibrations=self.calibrations)
        x = np.column_stack([feats[c] for c in self.features]).astype(np.float32)
        sc = self.scale(feats)
        mean, lo, hi = self._predict(x, sc)
        reason = self.outside_domain(feats)
        return pd.DataFrame({"mean_bps": mean, "p10_bps": lo, "p90_bps": hi,
                             "noise_sd_bps": sc,
                             "in_domain": [r == "" for r in reason],
                             "domain_reason": reason}, index=rows.index)

    def save(self, folder: str | Path) -> Path:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        self.mean.save_model(str(out / "mean.json"))
        self.quantile.save_model(str(out / "quantile.json"))
        cal = None if self.calibrations is None else json.loads(
            self.calibrations.model_dump_json())
        (out / "bundle.json").write_text(json.dumps({
            "format": BUNDLE_FORMAT, "features": self.features, "margin": self.margin,
            "noise_floor_bps": self.noise_floor_bps,
            "quantile_scaled": self.quantile_scaled,
            "domain": {k: list(v) for k, v in self.domain.items()},
            "risk_fill_bps": self.risk_fill_bps,
            "feature_config": json.loads(self.feature_config.model_dump_json()),
            "calibrations": cal}, indent=2))
        return out

    @classmethod
    def load(cls, folder: str | Path) -> CostModelBundle:
        f = Path(folder)
        if not (f / "bundle.json").is_file():
            raise FileNotFoundError(f"{f}: no bundle.json; not a saved cost model")
        meta = json.loads((f / "bundle.json").read_text())
        if meta.get("format", 1) > BUNDLE_FORMAT:
            raise ValueError(f"{f}: bundle format {meta['format']} is newer than this code "
                             f"reads ({BUNDLE_FORMAT}); upgrade bestex to load it")
        mean, quant = xgb.Booster(), xgb.Booster()
        mean.load_model(str(f / "mean.json"))
        quant.load_model(str(f / "quantile.json"))
        cfg, cal = meta.get("feature_config"), meta.get("calibrations")
        return cls(mean, quant, meta["features"], meta["margin"], meta["noise_floor_bps"],
                   quantile_scaled=meta.get("quantile_scaled", False),
                   domain=meta.get("domain"), risk_fill_bps=meta.get("risk_fill_bps"),
                   feature_config=None if cfg is None else FeatureConfig.model_validate(cfg),
                   calibrations=None if cal is None
                   else ParametricCalibrations.model_validate(cal))
