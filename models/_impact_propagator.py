"""Transient impact of :mod:`models.impact`: decay kernels, the propagator and :class:`PropagatorImpact`.

Bouchaud, Gefen, Potters & Wyart (2004): each child's impact decays with the lag through a
kernel (:class:`PowerLawKernel`, :class:`ExponentialKernel`); :func:`propagate` is the price path
of a flow on a regular grid. Lags are in minutes (``MINUTES_PER_DAY`` a day).
:mod:`models.impact` re-exports every public name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Self

import numpy as np
from numpy.typing import ArrayLike
from pydantic import Field

from models._impact_base import MINUTES_PER_DAY, Floats, _arr, _Frozen

if TYPE_CHECKING:
    from models._synth_config import ImpactConfig

__all__ = ["ExponentialKernel", "PowerLawKernel", "PropagatorImpact", "propagate"]


class PowerLawKernel(_Frozen):
    """Power-law decay ``G(l) = g0 (1 + l/l0_min)^-beta`` (``form="shifted"``), i.e. ``G0/(l0+l)^beta``.

    ``form="lorentzian"`` is ``g0 (1 + (l/l0_min)^2)^(-beta/2)``, i.e. BGPW's ``G0/(l0^2+l^2)^(beta/2)``.
    ``G(0) = g0``; lags are in minutes. Square-root impact with ``beta = 1/2`` is admissible
    (Gatheral 2010: exponent of f plus beta >= 1).
    """

    kind: Literal["power"] = "power"
    g0: float = Field(default=1.0, gt=0.0)
    l0_min: float = Field(default=1.0, gt=0.0)
    beta: float = Field(default=0.5, gt=0.0, le=2.0)
    form: Literal["shifted", "lorentzian"] = "shifted"

    def __call__(self, lag_min: ArrayLike) -> Floats:
        """Kernel at lags (minutes, >= 0)."""
        x = _arr(lag_min) / self.l0_min
        if self.form == "shifted":
            return self.g0 * (1.0 + x) ** -self.beta
        return self.g0 * (1.0 + x * x) ** (-self.beta / 2)


class ExponentialKernel(_Frozen):
    """Exponential decay ``G(l) = g0 exp(-l / tau_min)`` (consistent only with linear impact)."""

    kind: Literal["exp"] = "exp"
    g0: float = Field(default=1.0, gt=0.0)
    tau_min: float = Field(default=30.0, gt=0.0)

    def __call__(self, lag_min: ArrayLike) -> Floats:
        """Kernel at lags (minutes, >= 0)."""
        return self.g0 * np.exp(-_arr(lag_min) / self.tau_min)


def propagate(flow: ArrayLike, kernel: ArrayLike) -> Floats:
    """Price path of a flow on a regular grid: ``p_t = sum_{s<=t} kernel[t-s] * flow[s]``.

    Examples
    --------
    >>> propagate([1, 0, 0], [1, .5, 0]).tolist()
    [1.0, 0.5, 0.0]
    """
    f = _arr(flow)
    return np.convolve(f, _arr(kernel))[: f.size]


class PropagatorImpact(_Frozen):
    """Transient impact (Bouchaud, Gefen, Potters & Wyart 2004) with a concave instantaneous impact.

    Parameters
    ----------
    kernel : PowerLawKernel or ExponentialKernel, default=PowerLawKernel()
        Decay of each child's impact with the lag (minutes).
    y : float, default=0.8
        A child of ``q`` shares moves the mid by ``f(q) = y sigma_daily (q/adv)^exponent 1e4`` bps
        at lag 0 (times ``G(0)``).
    exponent : float, default=0.5
        Concavity of ``f`` (1/2: the "double square-root" picture, Maitrier et al. 2025).
    n_slices : int, default=20
        ``expected_cost_bps`` executes each order as ``n_slices`` equal children spread evenly
        over ``duration_days`` (``MINUTES_PER_DAY`` minutes a day).

    Notes
    -----
    Impact at time ``t`` (bps) ``p(t) = sum_{s: t_s <= t} G(t - t_s) f(q_s)``. A child pays the
    impact standing when it executes, its own included (lag 0), so the cost of a schedule is the
    quantity-weighted mean ``sum_s q_s p(t_s) / sum_s q_s``.
    """

    kind: Literal["propagator"] = "propagator"
    kernel: Annotated[PowerLawKernel | ExponentialKernel, Field(discriminator="kind")] = (
        PowerLawKernel())
    y: float = Field(default=0.8, gt=0.0, le=10.0)
    exponent: float = Field(default=0.5, gt=0.0, le=1.5)
    n_slices: int = Field(default=20, ge=1, le=10_000)

    @classmethod
    def from_truth(cls, impact: ImpactConfig) -> Self:
        """The synthetic market's truth: sqrt-law ``y``, power-law decay ``t^-decay_exponent``."""
        return cls(y=impact.sqrt_law_y, exponent=impact.sqrt_law_exponent,
                   kernel=PowerLawKernel(beta=impact.propagator_decay_exponent))

    def _f(self, q: Floats, adv: float, sigma_daily: float) -> Floats:
        return self.y * sigma_daily * (np.abs(q) / adv) ** self.exponent * 1e4

    def price_path_bps(self, child_qty: ArrayLike, child_time_min: ArrayLike, *, adv: float,
                       sigma_daily: float, at_time_min: ArrayLike | None = None) -> Floats:
        """Impact of a schedule on the mid (bps of arrival, signed like ``child_qty``).

        Parameters
        ----------
        child_qty : array_like of float
            Signed child sizes, shares (buys positive).
        child_time_min : array_like of float
            Execution time of each child, minutes from the decision.
        adv, sigma_daily : float
            Shares per day and decimal daily volatility.
        at_time_min : array_like of float, optional
            Where to evaluate the path (minutes); default the child times.

        Returns
        -------
        numpy.ndarray
            ``p(t) = sum_{s: t_s <= t} G(t - t_s) sign(q_s) f(|q_s|)`` at each time.
        """
        q, ts = _arr(child_qty), _arr(child_time_min)
        if q.shape != ts.shape or q.ndim != 1:
            raise ValueError("`child_qty` and `child_time_min` must be 1-D arrays of equal length")
        at = ts if at_time_min is None else _arr(at_time_min)
        lag = at[:, None] - ts[None, :]
        g = np.where(lag >= 0, self.kernel(np.maximum(lag, 0.0)), 0.0)
        return g @ (np.sign(q) * self._f(q, adv, sigma_daily))

    def schedule_cost_bps(self, child_qty: ArrayLike, child_time_min: ArrayLike, *, adv: float,
                          sigma_daily: float) -> float:
        """Expected cost (bps, positive = cost) of a one-sided schedule of non-negative child sizes.

        Examples
        --------
        >>> m = PropagatorImpact(kernel=PowerLawKernel(beta=0.5), y=1.0)
        >>> round(m.schedule_cost_bps([1e4], [0.0], adv=1e6, sigma_daily=0.02), 6)
        20.0
        """
        q = _arr(child_qty)
        if np.any(q < 0) or q.sum() <= 0:
            raise ValueError("`child_qty` must be non-negative with a positive total (one side)")
        path = self.price_path_bps(q, child_time_min, adv=adv, sigma_daily=sigma_daily)
        return float(np.sum(q * path) / q.sum())

    def expected_cost_bps(self, *, qty: ArrayLike, adv: ArrayLike, sigma_daily: ArrayLike,
                          duration_days: ArrayLike, shares_outstanding: ArrayLike | None = None,
                          pov: ArrayLike | None = None) -> Floats:
        """Cost of ``n_slices`` equal children, ``duration_days/n_slices`` apart, starting at 0.

        Uses ``sum_k sum_{j<=k} G((k-j) dt) = sum_m (n - m) G(m dt)``, so it is
        O(orders x n_slices).
        """
        qty_, adv_, sig, dur = np.broadcast_arrays(_arr(qty), _arr(adv), _arr(sigma_daily),
                                                   _arr(duration_days))
        n = self.n_slices
        m = np.arange(n, dtype=np.float64)
        dt_min = dur[..., None] * MINUTES_PER_DAY / n
        kernel_sum = (self.kernel(m * dt_min) * (n - m)).sum(axis=-1) / n
        return self.y * sig * (qty_ / (n * adv_)) ** self.exponent * 1e4 * kernel_sum
