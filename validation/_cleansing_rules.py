"""Market-data cleansing rules as numpy kernels: parsing, calendar, duplicates, bad ticks, outages.

The pieces of :func:`validation.cleansing.cleanse_market` that do not build text: each takes numpy
arrays and returns numpy arrays (or the outages frame). :class:`CleanseConfig` lives here and is
re-exported by :mod:`validation.cleansing`, its public home.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from validation.contracts import ContractError, empty
from validation.values import EPOCH_UNITS, NAT, parse_numbers

_NAT: Final = NAT
_NS_PER_S: Final = 1_000_000_000


class CleanseConfig(BaseModel):
    """Parameters of the market-data cleansing rules.

    Parameters
    ----------
    calendar : str or None, default="XNYS"
        ``exchange_calendars`` name whose sessions bound the valid rows (``outside_session``) and
        the feed-gap search. ``None`` disables the session filter (24-hour markets such as crypto);
        gaps are then measured between consecutive rows only.
    gap_threshold_s : float or None, default=60.0
        A per-symbol in-session interval without an update longer than this many seconds is an
        outage (the open-to-first and last-to-close intervals of a session with data count too).
        ``None`` disables the outage search.
    bad_tick : bool, default=True
        Run the ``bad_tick`` rule (quotes mid and trade prices).
    bad_tick_window : int, default=20
        Number of preceding rows (same symbol, rows that passed the earlier rules) whose median is
        the reference level of a jump.
    bad_tick_min_periods : int, default=5
        A jump with fewer preceding rows than this is not judged.
    bad_tick_mads : float, default=8.0
        Threshold in robust standard deviations (1.4826 x MAD of the window).
    bad_tick_min_bps : float, default=100.0
        Threshold floor in basis points of the reference level; a jump from the previous price must
        also exceed it for the row to be a candidate.
    bad_tick_revert_rows : int, default=5
        The series must come back within the threshold of the window median within this many
        rows after the jump; otherwise the move is a level shift and nothing is flagged.
    bad_tick_reset_s : float or None, default=300.0
        A pause longer than this many seconds (a session break, an outage) restarts the
        reference window. ``None``: never.
    epoch_unit : {"s", "ms", "us", "ns"} or None, default=None
        Unit of ``ts`` / ``available_at`` stored as numbers; without it a number is refused
        (``type``), never guessed (:func:`validation.values.parse_timestamps`).

    Notes
    -----
    The bad-tick threshold is ``tau = max(bad_tick_mads * 1.4826 * MAD, bad_tick_min_bps * m / 1e4)``
    where ``m`` and ``MAD`` are the median and median absolute deviation of the window; a row is
    off when it is more than ``tau`` away from every price of the window (see :func:`bad_ticks`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    calendar: str | None = "XNYS"
    gap_threshold_s: float | None = Field(default=60.0, gt=0)
    bad_tick: bool = True
    bad_tick_window: int = Field(default=20, ge=3)
    bad_tick_min_periods: int = Field(default=5, ge=2)
    bad_tick_mads: float = Field(default=8.0, gt=0)
    bad_tick_min_bps: float = Field(default=100.0, gt=0)
    bad_tick_revert_rows: int = Field(default=5, ge=1)
    bad_tick_reset_s: float | None = Field(default=300.0, gt=0)
    epoch_unit: str | None = None

    @model_validator(mode="after")
    def _known_epoch_unit(self) -> CleanseConfig:
        if self.epoch_unit is not None and self.epoch_unit not in EPOCH_UNITS:
            raise ValueError(f"`epoch_unit={self.epoch_unit!r}`: choose one of "
                             f"{', '.join(EPOCH_UNITS)}")
        return self

    @model_validator(mode="after")
    def _periods_fit_window(self) -> CleanseConfig:
        if self.bad_tick_min_periods > self.bad_tick_window:
            raise ValueError(
                f"`bad_tick_min_periods={self.bad_tick_min_periods}` exceeds "
                f"`bad_tick_window={self.bad_tick_window}`; lower it or widen the window"
            )
        return self


@functools.lru_cache(maxsize=8)
def _empty_frame_cached(table: str) -> pd.DataFrame:
    return empty(table)


def empty_table(table: str) -> pd.DataFrame:
    """``validation.contracts.empty(table)``, built once (pandera's ``to_schema`` is slow)."""
    return _empty_frame_cached(table).copy()


# ----------------------------------------------------------------------------- parsing
def parse_float(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (null as NaN) and the mask of values that are not numbers (text that does
    not parse, booleans): :func:`validation.values.parse_numbers`."""
    p = parse_numbers(s)
    return p.values, p.bad


def parse_int(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`parse_float`, and a non-integral finite number is unreadable too."""
    vals, bad = parse_float(s)
    bad = bad | (np.isfinite(vals) & (vals != np.round(vals)))
    return vals, bad


def parse_symbol(s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes (-1 for missing or empty), the unique symbols (str), and the missing mask."""
    if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow" and len(s):
        arr = pa.array(s.array)  # zero copy
        first = arr[0].as_py()
        if first and first.strip() and pc.all(pc.equal(arr, arr[0])).as_py():
            # one symbol (a LOBSTER day, a per-symbol file): no hashing needed
            zeros = np.zeros(len(s), dtype=np.int64)
            return zeros, np.array([first], dtype=object), np.zeros(len(s), dtype=bool)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    names = np.array([str(u) for u in uniques], dtype=object)
    blank = np.array([not n.strip() for n in names], dtype=bool)
    codes = np.asarray(codes)
    if blank.any():
        codes = np.where((codes >= 0) & blank[np.maximum(codes, 0)], -1, codes)
    return codes, names, codes < 0


# ----------------------------------------------------------------------------- calendar
@functools.lru_cache(maxsize=32)
def _session_bounds(name: str, start_year: int, end_year: int) -> tuple[np.ndarray, np.ndarray]:
    import exchange_calendars as xcals

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            cls = type(xcals.get_calendar(name))
        lo, hi = pd.Timestamp(f"{start_year}-01-01"), pd.Timestamp(f"{end_year}-12-31")
        lo = max(lo, cls.bound_min() or lo)
        hi = min(hi, cls.bound_max() or hi)
        with warnings.catch_warnings():  # exchange_calendars trips a pandas 4 deprecation warning
            warnings.simplefilter("ignore", DeprecationWarning)
            cal = xcals.get_calendar(name, start=lo, end=hi)
    except xcals.errors.InvalidCalendarName:
        raise ContractError(
            f"unknown calendar {name!r} in CleanseConfig.calendar; use an exchange_calendars name "
            "such as 'XNYS', or None for no session filter"
        ) from None
    return np.asarray(cal.opens_nanos, dtype=np.int64), np.asarray(cal.closes_nanos, dtype=np.int64)


def sessions(calendar: str, lo_ns: int, hi_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Open and close (int64 ns, UTC) of every session of ``calendar`` around [lo_ns, hi_ns].

    Calendars are built once per decade of data (cached), since building one takes ~0.15 s.
    """
    y0 = pd.Timestamp(lo_ns).year // 10 * 10 - 1
    y1 = pd.Timestamp(hi_ns).year // 10 * 10 + 10
    return _session_bounds(calendar, y0, y1)


def session_index(ts: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """Index of the session whose [open, close] holds each ts, or -1."""
    if len(ts) == 0:
        return np.empty(0, dtype=np.int64)
    # search only the few sessions the data spans (a 20-year calendar has ~5,000)
    a = max(int(np.searchsorted(opens, ts.min(), side="right")) - 1, 0)
    b = int(np.searchsorted(opens, ts.max(), side="right"))
    o, c = opens[a:b], closes[a:b]
    if len(o) == 1:
        i = np.zeros(len(ts), dtype=np.int64)
    else:
        i = np.searchsorted(o, ts, side="right") - 1
    inside = (i >= 0) & (ts >= o[np.maximum(i, 0)]) & (ts <= c[np.maximum(i, 0)]) if len(o) else \
        np.zeros(len(ts), dtype=bool)
    return np.where(inside, i + a, -1)


# ----------------------------------------------------------------------------- grouping
def groups(codes: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """Positions ``rows`` split by symbol code, each group in source order."""
    c = codes[rows]
    if len(c) == 0:
        return []
    if c.min() == c.max():
        return [rows]
    order = np.argsort(c, kind="stable")
    sc = c[order]
    cuts = np.flatnonzero(sc[1:] != sc[:-1]) + 1
    return np.split(rows[order], cuts)


def running_max_before(t: np.ndarray) -> np.ndarray:
    """For each position, the max of the earlier values (int64 min for the first)."""
    out = np.empty_like(t)
    if len(t):
        out[0] = _NAT
        np.maximum.accumulate(t[:-1], out=out[1:])
    return out


# ----------------------------------------------------------------------------- rules
def _mix(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    h ^= v
    h *= np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(31)
    return h


def _as_u64(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.float64:
        a = np.where(np.isnan(a), np.nan, a + 0.0)  # one NaN and one zero
        return a.view(np.uint64)
    if a.dtype.kind in "iub":
        return a.astype(np.int64, copy=False).view(np.uint64)
    if a.dtype.kind == "f":
        return _as_u64(a.astype(np.float64))
    return pd.util.hash_array(np.asarray(a, dtype=object).astype(str))


def duplicates(keys: list[np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Repeats among ``rows``: (positions of the repeats, positions of their first occurrence).

    Each key is one column as a numpy array (numbers, or objects compared as strings); the first
    key is the timestamp: when it is non-decreasing over ``rows`` only runs of equal ts are searched.
    Rows are
    hashed to 64 bits, repeats found with a hash table, and every repeat is then confirmed
    column by column against its first occurrence (a hash collision is not a duplicate).
    """
    none = np.empty(0, np.int64), np.empty(0, np.int64)
    if len(rows) < 2:
        return none
    t = keys[0][rows]
    if np.all(t[1:] >= t[:-1]):
        # time-ordered rows (the usual case): a repeat shares its ts, so it sits in a run of equal ts
        eq = t[1:] == t[:-1]
        if not eq.any():
            return none
        near = np.zeros(len(rows), dtype=bool)
        near[1:] |= eq
        near[:-1] |= eq
        rows = rows[near]
    reps = [_as_u64(k[rows]) for k in keys]
    h = np.zeros(len(rows), dtype=np.uint64)
    for r in reps:
        h = _mix(h, r)
    codes = pd.factorize(h)[0]
    # factorize numbers codes in order of first appearance
    first = codes > running_max_before(codes.astype(np.int64))
    if first.all():
        return none
    first_pos = np.flatnonzero(first)
    dup = np.flatnonzero(~first)
    orig = first_pos[codes[dup]]
    same = np.ones(len(dup), dtype=bool)
    for r in reps:
        same &= r[dup] == r[orig]
    return rows[dup[same]], rows[orig[same]]


@dataclass(frozen=True)
class BadTicks:
    """Rows flagged by :func:`bad_ticks`, with the evidence (window median, threshold, revert)."""

    rows: np.ndarray
    median: np.ndarray
    nearest: np.ndarray
    threshold: np.ndarray
    revert_row: np.ndarray


def bad_ticks(
    x: np.ndarray, ts: np.ndarray, codes: np.ndarray, rows: np.ndarray, cfg: CleanseConfig
) -> BadTicks:
    """Find prices that jump away from every recent price and come back (bad ticks).

    Parameters
    ----------
    x : numpy.ndarray
        Prices of every row (the mid for quotes, ``px`` for trades).
    ts : numpy.ndarray
        Event times of every row (int64 ns); a pause restarts the reference window.
    codes : numpy.ndarray
        Symbol code of every row; series are per symbol.
    rows : numpy.ndarray
        Positions of the rows to judge (those that passed the earlier rules), in source order;
        ``ts`` must be non-decreasing within a symbol over these rows.
    cfg : CleanseConfig
        ``bad_tick_*`` parameters.

    Returns
    -------
    BadTicks
        The flagged positions (into ``x``) and, for each, the window's median, the window price
        nearest to the flagged one, the threshold and the position where the series came back.

    Notes
    -----
    A symbol's series is cut into segments at every pause longer than ``bad_tick_reset_s`` (a
    session break, an outage): a reference never spans the overnight gap. Within a segment, row
    ``i`` is a *candidate* when it jumps from the previous price by more than ``bad_tick_min_bps``
    and has at least ``bad_tick_min_periods`` preceding rows. Over the ``bad_tick_window``
    preceding prices ``W``, let ``m`` be the median and
    ``tau = max(k * 1.4826 * MAD, min_bps * m / 1e4)``. A price is *off* when it is more than
    ``tau`` away from every price of ``W`` (so it is also more than ``tau`` from ``m``): a print
    that repeats a recently seen level, such as bid-ask bounce across a wide spread, is not off.
    If an off candidate is followed, within ``bad_tick_revert_rows`` rows, by a price back within
    ``tau`` of ``m``, rows ``i .. j-1`` are bad ticks; if the series does not come back (a level
    shift, or a partial recovery), nothing is flagged. Only candidates are examined: O(n) plus
    O(candidates x window), no rolling median over the whole series.
    """
    e = np.empty(0)
    none = BadTicks(np.empty(0, np.int64), e, e, e, np.empty(0, np.int64))
    if len(rows) < 3:
        return none
    c = codes[rows]
    order = rows if c.min() == c.max() else rows[np.argsort(c, kind="stable")]
    s, t, g = x[order], ts[order], codes[order]
    n = len(s)
    w, rr, floor = cfg.bad_tick_window, cfg.bad_tick_revert_rows, cfg.bad_tick_min_bps / 1e4
    brk = np.r_[True, g[1:] != g[:-1]]
    if cfg.bad_tick_reset_s is not None:
        brk[1:] |= (t[1:] - t[:-1]) > round(cfg.bad_tick_reset_s * _NS_PER_S)
    heads = np.flatnonzero(brk)
    seg = np.cumsum(brk) - 1
    start, end = heads[seg], np.r_[heads[1:], n][seg]
    with np.errstate(invalid="ignore"):
        jump = ~brk[1:] & (np.abs(s[1:] - s[:-1]) > floor * s[:-1])
    cand = np.flatnonzero(jump) + 1
    cand = cand[cand - start[cand] >= cfg.bad_tick_min_periods]
    if len(cand) == 0:
        return none
    back = cand[:, None] + np.arange(-w, 0)
    win = np.where(back >= start[cand][:, None], s[np.maximum(back, 0)], np.nan)
    m = np.nanmedian(win, axis=1)
    mad = np.nanmedian(np.abs(win - m[:, None]), axis=1)
    tau = np.maximum(cfg.bad_tick_mads * 1.4826 * mad, floor * m)
    gap = np.abs(win - s[cand][:, None])
    nearest = win[np.arange(len(cand)), np.nanargmin(gap, axis=1)]
    off = np.nanmin(gap, axis=1) > tau
    ahead = cand[:, None] + np.arange(1, rr + 1)
    fut = np.where(ahead < end[cand][:, None], s[np.minimum(ahead, n - 1)], np.nan)
    home = np.abs(fut - m[:, None]) <= tau[:, None]  # back near the reference level
    ok = off & home.any(axis=1)
    if not ok.any():
        return none
    cand, m, nearest, tau, home = cand[ok], m[ok], nearest[ok], tau[ok], home[ok]
    run = np.argmax(home, axis=1) + 1  # rows cand .. cand+run-1 are off
    k = np.arange(rr)
    sel = k[None, :] < run[:, None]
    pos = (cand[:, None] + k[None, :])[sel]
    who = np.broadcast_to(np.arange(len(cand))[:, None], sel.shape)[sel]
    flagged, first = np.unique(order[pos], return_index=True)
    who = who[first]
    return BadTicks(flagged, m[who], nearest[who], tau[who], order[(cand + run)[who]])


def outages(
    table: str,
    ts: np.ndarray,
    codes: np.ndarray,
    names: np.ndarray,
    cfg: CleanseConfig,
) -> pd.DataFrame:
    """Per symbol, in-session intervals without an update longer than ``cfg.gap_threshold_s``.

    ``ts`` and ``codes`` are the clean rows (ts non-decreasing within a symbol). With a calendar,
    the open-to-first-update and last-update-to-close intervals of each session that has data
    count too; without one, only the intervals between consecutive updates.
    """
    if cfg.gap_threshold_s is None or len(ts) == 0:
        return empty_table("outages")
    thr = round(cfg.gap_threshold_s * _NS_PER_S)
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    syms: list[np.ndarray] = []
    if cfg.calendar is not None:
        opens, closes = sessions(cfg.calendar, int(ts.min()), int(ts.max()))
    for grp in groups(codes, np.arange(len(ts))):
        t = ts[grp]
        if cfg.calendar is None:
            sess = np.zeros(len(t), dtype=np.int64)
        else:
            sess = session_index(t, opens, closes)
        # consecutive updates in the same session
        same = sess[1:] == sess[:-1]
        g = same & (t[1:] - t[:-1] > thr)
        a, b = [t[:-1][g]], [t[1:][g]]
        if cfg.calendar is not None:
            first = np.r_[True, ~same]
            last = np.r_[~same, True]
            f = first & (t - opens[sess] > thr)
            la = last & (closes[sess] - t > thr)
            a += [opens[sess[f]], t[la]]
            b += [t[f], closes[sess[la]]]
        s0, s1 = np.concatenate(a), np.concatenate(b)
        starts.append(s0)
        ends.append(s1)
        syms.append(np.full(len(s0), codes[grp[0]]))
    s0, s1, sc = np.concatenate(starts), np.concatenate(ends), np.concatenate(syms)
    if len(s0) == 0:
        return empty_table("outages")
    order = np.lexsort((s0, sc))
    s0, s1, sc = s0[order], s1[order], sc[order]
    return pd.DataFrame({
        "table": pd.array(np.full(len(s0), table, dtype=object), dtype="string[pyarrow]"),
        "symbol": pd.array(names[sc].astype(str), dtype="string[pyarrow]"),
        "start_ts": pd.DatetimeIndex(s0.view("M8[ns]"), tz="UTC"),
        "end_ts": pd.DatetimeIndex(s1.view("M8[ns]"), tz="UTC"),
        "gap_s": (s1 - s0) / _NS_PER_S,
    })
