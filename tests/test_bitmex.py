"""BitMEX 2020-03-10 book and trades as contract tables.

Real-data facts (from data/README.md and read by eye from the files) are pinned on the shared data,
read once per module; the parsing rules (NUL padding, millis, aggressor, latency) are pinned on
two-row files written to ``tmp_path``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bestex.settings import require_data_dir
from sources.bitmex import (
    BITMEX_LATENCY_NS,
    ingest_bitmex,
    read_bitmex_book,
    read_bitmex_trades,
)
from validation.contracts import ContractError
from validation.quarantine import CleanseResult

BOOK = "crypto/bitmex_2020-03-10_orderbook10_snapshots.csv.gz"
TRADES = "crypto/bitmex_2020-03-10_trades.csv.gz"


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def bitmex() -> dict[str, CleanseResult]:
    data = require_data_dir()  # raises (the tests fail) when the shared data is missing
    return ingest_bitmex(data / BOOK, data / TRADES)


@pytest.mark.realdata
def test_counts_reconcile(bitmex: dict[str, CleanseResult]) -> None:
    assert {t: (r.rows_in, len(r.clean), len(r.quarantine)) for t, r in bitmex.items()} == {
        "quotes": (120_000, 120_000, 0),
        "depth": (1_200_000, 1_200_000, 0),
        "trades": (10_000, 10_000, 0),
    }
    assert all(r.reconciles for r in bitmex.values())


@pytest.mark.realdata
def test_snapshots_per_symbol(bitmex: dict[str, CleanseResult]) -> None:
    quotes, depth = bitmex["quotes"].clean, bitmex["depth"].clean
    assert quotes["symbol"].value_counts().to_dict() == {"XBTUSD": 91_779, "ETHUSD": 28_221}
    assert depth["symbol"].value_counts().to_dict() == {"XBTUSD": 917_790, "ETHUSD": 282_210}
    assert depth["level"].value_counts().sort_index().to_dict() == {
        lvl: 120_000 for lvl in range(1, 11)
    }


@pytest.mark.realdata
def test_first_snapshot_by_eye(bitmex: dict[str, CleanseResult]) -> None:
    # file row 1: "2020-03-10 18:25:10",984,"XBTUSD",7823 (ask 1), ... 1448760 (ask size 1), ...
    #             7822.5 (bid 1), ... 347116 (bid size 1)
    # file row 2: "2020-03-10 18:25:10",811,"ETHUSD",199.05, ... 237689, ... 199, ... 80923
    quotes = bitmex["quotes"].clean
    assert quotes.iloc[0].to_dict() == {
        "ts": utc("2020-03-10 18:25:10.984"),
        "available_at": utc("2020-03-10 18:25:10.984") + pd.Timedelta(BITMEX_LATENCY_NS, "ns"),
        "symbol": "XBTUSD",
        "bid_px": 7822.5,
        "bid_sz": 347116.0,
        "ask_px": 7823.0,
        "ask_sz": 1448760.0,
    }
    assert quotes.iloc[1][["ts", "symbol", "bid_px", "bid_sz", "ask_px", "ask_sz"]].tolist() == [
        utc("2020-03-10 18:25:10.811"),
        "ETHUSD",
        199.0,
        80923.0,
        199.05,
        237689.0,
    ]
    # levels 1-3 of the first snapshot; level 10 ends the row: 7818 bid with size 12211
    depth = bitmex["depth"].clean
    assert depth.iloc[:3][["level", "bid_px", "bid_sz", "ask_px", "ask_sz"]].values.tolist() == [
        [1, 7822.5, 347116.0, 7823.0, 1448760.0],
        [2, 7822.0, 21102.0, 7823.5, 119233.0],
        [3, 7821.5, 211.0, 7824.0, 56320.0],
    ]
    assert depth.iloc[9][["level", "bid_px", "bid_sz"]].tolist() == [10, 7818.0, 12211.0]


@pytest.mark.realdata
def test_book_is_never_crossed_and_levels_are_ordered(bitmex: dict[str, CleanseResult]) -> None:
    quotes, depth = bitmex["quotes"].clean, bitmex["depth"].clean
    assert (quotes["bid_px"] < quotes["ask_px"]).all()
    asks = depth["ask_px"].to_numpy().reshape(-1, 10)
    bids = depth["bid_px"].to_numpy().reshape(-1, 10)
    assert (np.diff(asks, axis=1) > 0).all()
    assert (np.diff(bids, axis=1) < 0).all()


@pytest.mark.realdata
def test_snapshot_times(bitmex: dict[str, CleanseResult]) -> None:
    quotes = bitmex["quotes"].clean
    assert str(quotes["ts"].dtype) == "datetime64[ns, UTC]"
    assert (quotes["ts"].min(), quotes["ts"].max()) == (
        utc("2020-03-10 18:25:10.811"),
        utc("2020-03-10 18:43:43.197"),
    )
    # millis is the millisecond part of moment: with it, each symbol's clock never goes back
    assert quotes.groupby("symbol")["ts"].is_monotonic_increasing.all()
    assert (quotes["available_at"] - quotes["ts"] == pd.Timedelta(BITMEX_LATENCY_NS, "ns")).all()


@pytest.mark.realdata
def test_trades(bitmex: dict[str, CleanseResult]) -> None:
    trades = bitmex["trades"].clean
    assert (trades["ts"].min(), trades["ts"].max()) == (
        utc("2020-03-10 18:25:08.955"),
        utc("2020-03-10 18:37:02.971"),
    )
    assert trades["ts"].is_monotonic_increasing
    # file row 1: "XBTUSD","2020-03-10 18:25:08",955,7823,5000,"partial","Buy"
    assert trades.iloc[0][["symbol", "px", "qty", "aggressor"]].tolist() == [
        "XBTUSD",
        7823.0,
        5000.0,
        1,
    ]
    assert trades["symbol"].value_counts().to_dict() == {"XBTUSD": 8464, "ETHUSD": 1536}
    assert trades["aggressor"].value_counts().to_dict() == {1: 6549, -1: 3451}


# --------------------------------------------------------------------------- parsing rules
def _gz(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt") as fh:
        fh.write("".join(f"{line}\n" for line in lines))
    return path


def _book_line(moment: str, millis: int, symbol: str, bid: float, ask: float) -> str:
    asks = [ask + i for i in range(10)]
    bids = [bid - i for i in range(10)]
    sizes = [100 + i for i in range(10)]
    return ",".join(
        [f'"{moment}"', str(millis), f'"{symbol}"', *map(str, asks + sizes + bids + sizes)]
    )


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    pad = "\x00" * 4  # the real files pad strings with NUL bytes
    book = _gz(
        tmp_path / "book.csv.gz",
        [
            _book_line("2020-03-10 18:25:10", 984, f"XBTUSD{pad}", 7822.5, 7823.0),
            _book_line("2020-03-10 18:25:11", 1500, f"XBTUSD{pad}", 7822.5, 7823.0),  # bad millis
            _book_line("2020-03-10 18:25:12", 7, f"ETHUSD{pad}", 199.2, 199.1),  # crossed
        ],
    )
    trades = _gz(
        tmp_path / "trades.csv.gz",
        [
            f'"XBTUSD{pad}","2020-03-10 18:25:08",955,7823,5000,"partial{pad}","Buy{pad}"',
            f'"ETHUSD{pad}","2020-03-10 18:25:09",572,199,31,"insert{pad}","Sell{pad}"',
            f'"ETHUSD{pad}","2020-03-10 18:25:09",573,199,-2,"insert{pad}","{pad}"',  # size < 0
        ],
    )
    return book, trades


def test_tiny_files_parse_and_quarantine(tiny: tuple[Path, Path]) -> None:
    book, trades = tiny
    res = ingest_bitmex(book, trades, latency_ns=250_000_000)
    quotes = res["quotes"]
    assert quotes.clean["symbol"].tolist() == ["XBTUSD"]
    assert quotes.clean["available_at"].tolist() == [utc("2020-03-10 18:25:11.234")]
    q = quotes.quarantine
    assert q["row"].tolist() == [1, 2]
    assert "missing: ts is null" in q["detail"].iat[0]  # millis 1500 is not a millisecond part
    assert q["rule"].iat[1] == "crossed_quote"
    depth = res["depth"]
    # depth checks each level on its own: the crossed snapshot loses only its crossed level 1
    assert (depth.rows_in, len(depth.clean), len(depth.quarantine)) == (30, 19, 11)
    # quarantine rows are file rows (issue 12): snapshot line 1's ten levels, line 2's level 1
    assert depth.quarantine["row"].tolist() == [1] * 10 + [2]
    assert depth.clean["level"].tolist() == [*range(1, 11), *range(2, 11)]
    t = res["trades"]
    assert t.quarantine[["row", "rule"]].values.tolist() == [[2, "non_positive_size"]]
    assert t.clean["aggressor"].tolist() == [1, -1]
    assert read_bitmex_trades(trades)["aggressor"].tolist() == [1, -1, 0]
    assert all(r.reconciles for r in res.values())


def test_wrong_file_is_a_contract_error(tiny: tuple[Path, Path]) -> None:
    book, trades = tiny
    with pytest.raises(ContractError, match=r"trades\.csv\.gz: expected 43 columns .* found 7"):
        read_bitmex_book(trades)
    with pytest.raises(ContractError, match=r"book\.csv\.gz: expected 7 columns .* found 43"):
        read_bitmex_trades(book)


def test_negative_latency_is_refused(tiny: tuple[Path, Path]) -> None:
    # issue 12, defect 7: a ValueError (a traceback from the CLI) before; now a ContractError
    # worded as LOBSTER's, naming the file, raised before the file is read
    book, trades = tiny
    with pytest.raises(ContractError, match=r"book\.csv\.gz: feed latency --latency-ns \(latency_ns\) = -1 "
                                            r"is negative; "
                                            r"available_at must be >= ts"):
        read_bitmex_book(book, latency_ns=-1)
    with pytest.raises(ContractError, match=r"trades\.csv\.gz: feed latency --latency-ns \(latency_ns\) = -5 "
                                            r"is negative"):
        read_bitmex_trades(trades, latency_ns=-5)
    with pytest.raises(ContractError, match=r"feed latency --latency-ns \(latency_ns\) = -5 is negative"):
        ingest_bitmex(book, trades, latency_ns=-5)


# --------------------------------------------------------------------------- repeated lines
def _book_lines() -> list[str]:
    deeper = _book_line("2020-03-10 18:25:10", 984, "XBTUSD", 7822.5, 7823.0).split(",")
    deeper[3 + 19] = "999"  # ask size 10: level 1 as in row 0, level 10 not
    return [
        _book_line("2020-03-10 18:25:10", 984, "XBTUSD", 7822.5, 7823.0),
        ",".join(deeper),
        _book_line("2020-03-10 18:25:10", 985, "ETHUSD", 199.0, 199.05),
    ]


def test_repeated_book_line_is_a_duplicate(tmp_path: Path) -> None:
    # issue 12, defect 8a: every snapshot was numbered by its file row, so a book line sent twice
    # was never a duplicate; now it is, in quotes (one row) and in depth (its ten levels)
    lines = _book_lines()
    book = _gz(tmp_path / "book.csv.gz", [lines[0], lines[1], lines[0], lines[2], lines[2]])
    trades = _gz(tmp_path / "trades.csv.gz",
                 ['"XBTUSD","2020-03-10 18:25:08",955,7823,5000,"partial","Buy"'])

    res = ingest_bitmex(book, trades)

    quotes, depth = res["quotes"], res["depth"]
    assert quotes.quarantine[["row", "rule", "detail"]].values.tolist() == [
        [2, "duplicate", "duplicate: repeats row 0"],
        [4, "duplicate", "duplicate: repeats row 3"],
    ]
    # row 1 agrees with row 0 at level 1 only: a different snapshot, kept whole
    assert (quotes.rows_in, len(quotes.clean)) == (5, 3)
    assert depth.quarantine["row"].tolist() == [2] * 10 + [4] * 10  # file rows, as quotes
    assert depth.quarantine["detail"].iat[0] == "duplicate: repeats row 0"
    assert set(depth.quarantine["rule"]) == {"duplicate"}
    assert (depth.rows_in, len(depth.clean)) == (50, 30)
    assert all(r.reconciles for r in res.values())


def test_identical_trade_lines_are_kept_as_fills(tmp_path: Path) -> None:
    # one buy order filling two resting sell orders of 100 prints two identical lines; without a
    # trade id a re-sent line looks the same, so both are kept (module notes) - unless the
    # repeat comes after a later print of its symbol
    fill = '"XBTUSD","2020-03-10 18:25:08",955,7823,100,"insert","Buy"'
    later = '"XBTUSD","2020-03-10 18:25:09",1,7823,5,"insert","Buy"'
    book = _gz(tmp_path / "book.csv.gz", _book_lines()[:1])
    trades = _gz(tmp_path / "trades.csv.gz", [fill, fill, later, fill])

    t = ingest_bitmex(book, trades)["trades"]

    assert t.clean["qty"].tolist() == [100.0, 100.0, 5.0]
    assert t.quarantine[["row", "rule"]].values.tolist() == [[3, "out_of_order"]]
    assert t.reconciles
