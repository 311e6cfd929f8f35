"""Band coverage on a recorded book over many price paths, not the one the day took.

Every order of a replayed day shares one price path: on the 18 minutes of the BitMEX
2020-03-10 file, with orders of 5 to 15 minutes, the orders see about two independent
stretches of market, and the share of them inside an 80 % band is one draw of that path's
luck, not the band's calibration (a calibrated band covers 80 % *in expectation over paths*).

:func:`path_drifts` keeps everything of each order but the market's own move: its
market-adjusted cost (:func:`models.desk_history.market_drift_bps`) plus the move of a
**resampled** path between its decision and each fill's slot start. The paths are a moving-block
bootstrap of the book's own 1-second mid log-returns less their mean (blocks of ``block_s``
seconds keep the book's short-range dependence and its volatility; the day's trend is left out,
or every path would carry it), so the timing noise has the book's measured size and no more. On a full equity day (AMZN: 6.5 hours, orders up to 2 hours) the coverage over
resampled paths and over the recorded path agree; on a short file only the former measures the
band.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.desk_history import DeskHistory, fill_slots

__all__ = ["path_coverage", "path_drifts"]


def _log_mid_grid(quotes: pd.DataFrame, step_ns: int) -> tuple[int, np.ndarray]:
    q = quotes.sort_values("ts", kind="stable")
    ts = q["ts"].dt.as_unit("ns").array.asi8
    mid = ((q["bid_px"] + q["ask_px"]) / 2).to_numpy(np.float64)
    ok = np.isfinite(mid) & (mid > 0)
    ts, mid = ts[ok], mid[ok]
    grid = np.arange(ts[0], ts[-1] + 1, step_ns)
    j = np.searchsorted(ts, grid, side="right") - 1
    return int(ts[0]), np.log(mid[j])


def path_drifts(history: DeskHistory, quotes: pd.DataFrame, *, n_paths: int = 200,
                block_s: float = 60.0, step_s: float = 1.0, seed: int = 0,
                center: bool = True) -> np.ndarray:
    """``(n_orders, n_paths)`` market moves (bps, signed by side, fill-weighted) of each parent
    of ``history`` (in ``history.parent_orders`` order) from its decision to each fill's slot
    start, on ``n_paths`` moving-block bootstrap paths of the book's mid (``quotes``: the
    replayed symbol's level-1 quotes). NaN rows for orders without fills.

    ``center`` (default) takes the day's mean increment out of the resampled steps: a block
    bootstrap keeps the sample's mean, so every path would carry the recorded day's trend and
    the desk's order signs would turn it into a bias of the same sign on every path (on the
    BitMEX XBTUSD file, +15 bps on every buy and -16 bps on every sell against a path sd of
    19 bps). The paths keep the book's volatility and its dependence within ``block_s``; the
    pre-trade band is for a market whose direction is not known."""
    po = history.parent_orders
    step = int(step_s * 1e9)
    t0, logmid = _log_mid_grid(quotes, step)
    dx = np.diff(logmid)
    if center and len(dx):
        dx = dx - dx.mean()
    n_grid, block = len(logmid), max(int(block_s / step_s), 1)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9A7B]))
    n_blocks = -(-len(dx) // block)
    starts = rng.integers(0, max(len(dx) - block, 0) + 1, size=(n_paths, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_paths, -1)
    steps = dx[np.minimum(idx, len(dx) - 1)][:, : len(dx)]
    paths = np.concatenate([np.zeros((n_paths, 1)), np.cumsum(steps, axis=1)], axis=1)

    def cell(ns: np.ndarray) -> np.ndarray:
        return np.clip((ns - t0) // step, 0, n_grid - 1)

    f = fill_slots(history.child_orders, history.child_fills)
    code = pd.Index(po["order_id"].astype(str)).get_indexer(f["order_id"])
    keep = code >= 0
    f, code = f[keep], code[keep]
    dec = po["decision_ts"].dt.as_unit("ns").array.asi8[code]
    side = po["side"].to_numpy(np.float64)[code]
    q = f["qty"].to_numpy(np.float64)
    filled = np.bincount(code, weights=q, minlength=len(po))
    w = side * q / filled[code]
    move = (paths[:, cell(f["start_ns"].to_numpy())] - paths[:, cell(dec)]) * w[None, :] * 1e4
    out = np.zeros((len(po), n_paths))
    np.add.at(out, code, move.T)
    out[filled <= 0] = np.nan
    return out


def path_coverage(adjusted: np.ndarray, drifts: np.ndarray, lo: np.ndarray, hi: np.ndarray
                  ) -> float:
    """Share of (order, path) costs ``adjusted + drifts`` inside ``[lo, hi]``; orders with a
    non-finite cost or band left out (NaN when none is left)."""
    a, lo, hi = (np.asarray(v, np.float64).ravel() for v in (adjusted, lo, hi))
    d = np.asarray(drifts, np.float64)
    ok = np.isfinite(a) & np.isfinite(lo) & np.isfinite(hi) & np.isfinite(d).all(axis=1)
    if not ok.any():
        return float("nan")
    y = a[ok, None] + d[ok]
    return float(np.mean((y >= lo[ok, None]) & (y <= hi[ok, None])))
