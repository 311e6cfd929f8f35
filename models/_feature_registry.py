"""The feature registry: every column :func:`models.features.build_features` writes, with its
group, sources, lookback, unit and meaning, and the windows and thresholds that compute them.

Pure data: no computation here, so the registry can be rendered into docs and MLflow runs and
read by a serving consumer without loading the as-of join machinery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

_STRATEGIES: Final = ("twap", "vwap", "pov", "almgren_chriss", "is_urgency")
REGIME_LABELS: Final = ("calm", "volatile", "crisis")
"""States of the regime HMM, calm to crisis (``models.regimes.DEFAULT_LABELS``): the
``regime_p_<label>`` features."""
NS_MIN: Final = 60_000_000_000
NS_DAY: Final = 86_400_000_000_000
NAT: Final = np.iinfo(np.int64).min
MINUTES_PER_DAY: Final = 390.0


class FeatureConfig(BaseModel):
    """Windows and thresholds of :func:`build_features` (frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calendar: str = "XNYS"  # an exchange_calendars name, or "24/7" (UTC days)
    adv_window_sessions: int = Field(20, ge=1)
    mdv_window_sessions: int = Field(250, ge=1)  # the symbol's normal volume: a year's median
    vol_window_sessions: int = Field(20, ge=2)
    rv_window_min: float = Field(30.0, gt=0)
    rv_min_coverage_min: float = Field(1.0, gt=0)
    intensity_window_min: float = Field(15.0, gt=0)
    min_intensity_coverage_min: float = Field(0.5, gt=0)
    profile_sessions: int = Field(20, ge=1)
    profile_buckets: int = Field(78, ge=1)
    baseline_sessions: int = Field(20, ge=1)
    depth_levels: int = Field(5, ge=1)
    regime_names: tuple[str, ...] = ("calm", "volatile", "crisis")
    regime_thresholds: tuple[float, ...] = (1.0, 1.7)
    turnover: float = Field(200.0, gt=0)  # shares_outstanding fallback: turnover * adv
    net_of_half_spread: bool = True
    seen_vol_blend_min: float = Field(60.0, gt=0)  # weight of today's RV: m / (m + this)
    impact_beta: float = Field(0.6, gt=0)  # ATHL's published temporary-impact exponent
    # the walk-forward HMM of models.regimes behind regime_p_<label> (market level)
    regime_hmm_min_train: int = Field(20, ge=1)  # sessions before the first model
    regime_hmm_refit_every: int = Field(5, ge=1)  # sessions between refits
    regime_hmm_restarts: int = Field(4, ge=1)
    regime_hmm_seed: int = 0


# =========================================================================== registry
@dataclass(frozen=True)
class FeatureSpec:
    """One output column: its group, the tables it reads, how far back, what it means."""

    name: str
    group: str
    sources: tuple[str, ...]
    lookback: str
    description: str
    model_input: bool = True


def _specs(group: str, sources: tuple[str, ...], lookback: str,
           cols: Sequence[tuple[str, str] | tuple[str, str, bool]]) -> list[FeatureSpec]:
    return [FeatureSpec(c[0], group, sources, lookback, c[1], *c[2:]) for c in cols]


FEATURES: Final[tuple[FeatureSpec, ...]] = tuple([
    *_specs("order", ("parent_orders", "calendar"), "none", [
        ("side", "+1 buy, -1 sell"),
        ("qty", "order size, shares", False),
        ("duration_min", "end_ts - decision_ts, minutes"),
        ("duration_days", "duration_min / minutes of the decision's session"),
        ("time_of_day", "minutes since the session open", False),
        ("session_frac", "time_of_day / minutes of the session: 0 at the open, 1 at the close"),
        ("time_to_close_min", "minutes to the session close"),
        ("day_of_week", "0 = Monday of the session date"),
    ]),
    *_specs("daily", ("daily_bars",), "{adv_window_sessions} sessions", [
        ("adv", "mean daily volume of the last bars known (earlier sessions), shares", False),
        ("sigma_daily", "std of daily log close returns, last {vol_window_sessions} known"),
        ("pct_adv", "qty / adv"),
        ("adv_turnover", "adv / shares_outstanding: the share of the float traded a day (ATHL's "
                         "inverse Theta / ADV; 1 / turnover where shares_outstanding is unknown)"),
    ]),
    *_specs("mdv", ("daily_bars",), "{mdv_window_sessions} sessions", [
        ("mdv", "median daily volume of the last bars known (earlier sessions), shares: the "
                "symbol's normal volume, robust to a stress spell's spikes", False),
        ("pct_mdv", "qty / mdv (mdv unknown: adv)"),
    ]),
    *_specs("l1", ("quotes",), "last quote", [
        ("arrival_mid", "mid of the last quote known", False),
        ("arrival_spread_bps", "(ask - bid) / mid, bps, last quote known"),
        ("l1_imbalance", "(bid_sz - ask_sz) / (bid_sz + ask_sz), last quote known"),
        ("l1_imbalance_signed", "side * l1_imbalance"),
        ("quote_age_s", "decision_ts - ts of the last quote known, seconds"),
    ]),
    *_specs("touch", ("quotes",), "last quote", [
        ("touch_bid_sz", "bid size at the touch, last quote known, shares", False),
        ("touch_ask_sz", "ask size at the touch, last quote known, shares", False),
        ("qty_over_touch_depth", "qty / size at the touch on the side the order takes (ask "
                                 "for a buy)"),
    ]),
    *_specs("tick", ("quotes",), "every quote known", [
        ("tick_size", "smallest price increment seen: min over the symbol's known quotes of "
                      "the positive bid and ask changes and spreads (9 significant digits)",
         False),
        ("arrival_spread_ticks", "arrival spread / tick_size (1 = a one-tick market)"),
    ]),
    *_specs("rv", ("quotes",), "{rv_window_min:g} min", [
        ("rv_intraday", "realized vol of mid log returns in the window, daily units "
                        "(sqrt(sum r^2 / minutes covered * 390)); NaN under the min coverage"),
    ]),
    *_specs("session_vol", ("quotes",), "previous session + today", [
        ("rv_prev_session", "realized vol of 1-minute mid log returns over the symbol's "
                            "previous session, daily units (sqrt(sum r^2 * 390 / minutes))"),
        ("rv_open", "the same from today's first quote to the decision (NaN under 5 minutes)"),
        ("sigma_seen", "sqrt(w rv_open^2 + (1 - w) rv_prev_session^2), "
                       "w = m / (m + {seen_vol_blend_min:g}), m minutes since today's first "
                       "quote: the volatility the market has seen"),
        ("sigma_horizon_bps", "sigma_seen * sqrt(duration_days) * 1e4: the volatility over "
                              "the order's horizon"),
    ]),
    *_specs("trades", ("trades",), "{intensity_window_min:g} min", [
        ("trade_intensity", "trades per minute in the window (minutes inside the session)",
         False),
        ("trade_imbalance", "sum(aggressor * qty) / sum(qty) in the window"),
        ("trade_imbalance_signed", "side * trade_imbalance"),
    ]),
    *_specs("intensity_base", ("trades",),
            "{baseline_sessions} sessions (else the session so far)", [
        ("trade_intensity_base", "trades per session minute over the symbol's earlier sessions "
                                 "fully known (the last {baseline_sessions}); without one, "
                                 "from today's open to the decision", False),
        ("trade_intensity_rel", "trade_intensity / trade_intensity_base"),
    ]),
    *_specs("profile", ("trades", "daily_bars"), "{profile_sessions} sessions", [
        ("expected_volume", "adv * share of the day's volume in [decision, end] (intraday "
                            "profile of earlier sessions; uniform without history)", False),
        ("implied_participation", "qty / expected_volume"),
    ]),
    *_specs("regime", ("quotes", "regimes"),
            "{rv_window_min:g} min + {baseline_sessions} sessions", [
        ("vol_ratio", "rv_intraday (else previous session's) / median session vol of "
                      "earlier sessions"),
        ("regime_known", "regime as known at d (vol_ratio classified, or the regimes table)",
         False),
        ("regime_code", "index of regime_known in regime_names (NaN unknown)"),
    ]),
    *_specs("regime_hmm", ("daily_bars", "quotes"),
            "every earlier session (first model after {regime_hmm_min_train})", [
        (f"regime_p_{k}", f"P(regime of the decision's session = {k}): the walk-forward HMM's "
                          "filter through the previous session, one step ahead (NaN before "
                          "the first model)") for k in REGIME_LABELS
    ] + [
        ("regime_hmm_code", "index of the most probable regime_p_<label> (0 calm, 1 volatile, "
                            "2 crisis; NaN before the first model): the band's conformal group",
         False),
    ]),
    *_specs("plan", ("parent_orders",), "none (the schedule fixed at the decision)", [
        *((f"strategy_{k}", f"1 if the order is worked {k}, else 0") for k in _STRATEGIES),
        ("plan_n_children", "child orders planned (NaN without a plan)"),
        ("plan_passive_share", "share of the quantity planned as passive children"),
        ("plan_front_load", "quantity-weighted child time / order window (0.5 = even)"),
        ("plan_timing_var_days", "sum_kl w_k w_l min(tau_k, tau_l), session-days: timing "
                                 "variance per unit daily variance"),
        ("plan_rate_shape", "sum over marketable children of w_k (w_k / slot_k)^beta"),
        ("spread_cost_bps", "arrival_spread_bps / 2 * (1 - 2 plan_passive_share): the spread "
                            "crossed minus the spread earned"),
        ("timing_risk_bps", "sigma_seen * sqrt(plan_timing_var_days) * 1e4: sd of the "
                            "arrival-to-fill mid move"),
        ("temp_impact_shape_bps", "sigma_seen * pct_mdv^{impact_beta:g} * plan_rate_shape * "
                                  "1e4 (ATHL temporary term without eta, size in the normal "
                                  "daily volume)"),
        ("perm_impact_shape_bps", "sigma_seen * pct_mdv * 1e4 (permanent term without gamma)"),
    ]),
    *_specs("depth", ("depth",), "last snapshot", [
        ("depth_bid", "bid size over the top depth_levels levels, shares (NaN without depth)",
         False),
        ("depth_ask", "ask size over the top depth_levels levels, shares", False),
        ("depth_imbalance", "(depth_bid - depth_ask) / (depth_bid + depth_ask)"),
        ("qty_over_depth", "qty / depth on the side the order takes (ask for a buy)"),
    ]),
    *_specs("parametric", ("labels_history", "daily_bars"), "labels known before the day", [
        ("shares_outstanding", "from the orders, else turnover * adv", False),
        ("sqrt_pred_bps", "square-root law calibrated on earlier orders"),
        ("athl_pred_bps", "ATHL calibrated on earlier orders"),
    ]),
])

MODEL_FEATURES: Final[tuple[str, ...]] = tuple(f.name for f in FEATURES if f.model_input)
"""Numeric columns meant as cost-model inputs (``regime_code`` stands for ``regime_known``)."""


_BPS = "bps"
_VOL = "daily vol units"
UNITS: Final[dict[str, str]] = {
    "side": "+1 / -1", "qty": "shares", "duration_min": "min", "duration_days": "sessions",
    "time_of_day": "min", "session_frac": "fraction of session", "time_to_close_min": "min",
    "day_of_week": "0-6", "adv": "shares/day", "sigma_daily": "daily log-return sd",
    "pct_adv": "fraction of ADV", "adv_turnover": "fraction of shares outstanding / day",
    "mdv": "shares/day", "pct_mdv": "fraction of median daily volume",
    "touch_bid_sz": "shares", "touch_ask_sz": "shares",
    "qty_over_touch_depth": "fraction of touch depth", "tick_size": "currency",
    "arrival_spread_ticks": "ticks", "sigma_horizon_bps": _BPS,
    "trade_intensity_base": "trades/min", "trade_intensity_rel": "ratio",
    **{f"regime_p_{k}": "probability" for k in REGIME_LABELS},
    "regime_hmm_code": "0-2",
    "arrival_mid": "currency", "arrival_spread_bps": _BPS, "l1_imbalance": "[-1, 1]",
    "l1_imbalance_signed": "[-1, 1]", "quote_age_s": "s", "rv_intraday": _VOL,
    "rv_prev_session": _VOL, "rv_open": _VOL, "sigma_seen": _VOL,
    "trade_intensity": "trades/min", "trade_imbalance": "[-1, 1]",
    "trade_imbalance_signed": "[-1, 1]", "expected_volume": "shares",
    "implied_participation": "fraction of volume", "vol_ratio": "ratio",
    "regime_known": "label", "regime_code": "index", "plan_n_children": "count",
    "plan_passive_share": "fraction", "plan_front_load": "fraction of window",
    "plan_timing_var_days": "sessions", "plan_rate_shape": "dimensionless",
    "spread_cost_bps": _BPS, "timing_risk_bps": _BPS, "temp_impact_shape_bps": _BPS,
    "perm_impact_shape_bps": _BPS, "depth_bid": "shares", "depth_ask": "shares",
    "depth_imbalance": "[-1, 1]", "qty_over_depth": "fraction of depth",
    "shares_outstanding": "shares", "sqrt_pred_bps": _BPS, "athl_pred_bps": _BPS,
    **{f"strategy_{k}": "0/1" for k in _STRATEGIES},
}
"""The unit of each feature column."""


def feature_table(config: FeatureConfig | None = None) -> pd.DataFrame:
    """The registry as a table: ``name, group, unit, sources, lookback, description,
    model_input``."""
    cfg = (config or FeatureConfig()).model_dump()
    return pd.DataFrame([{
        "name": f.name, "group": f.group, "unit": UNITS.get(f.name, ""),
        "sources": ", ".join(f.sources), "lookback": f.lookback.format(**cfg),
        "description": f.description.format(**cfg), "model_input": f.model_input}
        for f in FEATURES])



KNOWN_AT: Final = {
    "order": "decision_ts (the desk's own order)",
    "plan": "decision_ts (the schedule fixed at the decision)",
    "l1": "available_at of the last quote <= decision_ts",
    "depth": "available_at of the last book update <= decision_ts",
    "trades": "available_at of the trades <= decision_ts",
    "rv": "available_at of the quotes <= decision_ts",
    "session_vol": "available_at of the quotes <= decision_ts",
    "touch": "available_at of the last quote <= decision_ts",
    "tick": "available_at of the quotes <= decision_ts",
    "intensity_base": "available_at of the trades <= decision_ts (earlier sessions: their last "
                      "trade)",
    "regime_hmm": "close of the previous session (available_at of its regime inputs: daily "
                  "bar and last quote); the HMM refit on sessions before it",
    "profile": "closes of earlier sessions (available_at of their bars)",
    "daily": "closes of earlier sessions (available_at of their bars)",
    "mdv": "closes of earlier sessions (available_at of their bars)",
    "regime": "available_at of the regime row / quotes <= decision_ts",
    "parametric": "fitted_through_ts of the calibration (labels known before the decision)",
}
"""When each feature group becomes known (its knowledge time); the leakage checks
(``knowledge_before_decision``, ``truncation_test``) hold every row to it."""


def feature_dictionary_markdown(config: FeatureConfig | None = None) -> str:
    """The feature dictionary as the markdown of ``docs/features.md`` (name, unit, sources,
    lookback, knowledge time, model input, description); a test keeps the file equal to it."""
    from models.cost_training import model_features  # the trained model's inputs (call time)

    t = feature_table(config)
    inputs = set(model_features(pd.DataFrame(columns=t["name"])))
    lines = [
        "# Feature dictionary",
        "",
        "Generated from the registry (`models/_feature_registry.py`): "
        "`.venv/bin/python -c \"from models._feature_registry import feature_dictionary_markdown"
        " as f; print(f(), end='')\" > docs/features.md`. The same table is logged on every "
        "training run in MLflow (`features/feature_dictionary.csv`).",
        "",
        "| name | group | unit | sources | lookback | known at | model input | description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in t.itertuples(index=False):
        desc = str(r.description).replace("|", "\\|")
        lines.append(f"| `{r.name}` | {r.group} | {r.unit} | {r.sources} | {r.lookback} | "
                     f"{KNOWN_AT.get(r.group, '')} | {'yes' if r.name in inputs else 'no'} | {desc} |")
    return "\n".join(lines) + "\n"
