"""Latency benchmark and soak test of the paper-trading service (stage 5, issue 15 item 5), 2 cores.

    .venv/bin/python benchmarks/bench_paper.py --home /tmp/demoP                  # the full run
    .venv/bin/python benchmarks/bench_paper.py --home /tmp/demoP --json out.json  # + the figures
    .venv/bin/python benchmarks/bench_paper.py --home /tmp/demoP --orders 2000    # a quick look

The service: :class:`bestex.paper.service.PaperService` on the ``synth`` feed of ``--home`` (a
``make demo`` home: the last session of its synthetic market, from ``--start-min`` minutes after
the open, at ``--speed`` x real time), the home's registry champion, default live limits, a new
journal in a temporary folder; in a thread of this process with its own event loop, on a free
port of 127.0.0.1. The client: an independent FIX 4.4 initiator (simplefix messages over a plain
socket, the pattern of ``tests/test_paper_service.py``) in **its own process** (a client thread in
this one would share the service's GIL and add its own Python time to the figures), one thread
sending and one reading; the reader only stamps and keeps what ``recv`` returns, the messages
are parsed after the orders are out. Orders: the feed's symbols, sides mixed, 100-2,000 shares
(multiples of 100), seeded; market orders, so the policy plans each one (60-minute horizon, or ``--horizon-min`` in the custom tag 20002).

(1) FIX ack latency, NewOrderSingle -> its first ExecutionReport (ExecType New or Rejected):
    client side, ``perf_counter_ns`` just before ``sendall`` of the D to the return of the
    ``recv`` that brought the report; server side, ``PaperService.ack_ns`` (bytes read -> reports
    written, one figure per socket read that held an order). p50 / p99 / p99.9 of the ``--orders``
    orders sent evenly at ``--rate`` per second (a desk's OMS), after ``--warmup`` orders not
    timed (first plans, first fills); then the same for ``--bursts`` bursts of ``--burst``
    orders sent back to back, one burst a second (under the gateway's 2,000 messages/s throttle);
    each phase starts once the previous one's acks are all in.
    Target: paced, client side, p99 <= 5 ms.
(2) Decision path: ``PaperEngine.latency_ns`` (a market event in -> the due children sent and the
    resolved ones filled, journaled and reported; one figure per event that produced reports) and
    ``engine.DECISION_NS`` (one policy decision, ``FastPlanner.decide_one``, timed where it ran:
    the service's planner process, on the cores the event loop and the client also use),
    p50 / p99 / p99.9 over the whole run. Target: decision p99
    <= 1 ms. Beside it: the same planner on 1,000 of the run's orders once the service has
    stopped (the decision's own cost, nothing competing for the GIL), and the plan delay in feed
    time (an order's decision -> its first child sent), read from the journal.
(3) Soak: every order of the run (warm-up, paced, bursts) is worked until it is filled or expires;
    then the client's reports are reconciled with the journal: exactly one ack per order, no
    ExecID twice, no MsgSeqNum gap, per order the sum of LastQty of the Trade reports = the
    journal's filled quantity = the CumQty of the last report, no (order_id, child) filled twice,
    the journal's fills = the client's Trade reports, as many journal orders as acks, every order
    done, no service error. Target: every check holds.

Prints a markdown table and the reconciliation table; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import pickle
import platform
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = {"ack_p99_ms": 5.0, "decision_p99_ms": 1.0}
PASSWORD = "bench-paper-secret"
_ACK_MARKS = (b"\x01150=0\x01", b"\x01150=8\x01", b"\x0135=j\x01", b"\x0135=3\x01")
_DONE = {"2", "4", "8", "C"}  # OrdStatus of an order the service no longer works


def pin_cores(n: int) -> list[int]:
    """Pin this process (and the client process it starts) to ``n`` cores."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > n:
        os.sched_setaffinity(0, cores[:n])
    return sorted(os.sched_getaffinity(0))


def pct(ns) -> dict:
    """p50 / p99 / p99.9 / max in ms of nanosecond figures (``n`` 0: NaNs)."""
    import numpy as np

    a = np.asarray(ns, dtype=np.float64) / 1e6
    if not len(a):
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan"),
                "p999_ms": float("nan"), "max_ms": float("nan")}
    p = np.percentile(a, [50, 99, 99.9])
    return {"n": len(a), "p50_ms": float(p[0]), "p99_ms": float(p[1]),
            "p999_ms": float(p[2]), "max_ms": float(a.max())}


# ----------------------------------------------------------------------------- the client
class Client:
    """An independent FIX 4.4 initiator: simplefix messages over a plain socket; a reader thread
    keeps ``(recv time ns, bytes)`` and counts acks (New, Rejected, throttle, session rejects)."""

    def __init__(self, port: int, sender: str = "DESK", target: str = "BESTEX") -> None:
        import simplefix

        self.fix = simplefix
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sender, self.target, self.seq = sender, target, 1
        self.chunks: list[tuple[int, bytes]] = []
        self.acks = 0
        self.eof = False
        self._reader: threading.Thread | None = None

    def send(self, msg_type: str, pairs) -> int:
        """Send one message; return ``perf_counter_ns`` taken just before ``sendall``."""
        m = self.fix.FixMessage()
        m.append_pair(8, "FIX.4.4")
        m.append_pair(35, msg_type)
        m.append_pair(49, self.sender)
        m.append_pair(56, self.target)
        m.append_pair(34, self.seq)
        m.append_pair(52, datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3])
        for t, v in pairs:
            m.append_pair(t, v)
        raw = m.encode()
        self.seq += 1
        t0 = time.perf_counter_ns()
        self.sock.sendall(raw)
        return t0

    def logon(self) -> None:
        self.send("A", [(98, 0), (108, 30), (554, PASSWORD)])
        parser = self.fix.FixParser()
        while (m := parser.get_message()) is None:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the service closed the connection at logon")
            parser.append_buffer(data)
        if m.get(35) != b"A":
            raise ConnectionError(f"logon refused: {m.get(58)!r}")
        self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        tail = b""
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                break
            t = time.perf_counter_ns()
            if not data:
                break
            self.chunks.append((t, data))
            self.acks += sum((tail[len(tail) - len(k) + 1:] + data).count(k) for k in _ACK_MARKS)
            tail = (tail + data)[-8:]
        self.eof = True

    def order(self, cl: str, symbol: str, side: int, qty: int,
              horizon_min: float | None = None) -> int:
        now = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
        extra = [(20002, f"{horizon_min:g}")] if horizon_min else []
        return self.send("D", [(11, cl), (55, symbol), (54, "1" if side > 0 else "2"),
                               (60, now), (38, qty), (40, "1"), *extra])

    def wait_acks(self, n: int, timeout: float) -> None:
        """Until ``n`` acks have come (a Heartbeat every 5 s meanwhile), or ``timeout``."""
        end = beat = time.monotonic()
        end += timeout
        while self.acks < n and not self.eof and time.monotonic() < end:
            time.sleep(0.005)
            if time.monotonic() - beat > 5.0:
                self.send("0", [])
                beat = time.monotonic()

    def close(self, timeout: float = 5.0) -> None:
        if not self.eof:
            self.send("5", [])
        if self._reader is not None:
            self._reader.join(timeout)
        self.sock.close()


_TAGS = (35, 34, 11, 150, 39, 17, 32, 14, 58)


def _parse(client: Client, start: int, parser, out: list) -> int:
    """Parse ``client.chunks[start:]`` into ``out`` rows ``(recv ns, 35, 34, 11, 150, 39, 17,
    32, 14, 58)`` (str or None); return the next chunk index."""
    chunks = client.chunks
    stop = len(chunks)
    for t, data in chunks[start:stop]:
        parser.append_buffer(data)
        while (m := parser.get_message()) is not None:
            out.append((t, *[None if (v := m.get(k)) is None else v.decode() for k in _TAGS]))
    return stop


def client_main(port: int, plan: list, out_path: str, mark, marked, drain_s: float,
                horizon_min: float | None = None, cores: list[int] | None = None) -> None:
    """The client process: log on, send each phase, mark the phase ends for the service's
    figures, then wait (heartbeats every 5 s) until every order is done or ``drain_s``."""
    import simplefix

    if cores:
        os.sched_setaffinity(0, cores)

    c = Client(port)
    c.logon()
    time.sleep(0.2)
    sent: dict[str, int] = {}
    phase: dict[str, str] = {}
    n = 0
    for name, orders, rate, burst in plan:
        t_start = time.perf_counter_ns()
        for i, (cl, sym, side, qty) in enumerate(orders):
            due = t_start + (i // burst * 1e9 if burst else i * 1e9 / rate)
            if (d := due - time.perf_counter_ns()) > 0:
                time.sleep(d / 1e9)
            sent[cl] = c.order(cl, sym, side, qty, horizon_min)
            phase[cl] = name
        n += len(orders)
        c.wait_acks(n, drain_s)
        mark.set()
        marked.wait(10.0)
        marked.clear()
        time.sleep(0.5)
    rows: list = []
    parser, k = simplefix.FixParser(), 0
    open_ = set(sent)
    end, beat = time.monotonic() + drain_s, time.monotonic()
    while open_ and not c.eof and time.monotonic() < end:
        time.sleep(0.2)
        j = len(rows)
        k = _parse(c, k, parser, rows)
        for r in rows[j:]:
            if r[1] == "8" and r[5] in _DONE:
                open_.discard(r[3])
        if time.monotonic() - beat > 5.0:
            c.send("0", [])
            beat = time.monotonic()
    c.close()
    _parse(c, k, parser, rows)
    with open(out_path, "wb") as f:
        pickle.dump({"sent": sent, "phase": phase, "rows": rows}, f)


# ----------------------------------------------------------------------------- the service
def start_service(home: Path, workdir: Path, speed: float, start_min: float):
    from bestex.paper.journal import Journal
    from bestex.paper.market import load_feed
    from bestex.paper.service import ModelSource, PaperService, ServiceConfig

    feed = load_feed("synth", home=home)
    feed.advance(feed.start_ns + int(start_min * 60e9))
    journal = Journal(workdir / "bench.db")
    journal.set_meta("cursor", feed.cursor)
    model = ModelSource(feed)
    said: list[str] = []
    cfg = ServiceConfig(port=0, speed=speed, password=PASSWORD, exit_at_end=True,
                        pin_cores=True)  # as `bestex paper` runs it
    svc = PaperService(feed, journal, model, cfg, say=said.append)
    loop = asyncio.new_event_loop()

    def serve() -> None:
        try:
            loop.run_until_complete(svc.run())
        finally:  # run() returns before its connection handlers have seen their sockets close
            tasks = asyncio.all_tasks(loop)
            if tasks:
                _, left = loop.run_until_complete(asyncio.wait(tasks, timeout=2.0))
                for t in left:
                    t.cancel()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    for _ in range(3000):
        if getattr(svc, "port", None):
            break
        time.sleep(0.01)
    else:
        sys.exit(f"bench_paper: the service did not start: {said}")
    return svc, loop, thread, said


def make_plan(symbols: list[str], a) -> list:
    import numpy as np

    rng = np.random.default_rng(a.seed)
    plan, k = [], 0
    for name, n, rate, burst in (("warmup", a.warmup, 200.0, 0),
                                 ("paced", a.orders, a.rate, 0),
                                 ("burst", a.bursts * a.burst, float(a.burst), a.burst)):
        sym = rng.choice(symbols, n)
        side = rng.choice([1, -1], n)
        qty = rng.integers(1, 21, n) * 100
        plan.append((name, [(f"B{k + i:06d}", str(sym[i]), int(side[i]), int(qty[i]))
                            for i in range(n)], rate, burst))
        k += n
    return plan


# ----------------------------------------------------------------------------- reconciliation
def ack_split(at: list, read_ns: list[int], server_ns: list[int]) -> dict:
    """The paced round trips in three parts: inbound (client ``sendall`` -> the service's read),
    the service (read -> reports written), outbound (written -> the client's ``recv``). Each
    order pairs with the first read that began after it was sent (one clock: see the caller)."""
    import numpy as np

    pairs = [a for a in at if a is not None]
    if not pairs or not read_ns:
        return {}
    order = np.argsort(read_ns, kind="stable")
    reads = np.asarray(read_ns, np.int64)[order]
    took = np.asarray(server_ns, np.int64)[order]
    sent = np.array([a[0] for a in pairs], np.int64)
    got = np.array([a[1] for a in pairs], np.int64)
    j = np.searchsorted(reads, sent, side="left")
    ok = j < len(reads)
    j = j[ok]
    inbound = reads[j] - sent[ok]
    outbound = got[ok] - (reads[j] + took[j])
    return {"paced_inbound": pct(inbound), "paced_outbound": pct(outbound)}


def reconcile(res: dict, journal_path: Path, said: list[str]) -> tuple[list, dict]:
    """The soak's checks ``(check, figure, expected, ok)`` and the client-side ack times."""
    import numpy as np

    from bestex.paper.journal import Journal

    sent, rows = res["sent"], res["rows"]
    ers = [r for r in rows if r[1] == "8"]
    acks: dict[str, list] = defaultdict(list)
    trade_qty: dict[str, float] = defaultdict(float)
    last: dict[str, tuple] = {}
    for r in ers:
        if r[4] in ("0", "8"):
            acks[r[3]].append(r)
        if r[4] == "F":
            trade_qty[r[3]] += float(r[7])
        last[r[3]] = r
    ack_ns = {cl: a[0][0] - sent[cl] for cl, a in acks.items() if cl in sent}
    ack_at = {cl: (sent[cl], a[0][0]) for cl, a in acks.items() if cl in sent}
    rejected = Counter((a[0][9] or "").split(":")[0] for a in acks.values() if a[0][4] == "8")
    seqs = np.array([1] + [int(r[2]) for r in rows])  # 1: the Logon answer
    exec_ids = [r[6] for r in ers]

    j = Journal(journal_path, readonly=True)
    orders, counts = j.orders(), j.counts()
    fills = j.fills()
    cl_of = {o["order_id"]: o["cl_ord_id"] for o in orders}
    filled = fills.groupby("order_id")["qty"].sum()
    jqty = {cl_of[oid]: float(q) for oid, q in filled.items()}
    accepted = [cl for cl in sent if acks.get(cl) and acks[cl][0][4] == "0"]
    sum_ok = sum(abs(trade_qty.get(cl, 0.0) - jqty.get(cl, 0.0)) <= 1e-6 for cl in accepted)
    cum_ok = sum(abs(float(last[cl][8] or 0) - jqty.get(cl, 0.0)) <= 1e-6 for cl in accepted)
    trades = {r[6] for r in ers if r[4] == "F"}
    dup_child = int(fills.duplicated(["order_id", "child"]).sum())
    done = sum(last[cl][5] in _DONE for cl in sent if cl in last)
    errors = [m for m in said if "error" in m or "failed" in m]
    n, na = len(sent), len(accepted)
    checks = [
        ("orders sent", n, n, True),
        ("orders with exactly one ack (New or Rejected)", sum(len(acks.get(cl, ())) == 1
                                                             for cl in sent), n, None),
        ("… of which Rejected (by rule)", f"{sum(rejected.values())} {dict(rejected)}", "", True),
        ("throttle (35=j) and session (35=3) rejects", sum(r[1] in ("j", "3") for r in rows),
         0, None),
        ("ExecutionReports received / distinct ExecIDs", f"{len(ers)} / {len(set(exec_ids))}",
         f"{len(ers)} / {len(ers)}", len(set(exec_ids)) == len(ers)),
        ("messages received (MsgSeqNum 1..N, no gap) / stored as sent by the journal",
         f"{len(seqs)} / {counts['sent']}", "equal",
         len(seqs) == counts["sent"] and bool((np.diff(seqs) == 1).all())),
        ("journal orders / acks (same ClOrdIDs as sent)", f"{len(orders)} / {len(acks)}",
         f"{n} / {n}", len(orders) == len(acks) == n and set(cl_of.values()) == set(sent)),
        ("orders: Σ LastQty of Trade reports = journal filled qty", sum_ok, na, None),
        ("orders: CumQty of the last report = journal filled qty", cum_ok, na, None),
        ("journal fills with (order_id, child) twice", dup_child, 0, None),
        ("journal fills / client Trade reports (same ExecIDs)",
         f"{len(fills)} / {len(trades)}", "equal", set(fills["exec_id"]) == trades),
        ("orders done (filled, expired or rejected) at the end", done, n, None),
        ("service errors (`say`)", len(errors), 0, None),
    ]
    checks = [(c, f, e, (f == e) if ok is None else ok) for c, f, e, ok in checks]
    delay = np.array([o["sent_ns"][0] - o["decision_ns"] for o in orders if o["sent_ns"]]) / 60e9
    plans = {"delay_p50_min": float(np.median(delay)) if len(delay) else float("nan"),
             "delay_max_min": float(delay.max()) if len(delay) else float("nan"),
             "late": int((delay > 5.0).sum()), "accepted": na,
             "unfilled": sum(o["status"] == "expired" and o["cum_qty"] == 0 for o in orders)}
    return checks, {"ack_ns": ack_ns, "ack_at": ack_at, "fills": len(fills), "ers": len(ers), "plans": plans,
                    "filled_qty": float(fills["qty"].sum()), "errors": errors[:20],
                    "counts": counts}


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, required=True, help="a `make demo` BESTEX_HOME")
    ap.add_argument("--orders", type=int, default=10_000, help="paced orders (timed)")
    ap.add_argument("--rate", type=float, default=1000.0, help="paced orders per second")
    ap.add_argument("--warmup", type=int, default=300, help="orders before the timed ones")
    ap.add_argument("--burst", type=int, default=1000, help="orders per burst, back to back")
    ap.add_argument("--bursts", type=int, default=2, help="bursts, one a second")
    ap.add_argument("--speed", type=float, default=600.0, help="feed time per wall time")
    ap.add_argument("--start-min", type=float, default=30.0, help="feed start after the open")
    ap.add_argument("--drain-s", type=float, default=180.0,
                    help="at most this long for the orders to finish after the last is sent")
    ap.add_argument("--horizon-min", type=float, default=None,
                    help="the orders' horizon, feed minutes (FIX tag 20002; default the "
                         "service's, 60): a live-speed run (--speed 1) needs a short one")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--client-off-planner", action="store_true",
                    help="pin the client to the gateway's cores, leaving the planner's core to "
                         "it (an OMS on another machine)")
    ap.add_argument("--seed", type=int, default=515)
    ap.add_argument("--keep", action="store_true", help="keep the journal (else deleted)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    a = ap.parse_args(argv)
    cores = pin_cores(a.cores)
    home = a.home.resolve()
    os.environ["BESTEX_HOME"] = str(home)
    load_avg = os.getloadavg()
    send_s = a.warmup / 200 + a.orders / a.rate + a.bursts + 3
    day_left_min = 390 - a.start_min
    horizon = a.horizon_min or 60.0
    if send_s * a.speed / 60 + horizon > day_left_min:
        sys.exit(f"bench_paper: at --speed {a.speed:g} the ~{send_s:.0f} s of sending take "
                 f"{send_s * a.speed / 60:.0f} feed minutes; with the orders' {horizon:g}-minute "
                 "horizon "
                 f"that passes the day's end ({day_left_min:g} minutes left): lower --speed or "
                 "--orders, or raise --rate")

    from bestex.paper import engine

    t0 = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench_paper_"))
    svc, loop, thread, said = start_service(home, workdir, a.speed, a.start_min)
    load_s = time.perf_counter() - t0
    feed = svc.feed
    plan = make_plan(feed.symbols, a)
    ctx = mp.get_context("spawn")
    mark, marked = ctx.Event(), ctx.Event()
    out = workdir / "client.pkl"
    proc = ctx.Process(target=client_main, args=(svc.port, plan, str(out), mark, marked,
                                                 a.drain_s, a.horizon_min,
                                                 cores[:-1] if a.client_off_planner else None))
    t_run = time.perf_counter()
    wall0, feed0 = time.monotonic(), feed.now_ns
    proc.start()
    marks, lag = [(0, 0, 0)], 0.0
    while proc.is_alive():
        if mark.wait(0.05):
            mark.clear()
            marks.append((len(svc.ack_ns), len(svc.engine.latency_ns), len(engine.DECISION_NS)))
            marked.set()
        if thread.is_alive() and feed.next_ns() is not None:
            lag = max(lag, (time.monotonic() - wall0) - (feed.now_ns - feed0) / a.speed / 1e9)
    proc.join()
    run_s = time.perf_counter() - t_run
    feed_min = (feed.now_ns - feed0) / 60e9
    if thread.is_alive():
        loop.call_soon_threadsafe(svc.stop)
    thread.join(30)
    if thread.is_alive() or not out.is_file():
        print(f"bench_paper: the service or the client did not finish (journal kept in "
              f"{workdir}); the service said {said[-5:]}", file=sys.stderr)
        return 1
    loop.close()
    with open(out, "rb") as f:
        res = pickle.load(f)

    quiet = quiet_decisions(svc, engine, 1000)
    checks, rec = reconcile(res, svc.journal.path, said)
    by_phase: dict[str, list[int]] = defaultdict(list)
    for cl, ns in rec["ack_ns"].items():
        by_phase[res["phase"][cl]].append(ns)
    paced = [rec["ack_ns"][cl] for cl, _, _, _ in plan[1][1] if cl in rec["ack_ns"]]
    m = marks + [(len(svc.ack_ns), 0, 0)] * (4 - len(marks))
    # where a paced round trip goes (one clock: perf_counter_ns is CLOCK_MONOTONIC, shared by
    # the processes): client send -> the service's read, the service's own time, its write ->
    # the client's recv
    split = ack_split([rec["ack_at"].get(cl) for cl, _, _, _ in plan[1][1]],
                      svc.ack_read_ns[m[1][0]:m[2][0]],
                      svc.ack_ns[m[1][0]:m[2][0]])
    fig = {
        "paced_client": pct(by_phase["paced"]), "burst_client": pct(by_phase["burst"]),
        "paced_server": pct(svc.ack_ns[m[1][0]:m[2][0]]),
        "burst_server": pct(svc.ack_ns[m[2][0]:m[3][0]]),
        # one ack figure per order, stamped with its socket read's start: distinct reads
        "burst_reads": len(set(svc.ack_read_ns[m[2][0]:m[3][0]])),
        "paced_first_1000_client": pct(paced[:1000]), "paced_last_1000_client": pct(paced[-1000:]),
        "event": pct(svc.engine.latency_ns), "order_event": pct(svc.engine.order_ns),
        "decision": pct(engine.DECISION_NS[:quiet[0]]),
        "decision_quiet": pct(quiet[1]), **split}
    ok = {"ack_p99_ms": fig["paced_client"]["p99_ms"] <= TARGETS["ack_p99_ms"],
          "decision_p99_ms": fig["decision"]["p99_ms"] <= TARGETS["decision_p99_ms"],
          "soak": all(c[3] for c in checks)}
    run = {"run_s": run_s, "feed_minutes": feed_min, "feed_lag_s": lag, "load_s": load_s,
           "orders": len(res["sent"])}
    print_report(a, svc, cores, load_avg, fig, ok, checks, rec, run)
    if a.json:
        a.json.write_text(json.dumps({
            "home": str(home), "model_version": svc.model.version, "cores": cores,
            "load_average": load_avg, "args": {k: str(v) for k, v in vars(a).items()},
            "figures": fig, **run, "plans": rec["plans"],
            "reconciliation": [dict(zip(("check", "figure", "expected", "ok"), c, strict=True))
                               for c in checks],
            "journal_counts": rec["counts"], "service_said": said[-50:],
            "targets": TARGETS, "ok": ok,
            "series_ns": {"ack_client": by_phase, "ack_server": svc.ack_ns,
                          "ack_server_phase_starts": [x[0] for x in m],
                          "event": svc.engine.latency_ns,
                          "decision": engine.DECISION_NS[:quiet[0]],
                          "decision_quiet": quiet[1]}}, default=str))
    svc.journal.close()
    if not a.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    missed = [k for k, v in ok.items() if not v]
    if missed:
        print(f"\nbench_paper: target(s) missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def quiet_decisions(svc, engine, n: int) -> tuple[int, list[int]]:
    """Once the service has stopped: ``plan_orders`` again on ``n`` of its orders, alone in the
    process (no event loop competing for the GIL); the decisions' ns. Returns how many
    decisions the service made and these."""
    k = len(engine.DECISION_NS)
    plans = engine.plan_orders(svc.feed, svc.model, list(svc.engine.orders.values())[:n])
    return k, [int(p["decide_ns"]) for p in plans]


def print_report(a, svc, cores, load_avg, fig, ok, checks, rec, run) -> None:
    def yes(k: str) -> str:
        return "ok" if ok[k] else "MISSED"

    def row(f: dict) -> str:
        return (f"{f['p50_ms']:.3f} / {f['p99_ms']:.3f} / {f['p999_ms']:.3f} ms "
                f"(max {f['max_ms']:.1f})")

    feed, pl = svc.feed, rec["plans"]
    f1, fl = fig["paced_first_1000_client"], fig["paced_last_1000_client"]
    ps, bs = fig["paced_server"], fig["burst_server"]
    print(f"service: model v{svc.model.version} of {a.home}; feed {feed.name} ({feed.source}), "
          f"{len(feed.symbols)} symbols, from {a.start_min:g} min after the open at "
          f"{a.speed:g}x; journal {svc.journal.path}{'' if a.keep else ' (deleted)'}")
    print(f"machine: cores {cores} of {os.cpu_count()}, Python {platform.python_version()}, "
          f"{platform.platform()}; load average (1 min) {load_avg[0]:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end\n")
    print("| measure | figure | target | |")
    print("|---|---:|---:|---|")
    print(f"| (1) FIX ack, client side (`sendall` of the D -> `recv` of its New/Rejected), "
          f"{fig['paced_client']['n']:,} orders paced at {a.rate:g}/s: p50 / p99 / p99.9 | "
          f"{row(fig['paced_client'])} | p99 ≤ 5 ms | {yes('ack_p99_ms')} |")
    print(f"| … server side (`svc.ack_ns`: one per socket read, {ps['n']:,} reads, "
          f"{a.orders / max(ps['n'], 1):.1f} orders a read) | {row(ps)} | | |")
    if fig.get("paced_inbound"):
        print(f"| … where the paced round trip goes: client `sendall` -> the service's read / "
              f"its reports written -> the client's `recv` (one monotonic clock) | "
              f"{row(fig['paced_inbound'])}; {row(fig['paced_outbound'])} | | |")
    print(f"| … beside it: client side, the first / the last 1,000 paced orders, p50 / p99 | "
          f"{f1['p50_ms']:.3f} / {f1['p99_ms']:.3f} ms, {fl['p50_ms']:.3f} / "
          f"{fl['p99_ms']:.3f} ms | | |")
    print(f"| … burst: {a.bursts} x {a.burst:,} orders back to back, client side | "
          f"{row(fig['burst_client'])} | | |")
    reads = fig["burst_reads"]
    print(f"| … burst, server side (per order: its socket read's start -> its reports "
          f"written; {reads:,} reads, {a.bursts * a.burst / max(reads, 1):.1f} orders a read) "
          f"| {row(bs)} | | |")
    print(f"| (2) market event -> children sent -> fills out (`engine.latency_ns`, "
          f"{fig['event']['n']:,} engine steps with reports) | {row(fig['event'])} | | |")
    print(f"| … per order at an event: its due children decided, its fills computed, journaled "
          f"and reported (`engine.order_ns`, {fig['order_event']['n']:,}) | "
          f"{row(fig['order_event'])} | | |")
    print(f"| … one policy decision in the service's planner process (`DECISION_NS`, "
          f"{fig['decision']['n']:,} decisions) | {row(fig['decision'])} | p99 ≤ 1 ms | "
          f"{yes('decision_p99_ms')} |")
    print(f"| … beside it: the same planner on {fig['decision_quiet']['n']:,} of the orders "
          f"once the service has stopped (nothing else running) | "
          f"{row(fig['decision_quiet'])} | | |")
    print(f"| … beside it: plan delay (decision -> first child sent), feed minutes p50 / max; "
          f"orders planned after their second child was due (> 5 min: the children due are "
          f"then sent at once) / expired with no fill | {pl['delay_p50_min']:.1f} / "
          f"{pl['delay_max_min']:.1f} min; {pl['late']:,} / {pl['unfilled']:,} of "
          f"{pl['accepted']:,} | | |")
    print(f"| (3) soak: {run['orders']:,} orders ({a.warmup} warm-up, {a.orders:,} paced, "
          f"{a.bursts * a.burst:,} burst), {rec['fills']:,} fills, {rec['ers']:,} reports; "
          f"checks passed | {sum(c[3] for c in checks)} of {len(checks)} | all | "
          f"{yes('soak')} |")
    print(f"| … beside it: run (the client process, start to end) / feed time covered / the feed's "
          f"worst lag behind {a.speed:g}x | {run['run_s']:.1f} s / {run['feed_minutes']:.0f} "
          f"min / {run['feed_lag_s']:.2f} s | | |")
    print(f"\n(feed, model and service start, not timed above: {run['load_s']:.1f} s)\n")
    print("| reconciliation | figure | expected | |")
    print("|---|---:|---:|---|")
    for c, f, e, good in checks:
        print(f"| {c} | {f} | {e} | {'ok' if good else 'OFF'} |")
    if rec["errors"]:
        print("\nservice errors:\n" + "\n".join(rec["errors"]))


if __name__ == "__main__":
    sys.exit(main())
