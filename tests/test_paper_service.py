"""Stage 5 end to end: the paper service driven over TCP by an independent FIX 4.4 client.

The client below is written here with simplefix as its codec (a FIX library; none of the
service's own code): it logs on, sends orders, cancels and replaces, and reads the
ExecutionReports off the socket. The service runs on a small synthetic day with a small
registered-style model, in a thread with its own event loop, bound to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
import simplefix
from conftest import serving_rows, tiny_bundle

from bestex.paper.journal import Journal
from bestex.paper.market import synth_feed
from bestex.paper.service import ModelSource, PaperService, ServiceConfig
from models._desk_execution import _volume_history
from models.live_risk import LiveLimits
from models.synthetic_market import SyntheticMarketConfig, generate_market

PASSWORD = "s3cret-test"


@pytest.fixture(scope="module")
def market():
    return generate_market(SyntheticMarketConfig(n_symbols=2, n_sessions=6, seed=3,
                                                 start_date="2025-01-06"))


@pytest.fixture(scope="module")
def bundle():
    return tiny_bundle(serving_rows())


class Service:
    """The service in a thread (its own loop), on a free port."""

    def __init__(self, market, bundle, journal_path, *, speed=60.0, start_min=30, orders=None,
                 limits=None):
        self.feed = synth_feed(market.quotes, market.trades, market.daily_bars, market.truth,
                               volume_history=_volume_history)
        self.feed.advance(self.feed.start_ns + start_min * 60 * 10**9)
        self.journal = Journal(journal_path)
        self.journal.set_meta("cursor", self.feed.cursor)
        model = ModelSource(self.feed, bundle=bundle, version="3")
        cfg = ServiceConfig(port=0, speed=speed, password=PASSWORD, exit_at_end=True,
                            limits=limits or LiveLimits())
        self.svc = PaperService(self.feed, self.journal, model, cfg, orders=orders,
                                say=lambda _m: None)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.svc.run()), daemon=True)
        self.thread.start()
        for _ in range(6000):  # a loaded machine (the suite's other workers) may take seconds
            if getattr(self.svc, "port", None):
                break
            time.sleep(0.01)
        self.port = self.svc.port

    def stop(self):
        loop_stop = self.svc.stop
        loop_stop()
        self.thread.join(timeout=10)


class Client:
    """An independent FIX 4.4 initiator: simplefix messages over a plain socket."""

    def __init__(self, port, sender="DESK", target="BESTEX"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = simplefix.FixParser()
        self.sender, self.target, self.seq = sender, target, 1

    def send(self, msg_type, pairs, *, seq=None):
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4")
        m.append_pair(35, msg_type)
        m.append_pair(49, self.sender)
        m.append_pair(56, self.target)
        m.append_pair(34, self.seq if seq is None else seq)
        m.append_pair(52, datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3])
        for t, v in pairs:
            m.append_pair(t, v)
        self.sock.sendall(m.encode())
        if seq is None:
            self.seq += 1

    def logon(self, password=PASSWORD):
        self.send("A", [(98, 0), (108, 30), (554, password)])
        return self.expect("A", "5")

    def read(self, timeout=5.0):
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            msg = self.parser.get_message()
            if msg is not None:
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no FIX message")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the service closed the connection")
            self.parser.append_buffer(data)

    def expect(self, *types, timeout=5.0):
        while True:
            m = self.read(timeout)
            if m.get(35).decode() in types:
                return m

    def order(self, cl, symbol, side, qty, *, extra=()):
        now = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
        self.send("D", [(11, cl), (55, symbol), (54, "1" if side > 0 else "2"), (60, now),
                        (38, qty), (40, "1"), *extra])

    def close(self):
        self.sock.close()


def tag(m, t):
    v = m.get(t)
    return None if v is None else v.decode()


@pytest.fixture
def service(market, bundle, tmp_path):
    s = Service(market, bundle, tmp_path / "j.db")
    yield s
    s.stop()


def test_wrong_password_is_refused_and_the_right_one_logs_on(service):
    c = Client(service.port)
    m = c.logon("wrong")
    assert tag(m, 35) == "5"
    assert "password" in tag(m, 58).lower()
    assert "wrong" not in tag(m, 58)
    c.close()
    c = Client(service.port)
    assert tag(c.logon(), 35) == "A"
    c.close()


def test_orders_are_acknowledged_filled_cancelled_and_replaced(service):
    sym = service.feed.symbols[0]
    c = Client(service.port)
    assert tag(c.logon(), 35) == "A"
    c.order("O1", sym, 1, 2000)
    ack = c.expect("8")
    assert (tag(ack, 150), tag(ack, 39), tag(ack, 11)) == ("0", "0", "O1")
    assert tag(ack, 20001) == "3"  # the model version on every report
    fill = c.expect("8", timeout=10)
    assert tag(fill, 150) == "F"
    assert float(tag(fill, 32)) > 0
    assert float(tag(fill, 31)) > 0
    assert float(tag(fill, 14)) + float(tag(fill, 151)) == pytest.approx(2000)
    # replace the working order to a larger size, then cancel it
    c.send("G", [(11, "O1R"), (41, "O1"), (55, sym), (54, "1"), (60, "20250101-00:00:00"),
                 (38, 3000), (40, "1")])
    rep = c.expect("8", "9")
    assert (tag(rep, 35), tag(rep, 150), tag(rep, 41)) == ("8", "5", "O1")
    assert float(tag(rep, 38)) == 3000
    c.send("F", [(11, "O1C"), (41, "O1R"), (55, sym), (54, "1"), (60, "20250101-00:00:00")])
    can = c.expect("8")
    assert (tag(can, 150), tag(can, 39), tag(can, 151)) == ("4", "4", "0")
    # a cancel of what is no longer working is refused with the reason
    c.send("F", [(11, "O1C2"), (41, "O1C"), (55, sym), (54, "1"), (60, "20250101-00:00:00")])
    rej = c.expect("9")
    assert "too late to cancel" in tag(rej, 58)
    # an order's horizon from the custom tag 20002 (minutes of feed time)
    c.order("O2", sym, -1, 500, extra=[(20002, "5")])
    assert tag(c.expect("8"), 150) == "0"
    j = Journal(service.journal.path, readonly=True)
    [state] = [json.loads(r[0]) for r in j._db.execute(
        "SELECT state FROM orders WHERE cl_ord_id = 'O2'")]
    assert state["end_ns"] - state["decision_ns"] == 5 * 60 * 10**9
    ev = j.events()
    assert {"accepted", "decision", "replaced", "canceled"} <= set(ev["kind"])
    c.close()


@pytest.mark.parametrize(("pairs", "ref_tag", "why"), [
    ([(11, "B1"), (54, "1"), (60, "20250101-00:00:00"), (38, 100), (40, "1")], "55",
     "required"),
    ([(11, "B2"), (55, "NOPE"), (54, "1"), (60, "20250101-00:00:00"), (38, 100), (40, "1")],
     "55", "NOPE"),
    ([(11, "B3"), (55, "SYN00"), (54, "1"), (60, "20250101-00:00:00"), (38, -5), (40, "1")],
     "38", ""),
])
def test_bad_messages_get_a_reject_with_the_reason_and_the_session_survives(service, pairs,
                                                                            ref_tag, why):
    c = Client(service.port)
    c.logon()
    c.send("D", pairs)
    rej = c.expect("3", "8")
    assert tag(rej, 35) == "3", "a malformed order is a session-level Reject"
    assert tag(rej, 371) == ref_tag
    assert why.lower() in tag(rej, 58).lower()
    c.order("GOOD", service.feed.symbols[0], -1, 100)  # the session still works
    ack = c.expect("8")
    assert (tag(ack, 11), tag(ack, 150)) == ("GOOD", "0")
    c.close()


def test_risk_refusals_are_rejected_execution_reports_with_the_rule(market, bundle, tmp_path):
    s = Service(market, bundle, tmp_path / "j.db", limits=LiveLimits(max_order_qty=5000))
    try:
        c = Client(s.port)
        c.logon()
        c.order("BIG", s.feed.symbols[0], 1, 6000)
        r = c.expect("8")
        assert (tag(r, 150), tag(r, 39)) == ("8", "8")
        assert "max_order_qty" in tag(r, 58)
        c.order("DUP", s.feed.symbols[0], 1, 10)
        assert tag(c.expect("8"), 150) == "0"
        c.order("DUP", s.feed.symbols[0], 1, 10)
        r = c.expect("8")
        assert tag(r, 150) == "8"
        assert "duplicate_clordid" in tag(r, 58)
        c.close()
    finally:
        s.stop()


def test_kill_switch_cancels_every_working_order_within_100_ms(market, bundle, tmp_path):
    s = Service(market, bundle, tmp_path / "j.db", speed=1.0)  # orders stay working
    try:
        c = Client(s.port)
        c.logon()
        sym = s.feed.symbols[0]
        for i in range(5):
            c.order(f"K{i}", sym, 1, 3000)
            assert tag(c.expect("8"), 150) == "0"
        time.sleep(0.3)  # planned
        t0 = time.perf_counter()
        Journal(s.journal.path).request("kill", "test: runaway algo", who="pytest")
        canceled = set()
        while len(canceled) < 5:
            m = c.expect("8")
            if tag(m, 150) == "4":
                canceled.add(tag(m, 11))
                assert "kill switch: test: runaway algo" in tag(m, 58)
        took = time.perf_counter() - t0
        assert took < 0.1, f"kill switch took {took * 1e3:.0f} ms"
        c.order("AFTER", sym, 1, 10)  # refused until reset
        r = c.expect("8")
        assert tag(r, 150) == "8"
        assert "kill_switch" in tag(r, 58)
        Journal(s.journal.path).request("reset", "test: fixed", who="pytest")
        time.sleep(0.1)
        c.order("AFTER2", sym, 1, 10)
        assert tag(c.expect("8"), 150) == "0"
        kills = Journal(s.journal.path, readonly=True).requests()
        assert kills["applied_ns"].notna().all()
        assert list(kills["action"]) == ["kill", "reset"]
        c.close()
    finally:
        s.stop()
