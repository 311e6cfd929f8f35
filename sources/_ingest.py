"""One way in per source: :func:`ingest` reads a source's file and cleanses it by that source's
rules; :func:`read` and :func:`cleanse` are its two halves (the Dagster graph keeps the raw and
the cleansed tables as separate assets, so it calls them one after the other).

Everything outside ``sources/`` that needs market data from a file — the CLI, the Dagster
assets, the stress stage, the replays — goes through these functions and gets cleansed frames;
``tests/test_layering.py`` holds them to it.

=============  =======================================================  ======================
source         path                                                     tables
=============  =======================================================  ======================
``lobster``    zip, folder, one CSV of a pair (``part``: ``AMZN_...``)  quotes, trades, (depth)
``bitmex``     the 10-level snapshot file or its folder (``trades``)    quotes, depth, trades
``daily-bars`` the survivorship-free S&P 500 tarball                    daily_bars
``index``      the data folder or one index file (``symbol``)           daily_bars
``landing``    a landing folder (``tables``)                            what the folder holds
=============  =======================================================  ======================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pandas as pd

from validation.cleansing import CleanseConfig, cleanse_market
from validation.contracts import ContractError
from validation.quarantine import CleanseResult, cleanse_contract, concat_quarantine

__all__ = ["BITMEX_BOOK", "BITMEX_TRADES", "SOURCES", "Ingested", "cleanse", "ingest",
           "landing_tables", "parts", "read", "read_membership"]

SOURCES: Final = ("lobster", "bitmex", "daily-bars", "index", "landing")
"""The sources :func:`ingest` knows."""

BITMEX_BOOK: Final = "bitmex_2020-03-10_orderbook10_snapshots.csv.gz"
BITMEX_TRADES: Final = "bitmex_2020-03-10_trades.csv.gz"
"""File names of the BitMEX sample (``crypto/`` of the shared data)."""

_MARKET: Final = ("quotes", "trades", "depth")
_CONFIG: Final = {"lobster": CleanseConfig(), "bitmex": CleanseConfig(calendar=None),
                  "synth": CleanseConfig()}
"""Market-data rules per source: XNYS sessions for LOBSTER and the synthetic market, none for
BitMEX (a 24-hour venue)."""


@dataclass(frozen=True)
class Ingested:
    """What one :func:`ingest` call produced: a cleansing result per table, plus what the
    source carries beside its tables (LOBSTER's ``halts``, its day's symbol, date, depth and
    event counts).

    ``ingested["quotes"]`` is the quotes' :class:`validation.quarantine.CleanseResult`;
    :meth:`clean` its clean rows.
    """

    source: str
    path: str
    results: Mapping[str, CleanseResult]
    part: str | None = None
    extras: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    meta: Mapping[str, object] = field(default_factory=dict)

    def __getitem__(self, table: str) -> CleanseResult:
        if table not in self.results:
            raise KeyError(f"{self.source} {self.path}: no table {table!r}; it has "
                           f"{', '.join(self.results) or '(none)'}")
        return self.results[table]

    @property
    def tables(self) -> list[str]:
        return list(self.results)

    def clean(self, table: str) -> pd.DataFrame:
        """The clean rows of ``table``."""
        return self[table].clean


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ContractError(f"unknown source {source!r}; choose one of: {', '.join(SOURCES)}")


def cleanse(source: str, table: str, raw: pd.DataFrame, *, origin: str) -> CleanseResult:
    """Cleanse ``raw`` rows of ``table`` read from ``source`` by that source's rules.

    Market tables (quotes, trades, depth) get the market rules of
    :func:`validation.cleansing.cleanse_market` with the source's session calendar; every other
    table its contract (:func:`validation.cleansing.cleanse_contract`). ``origin`` names the
    file (or asset) in each quarantine row.
    """
    if table in _MARKET:
        return cleanse_market(table, raw, source=origin,
                              config=_CONFIG.get(source, CleanseConfig()))
    return cleanse_contract(table, raw, source=origin)


def parts(source: str, path: str | Path) -> list[str | None]:
    """The parts :func:`ingest` can take from ``path``: LOBSTER's symbol-days at each depth
    (``AMZN_2012-06-21_1``), ``[None]`` for a source that is one part."""
    _check_source(source)
    if source != "lobster":
        return [None]
    from sources._lobster_files import _locate, day_key

    return [day_key(p.symbol, p.date, p.levels) for p in _locate(path)]


def _bitmex_files(path: Path, trades: str | Path | None) -> tuple[Path, Path]:
    book = path / BITMEX_BOOK if path.is_dir() else path
    trades_path = Path(trades) if trades else book.parent / BITMEX_TRADES
    for f in (book, trades_path):
        if not f.is_file():
            raise ContractError(f"{f}: no such file")
    return book, trades_path


def _lobster_day(path: str | Path, part: str | None, latency_ns: int | None):
    from sources.lobster import DEFAULT_LATENCY_NS, read_lobster

    days = read_lobster(path, latency_ns=DEFAULT_LATENCY_NS if latency_ns is None
                        else latency_ns)
    if part is None:
        if len(days) != 1:
            raise ContractError(f"{path}: holds {len(days)} LOBSTER symbol-days "
                                f"({', '.join(d.key for d in days)}); name one as part")
        return days[0]
    for d in days:
        if d.key == part:
            return d
    raise ContractError(f"{path}: no LOBSTER symbol-day {part!r}; it holds "
                        f"{', '.join(d.key for d in days) or '(none)'}")


def read(source: str, path: str | Path, *, part: str | None = None,
         latency_ns: int | None = None, trades: str | Path | None = None
         ) -> dict[str, pd.DataFrame]:
    """The raw tables of a market-data source (``lobster``: quotes, trades, halts and, at depth
    N > 1, depth; ``bitmex``: quotes, depth, trades), before :func:`cleanse`.

    ``latency_ns`` is the feed latency (``available_at = ts + latency_ns``; default the
    source's). The daily-bars, index and landing readers check rows as they parse them: use
    :func:`ingest` for those.
    """
    _check_source(source)
    if source == "lobster":
        day = _lobster_day(path, part, latency_ns)
        out = {"quotes": day.quotes, "trades": day.trades, "halts": day.halts}
        if day.depth is not None:
            out["depth"] = day.depth
        return out
    if source == "bitmex":
        from sources.bitmex import BITMEX_LATENCY_NS, read_bitmex_book, read_bitmex_trades

        book, trades_path = _bitmex_files(Path(path), trades)
        lat = BITMEX_LATENCY_NS if latency_ns is None else latency_ns
        depth, quotes = read_bitmex_book(book, latency_ns=lat)
        return {"quotes": quotes, "depth": depth,
                "trades": read_bitmex_trades(trades_path, latency_ns=lat)}
    raise ContractError(f"source {source!r} is read and checked in one pass: use ingest()")


def read_membership(spans: str | Path, changes: str | Path | None = None) -> pd.DataFrame:
    """S&P 500 membership spans with their exit reasons (raw: the ``membership`` contract is
    checked by :func:`cleanse`)."""
    from sources.sp500 import read_membership as _read

    return _read(spans, changes)


def landing_tables(folder: str | Path) -> list[str]:
    """The contract tables a landing folder holds (by its naming convention)."""
    from sources.landing import discover_landing

    return list(discover_landing(folder))


def _index(path: Path, symbols: Sequence[str] | None) -> CleanseResult:
    from sources.index_daily import INDEX_FILES, read_index_daily

    if path.is_file():
        if not symbols or len(symbols) != 1:
            raise ContractError(f"{path}: name the index symbol of this file (symbol=...)")
        return read_index_daily(path, symbols[0])
    res = [read_index_daily(path / INDEX_FILES[s], s) for s in (symbols or list(INDEX_FILES))]
    if len(res) == 1:
        return res[0]
    return CleanseResult(table="daily_bars", source=", ".join(r.source for r in res),
                         rows_in=sum(r.rows_in for r in res),
                         clean=pd.concat([r.clean for r in res], ignore_index=True),
                         quarantine=concat_quarantine([r.quarantine for r in res]))


def ingest(source: str, path: str | Path, *, part: str | None = None,
           latency_ns: int | None = None, trades: str | Path | None = None,
           symbols: Sequence[str] | None = None, tables: Sequence[str] | None = None,
           config: CleanseConfig | None = None) -> Ingested:
    """Read ``path`` as ``source`` and cleanse every table: the one way in (module docstring).

    Parameters
    ----------
    source : {"lobster", "bitmex", "daily-bars", "index", "landing"}
    path : str or pathlib.Path
        File or folder (module docstring).
    part : str, optional
        LOBSTER: the symbol-day (``AMZN_2012-06-21_1``) when ``path`` holds several
        (:func:`parts`).
    latency_ns : int, optional
        Feed latency of LOBSTER / BitMEX (default the source's: 1 ms, 10 ms).
    trades : path, optional
        BitMEX trades file (default: beside the book file).
    symbols : sequence of str, optional
        Index: the symbols (default all of ``sources.index_daily.INDEX_FILES``).
    tables : sequence of str, optional
        Landing: only these tables.
    config : validation.cleansing.CleanseConfig, optional
        Landing: the market-data rules (session calendar, ``epoch_unit`` of numeric
        timestamps); default ``CleanseConfig()``.

    Returns
    -------
    Ingested
        Every result reconciles: ``rows_in == len(clean) + len(quarantine)``.

    Raises
    ------
    validation.contracts.ContractError
        Naming the file: missing, unreadable, or of the wrong shape.
    """
    _check_source(source)
    p = Path(path)
    if source == "lobster":
        day = _lobster_day(p, part, latency_ns)
        raw = {"quotes": day.quotes, "trades": day.trades}
        if day.depth is not None:
            raw["depth"] = day.depth
        return Ingested(
            source=source, path=str(path), part=day.key,
            results={t: cleanse(source, t, df, origin=f"{day.source}[{t}]")
                     for t, df in raw.items()},
            extras={"halts": day.halts},
            meta={"key": day.key, "symbol": day.symbol, "date": day.date, "levels": day.levels,
                  "events": day.n_events, "type_counts": day.type_counts,
                  "source": day.source})
    if source == "bitmex":
        book, trades_path = _bitmex_files(p, trades)
        raw = read(source, book, latency_ns=latency_ns, trades=trades_path)
        files = {"quotes": book, "depth": book, "trades": trades_path}
        return Ingested(source=source, path=str(path),
                        results={t: cleanse(source, t, df, origin=str(files[t]))
                                 for t, df in raw.items()},
                        meta={"book": str(book), "trades": str(trades_path)})
    if source == "daily-bars":
        from sources.sp500 import read_daily_bars

        return Ingested(source=source, path=str(path),
                        results={"daily_bars": read_daily_bars(p).cleanse})
    if source == "index":
        return Ingested(source=source, path=str(path), results={"daily_bars": _index(p, symbols)})
    from sources.landing import ingest_landing

    return Ingested(source=source, path=str(path),
                    results=ingest_landing(p, tables=list(tables) if tables else None,
                                           config=config))
