r"""Transaction-cost labels: implementation shortfall, its decomposition, benchmarks and markouts.

Pure and vectorized: every per-order quantity is a ``np.bincount`` over fills or a per-symbol
``np.searchsorted`` on the quote/trade columns, so ~100k orders with ~1M fills take seconds.

Notation (one parent order)
---------------------------
``s`` side (+1 buy, -1 sell); ``Q`` parent quantity; fills ``i`` at ``t_i`` with price ``p_i``,
quantity ``q_i`` and fee ``f_i`` (currency, negative = rebate); ``F = Σ q_i`` the filled
quantity, ``φ = F / Q`` the fill rate, ``p̄ = Σ q_i p_i / F`` the average price (``avg_px``).
Mids are ``(bid_px + ask_px) / 2`` of the ``quotes`` contract, looked up per symbol:

* ``m0`` (``arrival_mid``): the mid **as known at** ``decision_ts`` — the quote with the latest
  ``available_at <= decision_ts``. A quote stamped ``ts < decision_ts`` that arrived after the
  decision is not used: the benchmark is what the desk could see when it decided.
* ``m_i``: the mid **prevailing just before fill i** — the last quote with ``ts < t_i`` (strictly,
  so that a quote update caused by the fill itself is not its benchmark). Labels may use market
  truth by event time; they are not features.
* ``m_a = m_first``: ``m_i`` of the first fill (the order's arrival in the market).
* ``m̃``: the time-weighted mean of the (step) mid path over ``[t_first, t_last]``
  (``= m_a`` when all fills share one instant).
* ``m_end``: the mid prevailing at ``end_ts`` (last quote with ``ts <= end_ts``).

Implementation shortfall (Perold 1988, paper-portfolio accounting)
------------------------------------------------------------------
Every component is expressed in bps of the **paper portfolio's notional** ``N = Q · m0``, so the
filled part is weighted by ``φ``, the unfilled part by ``1 - φ`` and the components add up::

    is_bps = 1e4 · [ s·F·(p̄ − m0) + s·(Q − F)·(m_end − m0) + Σ f_i ] / N
           = φ · s·(p̄ − m0)/m0·1e4  +  (1 − φ) · s·(m_end − m0)/m0·1e4  +  fees_bps

For a fully filled order this is exactly BRIEF's ``s·(p̄ − m0)/m0·1e4 + fees_bps``. Positive =
cost. The decomposition (Perold; Wagner & Edwards 1993; Kissell 2013, ch. 3 "expanded IS", with
the trading cost split at the execution-interval mid TWAP) sums to ``is_bps`` exactly::

    delay_bps       = 1e4 · s·F·(m_a − m0)             / N   mid drift decision → first fill
    spread_bps      = 1e4 · s·Σ q_i (p_i − m_i)        / N   half-spread paid (< 0: earned)
    impact_bps      = 1e4 · s·F·(m̃ − m_a)              / N   mid level while working vs arrival
    timing_bps      = 1e4 · s·Σ q_i (m_i − m̃)          / N   fills at worse/better mids than m̃
    opportunity_bps = 1e4 · s·(Q − F)·(m_end − m0)     / N   unfilled part marked at end mid
    fees_bps        = 1e4 · Σ f_i                      / N

``impact`` is the interval-benchmark move (arrival → TWAP of the mid while the order traded): our
footprint plus the market's drift over that interval, which cannot be told apart without a
counterfactual (see the counterfactual-impact runs). ``timing`` is the execution-vs-interval
residual: zero in expectation for a schedule uniform in time, non-zero when fills cluster where
the mid is adverse (or favourable). An order with no fill has ``avg_px`` null, every filled
component 0 and ``is_bps = opportunity_bps``.

Label end time
--------------
``t1 = max(end_ts, last fill_ts)``: the label depends on fills up to the last one and on the mid
at ``end_ts`` (opportunity cost), nothing later. Markouts do **not** feed ``is_bps``; their own end
time is ``markout_t1`` in the benchmarks table.

Benchmarks (second table, one row per order; see :func:`compute_tca`)
---------------------------------------------------------------------
* ``interval_vwap = Σ px·qty / Σ qty`` over ``trades`` with ``decision_ts <= ts <= end_ts``
  (the tape as given: it includes the desk's own prints only if the tape does);
  ``vwap_bps = s·(p̄ − interval_vwap)/interval_vwap·1e4``;
* ``interval_twap_mid``: time-weighted mid over ``[decision_ts, end_ts]``;
  ``twap_bps = s·(p̄ − interval_twap_mid)/interval_twap_mid·1e4``;
* ``markout_{h}s_bps = s·(m(t_last + h) − p̄)/p̄·1e4`` with ``m`` the last mid with
  ``ts <= t_last + h``: positive = the mid moved in the order's direction after it finished
  (the filled position is in the money); across a session close it is the closing mid;
* ``participation = F / market_volume``, ``market_volume = Σ qty`` of the interval's trades.

Examples
--------
>>> import pandas as pd
>>> t = pd.Timestamp("2024-01-02 15:00", tz="UTC")
>>> po = pd.DataFrame({"order_id": ["A"], "symbol": ["X"], "side": [1], "qty": [200.0],
...                    "decision_ts": [t], "end_ts": [t + pd.Timedelta("10min")],
...                    "strategy": ["twap"]})
>>> q = pd.DataFrame({"ts": [t - pd.Timedelta("1s")], "available_at": [t], "symbol": ["X"],
...                   "bid_px": [99.99], "bid_sz": [1.0], "ask_px": [100.01], "ask_sz": [1.0]})
>>> cf = pd.DataFrame({"order_id": ["A", "A"], "fill_ts": [t + pd.Timedelta("1min")] * 2,
...                    "px": [100.05, 100.10], "qty": [100.0, 100.0], "fee": [1.0, 1.0],
...                    "liquidity": ["taker"] * 2, "venue": ["XNAS"] * 2})
>>> round(float(compute_labels(po, cf, q)["is_bps"].iloc[0]), 10)
8.5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

__all__ = ["LABEL_COLUMNS", "TcaTables", "compute_labels", "compute_tca"]

LABEL_COLUMNS: Final = ("order_id", "decision_ts", "t1", "arrival_mid", "avg_px", "filled_qty",
                        "is_bps", "delay_bps", "spread_bps", "impact_bps", "timing_bps",
                        "opportunity_bps", "fees_bps")
_NS: Final = 1_000_000_000


@dataclass(frozen=True)
class TcaTables:
    """Labels (the ``labels`` contract) and the benchmarks table, both one row per parent order."""

    labels: pd.DataFrame
    benchmarks: pd.DataFrame


def _ns(values: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns").asi8


def _ts(ns: np.ndarray) -> pd.Series:
    # int64 min is NaT; the result is datetime64[ns, UTC]
    return pd.Series(pd.to_datetime(ns, utc=True)).dt.as_unit("ns")


class _Paths:
    """Per-symbol columns sorted on one time column, searchable for many (symbol, time) queries."""

    def __init__(self, symbols: pd.Series, t_ns: np.ndarray, **cols: np.ndarray) -> None:
        codes, uniq = pd.factorize(symbols)
        # two stable sorts (timsort is linear on time-sorted data; small ints sort by radix)
        order = np.argsort(t_ns, kind="stable")
        small = codes.astype(np.int16 if len(uniq) < 2**15 else np.int64)
        order = order[np.argsort(small[order], kind="stable")]
        self.symbols = pd.Index(np.asarray(uniq, dtype=object))
        self.t = t_ns[order]
        self.cols = {k: np.asarray(v, dtype=float)[order] for k, v in cols.items()}
        self.bounds = np.searchsorted(codes[order], np.arange(len(uniq) + 1))

    def code(self, symbols: pd.Series | np.ndarray) -> np.ndarray:
        return self.symbols.get_indexer(pd.Index(np.asarray(symbols, dtype=object)))

    def search(self, code: np.ndarray, t: np.ndarray, side: str) -> np.ndarray:
        """Global insertion positions of ``t`` within each symbol's slice; -1 for unknown symbols."""
        pos = np.full(len(t), -1, dtype=np.int64)
        order = np.argsort(code, kind="stable")
        cs = code[order]
        cuts = np.flatnonzero(np.diff(cs)) + 1
        for grp in np.split(order, cuts):
            c = int(code[grp[0]]) if len(grp) else -1
            if c < 0:
                continue
            lo, hi = self.bounds[c], self.bounds[c + 1]
            pos[grp] = lo + np.searchsorted(self.t[lo:hi], t[grp], side=side)  # type: ignore[arg-type]
        return pos

    def asof(self, code: np.ndarray, t: np.ndarray, *, strict: bool = False) -> np.ndarray:
        """Index of the last row with time ``<= t`` (``< t`` if strict) of the symbol; -1 if none."""
        pos = self.search(code, t, "left" if strict else "right") - 1
        lo = np.where(code >= 0, self.bounds[np.maximum(code, 0)], 0)
        return np.where((code >= 0) & (pos >= lo), pos, -1)


def _take(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return np.full(len(idx), np.nan)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)


class _MidPath(_Paths):
    """Mid step path per symbol with its running time integral (for TWAPs)."""

    def __init__(self, quotes: pd.DataFrame, on: str) -> None:
        mid = 0.5 * (quotes["bid_px"].to_numpy(float) + quotes["ask_px"].to_numpy(float))
        super().__init__(quotes["symbol"], _ns(quotes[on]), mid=mid)
        m = self.cols["mid"]
        # ∫ (mid − ref) dt in price·seconds, reset per symbol (ref = the symbol's first mid keeps
        # the running sum small, so differences over short intervals stay exact to ~1e-12)
        sym_of = np.repeat(np.arange(len(self.symbols)), np.diff(self.bounds))
        self.ref = m[self.bounds[:-1]][sym_of] if len(m) else m
        dt = np.diff(self.t).astype(float) / _NS
        seg = (m[:-1] - self.ref[:-1]) * dt
        seg[np.diff(sym_of) != 0] = 0.0
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        self.cum = cum - cum[self.bounds[:-1]][sym_of] if len(m) else cum[:0]

    def mid(self, code: np.ndarray, t: np.ndarray, *, strict: bool = False) -> np.ndarray:
        return _take(self.cols["mid"], self.asof(code, t, strict=strict))

    def twap(self, code: np.ndarray, a: np.ndarray, b: np.ndarray, at_a: np.ndarray) -> np.ndarray:
        """Time-weighted mid over ``[a, b]``; ``at_a`` where ``b <= a``."""

        off = self.cols["mid"] - self.ref

        def integral(t: np.ndarray) -> np.ndarray:
            k = self.asof(code, t)
            since = (t - (self.t[np.maximum(k, 0)] if len(self.t) else t)).astype(float) / _NS
            return _take(self.cum, k) + _take(off, k) * since

        span = (b - a).astype(float) / _NS
        ref = _take(self.ref, self.asof(code, a))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = ref + (integral(b) - integral(a)) / span
        return np.where(span > 0, out, at_a)


def _orders(parent_orders: pd.DataFrame) -> pd.DataFrame:
    missing = {"order_id", "symbol", "side", "qty", "decision_ts", "end_ts"} - set(parent_orders)
    if missing:
        raise ValueError(f"parent_orders lacks columns {sorted(missing)}; see the parent_orders "
                         "contract in validation/contracts.py")
    po = parent_orders.reset_index(drop=True)
    dup = po["order_id"].duplicated()
    if dup.any():
        raise ValueError(f"parent_orders: order_id not unique, e.g. {po.loc[dup, 'order_id'].iloc[0]!r}")
    return po


def compute_tca(parent_orders: pd.DataFrame, child_fills: pd.DataFrame, quotes: pd.DataFrame, *,
                trades: pd.DataFrame | None = None,
                markouts_s: Sequence[float] = (60, 300, 1800)) -> TcaTables:
    """Labels and benchmarks of every parent order (definitions in the module docstring).

    Parameters
    ----------
    parent_orders : pandas.DataFrame
        The ``parent_orders`` contract (extra columns ignored).
    child_fills : pandas.DataFrame
        The ``child_fills`` contract; every ``order_id`` must be a parent order.
    quotes : pandas.DataFrame
        The ``quotes`` contract for the orders' symbols, covering each decision and the
        execution window (and the markout horizons).
    trades : pandas.DataFrame or None, default=None
        The ``trades`` contract; without it the VWAP and participation columns are null.
    markouts_s : sequence of float, default=(60, 300, 1800)
        Markout horizons in seconds after the last fill.

    Returns
    -------
    TcaTables
        ``labels`` (exactly the ``labels`` contract columns) and ``benchmarks`` (``order_id``,
        ``fill_rate``, ``first_fill_ts``, ``last_fill_ts``, ``mid_first_fill``, ``exec_twap_mid``,
        ``end_mid``, ``interval_twap_mid``, ``twap_bps``, ``interval_vwap``, ``vwap_bps``,
        ``market_volume``, ``participation``, ``markout_{h}s_bps`` per horizon, ``markout_t1``).

    Raises
    ------
    ValueError
        On missing columns, duplicated or unknown order ids, a fill before its decision, more
        filled than ordered, or an order with no quote known at its decision.
    """
    po = _orders(parent_orders)
    n = len(po)
    oid = pd.Index(po["order_id"].astype(str).to_numpy(dtype=object))
    s = po["side"].to_numpy(float)
    qty = po["qty"].to_numpy(float)
    d_ns, e_ns = _ns(po["decision_ts"]), _ns(po["end_ts"])

    # --- fills, sorted by (order, time)
    fidx = oid.get_indexer(pd.Index(child_fills["order_id"].astype(str).to_numpy(dtype=object)))
    if (fidx < 0).any():
        bad = child_fills["order_id"].to_numpy()[fidx < 0]
        raise ValueError(f"child_fills: {len(bad)} fills of unknown parent orders, e.g. "
                         f"order_id={bad[0]!r}; every fill must belong to a row of parent_orders")
    f_ns = _ns(child_fills["fill_ts"]) if len(child_fills) else np.zeros(0, np.int64)
    early = f_ns < d_ns[fidx]
    if early.any():
        raise ValueError(f"child_fills: {int(early.sum())} fills before their decision_ts, e.g. "
                         f"order_id={oid[fidx[early][0]]!r}; a fill cannot precede the decision")
    order = np.lexsort((f_ns, fidx))
    fidx, f_ns = fidx[order], f_ns[order]
    px = child_fills["px"].to_numpy(float)[order]
    fq = child_fills["qty"].to_numpy(float)[order]
    fee = child_fills["fee"].to_numpy(float)[order]

    filled = np.bincount(fidx, fq, n)
    over = filled > qty * (1 + 1e-9)
    if over.any():
        raise ValueError(f"child_fills: {int(over.sum())} orders filled more than their qty, e.g. "
                         f"order_id={oid[np.flatnonzero(over)[0]]!r}")
    has = filled > 0
    nat = np.iinfo(np.int64).min
    first_pos = np.where(has, np.searchsorted(fidx, np.arange(n), side="left"), -1)
    last_pos = np.where(has, np.searchsorted(fidx, np.arange(n), side="right") - 1, -1)
    t_first = np.where(has, f_ns[np.maximum(first_pos, 0)] if len(f_ns) else nat, nat)
    t_last = np.where(has, f_ns[np.maximum(last_pos, 0)] if len(f_ns) else nat, nat)

    # --- mids
    known = _MidPath(quotes, "available_at")
    path = _MidPath(quotes, "ts")
    m0 = known.mid(known.code(po["symbol"]), d_ns)
    if np.isnan(m0).any():
        k = int(np.flatnonzero(np.isnan(m0))[0])
        raise ValueError(
            f"quotes: no quote of symbol {po['symbol'].iloc[k]!r} with available_at <= decision_ts "
            f"{pd.Timestamp(d_ns[k], tz='UTC')} (order_id={oid[k]!r}); {int(np.isnan(m0).sum())} "
            "orders lack an arrival mid — provide quotes that start before the decisions")
    code = path.code(po["symbol"])
    m_fill = path.mid(code[fidx], f_ns, strict=True)
    m_fill = np.where(np.isnan(m_fill), path.mid(code[fidx], f_ns), m_fill)
    m_a = _take(m_fill, first_pos) if len(f_ns) else np.full(n, np.nan)
    m_tw = path.twap(code, np.where(has, t_first, d_ns), np.where(has, t_last, d_ns), m_a)
    m_end = path.mid(code, e_ns)

    # --- shortfall and its decomposition, in bps of N = Q·m0
    w = 1e4 / (qty * m0)
    pq = np.bincount(fidx, fq * px, n)
    qm = np.bincount(fidx, fq * m_fill, n)
    fees = np.bincount(fidx, fee, n)
    unfilled = qty - filled
    opp = np.where(unfilled > 0, s * unfilled * (m_end - m0) * w, 0.0)
    zero = np.zeros(n)
    delay = np.where(has, s * filled * (m_a - m0) * w, zero)
    spread = s * (pq - qm) * w
    impact = np.where(has, s * filled * (m_tw - m_a) * w, zero)
    timing = np.where(has, s * (qm - filled * m_tw) * w, zero)
    fees_bps = fees * w
    is_bps = s * (pq - filled * m0) * w + opp + fees_bps
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(has, pq / filled, np.nan)
    t1 = np.where(has, np.maximum(e_ns, t_last), e_ns)

    labels = pd.DataFrame({
        "order_id": po["order_id"].astype(str).to_numpy(),
        "decision_ts": _ts(d_ns), "t1": _ts(t1), "arrival_mid": m0, "avg_px": avg,
        "filled_qty": filled, "is_bps": is_bps, "delay_bps": delay, "spread_bps": spread,
        "impact_bps": impact, "timing_bps": timing, "opportunity_bps": opp,
        "fees_bps": fees_bps,
    })
    labels["order_id"] = labels["order_id"].astype("str")

    # --- benchmarks
    itwap = path.twap(code, d_ns, e_ns, path.mid(code, d_ns))
    with np.errstate(invalid="ignore", divide="ignore"):
        bench = {
            "order_id": labels["order_id"].to_numpy(), "fill_rate": filled / qty,
            "first_fill_ts": _ts(t_first), "last_fill_ts": _ts(t_last),
            "mid_first_fill": m_a, "exec_twap_mid": np.where(has, m_tw, np.nan),
            "end_mid": m_end, "interval_twap_mid": itwap,
            "twap_bps": s * (avg - itwap) / itwap * 1e4,
        }
        vwap = vol = np.full(n, np.nan)
        if trades is not None:
            tape = _Paths(trades["symbol"], _ns(trades["ts"]), px=trades["px"].to_numpy(float),
                          qty=trades["qty"].to_numpy(float))
            tc = tape.code(po["symbol"])
            cpv = np.concatenate([[0.0], np.cumsum(tape.cols["px"] * tape.cols["qty"])])
            cv = np.concatenate([[0.0], np.cumsum(tape.cols["qty"])])
            lo, hi = tape.search(tc, d_ns, "left"), tape.search(tc, e_ns, "right")
            ok = tc >= 0
            vol = np.where(ok, cv[np.maximum(hi, 0)] - cv[np.maximum(lo, 0)], 0.0)
            pv = np.where(ok, cpv[np.maximum(hi, 0)] - cpv[np.maximum(lo, 0)], 0.0)
            vwap = np.where(vol > 0, pv / vol, np.nan)
        bench |= {"interval_vwap": vwap, "vwap_bps": s * (avg - vwap) / vwap * 1e4,
                  "market_volume": vol, "participation": np.where(vol > 0, filled / vol, np.nan)}
        for h in markouts_s:
            th = t_last + round(float(h) * _NS)
            mh = np.where(has, path.mid(code, np.where(has, th, d_ns)), np.nan)
            bench[f"markout_{h:g}s_bps"] = s * (mh - avg) / avg * 1e4
        horizon = round(max(markouts_s, default=0) * _NS)
        bench["markout_t1"] = _ts(np.where(has, t_last + horizon, nat))
    benchmarks = pd.DataFrame(bench)
    benchmarks["order_id"] = benchmarks["order_id"].astype("str")
    return TcaTables(labels=labels, benchmarks=benchmarks)


def compute_labels(parent_orders: pd.DataFrame, child_fills: pd.DataFrame,
                   quotes: pd.DataFrame) -> pd.DataFrame:
    """The ``labels`` contract table (one row per parent order, in ``parent_orders`` order).

    Same inputs and errors as :func:`compute_tca`; benchmarks, VWAP and markouts are not computed
    (use :func:`compute_tca` for them).
    """
    return compute_tca(parent_orders, child_fills, quotes, markouts_s=()).labels
