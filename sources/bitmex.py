"""BitMEX 10-level book snapshots and trades (XBTUSD, ETHUSD; 2020-03-10) as contract tables.

Files (``data/crypto``, no header; strings are quoted and padded to a fixed width):

* ``bitmex_2020-03-10_orderbook10_snapshots.csv.gz``: ``moment, millis, symbol``, then ask prices
  1-10, ask sizes 1-10, bid prices 1-10, bid sizes 1-10 (43 columns);
* ``bitmex_2020-03-10_trades.csv.gz``: ``symbol, moment, millis, price, size, action, side``.

The padding is NUL bytes, not spaces (a terminal shows them as spaces); both are stripped here.

Time. ``moment`` is a UTC wall-clock second ("2020-03-10 18:25:10") and ``millis`` its millisecond
part: it runs 0-999 in both files (an epoch in ms would be ~1.58e12), and with it each symbol's
timestamps are non-decreasing in file order. So ``ts = moment + millis ms``; a ``millis``
outside 0-999 makes ``ts`` missing and the row is quarantined by the contract. The files carry no
receive time, so ``available_at = ts + latency_ns`` with an assumed feed latency
(:data:`BITMEX_LATENCY_NS`).

Duplicates. A book line repeated verbatim (same symbol, moment, millis and 40 values) is a
re-sent snapshot: its quote row and its 10 depth rows are quarantined as ``duplicate`` (each
raw row carries ``snapshot``, the first file row with the same line; two snapshots that agree
at some levels and differ at others stay apart). Trade lines are different: one aggressive order
that fills several resting orders of equal size prints identical lines in one millisecond (832
of the 10,000 real trades), and the file has no trade id, so a repeated trade line cannot be
told from such a fill. Identical trade lines are numbered (``print_seq``) and kept; a re-sent
trade line that comes after a later print of its symbol is caught as ``out_of_order``.

Units. Prices in USD; sizes in contracts as BitMEX reports them (1 contract = 1 USD for XBTUSD).
Trade ``side`` is the taker's side: "Buy" -> aggressor +1, "Sell" -> -1, anything else 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from sources._io import read_csv
from validation.cleansing import SOURCE_ROW, CleanseConfig, cleanse_market, duplicates
from validation.contracts import ContractError
from validation.quarantine import CleanseResult

BITMEX_LATENCY_NS: Final = 10_000_000
"""Assumed feed latency, 10 ms: exchange match time to the moment a client holds the message
(a websocket feed from BitMEX's AWS eu-west-1 gateway to a nearby client). Not measured: the files
have no receive time. Pass ``latency_ns`` to model a slower feed (BitMEX lagged by seconds during
the crash)."""

LEVELS: Final = 10
_BOOK_SIDES: Final = ("ask_px", "ask_sz", "bid_px", "bid_sz")  # file order, 10 columns each
BOOK_COLUMNS: Final = ["moment", "millis", "symbol"] + [
    f"{name}_{lvl}" for name in _BOOK_SIDES for lvl in range(1, LEVELS + 1)
]
TRADE_COLUMNS: Final = ["symbol", "moment", "millis", "price", "size", "action", "side"]


def _check_latency(path: Path, latency_ns: int) -> None:
    if latency_ns < 0:
        raise ContractError(f"{path}: feed latency --latency-ns (latency_ns) = "
                            f"{latency_ns} is negative; available_at must be >= ts")


def _times(raw: pd.DataFrame, latency_ns: int) -> tuple[pd.Series, pd.Series]:
    """``ts = moment + millis`` (UTC, ns) and ``available_at = ts + latency_ns``."""
    moment = pd.to_datetime(raw["moment"], format="%Y-%m-%d %H:%M:%S", utc=True, errors="coerce")
    millis = pd.to_numeric(raw["millis"], errors="coerce")
    millis = millis.where(millis.between(0, 999) & (millis == np.floor(millis)))
    ts = moment.dt.as_unit("ns") + pd.to_timedelta(millis, unit="ms")
    return ts, ts + pd.Timedelta(latency_ns, unit="ns")


def _read_headerless(path: Path, names: list[str]) -> pd.DataFrame:
    raw = read_csv(path, header=None)
    if raw.shape[1] != len(names):
        raise ContractError(
            f"{path}: expected {len(names)} columns ({', '.join(names[:4])}, ...), "
            f"found {raw.shape[1]}: is this the right BitMEX file?"
        )
    raw.columns = names
    return raw


def _first_row_of_line(raw: pd.DataFrame, ts: pd.Series) -> np.ndarray:
    """For each row, the first row (0-based) whose every value equals its own (its own row when
    none does): the repeats that :func:`validation.cleansing.duplicates` finds."""
    t = np.asarray(ts.dt.as_unit("ns").array.asi8)
    # in time order (stable: file order within a millisecond), so that only rows sharing a ts
    # are compared; the first occurrence is then the first in the file
    rep, orig = duplicates([t, *(raw[c].to_numpy() for c in raw.columns)],
                           np.argsort(t, kind="stable"))
    first = np.arange(len(raw), dtype=np.int64)
    first[rep] = orig
    return first


def _strip(s: pd.Series) -> pd.Series:
    """Drop the padding of a fixed-width string: spaces, and the NUL bytes the files actually use."""
    return s.astype("str").str.strip(" \x00")


def _float(s: pd.Series) -> pd.Series:
    """Numbers as float64 (the contracts' unit); a column holding text is left for the contract to
    coerce, so that each value that is not a number is reported on its own row."""
    return s.astype("float64") if pd.api.types.is_numeric_dtype(s) else s


def read_bitmex_book(
    path: str | Path, *, latency_ns: int = BITMEX_LATENCY_NS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the 10-level snapshot file into raw ``depth`` and ``quotes`` tables.

    Parameters
    ----------
    path : str or pathlib.Path
        ``bitmex_2020-03-10_orderbook10_snapshots.csv.gz``.
    latency_ns : int, default=BITMEX_LATENCY_NS
        Feed latency added to ``ts`` to give ``available_at``, in nanoseconds.

    Returns
    -------
    depth : pandas.DataFrame
        ``depth`` contract columns, one row per (snapshot, level), levels 1-10, snapshot order.
    quotes : pandas.DataFrame
        ``quotes`` contract columns, level 1 of each snapshot.

    Raises
    ------
    validation.contracts.ContractError
        When ``latency_ns`` is negative, or the file cannot be read or does not have 43 columns.

    Notes
    -----
    Values are not checked here (raw tables): :func:`ingest_bitmex` runs the contracts.
    """
    path = Path(path)
    _check_latency(path, latency_ns)
    raw = _read_headerless(path, BOOK_COLUMNS)
    ts, available_at = _times(raw, latency_ns)
    symbol = _strip(raw["symbol"])
    n = len(raw)
    block = {
        name: raw[[f"{name}_{i}" for i in range(1, LEVELS + 1)]].to_numpy().ravel()
        for name in _BOOK_SIDES
    }  # row-major: snapshot by snapshot, levels 1..10 within
    depth = pd.DataFrame(
        {
            "ts": ts.repeat(LEVELS).reset_index(drop=True),
            "available_at": available_at.repeat(LEVELS).reset_index(drop=True),
            "symbol": symbol.repeat(LEVELS).reset_index(drop=True),
            "level": np.tile(np.arange(1, LEVELS + 1, dtype=np.int64), n),
            **{name: _float(pd.Series(values)) for name, values in block.items()},
        }
    )[["ts", "available_at", "symbol", "level", "bid_px", "bid_sz", "ask_px", "ask_sz"]]
    quotes = pd.DataFrame(
        {
            "ts": ts,
            "available_at": available_at,
            "symbol": symbol,
            **{name: _float(raw[f"{name}_1"]) for name in ("bid_px", "bid_sz", "ask_px", "ask_sz")},
        }
    )
    # The feed pushes a snapshot on every book change, so two snapshots in one millisecond may
    # agree at level 1 (or at any one level) and differ deeper. ``snapshot`` is the first file row
    # holding the same line: two snapshots share it only when their whole lines are equal, so the
    # duplicate rule of cleansing quarantines a repeated line (its quote and its 10 levels) and
    # never splits a snapshot. Cleansing drops the column.
    line = _first_row_of_line(raw, ts)
    depth["snapshot"] = np.repeat(line, LEVELS)
    depth[SOURCE_ROW] = np.repeat(np.arange(n, dtype=np.int64), LEVELS)  # quarantine: file rows
    quotes["snapshot"] = line
    return depth, quotes


def read_bitmex_trades(path: str | Path, *, latency_ns: int = BITMEX_LATENCY_NS) -> pd.DataFrame:
    """Read the trades file into a raw ``trades`` table.

    Parameters
    ----------
    path : str or pathlib.Path
        ``bitmex_2020-03-10_trades.csv.gz``.
    latency_ns : int, default=BITMEX_LATENCY_NS
        Feed latency added to ``ts`` to give ``available_at``, in nanoseconds.

    Returns
    -------
    pandas.DataFrame
        ``trades`` contract columns, file order; ``aggressor`` from ``side``
        ("Buy" +1, "Sell" -1, else 0).

    Raises
    ------
    validation.contracts.ContractError
        When ``latency_ns`` is negative, or the file cannot be read or does not have 7 columns.
    """
    path = Path(path)
    _check_latency(path, latency_ns)
    raw = _read_headerless(path, TRADE_COLUMNS)
    ts, available_at = _times(raw, latency_ns)
    side = _strip(raw["side"])
    aggressor = np.select([side == "Buy", side == "Sell"], [1, -1], default=0).astype(np.int64)
    trades = pd.DataFrame(
        {
            "ts": ts,
            "available_at": available_at,
            "symbol": _strip(raw["symbol"]),
            "px": _float(raw["price"]),
            "qty": _float(raw["size"]),
            "aggressor": aggressor,
        }
    )
    # One aggressive order sweeping several equal resting orders prints identical rows at the
    # same millisecond (832 of the 10,000 real trades). They are real fills, not re-sent messages:
    # number them so the duplicate rule of cleansing keeps them. Cleansing drops this column.
    # (The file has no trade id, so a re-sent line looks the same and is kept too: module notes.)
    trades["print_seq"] = trades.groupby(list(trades.columns), sort=False).cumcount()
    return trades


def ingest_bitmex(
    book_path: str | Path, trades_path: str | Path, *, latency_ns: int = BITMEX_LATENCY_NS
) -> dict[str, CleanseResult]:
    """Read both BitMEX files and cleanse ``quotes``, ``depth`` and ``trades``.

    The market rules of ``validation.cleansing`` apply (contract bounds, crossed books,
    duplicates, out-of-order rows, bad ticks, feed gaps), without a session filter. A book line
    repeated verbatim is a ``duplicate`` (its quote and its 10 depth rows); identical trade
    lines are kept as the fills they are (module notes).

    Parameters
    ----------
    book_path : str or pathlib.Path
        The 10-level snapshot file.
    trades_path : str or pathlib.Path
        The trades file.
    latency_ns : int, default=BITMEX_LATENCY_NS
        Feed latency, in nanoseconds (``available_at = ts + latency_ns``).

    Returns
    -------
    dict of str to CleanseResult
        Keys ``"quotes"``, ``"depth"``, ``"trades"``; each reconciles
        (``rows_in == len(clean) + len(quarantine)``); ``source`` is the file path.
    """
    depth, quotes = read_bitmex_book(book_path, latency_ns=latency_ns)
    trades = read_bitmex_trades(trades_path, latency_ns=latency_ns)
    config = CleanseConfig(calendar=None)  # a 24-hour venue: no session filter
    return {
        "quotes": cleanse_market("quotes", quotes, source=str(book_path), config=config),
        "depth": cleanse_market("depth", depth, source=str(book_path), config=config),
        "trades": cleanse_market("trades", trades, source=str(trades_path), config=config),
    }
