"""The state that puts raw-scale inputs into units that transfer across venues and price levels:
the symbol's normal daily volume, the size at the touch, the tick, and its own trade intensity.

Four as-of groups in the manner of :mod:`models._feature_groups` (each writes its state columns
into the context and returns, per order, the latest ``available_at`` it used). The dimensionless
features built on them (``pct_mdv``, ``qty_over_touch_depth``, ``arrival_spread_ticks``,
``trade_intensity_rel``) come from :func:`models.features.derive_features`, so a serving row that
carries the state gets the same formula.

* ``mdv``: the median daily volume of the symbol's last ``mdv_window_sessions`` bars known (a
  year), the volume it normally trades; ``pct_mdv`` and the impact shapes measure size in it (a
  stress spell's volume spikes lift the 20-session mean ``adv`` for a month and leave the median
  where it was, so ``pct_adv`` then understates what the order takes of the book).
* ``touch``: bid and ask size of the last quote known (the L1 book every venue has; the
  ``depth`` group needs an L2 table).
* ``tick``: the smallest price increment seen, a running minimum over the symbol's known quotes
  of the positive bid and ask changes and of the spreads, snapped to 9 significant digits (float
  noise of ``100.01 - 100.00``). It is an upper bound that only falls as quotes arrive, so a
  symbol's first quotes can overstate it (a first spread of 3 ticks reads as 1 tick until the
  price moves by one tick); a few minutes of quotes settle it on a liquid book.
* ``intensity_base``: trades per session minute over the symbol's last ``baseline_sessions``
  sessions whose every trade is known at the decision; with none (a one-day book), trades from
  today's session open to the decision per minute (at least ``min_intensity_coverage_min``
  minutes), so ``trade_intensity_rel`` then compares the last window with the session so far.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models._feature_groups import (
    _Ctx,
    _known_runs,
    _last_known,
    _runs,
    _search,
    _stream,
    _take,
    _take_ns,
)
from models._feature_registry import NAT, NS_DAY, NS_MIN


def _g_mdv(x: _Ctx) -> np.ndarray:
    st = _stream(x.daily_bars, x.symbols, ("volume",), ts=None)
    med = pd.Series(st.cols["volume"]).groupby(st.code).rolling(
        x.cfg.mdv_window_sessions, min_periods=1).median()
    j = _last_known(st, x)
    x.cols["mdv"] = _take(med.to_numpy(np.float64), j)
    return _take_ns(st.av, j)


def _g_touch(x: _Ctx) -> np.ndarray:
    st = x.quote_stream()
    j = _last_known(st, x)
    x.cols["touch_bid_sz"] = _take(st.cols["bid_sz"], j)
    x.cols["touch_ask_sz"] = _take(st.cols["ask_sz"], j)
    return _take_ns(st.av, j)


def _snap(v: np.ndarray, digits: int = 9) -> np.ndarray:
    """``v`` (positive, finite) rounded to ``digits`` significant digits; others unchanged."""
    ok = np.isfinite(v) & (v > 0)
    e = np.floor(np.log10(np.where(ok, v, 1.0)))
    return np.where(ok, np.round(v / 10.0 ** e, digits - 1) * 10.0 ** e, v)


def _g_tick(x: _Ctx) -> np.ndarray:
    st = x.quote_stream()
    bid, ask = st.cols["bid_px"], st.cols["ask_px"]
    cand = np.where(ask > bid, ask - bid, np.inf)
    if len(bid) > 1:
        same = st.code[1:] == st.code[:-1]
        for px in (bid, ask):
            step = np.abs(np.diff(px))
            cand[1:] = np.minimum(cand[1:], np.where(same & (step > 0), step, np.inf))
    cand = np.where(np.isfinite(cand), cand, np.inf)  # NaN prices never set the tick
    run_min = np.empty(len(cand))
    for lo, hi in zip(st.bounds[:-1], st.bounds[1:], strict=True):
        np.minimum.accumulate(cand[lo:hi], out=run_min[lo:hi])
    tick = _snap(np.where(np.isfinite(run_min), run_min, np.nan))
    j = _last_known(st, x)
    x.cols["tick_size"] = _take(tick, j)
    return _take_ns(st.av, j)


def _between(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum of runs ``[a, b)`` from the inclusive cumulative sum ``c`` over all runs."""
    return np.where(b > 0, c[np.maximum(b - 1, 0)], 0.0) - np.where(a > 0, c[np.maximum(a - 1, 0)],
                                                                    0.0)


def _g_intensity_base(x: _Ctx) -> np.ndarray:
    cfg = x.cfg
    st = _stream(x.trades, x.symbols, ())
    day = st.ts // NS_DAY
    n_ord = len(x.d)
    base = np.full(n_ord, np.nan)
    know = np.full(n_ord, NAT, np.int64)
    today_start = np.full(n_ord, -1, np.int64)  # first trade of today's run, when needed
    run, starts, run_code = _runs(st, day)
    if len(starts):
        ok, op, cl = x.sessions.lookup(day[starts])
        c_count = np.cumsum(np.where(ok, np.bincount(run, minlength=len(starts)), 0.0))
        c_min = np.cumsum(np.where(ok, (cl - op) / NS_MIN, 0.0))
        run_day = day[starts]
        run_end_av = st.av[np.append(starts[1:], len(day)) - 1]
        run_bounds = np.searchsorted(run_code, np.arange(len(x.symbols) + 1))
        for k, idx in enumerate(x.groups):
            lo_r, hi_r = run_bounds[k], run_bounds[k + 1]
            if not idx.size or hi_r == lo_r:
                continue
            j0, j = _known_runs(run_day, run_end_av, lo_r, hi_r, x.day[idx], x.d[idx],
                                cfg.baseline_sessions)
            minutes = _between(c_min, j0, j)
            has = minutes > 0
            base[idx[has]] = _between(c_count, j0, j)[has] / minutes[has]
            know[idx[has]] = run_end_av[j[has] - 1]
            today = ~has & (j < hi_r)
            today[today] = run_day[j[today]] == x.day[idx[today]]
            today_start[idx[today]] = starts[j[today]]
    # no earlier session: today's trades from the open to the decision, per minute
    minutes_in = np.where(x.session_ok, (x.d - x.open) / NS_MIN, 0.0)
    need = np.isnan(base) & (minutes_in >= cfg.min_intensity_coverage_min)
    if need.any():
        b = _search(st, x.groups, x.d)
        n_today = np.where(today_start >= 0, np.maximum(b - today_start, 0), 0)
        base = np.where(need, n_today / np.where(need, minutes_in, 1.0), base)
        used = need & (n_today > 0)
        know = np.where(used, _take_ns(st.av, np.where(used, b - 1, -1)), know)
    x.cols["trade_intensity_base"] = base
    return know


STATE_GROUPS_SCALE = {"mdv": _g_mdv, "touch": _g_touch, "tick": _g_tick, "intensity_base": _g_intensity_base}
"""The groups of this module, in computation order (after :mod:`models._feature_groups`')."""
