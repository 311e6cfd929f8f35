"""Deflated Sharpe ratio statistics of :mod:`validation.overfitting`: E[max SR], PSR, DSR, MinTRL, MinBTL.

Bailey & López de Prado (2012, 2014); Bailey, Borwein, López de Prado & Zhu (2014). The
conventions (Sharpe ratios not annualized, ``kurtosis`` Pearson not excess) are those of
:mod:`validation.overfitting`, which re-exports the public names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

__all__ = [
    "DeflatedSharpeResult",
    "deflated_sharpe_ratio",
    "expected_max_sr",
    "min_backtest_length",
    "min_track_record_length",
    "probabilistic_sharpe_ratio",
]


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
