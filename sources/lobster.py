"""LOBSTER reader: message + order-book CSV pairs into quotes, trades, depth and halts.

LOBSTER (lobsterdata.com) ships one pair of headerless CSV files per symbol-day and book depth N::

    SYMBOL_DATE_START_END_message_N.csv     time, type, order_id, size, price, direction
    SYMBOL_DATE_START_END_orderbook_N.csv   ask_px_1, ask_sz_1, bid_px_1, bid_sz_1, ..., level N

Row i of the message file is the event that produced row i of the order-book file. A third-party
suffix after N (``..._orderbook_10_first999.csv``) is tolerated. Symbol, date and N come from the
file name. :func:`read_lobster` accepts a zip, a folder (CSV pairs and zips in it), one CSV of a
pair (its partner is found beside it) or a ``(message, orderbook)`` tuple, and returns one
:class:`LobsterDay` per pair; :func:`ingest_lobster` also cleanses each table
(:func:`validation.cleansing.cleanse_market`).

Conventions
-----------
* ``time`` is seconds after midnight, New York local time, with up to 9 decimals. It is parsed as
  float64 (correctly rounded) and ``round(time * 1e9)`` gives the nanosecond exactly: at 86,400 s a
  float64 resolves 1.5e-11 s, far below 0.5 ns. Local midnight is converted to UTC with the
  America/New_York offset in force at noon of the date (DST changes happen at 02:00, before any
  LOBSTER window). ``available_at = ts + latency_ns`` (default :data:`DEFAULT_LATENCY_NS`, 1 ms: a
  direct exchange feed seen from a co-located or nearby consumer).
* Prices are USD x 10000 in the files and USD here; sizes are shares (float64).
* ``quotes``: level 1 of the order book, one row per event. An empty side (``+/-9999999999``)
  becomes a null price and size 0, which cleansing quarantines as ``empty_book_side``.
* ``trades``: execution messages, type 4 (visible) and 5 (hidden); ``aggressor = -direction``
  (the execution of a sell limit order, direction -1, is a buyer-initiated trade, +1). For a
  hidden execution LOBSTER's direction is the hidden order's side, so the same rule applies.
* ``depth`` (N > 1 only): one row per (event, level); an empty level has a null price and size 0.
* ``halts``: type-7 messages, ``kind`` = ``halt`` (price -1), ``quote_resume`` (0) or
  ``trade_resume`` (1).
* The raw quotes, trades and depth carry four identity columns next to the contract columns,
  which cleansing uses for ``duplicate`` and drops from the clean tables: ``event`` (message
  type), ``order_id``, ``hidden_seq`` and ``copy_of``, the first message row whose message line
  *and* order-book line equal this row's. So an event is a repeat in quotes, trades and depth
  alike: not because level 1 or the message alone matches (two equal executions of one order in
  one nanosecond differ in the book). LOBSTER writes every hidden execution with order id 0 and
  it leaves the visible book as it was, so two hidden executions of equal size at one nanosecond
  are identical lines (48 in the AMZN sample, 3 in the AAPL one, all real): ``hidden_seq``
  numbers the hidden executions of one timestamp (0, 1, ...) so that they are kept, and a
  re-sent hidden execution is kept by every table (every other re-sent event is a duplicate).
* Every raw quotes, trades and depth row carries ``_src_row``
  (:data:`validation.cleansing.SOURCE_ROW`): the 0-based data row of the message file (= the row
  of the order-book file) it came from. The quarantine ``row`` of all three tables is that file
  row, so ``row`` 1006 of the trades quarantine is line 1007 of the message file.
* A value that does not parse (``abc`` in a price) does not fail the read: the file is re-read as
  text and the bad value is carried, as the original string, into the raw table, where cleansing
  quarantines the row under ``type``. An integer field is unreadable too when it is not finite,
  not integral, or out of range (``|v| > 2**53``, or outside int8 for type and direction); a
  time when it is not finite or ``|time| >= 1e9`` s. Where the text would still convert in
  cleansing (``1e30``, ``2205000.5`` in a price), the reader says why in the reserved
  ``_read_error`` column (:data:`validation.cleansing.READ_ERROR`), which fails rule ``type``.
* A message whose type is unreadable (``x``, ``4.5``) or not a LOBSTER type cannot be classified:
  it might be an execution, so it is put in the raw trades table with a ``_read_error``
  (``message type unreadable: 'x'``) and quarantined there under ``type``; its position is also
  listed in :attr:`LobsterDay.bad_type_rows`, and its quote (and depth) row is kept.
* :attr:`LobsterDay.key` (``SYMBOL_DATE_N``, e.g. ``AMZN_2012-06-21_1``) names a symbol-day at
  one book depth: LOBSTER ships the same symbol-day at several depths (``_1``, ``_5``, ``_10``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

from sources._lobster_csv import _Col, _join_why, _read
from sources._lobster_files import FILE_NAME, _locate, _Pair, day_key, discover_lobster
from validation.cleansing import READ_ERROR, SOURCE_ROW, CleanseConfig, cleanse_market, duplicates
from validation.contracts import ContractError
from validation.quarantine import CleanseResult

__all__ = ["DEFAULT_LATENCY_NS", "EMPTY_ASK", "EMPTY_BID", "FILE_NAME", "HALT_KINDS", "KNOWN_TYPES",
           "MESSAGE_COLUMNS", "NEW_YORK", "PRICE_SCALE", "LobsterDay", "LobsterIngest", "day_key",
           "discover_lobster", "ingest_lobster", "read_lobster"]

DEFAULT_LATENCY_NS: Final = 1_000_000
"""Default feed latency: ``available_at = ts + 1 ms``."""

PRICE_SCALE: Final = 10_000
EMPTY_ASK: Final = 9_999_999_999
EMPTY_BID: Final = -9_999_999_999
NEW_YORK: Final = "America/New_York"

MESSAGE_COLUMNS: Final = ("time", "type", "order_id", "size", "price", "direction")
_MESSAGE_TYPES: Final = {"time": pa.float64(), "type": pa.int8(), "order_id": pa.int64(),
                         "size": pa.int64(), "price": pa.int64(), "direction": pa.int8()}
KNOWN_TYPES: Final = (1, 2, 3, 4, 5, 7)
HALT_KINDS: Final = {-1: "halt", 0: "quote_resume", 1: "trade_resume"}



# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class LobsterDay:
    """One LOBSTER symbol-day, read but not cleansed.

    Attributes
    ----------
    symbol, date, levels : str, datetime.date, int
        From the file name.
    source : str
        The message file (``archive.zip!member`` for a zip member).
    n_events : int
        Rows of the message file (= rows of the order-book file).
    type_counts : dict of int to int
        Messages per LOBSTER type (readable types only).
    quotes, trades : pandas.DataFrame
        Raw tables: contract columns plus ``event``, ``order_id``, ``hidden_seq``, ``copy_of`` and
        ``_src_row`` (the message-file row), and ``_read_error`` where a row could not be read.
    depth : pandas.DataFrame or None
        Long-format book when ``levels > 1``, else None.
    halts : pandas.DataFrame
        ``ts, available_at, symbol, kind, code``: one row per type-7 message.
    bad_type_rows : numpy.ndarray
        Message rows whose type is unreadable or not a LOBSTER type (they are in ``trades``).
    """

    symbol: str
    date: dt.date
    levels: int
    source: str
    n_events: int
    type_counts: dict[int, int]
    quotes: pd.DataFrame
    trades: pd.DataFrame
    depth: pd.DataFrame | None
    halts: pd.DataFrame
    bad_type_rows: np.ndarray

    @property
    def key(self) -> str:
        """``SYMBOL_DATE_N`` (``AMZN_2012-06-21_1``): the symbol-day at this book depth."""
        return day_key(self.symbol, self.date, self.levels)


@dataclass(frozen=True)
class LobsterIngest:
    """One symbol-day, read and cleansed: ``results`` maps quotes/trades/(depth) to a result."""

    day: LobsterDay
    results: dict[str, CleanseResult]

    @property
    def key(self) -> str:
        """``SYMBOL_DATE_N`` (``LobsterDay.key``)."""
        return self.day.key

    @property
    def symbol(self) -> str:
        """Ticker, from the file name."""
        return self.day.symbol

    @property
    def date(self) -> dt.date:
        """Trading date, from the file name."""
        return self.day.date

    @property
    def levels(self) -> int:
        """Book depth N, from the file name."""
        return self.day.levels

    @property
    def n_events(self) -> int:
        """Rows of the message file."""
        return self.day.n_events

    @property
    def halts(self) -> pd.DataFrame:
        """Type-7 messages (``LobsterDay.halts``)."""
        return self.day.halts

    def summary(self) -> dict[str, object]:
        """JSON-ready counts: events, types, halts and each table's cleansing summary."""
        return {"key": self.key, "symbol": self.symbol, "date": str(self.date),
                "levels": self.levels,
                "events": self.n_events, "type_counts": self.day.type_counts,
                "halts": len(self.halts), "bad_type_rows": len(self.day.bad_type_rows),
                "tables": {t: r.summary() for t, r in self.results.items()}}


# ----------------------------------------------------------------------------- reading
def _midnight_utc_ns(date: dt.date) -> int:
    noon = pd.Timestamp(date.year, date.month, date.day, 12).tz_localize(NEW_YORK)
    return int(noon.value) - 12 * 3600 * 1_000_000_000


def _ts(ns: np.ndarray, col: _Col) -> pd.DatetimeIndex | np.ndarray:
    idx = pd.DatetimeIndex(ns.view("M8[ns]"), tz="UTC")
    return idx if col.bad is None else col.out(idx.astype(object).to_numpy())


def _price(col: _Col, empty: int | None = None) -> np.ndarray:
    v = col.values
    px = v / PRICE_SCALE
    return col.out(px if empty is None else np.where(v == empty, np.nan, px))


def _hidden_seq(msg: dict[str, _Col]) -> np.ndarray:
    """For the k-th hidden execution (0-based) at one timestamp, k; 0 for every other message."""
    typ, t = msg["type"].values, msg["time"].values
    seq = np.zeros(len(typ), dtype=np.int64)
    hid = np.flatnonzero(typ == 5)
    if len(hid) < 2:
        return seq
    start = np.r_[True, t[hid[1:]] != t[hid[:-1]]]
    run = np.cumsum(start) - 1
    seq[hid] = np.arange(len(hid)) - np.flatnonzero(start)[run]
    return seq


def _copy_of(ts_ns: np.ndarray, msg: dict[str, _Col], book: dict[str, _Col]) -> np.ndarray:
    """For each event, the first message row whose message line and order-book line equal its
    own (its own row when none does): what makes an event a repeat, the same for every table."""
    keys = [ts_ns, *(c.out(c.values) for c in (*msg.values(), *book.values()))]
    rows = np.arange(len(ts_ns), dtype=np.int64)
    rep, orig = duplicates(keys, rows)
    rows[rep] = orig
    return rows


def _symbol(symbol: str, n: int) -> pd.api.extensions.ExtensionArray:
    return pd.array(pa.repeat(pa.scalar(symbol), n), dtype="string[pyarrow]")


def _read_pair(pair: _Pair, latency_ns: int) -> LobsterDay:
    msg_name = pair.message[0]
    msg = _read(pair.message, "message", _MESSAGE_TYPES)
    n_lv = pair.levels
    book_types = {f"{s}_{i}": pa.int64() for i in range(1, n_lv + 1)
                  for s in ("ask_px", "ask_sz", "bid_px", "bid_sz")}
    book = _read(pair.orderbook, "orderbook", book_types)
    n = len(msg["time"].values)
    if len(book["ask_px_1"].values) != n:
        raise ContractError(
            f"{msg_name}: {n} messages but {len(book['ask_px_1'].values)} order-book rows in "
            f"{pair.orderbook[0]}; row i of one must match row i of the other"
        )
    with np.errstate(invalid="ignore"):
        t_ns = np.rint(msg["time"].values * 1e9)
    t_ns = np.where(np.isfinite(t_ns), t_ns, 0).astype(np.int64)
    ts_ns = _midnight_utc_ns(pair.date) + t_ns
    ts = _ts(ts_ns, msg["time"])
    av = _ts(ts_ns + latency_ns, msg["time"])
    typ = msg["type"].values
    extras = {"event": msg["type"].out(typ), "order_id": msg["order_id"].out(msg["order_id"].values),
              "hidden_seq": _hidden_seq(msg), "copy_of": _copy_of(ts_ns, msg, book)}
    why_time = msg["time"].why("message time")

    def side(lv: int) -> dict[str, np.ndarray]:
        ask, bid = book[f"ask_px_{lv}"], book[f"bid_px_{lv}"]
        ask_sz, bid_sz = book[f"ask_sz_{lv}"], book[f"bid_sz_{lv}"]
        a_empty, b_empty = ask.values == EMPTY_ASK, bid.values == EMPTY_BID
        return {"bid_px": _price(bid, EMPTY_BID),
                "bid_sz": bid_sz.out(np.where(b_empty, 0.0, bid_sz.values.astype(np.float64))),
                "ask_px": _price(ask, EMPTY_ASK),
                "ask_sz": ask_sz.out(np.where(a_empty, 0.0, ask_sz.values.astype(np.float64)))}

    def book_why(lv: int) -> np.ndarray | None:
        return _join_why([why_time, *(book[f"{c}_{lv}"].why(f"orderbook {c}_{lv}")
                                      for c in ("ask_px", "ask_sz", "bid_px", "bid_sz"))], n)

    rows = np.arange(n, dtype=np.int64)
    sym = _symbol(pair.symbol, n)
    quotes = pd.DataFrame({"ts": ts, "available_at": av, "symbol": sym, **side(1), **extras,
                           SOURCE_ROW: rows}, copy=False)
    _add_why(quotes, book_why(1))

    # executions, and every message whose type cannot be read: it might be an execution
    ok_type = np.isin(typ, KNOWN_TYPES)
    ex = np.flatnonzero((typ == 4) | (typ == 5) | ~ok_type)
    d = msg["direction"]
    trades = pd.DataFrame({
        "ts": ts[ex], "available_at": av[ex], "symbol": _symbol(pair.symbol, len(ex)),
        "px": _price(msg["price"])[ex],
        "qty": msg["size"].out(msg["size"].values.astype(np.float64))[ex],
        "aggressor": d.out(-np.nan_to_num(d.values).astype(np.int64))[ex],
        **{k: v[ex] for k, v in extras.items()},
        SOURCE_ROW: ex,
    }, copy=False)
    why_trade = _join_why([_type_why(msg["type"], ok_type), why_time,
                           msg["price"].why("message price"), msg["size"].why("message size"),
                           d.why("message direction", nonint=False)], n)
    _add_why(trades, None if why_trade is None else why_trade[ex])

    depth = None
    if n_lv > 1:
        per = [side(lv) for lv in range(1, n_lv + 1)]
        depth = pd.DataFrame({
            "ts": ts.repeat(n_lv), "available_at": av.repeat(n_lv),
            "symbol": _symbol(pair.symbol, n * n_lv),
            "level": np.tile(np.arange(1, n_lv + 1, dtype=np.int64), n),
            **{k: np.stack([p[k] for p in per], axis=1).ravel() for k in per[0]},
            **{k: np.repeat(v, n_lv) for k, v in extras.items()},
            SOURCE_ROW: np.repeat(rows, n_lv),
        }, copy=False)
        whys = [book_why(lv) for lv in range(1, n_lv + 1)]
        if any(w is not None for w in whys):
            none = np.full(n, None, dtype=object)
            _add_why(depth, np.stack([none if w is None else w for w in whys], axis=1).ravel())

    h = np.flatnonzero(typ == 7)
    code = msg["price"].values[h]
    halts = pd.DataFrame({
        "ts": ts[h], "available_at": av[h], "symbol": _symbol(pair.symbol, len(h)),
        "kind": pd.array([HALT_KINDS.get(int(c), "unknown") if c == c else "unknown" for c in code],
                         dtype="string[pyarrow]"),
        "code": code,
    })

    counts = np.bincount(typ[ok_type].astype(np.int64), minlength=8)
    return LobsterDay(
        symbol=pair.symbol, date=pair.date, levels=n_lv, source=msg_name, n_events=n,
        type_counts={int(k): int(counts[k]) for k in np.flatnonzero(counts)},
        quotes=quotes, trades=trades, depth=depth, halts=halts,
        bad_type_rows=np.flatnonzero(~ok_type),
    )


def _type_why(col: _Col, ok_type: np.ndarray) -> np.ndarray | None:
    """Reasons for the messages whose type is unreadable or not a LOBSTER type."""
    if ok_type.all():
        return None
    out = np.full(len(ok_type), None, dtype=object)
    for i in np.flatnonzero(~ok_type):  # bad-type rows only
        if col.bad is not None and col.bad[i]:
            out[i] = f"message type unreadable: {col.raw[i]!r}"  # type: ignore[index]
        else:
            out[i] = (f"message type {int(col.values[i])} is not a LOBSTER type "
                      f"({', '.join(map(str, KNOWN_TYPES))})")
    return out


def _add_why(df: pd.DataFrame, why: np.ndarray | None) -> None:
    """Add the ``_read_error`` column when some row has a reason."""
    if why is not None:
        df[READ_ERROR] = pd.array(why, dtype="string[pyarrow]")


def read_lobster(
    path: str | Path | tuple[str | Path, str | Path],
    *,
    latency_ns: int = DEFAULT_LATENCY_NS,
) -> list[LobsterDay]:
    """Read every LOBSTER symbol-day found at ``path``.

    Parameters
    ----------
    path : str, pathlib.Path or tuple of two
        A LOBSTER zip, a folder (CSV pairs and zips in it), one CSV of a pair (the partner is found
        beside it by name) or a ``(message, orderbook)`` tuple. In a folder, a CSV with the same
        bytes as a zip member (the zip unpacked beside it) is read once.
    latency_ns : int, default=DEFAULT_LATENCY_NS
        Feed latency added to ``ts`` to get ``available_at`` (>= 0).

    Returns
    -------
    list of LobsterDay
        One per message/orderbook pair, sorted by symbol, date and levels.

    Raises
    ------
    validation.contracts.ContractError
        When ``latency_ns`` is negative, a file or a zip member cannot be read (a damaged zip,
        bytes that are not UTF-8), has the wrong number of columns, lacks its partner, the two
        files differ in length, ``path`` holds no pair, or a folder holds two different pairs for
        one ``SYMBOL_DATE_N`` (a pair beside a zip with other bytes for it); the message names
        the file (``archive.zip!member`` for a zip member).

    Examples
    --------
    >>> from bestex.settings import require_data_dir
    >>> aapl = require_data_dir() / "lobster"  # doctest: +SKIP
    >>> [d.n_events for d in read_lobster(aapl)]  # doctest: +SKIP
    [999, 57515]
    """
    if latency_ns < 0:
        where = " + ".join(map(str, path)) if isinstance(path, tuple) else str(path)
        raise ContractError(f"{where}: feed latency --latency-ns (latency_ns) = "
                            f"{latency_ns} is negative; available_at must be >= ts")
    return [_read_pair(p, int(latency_ns)) for p in _locate(path)]


def ingest_lobster(
    path: str | Path | tuple[str | Path, str | Path],
    *,
    latency_ns: int = DEFAULT_LATENCY_NS,
    config: CleanseConfig = CleanseConfig(),  # noqa: B008 - frozen, so a shared default is safe
) -> list[LobsterIngest]:
    """Read (:func:`read_lobster`) and cleanse every LOBSTER symbol-day at ``path``.

    Parameters
    ----------
    path : str, pathlib.Path or tuple of two
        As for :func:`read_lobster`.
    latency_ns : int, default=DEFAULT_LATENCY_NS
        Feed latency: ``available_at = ts + latency_ns``.
    config : CleanseConfig, default=CleanseConfig()
        Cleansing rules (XNYS sessions by default).

    Returns
    -------
    list of LobsterIngest
        Per symbol-day, ``results["quotes"]``, ``results["trades"]`` and, when N > 1,
        ``results["depth"]``; each reconciles (``rows_in == clean + quarantined``).
    """
    out = []
    for day in read_lobster(path, latency_ns=latency_ns):
        tables = {"quotes": day.quotes, "trades": day.trades}
        if day.depth is not None:
            tables["depth"] = day.depth
        results = {t: cleanse_market(t, raw, source=f"{day.source}[{t}]", config=config)
                   for t, raw in tables.items()}
        out.append(LobsterIngest(day=day, results=results))
    return out
