"""FIX 4.4 acceptor session layer: bytes in, bytes out, no sockets and no threads.

:class:`FixSession` implements the FIX 4.4 session protocol (Logon, sequence numbers, gap
detection and ResendRequest, SequenceReset, Heartbeat/TestRequest, Logout) for one client
connection, on top of the ``simplefix`` codec. The service owns the socket: it feeds received
bytes to :meth:`FixSession.on_bytes`, calls :meth:`FixSession.on_timer` about once a second,
writes every ``bytes`` those methods (and :meth:`FixSession.drain`) return, and closes the
socket once :attr:`FixSession.closed` is true.

Validated application messages (NewOrderSingle ``D``, OrderCancelRequest ``F``,
OrderCancelReplaceRequest ``G``) reach the :class:`Application` as frozen records; the engine
answers with :meth:`FixSession.send` and the builders :func:`execution_report`,
:func:`order_cancel_reject` and :func:`business_reject`.

Notes
-----
Choices where FIX 4.4 leaves room, or where this layer is deliberately simpler:

- A message whose MsgSeqNum(34) is too high is discarded after one ResendRequest
  (``7=expected, 16=0``); the client's resend fills the gap. Further too-high messages while
  that request is outstanding are discarded without a second request.
- A garbled frame (bad BodyLength, CheckSum, field syntax) is ignored and counted in
  :attr:`FixSession.garbled`; its sequence number is not consumed.
- Every message we send is stored with :meth:`SessionStore.save_sent` (admin ones too, so a
  reset epoch never resends a stale message). On ResendRequest, application messages are sent
  again with ``43=Y`` and ``122`` = their original SendingTime; admin messages (and numbers the
  store lacks) are replaced by SequenceReset-GapFill. BusinessMessageReject ``j`` is an
  application message and is resent.
- SendingTime(52) accuracy is not enforced (paper trading runs on injected clocks); 52 must
  be present. A failed Logon is answered with a Logout numbered 1 that is not stored, so an
  unauthenticated peer cannot move a client's sequence numbers.
- The custom tag :data:`MODEL_VERSION_TAG` (20001) on ExecutionReports carries the model
  version that produced the decision; the optional custom tag :data:`HORIZON_TAG` (20002) on a
  NewOrderSingle is the order's horizon in minutes of feed time (a replayed day has no wall-clock
  ExpireTime to give).
"""

from __future__ import annotations

import calendar
import hmac
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import simplefix
from simplefix.errors import ParsingError

BEGIN_STRING = "FIX.4.4"
MODEL_VERSION_TAG = 20001
"""Custom tag on ExecutionReport (35=8): the version of the model behind the decision."""
HORIZON_TAG = 20002
"""Optional custom tag on NewOrderSingle (35=D): the order's horizon, minutes of feed time."""
LOGON_TIMEOUT_S = 10.0
"""Seconds a connection may stay without a valid Logon before :meth:`FixSession.on_timer` closes it."""
TEST_REQUEST_FACTOR = 1.2
"""A TestRequest goes out after ``HeartBtInt * TEST_REQUEST_FACTOR`` seconds of client silence."""
MAX_BODY_LENGTH = 1 << 20

# ExecType (150) / OrdStatus (39) values.
NEW = "0"
PARTIAL = "1"
FILLED = "2"
DONE_FOR_DAY = "3"
CANCELED = "4"
REPLACED = "5"
PENDING_CANCEL = "6"
STOPPED = "7"
REJECTED = "8"
SUSPENDED = "9"
PENDING_NEW = "A"
EXPIRED = "C"
PENDING_REPLACE = "E"
TRADE = "F"

ORD_TYPE_MARKET = "1"
ORD_TYPE_LIMIT = "2"
SIDE_TO_FIX: dict[int, str] = {1: "1", -1: "2"}
FIX_TO_SIDE: dict[str, int] = {"1": 1, "2": -1}
CXL_REJ_RESPONSE_CANCEL = "1"
CXL_REJ_RESPONSE_REPLACE = "2"

# SessionRejectReason (373) and BusinessRejectReason (380).
REJECT_REQUIRED_TAG_MISSING = 1
REJECT_VALUE_OUT_OF_RANGE = 5
REJECT_INCORRECT_FORMAT = 6
REJECT_COMPID_PROBLEM = 9
BUSINESS_REJECT_OTHER = 0
BUSINESS_REJECT_UNSUPPORTED_MSG_TYPE = 3

_ADMIN_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})
_HEADER_TAGS = frozenset({8, 9, 10, 35, 34, 43, 49, 52, 56, 97, 122})
_TAG_NAMES = {7: "BeginSeqNo", 11: "ClOrdID", 16: "EndSeqNo", 36: "NewSeqNo", 38: "OrderQty",
              40: "OrdType", 41: "OrigClOrdID", 44: "Price", 49: "SenderCompID",
              52: "SendingTime", 54: "Side", 55: "Symbol", 56: "TargetCompID", 60: "TransactTime",
              112: "TestReqID", 122: "OrigSendingTime", 20002: "HorizonMinutes"}
_SOH = b"\x01"


@dataclass(frozen=True)
class FixConfig:
    """Settings of the acceptor; checked when a :class:`FixSession` is built.

    Parameters
    ----------
    sender_comp_id : str, default="BESTEX"
        Our CompID: tag 49 on what we send; the client's TargetCompID(56) must equal it.
    allowed_clients : frozenset of str, default=frozenset({"DESK"})
        The SenderCompIDs(49) allowed to log on.
    password : str, default=""
        Required in Logon tag 554. Empty is a configuration error.
    symbols : frozenset of str, default=frozenset()
        Known symbols; empty accepts any.
    heartbeat_s : int or None, default=None
        Our HeartBtInt; None uses the client's HeartBtInt(108) from its Logon.
    max_msgs_per_s : float, default=500.0
        Application messages allowed per rolling second; the excess gets a
        BusinessMessageReject and never reaches the application.
    """

    sender_comp_id: str = "BESTEX"
    allowed_clients: frozenset[str] = frozenset({"DESK"})
    password: str = ""
    symbols: frozenset[str] = frozenset()
    heartbeat_s: int | None = None
    max_msgs_per_s: float = 500.0


class SessionStore(Protocol):
    """Persistence of one client's sequence numbers and of the messages sent to it."""

    def seqnums(self, client: str) -> tuple[int, int]:
        """``(next expected incoming, next outgoing)``; ``(1, 1)`` for a new client."""
        ...

    def set_seqnums(self, client: str, next_in: int, next_out: int) -> None:
        """Record both sequence numbers (called after every message in or out)."""
        ...

    def save_sent(self, client: str, seq: int, raw: bytes) -> None:
        """Store the raw message sent with MsgSeqNum ``seq`` (replacing any older one)."""
        ...

    def sent(self, client: str, begin: int, end: int) -> list[tuple[int, bytes]]:
        """Stored ``(seq, raw)`` with ``begin <= seq <= end`` (``end=0``: up to the last), sorted."""
        ...


class MemoryStore:
    """A :class:`SessionStore` in memory, for tests and throwaway sessions."""

    def __init__(self) -> None:
        self._seqnums: dict[str, tuple[int, int]] = {}
        self._sent: dict[str, dict[int, bytes]] = {}

    def seqnums(self, client: str) -> tuple[int, int]:
        """See :meth:`SessionStore.seqnums`."""
        return self._seqnums.get(client, (1, 1))

    def set_seqnums(self, client: str, next_in: int, next_out: int) -> None:
        """See :meth:`SessionStore.set_seqnums`."""
        self._seqnums[client] = (next_in, next_out)

    def save_sent(self, client: str, seq: int, raw: bytes) -> None:
        """See :meth:`SessionStore.save_sent`."""
        self._sent.setdefault(client, {})[seq] = raw

    def sent(self, client: str, begin: int, end: int) -> list[tuple[int, bytes]]:
        """See :meth:`SessionStore.sent`."""
        msgs = self._sent.get(client, {})
        return sorted((s, raw) for s, raw in msgs.items() if s >= begin and (end == 0 or s <= end))


@dataclass(frozen=True)
class NewOrder:
    """A validated NewOrderSingle (35=D). ``raw`` is the parsed message, every tag included."""

    cl_ord_id: str
    symbol: str
    side: int
    qty: float
    ord_type: str
    price: float | None
    transact_time_ns: int | None
    account: str | None
    raw: simplefix.FixMessage = field(compare=False, repr=False)
    horizon_min: float | None = None


@dataclass(frozen=True)
class CancelRequest:
    """A validated OrderCancelRequest (35=F)."""

    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: int


@dataclass(frozen=True)
class ReplaceRequest:
    """A validated OrderCancelReplaceRequest (35=G)."""

    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: int
    qty: float
    ord_type: str
    price: float | None


class Application(Protocol):
    """The engine behind a session; it answers through :meth:`FixSession.send`, now or later."""

    def on_logon(self, session: FixSession) -> None:
        """The client logged on."""
        ...

    def on_logout(self, session: FixSession) -> None:
        """The logged-on session ended (client Logout, our Logout, or a fatal error)."""
        ...

    def on_new_order(self, session: FixSession, order: NewOrder) -> None:
        """A valid NewOrderSingle arrived."""
        ...

    def on_cancel(self, session: FixSession, req: CancelRequest) -> None:
        """A valid OrderCancelRequest arrived."""
        ...

    def on_replace(self, session: FixSession, req: ReplaceRequest) -> None:
        """A valid OrderCancelReplaceRequest arrived."""
        ...


class _FieldError(Exception):
    """An application message failed validation: answered with a session Reject (35=3)."""

    def __init__(self, tag: int, reason: int, text: str) -> None:
        super().__init__(text)
        self.tag, self.reason, self.text = tag, reason, text


# ---------------------------------------------------------------------------- builders


def _num(x: float | None) -> str | None:
    """A FIX decimal without exponent (``100.0`` -> ``"100"``), None passes through."""
    if x is None:
        return None
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"cannot encode the non-finite number {x!r} in a FIX message")
    if x == 0:
        return "0"
    s = f"{x:.15g}"
    return f"{x:.15f}".rstrip("0").rstrip(".") if "e" in s else s


def _fix_side(side: int | str) -> str:
    if isinstance(side, str) and side in FIX_TO_SIDE:
        return side
    if side in SIDE_TO_FIX:
        return SIDE_TO_FIX[side]  # type: ignore[index]
    raise ValueError(f"side must be +1 (buy) or -1 (sell) or FIX '1'/'2', got side={side!r}")


def _format_utc_ns(ns: int) -> str:
    """UTCTimestamp with milliseconds: ``YYYYMMDD-HH:MM:SS.sss``."""
    ms = ns // 1_000_000
    return f"{datetime.fromtimestamp(ms // 1000, UTC):%Y%m%d-%H:%M:%S}.{ms % 1000:03d}"


def _parse_utc_ns(text: str) -> int:
    """Nanoseconds since the epoch from a UTCTimestamp (0, 3, 6 or 9 decimals)."""
    date, _, frac = text.partition(".")
    secs = calendar.timegm(datetime.strptime(date, "%Y%m%d-%H:%M:%S").timetuple())
    if frac and not (frac.isdigit() and len(frac) <= 9):
        raise ValueError(f"bad fractional seconds in {text!r}")
    return secs * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)


def _message(msg_type: str, pairs: Iterable[tuple[int, Any]]) -> simplefix.FixMessage:
    msg = simplefix.FixMessage()
    msg.append_pair(35, msg_type)
    for tag, value in pairs:
        msg.append_pair(tag, value)  # None values are skipped by simplefix
    return msg


def execution_report(*, order_id: str, cl_ord_id: str, exec_id: str, exec_type: str,
                     ord_status: str, symbol: str, side: int | str, order_qty: float,
                     cum_qty: float, leaves_qty: float, avg_px: float,
                     last_px: float | None = None, last_qty: float | None = None,
                     orig_cl_ord_id: str | None = None, price: float | None = None,
                     text: str | None = None, ord_rej_reason: int | None = None,
                     model_version: str | None = None,
                     transact_time_ns: int | None = None) -> simplefix.FixMessage:
    """An ExecutionReport (35=8) without header fields, for :meth:`FixSession.send`.

    Parameters
    ----------
    order_id, cl_ord_id, exec_id : str
        Tags 37, 11 and 17.
    exec_type, ord_status : str
        Tags 150 and 39: use the module constants (``NEW``, ``TRADE``, ``FILLED`` ...).
    symbol : str
        Tag 55.
    side : int or str
        +1 buy / -1 sell (or the FIX value ``"1"``/``"2"``), tag 54.
    order_qty, cum_qty, leaves_qty, avg_px : float
        Tags 38, 14, 151 and 6.
    last_px, last_qty, orig_cl_ord_id, price, text, ord_rej_reason : optional
        Tags 31, 32, 41, 44, 58 and 103; omitted when None.
    model_version : str, optional
        Custom tag :data:`MODEL_VERSION_TAG` (20001).
    transact_time_ns : int, optional
        TransactTime(60) in ns since the epoch; the current time when None.

    Returns
    -------
    simplefix.FixMessage
    """
    ns = time.time_ns() if transact_time_ns is None else transact_time_ns
    return _message("8", [
        (37, order_id), (11, cl_ord_id), (17, exec_id), (150, exec_type), (39, ord_status),
        (55, symbol), (54, _fix_side(side)), (38, _num(order_qty)), (14, _num(cum_qty)),
        (151, _num(leaves_qty)), (6, _num(avg_px)), (31, _num(last_px)), (32, _num(last_qty)),
        (41, orig_cl_ord_id), (44, _num(price)), (58, text), (103, ord_rej_reason),
        (MODEL_VERSION_TAG, model_version), (60, _format_utc_ns(ns))])


def order_cancel_reject(*, order_id: str, cl_ord_id: str, orig_cl_ord_id: str, ord_status: str,
                        response_to: str, reason: int, text: str) -> simplefix.FixMessage:
    """An OrderCancelReject (35=9): 37, 11, 41, 39, 434 (``"1"`` cancel / ``"2"`` replace), 102, 58.

    Raises
    ------
    ValueError
        If ``response_to`` is not ``"1"`` or ``"2"``.
    """
    if response_to not in (CXL_REJ_RESPONSE_CANCEL, CXL_REJ_RESPONSE_REPLACE):
        raise ValueError(f"response_to must be '1' (cancel) or '2' (replace), got {response_to!r}")
    return _message("9", [(37, order_id), (11, cl_ord_id), (41, orig_cl_ord_id), (39, ord_status),
                          (434, response_to), (102, reason), (58, text)])


def reject(ref_seq: int, text: str, *, ref_tag: int | None = None,
           ref_msg_type: str | None = None, reason: int | None = None) -> simplefix.FixMessage:
    """A session-level Reject (35=3): 45 RefSeqNum, 371 RefTagID, 372 RefMsgType, 373, 58."""
    return _message("3", [(45, ref_seq), (371, ref_tag), (372, ref_msg_type), (373, reason),
                          (58, text)])


def business_reject(ref_seq: int, ref_msg_type: str, text: str, *, reason: int = 0,
                    ref_id: str | None = None) -> simplefix.FixMessage:
    """A BusinessMessageReject (35=j): 45, 372, 379 BusinessRejectRefID, 380 reason, 58."""
    return _message("j", [(45, ref_seq), (372, ref_msg_type), (379, ref_id), (380, reason),
                          (58, text)])


# ---------------------------------------------------------------------------- session


def _get(msg: simplefix.FixMessage, tag: int) -> str | None:
    value = msg.get(tag)
    return None if value is None else value.decode("utf-8", errors="replace")


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _name(tag: int) -> str:
    return f"{_TAG_NAMES.get(tag, 'tag')}({tag})"


def _body(msg: simplefix.FixMessage) -> list[tuple[int, bytes]]:
    return [(tag, value) for tag, value in msg if tag not in _HEADER_TAGS]


class FixSession:
    """One FIX 4.4 acceptor session: feed it bytes, write what it returns.

    Parameters
    ----------
    config : FixConfig
        The acceptor settings.
    store : SessionStore
        Sequence numbers and sent messages, keyed by the client's CompID.
    app : Application
        The engine receiving validated orders.
    clock : callable, default=time.time
        Seconds since the epoch; drives SendingTime, heartbeats and the throttle.

    Raises
    ------
    ValueError
        If the config has an empty password, sender_comp_id or allowed_clients, or a
        non-positive ``heartbeat_s`` or ``max_msgs_per_s``.

    Attributes
    ----------
    client : str or None
        The client's CompID, set once its Logon has authenticated.
    logged_on : bool
        True between our Logon answer and the end of the session.
    closed : bool
        True after a Logout exchange or a fatal error: the service closes the socket.
    garbled : int
        Frames ignored for a bad BodyLength, CheckSum or field syntax.
    heartbeat_s : int or None
        The HeartBtInt in force once logged on.

    Notes
    -----
    Every outgoing message goes to one outbox; :meth:`on_bytes`, :meth:`on_timer` and
    :meth:`drain` each return (and empty) it, in order. :meth:`send` also returns the bytes it
    queued, for logging: write each message once, from those three methods. Exceptions raised by
    the :class:`Application` propagate; what was queued before stays in the outbox.
    """

    def __init__(self, config: FixConfig, store: SessionStore, app: Application, *,
                 clock: Callable[[], float] = time.time) -> None:
        problems = [msg for bad, msg in [
            (not config.password, "`password` is empty; set the password clients send in 554"),
            (not config.sender_comp_id, "`sender_comp_id` is empty"),
            (not config.allowed_clients, "`allowed_clients` is empty: no client could log on"),
            (config.heartbeat_s is not None and config.heartbeat_s <= 0,
             f"`heartbeat_s={config.heartbeat_s}` must be positive or None"),
            (not config.max_msgs_per_s > 0,
             f"`max_msgs_per_s={config.max_msgs_per_s}` must be positive")] if bad]
        if problems:
            raise ValueError("FixConfig: " + "; ".join(problems))
        self.config, self._store, self._app, self._clock = config, store, app, clock
        self.client: str | None = None
        self.logged_on = False
        self.closed = False
        self.garbled = 0
        self.heartbeat_s: int | None = None
        self._next_in = self._next_out = 1
        self._buf = b""
        self._outbox: list[bytes] = []
        self._resend_until: int | None = None
        self._logout_sent = False
        self._created = self._last_sent = self._last_recv = clock()
        self._test_req_at: float | None = None
        self._test_req_count = 0
        self._app_times: deque[float] = deque()

    @property
    def next_in(self) -> int:
        """The next MsgSeqNum expected from the client."""
        return self._next_in

    @property
    def next_out(self) -> int:
        """The MsgSeqNum of our next message."""
        return self._next_out

    # -- public API -------------------------------------------------------------------

    def on_bytes(self, data: bytes) -> list[bytes]:
        """Feed received bytes (any fragmentation); return the raw messages to write, in order."""
        if not self.closed:
            self._buf += data
            while not self.closed and (frame := self._next_frame()) is not None:
                msg = self._decode(frame)
                if msg is not None:
                    self._handle(msg)
        return self.drain()

    def on_timer(self, now: float | None = None) -> list[bytes]:
        """Heartbeat/TestRequest/timeout housekeeping; call about once a second.

        Parameters
        ----------
        now : float, optional
            The current time on the ``clock``'s time base; read from the clock when None.

        Returns
        -------
        list of bytes
            The outbox: a Heartbeat after HeartBtInt s of our silence, a TestRequest after
            ``HeartBtInt * 1.2`` s of the client's, a Logout (and ``closed``) when that
            TestRequest is unanswered for a further HeartBtInt.
        """
        now = self._clock() if now is None else now
        if self.closed:
            return self.drain()
        if not self.logged_on:
            if now - self._created >= LOGON_TIMEOUT_S:
                self.closed = True  # no Logon: nothing to say, the service drops the socket
            return self.drain()
        hb = self.heartbeat_s or 0
        if self._test_req_at is not None:
            if now - self._test_req_at >= hb:
                self._terminate(f"no answer to TestRequest within HeartBtInt={hb}s")
                return self.drain()
        elif now - self._last_recv >= hb * TEST_REQUEST_FACTOR:
            self._test_req_count += 1
            self._emit("1", [(112, f"TEST-{self._test_req_count}")])
            self._test_req_at = self._last_sent = now
        if now - self._last_sent >= hb:
            self._emit("0", [])
            self._last_sent = now
        return self.drain()

    def send(self, msg: simplefix.FixMessage) -> bytes:
        """Send an application message built by the engine (35 set, no header fields).

        The session adds BeginString, SenderCompID, TargetCompID, MsgSeqNum and SendingTime,
        stores it with :meth:`SessionStore.save_sent` and queues it in the outbox.

        Returns
        -------
        bytes
            The raw message (already queued: write it via :meth:`drain`, not twice).

        Raises
        ------
        RuntimeError
            If the session is not logged on (or closed).
        ValueError
            If the message has no MsgType(35) or an admin MsgType (the session owns those).
        """
        if not self.logged_on or self.closed:
            raise RuntimeError(f"FixSession.send: no logged-on session (client={self.client!r}, "
                               f"closed={self.closed}); the message was not sent")
        if msg.message_type is None:
            raise ValueError("FixSession.send: the message has no MsgType(35); build it with "
                             "execution_report(), order_cancel_reject() or business_reject()")
        msg_type = msg.message_type.decode()
        if msg_type in _ADMIN_TYPES:
            raise ValueError(f"FixSession.send: MsgType 35={msg_type} is a session (admin) "
                             "message; the session generates those itself")
        return self._emit(msg_type, _body(msg))

    def drain(self) -> list[bytes]:
        """Return and clear the outbox: every message queued since the last call, in order."""
        out, self._outbox = self._outbox, []
        return out

    # -- framing ----------------------------------------------------------------------

    def _next_frame(self) -> bytes | None:
        """Cut the next frame with valid BodyLength and CheckSum off the buffer, or None."""
        while True:
            buf = self._buf
            start = buf.find(b"8=FIX")
            while start > 0 and buf[start - 1] != 1:
                start = buf.find(b"8=FIX", start + 1)
            if start < 0:
                self._buf = buf[-4:]  # may hold the start of the next "8=FIX"
                return None
            buf = self._buf = buf[start:]
            soh1 = buf.find(_SOH)
            if soh1 < 0 or len(buf) < soh1 + 3:
                if len(buf) > 32:
                    self._drop()
                    continue
                return None
            soh2 = buf.find(_SOH, soh1 + 1)
            if buf[soh1 + 1:soh1 + 3] != b"9=" or (soh2 < 0 and len(buf) - soh1 > 12):
                self._drop()
                continue
            if soh2 < 0:
                return None
            digits = buf[soh1 + 3:soh2]
            if not digits.isdigit() or int(digits) > MAX_BODY_LENGTH:
                self._drop()
                continue
            end = soh2 + 1 + int(digits)
            if len(buf) < end + 7:
                if buf.find(b"\x018=FIX", soh2) >= 0:  # the next message began: length is wrong
                    self._drop()
                    continue
                return None
            trailer = buf[end:end + 7]
            if not (buf.startswith(b"35=", soh2 + 1) and buf[end - 1] == 1
                    and trailer.startswith(b"10=") and trailer[6] == 1
                    and trailer[3:6].isdigit() and sum(buf[:end]) % 256 == int(trailer[3:6])):
                self._drop()
                continue
            self._buf = buf[end + 7:]
            return buf[:end + 7]

    def _drop(self) -> None:
        """Count a garbled frame and resynchronise on the next BeginString."""
        self.garbled += 1
        self._buf = self._buf[1:]

    def _decode(self, frame: bytes) -> simplefix.FixMessage | None:
        parser = simplefix.FixParser()
        parser.append_buffer(frame)
        try:
            msg = parser.get_message()
        except ParsingError:
            msg = None
        if msg is None:
            self.garbled += 1
        return msg

    # -- outgoing ---------------------------------------------------------------------

    def _encode(self, msg_type: str, body: Iterable[tuple[int, Any]], seq: int, *,
                target: str | None = None, orig_sending_time: bytes | None = None) -> bytes:
        msg = simplefix.FixMessage()
        msg.append_pair(8, BEGIN_STRING)
        msg.append_pair(35, msg_type)
        msg.append_pair(49, self.config.sender_comp_id)
        msg.append_pair(56, target or self.client)
        msg.append_pair(34, seq)
        if orig_sending_time is not None:
            msg.append_pair(43, "Y")
        msg.append_pair(52, _format_utc_ns(int(self._clock() * 1e9)))
        msg.append_pair(122, orig_sending_time)
        for tag, value in body:
            msg.append_pair(tag, value)
        return msg.encode()

    def _queue(self, raw: bytes) -> bytes:
        self._outbox.append(raw)
        self._last_sent = self._clock()
        return raw

    def _emit(self, msg_type: str, body: Iterable[tuple[int, Any]]) -> bytes:
        """Number, store and queue a new message to the logged-on client."""
        assert self.client is not None
        seq = self._next_out
        raw = self._encode(msg_type, body, seq)
        self._next_out += 1
        self._store.save_sent(self.client, seq, raw)
        self._persist()
        return self._queue(raw)

    def _persist(self) -> None:
        if self.client is not None:
            self._store.set_seqnums(self.client, self._next_in, self._next_out)

    def _reject(self, seq: int, text: str, tag: int | None, msg_type: str, reason: int) -> None:
        self._emit("3", _body(reject(seq, text, ref_tag=tag, ref_msg_type=msg_type,
                                     reason=reason)))

    def _refuse_logon(self, msg: simplefix.FixMessage, text: str) -> None:
        """Answer a failed Logon with an unstored Logout and close."""
        self._queue(self._encode("5", [(58, text)], 1, target=_get(msg, 49) or "UNKNOWN"))
        self.closed = True

    def _terminate(self, text: str) -> None:
        """Send Logout with ``text`` and close the session."""
        self._emit("5", [(58, text)])
        self._logout_sent = True
        self._close()

    def _close(self) -> None:
        was_logged_on, self.logged_on, self.closed = self.logged_on, False, True
        if was_logged_on:
            self._app.on_logout(self)

    # -- incoming ---------------------------------------------------------------------

    def _handle(self, msg: simplefix.FixMessage) -> None:
        self._last_recv = self._clock()
        self._test_req_at = None
        msg_type = _get(msg, 35) or ""
        if _get(msg, 8) != BEGIN_STRING:
            text = f"BeginString must be {BEGIN_STRING}, got {_get(msg, 8)}"
            if self.logged_on:
                self._terminate(text)
            else:
                self._refuse_logon(msg, text)
            return
        if not self.logged_on:
            self._on_logon(msg, msg_type)
            return
        seq = _int(_get(msg, 34))
        if seq is None or seq == 0:
            self._terminate("MsgSeqNum(34) missing or not a positive integer")
            return
        sender, target = _get(msg, 49), _get(msg, 56)
        if sender != self.client or target != self.config.sender_comp_id:
            self._reject(seq, f"CompID problem: expected 49={self.client} 56="
                         f"{self.config.sender_comp_id}, got 49={sender} 56={target}",
                         49 if sender != self.client else 56, msg_type, REJECT_COMPID_PROBLEM)
            self._terminate("CompID problem")
            return
        if msg_type == "4" and _get(msg, 123) != "Y":
            self._on_sequence_reset(msg, seq, gap_fill=False)
            return
        if seq < self._next_in:
            if _get(msg, 43) != "Y":
                self._terminate(f"MsgSeqNum too low, expecting {self._next_in} but received {seq}")
            return  # a possible duplicate we already have: ignore it
        if seq > self._next_in:
            if msg_type == "2":
                self._on_resend_request(msg, seq)
            elif msg_type == "5":
                self._on_logout()
                return
            self._request_resend(seq)
            return
        self._next_in += 1
        self._persist()
        if _get(msg, 43) == "Y" and msg.get(122) is None:
            self._reject(seq, "Required tag missing: OrigSendingTime(122) on PossDup",
                         122, msg_type, REJECT_REQUIRED_TAG_MISSING)
        elif msg.get(52) is None:
            self._reject(seq, "Required tag missing: SendingTime(52)", 52, msg_type,
                         REJECT_REQUIRED_TAG_MISSING)
        elif msg_type == "1":
            test_id = _get(msg, 112)
            if test_id is None:
                self._reject(seq, "Required tag missing: TestReqID(112)", 112, msg_type,
                             REJECT_REQUIRED_TAG_MISSING)
            else:
                self._emit("0", [(112, test_id)])
        elif msg_type == "2":
            self._on_resend_request(msg, seq)
        elif msg_type == "4":
            self._on_sequence_reset(msg, seq, gap_fill=True)
        elif msg_type == "5":
            self._on_logout()
        elif msg_type == "A":
            self._terminate("unexpected Logon on an active session")
        elif msg_type not in ("0", "3", "j"):  # Heartbeat and the client's rejects: no answer
            self._on_application(msg, seq, msg_type)

    def _on_logon(self, msg: simplefix.FixMessage, msg_type: str) -> None:
        cfg = self.config
        sender = _get(msg, 49)
        heartbeat = _int(_get(msg, 108))
        seq = _int(_get(msg, 34))
        password = msg.get(554) or b""
        if msg_type != "A":
            return self._refuse_logon(msg, f"first message must be Logon (35=A), got 35={msg_type}")
        if sender not in cfg.allowed_clients:
            return self._refuse_logon(msg, f"unknown SenderCompID(49) {sender!r}")
        if _get(msg, 56) != cfg.sender_comp_id:
            return self._refuse_logon(msg, f"TargetCompID(56) must be {cfg.sender_comp_id!r}")
        if not hmac.compare_digest(password, cfg.password.encode()):
            return self._refuse_logon(msg, "invalid or missing Password(554)")
        if _get(msg, 98) != "0":
            return self._refuse_logon(msg, "EncryptMethod(98) must be 0 (none)")
        if not heartbeat:
            return self._refuse_logon(msg, "HeartBtInt(108) must be a positive integer")
        if not seq:
            return self._refuse_logon(msg, "MsgSeqNum(34) missing or not a positive integer")
        self.client = sender
        reset = _get(msg, 141) == "Y"
        self._next_in, self._next_out = (1, 1) if reset else self._store.seqnums(sender)
        if seq < self._next_in:
            return self._terminate(f"MsgSeqNum too low, expecting {self._next_in} but received {seq}")
        self.heartbeat_s = cfg.heartbeat_s or heartbeat
        self.logged_on = True
        if seq == self._next_in:
            self._next_in += 1
        self._persist()
        self._emit("A", [(98, 0), (108, self.heartbeat_s), (141, "Y" if reset else None)])
        if seq >= self._next_in:
            self._request_resend(seq)
        self._app.on_logon(self)
        return None

    def _request_resend(self, seq: int) -> None:
        """Ask for everything from the expected number on, once per gap."""
        if self._resend_until is not None and self._next_in <= self._resend_until:
            self._resend_until = max(self._resend_until, seq)  # 16=0 already covers it
            return
        self._resend_until = seq
        self._emit("2", [(7, self._next_in), (16, 0)])

    def _on_sequence_reset(self, msg: simplefix.FixMessage, seq: int, *, gap_fill: bool) -> None:
        new = _int(_get(msg, 36))
        if new is None:
            self._reject(seq, "Required tag missing: NewSeqNo(36)", 36, "4",
                         REJECT_REQUIRED_TAG_MISSING)
        elif new <= (seq if gap_fill else self._next_in - 1):
            self._reject(seq, f"attempt to lower sequence number, invalid value NewSeqNo(36)={new}",
                         36, "4", REJECT_VALUE_OUT_OF_RANGE)
        else:
            self._next_in = new
            self._persist()

    def _on_resend_request(self, msg: simplefix.FixMessage, seq: int) -> None:
        begin, end = _int(_get(msg, 7)), _int(_get(msg, 16))
        if begin is None or end is None:
            tag = 7 if begin is None else 16
            self._reject(seq, f"Required tag missing: {_name(tag)}", tag, "2",
                         REJECT_REQUIRED_TAG_MISSING)
            return
        assert self.client is not None
        last = self._next_out - 1
        begin, end = max(begin, 1), last if end == 0 or end > last else end
        stored = dict(self._store.sent(self.client, begin, end)) if begin <= end else {}
        gap_start: int | None = None
        for s in range(begin, end + 1):
            old = self._decode_stored(stored.get(s))
            if old is None or _get(old, 35) in _ADMIN_TYPES:
                gap_start = s if gap_start is None else gap_start
                continue
            if gap_start is not None:
                self._gap_fill(gap_start, s)
                gap_start = None
            self._queue(self._encode(_get(old, 35) or "", _body(old), s,
                                     orig_sending_time=old.get(52)))
        if gap_start is not None:
            self._gap_fill(gap_start, end + 1)

    @staticmethod
    def _decode_stored(raw: bytes | None) -> simplefix.FixMessage | None:
        if raw is None:
            return None
        parser = simplefix.FixParser()
        parser.append_buffer(raw)
        return parser.get_message()

    def _gap_fill(self, seq: int, new_seq: int) -> None:
        now = _format_utc_ns(int(self._clock() * 1e9)).encode()
        self._queue(self._encode("4", [(123, "Y"), (36, new_seq)], seq, orig_sending_time=now))

    def _on_logout(self) -> None:
        if not self._logout_sent:
            self._emit("5", [])
            self._logout_sent = True
        self._close()

    # -- application messages ---------------------------------------------------------

    def _on_application(self, msg: simplefix.FixMessage, seq: int, msg_type: str) -> None:
        now, window, limit = self._clock(), self._app_times, self.config.max_msgs_per_s
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= limit:
            self._emit("j", _body(business_reject(
                seq, msg_type, f"throttle: more than {limit:g} messages/s",
                reason=BUSINESS_REJECT_OTHER, ref_id=_get(msg, 11))))
            return
        window.append(now)
        if msg_type not in ("D", "F", "G"):
            self._emit("j", _body(business_reject(
                seq, msg_type, f"Unsupported Message Type {msg_type}",
                reason=BUSINESS_REJECT_UNSUPPORTED_MSG_TYPE, ref_id=_get(msg, 11))))
            return
        try:
            if msg_type == "D":
                self._app.on_new_order(self, self._parse_new_order(msg))
            elif msg_type == "F":
                self._app.on_cancel(self, self._parse_cancel(msg))
            else:
                self._app.on_replace(self, self._parse_replace(msg))
        except _FieldError as err:
            self._reject(seq, err.text, err.tag, msg_type, err.reason)

    def _parse_new_order(self, msg: simplefix.FixMessage) -> NewOrder:
        cl_ord_id, symbol, side = _required(msg, 11), self._symbol(msg), _side(msg)
        ns = _transact_time(msg)
        qty, ord_type = _qty(msg), _ord_type(msg)
        horizon = _positive(msg, HORIZON_TAG) if msg.get(HORIZON_TAG) is not None else None
        return NewOrder(cl_ord_id, symbol, side, qty, ord_type, _price(msg, ord_type), ns,
                        _get(msg, 1), msg, horizon)

    def _parse_cancel(self, msg: simplefix.FixMessage) -> CancelRequest:
        cl_ord_id, orig, symbol = _required(msg, 11), _required(msg, 41), self._symbol(msg)
        side = _side(msg)
        _transact_time(msg)
        return CancelRequest(cl_ord_id, orig, symbol, side)

    def _parse_replace(self, msg: simplefix.FixMessage) -> ReplaceRequest:
        cl_ord_id, orig, symbol = _required(msg, 11), _required(msg, 41), self._symbol(msg)
        side = _side(msg)
        _transact_time(msg)
        qty, ord_type = _qty(msg), _ord_type(msg)
        return ReplaceRequest(cl_ord_id, orig, symbol, side, qty, ord_type, _price(msg, ord_type))

    def _symbol(self, msg: simplefix.FixMessage) -> str:
        symbol = _required(msg, 55)
        if self.config.symbols and symbol not in self.config.symbols:
            raise _FieldError(55, REJECT_VALUE_OUT_OF_RANGE, f"unknown symbol {symbol}")
        return symbol


def _required(msg: simplefix.FixMessage, tag: int) -> str:
    value = _get(msg, tag)
    if not value:
        raise _FieldError(tag, REJECT_REQUIRED_TAG_MISSING, f"Required tag missing: {_name(tag)}")
    return value


def _side(msg: simplefix.FixMessage) -> int:
    side = _required(msg, 54)
    if side not in FIX_TO_SIDE:
        raise _FieldError(54, REJECT_VALUE_OUT_OF_RANGE, "Value is incorrect (out of range) for "
                          f"this tag: Side(54)={side}; supported: 1 (buy), 2 (sell)")
    return FIX_TO_SIDE[side]


def _ord_type(msg: simplefix.FixMessage) -> str:
    ord_type = _required(msg, 40)
    if ord_type not in (ORD_TYPE_MARKET, ORD_TYPE_LIMIT):
        raise _FieldError(40, REJECT_VALUE_OUT_OF_RANGE, "Value is incorrect (out of range) for "
                          f"this tag: OrdType(40)={ord_type}; supported: 1 (market), 2 (limit)")
    return ord_type


def _positive(msg: simplefix.FixMessage, tag: int) -> float:
    text = _required(msg, tag)
    try:
        value = float(text)
    except ValueError:
        raise _FieldError(tag, REJECT_INCORRECT_FORMAT,
                          f"Incorrect data format for value: {_name(tag)}={text}") from None
    if not (math.isfinite(value) and value > 0):
        raise _FieldError(tag, REJECT_VALUE_OUT_OF_RANGE, "Value is incorrect (out of range) for "
                          f"this tag: {_name(tag)}={text} must be a positive number")
    return value


def _qty(msg: simplefix.FixMessage) -> float:
    return _positive(msg, 38)


def _price(msg: simplefix.FixMessage, ord_type: str) -> float | None:
    return _positive(msg, 44) if ord_type == ORD_TYPE_LIMIT else None


def _transact_time(msg: simplefix.FixMessage) -> int:
    text = _required(msg, 60)
    try:
        return _parse_utc_ns(text)
    except ValueError:
        raise _FieldError(60, REJECT_INCORRECT_FORMAT, "Incorrect data format for value: "
                          f"TransactTime(60)={text}, expected YYYYMMDD-HH:MM:SS[.sss]") from None
