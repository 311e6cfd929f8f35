"""Pre-trade risk controls, enforced inside the simulator's compiled loop.

A :class:`RiskLimits` config is flattened to scalars (:meth:`RiskLimits.kernel_args`) and checked
for every child order by :func:`check_child`, an ``@njit`` function the simulator kernels call
before anything is sent. The first control that fires rejects the whole child: nothing of it is
sent, its quantity is **not** carried to later children and stays in the parent's unfilled
remainder. Every rejection is recorded (child, arrival time, reason code, the breaching value and
the limit) and becomes one row of :func:`rejections_frame`.

Controls, checked in this order (the reason strings are :data:`REASONS`):

==================== ==================================================================================
reason               fires when
==================== ==================================================================================
``kill_switch``      ``kill_switch`` is set: every child is rejected
``max_child_size``   the quantity sent (child + carried remainder, after the participation cap)
                     exceeds ``max_child_qty`` shares
``max_participation`` that quantity over the market volume of the child's slot exceeds
                     ``max_participation``
``price_collar``     the child's limit price (its expected fill price for a market order) is more
                     than ``price_collar_bps`` away from the reference mid (the mid the child sees
                     at arrival, our own footprint included)
``order_loss_limit`` the parent's loss so far plus the child's expected loss exceeds
                     ``order_loss_limit`` (currency)
``daily_loss_limit`` the loss of all parents so far this UTC day plus the child's expected loss
                     exceeds ``daily_loss_limit`` (currency)
==================== ==================================================================================

Loss is implementation shortfall in currency against the parent's arrival mid, fees included:
``side * (px - arrival_mid) * qty + fee`` summed over fills (a gain is a negative loss).

Examples
--------
>>> limits = RiskLimits(max_child_qty=500.0)
>>> limits.kernel_args()[:2]
(False, 500.0)
>>> int(check_child(*limits.kernel_args(), 600.0, 0.1, 3.0, 0.0, 0.0)[0]) == MAX_CHILD_SIZE
True
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import pandas as pd
from numba import njit
from pydantic import BaseModel, ConfigDict, Field

OK: Final = 0
KILL_SWITCH: Final = 1
MAX_CHILD_SIZE: Final = 2
MAX_PARTICIPATION: Final = 3
PRICE_COLLAR: Final = 4
ORDER_LOSS_LIMIT: Final = 5
DAILY_LOSS_LIMIT: Final = 6

REASONS: Final = ("ok", "kill_switch", "max_child_size", "max_participation", "price_collar",
                  "order_loss_limit", "daily_loss_limit")
"""Reason string of each code (index = code)."""

_DETAIL: Final = ("", "kill_switch=True", "qty={v:.6g} > max_child_qty={lim:.6g}",
                  "participation={v:.6g} > max_participation={lim:.6g}",
                  "limit distance={v:.6g} bps > price_collar_bps={lim:.6g}",
                  "order loss={v:.6g} > order_loss_limit={lim:.6g}",
                  "daily loss={v:.6g} > daily_loss_limit={lim:.6g}")

REJECTION_COLUMNS: Final = ("order_id", "child", "ts", "reason", "detail")


class RiskLimits(BaseModel):
    """Pre-trade limits; ``None`` switches a control off.

    Parameters
    ----------
    max_child_qty : float or None, default=None
        Largest child order, in shares.
    max_participation : float or None, default=None
        Largest child quantity as a fraction of the market volume of its slot.
    price_collar_bps : float or None, default=None
        Largest distance of a child's limit (or expected fill) price from the reference mid, bps.
    order_loss_limit : float or None, default=None
        Largest loss of one parent order, in currency.
    daily_loss_limit : float or None, default=None
        Largest loss of all parent orders in one UTC day, in currency.
    kill_switch : bool, default=False
        Reject every child.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_child_qty: float | None = Field(default=None, gt=0)
    max_participation: float | None = Field(default=None, gt=0)
    price_collar_bps: float | None = Field(default=None, gt=0)
    order_loss_limit: float | None = Field(default=None, ge=0)
    daily_loss_limit: float | None = Field(default=None, ge=0)
    kill_switch: bool = False

    def kernel_args(self) -> tuple[bool, float, float, float, float, float]:
        """The limits as scalars for :func:`check_child` (``inf`` where a control is off)."""

        def f(x: float | None) -> float:
            return math.inf if x is None else float(x)

        return (bool(self.kill_switch), f(self.max_child_qty), f(self.max_participation),
                f(self.price_collar_bps), f(self.order_loss_limit), f(self.daily_loss_limit))


@njit(cache=True)
def check_child(kill_switch, max_child_qty, max_participation, price_collar_bps,
                order_loss_limit, daily_loss_limit, qty, participation, limit_dist_bps,
                order_loss_after, daily_loss_after):
    """Check one child against the limits; return ``(code, value, limit)`` (code 0 = pass).

    ``order_loss_after`` / ``daily_loss_after`` are the parent's / the day's loss including the
    child's expected loss; ``limit_dist_bps`` is the distance of its limit price from the mid.
    """
    if kill_switch:
        return KILL_SWITCH, 1.0, 1.0
    if qty > max_child_qty:
        return MAX_CHILD_SIZE, qty, max_child_qty
    if participation > max_participation:
        return MAX_PARTICIPATION, participation, max_participation
    if abs(limit_dist_bps) > price_collar_bps:
        return PRICE_COLLAR, abs(limit_dist_bps), price_collar_bps
    if order_loss_after > order_loss_limit:
        return ORDER_LOSS_LIMIT, order_loss_after, order_loss_limit
    if daily_loss_after > daily_loss_limit:
        return DAILY_LOSS_LIMIT, daily_loss_after, daily_loss_limit
    return OK, 0.0, 0.0


def rejections_frame(order_ids: np.ndarray, child_parent: np.ndarray, arrival_ns: np.ndarray,
                     code: np.ndarray, value: np.ndarray, limit: np.ndarray) -> pd.DataFrame:
    """One row per rejected child: ``order_id, child, ts, reason, detail``.

    Parameters
    ----------
    order_ids : numpy.ndarray of str
        Parent order ids, indexed by parent.
    child_parent, arrival_ns, code, value, limit : numpy.ndarray
        Per child (all children): parent index, arrival time (ns since the epoch, UTC), reason
        code (0 = not rejected), breaching value and limit.

    Returns
    -------
    pandas.DataFrame
        ``child`` is the child's position in the simulator's input arrays.
    """
    idx = np.flatnonzero(code)
    codes = code[idx]
    detail = [_DETAIL[c].format(v=v, lim=lim) for c, v, lim in zip(codes, value[idx], limit[idx],
                                                                        strict=True)]
    return pd.DataFrame({
        "order_id": pd.array(np.asarray(order_ids)[child_parent[idx]], dtype="str"),
        "child": idx.astype(np.int64),
        "ts": pd.to_datetime(arrival_ns[idx], utc=True),
        "reason": pd.array(np.asarray(REASONS, dtype=object)[codes], dtype="str"),
        "detail": pd.array(detail, dtype="str"),
    })
