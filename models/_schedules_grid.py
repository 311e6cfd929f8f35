"""Time grids and lot rounding of :mod:`models.schedules`.

A schedule is a flat grid of slices (:class:`Flat`: the order of each slice, its start and its
end, ns) and a cumulative target fraction per slice; :func:`round_lots` turns the fractions into
child quantities in whole lots (the rule is in :mod:`models.schedules`' docstring).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Flat",
    "Floats",
    "Ints",
    "edges_grid",
    "elapsed",
    "round_lots",
    "ts_ns",
    "uniform_grid",
]

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


class Flat(NamedTuple):
    """Slices of many orders: ``idx`` the order of each slice, ``[start, stop)`` its span (ns)."""

    idx: Ints  # order of each slice
    start: Ints  # slice start, ns
    stop: Ints  # slice end, ns


def uniform_grid(dec: Ints, end: Ints, n_slices: ArrayLike | None,
                 slice_ns: ArrayLike | None) -> Flat:
    """Uniform slices of each order ``[dec, end]``: ``n_slices`` equal ones, or of ``slice_ns``.

    Exactly one of ``n_slices`` / ``slice_ns`` (scalars broadcast); with ``slice_ns`` the last
    slice of an order is cut at its end; a zero-duration order is one slice.

    Raises
    ------
    ValueError
        Both or neither given, or a value below 1.
    """
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
    return Flat(idx, dec[idx] + start, dec[idx] + stop)


def elapsed(flat: Flat, dec: Ints, end: Ints) -> Floats:
    """Fraction of each order's horizon elapsed at the end of each slice."""
    dur = (end - dec)[flat.idx]
    done = (flat.stop - dec[flat.idx]).astype(np.float64)
    return np.divide(done, dur, out=np.ones_like(done), where=dur > 0)


def round_lots(flat: Flat, frac: Floats, qty: Floats, lot: float) -> Floats:
    """Child quantities from cumulative target fractions (rule: :mod:`models.schedules`)."""
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


def edges_grid(dec: int, end: int, edges: Ints) -> Flat:
    """Slices of one order ``[dec, end]`` cut at the ``edges`` inside it (bin starts and ends)."""
    inner = np.unique(edges[(edges > dec) & (edges < end)])
    b = np.r_[dec, inner, end] if end > dec else np.array([dec, end])
    return Flat(np.zeros(b.size - 1, dtype=np.int64), b[:-1].astype(np.int64),
                b[1:].astype(np.int64))


def ts_ns(value: Any, name: str) -> int:
    """A tz-aware timestamp as UTC epoch nanoseconds; a naive one raises (naming ``name``)."""
    ts = pd.Timestamp(value)
    if ts.tz is None:
        raise ValueError(f"`{name}={value}` has no time zone; give a tz-aware (UTC) timestamp")
    return int(ts.tz_convert("UTC").as_unit("ns").value)
