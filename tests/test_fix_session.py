"""FixSession driven as an independent FIX 4.4 client would drive it.

The client below builds its messages with ``simplefix`` and its own sequence numbers, checks
BodyLength and CheckSum of every reply by hand, and parses them with ``simplefix.FixParser``;
nothing from the module under test is used on the client side except the builders under test.
"""

from __future__ import annotations

import re

import pytest
import simplefix

from bestex.paper.fix import (
    FILLED,
    MODEL_VERSION_TAG,
    NEW,
    TRADE,
    CancelRequest,
    FixConfig,
    FixSession,
    MemoryStore,
    NewOrder,
    ReplaceRequest,
    business_reject,
    execution_report,
    order_cancel_reject,
    reject,
)

PASSWORD = "s3cret"
T0 = 1_736_778_600.0  # 2025-01-13 14:30:00 UTC
SENDING_TIME = "20250113-14:30:00.000"
UTC_TS = re.compile(r"^\d{8}-\d{2}:\d{2}:\d{2}\.\d{3}$")


class Clock:
    """A settable clock."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeApp:
    """Records every callback; answers each new order with an ExecutionReport 150=0."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_logon(self, session: FixSession) -> None:
        self.calls.append(("logon", None))

    def on_logout(self, session: FixSession) -> None:
        self.calls.append(("logout", None))

    def on_new_order(self, session: FixSession, order: NewOrder) -> None:
        self.calls.append(("new", order))
        session.send(execution_report(
            order_id=f"X-{order.cl_ord_id}", cl_ord_id=order.cl_ord_id,
            exec_id=f"E-{order.cl_ord_id}", exec_type=NEW, ord_status=NEW, symbol=order.symbol,
            side=order.side, order_qty=order.qty, cum_qty=0, leaves_qty=order.qty, avg_px=0,
            price=order.price, model_version="m1", transact_time_ns=int(T0 * 1e9)))

    def on_cancel(self, session: FixSession, req: CancelRequest) -> None:
        self.calls.append(("cancel", req))

    def on_replace(self, session: FixSession, req: ReplaceRequest) -> None:
        self.calls.append(("replace", req))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


def tags(msg: simplefix.FixMessage) -> dict[int, str]:
    """First value of each tag, decoded."""
    out: dict[int, str] = {}
    for tag, value in msg:
        out.setdefault(tag, value.decode())
    return out


class Client:
    """An independent FIX 4.4 initiator with its own sequence numbers."""

    def __init__(self, session: FixSession, comp_id: str = "DESK") -> None:
        self.session, self.comp_id, self.seq = session, comp_id, 1

    def build(self, msg_type: str, pairs=(), *, seq: int | None = None, poss_dup: bool = False,
              sender: str | None = None, begin: str = "FIX.4.4") -> bytes:
        msg = simplefix.FixMessage()
        msg.append_pair(8, begin)
        msg.append_pair(35, msg_type)
        msg.append_pair(49, sender or self.comp_id)
        msg.append_pair(56, "BESTEX")
        if seq is None:
            seq, self.seq = self.seq, self.seq + 1
        msg.append_pair(34, seq)
        if poss_dup:
            msg.append_pair(43, "Y")
        msg.append_pair(52, SENDING_TIME)
        if poss_dup:
            msg.append_pair(122, SENDING_TIME)
        for tag, value in pairs:
            msg.append_pair(tag, value)
        return msg.encode()

    @staticmethod
    def parse(raws: list[bytes]) -> list[simplefix.FixMessage]:
        out = []
        for raw in raws:
            trailer = raw.rindex(b"\x0110=") + 1
            head_end = raw.index(b"\x01", raw.index(b"\x019=") + 1) + 1
            assert int(raw[raw.index(b"\x019=") + 3:head_end - 1]) == trailer - head_end
            assert int(raw[trailer + 3:trailer + 6]) == sum(raw[:trailer]) % 256
            assert raw.startswith(b"8=FIX.4.4\x019=")
            assert raw.endswith(b"\x01")
            parser = simplefix.FixParser()
            parser.append_buffer(raw)
            msg = parser.get_message()
            assert [tag for tag, _ in msg][:3] == [8, 9, 35]
            assert parser.get_message() is None
            out.append(msg)
        return out

    def feed(self, raw: bytes) -> list[simplefix.FixMessage]:
        return self.parse(self.session.on_bytes(raw))

    def send(self, msg_type: str, pairs=(), **kw) -> list[simplefix.FixMessage]:
        return self.feed(self.build(msg_type, pairs, **kw))

    def logon(self, password: str = PASSWORD, heartbeat: int = 30, **kw):
        return self.send("A", [(98, 0), (108, heartbeat), (554, password)], **kw)


def order(cl_ord_id: str = "o1", *, drop: tuple[int, ...] = (), **values: str):
    """NewOrderSingle body; override a tag with ``t38="-5"``, drop one with ``drop=(38,)``."""
    body = {11: cl_ord_id, 1: "ACC1", 55: "AAPL", 54: "1", 60: SENDING_TIME, 38: "100",
            40: "2", 44: "101.5"}
    body.update({int(k[1:]): v for k, v in values.items()})
    return [(t, v) for t, v in body.items() if t not in drop]


@pytest.fixture
def env():
    """(session, client, app, store, clock) for a session that knows AAPL and MSFT."""
    return make()


def make(**cfg):
    clock, store, app = Clock(), MemoryStore(), FakeApp()
    config = FixConfig(password=PASSWORD, symbols=frozenset({"AAPL", "MSFT"}), **cfg)
    session = FixSession(config, store, app, clock=clock)
    return session, Client(session), app, store, clock


@pytest.fixture
def logged(env):
    _, client, *_ = env
    client.logon()
    return env


# ----------------------------------------------------------------------------- logon


def test_good_logon_answers_logon_and_calls_app(env):
    session, client, app, store, _ = env
    [reply] = client.logon(heartbeat=30)
    t = tags(reply)
    assert (t[35], t[49], t[56], t[34], t[98], t[108]) == ("A", "BESTEX", "DESK", "1", "0", "30")
    assert UTC_TS.match(t[52])
    assert t[52] == "20250113-14:30:00.000"
    assert [tag for tag, _ in reply][:7] == [8, 9, 35, 49, 56, 34, 52]
    assert (session.logged_on, session.closed, session.client) == (True, False, "DESK")
    assert app.kinds() == ["logon"]
    assert store.seqnums("DESK") == (2, 2)


@pytest.mark.parametrize(("kwargs", "text"), [
    ({"password": "wrong"}, "Password(554)"),
    ({"sender": "EVIL"}, "unknown SenderCompID(49) 'EVIL'"),
])
def test_bad_logon_gets_logout_and_closes(env, kwargs, text):
    session, client, app, store, _ = env
    [reply] = client.logon(**kwargs)
    t = tags(reply)
    assert t[35] == "5"
    assert text in t[58]
    assert "wrong" not in t[58]
    assert (session.closed, session.logged_on, session.client) == (True, False, None)
    assert app.calls == []
    assert store.seqnums("DESK") == (1, 1)
    assert client.send("0") == []  # nothing more is processed


def test_first_message_not_logon_gets_logout(env):
    session, client, app, *_ = env
    [reply] = client.send("D", order())
    assert tags(reply)[35] == "5"
    assert "first message must be Logon (35=A), got 35=D" in tags(reply)[58]
    assert session.closed
    assert app.calls == []


def test_wrong_begin_string_gets_logout(env):
    session, client, *_ = env
    [reply] = client.feed(client.build("A", [(98, 0), (108, 30), (554, PASSWORD)],
                                       begin="FIX.4.2"))
    assert tags(reply)[35] == "5"
    assert tags(reply)[58] == "BeginString must be FIX.4.4, got FIX.4.2"
    assert session.closed


def test_reset_seq_num_flag_resets_both_sides(env):
    _, client, _, store, _ = env
    store.set_seqnums("DESK", 7, 9)
    [reply] = client.send("A", [(98, 0), (108, 30), (554, PASSWORD), (141, "Y")])
    assert (tags(reply)[34], tags(reply)[141]) == ("1", "Y")
    assert store.seqnums("DESK") == (2, 2)


def test_logon_with_high_seqnum_answers_logon_then_resend_request(env):
    session, client, _, store, _ = env
    store.set_seqnums("DESK", 3, 5)
    replies = client.logon(seq=6)
    assert [tags(m)[35] for m in replies] == ["A", "2"]
    assert (tags(replies[0])[34], tags(replies[1])[7], tags(replies[1])[16]) == ("5", "3", "0")
    assert session.logged_on
    assert session.next_in == 3


def test_config_without_password_is_an_error():
    with pytest.raises(ValueError, match="`password` is empty"):
        FixSession(FixConfig(), MemoryStore(), FakeApp())


def test_send_before_logon_is_an_error(env):
    session, *_ = env
    with pytest.raises(RuntimeError, match="no logged-on session"):
        session.send(business_reject(1, "D", "x"))


# ------------------------------------------------------------------ admin messages


def test_test_request_is_answered_with_heartbeat_carrying_its_id(logged):
    _, client, *_ = logged
    [reply] = client.send("1", [(112, "ping-42")])
    assert (tags(reply)[35], tags(reply)[112], tags(reply)[34]) == ("0", "ping-42", "2")


def test_client_logout_is_answered_and_closes(logged):
    session, client, app, *_ = logged
    [reply] = client.send("5")
    assert tags(reply)[35] == "5"
    assert (session.closed, session.logged_on) == (True, False)
    assert app.kinds() == ["logon", "logout"]


# ------------------------------------------------------------- application messages


def test_new_order_reaches_app_and_execution_report_goes_back(logged):
    _, client, app, store, _ = logged
    [er] = client.send("D", order("o1"))
    [(kind, got)] = app.calls[1:]
    assert kind == "new"
    assert isinstance(got, NewOrder)
    assert (got.cl_ord_id, got.symbol, got.side, got.qty, got.ord_type, got.price, got.account) \
        == ("o1", "AAPL", 1, 100.0, "2", 101.5, "ACC1")
    assert got.transact_time_ns == int(T0) * 1_000_000_000
    assert got.raw.get(11) == b"o1"
    t = tags(er)
    assert (t[35], t[34], t[37], t[11], t[17], t[150], t[39], t[55], t[54]) == \
        ("8", "2", "X-o1", "o1", "E-o1", "0", "0", "AAPL", "1")
    assert (t[38], t[14], t[151], t[6], t[44], t[MODEL_VERSION_TAG], t[60]) == \
        ("100", "0", "100", "0", "101.5", "m1", "20250113-14:30:00.000")
    assert store.seqnums("DESK") == (3, 3)
    [(seq, raw)] = store.sent("DESK", 2, 2)
    assert seq == 2
    assert Client.parse([raw])[0] == er


def test_cancel_and_replace_reach_app(logged):
    _, client, app, *_ = logged
    assert client.send("F", [(11, "c1"), (41, "o1"), (55, "MSFT"), (54, "2"),
                             (60, SENDING_TIME)]) == []
    assert client.send("G", [(11, "r1"), (41, "o1"), (55, "MSFT"), (54, "2"),
                             (60, SENDING_TIME), (38, "50"), (40, "1")]) == []
    assert app.calls[1:] == [("cancel", CancelRequest("c1", "o1", "MSFT", -1)),
                             ("replace", ReplaceRequest("r1", "o1", "MSFT", -1, 50.0, "1", None))]


@pytest.mark.parametrize(("body", "ref_tag", "reason", "text"), [
    (order(drop=(38,)), "38", "1", "Required tag missing: OrderQty(38)"),
    (order(t38="-5"), "38", "5", "Value is incorrect (out of range) for this tag: OrderQty(38)=-5"),
    (order(t38="0"), "38", "5", "OrderQty(38)=0"),
    (order(t38="abc"), "38", "6", "Incorrect data format"),
    (order(t55="XYZ"), "55", "5", "unknown symbol XYZ"),
    (order(t54="7"), "54", "5", "Side(54)=7"),
    (order(t40="3"), "40", "5", "OrdType(40)=3"),
    (order(drop=(44,)), "44", "1", "Price(44)"),
    (order(drop=(60,)), "60", "1", "TransactTime(60)"),
    (order(t20002="-30"), "20002", "5", "HorizonMinutes(20002)=-30 must be a positive number"),
    (order(t20002="soon"), "20002", "6", "HorizonMinutes(20002)=soon"),
])
def test_invalid_order_gets_session_reject_and_session_goes_on(logged, body, ref_tag, reason, text):
    session, client, app, *_ = logged
    [rej] = client.send("D", body)
    t = tags(rej)
    assert (t[35], t[45], t[371], t[372], t[373]) == ("3", "2", ref_tag, "D", reason)
    assert text in t[58]
    assert app.kinds() == ["logon"]
    assert session.next_in == 3  # the rejected message consumed its seqnum
    [er] = client.send("D", order("o2"))
    assert tags(er)[35] == "8"
    assert app.calls[-1][1].cl_ord_id == "o2"


def test_horizon_tag_reaches_app_in_minutes(logged):
    _, client, app, *_ = logged
    assert tags(client.send("D", order("h1", t20002="12.5"))[0])[35] == "8"
    assert tags(client.send("D", order("h2"))[0])[35] == "8"
    assert [c[1].horizon_min for c in app.calls[1:]] == [12.5, None]


def test_unsupported_msg_type_gets_business_reject(logged):
    _, client, app, *_ = logged
    [rej] = client.send("AE", [(571, "trade-1")])
    t = tags(rej)
    assert (t[35], t[45], t[372], t[380]) == ("j", "2", "AE", "3")
    assert "Unsupported Message Type" in t[58]
    [er] = client.send("D", order("o2"))
    assert tags(er)[35] == "8"
    assert app.kinds() == ["logon", "new"]


def test_throttle_rejects_the_excess_in_a_rolling_second():
    _, client, app, _, clock = make(max_msgs_per_s=2)
    client.logon()
    replies = [client.send("D", order(f"o{i}"))[0] for i in range(3)]
    assert [tags(m)[35] for m in replies] == ["8", "8", "j"]
    t = tags(replies[2])
    assert (t[380], t[379], t[45]) == ("0", "o2", "4")
    assert t[58] == "throttle: more than 2 messages/s"
    assert app.kinds() == ["logon", "new", "new"]
    clock.t += 1.0
    [er] = client.send("D", order("o3"))
    assert tags(er)[35] == "8"
    assert app.kinds()[-1] == "new"


# ---------------------------------------------------------------- sequence numbers


def test_gap_triggers_one_resend_request_and_the_resend_fills_it(logged):
    session, client, app, *_ = logged
    [rr] = client.send("D", order("o3"), seq=4)
    assert (tags(rr)[35], tags(rr)[7], tags(rr)[16]) == ("2", "2", "0")
    assert client.send("D", order("o4"), seq=5) == []  # no second ResendRequest
    assert app.kinds() == ["logon"]
    client.send("D", order("o1"), seq=2, poss_dup=True)
    client.send("4", [(123, "Y"), (36, 4)], seq=3, poss_dup=True)
    client.send("D", order("o3"), seq=4, poss_dup=True)
    assert [c[1].cl_ord_id for c in app.calls[1:]] == ["o1", "o3"]
    assert session.next_in == 5


def test_resend_request_resends_app_messages_and_gap_fills_admin(logged):
    session, client, _, _, clock = logged
    originals = [client.send("D", order("o1"))[0]]
    clock.t += 1
    client.send("1", [(112, "t")])  # our Heartbeat: seq 3
    for cl in ("o2", "o3"):
        clock.t += 1
        originals += client.send("D", order(cl))
    assert [tags(m)[34] for m in originals] == ["2", "4", "5"]
    clock.t += 10
    replies = client.send("2", [(7, 2), (16, 0)])
    t = [tags(m) for m in replies]
    assert [(m[35], m[34]) for m in t] == [("8", "2"), ("4", "3"), ("8", "4"), ("8", "5")]
    for got, orig in zip([t[0], t[2], t[3]], originals, strict=True):
        assert (got[43], got[122]) == ("Y", tags(orig)[52])
        assert got[52] != got[122]
        assert (got[11], got[17]) == (tags(orig)[11], tags(orig)[17])
    assert (t[1][123], t[1][36], t[1][43]) == ("Y", "4", "Y")
    assert session.next_out == 6  # resent messages keep their numbers
    [gf] = client.send("2", [(7, 1), (16, 1)])
    assert (tags(gf)[35], tags(gf)[34], tags(gf)[36]) == ("4", "1", "2")


def test_too_low_seqnum_gets_logout_unless_poss_dup(logged):
    session, client, app, *_ = logged
    assert client.send("0", seq=1, poss_dup=True) == []
    assert session.logged_on
    [reply] = client.send("0", seq=1)
    assert tags(reply)[35] == "5"
    assert tags(reply)[58] == "MsgSeqNum too low, expecting 2 but received 1"
    assert session.closed
    assert app.kinds() == ["logon", "logout"]


def test_sequence_reset_modes(logged):
    session, client, *_ = logged
    client.send("4", [(123, "Y"), (36, 10)])
    assert session.next_in == 10
    client.seq = 10
    assert client.send("4", [(36, 20)], seq=1) == []  # reset mode ignores MsgSeqNum
    assert session.next_in == 20
    [rej] = client.send("4", [(36, 5)], seq=20)
    assert (tags(rej)[35], tags(rej)[371], tags(rej)[373]) == ("3", "36", "5")


def test_comp_id_problem_after_logon_gets_reject_and_logout(logged):
    session, client, *_ = logged
    replies = client.send("0", sender="OTHER")
    assert [tags(m)[35] for m in replies] == ["3", "5"]
    assert (tags(replies[0])[371], tags(replies[0])[373]) == ("49", "9")
    assert session.closed


# -------------------------------------------------------------------- framing


def test_garbled_checksum_is_ignored_and_counted(logged):
    session, client, app, *_ = logged
    raw = client.build("D", order("o1"))
    bad = raw[:-4] + (b"000" if not raw.endswith(b"000\x01") else b"001") + b"\x01"
    assert session.on_bytes(bad) == []
    assert session.garbled == 1
    assert session.on_bytes(b"junk\x01" + raw.replace(b"\x019=", b"\x019=1", 1)) == []
    assert session.garbled == 1  # a too-long BodyLength waits for more bytes...
    assert (session.logged_on, session.next_in, app.kinds()) == (True, 2, ["logon"])
    [er] = client.feed(raw)  # ...until the next message starts; the same seqnum is expected
    assert session.garbled == 2
    assert tags(er)[35] == "8"
    assert tags(er)[11] == "o1"


def test_fragmented_and_coalesced_bytes(env):
    session, client, *_ = env
    raw = client.build("A", [(98, 0), (108, 30), (554, PASSWORD)])
    for i in range(len(raw) - 1):
        assert session.on_bytes(raw[i:i + 1]) == []
    [reply] = client.feed(raw[-1:])
    assert tags(reply)[35] == "A"
    two = client.build("1", [(112, "a")]) + client.build("D", order("o1"))
    replies = client.feed(two[:7]) + client.feed(two[7:])
    assert [(tags(m)[35], tags(m)[34]) for m in replies] == [("0", "2"), ("8", "3")]


# ---------------------------------------------------------------------- timers


def test_timer_heartbeat_test_request_and_timeout():
    session, client, app, _, clock = make()
    client.logon(heartbeat=10)
    clock.t += 9
    assert session.on_timer() == []
    clock.t += 1
    [hb] = client.parse(session.on_timer())
    assert (tags(hb)[35], tags(hb)[34]) == ("0", "2")
    clock.t += 2  # 12 s of client silence = HeartBtInt + 20 %
    [tr] = client.parse(session.on_timer())
    assert (tags(tr)[35], tags(tr)[112]) == ("1", "TEST-1")
    clock.t += 9
    assert session.on_timer() == []
    clock.t += 1
    [lo] = client.parse(session.on_timer())
    assert tags(lo)[35] == "5"
    assert tags(lo)[58] == "no answer to TestRequest within HeartBtInt=10s"
    assert session.closed
    assert app.kinds() == ["logon", "logout"]


def test_timer_answered_test_request_keeps_session():
    session, client, _, _, clock = make(heartbeat_s=5)
    [reply] = client.logon(heartbeat=30)
    assert tags(reply)[108] == "5"
    clock.t += 6
    [tr] = client.parse(session.on_timer())
    client.send("0", [(112, tags(tr)[112])])
    clock.t += 5
    [hb] = client.parse(session.on_timer())
    assert tags(hb)[35] == "0"
    assert session.logged_on


def test_timer_closes_connection_without_logon():
    session, _, _, _, clock = make()
    clock.t += 10
    assert session.on_timer() == []
    assert session.closed


# -------------------------------------------------------------------- builders


def test_builders_set_their_tags():
    er = tags(execution_report(
        order_id="X1", cl_ord_id="o1", exec_id="E2", exec_type=TRADE, ord_status=FILLED,
        symbol="AAPL", side=-1, order_qty=100, cum_qty=100.0, leaves_qty=0.0, avg_px=101.25,
        last_px=101.25, last_qty=100.0, transact_time_ns=1_736_778_600_123_456_789))
    assert (er[35], er[150], er[39], er[54], er[31], er[32], er[6], er[60]) == \
        ("8", "F", "2", "2", "101.25", "100", "101.25", "20250113-14:30:00.123")
    assert MODEL_VERSION_TAG not in er
    assert 58 not in er
    cxl = tags(order_cancel_reject(order_id="X1", cl_ord_id="c1", orig_cl_ord_id="o1",
                                   ord_status=FILLED, response_to="1", reason=0, text="too late"))
    assert (cxl[35], cxl[41], cxl[434], cxl[102], cxl[58]) == ("9", "o1", "1", "0", "too late")
    rej = tags(reject(7, "bad", ref_tag=38, ref_msg_type="D", reason=5))
    assert (rej[35], rej[45], rej[371], rej[372], rej[373]) == ("3", "7", "38", "D", "5")
    bmr = tags(business_reject(7, "AE", "no", reason=3, ref_id="x"))
    assert (bmr[35], bmr[45], bmr[372], bmr[379], bmr[380]) == ("j", "7", "AE", "x", "3")
    with pytest.raises(ValueError, match="side must be"):
        execution_report(order_id="X", cl_ord_id="o", exec_id="E", exec_type=NEW,
                         ord_status=NEW, symbol="A", side=0, order_qty=1, cum_qty=0,
                         leaves_qty=1, avg_px=0)
