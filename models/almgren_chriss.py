"""Almgren & Chriss (2000) optimal execution: trajectory, cost, variance and the efficient frontier.

Pure functions of a frozen :class:`AlmgrenChrissParams` (REFERENCES.md §3.4). The discrete model
sells ``X`` shares over ``T`` days in ``N`` intervals of ``tau = T/N``; holdings ``x_0 = X, ...,
x_N = 0``; trades ``n_k = x_{k-1} - x_k``.

* permanent impact ``g(v) = gamma * v``; temporary ``h(v) = epsilon * sgn(v) + (eta/tau) * n_k``;
* ``E[cost] = 1/2 gamma X^2 + epsilon sum|n_k| + (eta_tilde/tau) sum n_k^2`` with
  ``eta_tilde = eta - gamma tau / 2``;
* ``V[cost] = sigma^2 tau sum_{k=1}^{N} x_k^2``;
* minimizing ``E + lam V`` gives ``x_j = X sinh(kappa (T - t_j)) / sinh(kappa T)`` where
  ``(2/tau^2)(cosh(kappa tau) - 1) = lam sigma^2 / eta_tilde``; the half-life is ``1/kappa``.

Units: shares, days, dollars. ``sigma`` is $/share/day^(1/2) (price x daily volatility),
``epsilon`` $/share (half the spread), ``gamma`` $/share^2, ``eta`` $·day/share^2, ``lam`` 1/$.

Examples
--------
The paper's example (S0 = $50, 30 %/yr volatility, 1/8 spread, 5M ADV):

>>> p = AlmgrenChrissParams(X=1e6, T=5, N=5, sigma=0.3 * 50 / 250**0.5, epsilon=0.0625,
...                         gamma=2.5e-7, eta=2.5e-6, lam=1e-6)
>>> round(kappa(p), 5), [round(v) for v in trajectory(p).x]
(0.60626, [1000000, 542381, 290295, 148216, 62303, 0])
>>> round(expected_cost(p)), round(variance(p) ** 0.5)
(910478, 603215)
"""

from __future__ import annotations

import math
from typing import NamedTuple, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.impact import ATHLImpact, athl_permanent, athl_temporary

__all__ = [
    "AlmgrenChrissParams",
    "Trajectory",
    "cost_of_trajectory",
    "efficient_frontier",
    "expected_cost",
    "half_life",
    "holdings_fraction",
    "kappa",
    "kappa_continuous",
    "params_from_athl",
    "params_from_linear_bps",
    "trajectory",
    "variance",
]

Floats = NDArray[np.float64]

_SMALL_KT = 1e-2  # below this kappa*T the closed forms cancel catastrophically: sum directly


class AlmgrenChrissParams(BaseModel):
    """Parameters of the discrete Almgren–Chriss model (one sell program of ``X`` shares).

    Parameters
    ----------
    X : float
        Shares to trade (> 0). A buy program is the mirror image; costs are the same.
    T : float
        Horizon in (trading) days (> 0).
    N : int
        Number of intervals (>= 1); ``tau = T/N``.
    sigma : float
        Price volatility in $/share/day^(1/2), i.e. price x daily volatility (>= 0).
    epsilon : float, default=0.0
        Fixed cost per share in $ (half the bid-ask spread plus fees; >= 0).
    gamma : float, default=0.0
        Permanent impact in $/share^2: trading ``n`` shares moves the price by ``gamma * n``.
    eta : float
        Temporary impact in $·day/share^2: trading at ``v`` shares/day costs ``eta * v`` $/share.
    lam : float, default=0.0
        Risk aversion in 1/$ (>= 0); 0 gives the linear (TWAP) schedule.

    Raises
    ------
    pydantic.ValidationError
        When ``eta_tilde = eta - gamma*tau/2 <= 0`` (the discrete problem is then not convex).

    Notes
    -----
    ``eta_tilde`` is the temporary coefficient corrected for the discreteness of trading; it must
    be positive. Fix a violation with more intervals (smaller ``tau``), a larger ``eta`` or a
    smaller ``gamma``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    X: float = Field(gt=0.0)
    T: float = Field(gt=0.0)
    N: int = Field(ge=1)
    sigma: float = Field(ge=0.0)
    epsilon: float = Field(default=0.0, ge=0.0)
    gamma: float = Field(default=0.0, ge=0.0)
    eta: float = Field(gt=0.0)
    lam: float = Field(default=0.0, ge=0.0)

    @property
    def tau(self) -> float:
        """Interval length in days, ``T/N``."""
        return self.T / self.N

    @property
    def eta_tilde(self) -> float:
        """Discrete temporary coefficient ``eta - gamma*tau/2`` ($·day/share^2)."""
        return self.eta - 0.5 * self.gamma * self.tau

    @model_validator(mode="after")
    def _check_convex(self) -> Self:
        if self.eta_tilde <= 0.0:
            need_n = math.floor(self.gamma * self.T / (2.0 * self.eta)) + 1
            raise ValueError(
                f"eta_tilde = eta - gamma*tau/2 = {self.eta:g} - {self.gamma:g}*{self.tau:g}/2 = "
                f"{self.eta_tilde:g} must be > 0 (else the optimal schedule is not defined); "
                f"use N >= {need_n} intervals, a larger eta or a smaller gamma"
            )
        return self


class Trajectory(NamedTuple):
    """An execution trajectory: times ``t`` (days, N+1), holdings ``x`` (N+1), trades ``n`` (N)."""

    t: Floats
    x: Floats
    n: Floats


# --------------------------------------------------------------------------- kappa
def kappa(params: AlmgrenChrissParams) -> float:
    """Discrete urgency ``kappa`` (1/day) of the optimal trajectory.

    Solves ``(2/tau^2)(cosh(kappa tau) - 1) = lam sigma^2 / eta_tilde``, i.e.
    ``kappa = arccosh(1 + lam sigma^2 tau^2 / (2 eta_tilde)) / tau``; 0 when ``lam*sigma = 0``.

    Examples
    --------
    >>> p = AlmgrenChrissParams(X=1e6, T=5, N=5, sigma=0.9**0.5, gamma=2.5e-7, eta=2.5e-6,
    ...                         lam=2e-6)
    >>> round(kappa(p), 5)
    0.84519
    """
    tau = params.tau
    z = params.lam * params.sigma**2 * tau**2 / (2.0 * params.eta_tilde)
    # arccosh(1 + z) = log1p(z + sqrt(z (z + 2))): exact for tiny z, where 1 + z would round
    return float(math.log1p(z + math.sqrt(z * (z + 2.0))) / tau)


def kappa_continuous(params: AlmgrenChrissParams) -> float:
    """Continuous-time urgency ``sqrt(lam sigma^2 / eta)`` (1/day); the ``tau -> 0`` limit."""
    return math.sqrt(params.lam * params.sigma**2 / params.eta)


def half_life(params: AlmgrenChrissParams) -> float:
    """Half-life of the trade ``theta = 1/kappa`` in days (``inf`` for the linear schedule)."""
    k = kappa(params)
    return math.inf if k == 0.0 else 1.0 / k


# --------------------------------------------------------------------------- trajectory
def _log_sinh(z: Floats) -> Floats:
    """``log(sinh(z))`` for z > 0 without overflow."""
    z = np.asarray(z, dtype=np.float64)
    big = z > 20.0
    out = np.empty_like(z)
    out[big] = z[big] - math.log(2.0) + np.log1p(-np.exp(-2.0 * z[big]))
    out[~big] = np.log(np.sinh(z[~big]))
    return out


def holdings_fraction(kappa_t: ArrayLike, s: ArrayLike) -> Floats:
    """Remaining fraction ``x(s)/X = sinh(kT (1 - s)) / sinh(kT)`` at horizon fraction ``s``.

    Parameters
    ----------
    kappa_t : array_like
        Dimensionless urgency ``kappa * T`` (>= 0); 0 gives the linear schedule ``1 - s``.
    s : array_like
        Fraction of the horizon elapsed, in [0, 1]; broadcasts against ``kappa_t``.

    Returns
    -------
    numpy.ndarray
        Holdings fraction in [0, 1] (1 at ``s = 0``, 0 at ``s = 1``); overflow-free for any
        ``kappa_t``.
    """
    kt, s = np.broadcast_arrays(np.asarray(kappa_t, dtype=np.float64),
                                np.asarray(s, dtype=np.float64))
    out = 1.0 - s
    pos = (kt > 0.0) & (s > 0.0) & (s < 1.0)
    if pos.any():
        a, b = kt[pos] * (1.0 - s[pos]), kt[pos]
        out[pos] = np.exp(_log_sinh(a) - _log_sinh(b))
    return out


def trajectory(params: AlmgrenChrissParams) -> Trajectory:
    """Optimal holdings ``x_0..x_N`` and trades ``n_1..n_N`` minimizing ``E + lam V``.

    ``x_j = X sinh(kappa (T - t_j)) / sinh(kappa T)`` with ``t_j = j tau``; linear when
    ``kappa = 0``. ``x_0 = X`` and ``x_N = 0`` exactly.
    """
    t = np.arange(params.N + 1, dtype=np.float64) * params.tau
    s = np.arange(params.N + 1, dtype=np.float64) / params.N
    x = params.X * holdings_fraction(kappa(params) * params.T, s)
    x[0], x[-1] = params.X, 0.0
    return Trajectory(t=t, x=x, n=x[:-1] - x[1:])


# --------------------------------------------------------------------------- cost and variance
def cost_of_trajectory(params: AlmgrenChrissParams, x: ArrayLike) -> tuple[float, float]:
    """Expected cost and variance of any trajectory, by direct sums (not the closed form).

    Parameters
    ----------
    params : AlmgrenChrissParams
        Model parameters (``lam`` is not used).
    x : array_like
        Holdings ``x_0..x_N`` (length ``N + 1``) from ``x_0 = X`` to ``x_N = 0``.

    Returns
    -------
    (float, float)
        ``E = gamma sum x_k n_k + epsilon sum|n_k| + (eta/tau) sum n_k^2`` (the price path's
        permanent drift plus the temporary concessions, summed trade by trade; it equals
        ``1/2 gamma X^2 + epsilon sum|n_k| + (eta_tilde/tau) sum n_k^2``) and
        ``V = sigma^2 tau sum_{k=1}^{N} x_k^2``.

    Raises
    ------
    ValueError
        When ``x`` has the wrong length or does not run from ``X`` to 0.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (params.N + 1,):
        raise ValueError(f"trajectory has shape {x.shape}; expected ({params.N + 1},) holdings "
                         f"x_0..x_N for N={params.N}")
    if not (math.isclose(x[0], params.X, rel_tol=1e-12) and abs(x[-1]) <= 1e-9 * params.X):
        raise ValueError(f"trajectory runs from x_0={x[0]:g} to x_N={x[-1]:g}; it must run from "
                         f"X={params.X:g} to 0")
    n = x[:-1] - x[1:]
    tau = params.tau
    e = (params.gamma * float(np.sum(x[1:] * n)) + params.epsilon * float(np.sum(np.abs(n)))
         + params.eta / tau * float(np.sum(n * n)))
    v = params.sigma**2 * tau * float(np.sum(x[1:] ** 2))
    return e, v


def _linear_ev(p: AlmgrenChrissParams) -> tuple[float, float]:
    e = 0.5 * p.gamma * p.X**2 + p.epsilon * p.X + p.eta_tilde * p.X**2 / p.T
    v = p.sigma**2 * p.tau * p.X**2 * (p.N - 1) * (2 * p.N - 1) / (6.0 * p.N)
    return e, v


def expected_cost(params: AlmgrenChrissParams) -> float:
    """Closed-form expected cost ($) of the optimal trajectory.

    Notes
    -----
    ``E = 1/2 gamma X^2 + epsilon X + eta_tilde X^2 tanh(kappa tau/2)
    (tau sinh(2 kappa T) + 2 T sinh(kappa tau)) / (2 tau^2 sinh^2(kappa T))`` (Almgren & Chriss
    2000, eq. for the efficient frontier), evaluated in an overflow-free form. At ``kappa = 0``
    it is the TWAP cost ``1/2 gamma X^2 + epsilon X + eta_tilde X^2 / T``; for
    ``0 < kappa T < 1e-2`` the closed form cancels catastrophically and the direct sums of
    :func:`cost_of_trajectory` are returned (they are equal algebraically).
    """
    p, k = params, kappa(params)
    if k == 0.0:
        return _linear_ev(p)[0]
    if k * p.T < _SMALL_KT:
        return cost_of_trajectory(p, trajectory(p).x)[0]
    kt, ktau, tau = k * p.T, k * p.tau, p.tau
    coth = 1.0 / math.tanh(kt)
    r = math.exp(float(_log_sinh(np.array([ktau]))[0] - 2.0 * _log_sinh(np.array([kt]))[0]))
    tail = math.tanh(ktau / 2.0) * (2.0 * tau * coth + 2.0 * p.T * r) / (2.0 * tau**2)
    return 0.5 * p.gamma * p.X**2 + p.epsilon * p.X + p.eta_tilde * p.X**2 * tail


def variance(params: AlmgrenChrissParams) -> float:
    """Closed-form variance ($^2) of the cost of the optimal trajectory.

    Notes
    -----
    ``V = 1/2 sigma^2 X^2 (tau sinh(kappa T) cosh(kappa (T - tau)) - T sinh(kappa tau))
    / (sinh^2(kappa T) sinh(kappa tau))``, evaluated in an overflow-free form; the linear
    schedule (``kappa = 0``) gives ``sigma^2 tau X^2 (N-1)(2N-1)/(6N)``. Small ``kappa T`` falls
    back to the direct sums as in :func:`expected_cost`.
    """
    p, k = params, kappa(params)
    if k == 0.0:
        return _linear_ev(p)[1]
    if k * p.T < _SMALL_KT:
        return cost_of_trajectory(p, trajectory(p).x)[1]
    kt, ktau = k * p.T, k * p.tau
    ls_t, ls_tau = _log_sinh(np.array([kt, ktau]))
    a = kt - ktau  # cosh(a), a >= 0
    log_cosh_a = a + math.log1p(math.exp(-2.0 * a)) - math.log(2.0)
    first = p.tau * math.exp(log_cosh_a - ls_t - ls_tau)
    second = p.T * math.exp(-2.0 * ls_t)
    return max(0.5 * p.sigma**2 * p.X**2 * (first - second), 0.0)


def efficient_frontier(params: AlmgrenChrissParams, lams: ArrayLike) -> pd.DataFrame:
    """The efficient frontier: optimal ``E`` and ``sqrt(V)`` for each risk aversion.

    Parameters
    ----------
    params : AlmgrenChrissParams
        Model parameters; its ``lam`` is replaced by each value of ``lams``.
    lams : array_like
        Risk aversions (1/$, >= 0).

    Returns
    -------
    pandas.DataFrame
        Columns ``lam, kappa, E, sqrtV`` (one row per ``lam``, in the order given). Along
        increasing ``lam``, ``E`` increases and ``sqrtV`` decreases; ``lam = 0`` is the TWAP
        (minimum-E) end.
    """
    rows = []
    for lam in np.asarray(lams, dtype=np.float64).ravel():
        p = AlmgrenChrissParams(**{**params.model_dump(), "lam": float(lam)})
        rows.append((float(lam), kappa(p), expected_cost(p), math.sqrt(variance(p))))
    return pd.DataFrame(rows, columns=["lam", "kappa", "E", "sqrtV"])


# --------------------------------------------------------------------------- from impact models
def params_from_linear_bps(*, qty: float, days: float, n_intervals: int, price: float, adv: float,
                           sigma_daily: float, spread_bps: float, permanent_bps_per_adv: float,
                           temporary_bps_per_adv_per_day: float,
                           lam: float = 0.0) -> AlmgrenChrissParams:
    """Almgren–Chriss parameters from linear impact coefficients quoted in basis points.

    Parameters
    ----------
    qty, days, n_intervals : float, float, int
        ``X`` (shares), ``T`` (trading days) and ``N``.
    price : float
        Reference (arrival) price in $.
    adv : float
        Average daily volume in shares.
    sigma_daily : float
        Daily volatility, decimal (0.02 is 2 %/day).
    spread_bps : float
        Quoted bid-ask spread in bps of ``price``; ``epsilon`` is half of it.
    permanent_bps_per_adv : float
        Permanent price move, in bps, of trading one ADV.
    temporary_bps_per_adv_per_day : float
        Temporary concession, in bps, of trading at a rate of one ADV per day.
    lam : float, default=0.0
        Risk aversion (1/$).

    Notes
    -----
    ``sigma = price * sigma_daily``; ``epsilon = price * spread_bps/2 * 1e-4``;
    ``gamma = price * permanent_bps_per_adv * 1e-4 / adv``;
    ``eta = price * temporary_bps_per_adv_per_day * 1e-4 / adv``. The paper's example (one
    spread of 1/8 on $50 = 25 bps per 10 % of ADV permanent, per 1 % of ADV per day temporary)
    is ``permanent_bps_per_adv=250, temporary_bps_per_adv_per_day=2500``.
    """
    return AlmgrenChrissParams(
        X=qty, T=days, N=n_intervals, sigma=price * sigma_daily,
        epsilon=price * spread_bps / 2.0 * 1e-4,
        gamma=price * permanent_bps_per_adv * 1e-4 / adv,
        eta=price * temporary_bps_per_adv_per_day * 1e-4 / adv, lam=lam)


_ATHL = ATHLImpact()
"""ATHL at its published defaults (the source of ``params_from_athl``'s defaults)."""


def params_from_athl(*, qty: float, days: float, n_intervals: int, price: float, adv: float,
                     sigma_daily: float, shares_outstanding: float, spread_bps: float = 0.0,
                     lam: float = 0.0, gamma: float = _ATHL.gamma, eta: float = _ATHL.eta,
                     beta: float = _ATHL.beta, delta: float = _ATHL.delta) -> AlmgrenChrissParams:
    """Almgren–Chriss parameters from a calibrated ATHL (2005) impact model.

    Parameters
    ----------
    qty, days, n_intervals, price, adv, sigma_daily, spread_bps, lam
        As in :func:`params_from_linear_bps`.
    shares_outstanding : float
        Shares outstanding ``Theta`` (the permanent term's inverse-turnover factor).
    gamma, eta, beta, delta : float, default=0.314, 0.142, 0.6, 0.25
        ATHL coefficients (defaults: those of ``models.impact.ATHLImpact``; REFERENCES.md
        §3.1); the permanent exponent ``alpha`` is taken as 1 (linear), as Almgren–Chriss
        requires. The impacts are :func:`models.impact.athl_permanent` and
        :func:`models.impact.athl_temporary` with the coefficients in dollars (times ``price``).

    Notes
    -----
    ATHL, as fractions of price: permanent ``I = gamma sigma (X/V) (Theta/V)^delta``, temporary
    ``K = eta sigma (v/V)^beta`` at a trade rate of ``v`` shares/day. The mapping:

    * ``gamma_AC = price * gamma * sigma_daily * (Theta/V)^delta / V`` (exact: ATHL's permanent
      term is linear in shares);
    * ``eta_AC = price * eta * sigma_daily * (v0/V)^beta / v0`` with ``v0 = X/T``: the secant of
      the concave temporary law at the TWAP rate, so the TWAP schedule's temporary cost is ATHL's
      ``K`` exactly; faster schedules are charged linearly (more than ATHL's ``beta < 1``).

    With ``lam = 0`` and many intervals, ``E / (X price)`` tends to ATHL's ``J = I/2 + K``.
    """
    v0 = qty / days
    gamma_ac = athl_permanent(price * gamma, sigma_daily, 1.0, shares_outstanding / adv,
                              delta) / adv
    eta_ac = float(athl_temporary(price * eta, sigma_daily, v0 / adv, beta)) / v0
    return AlmgrenChrissParams(
        X=qty, T=days, N=n_intervals, sigma=price * sigma_daily,
        epsilon=price * spread_bps / 2.0 * 1e-4, gamma=gamma_ac, eta=eta_ac, lam=lam)
