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

Both say, per order, whether it is inside the training domain and why not
(:meth:`CostModelBundle.domain_reasons`); outside it the band widens by the out-of-domain margin
fitted on training rows, and where the trees are not trusted (a size, volatility or spread
feature outside, or many features) the venue's square-root law prices the order, recorded in
``fallback`` (:mod:`models._domain` holds the rules; :meth:`CostModelBundle.predict_frame`).

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

from models._domain import (
    FALLBACK_FEATURES,
    FALLBACK_MAX_OUTSIDE,
    fallback_rows,
    margins_of,
    outside_matrix,
    physics_cost_bps,
    reasons_of,
    venue_names,
)
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

BUNDLE_FORMAT: Final = 4
"""Version of ``bundle.json``: 2 added the standardized quantile booster, the training domain
and the risk fill; 3 the feature configuration and the parametric calibrations (what serving on
raw rows needs); 4 the out-of-domain margin, the per-group (regime) margins and the per-venue
physics fallbacks (absent in older bundles: they predict as before). A loader refuses a newer
format than it knows (it would misread the band)."""


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
    _col("mdv", "double", False, "shares/day",
         "median daily volume of the last 250 known sessions (else adv)"),
    _col("sigma_daily", "double", True, "daily log-return sd",
         "sd of daily log close returns, last 20 known sessions"),
    _col("l1_imbalance", "double", False, "[-1, 1]", "(bid_sz - ask_sz) / (bid_sz + ask_sz)"),
    _col("quote_age_s", "double", False, "s", "decision_ts - ts of the last quote"),
    _col("touch_bid_sz", "double", False, "shares", "bid size at the touch, last quote"),
    _col("touch_ask_sz", "double", False, "shares", "ask size at the touch, last quote"),
    _col("tick_size", "double", False, "currency", "the symbol's price increment"),
    _col("rv_intraday", "double", False, "daily vol units", "realized vol, last 30 min"),
    _col("rv_prev_session", "double", False, "daily vol units",
         "1-minute realized vol of the previous session"),
    _col("rv_open", "double", False, "daily vol units", "the same from today's open"),
    _col("sigma_seen", "double", False, "daily vol units",
         "volatility the market has seen (blend of the two above)"),
    _col("trade_intensity", "double", False, "trades/min", "trades per minute, last 15 min"),
    _col("trade_intensity_base", "double", False, "trades/min",
         "trades per session minute over the last 20 known sessions"),
    _col("trade_imbalance", "double", False, "[-1, 1]",
         "sum(aggressor * qty) / sum(qty), last 15 min"),
    _col("expected_volume", "double", False, "shares",
         "volume expected in [decision_ts, end_ts] from the intraday profile"),
    _col("vol_ratio", "double", False, "ratio", "recent vol / median session vol"),
    _col("regime_known", "string", False, "calm|volatile|crisis", "regime as known at decision"),
    *(_col(f"regime_p_{k}", "double", False, "probability",
           f"P(session regime = {k}), the regime HMM's filter (models.regimes)")
      for k in ("calm", "volatile", "crisis")),
    _col("depth_bid", "double", False, "shares", "bid size over the top 5 levels"),
    _col("depth_ask", "double", False, "shares", "ask size over the top 5 levels"),
    _col("strategy", "string", False, "", "twap|vwap|pov|almgren_chriss|is_urgency"),
    *(_col(c, "double", False, "", "plan summary (models.desk_history.plan_summary)")
      for c in PLAN_INPUTS[1:]),
    _col("shares_outstanding", "double", False, "shares", "else 200 x adv"),
    _col("sqrt_pred_bps", "double", False, "bps",
         "desk's square-root estimate; else the model's own calibration"),
    _col("athl_pred_bps", "double", False, "bps", "desk's ATHL estimate; else the model's own"),
    _col("venue", "string", False, "", "execution venue (e.g. LOBSTER, BitMEX): its physics "
         "fallback prices orders the learned model is not trusted on"),
)
"""The registered model's input: one row per parent order with the market state known at its
decision. Optional columns may be absent or NaN (the domain flag says when that is outside the
training data)."""

SERVING_OUTPUTS: Final = ("mean_bps", "p10_bps", "p90_bps", "noise_sd_bps", "in_domain",
                          "domain_reason", "fallback")
"""Expected cost, the conformal 80% band, the order's noise sd, the training-domain flag with
its reason ('' inside), and the fallback that priced the order ('' = the learned model; e.g.
``"sqrt:BitMEX"``)."""

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


class CostModelBundle:
    """A trained cost model as it is deployed: mean and quantile boosters, the conformal margin.

    ``predict(frame) -> (mean, lo, hi)`` in bps: the mean model, and the 80% band of the
    quantile model widened by ``margin`` times each order's noise scale
    ``sqrt(timing_risk_bps^2 + noise_floor_bps^2)`` (the scaled conformal calibration of the
    training run). With ``quantile_scaled`` the quantile booster predicts the standardized cost
    (:meth:`QuantileCostModel.fit` with ``scale``) and its outputs are multiplied by the same
    noise scale.

    Out of domain (all optional; without them the bundle predicts as format 3 did):

    * ``group_feature``, ``group_margins``: the margin of the row's group (Mondrian conformal,
      e.g. per ``regime_code``); unknown or missing groups get ``margin``;
    * ``ood_margin``: the margin of rows outside the training domain; with groups, such a row
      gets its group's margin plus ``ood_margin - margin``
      (:func:`models._domain.calibrate_ood_margin`);
    * ``venue_calibrations``: ``{venue: square-root law}``; a row outside the domain in a way the
      trees are not trusted on (:func:`models._domain.fallback_rows`: one of
      ``fallback_features`` outside, or more than ``fallback_max_outside`` features) whose
      ``venue`` column has a calibration is priced by the law: the mean is the law's, the band
      is the learned band moved onto it (widened by ``ood_margin``), and at least the law's own
      band ``law +- band_sd * scale``.
    """

    def __init__(self, mean: xgb.Booster, quantile: xgb.Booster, features: Sequence[str],
                 margin: float, noise_floor_bps: float, *, quantile_scaled: bool = False,
                 domain: Mapping[str, Sequence[float | bool]] | None = None,
                 risk_fill_bps: float | None = None,
                 feature_config: FeatureConfig | None = None,
                 calibrations: ParametricCalibrations | None = None,
                 ood_margin: float | None = None, group_feature: str | None = None,
                 group_margins: Mapping[float, float] | None = None,
                 venue_calibrations: Mapping[str, Mapping[str, Any]] | None = None,
                 fallback_features: Sequence[str] = FALLBACK_FEATURES,
                 fallback_max_outside: int = FALLBACK_MAX_OUTSIDE) -> None:
        self.mean, self.quantile = mean, quantile
        self.features = list(features)
        self.margin, self.noise_floor_bps = float(margin), float(noise_floor_bps)
        self.quantile_scaled = bool(quantile_scaled)
        self.risk_fill_bps = None if risk_fill_bps is None else float(risk_fill_bps)
        self.domain = {k: (float(v[0]), float(v[1]), bool(v[2]))
                       for k, v in (domain or {}).items()}
        self.feature_config = feature_config or FeatureConfig()
        self.calibrations = calibrations
        self.ood_margin = None if ood_margin is None else float(ood_margin)
        self.group_feature = group_feature
        self.group_margins = {float(k): float(v) for k, v in (group_margins or {}).items()}
        self.venue_calibrations = {str(k): dict(v) for k, v in (venue_calibrations or {}).items()}
        self.fallback_features = tuple(fallback_features)
        self.fallback_max_outside = int(fallback_max_outside)

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
        names, _, out = outside_matrix(frame, self.domain)
        reasons = [""] * len(out)
        for i in np.flatnonzero(out.any(axis=1)) if out.size else ():
            reasons[i] = ",".join(c for c, f in zip(names, out[i], strict=True) if f)
        return reasons

    def domain_reasons(self, frame: pd.DataFrame | Mapping[str, Any]) -> list[str]:
        """Per row, why it is outside the training domain ('' inside), e.g.
        ``"pct_adv=0.031 > 0.0124 (training 99.5%); sigma_seen missing (never missing in
        training)"`` (:func:`models._domain.domain_reasons`)."""
        return reasons_of(*outside_matrix(frame, self.domain), self.domain)

    def scale(self, frame: pd.DataFrame | Mapping[str, Any]) -> Floats:
        """Noise sd of each order (bps): the conformal unit (:func:`noise_sd_bps`)."""
        r = frame["timing_risk_bps"] if "timing_risk_bps" in frame \
            else np.full(len(frame), np.nan)
        return noise_sd_bps(r, self.noise_floor_bps, fill_bps=self.risk_fill_bps)

    @property
    def out_of_domain_rules(self) -> bool:
        """Whether any out-of-domain piece is set (else the band is format 3's exactly)."""
        return (self.ood_margin is not None or bool(self.group_margins)
                or bool(self.venue_calibrations))

    def predict(self, frame: pd.DataFrame) -> tuple[Floats, Floats, Floats]:
        """``(mean, lo, hi)`` in bps on feature rows: :meth:`predict_frame`'s numbers."""
        x, sc = self._inputs(frame)
        if not self.out_of_domain_rules:
            return self._predict(x, sc)
        out = self._outputs(x, sc, frame, reasons=False)
        return out["mean_bps"], out["p10_bps"], out["p90_bps"]

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per feature row: ``mean_bps, p10_bps, p90_bps, noise_sd_bps, in_domain,
        domain_reason, fallback`` (:data:`SERVING_OUTPUTS`), with ``frame``'s index. An optional
        ``venue`` column selects the venue's physics fallback."""
        x, sc = self._inputs(frame)
        return pd.DataFrame(self._outputs(x, sc, frame, reasons=True), index=frame.index)

    def _inputs(self, frame: pd.DataFrame) -> tuple[NDArray[np.float32], Floats]:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"the cost model needs feature column(s) {missing}")
        return _matrix(frame, self.features), self.scale(frame)

    def _predict(self, x: NDArray[np.float32], sc: Floats) -> tuple[Floats, Floats, Floats]:
        mean, q = self._boosters(x, sc)
        m = self.margin * sc
        return mean, q[:, 0] - m, q[:, -1] + m

    def _boosters(self, x: NDArray[np.float32], sc: Floats) -> tuple[Floats, Floats]:
        # in-place prediction: no DMatrix, the same trees and the same numbers
        mean = self.mean.inplace_predict(x, missing=np.nan).astype(np.float64)
        q = np.sort(self.quantile.inplace_predict(x, missing=np.nan).astype(np.float64)
                    .reshape(len(x), -1), axis=1)
        if self.quantile_scaled:
            q = q * sc[:, None]
        return mean, q

    def _outputs(self, x: NDArray[np.float32], sc: Floats,
                 cols: pd.DataFrame | Mapping[str, Any], *, reasons: bool) -> dict[str, Any]:
        """The :data:`SERVING_OUTPUTS` columns (``domain_reason`` only with ``reasons``)."""
        n = len(x)
        names, v, out = outside_matrix(cols, self.domain)
        outside = out.any(axis=1) if out.size else np.zeros(n, bool)
        fallback = [""] * n
        if not self.out_of_domain_rules:
            mean, lo, hi = self._predict(x, sc)
        else:
            mean, q = self._boosters(x, sc)
            m = margins_of(cols, self.margin, self.group_feature, self.group_margins)
            if self.ood_margin is not None:  # the out-of-domain increment on the row's own
                m = np.where(outside, m + (self.ood_margin - self.margin), m)
            lo, hi = q[:, 0] - m * sc, q[:, -1] + m * sc
            if self.venue_calibrations and "venue" in cols and outside.any():
                self._fall_back(cols, names, out, sc, mean, lo, hi, fallback)
        res: dict[str, Any] = {"mean_bps": mean, "p10_bps": lo, "p90_bps": hi,
                               "noise_sd_bps": sc, "in_domain": ~outside}
        if reasons:
            res["domain_reason"] = reasons_of(names, v, out, self.domain)
        res["fallback"] = fallback
        return res

    def _fall_back(self, cols: pd.DataFrame | Mapping[str, Any], names: list[str],
                   out: NDArray[np.bool_], sc: Floats, mean: Floats, lo: Floats, hi: Floats,
                   fallback: list[str]) -> None:
        """Price the untrusted rows of a calibrated venue by its law, in place."""
        cand = fallback_rows(names, out, features=self.fallback_features,
                             max_outside=self.fallback_max_outside)
        if not cand.any():
            return
        venue = venue_names(cols["venue"])
        for name, cal in self.venue_calibrations.items():
            if not cal.get("used", True):  # the learned model prices this venue better
                continue
            rows = cand & (venue == name)
            if not rows.any():
                continue
            law = physics_cost_bps(cal, cols)
            rows &= np.isfinite(law)
            shift = law[rows] - mean[rows]
            band = float(cal.get("band_sd", 0.0)) * sc[rows]
            lo[rows] = np.minimum(lo[rows] + shift, law[rows] - band)
            hi[rows] = np.maximum(hi[rows] + shift, law[rows] + band)
            mean[rows] = law[rows]
            for i in np.flatnonzero(rows):
                fallback[i] = f"{cal.get('law', 'sqrt')}:{name}"

    def features_of(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Model inputs of raw serving rows (checked), with the training run's configuration."""
        return features_from_state(check_serving_rows(rows), config=self.feature_config,
                                   calibrations=self.calibrations)

    def predict_raw(self, rows: pd.DataFrame) -> pd.DataFrame:
        """:data:`SERVING_OUTPUTS` of raw rows of order + market state (:data:`SERVING_INPUTS`).

        The features come from :func:`models.features.feature_columns` (what
        :meth:`features_of` frames), kept as arrays: one order costs a few milliseconds."""
        cols = _checked_columns(rows)
        feats = feature_columns(cols, config=self.feature_config,
                                calibrations=self.calibrations)
        if "venue" in cols:
            feats["venue"] = cols["venue"]
        x = np.column_stack([feats[c] for c in self.features]).astype(np.float32)
        sc = self.scale(feats)
        return pd.DataFrame(self._outputs(x, sc, feats, reasons=True), index=rows.index)

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
            "calibrations": cal, "ood_margin": self.ood_margin,
            "group_feature": self.group_feature,
            "group_margins": {repr(k): v for k, v in self.group_margins.items()},
            "venue_calibrations": self.venue_calibrations,
            "fallback_features": list(self.fallback_features),
            "fallback_max_outside": self.fallback_max_outside}, indent=2))
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
                   else ParametricCalibrations.model_validate(cal),
                   ood_margin=meta.get("ood_margin"), group_feature=meta.get("group_feature"),
                   group_margins={float(k): v
                                  for k, v in (meta.get("group_margins") or {}).items()},
                   venue_calibrations=meta.get("venue_calibrations"),
                   fallback_features=meta.get("fallback_features", FALLBACK_FEATURES),
                   fallback_max_outside=meta.get("fallback_max_outside",
                                                 FALLBACK_MAX_OUTSIDE))
