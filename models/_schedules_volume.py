"""Intraday volume profiles of :mod:`models.schedules` (VWAP, the POV forecast), causal by construction.

A profile for a decision is averaged **only over sessions before its decision session** (the
first session that closes after ``decision_ts``): :func:`volume_profile`, :func:`forecast_volume`
(re-exported by :mod:`models.schedules`) and the per-slice fractions of the volume schedules,
:func:`volume_fracs` and :func:`pov_frac`.
"""

from __future__ import annotations

import functools
import warnings
from typing import Final, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from models._schedules_grid import Flat, Floats, Ints, ts_ns
from validation.errors import LeakageError

__all__ = ["BIN_NS", "History", "VolumeProfile", "build_history", "cum_curve", "forecast_volume",
           "pov_frac", "volume_fracs", "volume_profile"]

BIN_NS: Final = 300_000_000_000  # 5-minute volume bins


@functools.cache
def _calendar(name: str, y0: int, y1: int) -> tuple[Ints, Ints, pd.DatetimeIndex]:
    import exchange_calendars as xcals

    with warnings.catch_warnings():  # exchange_calendars calls Series.values on tz-aware data
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar(name, start=f"{y0}-01-01", end=f"{y1}-12-31")
    sched = cal.schedule
    return (pd.DatetimeIndex(sched["open"]).as_unit("ns").asi8.copy(),
            pd.DatetimeIndex(sched["close"]).as_unit("ns").asi8.copy(),
            pd.DatetimeIndex(sched.index))


class History(NamedTuple):
    """Volume history on a session calendar (from :func:`build_history`)."""

    opens: Ints
    closes: Ints
    dates: pd.DatetimeIndex
    sess: Ints  # global session index of each history row (sorted)
    shares: Floats  # rows x bins: share of the session's volume in each bin
    totals: Floats  # session volume
    last_ts: Ints  # latest bin start used in each row
    bin_ns: int


def build_history(volume_history: pd.Series, *, first_ns: int, last_ns: int, bin_ns: int,
                  calendar: str) -> History:
    """Per-session volume shares by bin of ``volume_history`` (session hours only), on the
    ``calendar`` sessions that cover ``first_ns .. last_ns``.

    Raises
    ------
    TypeError
        ``volume_history`` is not a Series indexed by tz-aware timestamps.
    """
    if not isinstance(volume_history, pd.Series) or not isinstance(
            volume_history.index, pd.DatetimeIndex) or volume_history.index.tz is None:
        raise TypeError("`volume_history` must be a pandas Series of volume indexed by tz-aware "
                        "bin-start timestamps, e.g. trades.set_index('ts')['qty']"
                        ".resample('5min').sum()")
    ts = volume_history.index.tz_convert("UTC").as_unit("ns").asi8
    vol = volume_history.to_numpy(dtype=np.float64, na_value=0.0)
    lo = min(int(ts.min()) if ts.size else first_ns, first_ns)
    y0, y1 = pd.Timestamp(lo).year - 1, pd.Timestamp(max(last_ns, first_ns)).year + 1
    opens, closes, dates = _calendar(calendar, y0, y1)
    j = np.searchsorted(opens, ts, side="right") - 1
    ok = (j >= 0) & (vol > 0)
    ok[ok] &= ts[ok] < closes[j[ok]]
    ts, vol, j = ts[ok], vol[ok], j[ok]
    n_bins = int(-(-int((closes - opens).max()) // bin_ns))
    sess, row = np.unique(j, return_inverse=True)
    mat = np.zeros((sess.size, n_bins))
    np.add.at(mat, (row, (ts - opens[j]) // bin_ns), vol)
    totals = mat.sum(axis=1)
    last_ts = np.full(sess.size, np.iinfo(np.int64).min)
    np.maximum.at(last_ts, row, ts)
    return History(opens, closes, dates, sess.astype(np.int64), mat / totals[:, None], totals,
                    last_ts, bin_ns)


def _profile(h: History, s: int, lookback: int) -> tuple[Floats, float, NDArray[np.int64]]:
    rows = np.flatnonzero(h.sess < s)[-lookback:]
    if rows.size == 0:
        raise ValueError(f"volume_history has no session before the decision session "
                         f"{h.dates[s].date()}; a VWAP/POV forecast needs at least one earlier "
                         "session: give more history or use twap")
    if h.last_ts[rows].max() >= h.opens[s]:  # pragma: no cover - guaranteed by the filter above
        raise LeakageError(f"volume profile for session {h.dates[s].date()} would use a bin at "
                           f"{pd.Timestamp(int(h.last_ts[rows].max()), tz='UTC')}")
    return h.shares[rows].mean(axis=0), float(h.totals[rows].mean()), rows


def _decision_session(h: History, dec_ns: ArrayLike) -> Ints:
    """First session that closes after the decision (the current or the next one)."""
    return np.searchsorted(h.closes, np.asarray(dec_ns), side="right").astype(np.int64)


def _forecast_bins(h: History, s: int, j_last: int, prof: Floats,
                   adv: float) -> tuple[Ints, Ints, Floats]:
    """Forecast volume per bin over sessions ``s..j_last``: (start_ns, end_ns, volume)."""
    js = np.arange(s, max(j_last, s - 1) + 1)
    k = np.arange(prof.size, dtype=np.int64)
    start = (h.opens[js][:, None] + k[None, :] * h.bin_ns).ravel()
    close = np.repeat(h.closes[js], prof.size)
    stop = np.minimum(start + h.bin_ns, close)
    vol = np.tile(prof * adv, js.size) * (stop - start).clip(0) / h.bin_ns
    keep = start < close
    return start[keep], stop[keep], vol[keep]


def cum_curve(start: Ints, stop: Ints, vol: Floats, t: Ints, origin: int) -> Floats:
    """Cumulative volume at times ``t`` for piecewise-uniform volume over non-overlapping bins."""
    if start.size == 0:
        return np.zeros(t.shape)
    c = np.cumsum(vol)
    xp = np.column_stack([start, stop]).ravel() - origin
    fp = np.column_stack([c - vol, c]).ravel()
    return np.interp((t - origin).astype(np.float64), xp.astype(np.float64), fp)


class VolumeProfile(NamedTuple):
    """Intraday volume profile of one decision session, from earlier sessions only.

    ``shares[k]`` is the mean share of session volume in the bin ``[open + k*bin_ns, ...)``;
    ``daily_volume`` the mean session volume; ``sessions_used`` the session dates averaged.
    """

    shares: Floats
    bin_ns: int
    daily_volume: float
    decision_session: pd.Timestamp
    sessions_used: pd.DatetimeIndex


def volume_profile(volume_history: pd.Series, *, decision_ts: pd.Timestamp, bin_ns: int = BIN_NS,
                   lookback_sessions: int = 20, calendar: str = "XNYS") -> VolumeProfile:
    """Intraday volume profile for a decision, averaged over the sessions **before** it.

    Parameters
    ----------
    volume_history : pandas.Series
        Volume per bin indexed by tz-aware bin-start timestamps (any bin length <= ``bin_ns``;
        bins outside session hours are ignored).
    decision_ts : pandas.Timestamp
        Decision time (tz-aware). Its session is the first that closes after it; only sessions
        before that one are used, whatever ``volume_history`` holds.
    bin_ns : int, default=300_000_000_000
        Profile bin length (5 minutes), from the session open.
    lookback_sessions : int, default=20
        Number of earlier sessions (with volume) averaged; each session weighs the same.
    calendar : str, default="XNYS"
        ``exchange_calendars`` name (sessions, early closes, DST).

    Raises
    ------
    ValueError
        When no session with volume precedes the decision session.
    """
    dec = ts_ns(decision_ts, "decision_ts")
    h = build_history(volume_history, first_ns=dec, last_ns=dec, bin_ns=bin_ns,
                      calendar=calendar)
    s = int(_decision_session(h, dec))
    prof, adv, rows = _profile(h, s, lookback_sessions)
    return VolumeProfile(prof, bin_ns, adv, h.dates[s], h.dates[h.sess[rows]])


def forecast_volume(volume_history: pd.Series, *, decision_ts: pd.Timestamp,
                    end_ts: pd.Timestamp, bin_ns: int = BIN_NS, lookback_sessions: int = 20,
                    calendar: str = "XNYS") -> pd.Series:
    """Forecast volume per bin from the decision session to ``end_ts`` (profile x mean volume).

    Uses :func:`volume_profile` (earlier sessions only); the result, indexed by UTC bin starts,
    feeds :func:`pov` as a causal forecast of market volume.
    """
    dec, end = ts_ns(decision_ts, "decision_ts"), ts_ns(end_ts, "end_ts")
    h = build_history(volume_history, first_ns=dec, last_ns=end, bin_ns=bin_ns,
                      calendar=calendar)
    s = int(_decision_session(h, dec))
    prof, adv, _ = _profile(h, s, lookback_sessions)
    j_last = int(np.searchsorted(h.opens, end, side="right") - 1)
    start, _, vol = _forecast_bins(h, s, j_last, prof, adv)
    return pd.Series(vol, index=pd.DatetimeIndex(pd.to_datetime(start, utc=True), name="ts"),
                     name="volume")


def pov_frac(cum_at: Floats, total: Floats, qty: Floats, idx: Ints, rate: float,
             max_rate: float) -> Floats:
    """POV: trade ``r`` x volume until done; ``r`` rises from ``rate`` up to ``max_rate`` when
    ``rate`` x volume cannot complete the order; what even ``max_rate`` cannot absorb is left
    to the last slice."""
    need = np.divide(qty, total, out=np.full_like(qty, np.inf), where=total > 0)
    r = np.maximum(rate, np.minimum(need, max_rate))
    return np.minimum(r[idx] * cum_at / qty[idx], 1.0)


def volume_fracs(kind: str, flat: Flat, dec: Ints, end: Ints, qty: Floats, h: History,
                 lookback: int, rate: float, max_rate: float) -> Floats:
    """Cumulative target fraction of each slice of a ``"vwap"`` or ``"pov"`` schedule, from the
    forecast volume of each order's decision session (earlier sessions only).

    Raises
    ------
    ValueError
        No earlier session, or (VWAP) an order with no forecast volume in its window.
    """
    sess = _decision_session(h, dec)
    frac = np.empty(flat.idx.size)
    slice_sess = sess[flat.idx]
    for s in np.unique(sess):  # one pass per decision session, not per order
        o = np.flatnonzero(sess == s)
        m = np.flatnonzero(slice_sess == s)
        prof, adv, _ = _profile(h, int(s), lookback)
        j_last = int(np.searchsorted(h.opens, end[o].max(), side="right") - 1)
        b0, b1, vol = _forecast_bins(h, int(s), j_last, prof, adv)
        origin = int(h.opens[min(int(s), h.opens.size - 1)])
        c_dec = cum_curve(b0, b1, vol, dec, origin)
        total = cum_curve(b0, b1, vol, end[o], origin) - c_dec[o]
        at = cum_curve(b0, b1, vol, flat.stop[m], origin) - c_dec[flat.idx[m]]
        pos = np.searchsorted(o, flat.idx[m])
        if kind == "vwap":
            if (total <= 0).any():
                bad = int(o[np.argmax(total <= 0)])
                raise ValueError(
                    f"{int((total <= 0).sum())} order(s) have no forecast volume between "
                    f"decision_ts and end_ts (first: order {bad}, "
                    f"{pd.Timestamp(int(dec[bad]), tz='UTC')} .. "
                    f"{pd.Timestamp(int(end[bad]), tz='UTC')}): they lie outside session hours; "
                    "schedule them with twap")
            frac[m] = at / total[pos]
        else:
            frac[m] = pov_frac(at, total, qty[o], pos, rate, max_rate)
    return frac
