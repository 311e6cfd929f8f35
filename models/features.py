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
calendar)                                          time_of_day, time_to_close_min, day_of_week
daily (daily_bars)          20 sessions            adv, sigma_daily, pct_adv
l1 (quotes)                 last quote             arrival_mid, arrival_spread_bps,
                                                   l1_imbalance, l1_imbalance_signed, quote_age_s
rv (quotes)                 30 min                 rv_intraday
session_vol (quotes)        previous session       rv_prev_session, rv_open, sigma_seen
                            + today
trades (trades)             15 min                 trade_intensity, trade_imbalance,
                                                   trade_imbalance_signed
profile (trades,            20 sessions            expected_volume, implied_participation
daily_bars)
regime (quotes | regimes)   30 min + 20 sessions   vol_ratio, regime_known, regime_code
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

import functools
import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.impact_calibration import ROWS_PER_PARAM, CalibrationResult, calibrate

__all__ = [
    "FEATURES",
    "GROUPS",
    "MODEL_FEATURES",
    "FeatureConfig",
    "FeatureSpec",
    "ParametricCalibrations",
    "apply_parametric",
    "build_features",
    "calibration_rows",
    "feature_table",
    "fit_parametric",
    "minute_rv",
    "regimes_known_at_close",
]

_STRATEGIES: Final = ("twap", "vwap", "pov", "almgren_chriss", "is_urgency")
NS_MIN: Final = 60_000_000_000
NS_DAY: Final = 86_400_000_000_000
NAT: Final = np.iinfo(np.int64).min
MINUTES_PER_DAY: Final = 390.0


class FeatureConfig(BaseModel):
    """Windows and thresholds of :func:`build_features` (frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calendar: str = "XNYS"  # an exchange_calendars name, or "24/7" (UTC days)
    adv_window_sessions: int = Field(20, ge=1)
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
        ("time_of_day", "minutes since the session open"),
        ("time_to_close_min", "minutes to the session close"),
        ("day_of_week", "0 = Monday of the session date"),
    ]),
    *_specs("daily", ("daily_bars",), "{adv_window_sessions} sessions", [
        ("adv", "mean daily volume of the last bars known (earlier sessions), shares"),
        ("sigma_daily", "std of daily log close returns, last {vol_window_sessions} known"),
        ("pct_adv", "qty / adv"),
    ]),
    *_specs("l1", ("quotes",), "last quote", [
        ("arrival_mid", "mid of the last quote known", False),
        ("arrival_spread_bps", "(ask - bid) / mid, bps, last quote known"),
        ("l1_imbalance", "(bid_sz - ask_sz) / (bid_sz + ask_sz), last quote known"),
        ("l1_imbalance_signed", "side * l1_imbalance"),
        ("quote_age_s", "decision_ts - ts of the last quote known, seconds"),
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
    ]),
    *_specs("trades", ("trades",), "{intensity_window_min:g} min", [
        ("trade_intensity", "trades per minute in the window (minutes inside the session)"),
        ("trade_imbalance", "sum(aggressor * qty) / sum(qty) in the window"),
        ("trade_imbalance_signed", "side * trade_imbalance"),
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
        ("temp_impact_shape_bps", "sigma_seen * pct_adv^{impact_beta:g} * plan_rate_shape * "
                                  "1e4 (ATHL temporary term without eta)"),
        ("perm_impact_shape_bps", "sigma_seen * pct_adv * 1e4 (permanent term without gamma)"),
    ]),
    *_specs("depth", ("depth",), "last snapshot", [
        ("depth_bid", "bid size over the top depth_levels levels, shares (NaN without depth)"),
        ("depth_ask", "ask size over the top depth_levels levels, shares"),
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


def feature_table(config: FeatureConfig | None = None) -> pd.DataFrame:
    """The registry as a table: ``name, group, sources, lookback, description, model_input``."""
    cfg = (config or FeatureConfig()).model_dump()
    return pd.DataFrame([{
        "name": f.name, "group": f.group, "sources": ", ".join(f.sources),
        "lookback": f.lookback.format(**cfg), "description": f.description.format(**cfg),
        "model_input": f.model_input} for f in FEATURES])


# =========================================================================== helpers
def _ns(values: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns").asi8.copy()


def _utc(ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(ns, np.int64), utc=True)).dt.as_unit("ns")


def _take(values: np.ndarray, idx: np.ndarray, fill: float = np.nan) -> np.ndarray:
    if len(values) == 0:
        return np.full(len(idx), fill)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], fill)


def _take_ns(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return np.full(len(idx), NAT, np.int64)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], NAT)


@functools.lru_cache(maxsize=16)
def _calendar(name: str, first_day: int, last_day: int) -> tuple[np.ndarray, ...]:
    """Session days (int days since epoch), open and close (ns) of ``name`` over a day range."""
    if name in ("24/7", "24h"):
        days = np.arange(first_day, last_day + 1, dtype=np.int64)
        return days, days * NS_DAY, (days + 1) * NS_DAY
    import exchange_calendars as xc

    start = pd.Timestamp(first_day * NS_DAY).normalize()
    end = pd.Timestamp(last_day * NS_DAY).normalize()
    with warnings.catch_warnings():  # exchange_calendars calls Series.values on tz-aware data
        warnings.simplefilter("ignore")
        try:
            cal = xc.get_calendar(name, start=start, end=end)
        except Exception as exc:
            raise ValueError(f"calendar {name!r} cannot cover {start.date()}..{end.date()}: "
                             f"{exc}; pass FeatureConfig(calendar=...)") from exc
        sched = cal.schedule.loc[start:end]
    days = pd.DatetimeIndex(sched.index).as_unit("ns").asi8 // NS_DAY
    return (days.astype(np.int64), _ns(sched["open"]), _ns(sched["close"]))


@dataclass
class _Sessions:
    days: np.ndarray
    open: np.ndarray
    close: np.ndarray

    def lookup(self, day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(valid, open_ns, close_ns) of the session on each UTC day (NaT when none)."""
        i = np.searchsorted(self.days, day)
        ic = np.minimum(i, max(len(self.days) - 1, 0))
        ok = (i < len(self.days)) & (self.days[ic] == day) if len(self.days) else \
            np.zeros(len(day), bool)
        return ok, np.where(ok, self.open[ic], NAT), np.where(ok, self.close[ic], NAT)


@dataclass
class _Stream:
    """One source table restricted to the orders' symbols, sorted by (symbol, available_at, ts)."""

    av: np.ndarray
    ts: np.ndarray
    bounds: np.ndarray
    cols: dict[str, np.ndarray]

    @property
    def code(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.bounds) - 1), np.diff(self.bounds))


def _stream(df: pd.DataFrame | None, symbols: pd.Index, cols: Sequence[str], *,
            ts: str | None = "ts", by_symbol: bool = True) -> _Stream:
    k = len(symbols) if by_symbol else 1
    if df is None or len(df) == 0:
        return _Stream(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(k + 1, np.int64),
                       {c: np.zeros(0) for c in cols})
    if by_symbol:
        codes, uniq = pd.factorize(df["symbol"].astype(str), sort=False)
        code = symbols.get_indexer(pd.Index(np.asarray(uniq, dtype=object)))[codes]
        code[codes < 0] = -1
    else:
        code = np.zeros(len(df), np.int64)
    av = _ns(df["available_at"])
    t = _ns(df[ts]) if ts else av
    keep = np.flatnonzero(code >= 0)
    order = keep[np.lexsort((t[keep], av[keep], code[keep]))]
    c = code[order]
    out = {}
    for col in cols:
        v = df[col]
        out[col] = v.to_numpy()[order] if v.dtype == object or pd.api.types.is_string_dtype(v) \
            else v.to_numpy(np.float64, na_value=np.nan)[order]
    return _Stream(av[order], t[order], np.searchsorted(c, np.arange(k + 1)), out)


def _search(st: _Stream, groups: list[np.ndarray], t: np.ndarray) -> np.ndarray:
    """Absolute position of the first row with ``available_at > t`` in each order's symbol."""
    out = np.zeros(len(t), np.int64)
    for k, idx in enumerate(groups):
        if idx.size:
            lo, hi = st.bounds[k], st.bounds[k + 1]
            out[idx] = lo + np.searchsorted(st.av[lo:hi], t[idx], side="right")
    return out


def _seg_cumsum(x: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum restarted at every symbol segment (prefix-exact per symbol)."""
    out = np.empty(len(x), np.float64)
    for lo, hi in itertools.pairwise(bounds):
        np.cumsum(x[lo:hi], out=out[lo:hi])
    return out


def _wsum(c: np.ndarray, lo: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum of rows ``[a, b)`` from a segment-local inclusive cumsum ``c`` (segment start ``lo``)."""
    if len(c) == 0:
        return np.zeros(len(a))
    hi_v = c[np.clip(b - 1, 0, len(c) - 1)]
    lo_v = np.where(a > lo, c[np.clip(a - 1, 0, len(c) - 1)], 0.0)
    return np.where(b > a, hi_v - lo_v, 0.0)


def _runs(st: _Stream, day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of one (symbol, UTC day of ts) in a stream: (run id per row, run starts, run code)."""
    n = len(day)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    code = st.code
    new = np.ones(n, bool)
    new[1:] = (code[1:] != code[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new)
    return np.cumsum(new) - 1, starts, code[starts]


# =========================================================================== context
@dataclass
class _Ctx:
    cfg: FeatureConfig
    symbols: pd.Index
    code: np.ndarray
    groups: list[np.ndarray]
    d: np.ndarray
    end: np.ndarray
    qty: np.ndarray
    side: np.ndarray
    day: np.ndarray
    session_ok: np.ndarray
    open: np.ndarray
    close: np.ndarray
    sessions: _Sessions
    quotes: pd.DataFrame
    trades: pd.DataFrame
    daily_bars: pd.DataFrame
    depth: pd.DataFrame | None
    regimes: pd.DataFrame | None
    labels_history: pd.DataFrame | None
    calibrations: ParametricCalibrations | None
    shares_outstanding: np.ndarray
    plan: dict[str, np.ndarray] = field(default_factory=dict)
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    _quotes: _Stream | None = None

    def quote_stream(self) -> _Stream:
        if self._quotes is None:
            self._quotes = _stream(self.quotes, self.symbols,
                                   ("bid_px", "bid_sz", "ask_px", "ask_sz"))
        return self._quotes


# =========================================================================== groups
def _g_order(x: _Ctx) -> np.ndarray:
    dur = (x.end - x.d) / NS_MIN
    sess_min = np.where(x.session_ok, (x.close - x.open) / NS_MIN, np.nan)
    x.cols["side"] = x.side
    x.cols["qty"] = x.qty
    x.cols["duration_min"] = dur
    x.cols["duration_days"] = dur / sess_min
    x.cols["time_of_day"] = np.where(x.session_ok, (x.d - x.open) / NS_MIN, np.nan)
    x.cols["time_to_close_min"] = np.where(x.session_ok, (x.close - x.d) / NS_MIN, np.nan)
    x.cols["day_of_week"] = ((x.day + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
    return np.full(len(x.d), NAT, np.int64)


def _g_daily(x: _Ctx) -> np.ndarray:
    st = _stream(x.daily_bars, x.symbols, ("volume", "close"), ts=None)
    code = st.code
    vol = pd.Series(st.cols["volume"])
    lr = np.log(st.cols["close"])
    lr = np.concatenate([[np.nan], np.diff(lr)]) if len(lr) else lr
    lr[st.bounds[:-1][st.bounds[:-1] < len(lr)]] = np.nan  # first bar of each symbol
    g = pd.Series(code)
    adv = vol.groupby(g).rolling(x.cfg.adv_window_sessions, min_periods=1).mean()
    sig = pd.Series(lr).groupby(g).rolling(x.cfg.vol_window_sessions, min_periods=2).std()
    pos = _search(st, x.groups, x.d)
    j = np.where(pos > st.bounds[x.code], pos - 1, -1)
    x.cols["adv"] = _take(adv.to_numpy(np.float64), j)
    x.cols["sigma_daily"] = _take(sig.to_numpy(np.float64), j)
    with np.errstate(divide="ignore", invalid="ignore"):
        x.cols["pct_adv"] = np.where(x.cols["adv"] > 0, x.qty / x.cols["adv"], np.nan)
    return _take_ns(st.av, j)


def _g_l1(x: _Ctx) -> np.ndarray:
    st = x.quote_stream()
    pos = _search(st, x.groups, x.d)
    j = np.where(pos > st.bounds[x.code], pos - 1, -1)
    bid, ask = _take(st.cols["bid_px"], j), _take(st.cols["ask_px"], j)
    bsz, asz = _take(st.cols["bid_sz"], j), _take(st.cols["ask_sz"], j)
    mid = 0.5 * (bid + ask)
    with np.errstate(divide="ignore", invalid="ignore"):
        imb = (bsz - asz) / (bsz + asz)
        x.cols["arrival_mid"] = mid
        x.cols["arrival_spread_bps"] = (ask - bid) / mid * 1e4
    x.cols["l1_imbalance"] = imb
    x.cols["l1_imbalance_signed"] = x.side * imb
    ts = _take_ns(st.ts, j)
    x.cols["quote_age_s"] = np.where(j >= 0, (x.d - ts) / 1e9, np.nan)
    return _take_ns(st.av, j)


def _quote_returns(x: _Ctx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per quote: squared mid log return and its duration (ns) since the previous quote of the
    same symbol and UTC day (0 at a symbol's or a session's first quote), and the UTC day."""
    st = x.quote_stream()
    mid = 0.5 * (st.cols["bid_px"] + st.cols["ask_px"])
    day = st.ts // NS_DAY
    r2 = np.zeros(len(mid))
    dt = np.zeros(len(mid))
    if len(mid) > 1:
        same = (st.code[1:] == st.code[:-1]) & (day[1:] == day[:-1])
        r = np.log(mid[1:] / mid[:-1])
        r2[1:] = np.where(same, r * r, 0.0)
        dt[1:] = np.where(same, np.maximum(st.ts[1:] - st.ts[:-1], 0), 0).astype(np.float64)
    return r2, dt, day


def _g_rv(x: _Ctx) -> np.ndarray:
    st = x.quote_stream()
    r2, dt, _ = _quote_returns(x)
    c_r2, c_dt = _seg_cumsum(r2, st.bounds), _seg_cumsum(dt, st.bounds)
    w = round(x.cfg.rv_window_min * NS_MIN)
    lo = st.bounds[x.code]
    a = _search(st, x.groups, x.d - w)  # first quote inside (d - w, d]
    b = _search(st, x.groups, x.d)
    s2 = _wsum(c_r2, lo, a + 1, b)  # returns whose both quotes are inside the window
    cov = _wsum(c_dt, lo, a + 1, b) / NS_MIN
    with np.errstate(divide="ignore", invalid="ignore"):
        rv = np.sqrt(s2 / cov * MINUTES_PER_DAY)
    x.cols["rv_intraday"] = np.where(cov >= x.cfg.rv_min_coverage_min, rv, np.nan)
    return _take_ns(st.av, np.where(b > lo, b - 1, -1))


@dataclass(frozen=True)
class MinuteRV:
    """1-minute realized variance of one symbol, per UTC day (see :func:`minute_rv`)."""

    days: np.ndarray  # UTC day numbers
    starts: np.ndarray  # first row of each day
    ends: np.ndarray  # one past the last row of each day
    cums: list[np.ndarray]  # per day: sum of r^2 over the first m minutes, m = 0, 1, ...
    full: np.ndarray  # per day: the whole day's variance scaled to a 390-minute session

    def today(self, i: int, minutes: int) -> float:
        """Day ``i``'s variance over its first ``minutes`` (scaled to 390; NaN under 5)."""
        return self.cums[i][minutes] * MINUTES_PER_DAY / minutes if minutes >= 5 else np.nan


def minute_rv(t: np.ndarray, mid: np.ndarray) -> MinuteRV:
    """Sample ``mid`` (one symbol, ``t`` sorted ns) every minute from each UTC day's first row,
    as of ``t``, and sum the squared log returns: the realized-variance estimator of both the
    synthetic physics (:func:`models.desk_history.seen_volatility`, ``t`` = state time) and the
    desk's ``session_vol`` features (``t`` = ``available_at``)."""
    days, starts = np.unique(t // NS_DAY, return_index=True)
    ends = np.append(starts[1:], len(t))
    cums, full = [], np.full(len(days), np.nan)
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        grid = np.arange(t[a], t[b - 1] + 1, NS_MIN)
        r2 = np.diff(np.log(mid[a + np.searchsorted(t[a:b], grid, "right") - 1])) ** 2
        cums.append(np.concatenate([[0.0], np.cumsum(r2)]))
        if r2.size:
            full[i] = r2.sum() * MINUTES_PER_DAY / r2.size
    return MinuteRV(days, starts, ends, cums, full)


def _g_session_vol(x: _Ctx) -> np.ndarray:
    """1-minute realized variance of the previous session and of today so far (as-of known)."""
    st = x.quote_stream()
    n = len(x.d)
    prev, today = np.full(n, np.nan), np.full(n, np.nan)
    minutes = np.zeros(n)
    know = np.full(n, NAT, np.int64)
    if len(st.av):
        mid = 0.5 * (st.cols["bid_px"] + st.cols["ask_px"])
        for k, idx in enumerate(x.groups):
            lo, hi = st.bounds[k], st.bounds[k + 1]
            if not idx.size or hi == lo:
                continue
            av = st.av[lo:hi]
            rv = minute_rv(av, mid[lo:hi])
            days, starts, ends, full = rv.days, rv.starts, rv.ends, rv.full
            first, last_av = av[starts], av[ends - 1]
            dday = x.d[idx] // NS_DAY
            i = np.searchsorted(days, dday)  # today's run (or the first later one)
            has_today = (i < len(days)) & (days[np.minimum(i, len(days) - 1)] == dday)
            ip = i - 1  # the previous run: a session known before today
            ok_p = ip >= 0
            prev[idx[ok_p]] = full[ip[ok_p]]
            know[idx[ok_p]] = last_av[ip[ok_p]]
            for j, r in zip(idx[has_today], i[has_today], strict=True):
                mm = int(min(max((x.d[j] - first[r]) // NS_MIN, 0), len(rv.cums[r]) - 1))
                minutes[j] = mm
                if mm >= 5:
                    today[j] = rv.today(r, mm)
                    pos = lo + starts[r] + np.searchsorted(av[starts[r]:ends[r]], x.d[j],
                                                           "right") - 1
                    know[j] = max(know[j], st.av[pos])
    w = minutes / (minutes + x.cfg.seen_vol_blend_min)
    blend = np.where(np.isfinite(today) & np.isfinite(prev), w * today + (1 - w) * prev,
                     np.where(np.isfinite(prev), prev, today))
    x.cols["rv_prev_session"] = np.sqrt(prev)
    x.cols["rv_open"] = np.sqrt(today)
    x.cols["sigma_seen"] = np.sqrt(blend)
    return know


def _g_plan(x: _Ctx) -> np.ndarray:
    """The desk's own schedule, known at the decision (columns of the orders when present)."""
    n = len(x.d)
    strat = x.plan.get("strategy")
    for k in _STRATEGIES:
        x.cols[f"strategy_{k}"] = (np.full(n, np.nan) if strat is None
                                   else (strat == k).astype(np.float64))
    for c in ("plan_n_children", "plan_passive_share", "plan_front_load",
              "plan_timing_var_days", "plan_rate_shape"):
        x.cols[c] = x.plan.get(c, np.full(n, np.nan)).astype(np.float64)
    sig = x.cols["sigma_seen"]
    x.cols["spread_cost_bps"] = x.cols["arrival_spread_bps"] / 2 \
        * (1 - 2 * np.nan_to_num(x.cols["plan_passive_share"], nan=0.0))
    x.cols["timing_risk_bps"] = sig * np.sqrt(x.cols["plan_timing_var_days"]) * 1e4
    x.cols["temp_impact_shape_bps"] = (sig * x.cols["pct_adv"] ** x.cfg.impact_beta
                                       * x.cols["plan_rate_shape"] * 1e4)
    x.cols["perm_impact_shape_bps"] = sig * x.cols["pct_adv"] * 1e4
    return np.full(n, NAT, np.int64)  # nothing beyond the order itself


def _g_trades(x: _Ctx) -> np.ndarray:
    st = _stream(x.trades, x.symbols, ("qty", "aggressor"))
    w = round(x.cfg.intensity_window_min * NS_MIN)
    lo = st.bounds[x.code]
    a = _search(st, x.groups, x.d - w)
    b = _search(st, x.groups, x.d)
    q = st.cols["qty"]
    c_q = _seg_cumsum(q, st.bounds)
    c_sq = _seg_cumsum(q * st.cols["aggressor"], st.bounds)
    in_session = np.where(x.session_ok, (x.d - np.maximum(x.open, x.d - w)) / NS_MIN,
                          x.cfg.intensity_window_min)
    cov = np.minimum(in_session, x.cfg.intensity_window_min)
    with np.errstate(divide="ignore", invalid="ignore"):
        x.cols["trade_intensity"] = np.where(cov >= x.cfg.min_intensity_coverage_min,
                                             (b - a) / cov, np.nan)
        sq = _wsum(c_q, lo, a, b)
        imb = np.where(sq > 0, _wsum(c_sq, lo, a, b) / sq, np.nan)
    x.cols["trade_imbalance"] = imb
    x.cols["trade_imbalance_signed"] = x.side * imb
    return _take_ns(st.av, np.where(b > a, b - 1, -1))


def _g_profile(x: _Ctx) -> np.ndarray:
    """Share of the day's volume in [decision, end]: mean intraday profile (``B`` buckets of the
    session clock) of the symbol's last ``profile_sessions`` sessions fully known before ``d``."""
    cfg, nb = x.cfg, x.cfg.profile_buckets
    st = _stream(x.trades, x.symbols, ("qty",))
    day = st.ts // NS_DAY
    ok, op, cl = x.sessions.lookup(day)
    run, starts, run_code = _runs(st, day)
    n_runs = len(starts)
    n_ord = len(x.d)
    prof = np.full((n_ord, nb), 1.0 / nb)  # uniform without history
    know = np.full(n_ord, NAT, np.int64)
    if n_runs:
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(ok, (st.ts - op) / np.maximum(cl - op, 1), np.nan)
        bucket = np.clip(np.floor(np.nan_to_num(u, nan=0.0) * nb), 0, nb - 1).astype(np.int64)
        vol = np.bincount(run * nb + bucket, weights=np.where(ok, st.cols["qty"], 0.0),
                          minlength=n_runs * nb).reshape(n_runs, nb)
        tot = vol.sum(axis=1)
        frac = np.where(tot[:, None] > 0, vol / np.where(tot > 0, tot, 1.0)[:, None], 0.0)
        valid = (tot > 0).astype(np.float64)
        run_day = day[starts]
        run_end_av = st.av[np.append(starts[1:], len(day)) - 1]  # last row of each run
        run_bounds = np.searchsorted(run_code, np.arange(len(x.symbols) + 1))
        cf = np.empty_like(frac)
        cv = np.empty_like(valid)
        for lo_r, hi_r in itertools.pairwise(run_bounds):
            np.cumsum(frac[lo_r:hi_r], axis=0, out=cf[lo_r:hi_r])
            np.cumsum(valid[lo_r:hi_r], out=cv[lo_r:hi_r])
        for k, idx in enumerate(x.groups):
            lo_r, hi_r = run_bounds[k], run_bounds[k + 1]
            if not idx.size or hi_r == lo_r:
                continue
            # runs of earlier days whose every trade is known at d
            j = lo_r + np.minimum(np.searchsorted(run_day[lo_r:hi_r], x.day[idx], "left"),
                                  np.searchsorted(run_end_av[lo_r:hi_r], x.d[idx], "right"))
            j0 = np.maximum(lo_r, j - cfg.profile_sessions)
            has = j > j0
            jj, jj0 = np.maximum(j - 1, lo_r), np.maximum(j0 - 1, lo_r)
            s = cf[jj] - np.where((j0 > lo_r)[:, None], cf[jj0], 0.0)
            n = cv[jj] - np.where(j0 > lo_r, cv[jj0], 0.0)
            good = has & (n > 0)
            prof[idx[good]] = s[good] / n[good, None]
            know[idx[has]] = run_end_av[j[has] - 1]
    cum = np.concatenate([np.zeros((n_ord, 1)), np.cumsum(prof, axis=1)], axis=1)
    cum /= np.where(cum[:, -1:] > 0, cum[:, -1:], 1.0)
    span = np.where(x.session_ok, x.close - x.open, 1).astype(np.float64)

    def share(t: np.ndarray) -> np.ndarray:
        u = np.clip((t - x.open) / span, 0.0, 1.0) * nb
        i = np.minimum(np.floor(u).astype(np.int64), nb - 1)
        r = np.arange(n_ord)
        return cum[r, i] + (u - i) * (cum[r, i + 1] - cum[r, i])

    # whole later sessions an order spans (multi-session orders: each counted as a full day)
    opens = x.sessions.open
    later = np.searchsorted(opens, x.end, "left") - np.searchsorted(opens, x.close, "right")
    frac_win = share(x.end) - share(x.d) + np.maximum(later, 0)
    ev = x.cols["adv"] * np.where(x.session_ok, frac_win, np.nan)
    x.cols["expected_volume"] = ev
    with np.errstate(divide="ignore", invalid="ignore"):
        x.cols["implied_participation"] = np.where(ev > 0, x.qty / ev, np.nan)
    return know


def _g_regime(x: _Ctx) -> np.ndarray:
    cfg = x.cfg
    st = x.quote_stream()
    r2, dt, day = _quote_returns(x)
    run, starts, run_code = _runs(st, day)
    n_ord = len(x.d)
    base = np.full(n_ord, np.nan)
    prev = np.full(n_ord, np.nan)
    know = np.full(n_ord, NAT, np.int64)
    if len(starts):
        s2 = np.bincount(run, weights=r2)
        cov = np.bincount(run, weights=dt) / NS_MIN
        with np.errstate(divide="ignore", invalid="ignore"):
            rv = np.where(cov >= cfg.rv_min_coverage_min, np.sqrt(s2 / cov * MINUTES_PER_DAY),
                          np.nan)
        run_day = day[starts]
        run_end_av = st.av[np.append(starts[1:], len(day)) - 1]
        run_bounds = np.searchsorted(run_code, np.arange(len(x.symbols) + 1))
        for k, idx in enumerate(x.groups):
            lo_r, hi_r = run_bounds[k], run_bounds[k + 1]
            if not idx.size or hi_r == lo_r:
                continue
            med = pd.Series(rv[lo_r:hi_r]).rolling(cfg.baseline_sessions, min_periods=1) \
                .median().to_numpy()
            j = np.minimum(np.searchsorted(run_day[lo_r:hi_r], x.day[idx], "left"),
                           np.searchsorted(run_end_av[lo_r:hi_r], x.d[idx], "right"))
            has = j > 0
            base[idx[has]] = med[j[has] - 1]
            prev[idx[has]] = rv[lo_r + j[has] - 1]
            know[idx[has]] = run_end_av[lo_r + j[has] - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        now = x.cols["rv_intraday"]
        ratio = np.where(np.isfinite(now), now, prev) / base
    ratio = np.where(np.isfinite(ratio), ratio, np.nan)
    x.cols["vol_ratio"] = ratio
    names = np.asarray(cfg.regime_names, dtype=object)
    code = np.digitize(np.nan_to_num(ratio, nan=0.0), cfg.regime_thresholds).astype(np.float64)
    code = np.where(np.isnan(ratio), np.nan, np.minimum(code, len(names) - 1))
    uses_rv = np.isfinite(now)
    # the intraday window's quotes are already in the rv group's knowledge; count them again
    pos = _search(st, x.groups, x.d)
    lo = st.bounds[x.code]
    know = np.maximum(know, np.where(uses_rv, _take_ns(st.av, np.where(pos > lo, pos - 1, -1)),
                                     NAT))
    if x.regimes is not None:
        by = "symbol" in x.regimes.columns
        rs = _stream(x.regimes, x.symbols, ("regime",), ts=None, by_symbol=by)
        groups = x.groups if by else [np.arange(n_ord)]
        ocode = x.code if by else np.zeros(n_ord, np.int64)
        p = _search(rs, groups, x.d)
        jr = np.where(p > rs.bounds[ocode], p - 1, -1)
        vals = rs.cols["regime"]
        lab = np.array([vals[j] if j >= 0 else None for j in jr], dtype=object)
        lut = {n: i for i, n in enumerate(cfg.regime_names)}
        code = np.array([lut.get(v, np.nan) if v is not None else np.nan for v in lab], float)
        x.cols["regime_known"] = lab
        know = np.maximum(know, _take_ns(rs.av, jr))
    else:
        x.cols["regime_known"] = np.where(np.isnan(code), None,
                                          names[np.nan_to_num(code).astype(np.int64)])
    x.cols["regime_code"] = code
    return know


def _g_depth(x: _Ctx) -> np.ndarray:
    n = len(x.d)
    if x.depth is None or len(x.depth) == 0:
        for c in ("depth_bid", "depth_ask", "depth_imbalance", "qty_over_depth"):
            x.cols[c] = np.full(n, np.nan)
        return np.full(n, NAT, np.int64)
    dp = x.depth[x.depth["level"] <= x.cfg.depth_levels]
    snap = (pd.DataFrame({"symbol": dp["symbol"].astype(str).to_numpy(),
                          "ts": _ns(dp["ts"]), "av": _ns(dp["available_at"]),
                          "bid_sz": dp["bid_sz"].to_numpy(np.float64),
                          "ask_sz": dp["ask_sz"].to_numpy(np.float64)})
            .groupby(["symbol", "ts"], sort=False)
            .agg(av=("av", "max"), bid_sz=("bid_sz", "sum"), ask_sz=("ask_sz", "sum"))
            .reset_index())
    snap["available_at"] = _utc(snap["av"].to_numpy())
    snap["ts"] = _utc(snap["ts"].to_numpy())
    st = _stream(snap, x.symbols, ("bid_sz", "ask_sz"))
    pos = _search(st, x.groups, x.d)
    j = np.where(pos > st.bounds[x.code], pos - 1, -1)
    bid, ask = _take(st.cols["bid_sz"], j), _take(st.cols["ask_sz"], j)
    with np.errstate(divide="ignore", invalid="ignore"):
        x.cols["depth_bid"], x.cols["depth_ask"] = bid, ask
        x.cols["depth_imbalance"] = (bid - ask) / (bid + ask)
        take = np.where(x.side > 0, ask, bid)
        x.cols["qty_over_depth"] = np.where(take > 0, x.qty / take, np.nan)
    return _take_ns(st.av, j)


def _g_parametric(x: _Ctx) -> np.ndarray:
    n = len(x.d)
    so = np.where(np.isfinite(x.shares_outstanding) & (x.shares_outstanding > 0),
                  x.shares_outstanding, x.cfg.turnover * x.cols["adv"])
    x.cols["shares_outstanding"] = so
    x.cols["sqrt_pred_bps"] = np.full(n, np.nan)
    x.cols["athl_pred_bps"] = np.full(n, np.nan)
    know = np.full(n, NAT, np.int64)
    if x.labels_history is not None and x.calibrations is not None:
        raise ValueError("pass labels_history (point-in-time refits) or calibrations (one fit), "
                         "not both")
    if x.calibrations is not None:
        _predict(x.cols, x.calibrations, np.arange(n))
        ft = x.calibrations.fitted_through_ts
        if ft is not None:
            know[:] = pd.Timestamp(ft).tz_convert("UTC").as_unit("ns").value
        return know
    if x.labels_history is None:
        return know
    hist = x.labels_history
    known = _ns(hist["available_at"] if "available_at" in hist.columns else hist["t1"])
    order = np.argsort(known, kind="stable")
    hist, known = hist.iloc[order], known[order]
    cut = x.day * NS_DAY  # rows known by the decision day's UTC midnight (<= d)
    n_known = np.searchsorted(known, cut, side="right")
    fits: dict[int, ParametricCalibrations] = {}
    for m in np.unique(n_known):
        if m == 0:
            continue
        cal = fits.setdefault(int(m), fit_parametric(hist.iloc[:m], config=x.cfg))
        idx = np.flatnonzero(n_known == m)
        _predict(x.cols, cal, idx)
        if cal.fitted_through_ts is not None:
            know[idx] = pd.Timestamp(cal.fitted_through_ts).tz_convert("UTC").as_unit("ns").value
    return know


GROUPS: Final[dict[str, Callable[[_Ctx], np.ndarray]]] = {
    "order": _g_order, "daily": _g_daily, "l1": _g_l1, "rv": _g_rv,
    "session_vol": _g_session_vol, "trades": _g_trades, "profile": _g_profile,
    "regime": _g_regime, "plan": _g_plan, "depth": _g_depth, "parametric": _g_parametric,
}
"""Feature groups in computation order; each writes its columns and returns per-row knowledge."""


# =========================================================================== build
_ORDER_COLUMNS: Final = ("order_id", "symbol", "side", "qty", "decision_ts", "end_ts")
_PLAN_INPUTS: Final = ("strategy", "plan_n_children", "plan_passive_share", "plan_front_load",
                       "plan_timing_var_days", "plan_rate_shape")


def build_features(orders: pd.DataFrame, *, quotes: pd.DataFrame, trades: pd.DataFrame,
                   daily_bars: pd.DataFrame, depth: pd.DataFrame | None = None,
                   regimes: pd.DataFrame | None = None,
                   labels_history: pd.DataFrame | None = None,
                   calibrations: ParametricCalibrations | None = None,
                   config: FeatureConfig | None = None,
                   knowledge_by_group: bool = False) -> pd.DataFrame:
    """Features of each parent order as known at its ``decision_ts``.

    Parameters
    ----------
    orders : pandas.DataFrame
        ``order_id, symbol, side, qty, decision_ts, end_ts`` (the ``parent_orders`` contract);
        an optional ``shares_outstanding`` (static reference data) feeds ATHL.
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

    Returns
    -------
    pandas.DataFrame
        One row per order, in input order: ``order_id, symbol, decision_ts, knowledge_ts`` and
        the :data:`FEATURES` columns.
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
    if len(d) == 0:
        cols = ["order_id", "symbol", "decision_ts", "knowledge_ts", *(f.name for f in FEATURES)]
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]") if c.endswith("_ts")
                             else pd.Series(dtype=object if c in ("order_id", "symbol",
                                                                  "regime_known") else float)
                             for c in cols})
    day = d // NS_DAY
    days_all = [day, np.where(end == NAT, day, end // NS_DAY)]
    for t in (trades, quotes):
        if t is not None and len(t):
            tt = _ns(t["ts"])
            days_all.append(np.array([tt.min() // NS_DAY, tt.max() // NS_DAY]))
    lo_d = int(min(a.min() for a in days_all if len(a)))
    hi_d = int(max(a.max() for a in days_all if len(a)))
    sessions = _Sessions(*_calendar(cfg.calendar, lo_d - 40, hi_d + 10))
    ok, op, cl = sessions.lookup(day)
    order = np.argsort(codes, kind="stable")
    groups = np.split(order, np.searchsorted(codes[order], np.arange(1, len(symbols))))
    so = (orders["shares_outstanding"].to_numpy(np.float64, na_value=np.nan)
          if "shares_outstanding" in orders.columns else np.full(len(d), np.nan))
    ctx = _Ctx(cfg=cfg, symbols=symbols, code=codes.astype(np.int64), groups=groups, d=d,
               end=end, qty=orders["qty"].to_numpy(np.float64),
               side=orders["side"].to_numpy(np.int64), day=day, session_ok=ok, open=op, close=cl,
               sessions=sessions, quotes=quotes, trades=trades, daily_bars=daily_bars,
               depth=depth, regimes=regimes, labels_history=labels_history,
               calibrations=calibrations, shares_outstanding=so,
               plan={c: (orders[c].to_numpy(dtype=object).astype(str) if c == "strategy"
                         else orders[c].to_numpy(np.float64, na_value=np.nan))
                     for c in _PLAN_INPUTS if c in orders.columns})
    know = np.full(len(d), NAT, np.int64)
    by_group = {}
    for name, fn in GROUPS.items():
        k = fn(ctx)
        by_group[name] = k
        know = np.maximum(know, k)
    out = pd.DataFrame({"order_id": orders["order_id"].to_numpy(), "symbol": sym.astype(str),
                        "decision_ts": _utc(d), "knowledge_ts": _utc(know)})
    for f in FEATURES:
        out[f.name] = ctx.cols[f.name]
    out["regime_known"] = pd.array(list(out["regime_known"]), dtype="str")
    if knowledge_by_group:
        for name, k in by_group.items():
            out[f"knowledge_ts__{name}"] = _utc(k)
    return out


# =========================================================================== parametric
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


# =========================================================================== regimes table
def regimes_known_at_close(sessions: Sequence, regime_path: Sequence[str], *,
                           calendar: str = "XNYS") -> pd.DataFrame:
    """A ``regimes`` table releasing each session's regime at that session's close.

    E.g. ``regimes_known_at_close(market.truth.sessions, market.truth.regime_path)``: the truth
    of day ``d`` becomes usable from the close of ``d`` on, so a decision on ``d`` sees ``d - 1``.
    """
    dates = pd.DatetimeIndex(pd.to_datetime(list(sessions))).as_unit("ns")
    day = dates.asi8 // NS_DAY
    cal = _Sessions(*_calendar(calendar, int(day.min()) - 7, int(day.max()) + 7))
    ok, _, cl = cal.lookup(day)
    if not ok.all():
        bad = [str(x.date()) for x in dates[~ok]]
        raise ValueError(f"not {calendar} sessions: {bad}")
    return pd.DataFrame({"date": dates, "regime": pd.array(list(regime_path), dtype="str"),
                         "available_at": _utc(cl)})
