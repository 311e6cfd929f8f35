"""LOBSTER reader on the real sample files, a corrupted copy, broken files and a never-seen file.

Facts about the real files come from data/README.md; the real data is read in place and the
derived files are written to ``tmp_path`` only.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bestex.cli import main
from bestex.settings import require_data_dir
from sources.lobster import DEFAULT_LATENCY_NS, discover_lobster, ingest_lobster, read_lobster
from validation.contracts import ContractError, split_valid

pytestmark = pytest.mark.realdata

AMZN_STEM = "AMZN_2012-06-21_34200000_57600000"
AAPL_STEM = "AAPL_2012-06-21_34200000_57600000"


def lobster_dir() -> Path:
    return require_data_dir() / "lobster"


def amzn_zip() -> Path:
    return lobster_dir() / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip"


def aapl_files() -> tuple[Path, Path]:
    d = lobster_dir()
    return (d / f"{AAPL_STEM}_message_10_first999.csv", d / f"{AAPL_STEM}_orderbook_10_first999.csv")


def amzn_lines() -> tuple[list[str], list[str]]:
    with zipfile.ZipFile(amzn_zip()) as zf:
        msg = zf.read(f"{AMZN_STEM}_message_1.csv").decode().splitlines()
        book = zf.read(f"{AMZN_STEM}_orderbook_1.csv").decode().splitlines()
    return msg, book


def write_pair(folder: Path, stem: str, level: int, msg: list[str], book: list[str]) -> tuple[Path, Path]:
    m = folder / f"{stem}_message_{level}.csv"
    b = folder / f"{stem}_orderbook_{level}.csv"
    m.write_text("\n".join(msg) + "\n")
    b.write_text("\n".join(book) + "\n")
    return m, b


@pytest.fixture(scope="module")
def amzn():
    (day,) = ingest_lobster(amzn_zip())
    return day


# ----------------------------------------------------------------------------- AMZN, level 1
def test_amzn_counts(amzn):
    assert (amzn.symbol, str(amzn.date), amzn.levels) == ("AMZN", "2012-06-21", 1)
    assert amzn.n_events == 57_515
    assert amzn.day.type_counts == {1: 27845, 2: 16, 3: 18235, 4: 8974, 5: 2445}
    assert amzn.day.depth is None
    assert "depth" not in amzn.results
    assert len(amzn.halts) == 0


def test_amzn_executions(amzn):
    trades = amzn.results["trades"].clean
    hidden = amzn.day.trades["event"].to_numpy() == 5

    assert len(trades) == 11_419  # every execution survives cleansing
    assert hidden.sum() == 2_445
    assert trades["qty"].sum() == 810_755
    assert trades["qty"][~hidden].sum() == 613_248
    assert trades["qty"][hidden].sum() == 197_507
    # the execution of a sell limit order (direction -1) is a buyer-initiated trade
    assert (trades["aggressor"] == 1).sum() == 5904
    assert (trades["aggressor"] == -1).sum() == 5515


def test_amzn_quotes(amzn):
    q = amzn.results["quotes"].clean

    assert len(q) == 57_515
    assert (q["bid_px"] < q["ask_px"]).all()  # never crossed (nor locked)
    assert (q["ask_px"] - q["bid_px"]).median() == pytest.approx(0.13)
    assert q["bid_px"].min() == 220.51
    assert q["ask_px"].max() == 226.04
    assert amzn.results["trades"].clean["px"].between(220.51, 226.04).all()


def test_amzn_times(amzn):
    q = amzn.results["quotes"].clean

    # 34200.017459617 s after midnight in New York (EDT, UTC-4) = 13:30:00.017459617 UTC
    assert q["ts"].iloc[0] == pd.Timestamp("2012-06-21 13:30:00.017459617", tz="UTC")
    assert q["ts"].iloc[-1] == pd.Timestamp("2012-06-21 19:59:59.959359650", tz="UTC")
    assert ((q["available_at"] - q["ts"]) == pd.Timedelta(DEFAULT_LATENCY_NS, "ns")).all()
    assert q["ts"].is_monotonic_increasing


def test_amzn_is_clean_and_reconciles(amzn):
    for table, res in amzn.results.items():
        assert res.reconciles
        assert len(res.quarantine) == 0, table
        assert split_valid(table, res.clean)[1] == []
    assert len(amzn.results["quotes"].outages) == 0  # no 60 s without a quote update
    # stretches of more than 60 s without an execution are a quiet market, not outages
    assert len(amzn.results["trades"].outages) == 0
    assert amzn.day.bad_type_rows.tolist() == []
    assert amzn.key == amzn.day.key == "AMZN_2012-06-21_1"
    # every raw row carries its message-file row
    assert np.array_equal(amzn.day.quotes["_src_row"].to_numpy(), np.arange(57_515))
    execs = np.flatnonzero(np.isin(amzn.day.quotes["event"].to_numpy(), (4, 5)))
    assert np.array_equal(amzn.day.trades["_src_row"].to_numpy(), execs)
    assert "_read_error" not in amzn.day.trades.columns


def test_identical_hidden_executions_are_kept(amzn):
    # 48 events repeat an earlier event's message line and order-book line: all hidden executions
    # at a nanosecond already used (order id 0, the visible book unchanged), all real. They are
    # why a re-sent hidden execution cannot be told from a real one (sources.lobster notes).
    msg, book = amzn_lines()
    seen: set[tuple[str, str]] = set()
    repeats = []
    for i, line in enumerate(zip(msg, book, strict=True)):
        if line in seen:
            repeats.append(i)
        seen.add(line)
    assert len(repeats) == 48
    assert {int(msg[i].split(",")[1]) for i in repeats} == {5}
    raw = amzn.day.trades.set_index("_src_row")
    assert (raw.loc[repeats, "hidden_seq"] > 0).all()
    for table in ("quotes", "trades"):
        assert not set(repeats) & set(amzn.results[table].quarantine["row"]), table


# ----------------------------------------------------------------------------- AAPL, level 10
def test_aapl_level_10_first999():
    (day,) = ingest_lobster(aapl_files())

    assert (day.symbol, day.levels, day.n_events) == ("AAPL", 10, 999)
    assert day.day.type_counts == {1: 471, 3: 369, 4: 98, 5: 61}
    depth = day.results["depth"].clean
    assert len(depth) == 9_990
    assert sorted(depth["level"].unique().tolist()) == list(range(1, 11))
    assert day.results["quotes"].clean["ts"].iloc[0] == pd.Timestamp(
        "2012-06-21 13:30:00.004241176", tz="UTC")
    for table, res in day.results.items():
        assert res.reconciles, table
        assert len(res.quarantine) == 0, table
        assert split_valid(table, res.clean)[1] == []
    # level 1 of the depth table is the quotes table
    lvl1 = depth[depth["level"] == 1].reset_index(drop=True)
    quotes = day.results["quotes"].clean
    assert np.array_equal(lvl1["bid_px"].to_numpy(), quotes["bid_px"].to_numpy())


def test_folder_zip_and_single_file_inputs():
    days = read_lobster(lobster_dir())

    assert [(d.symbol, d.levels, d.n_events) for d in days] == [("AAPL", 10, 999), ("AMZN", 1, 57515)]
    assert read_lobster(aapl_files()[1])[0].n_events == 999  # partner found by name
    found = discover_lobster(lobster_dir())
    assert set(found) == {"AAPL_2012-06-21_10", "AMZN_2012-06-21_1"}
    assert [d.key for d in days] == ["AAPL_2012-06-21_10", "AMZN_2012-06-21_1"]
    assert found["AMZN_2012-06-21_1"] == amzn_zip()


def test_two_depths_of_one_symbol_day_are_two_keys(tmp_path):
    # LOBSTER ships _1, _5 and _10 files of one symbol-day; none may hide another
    msg_path, book_path = aapl_files()
    msg = msg_path.read_text().splitlines()
    book = book_path.read_text().splitlines()
    write_pair(tmp_path, AAPL_STEM, 10, msg, book)
    write_pair(tmp_path, AAPL_STEM, 1, msg, [",".join(ln.split(",")[:4]) for ln in book])

    found = discover_lobster(tmp_path)
    days = ingest_lobster(tmp_path)

    assert set(found) == {"AAPL_2012-06-21_1", "AAPL_2012-06-21_10"}
    assert found["AAPL_2012-06-21_1"].name == f"{AAPL_STEM}_message_1.csv"
    assert found["AAPL_2012-06-21_10"].name == f"{AAPL_STEM}_message_10.csv"
    assert sorted(d.key for d in days) == sorted(found)
    assert {d.key: d.summary()["key"] for d in days} == {k: k for k in found}


# ----------------------------------------------------------------------------- corrupted copy
def _first(msg: list[str], start: int, types: tuple[int, ...]) -> int:
    return next(i for i in range(start, len(msg)) if int(msg[i].split(",")[1]) in types)


def _set(line: str, col: int, value: str) -> str:
    parts = line.split(",")
    parts[col] = value
    return ",".join(parts)


def test_corrupted_amzn_copy(tmp_path):
    msg, book = amzn_lines()
    other, execution = (1, 3), (4,)
    a = _first(msg, 5_000, other)       # book bid price "abc"          -> quotes: type
    b = _first(msg, 10_000, other)      # bid above ask                 -> quotes: crossed_quote
    c = _first(msg, 15_000, other)      # negative ask size             -> quotes: non_positive_size
    d = _first(msg, 20_000, other)      # book prices +5% for one row   -> quotes: bad_tick
    e = _first(msg, 25_000, execution)  # time 5 minutes earlier        -> quotes+trades: out_of_order
    f = _first(msg, 30_000, execution)  # line repeated in both files   -> quotes+trades: duplicate
    g = _first(msg, 35_000, execution)  # trade price +5%               -> trades: bad_tick
    h = _first(msg, 40_000, execution)  # negative execution size       -> trades: non_positive_size
    i = _first(msg, 45_000, execution)  # trade price "abc"             -> trades: type

    book[a] = _set(book[a], 2, "abc")
    ask = int(book[b].split(",")[0])
    book[b] = _set(book[b], 2, str(ask + 500))
    book[c] = _set(book[c], 1, "-100")
    ap, az, bp, bz = book[d].split(",")
    book[d] = f"{round(int(ap) * 1.05)},{az},{round(int(bp) * 1.05)},{bz}"
    msg[e] = _set(msg[e], 0, f"{float(msg[e].split(',')[0]) - 300:.9f}")
    msg[g] = _set(msg[g], 4, str(round(int(msg[g].split(",")[4]) * 1.05)))
    msg[h] = _set(msg[h], 3, "-100")
    msg[i] = _set(msg[i], 4, "abc")
    msg.insert(f + 1, msg[f])
    book.insert(f + 1, book[f])

    def pos(k: int) -> int:  # position after the inserted line
        return k + (k > f)

    (day,) = ingest_lobster(write_pair(tmp_path, AMZN_STEM, 1, msg, book))

    quotes, trades = day.results["quotes"], day.results["trades"]
    q_rules = dict(zip(quotes.quarantine["row"], quotes.quarantine["rule"], strict=True))
    t_rules = dict(zip(trades.quarantine["row"], trades.quarantine["rule"], strict=True))
    assert q_rules == {
        pos(a): "type", pos(b): "crossed_quote", pos(c): "non_positive_size", pos(d): "bad_tick",
        pos(e): "out_of_order", f + 1: "duplicate",
    }
    # the quarantine row of a trade is its message-file row, as for quotes
    assert t_rules == {
        pos(e): "out_of_order", f + 1: "duplicate", pos(g): "bad_tick",
        pos(h): "non_positive_size", pos(i): "type",
    }
    assert (quotes.rows_in, len(quotes.clean), len(quotes.quarantine)) == (57_516, 57_510, 6)
    assert (trades.rows_in, len(trades.clean), len(trades.quarantine)) == (11_420, 11_415, 5)
    details = dict(zip(trades.quarantine["rule"], trades.quarantine["detail"], strict=True))
    assert details["type"] == "type: px='abc' is not a number"
    assert details["non_positive_size"] == "non_positive_size: qty=-100.0"
    assert details["duplicate"] == f"duplicate: repeats row {f}"
    assert details["bad_tick"].endswith(f"back at row {pos(g) + 1}")
    assert '"px": "abc"' in trades.quarantine.set_index("rule")["record"]["type"]
    assert quotes.quarantine.set_index("rule")["detail"]["type"] == "type: bid_px='abc' is not a number"
    for table in ("quotes", "trades"):
        assert split_valid(table, day.results[table].clean)[1] == []


def test_unreadable_message_types_are_quarantined_as_trades(tmp_path):
    msg, book = amzn_lines()
    other = (1, 3)
    x, half, nine, ex = (_first(msg, 1_000, other), _first(msg, 2_000, other),
                         _first(msg, 3_000, other), _first(msg, 4_000, (4,)))
    msg[x] = _set(msg[x], 1, "x")
    msg[half] = _set(msg[half], 1, "4.5")
    msg[nine] = _set(msg[nine], 1, "9")
    msg[ex] = _set(msg[ex], 1, " ")  # an execution whose type is lost

    (day,) = ingest_lobster(write_pair(tmp_path, AMZN_STEM, 1, msg, book))

    trades, quotes = day.results["trades"], day.results["quotes"]
    q = trades.quarantine.set_index("row")
    assert sorted(q.index) == sorted([x, half, nine, ex])
    assert (q["rule"] == "type").all()
    assert q.loc[x, "detail"] == "type: message type unreadable: 'x'"
    assert q.loc[half, "detail"] == "type: message type unreadable: '4.5'"
    assert q.loc[ex, "detail"] == "type: message type unreadable: ' '"
    assert q.loc[nine, "detail"] == "type: message type 9 is not a LOBSTER type (1, 2, 3, 4, 5, 7)"
    assert (trades.rows_in, len(trades.clean), len(trades.quarantine)) == (11_422, 11_418, 4)
    assert trades.reconciles
    assert sorted(day.day.bad_type_rows.tolist()) == sorted([x, half, nine, ex])
    assert len(quotes.quarantine) == 0  # the book rows of those messages are kept


def test_non_finite_and_huge_numbers_are_unreadable(tmp_path):
    msg, book = amzn_lines()
    execution, other = (4,), (1, 3)
    a, b, c, d = (_first(msg, 1_000, execution), _first(msg, 2_000, execution),
                  _first(msg, 3_000, execution), _first(msg, 4_000, other))
    msg[a] = _set(msg[a], 4, "inf")
    msg[b] = _set(msg[b], 4, "1e30")
    msg[c] = _set(msg[c], 3, "2.5")
    book[d] = _set(book[d], 0, "inf")

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflowing casts
        (day,) = ingest_lobster(write_pair(tmp_path, AMZN_STEM, 1, msg, book))

    tq = day.results["trades"].quarantine.set_index("row")
    assert tq["rule"].to_dict() == {a: "type", b: "type", c: "type"}
    assert tq.loc[a, "detail"] == "type: px=inf is not a finite number"
    assert tq.loc[b, "detail"] == "type: message price='1e30' is out of range"
    assert tq.loc[c, "detail"] == "type: message size='2.5' is not an integer"
    qq = day.results["quotes"].quarantine
    assert qq[["row", "rule", "detail"]].values.tolist() == [
        [d, "type", "type: ask_px=inf is not a finite number"]]
    for res in day.results.values():
        assert res.reconciles
        assert np.isfinite(res.clean.select_dtypes("number")).all().all()


def test_depth_quarantine_row_is_the_file_row(tmp_path):
    msg_path, book_path = aapl_files()
    msg = msg_path.read_text().splitlines()
    book = book_path.read_text().splitlines()
    book[500] = _set(book[500], 9, "-5")  # bid size of level 3
    write_pair(tmp_path, AAPL_STEM, 10, msg, book)

    (day,) = ingest_lobster(tmp_path)

    depth = day.results["depth"]
    assert depth.quarantine[["row", "rule"]].values.tolist() == [[500, "negative_size"]]
    assert json.loads(depth.quarantine["record"].iloc[0])["level"] == 3
    assert depth.reconciles
    assert len(depth.clean) == 9_989


# ----------------------------------------------------------------------------- broken files
def test_unreadable_file_is_a_contract_error(tmp_path):
    _, book = amzn_lines()
    m = tmp_path / f"{AMZN_STEM}_message_1.csv"
    m.write_bytes(bytes(range(256)) * 4)
    (tmp_path / f"{AMZN_STEM}_orderbook_1.csv").write_text("\n".join(book[:10]))

    with pytest.raises(ContractError, match=rf"{AMZN_STEM}_message_1\.csv: cannot read LOBSTER message "
                                            r"file: not a text file \(invalid UTF-8 at byte 128, "
                                            r"line 2\)"):  # byte 10 is a newline
        read_lobster(m)


@pytest.mark.parametrize("damage", ["flip", "zeros"])
def test_corrupt_member_of_the_real_zip_is_exit_2(tmp_path, capsys, damage):
    # issue 12, defect 4: 100 bytes at offset 200,000 (inside the message member) flipped or
    # zeroed; before, a zipfile.BadZipFile traceback and exit status 1
    data = bytearray(amzn_zip().read_bytes())
    chunk = data[200_000:200_100]
    data[200_000:200_100] = bytes(b ^ 0xFF for b in chunk) if damage == "flip" else bytes(100)
    z = tmp_path / amzn_zip().name
    z.write_bytes(bytes(data))

    assert main(["ingest", "lobster", str(z), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bestex: error: {z}: cannot read member {AMZN_STEM}_message_1.csv: ")
    assert err.count("\n") == 1


def test_missing_column_is_a_contract_error(tmp_path):
    msg, book = amzn_lines()
    msg = [ln.rsplit(",", 1)[0] for ln in msg[:100]]  # direction column dropped
    write_pair(tmp_path, AMZN_STEM, 1, msg, book[:100])

    with pytest.raises(ContractError, match=r"message_1\.csv: cannot read LOBSTER message file: "
                                            r"line 1 has 5 columns, expected 6 \(100 such lines\)"):
        read_lobster(tmp_path)


def test_book_with_wrong_level_count_is_a_contract_error(tmp_path):
    msg, book = amzn_lines()
    write_pair(tmp_path, AMZN_STEM, 2, msg[:100], book[:100])  # says level 2, has 4 columns

    with pytest.raises(ContractError, match=r"orderbook_2\.csv: cannot read LOBSTER orderbook file: "
                                            r"line 1 has 4 columns, expected 8"):
        read_lobster(tmp_path)


def test_mismatched_lengths_are_a_contract_error(tmp_path):
    msg, book = amzn_lines()
    write_pair(tmp_path, AMZN_STEM, 1, msg[:100], book[:99])

    with pytest.raises(ContractError, match="100 messages but 99 order-book rows"):
        read_lobster(tmp_path)


def test_zip_without_pairs_is_a_contract_error(tmp_path):
    z = tmp_path / "empty.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("README.txt", "nothing here")
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"not a zip")

    with pytest.raises(ContractError, match=r"empty\.zip: no LOBSTER message/orderbook pair"):
        read_lobster(z)
    with pytest.raises(ContractError, match=r"broken\.zip: cannot read zip"):
        read_lobster(bad)


def test_orphan_file_is_a_contract_error(tmp_path):
    msg, _ = amzn_lines()
    m = tmp_path / f"{AMZN_STEM}_message_1.csv"
    m.write_text("\n".join(msg[:10]))

    with pytest.raises(ContractError, match="message file without its orderbook file"):
        read_lobster(m)


# ----------------------------------------------------------------------------- never-seen file
def test_never_seen_file_level_2_with_halts(tmp_path):
    """MSFT on 2013-03-07 (EST, UTC-5), level 2, prices +$10, built from the AAPL sample."""
    msg_path, book_path = aapl_files()
    msg = msg_path.read_text().splitlines()
    book = []
    for line in book_path.read_text().splitlines():
        v = [int(x) for x in line.split(",")[:8]]
        book.append(",".join(str(x + 100_000 if abs(x) != 9_999_999_999 and k % 2 == 0 else x)
                             for k, x in enumerate(v)))
    # a halt, a quote resume and a trade resume between two events >= 1 ms apart after event 500;
    # the book rows of type-7 messages repeat the preceding state
    times = [float(ln.split(",")[0]) for ln in msg]
    k = next(j for j in range(500, len(msg) - 1) if times[j + 1] - times[j] >= 0.001)
    step = (times[k + 1] - times[k]) / 4
    msg[k + 1:k + 1] = [f"{times[k] + (n + 1) * step:.9f},7,0,0,{code},-1"
                        for n, code in enumerate((-1, 0, 1))]
    book[k + 1:k + 1] = [book[k]] * 3
    stem = "MSFT_2013-03-07_34200000_57600000"
    write_pair(tmp_path, stem, 2, msg, book)

    (day,) = ingest_lobster(tmp_path)

    assert (day.symbol, str(day.date), day.levels, day.n_events) == ("MSFT", "2013-03-07", 2, 1002)
    assert day.day.type_counts[7] == 3
    assert day.halts["kind"].tolist() == ["halt", "quote_resume", "trade_resume"]
    for table, res in day.results.items():
        assert res.reconciles, table
        assert len(res.quarantine) == 0, table
        assert split_valid(table, res.clean)[1] == []
    q = day.results["quotes"].clean
    assert q["ts"].iloc[0] == pd.Timestamp("2013-03-07 14:30:00.004241176", tz="UTC")
    assert (q["bid_px"] <= q["ask_px"]).all()
    assert q["bid_px"].iloc[0] == pytest.approx(585.33 + 10)
    assert sorted(day.results["depth"].clean["level"].unique().tolist()) == [1, 2]


def test_latency_sets_available_at():
    (day,) = read_lobster(aapl_files(), latency_ns=250_000)

    lag = day.trades["available_at"] - day.trades["ts"]
    assert (lag == pd.Timedelta(microseconds=250)).all()
    with pytest.raises(ContractError, match=r"feed latency --latency-ns \(latency_ns\) = -1 "
                                            r"is negative"):
        read_lobster(aapl_files(), latency_ns=-1)
