"""Execution schedules: a parent order -> child slices (TWAP, VWAP, POV, Almgren–Chriss, IS urgency).

Every schedule is a pure function ``(order, *, grid/bins, ...) -> pandas.DataFrame`` with the
columns of :class:`ScheduleSchema` (``order_id, slice_ts, slice_end_ts, qty``; UTC nanoseconds),
checked on the way out by :func:`check_schedule`. Invariants (tested for every schedule):

* child quantities sum to the parent ``qty`` (exactly for integral lots): each schedule fixes a
  cumulative target fraction ``F`` at the end of each slice; the cumulative position is rounded to
  whole lots (``floor(F * n_lots + 1/2)``), the last slice completes the order and carries the odd
  lot, so the rounding remainder goes to a deterministic place and the position never drifts more
  than half a lot from the target;
* ``decision_ts <= slice_ts <= slice_end_ts <= end_ts``; quantities > 0 (empty slices are
  dropped); the output is a deterministic function of the inputs.

:func:`schedule_batch` is the vectorized form for many orders (flat numpy arrays, no Python loop
per order), used by the simulator; :func:`schedule_orders` wraps it for a ``parent_orders`` frame.

VWAP and the POV forecast use an intraday volume profile built **only from sessions before the
decision session** (the first session that closes after ``decision_ts``); see
:func:`volume_profile`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from typing import Any, Final, Literal, NamedTuple

import numpy as np
import pandas as pd
import pandera.pandas as pa
from numpy.typing import ArrayLike, NDArray
from pandera.typing import Series

from models.almgren_chriss import AlmgrenChrissParams, holdings_fraction, kappa
from validation.errors import LeakageError

__all__ = [
    "KINDS",
    "ChildSlices",
    "ScheduleSchema",
    "VolumeProfile",
    "almgren_chriss",
    "check_schedule",
    "forecast_volume",
    "is_urgency",
    "pov",
    "schedule_batch",
    "schedule_orders",
    "twap",
    "volume_profile",
    "vwap",
]

Kind = Literal["twap", "vwap", "pov", "almgren_chriss", "is_urgency"]
KINDS: Final = ("twap", "vwap", "pov", "almgren_chriss", "is_urgency")
BIN_NS: Final = 300_000_000_000  # 5-minute volume bins
Ints = NDArray[np.int64]
Floats = NDArray[np.float64]
_TS = {"dtype_kwargs": {"unit": "ns", "tz": "UTC"}}


class ScheduleSchema(pa.DataFrameModel):
    """Child slices: one row per slice of a parent order with a positive quantity."""

    order_id: Series[str] = pa.Field(str_length={"min_value": 1})
    slice_ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    slice_end_ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    qty: Series[float] = pa.Field(gt=0)

    class Config:
        strict = True
        coerce = True

    @pa.dataframe_check(name="slice_end_ts >= slice_ts", element_wise=False)
    def _ordered(cls, df: pd.DataFrame) -> Series[bool]:
        return df["slice_end_ts"] >= df["slice_ts"]


class ChildSlices(NamedTuple):
    """Flat child arrays of :func:`schedule_batch` (sorted by order, then time)."""

    order_idx: Ints
    slice_ns: Ints
    child_qty: Floats


class _Flat(NamedTuple):
    idx: Ints  # order of each slice
    start: Ints  # slice start, ns
    stop: Ints  # slice end, ns


# --------------------------------------------------------------------------- grids and rounding
def _uniform_grid(dec: Ints, end: Ints, n_slices: ArrayLike | None,
                  slice_ns: ArrayLike | None) -> _Flat:
    if (n_slices is None) == (slice_ns is None):
        raise ValueError("give exactly one of `n_slices` (slices per order) or `slice_ns` "
                         "(slice length in ns)")
    dur = end - dec
    if n_slices is not None:
        n = np.broadcast_to(np.asarray(n_slices, dtype=np.int64), dec.shape)
        if (n < 1).any():
            raise ValueError(f"`n_slices` must be >= 1, got min {int(n.min())}; use 1 for a "
                             "single child")
        n = np.where(dur == 0, 1, n)
    else:
        s = np.broadcast_to(np.asarray(slice_ns, dtype=np.int64), dec.shape)
        if (s < 1).any():
            raise ValueError(f"`slice_ns` must be >= 1 ns, got min {int(s.min())}; e.g. 60e9 "
                             "for one-minute slices")
        n = np.maximum(-(-dur // s), 1)
    idx = np.repeat(np.arange(dec.size, dtype=np.int64), n)
    first = np.cumsum(n) - n
    j = np.arange(idx.size, dtype=np.int64) - first[idx]
    d, ni = dur[idx], n[idx]
    if n_slices is not None:  # b_j = dec + floor(j * D / n) without overflow
        q, r = np.divmod(d, ni)
        start, stop = j * q + (j * r) // ni, (j + 1) * q + ((j + 1) * r) // ni
    else:
        si = np.broadcast_to(np.asarray(slice_ns, dtype=np.int64), dec.shape)[idx]
        start, stop = np.minimum(j * si, d), np.minimum((j + 1) * si, d)
    return _Flat(idx, dec[idx] + start, dec[idx] + stop)


def _elapsed(flat: _Flat, dec: Ints, end: Ints) -> Floats:
    """Fraction of each order's horizon elapsed at the end of each slice."""
    dur = (end - dec)[flat.idx]
    done = (flat.stop - dec[flat.idx]).astype(np.float64)
    return np.divide(done, dur, out=np.ones_like(done), where=dur > 0)


def _round(flat: _Flat, frac: Floats, qty: Floats, lot: float) -> Floats:
    """Child quantities from cumulative target fractions (see the module docstring)."""
    if not lot > 0:
        raise ValueError(f"`lot={lot}` must be > 0 (1 for shares, e.g. 0.001 for crypto)")
    idx = flat.idx
    last = np.r_[idx[1:] != idx[:-1], True]
    n_lots = np.floor(qty / lot + 1e-9).astype(np.int64)
    cum = np.floor(np.clip(frac, 0.0, 1.0) * n_lots[idx] + 0.5).astype(np.int64)
    cum[last] = n_lots[idx[last]]
    # keep the cumulative position monotone within each order (guards float noise)
    offset = idx * (int(n_lots.max(initial=0)) + 1)
    cum = np.maximum.accumulate(cum + offset) - offset
    lots = np.diff(cum, prepend=0)
    lots[np.r_[True, idx[1:] != idx[:-1]]] = cum[np.r_[True, idx[1:] != idx[:-1]]]
    child = lots.astype(np.float64) * lot
    child[last] += np.maximum(qty - n_lots * lot, 0.0)[idx[last]]
    return child


# --------------------------------------------------------------------------- volume profiles
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


class _History(NamedTuple):
    opens: Ints
    closes: Ints
    dates: pd.DatetimeIndex
    sess: Ints  # global session index of each history row (sorted)
    shares: Floats  # rows x bins: share of the session's volume in each bin
    totals: Floats  # session volume
    last_ts: Ints  # latest bin start used in each row
    bin_ns: int


def _history(volume_history: pd.Series, *, first_ns: int, last_ns: int, bin_ns: int,
             calendar: str) -> _History:
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
    return _History(opens, closes, dates, sess.astype(np.int64), mat / totals[:, None], totals,
                    last_ts, bin_ns)


def _profile(h: _History, s: int, lookback: int) -> tuple[Floats, float, NDArray[np.int64]]:
    rows = np.flatnonzero(h.sess < s)[-lookback:]
    if rows.size == 0:
        raise ValueError(f"volume_history has no session before the decision session "
                         f"{h.dates[s].date()}; a VWAP/POV forecast needs at least one earlier "
                         "session: give more history or use twap")
    if h.last_ts[rows].max() >= h.opens[s]:  # pragma: no cover - guaranteed by the filter above
        raise LeakageError(f"volume profile for session {h.dates[s].date()} would use a bin at "
                           f"{pd.Timestamp(int(h.last_ts[rows].max()), tz='UTC')}")
    return h.shares[rows].mean(axis=0), float(h.totals[rows].mean()), rows


def _decision_session(h: _History, dec_ns: ArrayLike) -> Ints:
    """First session that closes after the decision (the current or the next one)."""
    return np.searchsorted(h.closes, np.asarray(dec_ns), side="right").astype(np.int64)


def _forecast_bins(h: _History, s: int, j_last: int, prof: Floats,
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


def _cum_curve(start: Ints, stop: Ints, vol: Floats, t: Ints, origin: int) -> Floats:
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
    dec = _ts_ns(decision_ts, "decision_ts")
    h = _history(volume_history, first_ns=dec, last_ns=dec, bin_ns=bin_ns, calendar=calendar)
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
    dec, end = _ts_ns(decision_ts, "decision_ts"), _ts_ns(end_ts, "end_ts")
    h = _history(volume_history, first_ns=dec, last_ns=end, bin_ns=bin_ns, calendar=calendar)
    s = int(_decision_session(h, dec))
    prof, adv, _ = _profile(h, s, lookback_sessions)
    j_last = int(np.searchsorted(h.opens, end, side="right") - 1)
    start, _, vol = _forecast_bins(h, s, j_last, prof, adv)
    return pd.Series(vol, index=pd.DatetimeIndex(pd.to_datetime(start, utc=True), name="ts"),
                     name="volume")


# --------------------------------------------------------------------------- fractions per kind
def _pov_frac(cum_at: Floats, total: Floats, qty: Floats, idx: Ints, rate: float,
              max_rate: float) -> Floats:
    """POV: trade ``r`` x volume until done; ``r`` rises from ``rate`` up to ``max_rate`` when
    ``rate`` x volume cannot complete the order; what even ``max_rate`` cannot absorb is left
    to the last slice."""
    need = np.divide(qty, total, out=np.full_like(qty, np.inf), where=total > 0)
    r = np.maximum(rate, np.minimum(need, max_rate))
    return np.minimum(r[idx] * cum_at / qty[idx], 1.0)


def _volume_fracs(kind: str, flat: _Flat, dec: Ints, end: Ints, qty: Floats, h: _History,
                  lookback: int, rate: float, max_rate: float) -> Floats:
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
        c_dec = _cum_curve(b0, b1, vol, dec, origin)
        total = _cum_curve(b0, b1, vol, end[o], origin) - c_dec[o]
        at = _cum_curve(b0, b1, vol, flat.stop[m], origin) - c_dec[flat.idx[m]]
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
            frac[m] = _pov_frac(at, total, qty[o], pos, rate, max_rate)
    return frac


# --------------------------------------------------------------------------- batch
def _check_orders(dec: Ints, end: Ints, qty: Floats) -> None:
    if not (dec.shape == end.shape == qty.shape and dec.ndim == 1):
        raise ValueError(f"decision_ns, end_ns and qty must be 1-d arrays of one length, got "
                         f"shapes {dec.shape}, {end.shape}, {qty.shape}")
    bad = np.flatnonzero(end < dec)
    if bad.size:
        raise ValueError(f"order {int(bad[0])}: end_ns < decision_ns ({int(end[bad[0]])} < "
                         f"{int(dec[bad[0]])}); an order must end at or after its decision")
    bad = np.flatnonzero(~(qty > 0) | ~np.isfinite(qty))
    if bad.size:
        raise ValueError(f"order {int(bad[0])}: qty={qty[bad[0]]} must be finite and > 0")


def _schedule_flat(kind: str, dec: Ints, end: Ints, qty: Floats, *, n_slices: Any, slice_ns: Any,
                   lot: float, urgency: Any, kappa_t: Any, volume_history: pd.Series | None,
                   bin_ns: int, lookback_sessions: int, rate: float | None,
                   max_rate: float | None, calendar: str, flat: _Flat | None = None,
                   ) -> tuple[_Flat, Floats]:
    if kind not in KINDS:
        raise ValueError(f"unknown schedule kind={kind!r}; choose one of {', '.join(KINDS)}")
    extra = {"urgency": urgency, "kappa_t": kappa_t, "volume_history": volume_history,
             "rate": rate, "max_rate": max_rate}
    wanted = {"is_urgency": {"urgency"}, "almgren_chriss": {"kappa_t"},
              "vwap": {"volume_history"}, "pov": {"volume_history", "rate", "max_rate"}}
    for name, val in extra.items():
        if val is not None and name not in wanted.get(kind, set()):
            raise ValueError(f"`{name}` does not apply to kind={kind!r}; drop it")
    _check_orders(dec, end, qty)
    flat = flat if flat is not None else _uniform_grid(dec, end, n_slices, slice_ns)
    s = _elapsed(flat, dec, end)
    if kind == "twap":
        frac = s
    elif kind == "is_urgency":
        if urgency is None:
            raise ValueError("kind='is_urgency' needs `urgency` (>= 0; 0 is TWAP; urgency=3 "
                             "trades 82% of the order in the first half of the horizon)")
        u = np.broadcast_to(np.asarray(urgency, dtype=np.float64), dec.shape)
        if (u < 0).any() or not np.isfinite(u).all():
            raise ValueError(f"`urgency` must be finite and >= 0, got min {u.min()}")
        ui = u[flat.idx]
        frac = np.divide(np.expm1(-ui * s), np.expm1(-ui), out=s.copy(), where=ui > 0)
    elif kind == "almgren_chriss":
        if kappa_t is None:
            raise ValueError("kind='almgren_chriss' needs `kappa_t` = kappa*T (dimensionless; "
                             "models.almgren_chriss.kappa(params) * params.T)")
        kt = np.broadcast_to(np.asarray(kappa_t, dtype=np.float64), dec.shape)
        if (kt < 0).any() or not np.isfinite(kt).all():
            raise ValueError(f"`kappa_t` must be finite and >= 0, got min {kt.min()}")
        frac = 1.0 - holdings_fraction(kt[flat.idx], s)
    else:
        if volume_history is None:
            raise ValueError(f"kind={kind!r} needs `volume_history` (volume per bin indexed by "
                             "tz-aware bin starts)")
        if kind == "pov":
            if rate is None or not 0 < rate <= 1:
                raise ValueError(f"kind='pov' needs `rate` in (0, 1], got rate={rate}")
            max_rate = rate if max_rate is None else max_rate
            if not rate <= max_rate:
                raise ValueError(f"`max_rate={max_rate}` must be >= rate={rate}")
        h = _history(volume_history, first_ns=int(dec.min()), last_ns=int(end.max()),
                     bin_ns=bin_ns, calendar=calendar)
        frac = _volume_fracs(kind, flat, dec, end, qty, h, lookback_sessions,
                             float(rate or 0.0), float(max_rate or 0.0))
    return flat, _round(flat, frac, qty, lot)


def schedule_batch(kind: Kind, decision_ns: ArrayLike, end_ns: ArrayLike, qty: ArrayLike, *,
                   n_slices: ArrayLike | None = None, slice_ns: ArrayLike | None = None,
                   lot: float = 1.0, urgency: ArrayLike | None = None,
                   kappa_t: ArrayLike | None = None, volume_history: pd.Series | None = None,
                   bin_ns: int = BIN_NS, lookback_sessions: int = 20, rate: float | None = None,
                   max_rate: float | None = None, calendar: str = "XNYS") -> ChildSlices:
    """Schedule many parent orders at once on a uniform time grid (vectorized).

    Parameters
    ----------
    kind : {"twap", "vwap", "pov", "almgren_chriss", "is_urgency"}
        Schedule family.
    decision_ns, end_ns : array_like of int64
        Decision and end times (UTC epoch ns), one per order; ``end_ns >= decision_ns``.
    qty : array_like of float
        Parent quantities (> 0; unsigned).
    n_slices, slice_ns : array_like of int, optional
        Exactly one: slices per order (equal lengths), or the slice length in ns (the last slice
        of each order is cut at ``end_ns``). Scalars broadcast. A zero-duration order is one slice.
    lot : float, default=1.0
        Lot size; cumulative positions are rounded to whole lots (see the module docstring).
    urgency : array_like of float, optional
        ``is_urgency`` only: trade rate ``~ exp(-urgency * t/duration)``; 0 is TWAP.
    kappa_t : array_like of float, optional
        ``almgren_chriss`` only: ``kappa * T``; holdings ``sinh(kT (1-s))/sinh(kT)``.
    volume_history : pandas.Series, optional
        ``vwap`` / ``pov``: volume per bin (tz-aware bin starts) of **one symbol** (call once per
        symbol); each order's forecast uses only sessions before its decision session
        (:func:`volume_profile`).
    bin_ns, lookback_sessions, calendar
        Volume-profile settings (see :func:`volume_profile`).
    rate, max_rate : float, optional
        ``pov`` only: target participation of forecast volume, and the cap up to which it rises
        when ``rate`` cannot complete the order by ``end_ns`` (default: ``rate``); whatever the
        cap cannot absorb is traded in the last slice.

    Returns
    -------
    ChildSlices
        Flat ``(order_idx, slice_ns, child_qty)``, sorted by order then time, slices with zero
        quantity dropped. ``slice_ns`` is each child's slice start.

    Examples
    --------
    >>> out = schedule_batch("twap", [0, 0], [600, 0], [10.0, 5.0], n_slices=3)
    >>> out.order_idx.tolist(), out.slice_ns.tolist(), out.child_qty.tolist()
    ([0, 0, 0, 1], [0, 200, 400, 0], [3.0, 4.0, 3.0, 5.0])
    """
    dec = np.asarray(decision_ns, dtype=np.int64)
    end = np.asarray(end_ns, dtype=np.int64)
    q = np.asarray(qty, dtype=np.float64)
    flat, child = _schedule_flat(kind, dec, end, q, n_slices=n_slices, slice_ns=slice_ns,
                                 lot=lot, urgency=urgency, kappa_t=kappa_t,
                                 volume_history=volume_history, bin_ns=bin_ns,
                                 lookback_sessions=lookback_sessions, rate=rate,
                                 max_rate=max_rate, calendar=calendar)
    keep = child > 0
    return ChildSlices(flat.idx[keep], flat.start[keep], child[keep])


# --------------------------------------------------------------------------- frames
def _ts_ns(value: Any, name: str) -> int:
    ts = pd.Timestamp(value)
    if ts.tz is None:
        raise ValueError(f"`{name}={value}` has no time zone; give a tz-aware (UTC) timestamp")
    return int(ts.tz_convert("UTC").as_unit("ns").value)


def _order(order: Any) -> tuple[str, float, int, int]:
    def get(key: str) -> Any:
        return order[key] if isinstance(order, Mapping | pd.Series) else getattr(order, key)

    qty = float(get("qty"))
    return (str(get("order_id")), qty, _ts_ns(get("decision_ts"), "decision_ts"),
            _ts_ns(get("end_ts"), "end_ts"))


def _frame(order_ids: NDArray[Any], flat: _Flat, child: Floats) -> pd.DataFrame:
    keep = child > 0
    return pd.DataFrame({
        "order_id": pd.array(order_ids[flat.idx[keep]], dtype="str"),
        "slice_ts": pd.to_datetime(flat.start[keep], utc=True),
        "slice_end_ts": pd.to_datetime(flat.stop[keep], utc=True),
        "qty": child[keep],
    })


def check_schedule(schedule: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """Validate a schedule against :class:`ScheduleSchema` and its parent orders.

    Checks, per order: child quantities sum to ``qty`` (to 1e-12 relative; exact for integral
    lots), no slice starts before ``decision_ts``, none ends after ``end_ts``, every order is
    scheduled and no unknown order appears.

    Raises
    ------
    ValueError
        Naming the first offending order, the rule, and the values.
    """
    out = ScheduleSchema.validate(schedule)
    o = orders.set_index(orders["order_id"].astype(str))
    g = out.groupby("order_id", sort=False)
    agg = pd.DataFrame({"sum": g["qty"].sum(), "first": g["slice_ts"].min(),
                        "last": g["slice_end_ts"].max()})
    unknown = agg.index.difference(o.index)
    missing = o.index.difference(agg.index)
    if len(unknown) or len(missing):
        raise ValueError(f"schedule and orders disagree: unknown order_id(s) {list(unknown[:3])},"
                         f" unscheduled {list(missing[:3])}")
    o = o.loc[agg.index]
    rules = {
        "sum(child qty) == parent qty":
            ~np.isclose(agg["sum"].to_numpy(), o["qty"].to_numpy(dtype=float), rtol=1e-12, atol=0),
        "slice_ts >= decision_ts": (agg["first"] < o["decision_ts"]).to_numpy(),
        "slice_end_ts <= end_ts": (agg["last"] > o["end_ts"]).to_numpy(),
    }
    for rule, bad in rules.items():
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"order_id={agg.index[i]} violates {rule!r}: {agg.iloc[i].to_dict()}"
                             f" vs order {o.iloc[i][['qty', 'decision_ts', 'end_ts']].to_dict()}")
    return out


def _single(order: Any, kind: str, *, flat: _Flat | None = None, n_slices: Any = None,
            slice_ns: Any = None, lot: float = 1.0, **kw: Any) -> pd.DataFrame:
    oid, qty, dec, end = _order(order)
    d, e, q = np.array([dec]), np.array([end]), np.array([qty])
    defaults = {"urgency": None, "kappa_t": None, "volume_history": None, "bin_ns": BIN_NS,
                "lookback_sessions": 20, "rate": None, "max_rate": None, "calendar": "XNYS"}
    flat, child = _schedule_flat(kind, d, e, q, n_slices=n_slices, slice_ns=slice_ns, lot=lot,
                                 flat=flat, **(defaults | kw))
    orders = pd.DataFrame({"order_id": [oid], "qty": [qty],
                           "decision_ts": pd.to_datetime([dec], utc=True),
                           "end_ts": pd.to_datetime([end], utc=True)})
    return check_schedule(_frame(np.array([oid], dtype=object), flat, child), orders)


def _edges_grid(dec: int, end: int, edges: Ints) -> _Flat:
    inner = np.unique(edges[(edges > dec) & (edges < end)])
    b = np.r_[dec, inner, end] if end > dec else np.array([dec, end])
    return _Flat(np.zeros(b.size - 1, dtype=np.int64), b[:-1].astype(np.int64),
                 b[1:].astype(np.int64))


def twap(order: Any, *, n_slices: int | None = None, slice_ns: int | None = None,
         lot: float = 1.0) -> pd.DataFrame:
    """Time-weighted schedule: quantity proportional to slice duration.

    ``order`` is a parent-order record (mapping, ``pandas.Series`` or object) with ``order_id,
    qty, decision_ts, end_ts``; exactly one of ``n_slices`` or ``slice_ns`` sets the grid.

    Examples
    --------
    >>> o = dict(order_id="A", qty=1000.0, decision_ts=pd.Timestamp("2024-11-04 15:00", tz="UTC"),
    ...          end_ts=pd.Timestamp("2024-11-04 15:30", tz="UTC"))
    >>> twap(o, n_slices=3)["qty"].tolist()
    [333.0, 334.0, 333.0]
    """
    return _single(order, "twap", n_slices=n_slices, slice_ns=slice_ns, lot=lot)


def is_urgency(order: Any, *, urgency: float, n_slices: int | None = None,
               slice_ns: int | None = None, lot: float = 1.0) -> pd.DataFrame:
    """Implementation-shortfall schedule, front-loaded by ``urgency``.

    The trade rate decays as ``exp(-urgency * s)`` over the horizon fraction ``s``: the cumulative
    fraction is ``(1 - exp(-urgency s)) / (1 - exp(-urgency))``; ``urgency=0`` is TWAP, larger
    values finish sooner (the continuous Almgren–Chriss trajectory with ``kappa*T`` large behaves
    alike).
    """
    return _single(order, "is_urgency", n_slices=n_slices, slice_ns=slice_ns, lot=lot,
                   urgency=urgency)


def almgren_chriss(order: Any, *, params: AlmgrenChrissParams, lot: float = 1.0) -> pd.DataFrame:
    """Almgren–Chriss optimal schedule: ``params.N`` equal slices over ``[decision_ts, end_ts]``.

    The child fractions are the model's trades ``n_k / X`` (they depend only on ``kappa*T`` and
    ``N``, not on ``X``), applied to the order's ``qty``; the model horizon ``params.T`` (trading
    days) is mapped linearly onto the order's wall-clock window. Build ``params`` from a calibrated
    impact model and an urgency ``lam`` with :func:`models.almgren_chriss.params_from_athl`.
    """
    return _single(order, "almgren_chriss", n_slices=params.N, lot=lot,
                   kappa_t=kappa(params) * params.T)


def vwap(order: Any, *, volume_history: pd.Series, bin_ns: int = BIN_NS,
         lookback_sessions: int = 20, calendar: str = "XNYS", lot: float = 1.0) -> pd.DataFrame:
    """Volume-weighted schedule on the profile bins, from **earlier sessions only**.

    Slices are the profile bins (``bin_ns`` from each session open) that overlap the order's
    window, cut at ``decision_ts`` and ``end_ts``; quantity follows the forecast volume of each
    slice (uniform within a bin). See :func:`volume_profile` for the causality rule.

    Raises
    ------
    ValueError
        When no earlier session exists, or the window has no forecast volume (outside hours).
    """
    _, _, dec, end = _order(order)
    fc = forecast_volume(volume_history, decision_ts=pd.Timestamp(dec, tz="UTC"),
                         end_ts=pd.Timestamp(end, tz="UTC"), bin_ns=bin_ns,
                         lookback_sessions=lookback_sessions, calendar=calendar)
    starts = fc.index.as_unit("ns").asi8
    flat = _edges_grid(dec, end, np.r_[starts, starts + bin_ns])
    return _single(order, "vwap", flat=flat, lot=lot, volume_history=volume_history,
                   bin_ns=bin_ns, lookback_sessions=lookback_sessions, calendar=calendar)


def pov(order: Any, *, market_volume: pd.Series, rate: float, max_rate: float | None = None,
        bin_ns: int = BIN_NS, lot: float = 1.0) -> pd.DataFrame:
    """Participation schedule: ``rate`` x market volume per bin, capped at ``max_rate``.

    Parameters
    ----------
    market_volume : pandas.Series
        Volume per bin (tz-aware bin starts, bins of ``bin_ns``): a causal forecast
        (:func:`forecast_volume`) or, for an ex-post replay, realized volume.
    rate : float
        Target participation in (0, 1]; the order completes early when volume allows.
    max_rate : float, optional
        Cap (default ``rate``): when ``rate`` x volume cannot complete the order by ``end_ts``,
        participation rises uniformly up to ``max_rate``; what the cap cannot absorb is traded
        in the last slice (the only slice allowed above the cap).
    """
    oid, qty, dec, end = _order(order)
    max_rate = rate if max_rate is None else max_rate
    if rate is None or not 0 < rate <= 1 or not rate <= max_rate:
        raise ValueError(f"pov needs 0 < rate <= 1 and max_rate >= rate, got rate={rate}, "
                         f"max_rate={max_rate}")
    mv = market_volume.sort_index()
    b0 = mv.index.tz_convert("UTC").as_unit("ns").asi8
    b1, vol = b0 + bin_ns, mv.to_numpy(dtype=np.float64, na_value=0.0)
    flat = _edges_grid(dec, end, np.r_[b0, b1])
    c_dec = _cum_curve(b0, b1, vol, np.array([dec]), dec)
    total = _cum_curve(b0, b1, vol, np.array([end]), dec) - c_dec
    at = _cum_curve(b0, b1, vol, flat.stop, dec) - c_dec[0]
    frac = _pov_frac(at, total, np.array([qty]), flat.idx, rate, max_rate)
    child = _round(flat, frac, np.array([qty]), lot)
    orders = pd.DataFrame({"order_id": [oid], "qty": [qty],
                           "decision_ts": pd.to_datetime([dec], utc=True),
                           "end_ts": pd.to_datetime([end], utc=True)})
    return check_schedule(_frame(np.array([oid], dtype=object), flat, child), orders)


def schedule_orders(orders: pd.DataFrame, kind: Kind, **kwargs: Any) -> pd.DataFrame:
    """Schedule every row of a ``parent_orders`` frame with :func:`schedule_batch`; checked.

    ``kwargs`` are those of :func:`schedule_batch` (``n_slices`` or ``slice_ns`` required).
    Returns the :class:`ScheduleSchema` frame, sorted by order (input order) then time.
    """
    dec = pd.DatetimeIndex(orders["decision_ts"]).tz_convert("UTC").as_unit("ns").asi8
    end = pd.DatetimeIndex(orders["end_ts"]).tz_convert("UTC").as_unit("ns").asi8
    qty = orders["qty"].to_numpy(dtype=np.float64)
    defaults = {"n_slices": None, "slice_ns": None, "lot": 1.0, "urgency": None,
                "kappa_t": None, "volume_history": None, "bin_ns": BIN_NS,
                "lookback_sessions": 20, "rate": None, "max_rate": None, "calendar": "XNYS"}
    unknown = set(kwargs) - set(defaults)
    if unknown:
        raise TypeError(f"schedule_orders got unknown argument(s) {sorted(unknown)}; "
                        f"known: {sorted(defaults)}")
    flat, child = _schedule_flat(kind, dec, end, qty, **(defaults | kwargs))
    ids = orders["order_id"].astype(str).to_numpy(dtype=object)
    return check_schedule(_frame(ids, flat, child), orders)
