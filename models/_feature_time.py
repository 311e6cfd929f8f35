"""Time helpers of the feature code: UTC nanoseconds and exchange sessions (``exchange_calendars``
or ``"24/7"`` UTC days), shared by the as-of joins and the derivation of order features."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models._feature_registry import NAT, NS_DAY


def _ns(values: pd.Series) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == "datetime64[ns]":  # UTC already
        return values.view(np.int64).copy()
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns").asi8.copy()


def _utc(ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(ns, np.int64), utc=True)).dt.as_unit("ns")



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



def sessions_around(days: np.ndarray, calendar: str, *, before: int = 40,
                    after: int = 10) -> _Sessions:
    """The sessions of ``calendar`` covering UTC day numbers ``days`` with a margin.

    The range is widened to whole blocks of :data:`_BLOCK_DAYS` so that calls on nearby days
    (one order at a time, in serving) share one cached calendar instead of building their own
    (a few hundred milliseconds each); the sessions of a day do not depend on the range."""
    first = (int(days.min()) - before) // _BLOCK_DAYS * _BLOCK_DAYS
    last = ((int(days.max()) + after) // _BLOCK_DAYS + 1) * _BLOCK_DAYS - 1
    return _Sessions(*_calendar(calendar, first, last))


_BLOCK_DAYS = 256
