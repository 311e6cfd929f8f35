"""Market-impact models: expected cost in basis points of an order or a schedule (REFERENCES.md §3).

Every model satisfies one small interface, :class:`ImpactModel`::

    expected_cost_bps(*, qty, adv, sigma_daily, duration_days, shares_outstanding=None, pov=None)

vectorized over numpy arrays (arguments broadcast). Units, everywhere in this module:

* ``qty``, ``adv``, ``shares_outstanding``: shares (``qty`` is the unsigned order size, ``adv`` the
  average daily volume);
* ``sigma_daily``: daily volatility, decimal (0.02 is 2 %/day); I-Star converts it to annual with
  ``sigma_annual = sigma_daily * sqrt(trading_days_per_year)``;
* ``duration_days``: trading days (a 6.5-hour session is 1; ``MINUTES_PER_DAY`` minutes);
* ``pov``: participation rate, decimal, in (0, 1];
* output: basis points of the arrival price, **positive = cost** for either side.

Families: :class:`SquareRootImpact`, :class:`ATHLImpact` (Almgren, Thum, Hauptmann & Li 2005),
:class:`IStarImpact` (Kissell), :class:`PropagatorImpact` (transient impact with a decay kernel,
Bouchaud et al. 2004, with its kernels in ``models._impact_propagator``), and the deterministic
baseline :class:`ZeroImpact`. Configs are frozen
pydantic models; defaults are the published values and are written once, in the field.

The ATHL formula itself is written once, in :func:`athl_permanent`, :func:`athl_temporary` and
its inverse :func:`athl_temporary_rate`: plain arithmetic on floats or numpy arrays, so the
execution simulator's compiled kernels (``models._sim_kernels``) call the very same functions
(``numba.njit`` of them) as :class:`ATHLImpact`, the simulator's closed form and
``models.almgren_chriss.params_from_athl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike
from pydantic import Field

from models._impact_base import MINUTES_PER_DAY, Floats, Num, _arr, _Frozen
from models._impact_propagator import (
    ExponentialKernel,
    PowerLawKernel,
    PropagatorImpact,
    propagate,
)

if TYPE_CHECKING:
    from models._synth_config import ImpactConfig

__all__ = [
    "MINUTES_PER_DAY",
    "ATHLImpact",
    "ExponentialKernel",
    "IStarImpact",
    "ImpactModel",
    "PowerLawKernel",
    "PropagatorImpact",
    "SquareRootImpact",
    "ZeroImpact",
    "athl_permanent",
    "athl_temporary",
    "athl_temporary_rate",
    "propagate",
]

def athl_permanent(gamma: Num, sigma_daily: Num, size: Num, turnover: Num, delta: float) -> Num:
    """ATHL permanent impact ``gamma * sigma * size * turnover^delta`` (fraction of price).

    Parameters
    ----------
    gamma : float or numpy.ndarray
        Permanent coefficient (times the price for an impact in currency).
    sigma_daily : float or numpy.ndarray
        Daily volatility, decimal.
    size : float or numpy.ndarray
        ``(X/V)^alpha``: order size over ADV, raised to the permanent exponent (``X/V`` for the
        linear law; ``1.0`` gives the impact of one ADV, i.e. ``V`` times the impact per share).
    turnover : float or numpy.ndarray
        Inverse turnover ``Theta/V`` (shares outstanding over ADV).
    delta : float
        Inverse-turnover exponent.

    Returns
    -------
    float or numpy.ndarray
        ``gamma * sigma_daily * size * turnover ** delta``, evaluated left to right (arguments
        broadcast). Plain arithmetic, so ``numba.njit`` compiles it unchanged.

    Examples
    --------
    >>> round(athl_permanent(0.314, 0.02, 0.1, 200.0, 0.25) * 1e4, 1)
    23.6
    """
    return gamma * sigma_daily * size * turnover ** delta


def athl_temporary(eta: Num, sigma_daily: Num, rate: Num, beta: float) -> Num:
    """ATHL temporary impact ``eta * sigma * |rate|^beta`` (fraction of price).

    Parameters
    ----------
    eta : float or numpy.ndarray
        Temporary coefficient (times the price for an impact in currency).
    sigma_daily : float or numpy.ndarray
        Daily volatility, decimal.
    rate : float or numpy.ndarray
        Trade rate as a fraction of the market volume: ``X/(V T)`` for a constant-rate order, a
        child's share of its slot's volume in the simulator.
    beta : float
        Temporary exponent.

    Returns
    -------
    float or numpy.ndarray
        ``eta * sigma_daily * abs(rate) ** beta``, evaluated left to right (arguments broadcast);
        ``numba.njit`` compiles it unchanged.

    Examples
    --------
    >>> round(float(athl_temporary(0.142, 0.02, 0.1, 0.6)) * 1e4, 1)
    7.1
    """
    return eta * sigma_daily * np.abs(rate) ** beta


def athl_temporary_rate(eta: Num, sigma_daily: Num, impact: Num, beta: float) -> Num:
    """Inverse of :func:`athl_temporary`: the rate whose temporary impact is ``impact``.

    Parameters
    ----------
    eta, sigma_daily, beta
        As in :func:`athl_temporary` (``eta * sigma_daily > 0``).
    impact : float or numpy.ndarray
        Temporary impact, fraction of price, ``>= 0``.

    Returns
    -------
    float or numpy.ndarray
        ``(impact / (eta * sigma_daily)) ** (1 / beta)``, the ``|rate|`` with
        ``athl_temporary(eta, sigma_daily, rate, beta) == impact`` (up to rounding). The
        simulator uses it for the size a limit price lets a marketable child fill.

    Examples
    --------
    >>> r = athl_temporary_rate(0.142, 0.02, athl_temporary(0.142, 0.02, 0.1, 0.6), 0.6)
    >>> round(float(r), 12)
    0.1
    """
    return (impact / (eta * sigma_daily)) ** (1.0 / beta)


@runtime_checkable
class ImpactModel(Protocol):
    """Expected cost, in bps of the arrival price, of parent orders given the market state."""

    def expected_cost_bps(self, *, qty: ArrayLike, adv: ArrayLike, sigma_daily: ArrayLike,
                          duration_days: ArrayLike, shares_outstanding: ArrayLike | None = None,
                          pov: ArrayLike | None = None) -> Floats:
        """Expected cost (bps, positive = cost) of each order; arguments broadcast."""
        ...


class ZeroImpact(_Frozen):
    """Deterministic baseline: trading moves nothing (``expected_cost_bps`` is 0)."""

    kind: Literal["zero"] = "zero"

    def expected_cost_bps(self, *, qty: ArrayLike, adv: ArrayLike, sigma_daily: ArrayLike,
                          duration_days: ArrayLike, shares_outstanding: ArrayLike | None = None,
                          pov: ArrayLike | None = None) -> Floats:
        """Zeros, broadcast to the shape of the inputs."""
        shape = np.broadcast_shapes(*(np.shape(a) for a in (qty, adv, sigma_daily, duration_days)))
        return np.zeros(shape)


class SquareRootImpact(_Frozen):
    """Square-root law ``I = y * sigma_daily * (qty/adv)^exponent * 1e4`` bps (REFERENCES.md §3.2).

    Parameters
    ----------
    y : float, default=0.8
        Coefficient "of order unity" (published 0.5-1; the synthetic market's truth is 0.8).
    exponent : float, default=0.5
        Exponent of the size ``qty/adv``; 1/2 is the square-root law.

    Examples
    --------
    >>> float(SquareRootImpact(y=1.0).expected_cost_bps(qty=1e4, adv=1e6, sigma_daily=0.02,
    ...                                                 duration_days=1.0))
    20.0
    """

    kind: Literal["sqrt"] = "sqrt"
    y: float = Field(default=0.8, gt=0.0, le=10.0)
    exponent: float = Field(default=0.5, gt=0.0, le=1.5)

    @classmethod
    def from_truth(cls, impact: ImpactConfig) -> Self:
        """The synthetic market's true square-root law (``GroundTruth.impact``)."""
        return cls(y=impact.sqrt_law_y, exponent=impact.sqrt_law_exponent)

    def expected_cost_bps(self, *, qty: ArrayLike, adv: ArrayLike, sigma_daily: ArrayLike,
                          duration_days: ArrayLike, shares_outstanding: ArrayLike | None = None,
                          pov: ArrayLike | None = None) -> Floats:
        """``y * sigma_daily * (qty/adv)^exponent * 1e4``; duration and POV are ignored."""
        return self.y * _arr(sigma_daily) * (_arr(qty) / _arr(adv)) ** self.exponent * 1e4


class ATHLImpact(_Frozen):
    """Almgren, Thum, Hauptmann & Li (2005), "Direct Estimation of Equity Market Impact".

    Parameters
    ----------
    gamma : float, default=0.314
        Permanent coefficient.
    eta : float, default=0.142
        Temporary coefficient.
    beta : float, default=0.6
        Temporary exponent of the trade rate ``X/(V T)`` (the paper rejects 1/2 for 3/5).
    delta : float, default=0.25
        Inverse-turnover exponent of ``Theta/V``.
    alpha : float, default=1.0
        Permanent exponent of ``X/V`` (1 is the quasi-arbitrage-free choice).

    Notes
    -----
    With ``X`` = qty, ``V`` = adv, ``T`` = duration_days, ``Theta`` = shares_outstanding, all in bps:

    * permanent ``I = gamma * sigma * (X/V)^alpha * (Theta/V)^delta``
    * temporary ``K = eta * sigma * |X/(V T)|^beta``
    * realized (arrival to average fill, constant rate) ``J = I/2 + K``.

    Examples
    --------
    >>> m = ATHLImpact()
    >>> kw = dict(qty=1e5, adv=1e6, sigma_daily=0.02, duration_days=1.0, shares_outstanding=2e8)
    >>> [round(float(f(**kw)), 1) for f in (m.permanent_bps, m.temporary_bps, m.expected_cost_bps)]
    [23.6, 7.1, 18.9]
    """

    kind: Literal["athl"] = "athl"
    gamma: float = Field(default=0.314, ge=0.0, le=100.0)
    eta: float = Field(default=0.142, ge=0.0, le=100.0)
    beta: float = Field(default=0.6, gt=0.0, le=2.0)
    delta: float = Field(default=0.25, ge=0.0, le=2.0)
    alpha: float = Field(default=1.0, gt=0.0, le=2.0)

    @classmethod
    def from_truth(cls, impact: ImpactConfig) -> Self:
        """The synthetic market's true ATHL parameters (``GroundTruth.impact``)."""
        return cls(gamma=impact.athl_gamma, eta=impact.athl_eta, beta=impact.athl_beta,
                   delta=impact.athl_delta, alpha=impact.athl_alpha)

    def _turnover(self, adv: Floats, shares_outstanding: ArrayLike | None) -> Floats:
        if shares_outstanding is None:
            raise ValueError("ATHLImpact needs `shares_outstanding` (shares) for the permanent "
                             "term's inverse-turnover factor (Theta/V)^delta; pass it")
        return _arr(shares_outstanding) / adv

    def permanent_bps(self, *, qty: ArrayLike, adv: ArrayLike, sigma_daily: ArrayLike,
                      duration_days: ArrayLike | None = None,
                      shares_outstanding: ArrayLike | None = None) -> Floats:
        """Permanent impact ``I`` (bps) of the whole order; ``duration_days`` is ignored."""
        v = _arr(adv)
        return athl_permanent(self.gamma, _arr(sigma_daily), (_arr(qty) / v) ** self.alpha,
                              self._turnover(v, shares_outstanding), self.delta) * 1e4

    def permanent_per_share(self, *, adv: ArrayLike, sigma_daily: ArrayLike,
                            shares_outstanding: ArrayLike) -> Floats:
        """Permanent impact of one share traded, fraction of price (the linear law, ``alpha=1``).

        Parameters
        ----------
        adv, sigma_daily, shares_outstanding : array_like of float
            Market state (shares, decimal daily volatility, shares); arguments broadcast.

        Returns
        -------
        numpy.ndarray
            ``gamma sigma (Theta/V)^delta / V``: ``q`` shares move the price by ``q`` times this,
            whatever was traded before (the execution simulator's footprint per fill).

        Raises
        ------
        ValueError
            If ``alpha != 1`` (the impact of a share then depends on what was traded before).
        """
        if self.alpha != 1.0:
            raise ValueError(f"ATHLImpact.permanent_per_share needs the linear permanent law "
                             f"alpha=1, got alpha={self.alpha}")
        v = _arr(adv)
        return athl_permanent(self.gamma, _arr(sigma_daily), 1.0,
                              self._turnover(v, shares_outstanding), self.delta) / v

    def temporary_bps(self, *, qty: ArrayLike, adv: ArrayLike, sigma_daily: ArrayLike,
                      duration_days: ArrayLike, shares_outstanding: ArrayLike | None = None
                      ) -> Floats:
        """Temporary impact ``K`` (bps) of trading ``qty`` at a constant rate over ``duration_days``."""
        rate = _arr(qty) / (_arr(adv) * _arr(duration_days))
        return athl_temporary(self.eta, _arr(sigma_daily), rate, self.beta) * 1e4

    def expected_cost_bps(self, *, qty: ArrayLike, adv: ArrayLike, sigma_daily: ArrayLike,
                          duration_days: ArrayLike, shares_outstanding: ArrayLike | None = None,
                          pov: ArrayLike | None = None) -> Floats:
        """Realized cost ``J = I/2 + K`` (bps) at a constant rate; ``pov`` is ignored."""
        kw = {"qty": qty, "adv": adv, "sigma_daily": sigma_daily, "duration_days": duration_days,
              "shares_outstanding": shares_outstanding}
        return 0.5 * self.permanent_bps(**kw) + self.temporary_bps(**kw)

    def schedule_cost_bps(self, child_qty: ArrayLike, child_duration_days: ArrayLike, *,
                          adv: float, sigma_daily: float, shares_outstanding: float) -> float:
        """Expected cost (bps) of one parent order executed as consecutive slices.

        Parameters
        ----------
        child_qty : array_like of float
            Shares executed in each slice, in order (non-negative).
        child_duration_days : array_like of float
            Length of each slice, trading days (> 0); slice ``k`` trades at the constant rate
            ``child_qty[k] / child_duration_days[k]``.
        adv, sigma_daily, shares_outstanding : float
            Market state of the order (shares, decimal daily volatility, shares).

        Returns
        -------
        float
            ``sum_k q_k (P_k + K_k) / sum_k q_k``: slice ``k`` pays the permanent impact of what was
            traded before it plus half its own, ``P_k = gamma sigma ((X_{<k} + q_k/2)/V)^alpha
            (Theta/V)^delta``, and the temporary impact of its own rate. With equal slices and
            ``alpha=1`` this is exactly ``J = I/2 + K``.
        """
        q, tau = _arr(child_qty), _arr(child_duration_days)
        if q.shape != tau.shape or q.ndim != 1 or np.any(q < 0) or np.any(tau <= 0):
            raise ValueError("`child_qty` and `child_duration_days` must be 1-D of equal length "
                             "with qty >= 0 and durations > 0")
        before = np.cumsum(q) - q
        perm = athl_permanent(self.gamma, sigma_daily, ((before + q / 2) / adv) ** self.alpha,
                              shares_outstanding / adv, self.delta)
        temp = athl_temporary(self.eta, sigma_daily, q / (adv * tau), self.beta)
        return float(np.sum(q * (perm + temp)) / np.sum(q) * 1e4)


class IStarImpact(_Frozen):
    """Kissell I-Star (Kissell, Glantz & Malamut 2004; Kissell 2013), REFERENCES.md §3.3.

    Parameters
    ----------
    a1, a2, a3 : float, default=708, 0.55, 0.71
        ``I* = a1 * (qty/adv)^a2 * sigma_annual^a3`` bps ("all US universe").
    a4 : float, default=0.5
        Exponent of the participation rate in the temporary share.
    b1 : float, default=0.98
        Temporary share of the instantaneous impact (``1 - b1`` is permanent).
    trading_days_per_year : float, default=252
        ``sigma_annual = sigma_daily * sqrt(trading_days_per_year)``.

    Notes
    -----
    ``MI = b1 * I* * POV^a4 + (1 - b1) * I*``. When ``pov`` is not given it is the constant rate
    ``qty / (adv * duration_days)``, capped at 1.

    Examples
    --------
    >>> m, s = IStarImpact(), 0.25 / 252 ** 0.5
    >>> round(float(m.istar_bps(qty=1e5, adv=1e6, sigma_daily=s)), 1)
    74.6
    >>> round(float(m.expected_cost_bps(qty=1e5, adv=1e6, sigma_daily=s, duration_days=1, pov=0.1)), 1)
    24.6
    """

    kind: Literal["istar"] = "istar"
    a1: float = Field(default=708.0, gt=0.0, le=1e5)
    a2: float = Field(default=0.55, gt=0.0, le=1.5)
    a3: float = Field(default=0.71, gt=0.0, le=1.5)
    a4: float = Field(default=0.5, gt=0.0, le=1.5)
    b1: float = Field(default=0.98, ge=0.0, le=1.0)
    trading_days_per_year: float = Field(default=252.0, gt=0.0)

    @classmethod
    def from_truth(cls, impact: ImpactConfig) -> Self:
        """The synthetic market's true I-Star parameters (``GroundTruth.impact``)."""
        return cls(a1=impact.kissell_a1, a2=impact.kissell_a2, a3=impact.kissell_a3,
                   a4=impact.kissell_a4, b1=impact.kissell_b1)

    def sigma_annual(self, sigma_daily: ArrayLike) -> Floats:
        """``sigma_daily * sqrt(trading_days_per_year)``."""
        return _arr(sigma_daily) * np.sqrt(self.trading_days_per_year)

    @staticmethod
    def pov_of(qty: ArrayLike, adv: ArrayLike, duration_days: ArrayLike) -> Floats:
        """Constant-rate participation ``qty / (adv * duration_days)``, capped at 1."""
        return np.minimum(_arr(qty) / (_arr(adv) * _arr(duration_days)), 1.0)

    def istar_bps(self, *, qty: ArrayLike, adv: ArrayLike, sigma_daily: ArrayLike) -> Floats:
        """Instantaneous impact ``I* = a1 (qty/adv)^a2 sigma_annual^a3`` (bps)."""
        return (self.a1 * (_arr(qty) / _arr(adv)) ** self.a2
                * self.sigma_annual(sigma_daily) ** self.a3)

    def expected_cost_bps(self, *, qty: ArrayLike, adv: ArrayLike, sigma_daily: ArrayLike,
                          duration_days: ArrayLike, shares_outstanding: ArrayLike | None = None,
                          pov: ArrayLike | None = None) -> Floats:
        """Market impact ``MI = b1 I* POV^a4 + (1 - b1) I*`` (bps)."""
        p = self.pov_of(qty, adv, duration_days) if pov is None else _arr(pov)
        i_star = self.istar_bps(qty=qty, adv=adv, sigma_daily=sigma_daily)
        return self.b1 * i_star * p ** self.a4 + (1.0 - self.b1) * i_star

    def timing_risk_bps(self, *, qty: ArrayLike, adv: ArrayLike, sigma_daily: ArrayLike,
                        pov: ArrayLike) -> Floats:
        """Timing risk ``sigma_annual * sqrt(qty (1 - POV) / (3 T_m adv POV)) * 1e4`` (bps, 1 sd)."""
        p = _arr(pov)
        years = _arr(qty) * (1.0 - p) / (3.0 * self.trading_days_per_year * _arr(adv) * p)
        return self.sigma_annual(sigma_daily) * np.sqrt(years) * 1e4
