"""Paired circular moving-block bootstrap of the challenger gate (:mod:`validation.gates`).

:func:`paired_bootstrap` (re-exported by :mod:`validation.gates`) gives the mean of paired
differences and its percentile interval; :func:`pair` checks and aligns the two arrays.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = ["pair", "paired_bootstrap"]

_MAX_DRAWS: Final = 1 << 22  # bootstrap block draws held in memory at once (32 MiB of int64)

Floats = NDArray[np.float64]


def pair(a: ArrayLike, b: ArrayLike, names: tuple[str, str]) -> tuple[Floats, Floats]:
    """``a`` and ``b`` as two flat float arrays of equal length, all finite.

    Raises
    ------
    ValueError
        Two Series with different indexes, different lengths, or a non-finite value; the
        message uses ``names``.
    """
    if isinstance(a, pd.Series) and isinstance(b, pd.Series) and not a.index.equals(b.index):
        raise ValueError(f"`{names[0]}` and `{names[1]}` have different indexes: score both "
                         "models on the same holdout orders, in the same order")
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.size != y.size:
        raise ValueError(f"`{names[0]}` has {x.size} values but `{names[1]}` has {y.size}; "
                         "pair them order by order on the same holdout")
    for name, v in zip(names, (x, y), strict=True):
        bad = int(np.sum(~np.isfinite(v)))
        if bad:
            raise ValueError(f"`{name}` has {bad} non-finite value(s); drop those orders from "
                             "both arrays")
    return x, y


def paired_bootstrap(a: ArrayLike, b: ArrayLike, *, n_boot: int = 2000,
                     confidence: float = 0.95, block: int = 1,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean of the paired differences ``a - b`` and its circular moving-block bootstrap interval.

    The pairs are in time order. Each resample concatenates ``ceil(n / block)`` blocks of
    ``block`` consecutive differences, each starting at a uniformly drawn position and wrapping
    around the end of the sample (circular, Politis & Romano 1992: every difference is equally
    likely to be drawn, so the resampled means are centred on the sample mean), and is cut to
    ``n`` values. Blocks keep the serial dependence within ``block`` neighbours, which widens the
    interval when neighbouring differences are correlated; ``block=1`` is the ordinary paired
    bootstrap. The interval is the percentile interval of the ``n_boot`` resampled means.

    Parameters
    ----------
    a, b : array_like of float
        Paired values (e.g. absolute errors of two models on the same orders), same length ``n``.
    n_boot : int, default=2000
        Resamples.
    confidence : float, default=0.95
        Two-sided level, in (0, 1).
    block : int, default=1
        Block length, ``1 <= block <= n // 2`` (at least two blocks).
    seed : int, default=0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    (mean, lo, hi) : tuple of float
        ``mean(a - b)`` and the bounds of the percentile interval.

    Raises
    ------
    ValueError
        Lengths differ, a value is not finite, or a parameter is out of range.

    Examples
    --------
    >>> paired_bootstrap([3.0, 4.0, 5.0, 6.0], [2.5, 3.5, 4.5, 5.5], n_boot=100, block=2)
    (0.5, 0.5, 0.5)
    """
    x, y = pair(a, b, ("a", "b"))
    d = x - y
    n = d.size
    if n < 2:
        raise ValueError(f"paired_bootstrap needs at least 2 pairs, got {n}")
    if not 1 <= int(block) <= n // 2:
        raise ValueError(f"`block` must be in [1, n // 2] = [1, {n // 2}] for n = {n} pairs (at "
                         f"least two blocks), got block={block}")
    if int(n_boot) < 1:
        raise ValueError(f"`n_boot` must be >= 1, got n_boot={n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1), got confidence={confidence}")
    block, n_boot = int(block), int(n_boot)
    k = -(-n // block)  # blocks per resample
    r = n - (k - 1) * block  # length of the last, possibly cut, block
    ring = np.concatenate([d, d[: block - 1]])
    window = np.lib.stride_tricks.sliding_window_view
    full = window(ring, block).sum(axis=1)[:n]  # sum of the block starting at each position
    last = full if r == block else window(ring[: n + r - 1], r).sum(axis=1)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, _MAX_DRAWS // k)
    for i in range(0, n_boot, step):
        m = min(step, n_boot - i)
        starts = rng.integers(0, n, size=(m, k))
        means[i:i + m] = (full[starts[:, :-1]].sum(axis=1) + last[starts[:, -1]]) / n
    alpha = 1.0 - confidence
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(d.mean()), float(lo), float(hi)
