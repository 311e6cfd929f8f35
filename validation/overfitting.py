"""Overfitting statistics: deflated Sharpe ratio (PSR, DSR, MinTRL, MinBTL) and PBO via CSCV.

Pure numpy/scipy. Two questions, two tools:

* **Is this Sharpe ratio still significant after N tries?** :func:`deflated_sharpe_ratio` raises
  the bar from 0 to the Sharpe ratio that the best of N skill-less trials is expected to show
  (:func:`expected_max_sr`), then asks for the probabilistic Sharpe ratio against that bar
  (:func:`probabilistic_sharpe_ratio`). :func:`min_track_record_length` and
  :func:`min_backtest_length` give the sample sizes these statistics need.
* **Does the in-sample winner stay good out of sample?** :func:`pbo` runs combinatorially
  symmetric cross-validation over a (periods × configurations) performance matrix and returns the
  probability of backtest overfitting with its side statistics (:class:`PBOResult`).

Conventions (shared with ``../shared/REFERENCES.md`` §2):

* Sharpe ratios are **not annualized**: they are at the sampling frequency of the returns
  (daily SR = annual SR / sqrt(250)), and so is the variance of the trials' Sharpe ratios.
* ``kurtosis`` is **Pearson kurtosis, NOT excess** (normal = 3). pandas ``.kurt()`` and
  ``scipy.stats.kurtosis`` (default ``fisher=True``) return *excess* kurtosis: pass those values
  as ``excess_kurtosis=`` instead. A ``kurtosis`` below the bound ``1 + skew**2``, which every
  distribution satisfies, is rejected as a probable excess value.

References
----------
Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier", J. Risk 15(2).
Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", J. Portfolio Mgmt 40(5).
Bailey, Borwein, López de Prado & Zhu (2014), "Pseudo-Mathematics and Financial Charlatanism",
Notices AMS 61(5). Bailey, Borwein, López de Prado & Zhu (2017), "The Probability of Backtest
Overfitting", J. Computational Finance 20(4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Final, Literal

import numpy as np
from scipy.stats import norm, rankdata

__all__ = [
    "DeflatedSharpeResult",
    "PBOResult",
    "deflated_sharpe_ratio",
    "expected_max_sr",
    "min_backtest_length",
    "min_track_record_length",
    "pbo",
    "probabilistic_sharpe_ratio",
]

_MAX_COMBINATIONS: Final = 1_000_000  # C(22, 11) = 705,432 fits; C(24, 12) = 2.7M does not
Metric = Literal["mean", "sharpe"] | Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- Sharpe statistics


def _finite(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"`{name}` must be finite, got `{name}={value}`")
    return v


def _pearson_kurtosis(skew: float, kurtosis: float | None, excess_kurtosis: float | None) -> float:
    """Resolve the two kurtosis keywords into one Pearson kurtosis (normal = 3), checked."""
    if kurtosis is not None and excess_kurtosis is not None:
        raise ValueError(
            f"pass either `kurtosis` (Pearson, normal = 3) or `excess_kurtosis` (normal = 0), "
            f"not both; got kurtosis={kurtosis}, excess_kurtosis={excess_kurtosis}")
    if excess_kurtosis is not None:
        k = _finite("excess_kurtosis", excess_kurtosis) + 3.0
        given = f"excess_kurtosis={excess_kurtosis} (kurtosis {k:g})"
    elif kurtosis is not None:
        k = _finite("kurtosis", kurtosis)
        given = f"kurtosis={kurtosis}"
    else:
        return 3.0
    bound = 1.0 + skew * skew
    if k < bound:
        hint = (f"it looks like EXCESS kurtosis (pandas `.kurt()`, scipy `kurtosis()`): pass "
                f"`excess_kurtosis={kurtosis}` or add 3" if excess_kurtosis is None
                else "check the estimate")
        raise ValueError(f"`{given}` is below 1 + skew² = {bound:g}, which every distribution "
                         f"satisfies; {hint}")
    return k


def _sr_variance_factor(sr: float, skew: float, kurt: float) -> float:
    """``1 − γ3·SR + (γ4 − 1)/4·SR²``: T × the asymptotic variance of the SR estimate."""
    return 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr


def expected_max_sr(n_trials: float) -> float:
    r"""Expected maximum of ``n_trials`` iid standard normals (False Strategy approximation).

    Parameters
    ----------
    n_trials : float
        Number of independent trials N, >= 1 (an effective, non-integer number is allowed).

    Returns
    -------
    float
        :math:`E[\max_N] \approx (1-\gamma)\,Z^{-1}[1-1/N] + \gamma\,Z^{-1}[1-1/(N e)]`, with
        :math:`\gamma` the Euler–Mascheroni constant. ``n_trials=1`` returns 0 exactly (one
        trial: nothing is selected, and the formula would give −inf).

    Raises
    ------
    ValueError
        If ``n_trials`` is not finite or is below 1.

    Notes
    -----
    About 1% above the exact expectation for N = 10 … 1000 (2.5306 against 2.507 for N = 100).
    Multiply by the standard deviation of the trials' Sharpe ratios to get the SR that the best
    of N skill-less trials is expected to reach (Bailey & López de Prado 2014, eq. 6).

    Examples
    --------
    >>> round(expected_max_sr(100), 10)
    2.5306028932
    """
    n = _finite("n_trials", n_trials)
    if n < 1:
        raise ValueError(f"`n_trials` must be >= 1, got `n_trials={n_trials}`")
    if n == 1:
        return 0.0
    g = np.euler_gamma
    return float((1 - g) * norm.ppf(1 - 1 / n) + g * norm.ppf(1 - 1 / (n * np.e)))


def probabilistic_sharpe_ratio(sr: float, *, n_obs: int, sr_star: float = 0.0, skew: float = 0.0,
                               kurtosis: float | None = None,
                               excess_kurtosis: float | None = None) -> float:
    r"""Probability that the true Sharpe ratio exceeds ``sr_star`` (PSR).

    Parameters
    ----------
    sr : float
        Observed Sharpe ratio, **not annualized** (at the sampling frequency of the returns).
    n_obs : int
        Number of returns T the ratio was estimated on, >= 2.
    sr_star : float, default=0.0
        Benchmark Sharpe ratio, same frequency as ``sr``.
    skew : float, default=0.0
        Skewness of the returns.
    kurtosis : float, optional
        **Pearson kurtosis, NOT excess** (normal = 3). Default: normal.
    excess_kurtosis : float, optional
        Excess kurtosis (normal = 0; what pandas ``.kurt()`` returns), instead of ``kurtosis``.

    Returns
    -------
    float
        :math:`PSR = Z\left[\frac{(\widehat{SR}-SR^*)\sqrt{T-1}}
        {\sqrt{1-\gamma_3\widehat{SR}+\frac{\gamma_4-1}{4}\widehat{SR}^2}}\right]`.

    Raises
    ------
    ValueError
        If both kurtosis keywords are given, if the kurtosis is below ``1 + skew**2`` (likely an
        excess value), if ``n_obs < 2``, or if an input is not finite.

    Notes
    -----
    The denominator is positive whenever :math:`\gamma_4 \ge 1+\gamma_3^2`, since then it is at
    least :math:`(1-\gamma_3\widehat{SR}/2)^2`. Bailey & López de Prado (2012).

    Examples
    --------
    >>> psr = probabilistic_sharpe_ratio(1.585 / 12 ** 0.5, n_obs=24, skew=-2.448,
    ...                                  kurtosis=10.164)
    >>> round(psr, 10)
    0.9132343069
    """
    sr, sr_star, skew = _finite("sr", sr), _finite("sr_star", sr_star), _finite("skew", skew)
    kurt = _pearson_kurtosis(skew, kurtosis, excess_kurtosis)
    if n_obs < 2:
        raise ValueError(f"`n_obs` must be >= 2 (the PSR uses sqrt(n_obs - 1)), got `n_obs={n_obs}`")
    factor = _sr_variance_factor(sr, skew, kurt)
    if factor <= 0:  # only on the boundary kurtosis == 1 + skew² with sr == 2 / skew
        raise ValueError(f"the SR variance factor 1 - skew·sr + (kurtosis-1)/4·sr² = {factor:g} "
                         f"is not positive for sr={sr}, skew={skew}, kurtosis={kurt}")
    return float(norm.cdf((sr - sr_star) * math.sqrt(n_obs - 1) / math.sqrt(factor)))


@dataclass(frozen=True)
class DeflatedSharpeResult:
    """The deflated Sharpe ratio and what it was built from (all SRs not annualized).

    Attributes
    ----------
    dsr : float
        Deflated Sharpe ratio, ``PSR(sr0)``: probability that the true SR exceeds ``sr0``.
    psr : float
        The undeflated ``PSR(0)``, for comparison: what one would report ignoring the N trials.
    sr0 : float
        The deflated benchmark ``sqrt(sr_trials_variance) * e_max``.
    e_max : float
        ``expected_max_sr(n_trials)``.
    sr, sr_trials_variance, n_trials, n_obs, skew, kurtosis
        The inputs; ``kurtosis`` is the Pearson kurtosis used (normal = 3).
    """

    dsr: float
    psr: float
    sr0: float
    e_max: float
    sr: float
    sr_trials_variance: float
    n_trials: float
    n_obs: int
    skew: float
    kurtosis: float


def deflated_sharpe_ratio(sr: float, *, n_obs: int, sr_trials: np.ndarray | None = None,
                          sr_trials_variance: float | None = None, n_trials: float | None = None,
                          skew: float = 0.0, kurtosis: float | None = None,
                          excess_kurtosis: float | None = None) -> DeflatedSharpeResult:
    r"""Deflated Sharpe ratio of the selected strategy among ``n_trials`` tried (DSR).

    Parameters
    ----------
    sr : float
        Sharpe ratio of the selected trial, **not annualized**.
    n_obs : int
        Number of returns T behind ``sr``, >= 2.
    sr_trials : array-like, optional
        The Sharpe ratios of all trials (same frequency). Their sample variance (ddof=1) is
        used, and ``n_trials`` defaults to their count. Give this or ``sr_trials_variance``.
    sr_trials_variance : float, optional
        Variance of the trials' Sharpe ratios (not annualized: annual variance / 250 for daily).
        Requires ``n_trials``.
    n_trials : float, optional
        Number of independent trials N, >= 1; may be an effective number below
        ``len(sr_trials)`` when trials are correlated.
    skew : float, default=0.0
        Skewness of the selected trial's returns.
    kurtosis : float, optional
        **Pearson kurtosis, NOT excess** (normal = 3). Default: normal.
    excess_kurtosis : float, optional
        Excess kurtosis (normal = 0), instead of ``kurtosis``.

    Returns
    -------
    DeflatedSharpeResult

    Raises
    ------
    ValueError
        If neither or both of ``sr_trials`` / ``sr_trials_variance`` are given, if
        ``sr_trials_variance`` comes without ``n_trials``, on fewer than 2 trial SRs, a negative
        variance, or any error of :func:`probabilistic_sharpe_ratio`.

    Notes
    -----
    :math:`SR_0 = \sqrt{V[\{\widehat{SR}_n\}]}\;E[\max_N]` and :math:`DSR = PSR(SR_0)`
    (Bailey & López de Prado 2014, eqs. 2 and 6).

    Examples
    --------
    The paper's example: N = 100, annual variance 0.5, annual SR 2.5, 5 years of daily returns.

    >>> res = deflated_sharpe_ratio(2.5 / 250 ** 0.5, n_obs=1250, sr_trials_variance=0.5 / 250,
    ...                             n_trials=100, skew=-3, kurtosis=10)
    >>> round(res.dsr, 10), round(res.sr0 * 250 ** 0.5, 4)
    (0.9003968344, 1.7894)
    """
    if (sr_trials is None) == (sr_trials_variance is None):
        raise ValueError("give exactly one of `sr_trials` (the trials' Sharpe ratios) or "
                         "`sr_trials_variance` (their variance, with `n_trials`)")
    if sr_trials is not None:
        trials = np.asarray(sr_trials, dtype=float).ravel()
        if trials.size < 2 or not np.isfinite(trials).all():
            raise ValueError(f"`sr_trials` needs >= 2 finite Sharpe ratios, got {trials.size} "
                             f"values ({int((~np.isfinite(trials)).sum())} not finite)")
        variance = float(trials.var(ddof=1))
        n = float(trials.size) if n_trials is None else n_trials
    else:
        variance = _finite("sr_trials_variance", sr_trials_variance)  # type: ignore[arg-type]
        if variance < 0:
            raise ValueError(f"`sr_trials_variance` must be >= 0, got {sr_trials_variance}")
        if n_trials is None:
            raise ValueError("`sr_trials_variance` needs `n_trials` (the number of trials)")
        n = n_trials
    e_max = expected_max_sr(n)
    sr0 = math.sqrt(variance) * e_max
    kw = {"n_obs": n_obs, "skew": skew, "kurtosis": kurtosis, "excess_kurtosis": excess_kurtosis}
    dsr = probabilistic_sharpe_ratio(sr, sr_star=sr0, **kw)
    psr = probabilistic_sharpe_ratio(sr, sr_star=0.0, **kw)
    return DeflatedSharpeResult(
        dsr=dsr, psr=psr, sr0=sr0, e_max=e_max, sr=float(sr), sr_trials_variance=variance,
        n_trials=float(n), n_obs=int(n_obs), skew=float(skew),
        kurtosis=_pearson_kurtosis(float(skew), kurtosis, excess_kurtosis))


def min_track_record_length(sr: float, *, sr_star: float = 0.0, prob: float = 0.95,
                            skew: float = 0.0, kurtosis: float | None = None,
                            excess_kurtosis: float | None = None) -> float:
    r"""Minimum number of returns for ``PSR(sr_star) >= prob`` (MinTRL).

    Parameters
    ----------
    sr, sr_star : float
        Observed and benchmark Sharpe ratios, **not annualized**; ``sr_star`` defaults to 0.
    prob : float, default=0.95
        Required confidence, in (0.5, 1).
    skew, kurtosis, excess_kurtosis
        As in :func:`probabilistic_sharpe_ratio` (``kurtosis`` is **NOT excess**).

    Returns
    -------
    float
        :math:`1 + \left(1-\gamma_3\widehat{SR}+\frac{\gamma_4-1}{4}\widehat{SR}^2\right)
        \left(\frac{Z^{-1}[p]}{\widehat{SR}-SR^*}\right)^2` observations (divide by the periods
        per year for years); ``inf`` when ``sr <= sr_star`` (no length suffices).

    Raises
    ------
    ValueError
        If ``prob`` is outside (0.5, 1), or on a kurtosis error.

    Examples
    --------
    >>> round(min_track_record_length(2 / 250 ** 0.5, sr_star=1 / 250 ** 0.5) / 250, 7)
    2.7311878
    """
    sr, sr_star, skew = _finite("sr", sr), _finite("sr_star", sr_star), _finite("skew", skew)
    kurt = _pearson_kurtosis(skew, kurtosis, excess_kurtosis)
    if not 0.5 < prob < 1:
        raise ValueError(f"`prob` must be in (0.5, 1), got `prob={prob}`")
    if sr <= sr_star:
        return math.inf
    z = float(norm.ppf(prob))
    return 1.0 + _sr_variance_factor(sr, skew, kurt) * (z / (sr - sr_star)) ** 2


def min_backtest_length(n_trials: float, sr_annual: float, *, upper_bound: bool = False) -> float:
    r"""Years of data below which the best of ``n_trials`` skill-less trials reaches ``sr_annual``.

    Parameters
    ----------
    n_trials : float
        Number of independent trials N, >= 1.
    sr_annual : float
        In-sample **annualized** Sharpe ratio of the selected trial, > 0.
    upper_bound : bool, default=False
        Return the closed-form upper bound :math:`2\ln N / SR^2` instead.

    Returns
    -------
    float
        :math:`MinBTL \approx (E[\max_N] / SR_{IS})^2` years (Bailey, Borwein, López de Prado &
        Zhu 2014): with less data, an annual SR of ``sr_annual`` is expected from noise alone.

    Raises
    ------
    ValueError
        If ``sr_annual <= 0`` or ``n_trials < 1``.

    Examples
    --------
    >>> round(min_backtest_length(45, 1.0), 6), round(min_backtest_length(45, 1.0, upper_bound=True), 3)
    (4.998087, 7.613)
    """
    sr = _finite("sr_annual", sr_annual)
    if sr <= 0:
        raise ValueError(f"`sr_annual` must be > 0, got `sr_annual={sr_annual}`")
    if upper_bound:
        n = _finite("n_trials", n_trials)
        if n < 1:
            raise ValueError(f"`n_trials` must be >= 1, got `n_trials={n_trials}`")
        return 2.0 * math.log(n) / sr**2
    return (expected_max_sr(n_trials) / sr) ** 2


# --------------------------------------------------------------------------- PBO via CSCV


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
