"""Landing folder: the user's own Parquet/CSV files become contract tables, bad rows quarantined.

Contract under test: files are found by name (``<table>.<ext>``, ``<table>_*.<ext>``,
``<table>/*.<ext>``), unknown names are an error, every bad row is quarantined with its rule, its
file and its row number in that file, and ``rows_in == clean + quarantined`` always. A file that
cannot be read, or lacks columns, raises ``ContractError`` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sources._io import read_table_file
from sources.landing import discover_landing, ingest_landing
from validation.contracts import ContractError

QUOTES_HEADER = "ts,available_at,symbol,bid_px,bid_sz,ask_px,ask_sz\n"
GOOD_QUOTES = QUOTES_HEADER + (
    "2024-01-02T14:30:00Z,2024-01-02T14:30:00.001Z,AAPL,100.00,200,100.02,300\n"
    "2024-01-02T14:30:01Z,2024-01-02T14:30:01.001Z,AAPL,100.01,100,100.03,300\n"
    "2024-01-02T14:30:02Z,2024-01-02T14:30:02.001Z,MSFT,370.10,50,370.12,80\n"
)
BAD_QUOTES = QUOTES_HEADER + (
    "2024-01-02T14:30:00Z,2024-01-02T14:30:00.001Z,AAPL,100.00,200,100.02,300\n"  # 0 good
    "2024-01-02T14:30:01Z,2024-01-02T14:30:01.001Z,AAPL,100.00,-5,100.02,300\n"  # 1 negative size
    "2024-01-02T14:30:02Z,2024-01-02T14:30:02.001Z,AAPL,100.05,200,100.02,300\n"  # 2 crossed
    "2024-01-02T14:30:03Z,2024-01-02T14:30:03.001Z,AAPL,abc,200,100.02,300\n"  # 3 not a price
    "2024-01-02T14:30:04Z,2024-01-02T14:30:03.999Z,AAPL,100.00,200,100.02,300\n"  # 4 known early
    "2024-01-02T14:30:05Z,2024-01-02T14:30:05.001Z,AAPL,100.01,100,100.03,300\n"  # 5 good
)
ORDERS_HEADER = "order_id,symbol,side,qty,decision_ts,end_ts,strategy\n"


def _order(order_id: str, qty: str = "100") -> str:
    return f"{order_id},AAPL,1,{qty},2024-01-02T14:30:00Z,2024-01-02T15:30:00Z,twap\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _trades_frame() -> pd.DataFrame:
    ts = pd.to_datetime(["2024-01-02T14:30:00Z", "2024-01-02T14:30:01Z"], utc=True).as_unit("ns")
    return pd.DataFrame(
        {
            "ts": ts,
            "available_at": ts + pd.Timedelta("1ms"),
            "symbol": ["AAPL", "AAPL"],
            "px": [100.01, 100.02],
            "qty": [10.0, 20.0],
            "aggressor": [1, -1],
        }
    )


# --------------------------------------------------------------------------- discovery
def test_discover_follows_the_three_naming_forms(tmp_path: Path) -> None:
    # Arrange: one file per form, plus names that are conventionally left out
    _write(tmp_path / "quotes.csv", GOOD_QUOTES)
    _write(tmp_path / "daily_bars_2018.csv.gz", "")  # <table>_<anything>: the longest table wins
    _write(tmp_path / "trades" / "b.csv", "")
    _write(tmp_path / "trades" / "a.parquet", "")
    _write(tmp_path / "trades_extra.csv", "")
    _write(tmp_path / ".DS_Store", "")
    _write(tmp_path / "_SUCCESS", "")
    # Act
    found = discover_landing(tmp_path)
    # Assert: tables in contract order, parts in sorted path order
    assert found == {
        "quotes": [tmp_path / "quotes.csv"],
        "trades": [
            tmp_path / "trades" / "a.parquet",
            tmp_path / "trades" / "b.csv",
            tmp_path / "trades_extra.csv",
        ],
        "daily_bars": [tmp_path / "daily_bars_2018.csv.gz"],
    }


def test_unknown_names_are_an_error_listing_each_one(tmp_path: Path) -> None:
    _write(tmp_path / "quotes.csv", GOOD_QUOTES)
    _write(tmp_path / "qoutes.csv", GOOD_QUOTES)  # misspelt: must not be skipped silently
    _write(tmp_path / "trades" / "notes.txt", "")
    _write(tmp_path / "quotes.xlsx", "")
    with pytest.raises(
        ContractError,
        match=r"match no table: qoutes\.csv, quotes\.xlsx, "
        r"trades/notes\.txt; name files <table>\.parquet",
    ):
        discover_landing(tmp_path)
    with pytest.raises(ContractError, match=r"qoutes\.csv"):
        ingest_landing(tmp_path)


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"nowhere: landing folder not found"):
        discover_landing(tmp_path / "nowhere")


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    """Issue 12, defect 13: an empty landing folder is bad input, not a run with no tables."""
    (tmp_path / "_SUCCESS").write_text("")  # ignored names do not count
    with pytest.raises(ContractError, match="holds no table files"):
        ingest_landing(tmp_path)


# --------------------------------------------------------------------------- row checks
def test_good_quotes_csv_passes_typed(tmp_path: Path) -> None:
    path = _write(tmp_path / "quotes.csv", GOOD_QUOTES)
    res = ingest_landing(tmp_path)["quotes"]
    assert (res.rows_in, len(res.clean), len(res.quarantine)) == (3, 3, 0)
    assert res.source == str(path)
    assert str(res.clean["ts"].dtype) == "datetime64[ns, UTC]"
    assert res.clean["bid_px"].tolist() == [100.00, 100.01, 370.10]
    assert res.clean["bid_sz"].dtype == "float64"


def test_bad_quotes_rows_are_quarantined_with_rule_and_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "quotes.csv", BAD_QUOTES)
    res = ingest_landing(tmp_path)["quotes"]
    assert res.reconciles
    assert (res.rows_in, len(res.clean), len(res.quarantine)) == (6, 2, 4)
    q = res.quarantine
    assert q["row"].tolist() == [1, 2, 3, 4]
    assert q["rule"].tolist() == [
        "non_positive_size",  # market tables get the market-data rules of validation.cleansing
        "crossed_quote",
        "type",
        "available_before_event",
    ]
    assert set(q["source"]) == {str(path)}
    assert "bid_px='abc'" in q["detail"].iat[2]
    assert '"bid_px": "abc"' in q["record"].iat[2]  # the source row as read
    assert res.clean["bid_px"].tolist() == [100.00, 100.01]


def test_header_only_csv_is_an_empty_table(tmp_path: Path) -> None:
    _write(tmp_path / "quotes.csv", QUOTES_HEADER)
    res = ingest_landing(tmp_path)["quotes"]
    assert (res.rows_in, len(res.clean), len(res.quarantine)) == (0, 0, 0)


def test_parquet_keeps_its_types(tmp_path: Path) -> None:
    _trades_frame().to_parquet(tmp_path / "trades.parquet")
    res = ingest_landing(tmp_path)["trades"]
    assert (res.rows_in, len(res.clean), len(res.quarantine)) == (2, 2, 0)
    assert res.clean["aggressor"].tolist() == [1, -1]
    assert res.clean["qty"].tolist() == [10.0, 20.0]


def test_parts_combine_and_quarantine_names_each_part(tmp_path: Path) -> None:
    # Arrange: a clean parquet part and a csv part whose second row has qty 0
    _trades_frame().to_parquet(_write(tmp_path / "trades" / "part-0.parquet", ""))
    bad = _write(
        tmp_path / "trades_late.csv",
        (
            "ts,available_at,symbol,px,qty,aggressor\n"
            "2024-01-02T14:31:00Z,2024-01-02T14:31:00.001Z,AAPL,100.03,5,0\n"
            "2024-01-02T14:31:01Z,2024-01-02T14:31:01.001Z,AAPL,100.04,0,1\n"
        ),
    )
    # Act
    res = ingest_landing(tmp_path)["trades"]
    # Assert: row 1 is the row's position in *its* file, not in the combined table
    assert (res.rows_in, len(res.clean), len(res.quarantine)) == (4, 3, 1)
    assert res.quarantine[["source", "row", "rule"]].values.tolist() == [
        [str(bad), 1, "non_positive_size"]
    ]
    assert res.source == f"{tmp_path / 'trades' / 'part-0.parquet'}, {bad}"
    assert res.clean["px"].tolist() == [100.01, 100.02, 100.03]


def test_a_key_duplicated_across_parts_is_quarantined_in_both(tmp_path: Path) -> None:
    # O2 is in both files with different sizes: each part is fine alone, the table is not, and
    # which of the two is right cannot be told (an exact repeat keeps its first: the property
    # suite, tests/test_bad_input_properties.py)
    a = _write(tmp_path / "parent_orders" / "a.csv", ORDERS_HEADER + _order("O1") + _order("O2"))
    b = _write(
        tmp_path / "parent_orders" / "b.csv",
        ORDERS_HEADER + _order("O3", qty="-1") + _order("O2", qty="200") + _order("O4"),
    )
    res = ingest_landing(tmp_path)["parent_orders"]
    assert res.reconciles
    assert res.quarantine[["source", "row", "rule"]].values.tolist() == [
        [str(a), 1, "order_id: field_uniqueness"],
        [str(b), 0, "qty: greater_than(0)"],
        [str(b), 1, "order_id: field_uniqueness"],
    ]
    assert res.clean["order_id"].tolist() == ["O1", "O4"]


# --------------------------------------------------------------------------- whole-file errors
def test_corrupt_parquet_raises_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "quotes.parquet").write_bytes(b"\x00\x13garbage, not parquet\xff" * 8)
    with pytest.raises(ContractError, match=r"quotes\.parquet: cannot read Parquet: \w+"):
        ingest_landing(tmp_path)


def test_missing_column_raises_naming_file_and_column(tmp_path: Path) -> None:
    _write(tmp_path / "quotes.csv", "ts,available_at,symbol,bid_px,bid_sz,ask_px\n")
    with pytest.raises(
        ContractError, match=r"quotes\.csv: quotes contract: missing columns \['ask_sz'\]"
    ):
        ingest_landing(tmp_path)


def test_unknown_column_raises(tmp_path: Path) -> None:
    _write(tmp_path / "quotes.csv", GOOD_QUOTES.replace("ask_sz", "ask_sz,venue", 1))
    with pytest.raises(ContractError, match=r"quotes\.csv: quotes contract: unknown columns"):
        ingest_landing(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("quotes.csv", b"", r"quotes\.csv: cannot read CSV: EmptyDataError"),
        ("quotes.csv.gz", b"not gzip at all", r"quotes\.csv\.gz: cannot read CSV: \w+"),
        ("quotes.json", b"{}", r"quotes\.json: cannot read: unsupported file type"),
    ],
)
def test_read_table_file_errors_are_one_line(
    tmp_path: Path, name: str, content: bytes, match: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ContractError, match=match) as info:
        read_table_file(path)
    assert "\n" not in str(info.value)


def test_read_table_file_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"gone\.csv: cannot read CSV: FileNotFoundError"):
        read_table_file(tmp_path / "gone.csv")


def test_csv_columns_are_read_as_strings(tmp_path: Path) -> None:
    path = _write(tmp_path / "quotes.csv", GOOD_QUOTES)
    df = read_table_file(path)
    assert df["bid_sz"].tolist() == ["200", "100", "50"]


# --------------------------------------------------------------------------- issue 12 regressions
def _session_quotes(n: int = 20, start: str = "2024-04-11T14:00:00Z") -> str:
    """``n`` one-second quotes of one symbol inside the XNYS session of Thu 2024-04-11."""
    t0 = pd.Timestamp(start)
    rows = [f"{(t0 + pd.Timedelta(seconds=i)).isoformat()},"
            f"{(t0 + pd.Timedelta(seconds=i, milliseconds=1)).isoformat()},"
            f"AMZN,{100 + i * 0.01:.2f},100,{100.05 + i * 0.01:.2f},200\n" for i in range(n)]
    return QUOTES_HEADER + "".join(rows)


def test_a_market_table_in_two_parts_is_checked_as_one(tmp_path: Path) -> None:
    """Defect 2: the same 20 quotes in quotes.csv and quotes_copy.csv gave 40 clean rows (20
    exact duplicates, out of order) and 0 outages where one file gives 2."""
    one = tmp_path / "one"
    _write(one / "quotes.csv", _session_quotes())
    alone = ingest_landing(one)["quotes"]
    assert (len(alone.clean), len(alone.quarantine), len(alone.outages)) == (20, 0, 2)

    two = tmp_path / "two"
    a = _write(two / "quotes.csv", _session_quotes())
    b = _write(two / "quotes_copy.csv", _session_quotes())
    res = ingest_landing(two)["quotes"]
    assert res.reconciles
    assert res.rows_in == 40
    assert len(res.clean) == 20
    assert res.quarantine["rule"].tolist() == ["duplicate"] * 20
    assert res.quarantine["source"].tolist() == [str(b)] * 20
    assert res.quarantine["row"].tolist() == list(range(20))
    assert res.quarantine["detail"].iloc[3] == f"duplicate: repeats {a} row 3"
    pd.testing.assert_frame_equal(res.outages, alone.outages)


def test_a_part_that_goes_back_in_time_is_out_of_order(tmp_path: Path) -> None:
    _write(tmp_path / "quotes_1.csv", _session_quotes(5, "2024-04-11T15:00:00Z"))
    b = _write(tmp_path / "quotes_2.csv", _session_quotes(5, "2024-04-11T14:00:00Z"))
    res = ingest_landing(tmp_path)["quotes"]
    assert res.reconciles
    assert len(res.clean) == 5
    assert set(res.quarantine["rule"]) == {"out_of_order"}
    assert set(res.quarantine["source"]) == {str(b)}


def test_a_symlink_loop_named_as_a_table_is_named_as_such(tmp_path: Path) -> None:
    """Defect 10: a link loop called quotes.csv was reported as 'names that match no table'."""
    loop = tmp_path / "quotes.csv"
    loop.symlink_to(loop)
    with pytest.raises(ContractError, match=r"quotes.csv: named as a table file but a symbolic "
                                            r"link that leads nowhere"):
        ingest_landing(tmp_path)


def test_a_folder_named_as_a_table_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "trades_2024.csv").mkdir()
    with pytest.raises(ContractError, match=r"trades_2024\.csv: named as a table file but not a "
                                            r"regular file"):
        ingest_landing(tmp_path)


def test_lines_after_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    """Defect 10: after blank lines the reported line was off (said 4, really 6)."""
    from sources import data_lines

    f = _write(tmp_path / "parent_orders.csv",
               ORDERS_HEADER + _order("O1") + "\n\n" + _order("O2") + "\n"
               + 'O3,"AM\nZN",1,100,2024-04-11T14:00:00Z,2024-04-11T15:00:00Z,twap\n'
               + _order("O4"))
    raw = read_table_file(f)
    assert raw["order_id"].tolist() == ["O1", "O2", "O3", "O4"]
    assert data_lines(f, len(raw)).tolist() == [2, 5, 7, 9]
    plain = _write(tmp_path / "plain" / "parent_orders.csv", ORDERS_HEADER + _order("O1"))
    assert data_lines(plain, 1) is None  # row r is on line r + 2


def test_non_utf8_is_reported_at_its_line_and_byte(tmp_path: Path) -> None:
    """Defect 10: a bad byte at offset 110 on line 2 was reported as 'position 3'."""
    body = (ORDERS_HEADER + "O1,AMZN,1,100,2024-04-11T14:00:00Z,2024-04-11T15:00:00Z,tw").encode()
    f = tmp_path / "parent_orders.csv"
    f.write_bytes(body + b"\xffp\n")
    off = len(body)
    with pytest.raises(ContractError, match=rf"not UTF-8: byte 0xff at line 2, column "
                                            rf"{off - len(ORDERS_HEADER) + 1} \(byte offset {off}\)"):
        read_table_file(f)
