"""Live risk controls of the paper-trading service: the order-level checks before a parent is
accepted, and the child-level limits the simulator enforces (:mod:`models.risk_controls`).

A parent order is checked when it arrives (:func:`check_order`), in this order; the first rule
that fires refuses it with its name and the numbers (an ExecutionReport with ExecType=Rejected):

===================== ===========================================================================
rule                  fires when
===================== ===========================================================================
``kill_switch``       the kill switch is on
``duplicate_clordid`` the client used this ClOrdID before (checked by the journal)
``max_order_qty``     ``qty > max_order_qty``
``max_order_notional`` ``qty * reference price > max_order_notional``
``fat_finger``        ``qty > fat_finger_pct_adv * ADV`` (a size the desk does not trade)
``price_collar``      a limit price more than ``price_collar_bps`` from the mid
``position_limit``    the symbol's net position, with every working order filled, beyond
                      ``max_position`` shares either way
``daily_loss_limit``  the day's loss so far (fills against their parents' arrival mids, fees
                      included) already at or beyond ``daily_loss_limit``
===================== ===========================================================================

Each child is then checked by the simulator's compiled :func:`models.risk_controls.check_child`
before it is sent (max child size, participation, price collar, order and daily loss, kill
switch): :meth:`LiveLimits.child_limits` gives those limits, the same objects a backtest uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from models.risk_controls import RiskLimits

__all__ = ["LiveLimits", "OrderCheck", "Refusal", "check_order"]


class LiveLimits(BaseModel):
    """The desk's limits; ``None`` switches a control off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_order_qty: float | None = Field(default=1_000_000.0, gt=0)
    max_order_notional: float | None = Field(default=50_000_000.0, gt=0)
    fat_finger_pct_adv: float | None = Field(default=0.25, gt=0)
    max_position: float | None = Field(default=None, gt=0)
    price_collar_bps: float | None = Field(default=500.0, gt=0)
    daily_loss_limit: float | None = Field(default=None, ge=0)
    order_loss_limit: float | None = Field(default=None, ge=0)
    max_child_qty: float | None = Field(default=None, gt=0)
    max_participation: float | None = Field(default=0.5, gt=0)
    max_msgs_per_s: float = Field(default=2000.0, gt=0)

    @classmethod
    def for_contracts(cls, *, inverse: bool) -> LiveLimits:
        """The desk's defaults for a venue: an inverse perpetual's quantities are USD contracts
        (ten million of them is USD 10 M), an equity's are shares."""
        return cls(max_order_qty=1e7) if inverse else cls()

    def child_limits(self, *, kill_switch: bool = False) -> RiskLimits:
        """The child-level limits the simulator's kernel checks (the backtest's object)."""
        return RiskLimits(max_child_qty=self.max_child_qty,
                          max_participation=self.max_participation,
                          price_collar_bps=self.price_collar_bps,
                          order_loss_limit=self.order_loss_limit,
                          daily_loss_limit=self.daily_loss_limit, kill_switch=kill_switch)


@dataclass(frozen=True)
class OrderCheck:
    """What :func:`check_order` needs to know about a new parent and the book."""

    qty: float
    side: int
    mid: float
    adv: float
    limit_price: float | None = None
    position: float = 0.0
    working_signed: float = 0.0
    day_loss: float = 0.0
    kill_switch: bool = False
    notional: float | None = None  # in the quote currency; qty x mid when not given


@dataclass(frozen=True)
class Refusal:
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


def check_order(o: OrderCheck, limits: LiveLimits) -> Refusal | None:
    """The first order-level rule ``o`` breaks, or None.

    Examples
    --------
    >>> check_order(OrderCheck(qty=2e6, side=1, mid=10.0, adv=1e7), LiveLimits())
    Refusal(rule='max_order_qty', detail='qty 2e+06 > max_order_qty 1e+06')
    >>> check_order(OrderCheck(qty=100, side=1, mid=10.0, adv=1e7), LiveLimits()) is None
    True
    """
    lim = limits
    if o.kill_switch:
        return Refusal("kill_switch", "the kill switch is on: no new orders")
    if lim.max_order_qty is not None and o.qty > lim.max_order_qty:
        return Refusal("max_order_qty", f"qty {o.qty:.6g} > max_order_qty {lim.max_order_qty:.6g}")
    notional = o.qty * o.mid if o.notional is None else o.notional
    if lim.max_order_notional is not None and notional > lim.max_order_notional:
        return Refusal("max_order_notional", f"notional {notional:.6g} > max_order_notional "
                                             f"{lim.max_order_notional:.6g}")
    if lim.fat_finger_pct_adv is not None and o.adv > 0 \
            and o.qty > lim.fat_finger_pct_adv * o.adv:
        return Refusal("fat_finger", f"qty {o.qty:.6g} is {o.qty / o.adv:.3g} of ADV "
                                     f"{o.adv:.6g} > {lim.fat_finger_pct_adv:.3g}")
    if o.limit_price is not None and lim.price_collar_bps is not None and o.mid > 0:
        dist = abs(o.limit_price / o.mid - 1.0) * 1e4
        if dist > lim.price_collar_bps:
            return Refusal("price_collar", f"limit {o.limit_price:.6g} is {dist:.4g} bps from "
                                           f"the mid {o.mid:.6g} > {lim.price_collar_bps:.4g}")
    if lim.max_position is not None:
        after = o.position + o.working_signed + o.side * o.qty
        if abs(after) > lim.max_position:
            return Refusal("position_limit", f"position with working orders would be "
                                             f"{after:.6g} > max_position {lim.max_position:.6g}")
    if lim.daily_loss_limit is not None and o.day_loss >= lim.daily_loss_limit:
        return Refusal("daily_loss_limit", f"day's loss {o.day_loss:.6g} >= daily_loss_limit "
                                           f"{lim.daily_loss_limit:.6g}")
    if not (math.isfinite(o.qty) and o.qty > 0):
        return Refusal("max_order_qty", f"qty {o.qty} must be a positive number")
    return None
