"""How a value in a user's file is read: timestamps, numbers, and the bounds of the plausible.

A leaf module (it imports nothing of the project): the contracts (``validation.contracts``), the
market cleansing (``validation.cleansing``) and the serving checks read values by these rules, so
a file means the same thing whichever way it comes in.

Timestamps (:func:`parse_timestamps`)
    * **text** must be ISO 8601 (``2024-04-11T14:01:00Z``, ``2024-04-11 14:01:00.123+02:00``,
      ``2024-04-11``; basic form ``20240411T140100Z`` too). Anything else is refused with its row:
      ``04/11/2024 14:01`` is ambiguous (April 11 or November 4), so no other form is guessed.
      A text without an offset is **UTC**; the number of such *naive* values is counted, so a
      summary can say how many were taken as UTC.
    * **numbers** (integer or float epochs) are refused unless the caller declares their unit
      (``epoch_unit``: ``s``, ``ms``, ``us`` or ``ns``; ``--epoch-unit`` on the command line):
      ``1712844060`` read as nanoseconds is a date in 1970.
    * **booleans** are never timestamps.
    * typed timestamps (Parquet ``timestamp`` columns) are taken as stored; naive ones are UTC
      and counted.
    * a value outside the plausible window is refused: event times (``ts``, ``decision_ts``, ...)
      from :data:`EARLIEST_EVENT` (1990-01-01), calendar dates (a daily bar's ``date``, index
      membership) from :data:`EARLIEST_DATE` (1900-01-01), both up to the end of next year
      (:func:`latest_plausible`).

Numbers (:func:`parse_numbers`)
    Text is read as a decimal number; a boolean (a ``bool`` column, or ``True`` in an object
    column) is not a number; ``inf`` is refused by the callers' finiteness rules.

Names
    Symbols, order ids and venues hold no control character (:data:`NAME_PATTERN`): a NUL
    byte or a line break inside one is a broken file.

Bounds
    :data:`MAX_PRICE` (1e9 currency units) and :data:`MAX_SIZE` (1e12 shares or contracts): a
    larger price or size is not a market record but a broken one (``1e308``), and refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

__all__ = ["EARLIEST_DATE", "EARLIEST_EVENT", "EPOCH_UNITS", "MAX_BPS", "MAX_PRICE", "MAX_SIZE",
           "NAME_PATTERN", "NAT", "ParsedNumbers", "ParsedTimes", "TimeProblem", "latest_plausible",
           "parse_numbers", "parse_timestamps"]

EPOCH_UNITS: Final = ("s", "ms", "us", "ns")
"""Units an integer or float epoch may be declared in."""

EARLIEST_EVENT: Final = pd.Timestamp("1990-01-01", tz="UTC")
"""No event time of a market or a desk before this is plausible (electronic books start later)."""

EARLIEST_DATE: Final = pd.Timestamp("1900-01-01", tz="UTC")
"""Calendar dates (daily bars, index membership spans) may go back this far."""

MAX_PRICE: Final = 1e9
"""Largest plausible price in currency units."""

MAX_SIZE: Final = 1e12
"""Largest plausible size (shares, contracts, volume of a day)."""

NAME_PATTERN: Final = r"^[^\x00-\x1f\x7f]+\Z"
"""A name (symbol, order id, venue) holds no control character (a NUL byte, a line break)."""

MAX_BPS: Final = 1e5
"""Largest plausible cost in basis points (1,000 % of the order's value)."""

NAT: Final = np.iinfo(np.int64).min
"""Missing timestamp as int64 nanoseconds (pandas' NaT)."""

_NS_PER: Final = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


class TimeProblem:
    """Why a timestamp value was refused (codes of :attr:`ParsedTimes.problem`)."""

    OK: Final = 0
    NOT_ISO: Final = 1
    OUT_OF_RANGE: Final = 2
    EPOCH_WITHOUT_UNIT: Final = 3
    BOOLEAN: Final = 4


def latest_plausible(now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The last plausible instant: the end of next year (UTC)."""
    year = (now or pd.Timestamp.now(tz="UTC")).year + 1
    return pd.Timestamp(f"{year + 1}-01-01", tz="UTC") - pd.Timedelta(1, "ns")


@dataclass(frozen=True)
class ParsedTimes:
    """A timestamp column as read: ``ns`` (int64 nanoseconds since the epoch, UTC; :data:`NAT`
    where missing or refused), ``problem`` (a :class:`TimeProblem` code per row; ``OK`` for a
    missing value, which the contract's null rules judge), ``naive`` (rows taken as UTC because
    they had no offset) and the window they were checked against."""

    ns: np.ndarray
    problem: np.ndarray
    naive: int
    earliest: pd.Timestamp
    latest: pd.Timestamp

    @property
    def bad(self) -> np.ndarray:
        return self.problem != TimeProblem.OK

    def rule(self, column: str, code: int) -> str:
        """The rule a row with problem ``code`` in ``column`` broke, in words."""
        if code == TimeProblem.NOT_ISO:
            return f"{column} must be an ISO 8601 timestamp (e.g. 2024-04-11T14:01:00Z)"
        if code == TimeProblem.OUT_OF_RANGE:
            return (f"{column} must lie within {self.earliest:%Y-%m-%d} .. "
                    f"{self.latest:%Y-%m-%d}")
        if code == TimeProblem.EPOCH_WITHOUT_UNIT:
            return (f"{column} is a number: an epoch needs its unit declared "
                    f"(epoch_unit / --epoch-unit {'|'.join(EPOCH_UNITS)})")
        if code == TimeProblem.BOOLEAN:
            return f"{column} is a boolean, not a timestamp"
        return ""


def _is_bool(values: np.ndarray) -> np.ndarray:
    return np.fromiter((isinstance(v, (bool, np.bool_)) for v in values), bool, len(values))


def _is_number(values: np.ndarray) -> np.ndarray:
    return np.fromiter((isinstance(v, (int, float, np.integer, np.floating))
                        and not isinstance(v, (bool, np.bool_)) for v in values), bool,
                       len(values))


_AWARE = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$"


def _as_ns(values: pd.Series | pd.Index | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int64 UTC nanoseconds of datetime values of any resolution, and the mask of values
    beyond what nanoseconds hold (years before 1678 or after 2261: never plausible here)."""
    arr = pd.array(values) if not isinstance(values, pd.Series) else values.array
    if isinstance(arr.dtype, pd.DatetimeTZDtype):
        unit = arr.dtype.unit
    else:
        unit = np.datetime_data(arr.dtype)[0] if arr.dtype.kind == "M" else "ns"
    raw = np.asarray(arr.asi8, dtype=np.int64)
    per = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}.get(unit)
    if per is None:  # a coarser numpy unit (D, h, m): go through seconds
        raw = np.asarray(pd.array(values).astype("M8[s]" if arr.dtype.kind == "M"
                                                  else "datetime64[s, UTC]").asi8)
        per = 10**9
    present = raw != NAT
    far = present & (np.abs(raw) > np.iinfo(np.int64).max // per)
    ns = np.where(present & ~far, raw * per, NAT)
    return ns.astype(np.int64), far


def _epoch_ns(values: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """int64 ns of float epochs in ``unit``; the mask of values too large to be a time."""
    v = np.asarray(values, dtype=np.float64) * _NS_PER[unit]
    with np.errstate(invalid="ignore"):
        huge = np.isfinite(v) & (np.abs(v) >= 9.2e18)
    ok = np.isfinite(v) & ~huge
    ns = np.full(len(v), NAT, dtype=np.int64)
    ns[ok] = np.round(v[ok]).astype(np.int64)
    return ns, huge | np.isinf(v)


def parse_timestamps(s: pd.Series, *, epoch_unit: str | None = None,
                     earliest: pd.Timestamp = EARLIEST_EVENT,
                     now: pd.Timestamp | None = None) -> ParsedTimes:
    """Read a timestamp column by the rules of the module docstring.

    Examples
    --------
    >>> p = parse_timestamps(pd.Series(["2024-04-11T14:01:00Z", "04/11/2024 14:01",
    ...                                 "2024-04-11 14:01", "1970-01-01", None]))
    >>> p.problem.tolist(), p.naive
    ([0, 1, 0, 2, 0], 1)
    >>> parse_timestamps(pd.Series([1712844060]), epoch_unit="s").ns[0] == \\
    ...     pd.Timestamp("2024-04-11 14:01:00", tz="UTC").value
    True
    """
    if epoch_unit is not None and epoch_unit not in EPOCH_UNITS:
        raise ValueError(f"epoch unit {epoch_unit!r}: choose one of {', '.join(EPOCH_UNITS)}")
    n = len(s)
    latest = latest_plausible(now)
    problem = np.zeros(n, dtype=np.int8)
    ns = np.full(n, NAT, dtype=np.int64)
    naive = 0
    dt = s.dtype
    present = s.notna().to_numpy()
    if pd.api.types.is_bool_dtype(dt):
        problem[present] = TimeProblem.BOOLEAN
    elif isinstance(dt, pd.DatetimeTZDtype) or (isinstance(dt, np.dtype) and dt.kind == "M"):
        ns, far = _as_ns(s)
        problem[far] = TimeProblem.OUT_OF_RANGE
        if not isinstance(dt, pd.DatetimeTZDtype):
            naive = int(present.sum())
    elif pd.api.types.is_numeric_dtype(dt):
        if epoch_unit is None:
            problem[present] = TimeProblem.EPOCH_WITHOUT_UNIT
        else:
            ns, huge = _epoch_ns(s.to_numpy(dtype=np.float64, na_value=np.nan), epoch_unit)
            problem[huge] = TimeProblem.OUT_OF_RANGE
    else:
        values = s.to_numpy(dtype=object)
        text = np.fromiter((isinstance(v, str) for v in values), bool, n)
        if not text[present].all():  # a mixed column: numbers, booleans, datetimes, text
            booleans = _is_bool(values)
            numbers = _is_number(values) & present
            problem[booleans] = TimeProblem.BOOLEAN
            if epoch_unit is None:
                problem[numbers] = TimeProblem.EPOCH_WITHOUT_UNIT
            elif numbers.any():
                e_ns, huge = _epoch_ns(values[numbers].astype(np.float64), epoch_unit)
                ns[numbers] = e_ns
                problem[np.flatnonzero(numbers)[huge]] = TimeProblem.OUT_OF_RANGE
            other = present & ~text & ~booleans & ~numbers  # datetime / Timestamp objects
            if other.any():
                conv = pd.to_datetime(pd.Series(values[other]), errors="coerce", utc=True)
                o_ns, far = _as_ns(conv)
                ns[other] = o_ns
                problem[other & (ns == NAT)] = TimeProblem.NOT_ISO
                problem[np.flatnonzero(other)[far]] = TimeProblem.OUT_OF_RANGE
                naive += sum(getattr(v, "tzinfo", None) is None for v in values[other])
        if text.any():
            st = pd.Series(values[text], dtype=object)
            conv = pd.to_datetime(st, errors="coerce", utc=True, format="ISO8601")
            t_ns, far = _as_ns(conv)
            ns[text] = t_ns
            idx = np.flatnonzero(text)
            problem[idx[(t_ns == NAT) & ~far]] = TimeProblem.NOT_ISO
            problem[idx[far]] = TimeProblem.OUT_OF_RANGE
            aware = st.str.contains(_AWARE, regex=True).to_numpy(dtype=bool) \
                & st.str.contains(r"[T ]\d|:", regex=True).to_numpy(dtype=bool)
            naive += int(((t_ns != NAT) & ~aware).sum())
    ok_time = (ns != NAT) & (problem == TimeProblem.OK)
    out = ok_time & ((ns < earliest.value) | (ns > latest.value))
    problem[out] = TimeProblem.OUT_OF_RANGE
    ns[problem != TimeProblem.OK] = NAT
    return ParsedTimes(ns=ns, problem=problem, naive=naive, earliest=earliest, latest=latest)


@dataclass(frozen=True)
class ParsedNumbers:
    """A numeric column as read: float64 ``values`` (NaN where missing or unreadable) and the
    mask ``bad`` of present values that are not numbers (text, booleans)."""

    values: np.ndarray
    bad: np.ndarray


def parse_numbers(s: pd.Series) -> ParsedNumbers:
    """Read a column as float64; booleans and text that is not a decimal number are ``bad``.

    Examples
    --------
    >>> p = parse_numbers(pd.Series(["1.5", "abc", None, "1e308"]))
    >>> p.values[[0, 3]].tolist(), p.bad.tolist()
    ([1.5, 1e+308], [False, True, False, False])
    >>> parse_numbers(pd.Series([True, False])).bad.tolist()
    [True, True]
    """
    n = len(s)
    dt = s.dtype
    if dt == np.float64:
        return ParsedNumbers(s.to_numpy(), np.zeros(n, dtype=bool))
    if pd.api.types.is_bool_dtype(dt):
        return ParsedNumbers(np.full(n, np.nan), s.notna().to_numpy())
    if pd.api.types.is_numeric_dtype(dt):
        return ParsedNumbers(s.to_numpy(dtype=np.float64, na_value=np.nan),
                             np.zeros(n, dtype=bool))
    present = s.notna().to_numpy()
    booleans = np.zeros(n, dtype=bool)
    if isinstance(dt, np.dtype) and dt.kind == "O":
        booleans = _is_bool(s.to_numpy(dtype=object))
        s = s.where(~booleans)
    conv = pd.to_numeric(s, errors="coerce")
    vals = np.array(conv.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    bad = (np.isnan(vals) & present) | booleans
    vals[booleans] = np.nan
    return ParsedNumbers(vals, bad)
