"""Probability of backtest overfitting via CSCV (:func:`pbo`, :class:`PBOResult`) of :mod:`validation.overfitting`.

Bailey, Borwein, López de Prado & Zhu (2017), "The Probability of Backtest Overfitting".
:mod:`validation.overfitting` re-exports the public names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Final, Literal

import numpy as np
from scipy.stats import rankdata

__all__ = ["Metric", "PBOResult", "pbo"]

_MAX_COMBINATIONS: Final = 1_000_000  # C(22, 11) = 705,432 fits; C(24, 12) = 2.7M does not
Metric = Literal["mean", "sharpe"] | Callable[[np.ndarray], np.ndarray]
"""A built-in metric name, or a callable mapping a (rows, N) array to N scores."""


@dataclass(frozen=True, eq=False)
class PBOResult:
    r"""Outcome of combinatorially symmetric cross-validation (arrays are read-only).

    Scores are in "higher is better" units: the metric itself, or minus the metric when the
    matrix holds losses (``higher_is_better=False``).

    Attributes
    ----------
    pbo : float
        Probability of backtest overfitting, ``mean(logits <= 0)`` (λ = 0 counts as overfit).
    logits : ndarray, shape (C,)
        :math:`\lambda_c = \ln(\bar\omega_c / (1 - \bar\omega_c))` per combination.
    relative_ranks : ndarray, shape (C,)
        :math:`\bar\omega_c` = OOS rank of the IS winner / (N + 1).
    oos_ranks : ndarray, shape (C,)
        OOS rank (1 = worst, N = best; average ranks on ties) of the IS winner.
    best_is : ndarray of int, shape (C,)
        Column of the IS winner ``n*`` (first column on IS ties).
    is_performance, oos_performance : ndarray, shape (C,)
        Score of the IS winner in sample and out of sample.
    is_scores, oos_scores : ndarray, shape (C, N)
        Every configuration's score in sample and out of sample.
    combinations : ndarray of int, shape (C, S/2)
        In-sample blocks of each combination (lexicographic order; the OOS blocks are the rest).
    prob_oos_loss : float
        Fraction of combinations where the IS winner scores < 0 out of sample (meaningful when 0
        is the break-even score: returns, excess returns, improvement over a baseline).
    degradation_slope, degradation_intercept : float
        Least-squares line ``oos_performance ≈ intercept + slope * is_performance``; NaN when
        ``is_performance`` is constant. A negative slope means IS winners degrade OOS.
    n_combinations, n_blocks, block_size, n_rows_dropped : int
        C = binom(S, S/2), the S blocks used, rows per block, rows trimmed from the start.
    """

    pbo: float
    logits: np.ndarray
    relative_ranks: np.ndarray
    oos_ranks: np.ndarray
    best_is: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    is_scores: np.ndarray
    oos_scores: np.ndarray
    combinations: np.ndarray
    prob_oos_loss: float
    degradation_slope: float
    degradation_intercept: float
    n_combinations: int
    n_blocks: int
    block_size: int
    n_rows_dropped: int


def _resolve_blocks(n_rows: int, n_blocks: int | None) -> int:
    if n_blocks is None:
        s = n_rows
    else:
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, int | np.integer):
            raise TypeError(f"`n_blocks` must be an int or None, got `n_blocks={n_blocks!r}`")
        s = int(n_blocks)
        if s < 2:
            raise ValueError(f"`n_blocks` must be >= 2, got `n_blocks={n_blocks}`")
        if s > n_rows:
            raise ValueError(
                f"`n_blocks={n_blocks}` exceeds the {n_rows} rows of `matrix`; rows are periods "
                f"or folds and columns configurations (transpose a trials × folds matrix), or "
                f"pass `n_blocks=None` for one block per row")
    s -= s % 2  # odd S: use S - 1 blocks (the earliest rows are trimmed below)
    if s < 2:
        raise ValueError(f"`matrix` needs >= 2 rows (periods or folds), got {n_rows}")
    n_comb = math.comb(s, s // 2)
    if n_comb > _MAX_COMBINATIONS:
        raise ValueError(f"`n_blocks={s}` gives {n_comb:,} combinations (> {_MAX_COMBINATIONS:,}); "
                         f"every one is evaluated, so use fewer blocks (the paper uses 16)")
    return s


def _block_sums(blocks: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Sum ``blocks[idx[:, 0]] + blocks[idx[:, 1]] + ...`` in a fixed order (ties stay exact)."""
    out = blocks[idx[:, 0]].copy()
    for k in range(1, idx.shape[1]):
        out += blocks[idx[:, k]]
    return out


def _scores(x: np.ndarray, is_idx: np.ndarray, oos_idx: np.ndarray, s: int,
            metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """Metric of every configuration on the IS and OOS halves of every combination, (C, N) each."""
    n_rows, n_cols = x.shape
    m = n_rows // s
    if callable(metric):
        blocks = x.reshape(s, m, n_cols)
        out = []
        for idx in (is_idx, oos_idx):
            vals = np.empty((idx.shape[0], n_cols))
            for c, row in enumerate(idx):
                v = np.asarray(metric(blocks[row].reshape(-1, n_cols)), dtype=float)
                if v.shape != (n_cols,):
                    raise ValueError(f"`metric` must map a (rows, {n_cols}) array to shape "
                                     f"({n_cols},) (one value per column), got shape {v.shape}")
                vals[c] = v
            out.append(vals)
        return out[0], out[1]
    if metric not in ("mean", "sharpe"):
        raise ValueError(f"`metric` must be 'mean', 'sharpe' or a callable, got `metric={metric!r}`")
    n_half = m * (s // 2)
    if metric == "sharpe" and n_half < 2:
        raise ValueError(f"metric='sharpe' needs >= 2 rows per half, got {n_half} ({s} blocks "
                         f"of {m} row(s)); use metric='mean' or more rows per block")
    mu = x.mean(axis=0)
    xc = x - mu  # centred: sums of squares without cancellation
    sums = xc.reshape(s, m, n_cols).sum(axis=1)
    sqs = (xc * xc).reshape(s, m, n_cols).sum(axis=1)
    out = []
    for idx in (is_idx, oos_idx):
        tot = _block_sums(sums, idx)
        mean = tot / n_half + mu
        if metric == "mean":
            out.append(mean)
            continue
        var = np.maximum(_block_sums(sqs, idx) - tot * tot / n_half, 0.0) / (n_half - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(mean / np.sqrt(var))
    return out[0], out[1]


def pbo(matrix: np.ndarray, n_blocks: int | None = 16, *, metric: Metric = "mean",
        higher_is_better: bool = True) -> PBOResult:
    r"""Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

    Parameters
    ----------
    matrix : array-like, shape (T, N)
        Performance matrix: **rows are periods (or CV folds) in time order, columns are the N
        configurations (trials)**. A tuning study's trials × folds loss matrix goes in
        transposed: ``pbo(losses.T, n_blocks=None, higher_is_better=False)``.
    n_blocks : int or None, default=16
        Number of contiguous blocks S. ``None``: one block per row (CV folds). S must be even:
        an odd S (given, or T with ``None``) uses S − 1 blocks, and the rows that no longer fit
        are trimmed from the start, like the ``T % S`` remainder (5 folds: the first fold is
        dropped and 4 remain).
    metric : {'mean', 'sharpe'} or callable, default='mean'
        Per-configuration statistic of a half sample: the column mean, ``mean / std(ddof=1)``
        (not annualized), or a callable mapping a (rows, N) array (the half's blocks in time
        order) to N values, called 2·C times.
    higher_is_better : bool, default=True
        ``False`` for a loss matrix: the score is minus the metric, so the IS winner is the
        lowest loss and ranks, logits and ``prob_oos_loss`` are taken on the negated metric.

    Returns
    -------
    PBOResult

    Raises
    ------
    ValueError
        If ``matrix`` is not 2-D with >= 2 columns, has non-finite values, ``n_blocks`` is < 2
        or above T, the combinations exceed 1,000,000, or a metric value is not finite
        (e.g. a constant column under 'sharpe').
    TypeError
        If ``n_blocks`` is neither an int nor None.

    Notes
    -----
    CSCV (Bailey, Borwein, López de Prado & Zhu 2017, §2; REFERENCES.md §2.2): drop ``T % S``
    rows from the start and split the rest into S contiguous blocks of ``T // S`` rows. For each
    of the :math:`C = \binom{S}{S/2}` sets :math:`J` of S/2 blocks (in sample, in time order;
    :math:`\bar J` is the complement), compute the scores :math:`R` on :math:`J` and
    :math:`\bar R` on :math:`\bar J`, take :math:`n^* = \arg\max R` (first column on ties), its
    OOS rank among :math:`\bar R` (``scipy.stats.rankdata``, average ties),
    :math:`\bar\omega_c = \text{rank}/(N+1)` and :math:`\lambda_c = \ln(\bar\omega_c/(1-\bar\omega_c))`.
    Then :math:`PBO = \frac{1}{C}\sum_c 1\{\lambda_c \le 0\}`. Under pure noise PBO is a little
    above 0.5 (the halves are complementary, so IS and OOS ranks are negatively correlated).

    Examples
    --------
    >>> m = np.array([[0.30, 0.10, 0.20], [0.00, 0.40, 0.26],
    ...               [0.36, -0.10, 0.16], [-0.20, 0.50, 0.12]])
    >>> res = pbo(m, n_blocks=4)
    >>> res.n_combinations, round(res.pbo, 4), round(res.prob_oos_loss, 4)
    (6, 0.6667, 0.1667)
    >>> np.round(res.logits, 4)
    array([ 1.0986, -1.0986, -1.0986,  0.    , -1.0986,  1.0986])
    """
    x = np.asarray(matrix, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"`matrix` must be 2-D (periods × configurations) with >= 2 columns, "
                         f"got shape {x.shape}")
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        r, c = bad[0]
        raise ValueError(f"`matrix` has {len(bad)} non-finite value(s), first at row {r}, "
                         f"column {c} ({x[r, c]}); drop or fill them before CSCV")
    s = _resolve_blocks(x.shape[0], n_blocks)
    m = x.shape[0] // s
    dropped = x.shape[0] - s * m
    x = x[dropped:]
    is_idx = np.array(list(combinations(range(s), s // 2)), dtype=np.intp)
    n_comb = is_idx.shape[0]
    mask = np.zeros((n_comb, s), dtype=bool)
    mask[np.arange(n_comb)[:, None], is_idx] = True
    oos_idx = np.nonzero(~mask)[1].reshape(n_comb, s // 2)
    r_is, r_oos = _scores(x, is_idx, oos_idx, s, metric)
    if not higher_is_better:
        r_is, r_oos = -r_is, -r_oos
    for name, r in (("in-sample", r_is), ("out-of-sample", r_oos)):
        bad = np.argwhere(~np.isfinite(r))
        if bad.size:
            c, n = bad[0]
            raise ValueError(f"metric={metric!r} is not finite ({r[c, n]}) {name} for column {n} "
                             f"in combination {c} (IS blocks {is_idx[c].tolist()}); a constant "
                             f"column under 'sharpe'? use metric='mean' or drop the column")
    rows = np.arange(n_comb)
    best = np.argmax(r_is, axis=1)
    oos_rank = rankdata(r_oos, axis=1, method="average")[rows, best]
    omega = oos_rank / (x.shape[1] + 1)
    logits = np.log(omega / (1 - omega))
    is_perf, oos_perf = r_is[rows, best], r_oos[rows, best]
    dx = is_perf - is_perf.mean()
    sxx = float(dx @ dx)
    slope = float(dx @ (oos_perf - oos_perf.mean()) / sxx) if sxx > 0 else math.nan
    intercept = float(oos_perf.mean() - slope * is_perf.mean())
    arrays = (logits, omega, oos_rank, best, is_perf, oos_perf, r_is, r_oos, is_idx)
    for a in arrays:
        a.setflags(write=False)
    return PBOResult(
        pbo=float(np.mean(logits <= 0)), logits=logits, relative_ranks=omega, oos_ranks=oos_rank,
        best_is=best, is_performance=is_perf, oos_performance=oos_perf, is_scores=r_is,
        oos_scores=r_oos, combinations=is_idx, prob_oos_loss=float(np.mean(oos_perf < 0)),
        degradation_slope=slope, degradation_intercept=intercept, n_combinations=n_comb,
        n_blocks=s, block_size=m, n_rows_dropped=dropped)
