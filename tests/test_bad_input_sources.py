"""Bad input to the LOBSTER and BitMEX readers, on small files written to ``tmp_path``.

Every documented error of ``bestex ingest lobster`` and ``bestex ingest bitmex`` is exit status 2
with one line on stderr that names the file (and the zip member); the readers raise a
``ContractError``. Also the repeated-event rules (issue 12: defects 4, 7, 8a, 8b, 13c) on
hand-made LOBSTER days whose every line is written out below.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest

from bestex.cli import main
from sources import BITMEX_TRADES
from sources.lobster import ingest_lobster, read_lobster
from validation.contracts import ContractError

STEM = "AMZN_2012-06-21_34200000_57600000"
MSG = f"{STEM}_message_1.csv"
BOOK = f"{STEM}_orderbook_1.csv"

# A level-1 AMZN day of 5 events (prices x 10000): a sell order 11 of 150 at 223.95 and a buy
# order 12 of 200 at 223.81 rest; 11 is executed for 50 twice (two buyers, two nanoseconds);
# a hidden order is executed for 30 at 223.88. Book line i is the book after message i.
DAY_MSG = [
    "34200.100000000,1,11,150,2239500,-1",
    "34200.200000000,1,12,200,2238100,1",
    "34201.000000000,4,11,50,2239500,-1",
    "34201.000000001,4,11,50,2239500,-1",
    "34202.000000000,5,0,30,2238800,1",
]
DAY_BOOK = [
    "2239500,150,2231000,100",
    "2239500,150,2238100,200",
    "2239500,100,2238100,200",
    "2239500,50,2238100,200",
    "2239500,50,2238100,200",
]


def write_day(folder: Path, msg: list[str], book: list[str], *, stem: str = STEM, level: int = 1,
              tag: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    m = folder / f"{stem}_message_{level}{tag}.csv"
    m.write_text("".join(f"{ln}\n" for ln in msg))
    (folder / f"{stem}_orderbook_{level}{tag}.csv").write_text("".join(f"{ln}\n" for ln in book))
    return m


def write_zip(path: Path, members: dict[str, bytes | str], *,
              method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def day_zip(path: Path, msg: list[str] = DAY_MSG, book: list[str] = DAY_BOOK, *,
            method: int = zipfile.ZIP_DEFLATED) -> Path:
    return write_zip(path, {BOOK: "".join(f"{ln}\n" for ln in book),
                            MSG: "".join(f"{ln}\n" for ln in msg)}, method=method)


def member_data_offset(path: Path, member: str) -> int:
    """Where the (compressed) bytes of ``member`` start in the zip file."""
    with zipfile.ZipFile(path) as zf:
        at = zf.getinfo(member).header_offset
    head = path.read_bytes()[at:at + 30]
    return at + 30 + int.from_bytes(head[26:28], "little") + int.from_bytes(head[28:30], "little")


def overwrite(path: Path, at: int, data: bytes) -> Path:
    raw = bytearray(path.read_bytes())
    raw[at:at + len(data)] = data
    path.write_bytes(bytes(raw))
    return path


def cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``bestex`` and return its one-line error; the exit status must be 2."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("bestex: error: ")
    assert err.count("\n") == 1, err  # one line: no traceback
    return err


# ----------------------------------------------------------------------------- defect 4: zips
def test_member_with_a_bad_crc_names_the_zip_and_the_member(tmp_path: Path) -> None:
    z = day_zip(tmp_path / "day.zip", method=zipfile.ZIP_STORED)
    overwrite(z, member_data_offset(z, MSG), b"9")  # "3" -> "9": same length, other CRC

    with pytest.raises(ContractError, match=rf"day\.zip: cannot read member {MSG}: "
                                            r"BadZipFile: Bad CRC-32"):
        read_lobster(z)


def test_member_with_a_bad_deflate_stream_names_the_zip_and_the_member(tmp_path: Path) -> None:
    z = day_zip(tmp_path / "day.zip")
    overwrite(z, member_data_offset(z, BOOK), b"\xff")  # deflate block type 3 does not exist

    with pytest.raises(ContractError, match=rf"day\.zip: cannot read member {BOOK}: error: "
                                            r"Error -3 while decompressing data"):
        read_lobster(z)


def test_truncated_zip_names_the_zip_and_the_member_it_ends_in(tmp_path: Path) -> None:
    z = day_zip(tmp_path / "day.zip")
    z.write_bytes(z.read_bytes()[:member_data_offset(z, MSG) + 10])  # the directory is gone

    with pytest.raises(ContractError, match=rf"day\.zip: cannot read zip: BadZipFile: .*"
                                            rf"\(it ends inside member {MSG}\)"):
        read_lobster(z)


def test_member_that_is_not_utf8_names_the_zip_and_the_member(tmp_path: Path) -> None:
    msg = "".join(f"{ln}\n" for ln in DAY_MSG).replace("2238800", "22\xe938800").encode("latin-1")
    z = write_zip(tmp_path / "day.zip", {MSG: msg, BOOK: "\n".join(DAY_BOOK) + "\n"})

    with pytest.raises(ContractError, match=rf"day\.zip!{MSG}: cannot read LOBSTER message file: "
                                            r"not a text file \(invalid UTF-8 at byte \d+, line 5\)"):
        read_lobster(z)


# ----------------------------------------------------------------------------- defect 13c: folders
def test_folder_with_a_zip_and_a_different_pair_for_one_day_is_refused(tmp_path: Path) -> None:
    day_zip(tmp_path / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")
    write_day(tmp_path, DAY_MSG[:4], DAY_BOOK[:4])  # an older, shorter copy beside it

    with pytest.raises(ContractError) as exc:
        read_lobster(tmp_path)

    msg = str(exc.value)
    assert msg.startswith(f"{tmp_path}: {BOOK} is there twice and the copies differ: ")
    assert f"{tmp_path / BOOK} and {tmp_path}/LOBSTER_SampleFile_AMZN_2012-06-21_1.zip!{BOOK}" in msg


def test_folder_with_two_pairs_for_one_day_and_depth_is_refused(tmp_path: Path) -> None:
    day_zip(tmp_path / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")
    write_day(tmp_path, DAY_MSG[:4], DAY_BOOK[:4], tag="_first4")

    with pytest.raises(ContractError, match=rf"two LOBSTER pairs for AMZN_2012-06-21_1: .*zip!{MSG} "
                                            rf"and .*{STEM}_message_1_first4\.csv"):
        read_lobster(tmp_path)


def test_zip_unpacked_beside_itself_is_read_once(tmp_path: Path) -> None:
    day_zip(tmp_path / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")
    write_day(tmp_path, DAY_MSG, DAY_BOOK)  # the same bytes as the members

    (day,) = read_lobster(tmp_path)

    assert (day.key, day.n_events, day.source) == ("AMZN_2012-06-21_1", 5, str(tmp_path / MSG))


# ----------------------------------------------------------------------------- defect 8b: repeats
def test_equal_executions_of_one_order_are_two_events_in_every_table(tmp_path: Path) -> None:
    # rows 2 and 3: one message line at one nanosecond, two book lines (the order shrinks);
    # before, trades quarantined row 3 as a duplicate while quotes kept it
    msg = [*DAY_MSG[:3], DAY_MSG[2], DAY_MSG[4]]

    (day,) = ingest_lobster(write_day(tmp_path, msg, DAY_BOOK))

    for table, res in day.results.items():
        assert len(res.quarantine) == 0, table
    assert day.results["trades"].clean["qty"].tolist() == [50.0, 50.0, 30.0]


def test_repeated_event_is_a_duplicate_in_every_table(tmp_path: Path) -> None:
    # the visible execution of row 2 sent twice, message and book line: one duplicate per table
    msg, book = [*DAY_MSG[:3], *DAY_MSG[2:]], [*DAY_BOOK[:3], *DAY_BOOK[2:]]

    (day,) = ingest_lobster(write_day(tmp_path, msg, book))

    for table in ("quotes", "trades"):
        q = day.results[table].quarantine
        assert q[["row", "rule", "detail"]].values.tolist() == [
            [3, "duplicate", "duplicate: repeats row 2"]], table
        assert day.results[table].reconciles


def test_repeated_hidden_execution_is_judged_alike_by_quotes_and_trades(tmp_path: Path) -> None:
    # a hidden execution leaves the book as it was and LOBSTER gives it order id 0, so a re-sent
    # one is the same two lines as a second real one at that nanosecond (48 such pairs in the
    # AMZN sample, all real): both tables keep it, neither quarantines it alone
    msg, book = [*DAY_MSG, DAY_MSG[4]], [*DAY_BOOK, DAY_BOOK[4]]

    (day,) = ingest_lobster(write_day(tmp_path, msg, book))

    quotes, trades = day.results["quotes"], day.results["trades"]
    assert (len(quotes.quarantine), len(trades.quarantine)) == (0, 0)
    assert trades.clean["qty"].tolist() == [50.0, 50.0, 30.0, 30.0]
    assert day.day.trades["hidden_seq"].tolist() == [0, 0, 0, 1]


def test_two_equal_cancels_deeper_in_the_book_are_two_events_in_every_table(
        tmp_path: Path) -> None:
    # level 2: order 13 (bid, level 2) is cut by 10 twice in one nanosecond; level 1 does not
    # change. Before, quotes quarantined the second cancel and depth its level-1 row only.
    msg = ["34200.100000000,1,11,100,2239500,-1", "34200.200000000,1,12,100,2238100,1",
           "34200.300000000,1,13,50,2238000,1", "34201.000000000,2,13,10,2238000,1",
           "34201.000000000,2,13,10,2238000,1"]
    book = ["2239500,100,2238000,50,9999999999,0,-9999999999,0",
            "2239500,100,2238100,100,9999999999,0,2238000,50",
            "2239500,100,2238100,100,9999999999,0,2238000,50",
            "2239500,100,2238100,100,9999999999,0,2238000,40",
            "2239500,100,2238100,100,9999999999,0,2238000,30"]

    (day,) = ingest_lobster(write_day(tmp_path, msg, book, level=2))

    assert day.results["quotes"].quarantine["rule"].tolist() == []
    depth = day.results["depth"]
    # the empty levels are kept (null price, size 0); no row is a duplicate
    assert "duplicate" not in set(depth.quarantine["rule"])
    assert depth.clean["bid_sz"].tolist()[-4:] == [100.0, 40.0, 100.0, 30.0]


# ----------------------------------------------------------------------------- CLI: lobster
def lobster(path: Path, out: Path, *extra: str) -> list[str]:
    return ["ingest", "lobster", str(path), "--out", str(out), *extra]


def test_cli_lobster_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = cli_error(capsys, *lobster(tmp_path / "nope.zip", tmp_path / "out"))
    assert f"{tmp_path / 'nope.zip'}: no such file or folder" in err


def test_cli_lobster_negative_latency(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    z = day_zip(tmp_path / "day.zip")
    err = cli_error(capsys, *lobster(z, tmp_path / "out", "--latency-ns", "-5"))
    assert (f"{z}: feed latency --latency-ns (latency_ns) = -5 is negative; "
            "available_at must be >= ts") in err


def test_cli_lobster_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write_day(tmp_path, DAY_MSG, DAY_BOOK)
    m.write_bytes(bytes(range(256)))
    err = cli_error(capsys, *lobster(m, tmp_path / "out"))
    assert f"{m}: cannot read LOBSTER message file: not a text file" in err


def test_cli_lobster_wrong_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write_day(tmp_path, [ln.rsplit(",", 1)[0] for ln in DAY_MSG], DAY_BOOK)
    err = cli_error(capsys, *lobster(tmp_path, tmp_path / "out"))
    assert f"{m}: cannot read LOBSTER message file: line 1 has 5 columns, expected 6" in err


def test_cli_lobster_lengths_differ(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write_day(tmp_path, DAY_MSG, DAY_BOOK[:4])
    err = cli_error(capsys, *lobster(m, tmp_path / "out"))
    assert f"{m}: 5 messages but 4 order-book rows in {tmp_path / BOOK}" in err


def test_cli_lobster_orphan_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write_day(tmp_path, DAY_MSG, DAY_BOOK)
    (tmp_path / BOOK).unlink()
    err = cli_error(capsys, *lobster(m, tmp_path / "out"))
    assert f"{m}: LOBSTER message file without its orderbook file {BOOK}" in err


def test_cli_lobster_not_a_lobster_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "prices.csv"
    f.write_text("1,2\n")
    err = cli_error(capsys, *lobster(f, tmp_path / "out"))
    assert f"{f}: not a LOBSTER file name" in err


def test_cli_lobster_invalid_date_in_name(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    m = write_day(tmp_path, DAY_MSG, DAY_BOOK, stem="AMZN_2012-02-30_34200000_57600000")
    err = cli_error(capsys, *lobster(m, tmp_path / "out"))
    assert f"{m}: file name has an invalid date '2012-02-30'" in err


def test_cli_lobster_not_a_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    z = tmp_path / "day.zip"
    z.write_bytes(b"not a zip")
    err = cli_error(capsys, *lobster(z, tmp_path / "out"))
    assert f"{z}: cannot read zip: BadZipFile: File is not a zip file" in err


def test_cli_lobster_zip_without_a_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    z = write_zip(tmp_path / "day.zip", {"README.txt": "nothing here"})
    err = cli_error(capsys, *lobster(z, tmp_path / "out"))
    assert f"{z}: no LOBSTER message/orderbook pair" in err


def test_cli_lobster_corrupt_member(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    z = day_zip(tmp_path / "day.zip", method=zipfile.ZIP_STORED)
    overwrite(z, member_data_offset(z, MSG), b"9")
    err = cli_error(capsys, *lobster(z, tmp_path / "out"))
    assert f"{z}: cannot read member {MSG}: BadZipFile: Bad CRC-32" in err


def test_cli_lobster_bad_deflate_stream(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    z = day_zip(tmp_path / "day.zip")
    overwrite(z, member_data_offset(z, MSG), b"\xff")
    err = cli_error(capsys, *lobster(z, tmp_path / "out"))
    assert f"{z}: cannot read member {MSG}: error: Error -3 while decompressing data" in err


def test_cli_lobster_truncated_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    z = day_zip(tmp_path / "day.zip")
    z.write_bytes(z.read_bytes()[:member_data_offset(z, MSG) + 10])
    err = cli_error(capsys, *lobster(z, tmp_path / "out"))
    assert f"{z}: cannot read zip: " in err
    assert err.rstrip().endswith(f"(it ends inside member {MSG})")


def test_cli_lobster_member_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    z = write_zip(tmp_path / "day.zip", {MSG: b"34200.1,1,11,150,22\xff39500,-1\n",
                                         BOOK: "2239500,150,2231000,100\n"})
    err = cli_error(capsys, *lobster(z, tmp_path / "out"))
    assert f"{z}!{MSG}: cannot read LOBSTER message file: not a text file" in err


def test_cli_lobster_ambiguous_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    z = day_zip(tmp_path / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")
    write_day(tmp_path, DAY_MSG[:4], DAY_BOOK[:4])
    err = cli_error(capsys, *lobster(tmp_path, tmp_path / "out"))
    assert f"{tmp_path / BOOK} and {z}!{BOOK}; keep one of them" in err


# ----------------------------------------------------------------------------- CLI: bitmex
def bitmex_book_line(millis: int = 984) -> str:
    asks, bids = [7823.0 + i for i in range(10)], [7822.5 - i for i in range(10)]
    sizes = [100 + i for i in range(10)]
    return ",".join(['"2020-03-10 18:25:10"', str(millis), '"XBTUSD"',
                     *map(str, asks + sizes + bids + sizes)])


TRADE_LINE = '"XBTUSD","2020-03-10 18:25:08",955,7823,5000,"partial","Buy"'


def gz(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt") as fh:
        fh.write("".join(f"{ln}\n" for ln in lines))
    return path


def bitmex(book: Path, out: Path, *extra: str) -> list[str]:
    return ["ingest", "bitmex", str(book), "--out", str(out), *extra]


@pytest.fixture
def bitmex_files(tmp_path: Path) -> tuple[Path, Path]:
    return (gz(tmp_path / "book.csv.gz", [bitmex_book_line()]),
            gz(tmp_path / BITMEX_TRADES, [TRADE_LINE]))


def test_cli_bitmex_reads_tiny_files(tmp_path: Path, bitmex_files: tuple[Path, Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(bitmex(bitmex_files[0], tmp_path / "out")) == 0
    assert '"clean": 10' in capsys.readouterr().out


def test_cli_bitmex_missing_book(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = cli_error(capsys, *bitmex(tmp_path / "nope.csv.gz", tmp_path / "out"))
    assert f"{tmp_path / 'nope.csv.gz'}: no such file or folder" in err


def test_cli_bitmex_missing_trades(tmp_path: Path, bitmex_files: tuple[Path, Path],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    book, trades = bitmex_files
    trades.unlink()
    err = cli_error(capsys, *bitmex(book, tmp_path / "out"))
    assert f"{trades}: no such file" in err
    err = cli_error(capsys, *bitmex(book, tmp_path / "out", "--trades", str(tmp_path / "t.gz")))
    assert f"{tmp_path / 't.gz'}: no such file" in err


def test_cli_bitmex_negative_latency(tmp_path: Path, bitmex_files: tuple[Path, Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    err = cli_error(capsys, *bitmex(bitmex_files[0], tmp_path / "out", "--latency-ns", "-5"))
    assert (f"{bitmex_files[0]}: feed latency --latency-ns (latency_ns) = -5 is negative; "
            "available_at must be >= ts") in err


def test_cli_bitmex_wrong_columns(tmp_path: Path, bitmex_files: tuple[Path, Path],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    book, trades = bitmex_files
    err = cli_error(capsys, *bitmex(trades, tmp_path / "out", "--trades", str(book)))
    assert f"{trades}: expected 43 columns" in err
    gz(book, [bitmex_book_line()])
    err = cli_error(capsys, *bitmex(book, tmp_path / "out", "--trades", str(book)))
    assert f"{book}: expected 7 columns" in err


@pytest.mark.parametrize("content", [
    pytest.param(b"not gzip at all", id="not-gzip"),
    pytest.param(gzip.compress(b'"XBTUSD","2020-03-10 18:25:08",955,7823,5000')[:-12],
                 id="truncated-gzip"),
    pytest.param(gzip.compress(b'"XBTUSD\xff","2020-03-10 18:25:08",955,7823,5,"partial","Buy"\n'),
                 id="not-utf8"),
    pytest.param(gzip.compress(b""), id="empty"),
])
def test_cli_bitmex_unreadable_trades(tmp_path: Path, bitmex_files: tuple[Path, Path],
                                      capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    book, trades = bitmex_files
    trades.write_bytes(content)
    err = cli_error(capsys, *bitmex(book, tmp_path / "out"))
    assert f"{trades}: cannot read CSV" in err
