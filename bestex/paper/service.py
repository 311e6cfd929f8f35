"""``bestex paper``: the execution service, a FIX 4.4 acceptor on a replayed feed.

One asyncio loop runs everything, so the engine needs no locks:

* the **FIX gateway**: a TCP server on ``127.0.0.1`` (another host only when told), one
  :class:`bestex.paper.fix.FixSession` per connection (simplefix as the codec), TCP_NODELAY
  set (Nagle would hold each ExecutionReport ~40 ms); its application messages go to the
  engine, the engine's reports come back as ExecutionReports stamped with the model version;
* the **feed pump**: the feed's clock is ``start + speed x wall time elapsed`` (``speed`` 0: as
  fast as the engine goes); every distinct knowledge time up to it is published in turn, and
  for each the scripted orders due are submitted, waiting orders planned, and the engine acts;
* the **control poller** (every 10 ms): a kill or reset written into the journal by ``bestex
  kill`` is applied (every working order canceled) and marked applied;
* the **model watcher** (every ``reload_s``): the registry alias is read again and, when it
  points to another version, the model and its planner are reloaded; the version is in every
  ExecutionReport (tag 20001 and the text of a fill).

The service refuses to start without ``BESTEX_FIX_PASSWORD``. After a ``kill -9``, starting it
again on the same session resumes from the journal: orders, fills, sequence numbers, the kill
switch and the feed's position.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bestex.paper.engine import PaperEngine, Report
from bestex.paper.journal import Journal
from bestex.paper.market import Feed
from models.live_risk import LiveLimits

__all__ = ["ModelSource", "PaperService", "ServiceConfig", "journal_path", "scripted_orders"]

SCRIPT_CLIENT = "SCRIPT"
_SLICE_S = 0.0003  # the feed pump yields to the gateway after this much work (s)
_STEP_NS = 300_000  # the engine's work at one event (ns), then the gateway gets a turn


def journal_path(home: Path, session: str) -> Path:
    return home / "paper" / f"{session}.db"


class ModelSource:
    """The champion (or another alias, a version number, a model URI) of the registry, with its
    policy planner for ``feed``.

    ``version`` is the registry version in use (or the reference it was loaded by);
    :meth:`check` reloads when the alias has moved. A test may pass ``bundle`` and ``version``
    directly (no registry)."""

    def __init__(self, feed: Feed, *, alias: str = "champion", bundle: Any = None,
                 version: str | None = None, risk_aversion: float = 0.5) -> None:
        self.feed, self.alias, self.risk_aversion = feed, alias, risk_aversion
        self.bundle: Any = None
        self.planner: Any = None
        self.version = ""
        self.from_registry = bundle is None
        if bundle is not None:
            self._use(bundle, version or "test")
        else:
            self.check()

    @property
    def follows_alias(self) -> bool:
        return self.alias in ("champion", "challenger")

    def _registry_version(self) -> tuple[Any, str]:
        from pipelines.registry import default_registry

        reg = default_registry()
        info = reg.champion() if self.alias == "champion" else reg.challenger()
        if info is None:
            raise RuntimeError(f"no model has the registry alias {self.alias!r}: run `make demo` "
                               "(or promote a model) before paper trading")
        return reg, str(info.version)

    def check(self) -> bool:
        """Reload when the alias points to another version; True when it did. A model named
        by version or URI is loaded once and never reloaded."""
        if not self.follows_alias:
            if self.bundle is not None:
                return False
            from pipelines.registry import default_registry

            ref: str | int = int(self.alias) if self.alias.isdigit() else self.alias
            try:
                bundle = default_registry().load_bundle(ref)
            except Exception as exc:
                raise RuntimeError(f"cannot load model {self.alias!r}: {exc}") from exc
            self._use(bundle, self.alias)
            return True
        reg, version = self._registry_version()
        if version == self.version:
            return False
        self._use(reg.load_bundle(self.alias), version)
        return True

    def _use(self, bundle: Any, version: str) -> None:
        import copy

        from models._policy_fast import FastPlanner
        from models.features import FeatureConfig
        from models.policy import PolicyConfig, candidate_grid

        feed = self.feed
        b = copy.copy(bundle)
        if b.feature_config.calendar != feed.calendar:
            b.feature_config = FeatureConfig(**{**b.feature_config.model_dump(),
                                                "calendar": feed.calendar})
        grid = tuple(c for c in candidate_grid()
                     if feed.volume_history or c.family not in ("vwap", "pov"))
        cfg = PolicyConfig(risk_aversion=self.risk_aversion,
                           child_interval_min=feed.child_interval_min)
        planner = FastPlanner(b, grid=grid, config=cfg, volume_history=feed.volume_history)
        self.bundle, self.planner, self.version = b, planner, version


def scripted_orders(path: Path) -> pd.DataFrame:
    """A desk's parent orders to submit at their decision times (``--orders FILE``, CSV or
    Parquet): ``cl_ord_id, symbol, side, qty, decision_ts`` and optional ``duration_min``.

    Raises
    ------
    ValueError
        A missing column or a bad value, with the file and row.
    """
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    need = ["cl_ord_id", "symbol", "side", "qty", "decision_ts"]
    miss = [c for c in need if c not in df.columns]
    if miss:
        raise ValueError(f"{path}: missing column(s) {miss}; need {need} (+ duration_min)")
    df["decision_ts"] = pd.to_datetime(df["decision_ts"], utc=True, errors="coerce")
    side = df["side"].replace({"buy": 1, "sell": -1, "B": 1, "S": -1})
    df["side"] = pd.to_numeric(side, errors="coerce")
    df["qty"] = pd.to_numeric(df["qty"], errors="coerce")
    bad = df["decision_ts"].isna() | ~df["side"].isin([1, -1]) | ~(df["qty"] > 0)
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise ValueError(f"{path}: row {i + 2}: needs a decision_ts, side buy/sell (or +1/-1) "
                         f"and qty > 0; got {df.iloc[i][need].to_dict()}")
    if "duration_min" not in df.columns:
        df["duration_min"] = math.nan
    return df.sort_values("decision_ts", kind="stable").reset_index(drop=True)


@dataclass
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = 9878
    speed: float = 60.0
    password: str = ""
    allowed_clients: frozenset[str] = frozenset({"DESK"})
    reload_s: float = 5.0
    pin_cores: bool = False  # the gateway off the planner's core (the process is the service's)
    exit_at_end: bool = True
    limits: LiveLimits = field(default_factory=LiveLimits)


class PaperService:
    """The gateway, the feed pump, the control poller and the model watcher on one loop."""

    def __init__(self, feed: Feed, journal: Journal, model: ModelSource,
                 config: ServiceConfig, *, orders: pd.DataFrame | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        from bestex.paper import fix

        if not config.password:
            raise ValueError("the paper service refuses to start without a FIX password: set "
                             "BESTEX_FIX_PASSWORD")
        self.feed, self.journal, self.model, self.config = feed, journal, model, config
        self.say = say or (lambda m: print(m, file=sys.stderr, flush=True))
        self.fix = fix
        self.fix_config = fix.FixConfig(allowed_clients=config.allowed_clients,
                                        password=config.password,
                                        symbols=frozenset(feed.symbols),
                                        max_msgs_per_s=config.limits.max_msgs_per_s)
        self.engine = PaperEngine(feed, journal, model, limits=config.limits, emit=self._emit)
        self.sessions: dict[str, tuple[Any, asyncio.Transport]] = {}
        self.orders = orders if orders is not None else None
        self._next_script = 0
        self.server: asyncio.AbstractServer | None = None
        self.stopped = asyncio.Event()
        self.ack_ns: list[int] = []
        self.ack_read_ns: list[int] = []  # perf_counter_ns when each of those reads began
        self._outq: list[tuple[asyncio.Transport, bytes]] = []
        self._planning: asyncio.Future | None = None  # a batch planned, until it is applied
        self._applying: asyncio.Future | None = None
        self._process: Any = None
        self._conns: set[_FixProtocol] = set()

    # ------------------------------------------------------------------ reports out
    def _emit(self, r: Report) -> None:
        got = self.sessions.get(r.client)
        if got is None:
            return  # a scripted order, or a client not connected: journaled only
        sess, writer = got
        f = self.fix
        if r.kind == "cancel_reject":
            msg = f.order_cancel_reject(**r.fields)
        else:
            x = dict(r.fields)
            x.setdefault("exec_id", f"{x['order_id']}-{x['exec_type']}-{time.time_ns()}")
            if x.get("last_qty") and "text" not in x:
                x["text"] = f"model v{x['model_version']}"
            msg = f.execution_report(**x)
        if not sess.logged_on or sess.closed:
            return  # logged out meanwhile: the report stays in the journal's events
        with self.journal.transaction():
            raw = sess.send(msg)
            self.journal.log_message("out", r.client, raw, "8" if r.kind != "cancel_reject"
                                     else "9")
        # written once the journal has committed (see _flush): never a report the journal lacks
        self._outq.extend((writer, x) for x in sess.drain())

    def _flush(self) -> None:
        q, self._outq = self._outq, []
        for writer, raw in q:
            if not writer.is_closing():
                writer.write(raw)

    # ------------------------------------------------------------------ FIX connections
    def _on_data(self, conn: _FixProtocol, data: bytes) -> None:
        """Bytes from a client, handled in the loop's I/O callback itself: a reader task would
        be woken one loop iteration later, behind the engine's next step (measured: the
        inbound wait's p99 was three engine steps)."""
        sess, transport, app = conn.sess, conn.transport, conn.app
        t0 = time.perf_counter_ns()
        try:
            with self.journal.transaction():
                self.journal.log_message("in", sess.client, data)
                out = sess.on_bytes(data)
        except Exception as exc:  # an engine fault must not take the gateway down
            self.say(f"paper: error on a message from {sess.client}: {exc!r}")
            out = sess.drain()
        self._flush()  # reports the engine emitted, in the order they were queued
        for raw in out:
            transport.write(raw)
        if app.acked:  # one figure per order acknowledged in this read
            self.ack_ns.extend([time.perf_counter_ns() - t0] * app.acked)
            self.ack_read_ns.extend([t0] * app.acked)
            app.acked = 0
        if sess.closed:
            transport.close()

    # ------------------------------------------------------------------ loops
    async def _pump(self) -> None:
        feed, eng = self.feed, self.engine
        speed = self.config.speed
        wall0, feed0 = time.monotonic(), feed.now_ns
        last_yield = time.perf_counter()
        while not self.stopped.is_set():
            if time.perf_counter() - last_yield > _SLICE_S:  # the gateway gets its turn
                await asyncio.sleep(0)
                last_yield = time.perf_counter()
            nxt = feed.next_ns()
            if nxt is None:
                if eng.pending:
                    self._plan()
                await self._act()
                if self.config.exit_at_end and self._planning is None and not any(
                        o.working for o in eng.orders.values()):
                    self.say(f"paper: the feed's day is over at "
                             f"{pd.Timestamp(feed.now_ns, tz='UTC')}; "
                             f"{len(eng.orders)} orders, journal {self.journal.path}")
                    self.stopped.set()
                    return
                await asyncio.sleep(0.01)
                continue
            if speed > 0:
                target = feed0 + (time.monotonic() - wall0) * speed * 1e9
                if nxt > target:
                    await asyncio.sleep(min((nxt - target) / speed / 1e9, 0.005))
                    continue
            feed.advance(nxt)
            self._submit_scripted()
            if eng.pending:
                self._plan()
            await self._act()

    async def _act(self) -> None:
        """The engine on the current event, a millisecond of work at a time, the gateway served
        in between (the feed stays at this event: the outcome is that of one call)."""
        eng = self.engine
        if eng.on_event(budget_ns=_STEP_NS):
            self._flush()
        while eng.more_due:
            await asyncio.sleep(0)
            if eng.on_event(budget_ns=_STEP_NS):
                self._flush()

    def _plan(self) -> None:
        """Plan the waiting orders: inline when the feed runs as fast as it can (a scripted
        day: the plans are then those of any rerun), else in the planner process, so that the
        gateway keeps acknowledging orders while a batch is decided (its result is applied on
        this loop; the feed moves on meanwhile, as it would on a live venue)."""
        eng = self.engine
        if self.config.speed <= 0:
            eng.plan_pending()
            return
        if self._planning is not None:
            return
        ids = eng.take_pending()
        if not ids:
            return
        loop = asyncio.get_running_loop()
        orders = [eng.orders[i] for i in ids]
        fut = asyncio.wrap_future(self._process.submit(self.feed.cursor, orders,
                                                       self.model.version), loop=loop)
        self._planning = fut

        async def apply(ids: list[str] = ids) -> None:
            # one order's plan per transaction, the gateway served in between: a batch of
            # plans applied at once held the loop for tens of milliseconds (its journal rows)
            try:
                try:
                    plans = await fut
                except Exception as exc:  # keep serving; the orders wait for the next batch
                    self.say(f"paper: planning {len(ids)} orders failed: {exc!r}; retrying")
                    eng.pending.extend(ids)
                    return
                for i in range(len(ids)):
                    eng.apply_plans(ids[i:i + 1], plans[i:i + 1])
                    await asyncio.sleep(0)
            finally:
                self._planning = None

        self._applying = asyncio.ensure_future(apply())

    def _submit_scripted(self) -> None:
        df = self.orders
        if df is None:
            return
        now = pd.Timestamp(self.feed.now_ns, tz="UTC")
        while self._next_script < len(df) and df["decision_ts"].iloc[self._next_script] <= now:
            r = df.iloc[self._next_script]
            self._next_script += 1
            if self.journal.order_of(SCRIPT_CLIENT, str(r["cl_ord_id"])) is not None:
                continue  # submitted before a restart
            dur = float(r["duration_min"])
            self.engine.new_order(SCRIPT_CLIENT, str(r["cl_ord_id"]), str(r["symbol"]),
                                  int(r["side"]), float(r["qty"]),
                                  duration_min=dur if math.isfinite(dur) else None)

    async def _control(self) -> None:
        while not self.stopped.is_set():
            if self.journal.changed_elsewhere():
                for req in self.journal.pending_requests():
                    if req["action"] == "kill":
                        n = sum(o.working for o in self.engine.orders.values())
                        self.engine.kill(req["reason"], req["who"])
                        self.say(f"paper: KILL SWITCH ({req['reason']}): {n} working orders "
                                 "canceled, new orders refused")
                    else:
                        self.engine.reset(req["reason"], req["who"])
                        self.say(f"paper: kill switch reset ({req['reason']})")
                    with self.journal.transaction():
                        self.journal.mark_applied(req["id"])
                    self._flush()
            await asyncio.sleep(0.01)

    async def _timers(self) -> None:
        last_reload = time.monotonic()
        while not self.stopped.is_set():
            for sess, writer in list(self.sessions.values()):
                with self.journal.transaction():
                    out = sess.on_timer()
                for raw in out:
                    writer.write(raw)
            if time.monotonic() - last_reload > self.config.reload_s:
                last_reload = time.monotonic()
                try:
                    if await self._check_model():
                        self.say(f"paper: model reloaded: v{self.model.version}")
                        with self.journal.transaction():
                            self.journal.event("model_reloaded", {"version": self.model.version})
                except Exception as exc:  # the registry may be busy: keep the loaded model
                    self.say(f"paper: model check failed ({exc}); keeping v{self.model.version}")
            await asyncio.sleep(1.0)

    async def _check_model(self) -> bool:
        """Follow the registry alias; True when the version changed. With a planner process,
        that process reads the registry and reloads (it is the one that decides); the
        service takes the version it reports, for the ExecutionReports. Inline (speed 0), in
        a thread of this process."""
        if not self.model.from_registry or not self.model.follows_alias:
            return False
        if self._process is None:
            return await asyncio.get_running_loop().run_in_executor(None, self.model.check)
        version = await asyncio.wrap_future(self._process.check())
        if version == self.model.version:
            return False
        self.model.version = version  # the bundle in use is the planner process's
        return True

    async def run(self) -> None:
        """Serve until the feed's day is over (``exit_at_end``) or :meth:`stop`."""
        self._loop = asyncio.get_running_loop()
        self.journal.start_checkpointer()
        if self.config.speed > 0:
            from bestex.paper.planner import PlannerProcess

            self._process = PlannerProcess(self.feed, self.model)
            await asyncio.wrap_future(self._process.ready)  # the worker has its model
            cores = sorted(os.sched_getaffinity(0))
            if self.config.pin_cores and len(cores) > 1:  # the planner has the last core
                os.sched_setaffinity(0, set(cores[:-1]))
        n = self.engine.recover()
        # the loaded model, feed and code are long-lived: out of the collector's sight, and
        # young collections rarer (a full collection over them took milliseconds mid-order)
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        cursor = int(self.journal.meta("cursor", 0))
        self.feed.seek(cursor)
        if self.orders is not None:
            self._next_script = 0
        if cursor:  # finish the event the journal last recorded (planning, due children)
            self._submit_scripted()
            self.engine.plan_pending()
            self.engine.on_event()
        with self.journal.transaction():
            self.journal.event("start", {"feed": self.feed.name, "source": self.feed.source,
                                         "model_version": self.model.version,
                                         "resumed_orders": n, "cursor": cursor,
                                         "pid": os.getpid()})
            self.journal.set_meta("model_version", self.model.version)
            self.journal.set_meta("limits", self.config.limits.model_dump())  # the dashboard's
        self.server = await self._loop.create_server(lambda: _FixProtocol(self),
                                                     self.config.host, self.config.port)
        port = self.server.sockets[0].getsockname()[1]
        self.say(f"paper: FIX 4.4 acceptor on {self.config.host}:{port}, feed "
                 f"{self.feed.name} ({self.feed.source}) at "
                 + (f"{self.config.speed:g}x" if self.config.speed > 0 else "full speed")
                 + ", model "
                 + f"v{self.model.version}, journal {self.journal.path}"
                 + (f", resumed {n} working orders at event {cursor}" if cursor else ""))
        self.port = port
        tasks = [asyncio.create_task(c) for c in (self._pump(), self._control(), self._timers())]
        try:
            await self.stopped.wait()
        finally:
            for t in (*tasks, *([self._applying] if self._applying else [])):
                t.cancel()
            self.server.close()
            for conn in list(self._conns):
                conn.transport.close()
            await asyncio.sleep(0)  # the transports' connection_lost callbacks run
            if self._process is not None:
                self._process.shutdown()
            self.journal.stop_checkpointer()
            with self.journal.transaction():
                self.journal.set_meta("cursor", self.feed.cursor)
                self.journal.event("stop", {"cursor": self.feed.cursor})

    def stop(self) -> None:
        """Stop serving (from the loop's thread or any other)."""
        loop = getattr(self, "_loop", None)
        if loop is not None and loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(self.stopped.set)
                return
        self.stopped.set()


class _FixProtocol(asyncio.Protocol):
    """One FIX connection: its session, handled in the loop's I/O callbacks."""

    def __init__(self, service: PaperService) -> None:
        self.service = service

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        svc = self.service
        self.transport = transport
        self.app = _App(svc)
        self.sess = svc.fix.FixSession(svc.fix_config, svc.journal, self.app)
        self.app.session, self.app.writer = self.sess, transport
        svc._conns.add(self)

    def data_received(self, data: bytes) -> None:
        if not self.sess.closed:
            self.service._on_data(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        svc = self.service
        svc._conns.discard(self)
        sess = self.sess
        if sess.client and svc.sessions.get(sess.client, (None,))[0] is sess:
            del svc.sessions[sess.client]


class _App:
    """The FIX application callbacks: messages to the engine."""

    def __init__(self, service: PaperService) -> None:
        self.service = service
        self.session: Any = None
        self.writer: asyncio.Transport | None = None
        self.acked = 0

    def on_logon(self, session: Any) -> None:
        self.service.sessions[session.client] = (session, self.writer)

    def on_logout(self, session: Any) -> None:
        self.service.sessions.pop(session.client, None)

    def on_new_order(self, session: Any, order: Any) -> None:
        price = order.price if order.ord_type == "2" else None
        self.service.engine.new_order(session.client, order.cl_ord_id, order.symbol,
                                      order.side, order.qty, ord_type=order.ord_type,
                                      price=price, duration_min=order.horizon_min)
        self.acked += 1

    def on_cancel(self, session: Any, req: Any) -> None:
        self.service.engine.cancel(session.client, req.cl_ord_id, req.orig_cl_ord_id)

    def on_replace(self, session: Any, req: Any) -> None:
        self.service.engine.replace(session.client, req.cl_ord_id, req.orig_cl_ord_id, req.qty,
                                    ord_type=req.ord_type, price=req.price)
