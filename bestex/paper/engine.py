"""The paper-trading engine: parent orders in, the policy's child plans, fills on the replayed book.

The engine is driven by three kinds of calls, all from one thread (the service's event loop):

* **a parent order** (:meth:`PaperEngine.new_order`, ``cancel``, ``replace``): checked against
  the live limits (:func:`models.live_risk.check_order`) and acknowledged at once (ExecType=New,
  or Rejected with the rule); its plan is decided later, in a batch;
* **planning** (:meth:`PaperEngine.plan_pending`): the point-in-time market state of every order
  waiting for a plan, as of its decision time, in one :func:`models.features.build_features`
  call on the **published** part of the feed, then each order's plan chosen by the champion's
  policy (:class:`models._policy_fast.FastPlanner`: 14 candidates priced, the explanation
  journaled) and its children laid out (:func:`models.policy.candidate_children`);
* **a market event** (:meth:`PaperEngine.on_event`, one per distinct knowledge time of the
  feed): children that are due are sent (arrival = the event's time + the simulator's latency),
  resolved children are filled with the simulator's replay fill model on the known book
  (:meth:`bestex.paper.market.Feed.fill`) and reported (ExecType=Trade), a parent whose horizon
  has passed is closed (Filled, or Expired with its unfilled remainder).

Every change is journaled in one transaction before its ExecutionReport leaves
(:mod:`bestex.paper.journal`); :meth:`PaperEngine.recover` rebuilds the engine from the journal
after a crash. Because children are sent and filled at event times (not wall-clock times), a
replay of the same feed with the same orders gives the same fills, interrupted or not.
"""

from __future__ import annotations

import gc
import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from bestex.paper.journal import Journal
from bestex.paper.market import Feed
from models.live_risk import LiveLimits, OrderCheck, check_order
from models.risk_controls import REASONS, RiskLimits

__all__ = ["PaperEngine", "ParentOrder", "Report"]

_NS_MIN = 60_000_000_000


@dataclass
class ParentOrder:
    """One parent order's state (what the journal keeps, as JSON)."""

    order_id: str
    cl_ord_id: str
    client: str
    symbol: str
    side: int
    qty: float
    ord_type: str
    price: float | None
    decision_ns: int
    end_ns: int
    status: str = "pending"  # pending -> working -> filled | expired | canceled; rejected
    arrival_mid: float = math.nan
    adv: float = math.nan
    sigma_daily: float = math.nan
    shares_outstanding: float = math.nan
    plan: dict[str, Any] = field(default_factory=dict)
    child_ns: list[int] = field(default_factory=list)  # planned child times
    child_qty: list[float] = field(default_factory=list)
    child_kind: list[int] = field(default_factory=list)
    sent_ns: list[int] = field(default_factory=list)  # arrival time of each child sent
    resolved: int = 0  # children whose fill (or none) is final and journaled
    cum_qty: float = 0.0
    notional: float = 0.0
    fees: float = 0.0
    orig_cl_ord_ids: list[str] = field(default_factory=list)
    model_version: str = ""

    @property
    def leaves(self) -> float:
        return 0.0 if self.status in ("filled", "expired", "canceled", "rejected") \
            else max(self.qty - self.cum_qty, 0.0)

    @property
    def avg_px(self) -> float:
        return self.notional / self.cum_qty if self.cum_qty > 0 else 0.0

    @property
    def working(self) -> bool:
        return self.status in ("pending", "working")

    def state(self) -> dict[str, Any]:
        """The fields as a dict (lists and the plan shared, not copied: it is serialized at
        once)."""
        return {f: getattr(self, f) for f in _FIELDS}


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ParentOrder))


@dataclass(frozen=True)
class Report:
    """An ExecutionReport (or OrderCancelReject) for the gateway to send to ``client``."""

    client: str
    kind: str  # "execution" or "cancel_reject"
    fields: dict[str, Any]


class PaperEngine:
    """Parent orders worked by the policy on a replayed feed, journaled.

    Parameters
    ----------
    feed : bestex.paper.market.Feed
    journal : bestex.paper.journal.Journal
    model : object
        ``bundle`` (a :class:`~models.cost_bundle.CostModelBundle`), ``version`` (str) and
        ``planner`` (a :class:`~models._policy_fast.FastPlanner` on it): see
        :class:`bestex.paper.service.ModelSource`.
    limits : models.live_risk.LiveLimits, optional
    emit : callable, optional
        Receives each :class:`Report` after its transaction commits (the gateway sends it).
    default_duration_min : float, optional
        The horizon of an order that names none (the feed's longest order, at most 60 minutes).
    """

    def __init__(self, feed: Feed, journal: Journal, model: Any, *,
                 limits: LiveLimits | None = None,
                 emit: Callable[[Report], None] | None = None,
                 default_duration_min: float | None = None) -> None:
        self.feed, self.journal, self.model = feed, journal, model
        self.limits = limits or LiveLimits()
        self._child_lim: dict[bool, RiskLimits] = {}
        self.emit = emit or (lambda _r: None)
        self.duration_ns = int((default_duration_min or min(feed.max_duration_min, 60.0))
                               * _NS_MIN)
        self.orders: dict[str, ParentOrder] = {}
        self.pending: list[str] = []
        self._due: list[tuple[int, str]] = []  # (next action time, order_id)
        self.killed = False
        self.kill_reason = ""
        self._seq = 0
        self._pos: dict[str, float] = {}  # net filled, per symbol
        self._working: dict[str, float] = {}  # signed leaves of working orders, per symbol
        self._loss = 0.0
        self.more_due = False  # on_event stopped at its limit: call it again at this time
        self.latency_ns: list[int] = []  # event in -> children decided and filled (wall ns)
        self.order_ns: list[int] = []  # the same for one order: its due children and fills

    # ================================================================ parent orders
    def _child_limits(self) -> RiskLimits:
        """The child-level limits (frozen: built once per kill-switch state)."""
        got = self._child_lim.get(self.killed)
        if got is None:
            got = self._child_lim[self.killed] = self.limits.child_limits(kill_switch=self.killed)
        return got

    def _next_id(self) -> str:
        self._seq += 1
        return f"P{self._seq:07d}"

    def _report(self, o: ParentOrder, exec_type: str, ord_status: str, **extra: Any) -> Report:
        f = {"order_id": o.order_id, "cl_ord_id": o.cl_ord_id, "symbol": o.symbol,
             "side": o.side, "order_qty": o.qty, "cum_qty": o.cum_qty, "leaves_qty": o.leaves,
             "avg_px": o.avg_px, "exec_type": exec_type, "ord_status": ord_status,
             "model_version": o.model_version or self.model.version,
             "transact_time_ns": self.feed.now_ns, "price": o.price}
        f.update(extra)
        return Report(o.client, "execution", f)

    def _commit(self, reports: list[Report]) -> None:
        for r in reports:
            self.emit(r)

    def position(self, symbol: str) -> float:
        """Net filled quantity of ``symbol`` (kept as fills arrive: O(1) per order)."""
        return self._pos.get(symbol, 0.0)

    def day_loss(self) -> float:
        """Loss of the day's fills against their parents' arrival mids, fees included."""
        return self._loss

    def _rebuild_totals(self) -> None:
        """Position, working quantity and day loss from the orders (after a restart)."""
        self._pos, self._working, self._loss = {}, {}, 0.0
        for o in self.orders.values():
            self._pos[o.symbol] = self._pos.get(o.symbol, 0.0) + o.side * o.cum_qty
            if o.working:
                self._working[o.symbol] = self._working.get(o.symbol, 0.0) + o.side * o.leaves
            if o.cum_qty > 0 and math.isfinite(o.arrival_mid):
                self._loss += o.side * (o.notional - o.arrival_mid * o.cum_qty) + o.fees

    def new_order(self, client: str, cl_ord_id: str, symbol: str, side: int, qty: float, *,
                  ord_type: str = "1", price: float | None = None,
                  duration_min: float | None = None) -> Report:
        """Accept (ExecType=New) or refuse (ExecType=Rejected, the rule in the text) a parent;
        the report is also emitted."""
        now = self.feed.now_ns
        oid = self._next_id()
        dur = int((duration_min * _NS_MIN) if duration_min else self.duration_ns)
        o = ParentOrder(oid, cl_ord_id, client, symbol, int(side), float(qty), ord_type, price,
                        now, min(now + dur, max(self.feed.end_ns, now)),
                        model_version=self.model.version)
        touch = self.feed.touch(symbol)
        mid = 0.5 * (touch[0] + touch[1]) if touch else math.nan
        est = self.feed.estimates.get(symbol, {})
        refusal = None
        with self.journal.transaction():
            if not self.journal.claim_cl_ord_id(client, cl_ord_id, oid):
                refusal = ("duplicate_clordid", f"ClOrdID {cl_ord_id!r} was used before")
            elif touch is None:
                refusal = ("no_market", f"no quote of {symbol} published yet")
            else:
                working = self._working.get(symbol, 0.0)
                r = check_order(OrderCheck(
                    qty=o.qty, side=o.side, mid=mid, adv=float(est.get("adv", math.nan)),
                    notional=self.feed.notional(o.qty, mid),
                    limit_price=price if ord_type == "2" else None,
                    position=self.position(symbol), working_signed=working,
                    day_loss=self.day_loss(), kill_switch=self.killed), self.limits)
                refusal = None if r is None else (r.rule, r.detail)
            if refusal is not None:
                o.status = "rejected"
                self.journal.event("refused", {"rule": refusal[0], "detail": refusal[1],
                                               "cl_ord_id": cl_ord_id, "symbol": symbol},
                                   order_id=oid, feed_ns=now)
                rep = self._report(o, "8", "8", text=f"{refusal[0]}: {refusal[1]}",
                                   ord_rej_reason=99)
            else:
                o.arrival_mid = mid
                self.pending.append(oid)
                self._working[symbol] = self._working.get(symbol, 0.0) + o.side * o.qty
                self.journal.event("accepted", {"cl_ord_id": cl_ord_id, "symbol": symbol,
                                                "side": side, "qty": qty, "mid": mid},
                                   order_id=oid, feed_ns=now)
                rep = self._report(o, "0", "0")
            self.orders[oid] = o
            self.journal.save_order(o.state())
            self.journal.set_meta("order_seq", self._seq)
            self.journal.set_meta("cursor", self.feed.cursor)
        self._commit([rep])
        return rep

    def _find(self, client: str, cl_ord_id: str) -> ParentOrder | None:
        for o in self.orders.values():
            if o.client == client and (o.cl_ord_id == cl_ord_id
                                       or cl_ord_id in o.orig_cl_ord_ids):
                return o
        return None

    def _cancel_reject(self, client: str, cl_ord_id: str, orig: str, o: ParentOrder | None,
                       response_to: str, text: str) -> Report:
        rep = Report(client, "cancel_reject", {
            "order_id": o.order_id if o else "NONE", "cl_ord_id": cl_ord_id,
            "orig_cl_ord_id": orig, "ord_status": _status_code(o) if o else "8",
            "response_to": response_to, "reason": 1 if o is None else 0, "text": text})
        with self.journal.transaction():
            self.journal.event("cancel_reject", {**rep.fields},
                               order_id=o.order_id if o else None, feed_ns=self.feed.now_ns)
        self._commit([rep])
        return rep

    def cancel(self, client: str, cl_ord_id: str, orig_cl_ord_id: str) -> Report:
        """Cancel a working parent: what is not filled is dropped (ExecType=Canceled)."""
        o = self._find(client, orig_cl_ord_id)
        if o is None or not o.working:
            why = "unknown order" if o is None else f"order is {o.status}"
            return self._cancel_reject(client, cl_ord_id, orig_cl_ord_id, o, "1",
                                       f"too late to cancel: {why}")
        rep = self._close(o, "canceled", new_cl_ord_id=cl_ord_id, text="canceled by client")
        self._commit([rep])
        return rep

    def replace(self, client: str, cl_ord_id: str, orig_cl_ord_id: str, qty: float, *,
                ord_type: str = "1", price: float | None = None) -> Report:
        """Change a working parent's quantity (and limit): the children not yet sent are
        rescaled to the new remainder (ExecType=Replaced)."""
        o = self._find(client, orig_cl_ord_id)
        if o is None or not o.working:
            why = "unknown order" if o is None else f"order is {o.status}"
            return self._cancel_reject(client, cl_ord_id, orig_cl_ord_id, o, "2",
                                       f"too late to replace: {why}")
        sent_qty = sum(o.child_qty[:len(o.sent_ns)])
        unsent = o.child_qty[len(o.sent_ns):]
        rest = qty - sent_qty
        if qty <= o.cum_qty or (o.status == "working" and (rest <= 0 or not unsent)):
            return self._cancel_reject(client, cl_ord_id, orig_cl_ord_id, o, "2",
                                       f"cannot replace to qty {qty:g}: {sent_qty:g} already "
                                       f"sent, {o.cum_qty:g} filled")
        if unsent:
            scale = rest / sum(unsent)
            o.child_qty[len(o.sent_ns):] = [q * scale for q in unsent]
        o.orig_cl_ord_ids.append(o.cl_ord_id)
        orig = o.cl_ord_id
        self._working[o.symbol] = self._working.get(o.symbol, 0.0) + o.side * (qty - o.qty)
        o.cl_ord_id, o.qty, o.ord_type, o.price = cl_ord_id, float(qty), ord_type, price
        with self.journal.transaction():
            self.journal.claim_cl_ord_id(client, cl_ord_id, o.order_id)
            self.journal.event("replaced", {"qty": qty, "price": price, "orig": orig},
                               order_id=o.order_id, feed_ns=self.feed.now_ns)
            self.journal.save_order(o.state())
            rep = self._report(o, "5", _status_code(o), orig_cl_ord_id=orig)
        self._commit([rep])
        return rep

    def _close(self, o: ParentOrder, status: str, *, new_cl_ord_id: str | None = None,
               text: str = "") -> Report:
        orig = None
        if new_cl_ord_id is not None:
            o.orig_cl_ord_ids.append(o.cl_ord_id)
            orig, o.cl_ord_id = o.cl_ord_id, new_cl_ord_id
        if o.working:
            self._working[o.symbol] = self._working.get(o.symbol, 0.0) - o.side * o.leaves
        o.status = status
        if o.order_id in self.pending:
            self.pending.remove(o.order_id)
        code = {"canceled": "4", "expired": "C", "filled": "2"}[status]
        with self.journal.transaction():
            if new_cl_ord_id is not None:
                self.journal.claim_cl_ord_id(o.client, new_cl_ord_id, o.order_id)
            self.journal.event(status, {"text": text, "cum_qty": o.cum_qty},
                               order_id=o.order_id, feed_ns=self.feed.now_ns)
            self.journal.save_order(o.state())
            self.journal.set_meta("cursor", self.feed.cursor)
            return self._report(o, code if status != "filled" else "F", code, text=text,
                                orig_cl_ord_id=orig)

    # ================================================================ kill switch
    def kill(self, reason: str, who: str = "cli") -> list[Report]:
        """Cancel every working order and refuse new ones until :meth:`reset`."""
        self.killed, self.kill_reason = True, reason
        with self.journal.transaction():
            self.journal.event("kill", {"reason": reason, "who": who}, feed_ns=self.feed.now_ns)
            self.journal.set_meta("kill", {"on": True, "reason": reason, "who": who})
            reps = [self._close(o, "canceled", text=f"kill switch: {reason}")
                    for o in list(self.orders.values()) if o.working]
        self._commit(reps)
        return reps

    def reset(self, reason: str, who: str = "cli") -> None:
        self.killed, self.kill_reason = False, ""
        with self.journal.transaction():
            self.journal.event("reset", {"reason": reason, "who": who}, feed_ns=self.feed.now_ns)
            self.journal.set_meta("kill", {"on": False, "reason": reason, "who": who})

    # ================================================================ planning
    def plan_pending(self) -> int:
        """Decide the plan of every order waiting for one, here and now; return how many."""
        ids = self.take_pending()
        if ids:
            self.apply_plans(ids, plan_orders(self.feed, self.model,
                                              [self.orders[i] for i in ids]))
        return len(ids)

    def take_pending(self) -> list[str]:
        """The orders waiting for a plan (handed to a planner, e.g. in a worker thread: their
        inputs do not change; the plans come back through :meth:`apply_plans`)."""
        ids = [i for i in self.pending if self.orders[i].status == "pending"]
        self.pending = []
        return ids

    def apply_plans(self, ids: list[str], plans: list[dict[str, Any]]) -> None:
        """Make the decided plans working (orders canceled meanwhile are left alone), in one
        transaction. A plan that arrives after its decision time (the planner was busy) keeps
        its shape: its children are moved later by the delay, and what would fall after the
        horizon joins the last child before it; the delay is journaled with the decision."""
        now = self.feed.now_ns
        with self.journal.transaction():
            for oid, plan in zip(ids, plans, strict=True):
                o = self.orders[oid]
                if o.status != "pending":  # canceled or killed while it waited
                    continue
                DECISION_NS.append(int(plan.get("decide_ns", 0)))
                o.plan = plan["plan"]
                ns, qty = list(plan["ns"]), list(plan["qty"])
                kind = list(plan["kind"])
                total = float(sum(qty))
                if qty and total > 0 and abs(total - o.qty) > 1e-9:  # replaced while planned
                    qty = [q * o.qty / total for q in qty]
                delay = max(now - o.decision_ns, 0)
                if delay and ns and ns[0] < now:
                    ns, qty, kind = _shift(ns, qty, kind, delay, o.end_ns, now)
                    o.plan = {**o.plan, "plan_delay_ms": delay / 1e6}
                o.child_ns, o.child_qty, o.child_kind = ns, qty, kind
                o.adv, o.sigma_daily = plan["adv"], plan["sigma_daily"]
                o.shares_outstanding = plan["shares_outstanding"]
                if math.isfinite(plan["arrival_mid"]):
                    o.arrival_mid = plan["arrival_mid"]
                o.status = "working"
                self.journal.event("decision", {**plan["explain"], "plan_delay_ms": delay / 1e6},
                                   order_id=oid, feed_ns=o.decision_ns)
                self.journal.save_order(o.state())
                heapq.heappush(self._due, (o.child_ns[0] if o.child_ns else o.end_ns, oid))

    # ================================================================ market events
    def on_event(self, limit: int | None = None, budget_ns: int | None = None) -> list[Report]:
        """Act on the feed's latest published event: send due children, fill resolved ones,
        close orders past their horizon. With ``limit`` (orders) or ``budget_ns`` (wall time),
        the call stops early and :attr:`more_due` says whether to call again at the same feed
        time (the caller lets the gateway run in between; the outcome is that of one call)."""
        t0 = time.perf_counter_ns()
        now = self.feed.now_ns
        reports: list[Report] = []
        n = 0
        while self._due and self._due[0][0] <= now and (limit is None or n < limit):
            if budget_ns is not None and n and time.perf_counter_ns() - t0 > budget_ns:
                break
            n += 1
            _, oid = heapq.heappop(self._due)
            o = self.orders[oid]
            if o.status != "working":
                continue
            t1 = time.perf_counter_ns()
            reports += self._work(o, now)
            self.order_ns.append(time.perf_counter_ns() - t1)
            if o.status == "working":
                heapq.heappush(self._due, (self._next_action(o), oid))
        self.more_due = bool(self._due and self._due[0][0] <= now)
        if reports:
            self._commit([r for r in reports if r is not None])
            self.latency_ns.append(time.perf_counter_ns() - t0)
        return reports

    def _next_action(self, o: ParentOrder) -> int:
        return max(self._next_action_at(o), self.feed.now_ns + 1)

    def _resolvable_at(self, o: ParentOrder, i: int) -> int | None:
        """When child ``i`` (sent) has a final fill: a marketable child at its arrival; a
        passive one when its slot ends, at the next child's arrival (None while that child is
        not sent: its arrival is not known yet) or, for the last child, the horizon."""
        if o.child_kind[i] == 0:
            return o.sent_ns[i]
        if i + 1 < len(o.sent_ns):
            return o.sent_ns[i + 1]
        return o.end_ns if i + 1 >= len(o.child_ns) else None

    def _next_action_at(self, o: ParentOrder) -> int:
        """When the order next needs the engine: its next child, the moment a sent child's
        fill becomes final, its horizon."""
        k = len(o.sent_ns)
        nxt = o.child_ns[k] if k < len(o.child_ns) else o.end_ns
        if o.resolved < k:
            at = self._resolvable_at(o, o.resolved)
            if at is not None:
                nxt = min(nxt, at)
        return nxt

    def _work(self, o: ParentOrder, now: int) -> list[Report]:
        lat = self.feed.sim.latency_ns
        while len(o.sent_ns) < len(o.child_ns) and o.child_ns[len(o.sent_ns)] <= now:
            o.sent_ns.append(now + lat)
        k = len(o.sent_ns)
        ready = o.resolved
        while ready < k:
            at = self._resolvable_at(o, ready)
            if at is None or at > now:
                break
            ready += 1
        reports: list[Report] = []
        if ready > o.resolved:
            # the last child passed has its slot to the next child's arrival (or, not sent
            # yet, its schedule; the horizon after the last child): what the simulator uses for
            # a child's market volume and a passive child's trade-through window
            slot_end = (o.sent_ns[ready] if ready < k else
                        o.child_ns[ready] if ready < len(o.child_ns) else o.end_ns)
            res = self.feed.fill(o.symbol, side=o.side, qty=o.qty, start_ns=o.decision_ns,
                                 end_ns=slot_end, arrival_mid=o.arrival_mid,
                                 child_ns=o.sent_ns[:ready], child_qty=o.child_qty[:ready],
                                 child_kind=o.child_kind[:ready], adv=o.adv,
                                 sigma_daily=o.sigma_daily,
                                 shares_outstanding=o.shares_outstanding,
                                 limits=self._child_limits(),
                                 order_id=o.order_id)
            with self.journal.transaction():
                for i in range(o.resolved, ready):
                    q, px = float(res.fill_qty[i]), float(res.fill_px[i])
                    code = int(res.reject_code[i])
                    if code:
                        self.journal.event("child_refused", {
                            "child": i, "rule": REASONS[code],
                            "value": float(res.reject_value[i]),
                            "limit": float(res.reject_limit[i])},
                            order_id=o.order_id, feed_ns=now)
                    if q <= 0:
                        continue
                    eid = f"{o.order_id}-C{i:03d}"
                    if not self.journal.add_fill({
                            "exec_id": eid, "order_id": o.order_id, "child": i,
                            "symbol": o.symbol, "side": o.side, "qty": q, "px": px,
                            "fee": float(res.fee[i]), "maker": int(res.maker[i]),
                            "feed_ns": int(res.fill_ts[i])}):
                        continue  # filled before a restart: never twice
                    o.cum_qty += q
                    self._pos[o.symbol] = self._pos.get(o.symbol, 0.0) + o.side * q
                    self._working[o.symbol] = self._working.get(o.symbol, 0.0) - o.side * q
                    if math.isfinite(o.arrival_mid):
                        self._loss += o.side * (px - o.arrival_mid) * q + float(res.fee[i])
                    o.notional += q * px
                    o.fees += float(res.fee[i])
                    done = o.cum_qty >= o.qty - 1e-9
                    reports.append(self._report(o, "F", "2" if done else "1", exec_id=eid,
                                                last_px=px, last_qty=q))
                o.resolved = ready
                if o.cum_qty >= o.qty - 1e-9:
                    reports.append(self._close(o, "filled"))
                    reports.pop()  # the last Trade report already says Filled
                elif now >= o.end_ns and o.resolved == len(o.child_ns):
                    reports.append(self._close(o, "expired", text=f"horizon reached: "
                                               f"{o.qty - o.cum_qty:g} unfilled"))
                else:
                    self.journal.save_order(o.state())
                    self.journal.set_meta("cursor", self.feed.cursor)
        elif now >= o.end_ns and o.resolved == len(o.child_ns):
            reports.append(self._close(o, "expired", text=f"horizon reached: "
                                       f"{o.qty - o.cum_qty:g} unfilled"))
        return reports

    # ================================================================ recovery
    def recover(self) -> int:
        """Rebuild the orders, the kill switch and the id counter from the journal; return the
        number of working orders (their due children are rescheduled)."""
        self._seq = int(self.journal.meta("order_seq", 0))
        kill = self.journal.meta("kill") or {}
        self.killed, self.kill_reason = bool(kill.get("on")), str(kill.get("reason", ""))
        for st in self.journal.orders():
            o = ParentOrder(**st)
            self.orders[o.order_id] = o
            if o.status == "pending":
                self.pending.append(o.order_id)
            elif o.status == "working":
                heapq.heappush(self._due, (self._next_action_at(o), o.order_id))
        self._rebuild_totals()
        return sum(o.working for o in self.orders.values())


def _shift(ns: list[int], qty: list[float], kind: list[int], delay: int, end: int, now: int
           ) -> tuple[list[int], list[float], list[int]]:
    """A late plan's children moved ``delay`` later; those at or after ``end`` merge into the
    last one before it (one child at ``now`` when none is left)."""
    moved = [t + delay for t in ns]
    keep = [i for i, t in enumerate(moved) if t < end]
    if not keep:
        return [now], [float(sum(qty))], [0]
    last = keep[-1]
    out_q = [qty[i] for i in keep]
    out_q[-1] += float(sum(qty[last + 1:]))
    return [moved[i] for i in keep], out_q, [kind[i] for i in keep]


def _status_code(o: ParentOrder) -> str:
    if o.status in ("pending", "working"):
        return "1" if o.cum_qty > 0 else "0"
    return {"filled": "2", "canceled": "4", "expired": "C", "rejected": "8"}[o.status]


# =========================================================================== planning
DECISION_NS: list[int] = []
"""Wall time of each policy decision (``FastPlanner.decide_one``, ns, measured where it ran:
the planner process or this one), for the benchmark."""


def order_state(feed: Feed, model: Any, orders: list[ParentOrder], *,
                symbols: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(orders frame, point-in-time state)`` of ``orders`` on the published feed.

    The state of an order is computed from its own symbol's quotes and trades (every feature is
    per symbol; tested against the whole book), so by default only the orders' symbols are
    passed: a sixth of the data on the synthetic feed, and the caches the decision that follows
    needs are not swept by the other symbols' quotes. ``symbols`` overrides (the test's whole
    book)."""
    from models.features import build_features
    from validation._stress_real import _with_desk_estimates

    bundle = model.bundle
    frame = pd.DataFrame({
        "order_id": [o.order_id for o in orders], "symbol": [o.symbol for o in orders],
        "side": [o.side for o in orders], "qty": [o.qty for o in orders],
        "decision_ts": pd.to_datetime([o.decision_ns for o in orders], utc=True),
        "end_ts": pd.to_datetime([o.end_ns for o in orders], utc=True)})
    if feed.estimates:
        frame["shares_outstanding"] = [feed.estimates.get(o.symbol, {}).get(
            "shares_outstanding", np.nan) for o in orders]
    bars = feed.known_bars()
    syms = symbols if symbols is not None else sorted({o.symbol for o in orders})
    quotes = [feed.known_quotes(x) for x in syms]
    trades = [feed.known_trades(x) for x in syms]
    state = build_features(frame,
                           quotes=quotes[0] if len(quotes) == 1
                           else pd.concat(quotes, ignore_index=True),
                           trades=trades[0] if len(trades) == 1
                           else pd.concat(trades, ignore_index=True),
                           daily_bars=bars, calibrations=bundle.calibrations,
                           config=bundle.feature_config,  # on the feed's calendar (ModelSource)
                           regime_probabilities=feed.regime_table(bundle.feature_config))
    if feed.estimates:
        parts = []
        for sym, g in state.groupby("symbol", sort=False):
            parts.append(_with_desk_estimates(g, feed.estimates[str(sym)], bundle.calibrations,
                                              session_min=feed.sim.session_ns / 60e9))
        state = pd.concat(parts).loc[state.index]
    return frame, state


def plan_orders(feed: Feed, model: Any, orders: list[ParentOrder]) -> list[dict[str, Any]]:
    """Each order's plan: its point-in-time state (:func:`order_state`), the policy's choice
    among the candidates, and the chosen plan's children."""
    from models.policy import candidate_children

    planner = model.planner
    frame, state = order_state(feed, model, orders)
    pcfg = planner.config
    records = state.to_dict("records")
    decisions = []
    took: list[int] = []
    # no collection inside a decision: the state's garbage (pandas) is collected after them
    collecting = gc.isenabled()
    gc.disable()
    try:
        for rec in records:
            t0 = time.perf_counter_ns()
            decisions.append(planner.decide_one(rec))
            took.append(time.perf_counter_ns() - t0)
    finally:
        if collecting:
            gc.enable()
    kids: dict[str, pd.DataFrame] = {}
    choice = np.array([d.candidate for d in decisions])
    for j in np.unique(choice):  # the chosen plans' children, one call per candidate
        part = frame[choice == j]
        ch = candidate_children(part, planner.grid[int(j)], config=pcfg,
                                volume_history=feed.volume_history)
        for oid, g in ch.groupby("order_id", sort=False):
            kids[str(oid)] = g
    out = []
    for o, rec, d, ns in zip(orders, records, decisions, took, strict=True):
        ch = kids[o.order_id]
        est = feed.estimates.get(o.symbol, {})
        out.append({
            "plan": {"name": d.name, "candidate": d.candidate, "pred_mean_bps": d.pred_mean_bps,
                     "pred_lo_bps": d.pred_lo_bps, "pred_hi_bps": d.pred_hi_bps,
                     "objective": d.objective, "model_version": model.version},
            "ns": [int(x) for x in ch["decision_ts"].dt.as_unit("ns").array.asi8],
            "qty": [float(x) for x in ch["qty"]], "kind": [int(x) for x in ch["kind"]],
            "adv": float(est.get("adv", rec.get("adv", np.nan))),
            "sigma_daily": float(est.get("sigma_daily", rec.get("sigma_daily", np.nan))),
            "shares_outstanding": float(est.get("shares_outstanding",
                                                rec.get("shares_outstanding", np.nan))),
            "arrival_mid": float(rec.get("arrival_mid", np.nan)), "decide_ns": ns,
            "explain": {"chosen": d.name, "model_version": model.version,
                        "candidates": [
                            {"name": planner.grid[j].name, "mean_bps": float(d.mean_bps[j]),
                             "lo_bps": float(d.lo_bps[j]), "hi_bps": float(d.hi_bps[j]),
                             "objective": float(d.objectives[j]),
                             "allowed": bool(d.allowed[j])}
                            for j in range(len(planner.grid))]}})
    return out
