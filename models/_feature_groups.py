"""The market state of each order as known at its decision: per-symbol as-of joins on
``available_at`` over the contract tables (quotes, trades, daily bars, depth, regimes) and the
point-in-time refits of the parametric estimates.

Each group writes its **state** columns into the context and returns, per order, the latest
``available_at`` it used. Columns that are arithmetic on the order and the state (``pct_adv``,
``implied_participation``, the plan's physics, ...) are not computed here: they come from
:func:`models.features.derive_features`, the one function training and serving share.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from models._feature_parametric import ParametricCalibrations, _predict, fit_parametric
from models._feature_registry import MINUTES_PER_DAY, NAT, NS_DAY, NS_MIN, FeatureConfig
from models._feature_time import _ns, _Sessions, _utc


def _take(values: np.ndarray, idx: np.ndarray, fill: float = np.nan) -> np.ndarray:
    if len(values) == 0:
        return np.full(len(idx), fill)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], fill)


def _take_ns(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return np.full(len(idx), NAT, np.int64)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], NAT)


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
        sym = df["symbol"]  # a categorical of strings factorizes from its codes
        codes, uniq = pd.factorize(sym if isinstance(sym.dtype, pd.CategoricalDtype)
                                   and sym.cat.categories.inferred_type == "string"
                                   else sym.astype(str), sort=False)
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


def _last_known(st: _Stream, x: _Ctx) -> np.ndarray:
    """Absolute position of each order's last row of its symbol known at its decision (-1:
    none)."""
    pos = _search(st, x.groups, x.d)
    return np.where(pos > st.bounds[x.code], pos - 1, -1)


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


def _known_runs(run_day: np.ndarray, run_end_av: np.ndarray, lo: int, hi: int,
                day: np.ndarray, d: np.ndarray, n_back: int) -> tuple[np.ndarray, np.ndarray]:
    """``(j0, j)``: per decision (UTC ``day``, time ``d``), the symbol's runs ``[j0, j)``
    among ``[lo, hi)`` of earlier days whose every row is known at ``d``, the last ``n_back``."""
    j = lo + np.minimum(np.searchsorted(run_day[lo:hi], day, "left"),
                        np.searchsorted(run_end_av[lo:hi], d, "right"))
    return np.maximum(lo, j - n_back), j


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
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    _quotes: _Stream | None = None

    def quote_stream(self) -> _Stream:
        if self._quotes is None:
            self._quotes = _stream(self.quotes, self.symbols,
                                   ("bid_px", "bid_sz", "ask_px", "ask_sz"))
        return self._quotes



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
    j = _last_known(st, x)
    x.cols["adv"] = _take(adv.to_numpy(np.float64), j)
    x.cols["sigma_daily"] = _take(sig.to_numpy(np.float64), j)
    return _take_ns(st.av, j)


def _g_l1(x: _Ctx) -> np.ndarray:
    st = x.quote_stream()
    j = _last_known(st, x)
    bid, ask = _take(st.cols["bid_px"], j), _take(st.cols["ask_px"], j)
    bsz, asz = _take(st.cols["bid_sz"], j), _take(st.cols["ask_sz"], j)
    mid = 0.5 * (bid + ask)
    with np.errstate(divide="ignore", invalid="ignore"):
        imb = (bsz - asz) / (bsz + asz)
        x.cols["arrival_mid"] = mid
        x.cols["arrival_spread_bps"] = (ask - bid) / mid * 1e4
    x.cols["l1_imbalance"] = imb
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
            j0, j = _known_runs(run_day, run_end_av, lo_r, hi_r, x.day[idx], x.d[idx],
                                cfg.profile_sessions)
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
    return know


def _g_depth(x: _Ctx) -> np.ndarray:
    n = len(x.d)
    if x.depth is None or len(x.depth) == 0:
        for c in ("depth_bid", "depth_ask"):
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
    j = _last_known(st, x)
    bid, ask = _take(st.cols["bid_sz"], j), _take(st.cols["ask_sz"], j)
    with np.errstate(divide="ignore", invalid="ignore"):
        x.cols["depth_bid"], x.cols["depth_ask"] = bid, ask
    return _take_ns(st.av, j)


def _g_parametric(x: _Ctx) -> np.ndarray:
    n = len(x.d)
    # shares_outstanding (with its fallback) and the order columns come from derive_features
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


STATE_GROUPS: Final[dict[str, Callable[[_Ctx], np.ndarray]]] = {
    "daily": _g_daily, "l1": _g_l1, "rv": _g_rv, "session_vol": _g_session_vol,
    "trades": _g_trades, "profile": _g_profile, "regime": _g_regime, "depth": _g_depth,
}
"""Market-state groups in computation order; each writes its columns and returns per-row
knowledge. ``parametric`` runs after the derived order columns (it needs ``duration_days``)."""

