r"""Features known at decision time: registry, point-in-time as-of joins, parametric estimates.

The central rule (BRIEF.md, "Time, knowledge and leakage"): a feature for a decision at time ``d``
may use only records with ``available_at <= d``. Every as-of lookup here is the per-symbol
equivalent of::

    pd.merge_asof(orders.sort_values("decision_ts"), table.sort_values("available_at"),
                  left_on="decision_ts", right_on="available_at", by="symbol",
                  allow_exact_matches=True, direction="backward")

(``np.searchsorted(available_at, d, side="right")`` inside each symbol; ties on ``available_at``
go to the latest ``ts``), and every window is a window of **knowledge** time ``(d - W, d]`` on
``available_at``. A quote stamped ``ts < d`` that arrived after ``d`` is therefore never used, and a
daily bar (``available_at`` = its session close) never serves a decision taken during its own
session: a decision on day ``d`` sees bars up to ``d - 1``.

Each output row carries ``knowledge_ts``: the latest ``available_at`` of any source record used
for that row (max over all feature groups; ``NaT`` when no record was used). The order's own
fields (``side, qty, decision_ts, end_ts``) are the decision itself and the exchange calendar is
static reference data: neither counts. ``validation.leakage.knowledge_after_decision`` checks
``knowledge_ts <= decision_ts`` row by row, and ``validation.leakage.truncation_test`` recomputes
rows from sources cut at each decision time (every computation here depends only on a prefix, in
knowledge time, of each symbol's records, so the two agree bit for bit).

Training and serving: one derivation
------------------------------------
A feature row is the order (``side, qty, decision_ts, end_ts`` and the desk's plan) plus the
**market state** known at its decision (:data:`STATE_INPUTS`: the last quote's mid, spread and
imbalance, ADV, volatilities, trade intensity, expected volume, the regime ratio, depth). The
as-of joins of :mod:`models._feature_groups` compute the state from the contract tables;
:func:`derive_features` turns order + state into every model input (``pct_adv``, the plan's
physics, the signed imbalances, the calendar columns). :func:`build_features` is the two in a
row, and :func:`features_from_state` is the second alone: what a registered model runs on the
raw rows a consumer sends, so serving and training share one formula for each column.

Layout: the registry (:mod:`models._feature_registry`), time and sessions
(:mod:`models._feature_time`), the as-of joins (:mod:`models._feature_groups`, with the touch,
tick and intensity baseline in :mod:`models._feature_scale` and the regime HMM's probabilities
in :mod:`models._feature_regime`) and the parametric fits (:mod:`models._feature_parametric`)
are private modules re-exported here.

Units that transfer: share, currency and per-minute figures (``qty``, ``adv``, depth, ticks,
``trade_intensity``, ``time_of_day``) are not model inputs (``model_input=False``), only their
ratios are (size in ADV, shares outstanding and depth, the spread in ticks, ...).

Feature registry
----------------
:data:`FEATURES` lists every output column with its ``sources``, ``lookback`` (at the default
:class:`FeatureConfig`) and meaning; :func:`feature_table` renders it as a DataFrame and
:data:`MODEL_FEATURES` names the numeric columns meant as model inputs. Columns are computed by
groups (:data:`GROUPS`), each a vectorized function over all orders (per-symbol
``searchsorted`` and segment-local prefix sums; ~50k orders on ~1-2 M quotes take seconds).

==========================  =====================  =============================================
group (sources)             lookback               columns
==========================  =====================  =============================================
order (parent_orders,       none                   side, qty, duration_min, duration_days,
calendar)                                          time_of_day, session_frac, time_to_close_min,
                                                   day_of_week
daily (daily_bars)          20 sessions            adv, sigma_daily, pct_adv, adv_turnover
mdv (daily_bars)            250 sessions           mdv, pct_mdv
l1 (quotes)                 last quote             arrival_mid, arrival_spread_bps,
                                                   l1_imbalance, l1_imbalance_signed, quote_age_s
touch (quotes)              last quote             touch_bid_sz, touch_ask_sz,
                                                   qty_over_touch_depth
tick (quotes)               every quote known      tick_size, arrival_spread_ticks
rv (quotes)                 30 min                 rv_intraday
session_vol (quotes)        previous session       rv_prev_session, rv_open, sigma_seen,
                            + today                sigma_horizon_bps
trades (trades)             15 min                 trade_intensity, trade_imbalance,
                                                   trade_imbalance_signed
intensity_base (trades)     20 sessions (else      trade_intensity_base, trade_intensity_rel
                            the session so far)
profile (trades,            20 sessions            expected_volume, implied_participation
daily_bars)
regime (quotes | regimes)   30 min + 20 sessions   vol_ratio, regime_known, regime_code
regime_hmm (daily_bars,     every earlier session  regime_p_calm, regime_p_volatile,
quotes)                                            regime_p_crisis, regime_hmm_code
plan (parent_orders:        none (fixed at the     strategy_*, plan_n_children,
strategy, plan_*)           decision)              plan_passive_share, plan_front_load,
                                                   plan_timing_var_days, plan_rate_shape,
                                                   spread_cost_bps, timing_risk_bps,
                                                   temp_impact_shape_bps, perm_impact_shape_bps
depth (depth)               last snapshot          depth_bid, depth_ask, depth_imbalance,
                                                   qty_over_depth
parametric (labels_history  labels known before    shares_outstanding, sqrt_pred_bps,
| calibrations)             the session            athl_pred_bps
==========================  =====================  =============================================

The regime as known at ``d``
----------------------------
The synthetic truth's regime of session ``d`` is not known at ``d``. ``regime_known`` classifies
``vol_ratio``, the symbol's realized volatility over the last 30 minutes (``rv_intraday``; the
previous session's when the window holds less than ``rv_min_coverage_min`` of quotes) over its
median session volatility of the 20 earlier sessions, with thresholds ``regime_thresholds``
into ``regime_names``. The defaults (1.0 and 1.7) sit between the medians of ``vol_ratio`` per
true regime on a 60-session synthetic market (calm 0.85, volatile 1.15, crisis 2.43: the
quote-level estimator carries microstructure noise, and the baseline mixes regimes); there the
classification recovers 69% of calm, 56% of volatile and 92% of crisis orders. It is relative
to the symbol's own recent history: after a long crisis the baseline itself is high. When a
``regimes`` table is given (``available_at, regime`` and optionally ``symbol``: e.g. a regime
detector's output, or the truth's regimes released at each session's close by
:func:`regimes_known_at_close`), ``regime_known`` is its as-of value instead.

Volatility as seen, and the desk's own plan
-------------------------------------------
``sigma_seen`` blends the previous session's 1-minute realized volatility into today's as the
session goes on; it is the volatility liquidity providers have seen, and on the synthetic desk
the impact physics scales with exactly that public quantity
(:func:`models.desk_history.seen_volatility`), while the market's latent daily volatility
drives the timing noise. The ``plan`` group reads what the desk fixed when it decided: the
strategy and a summary of its child schedule (:func:`models.desk_history.plan_summary`), and
combines them with the market state into physics-shaped inputs: the spread the plan crosses,
its timing risk (the sd of the mid's move while it works, which also weighs each order in the
fit and scales the conformal band) and the ATHL temporary and permanent terms without their
coefficients. Orders without a plan get NaN there (XGBoost's missing branch).

Parametric estimates: the fit/apply contract
--------------------------------------------
``sqrt_pred_bps`` (square-root law, ``y`` fitted) and ``athl_pred_bps`` (ATHL, ``gamma, eta,
beta`` fitted) are :func:`models.impact_calibration.calibrate` fits on **earlier** orders:

* :func:`fit_parametric` ``(rows) -> ParametricCalibrations`` fits on training rows (features of
  :func:`build_features` joined with labels, e.g. by :func:`calibration_rows`); the result
  carries ``fitted_through_ts`` = the latest knowledge time (``available_at`` if present, else
  ``t1``) of the rows used. A training loop calls it on the training fold **only** and checks
  ``validation.leakage.calibration_fitted_before(train_end, calibrations)``.
* :func:`apply_parametric` ``(features, calibrations)`` writes the two columns on any rows (test
  fold included) and, by default, folds ``fitted_through_ts`` into ``knowledge_ts`` (so rows
  decided before the calibration's data was known are flagged by the knowledge check).
* Point-in-time mode: ``build_features(..., labels_history=rows)`` refits per decision day on the
  rows known by that day's UTC midnight (``known <= day start <= d``), so each row's estimate
  uses only earlier orders; this is the form to feed back as a feature (a calibration fitted on a
  fold and applied to the same fold's rows would put their own labels into their feature).

Both fit on ``label - arrival_spread_bps / 2`` (``net_of_half_spread=True``, the impact part:
the spread is its own feature), need ``>= 10`` rows (sqrt) / ``>= 30`` rows (ATHL) of finite,
positive inputs, and leave the column NaN where no calibration exists yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd

from models._feature_groups import STATE_GROUPS, MinuteRV, _Ctx, _g_parametric, minute_rv
from models._feature_parametric import (
    ParametricCalibrations,
    _predict,
    apply_parametric,
    calibration_rows,
    fit_parametric,
)
from models._feature_regime import (
    regime_group,
    regime_probability_table,
    regimes_known_at_close,
)
from models._feature_registry import (
    _STRATEGIES,
    FEATURES,
    MODEL_FEATURES,
    NAT,
    NS_DAY,
    NS_MIN,
    REGIME_LABELS,
    FeatureConfig,
    FeatureSpec,
    feature_table,
)
from models._feature_scale import STATE_GROUPS_SCALE
from models._feature_time import _ns, _Sessions, _utc, sessions_around

__all__ = [
    "FEATURES",
    "GROUPS",
    "MODEL_FEATURES",
    "ORDER_INPUTS",
    "PLAN_INPUTS",
    "STATE_INPUTS",
    "FeatureConfig",
    "FeatureSpec",
    "MinuteRV",
    "ParametricCalibrations",
    "apply_parametric",
    "build_features",
    "calibration_rows",
    "derive_features",
    "feature_columns",
    "feature_table",
    "features_from_state",
    "fit_parametric",
    "impact_shapes",
    "minute_rv",
    "point_in_time_features",
    "regime_probability_table",
    "regimes_known_at_close",
]

GROUPS: Final = (*STATE_GROUPS, *STATE_GROUPS_SCALE, "regime_hmm", "parametric")
"""Groups with a knowledge time of their own (``knowledge_ts__<group>``), in computation order."""

ORDER_INPUTS: Final = ("symbol", "side", "qty", "decision_ts", "end_ts")
"""The decision itself (the ``parent_orders`` contract, without ``order_id``)."""
PLAN_INPUTS: Final = ("strategy", "plan_n_children", "plan_passive_share", "plan_front_load",
                      "plan_timing_var_days", "plan_rate_shape")
"""The desk's schedule fixed at the decision (optional: NaN without a plan)."""
STATE_INPUTS: Final = ("adv", "sigma_daily", "arrival_mid", "arrival_spread_bps", "l1_imbalance",
                       "quote_age_s", "rv_intraday", "rv_prev_session", "rv_open", "sigma_seen",
                       "trade_intensity", "trade_imbalance", "expected_volume", "vol_ratio",
                       "regime_known", "depth_bid", "depth_ask", "touch_bid_sz", "touch_ask_sz",
                       "tick_size", "trade_intensity_base", "mdv",
                       *(f"regime_p_{k}" for k in REGIME_LABELS))
"""The market state as known at the decision, written by the as-of joins."""
_ORDER_COLUMNS: Final = ("order_id", "symbol", "side", "qty", "decision_ts", "end_ts")


# =========================================================================== derive
def _derive(cols: dict[str, np.ndarray], *, d: np.ndarray, end: np.ndarray, side: np.ndarray,
            qty: np.ndarray, plan: Mapping[str, np.ndarray], shares_outstanding: np.ndarray,
            sessions: _Sessions, cfg: FeatureConfig) -> None:
    """Write every non-state feature into ``cols`` (which holds the :data:`STATE_INPUTS`)."""
    n = len(d)
    day = d // NS_DAY
    ok, op, cl = sessions.lookup(day)
    dur = (end - d) / NS_MIN
    sess_min = np.where(ok, (cl - op) / NS_MIN, np.nan)
    cols["side"] = side
    cols["qty"] = qty
    cols["duration_min"] = dur
    cols["duration_days"] = dur / sess_min
    cols["time_of_day"] = np.where(ok, (d - op) / NS_MIN, np.nan)
    cols["session_frac"] = cols["time_of_day"] / sess_min
    cols["time_to_close_min"] = np.where(ok, (cl - d) / NS_MIN, np.nan)
    cols["day_of_week"] = ((day + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
    adv = cols["adv"]
    so = np.where(np.isfinite(shares_outstanding) & (shares_outstanding > 0),
                  shares_outstanding, cfg.turnover * adv)
    cols["shares_outstanding"] = so
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["pct_adv"] = np.where(adv > 0, qty / adv, np.nan)
        cols["adv_turnover"] = np.where(so > 0, adv / so, np.nan)
        mdv = np.where(np.isfinite(cols["mdv"]), cols["mdv"], adv)
        cols["pct_mdv"] = np.where(mdv > 0, qty / mdv, np.nan)
        touch = np.where(side > 0, cols["touch_ask_sz"], cols["touch_bid_sz"])
        cols["qty_over_touch_depth"] = np.where(touch > 0, qty / touch, np.nan)
        tick = cols["tick_size"]
        cols["arrival_spread_ticks"] = np.where(
            tick > 0, cols["arrival_spread_bps"] * 1e-4 * cols["arrival_mid"] / tick, np.nan)
        cols["sigma_horizon_bps"] = cols["sigma_seen"] * np.sqrt(cols["duration_days"]) * 1e4
        base = cols["trade_intensity_base"]
        cols["trade_intensity_rel"] = np.where(base > 0, cols["trade_intensity"] / base, np.nan)
        p_regime = np.column_stack([np.asarray(cols[f"regime_p_{k}"], np.float64)
                                    for k in REGIME_LABELS])
        known = np.isfinite(p_regime).all(axis=1)
        cols["regime_hmm_code"] = np.where(
            known, np.argmax(np.where(known[:, None], p_regime, 0.0), axis=1), np.nan)
        cols["l1_imbalance_signed"] = side * cols["l1_imbalance"]
        cols["trade_imbalance_signed"] = side * cols["trade_imbalance"]
        ev = cols["expected_volume"]
        cols["implied_participation"] = np.where(ev > 0, qty / ev, np.nan)
        lut = {name: i for i, name in enumerate(cfg.regime_names)}
        cols["regime_code"] = np.array([lut.get(v, np.nan) if isinstance(v, str) else np.nan
                                        for v in cols["regime_known"]], dtype=np.float64)
        strat = plan.get("strategy")
        for k in _STRATEGIES:
            cols[f"strategy_{k}"] = (np.full(n, np.nan) if strat is None
                                     else (strat == k).astype(np.float64))
        for c in PLAN_INPUTS[1:]:
            cols[c] = plan.get(c, np.full(n, np.nan)).astype(np.float64)
        sig = cols["sigma_seen"]
        cols["spread_cost_bps"] = cols["arrival_spread_bps"] / 2 \
            * (1 - 2 * np.nan_to_num(cols["plan_passive_share"], nan=0.0))
        cols["timing_risk_bps"] = sig * np.sqrt(cols["plan_timing_var_days"]) * 1e4
        cols["temp_impact_shape_bps"], cols["perm_impact_shape_bps"] = impact_shapes(
            sig, cols["pct_mdv"], cols["plan_rate_shape"], cfg.impact_beta)
        bid, ask = cols["depth_bid"], cols["depth_ask"]
        cols["depth_imbalance"] = (bid - ask) / (bid + ask)
        take = np.where(side > 0, ask, bid)
        cols["qty_over_depth"] = np.where(take > 0, qty / take, np.nan)


def impact_shapes(sigma: np.ndarray, pct_mdv: np.ndarray, rate_shape: np.ndarray,
                  beta: float) -> tuple[np.ndarray, np.ndarray]:
    """The impact shape features (bps): ATHL's temporary term without ``eta``,
    ``sigma * pct_mdv^beta * rate_shape * 1e4``, and its permanent term without ``gamma``,
    ``sigma * pct_mdv * 1e4`` (the model learns the coefficients). The size is in the symbol's
    normal (median) daily volume, ``pct_adv`` where that is unknown: a 20-session mean taken
    through a stress spell overstates the volume the book will offer once it is over."""
    return sigma * pct_mdv ** beta * rate_shape * 1e4, sigma * pct_mdv * 1e4


Columns = pd.DataFrame | Mapping[str, Any]
"""Rows as a frame or as a mapping of column name to a 1-d array (the serving path's form:
no frame to index column by column)."""


def _floats(frame: Columns, col: str) -> np.ndarray:
    if col not in frame:
        return np.full(_n_rows(frame), np.nan)
    v = frame[col]
    if v.dtype == np.float64:
        return np.array(v, dtype=np.float64, copy=True)
    if isinstance(v, pd.Series):
        return pd.to_numeric(v, errors="raise").to_numpy(np.float64, na_value=np.nan)
    return np.asarray(pd.to_numeric(pd.Series(v), errors="raise").to_numpy(
        np.float64, na_value=np.nan))


def _n_rows(frame: Columns) -> int:
    return len(frame) if isinstance(frame, pd.DataFrame) else len(frame["decision_ts"])


def _plan(frame: Columns) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for c in PLAN_INPUTS:
        if c not in frame:
            continue
        out[c] = (np.asarray(frame[c], dtype=object).astype(str) if c == "strategy"
                  else _floats(frame, c))
    return out


def derive_features(frame: Columns, *, config: FeatureConfig | None = None
                    ) -> dict[str, np.ndarray]:
    """Every non-state feature of ``frame`` (order + plan + :data:`STATE_INPUTS` columns).

    The function :func:`build_features` applies after its as-of joins; returns the columns as
    arrays (state columns included, ``sqrt_pred_bps`` / ``athl_pred_bps`` untouched).
    """
    cfg = config or FeatureConfig()
    d, end = _ns(frame["decision_ts"]), _ns(frame["end_ts"])
    cols: dict[str, np.ndarray] = {
        c: (np.asarray(frame[c], dtype=object) if c in frame else np.full(len(d), None))
        if c == "regime_known" else _floats(frame, c) for c in STATE_INPUTS}
    if len(d) == 0:
        return cols
    sessions = sessions_around(np.concatenate([d // NS_DAY, np.where(end == NAT, d, end)
                                               // NS_DAY]), cfg.calendar)
    _derive(cols, d=d, end=end, side=np.asarray(frame["side"], np.int64),
            qty=_floats(frame, "qty"), plan=_plan(frame),
            shares_outstanding=_floats(frame, "shares_outstanding"), sessions=sessions, cfg=cfg)
    return cols


def feature_columns(frame: Columns, *, config: FeatureConfig | None = None,
                    calibrations: ParametricCalibrations | None = None) -> dict[str, np.ndarray]:
    """The :data:`FEATURES` of raw rows of order + market state, as arrays (the serving path).

    ``sqrt_pred_bps`` / ``athl_pred_bps`` are taken from the rows where given and finite, else
    computed with ``calibrations`` (the registered model's fit on its training labels).
    """
    cols = derive_features(frame, config=config)
    n = _n_rows(frame)
    given = {c: _floats(frame, c) for c in ("sqrt_pred_bps", "athl_pred_bps")}
    cols["sqrt_pred_bps"], cols["athl_pred_bps"] = np.full(n, np.nan), np.full(n, np.nan)
    need = ~(np.isfinite(given["sqrt_pred_bps"]) & np.isfinite(given["athl_pred_bps"]))
    if calibrations is not None and need.any():  # only the rows that do not carry both
        _predict(cols, calibrations, np.flatnonzero(need))
    for c, v in given.items():
        cols[c] = np.where(np.isfinite(v), v, cols[c])
    return {f.name: cols[f.name] for f in FEATURES}


def features_from_state(frame: pd.DataFrame, *, config: FeatureConfig | None = None,
                        calibrations: ParametricCalibrations | None = None) -> pd.DataFrame:
    """:func:`feature_columns` as a frame: one row per input row, every :data:`FEATURES`
    column, the input's index."""
    return pd.DataFrame(feature_columns(frame, config=config, calibrations=calibrations),
                        index=frame.index)


# =========================================================================== build
def build_features(orders: pd.DataFrame, *, quotes: pd.DataFrame, trades: pd.DataFrame,
                   daily_bars: pd.DataFrame, depth: pd.DataFrame | None = None,
                   regimes: pd.DataFrame | None = None,
                   labels_history: pd.DataFrame | None = None,
                   calibrations: ParametricCalibrations | None = None,
                   config: FeatureConfig | None = None,
                   knowledge_by_group: bool = False,
                   regime_probabilities: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features of each parent order as known at its ``decision_ts``.

    Parameters
    ----------
    orders : pandas.DataFrame
        ``order_id, symbol, side, qty, decision_ts, end_ts`` (the ``parent_orders`` contract);
        an optional ``shares_outstanding`` (static reference data) feeds ATHL, and the optional
        :data:`PLAN_INPUTS` the plan group.
    quotes, trades, daily_bars : pandas.DataFrame
        Contract tables; only ``available_at <= decision_ts`` records are used for a row.
    depth : pandas.DataFrame, optional
        L2 book (``depth`` contract); the depth columns are NaN without it.
    regimes : pandas.DataFrame, optional
        ``available_at, regime`` (+ optional ``symbol``): regime labels as they became known.
    labels_history : pandas.DataFrame, optional
        Earlier orders' calibration rows (:func:`calibration_rows`): point-in-time refits of the
        parametric estimates per decision day on the rows known by that day's UTC midnight.
    calibrations : ParametricCalibrations, optional
        One fit (:func:`fit_parametric`) applied to every row; ``fitted_through_ts`` enters
        ``knowledge_ts``.
    config : FeatureConfig, optional
    knowledge_by_group : bool, default=False
        Also return ``knowledge_ts__<group>`` per feature group.
    regime_probabilities : pandas.DataFrame, optional
        :func:`regime_probability_table` of these ``daily_bars`` and ``quotes`` when already
        computed (it refits the regime HMM); computed from them when not given.

    Returns
    -------
    pandas.DataFrame
        One row per order, in input order: ``order_id, symbol, decision_ts, knowledge_ts``, the
        :data:`FEATURES` columns, then ``end_ts`` and the plan inputs given (so the frame holds
        every raw input :func:`features_from_state` needs).
    """
    cfg = config or FeatureConfig()
    missing = [c for c in _ORDER_COLUMNS if c not in orders.columns]
    if missing:
        raise ValueError(f"orders: missing column(s) {missing}; the parent_orders contract needs "
                         f"{list(_ORDER_COLUMNS)}")
    sym = orders["symbol"].astype(str).to_numpy(dtype=object)
    codes, uniq = pd.factorize(sym, sort=True)
    symbols = pd.Index(np.asarray(uniq, dtype=object))
    d, end = _ns(orders["decision_ts"]), _ns(orders["end_ts"])
    if np.any(d == NAT):
        raise ValueError("orders: decision_ts is missing on some rows")
    plan = _plan(orders)
    if len(d) == 0:
        cols = ["order_id", "symbol", "decision_ts", "knowledge_ts", *(f.name for f in FEATURES)]
        out = pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]") if c.endswith("_ts")
                            else pd.Series(dtype=object if c in ("order_id", "symbol",
                                                                 "regime_known") else float)
                            for c in cols})
        out["end_ts"] = pd.Series(dtype="datetime64[ns, UTC]")
        return out
    day = d // NS_DAY
    days_all = [day, np.where(end == NAT, day, end // NS_DAY)]
    for t in (trades, quotes):
        if t is not None and len(t):
            tt = _ns(t["ts"])
            days_all.append(np.array([tt.min() // NS_DAY, tt.max() // NS_DAY]))
    sessions = sessions_around(np.concatenate(days_all), cfg.calendar)
    ok, op, cl = sessions.lookup(day)
    order = np.argsort(codes, kind="stable")
    groups = np.split(order, np.searchsorted(codes[order], np.arange(1, len(symbols))))
    ctx = _Ctx(cfg=cfg, symbols=symbols, code=codes.astype(np.int64), groups=groups, d=d,
               end=end, day=day, session_ok=ok, open=op, close=cl, sessions=sessions,
               quotes=quotes, trades=trades, daily_bars=daily_bars, depth=depth,
               regimes=regimes, labels_history=labels_history, calibrations=calibrations)
    know = np.full(len(d), NAT, np.int64)
    by_group = {}
    for name, fn in {**STATE_GROUPS, **STATE_GROUPS_SCALE,
                     "regime_hmm": regime_group(regime_probabilities)}.items():
        k = fn(ctx)
        by_group[name] = k
        know = np.maximum(know, k)
    _derive(ctx.cols, d=d, end=end, side=orders["side"].to_numpy(np.int64),
            qty=orders["qty"].to_numpy(np.float64), plan=plan,
            shares_outstanding=_floats(orders, "shares_outstanding"), sessions=sessions,
            cfg=cfg)
    k = _g_parametric(ctx)
    by_group["parametric"] = k
    know = np.maximum(know, k)
    data: dict[str, Any] = {"order_id": orders["order_id"].to_numpy(),
                            "symbol": sym.astype(str), "decision_ts": _utc(d),
                            "knowledge_ts": _utc(know)}
    for f in FEATURES:
        data[f.name] = ctx.cols[f.name]
    data["regime_known"] = pd.array(list(data["regime_known"]), dtype="str")
    data["end_ts"] = _utc(end)
    if "strategy" in plan:
        data["strategy"] = orders["strategy"].to_numpy(dtype=object)
    if knowledge_by_group:
        for name, kk in by_group.items():
            data[f"knowledge_ts__{name}"] = _utc(kk)
    # one frame from the columns (inserting ~70 columns one at a time was most of the cost of
    # a one-order call: the paper service's state per order)
    return pd.DataFrame(data, index=pd.RangeIndex(len(d)))


def point_in_time_features(orders: pd.DataFrame, *, quotes: pd.DataFrame, trades: pd.DataFrame,
                           daily_bars: pd.DataFrame, labels: pd.DataFrame | None,
                           depth: pd.DataFrame | None = None,
                           regimes: pd.DataFrame | None = None,
                           config: FeatureConfig | None = None) -> pd.DataFrame:
    """The training recipe: features whose parametric estimates are refit each decision day on
    the labels known by then (two passes of :func:`build_features`: the first gives the
    calibration inputs of every order, the second refits on :func:`calibration_rows` of the
    labels, point in time). Without ``labels`` (or with none) it is one pass. The regime HMM's
    walk-forward (:func:`regime_probability_table`) runs once for both."""
    kw = {"quotes": quotes, "trades": trades, "daily_bars": daily_bars, "depth": depth,
          "regimes": regimes, "config": config,
          "regime_probabilities": regime_probability_table(daily_bars, quotes, config=config)}
    feats = build_features(orders, **kw)
    if labels is None or len(labels) == 0:
        return feats
    return build_features(orders, labels_history=calibration_rows(feats, labels), **kw)
