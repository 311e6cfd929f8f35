"""Daily bars, membership and index readers: tiny in-memory cases, then the real files.

The real-data tests are marked ``realdata``; they read ``bestex.settings.require_data_dir()`` and
therefore fail (not skip) when the shared data is missing. The tarball is read once per module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bestex.settings import require_data_dir
from sources.index_daily import INDEX_FILES, VIX_FILE, read_index_daily, read_vix
from sources.sp500 import (
    DAILY_BARS_TARBALL,
    MEMBERSHIP_CHANGES,
    MEMBERSHIP_SPANS,
    RULE_RANGE,
    RULE_SESSION,
    RULE_UNIQUE,
    classify_exit_reason,
    cleanse_daily_bars,
    exit_reason_coverage,
    parse_daily_bars,
    read_daily_bars,
    read_membership,
    session_close_utc,
)
from validation.contracts import ContractError, DailyBarsSchema
from validation.errors import SurvivorshipError
from validation.quarantine import cleanse_contract
from validation.universe import check_survivorship, point_in_time_universe, survivorship_report

# --------------------------------------------------------------------------- tiny, in memory
ISO = b"date,open,high,low,close,volume\n2013-03-01,10,11,9,10.5,100\n2013-03-04,10,12,9,11,0\n"
SWAPPED = b"date,high,low,open,close,volume\n2013-03-01,11,9,10,10.5,100\n"  # open=10 high=11 low=9
MDY_CRLF = b"date,open,high,low,close,volume\r\n3/1/2013,10,11,9,10.5,100\r\n12/2/2013,1,2,1,1,5\r\n"
BAD = (b"date,open,high,low,close,volume\n"
       b"2013-03-01,10,11,9,12,100\n"        # row 0: close above high
       b"2017-04-14,10,11,9,10,0\n"          # row 1: Good Friday, not a session
       b"2013-03-04,10,x,9,10,1\n"           # row 2: high is not a number
       b"2013-03-05,10,11,9,10,1\n"          # row 3: clean
       b"2013-03-05,10,11,9,10,1\n")         # row 4: same (date, symbol) again


def test_columns_are_read_by_name_and_both_date_formats_parse():
    res = parse_daily_bars({"d/ISO.csv": ISO, "d/SWAP.csv": SWAPPED, "d/MDY.csv": MDY_CRLF},
                           source="mem")
    c = res.clean.set_index(["symbol", "date"])
    assert c.loc[("SWAP", pd.Timestamp("2013-03-01")), ["open", "high", "low"]].tolist() == [10, 11, 9]
    assert c.loc[("MDY", pd.Timestamp("2013-12-02")), "volume"] == 5.0
    assert res.rows_in == 5
    assert res.reconciles
    assert len(res.quarantine) == 0
    assert res.zero_volume_rows == 1, "volume 0 is valid and counted"
    assert res.data_spans.set_index("symbol").loc["MDY", "last_date"] == pd.Timestamp("2013-12-02")
    DailyBarsSchema.validate(res.clean)


def test_available_at_is_the_session_close_with_early_closes():
    closes = session_close_utc(pd.to_datetime(["2013-03-01", "2013-11-29", "2013-07-04"]))
    assert closes.tolist()[:2] == [pd.Timestamp("2013-03-01 21:00", tz="UTC"),
                                   pd.Timestamp("2013-11-29 18:00", tz="UTC")]
    assert pd.isna(closes.iloc[2]), "Independence Day is no session"


def test_bad_rows_are_quarantined_with_file_row_and_rule():
    res = parse_daily_bars({"d/X.csv": BAD}, source="mem")
    q = res.quarantine.set_index("row")
    assert res.rows_in == 5
    assert len(res.clean) == 1
    assert res.reconciles
    assert q["rule"].to_dict() == {0: RULE_RANGE, 1: RULE_SESSION,
                                   2: "type: high must be float64", 4: RULE_UNIQUE}
    assert (q["source"] == "mem:d/X.csv").all()
    assert '"date_text": "2017-04-14"' in q.loc[1, "record"]


def test_vectorized_check_agrees_with_the_pandera_contract():
    """Same rejected rows as ``cleanse_contract`` for the contract's own rules."""
    raw = pd.DataFrame({
        "date": pd.to_datetime(["2013-03-01"] * 5), "symbol": ["A", "B", "C", "D", ""],
        "open": [10, -1, 10, 10, 10.0], "high": [11, 11, 9, 11, 11.0], "low": [9, 9, 9, 9, 9.0],
        "close": [10, 10, 10, 10, 10.0], "volume": [1, 1, 1, -5, 1.0]})
    raw["available_at"] = session_close_utc(raw["date"])
    mine = cleanse_daily_bars(raw.drop(columns="available_at").assign(date_text="2013-03-01"),
                              source="t")
    theirs = cleanse_contract("daily_bars", raw, source="t")
    assert sorted(mine.quarantine["row"]) == sorted(theirs.quarantine["row"]) == [1, 2, 3, 4]
    assert mine.quarantine.set_index("row")["rule"].to_dict() == {
        1: "open: greater_than(0)", 2: RULE_RANGE, 3: "volume: greater_than_or_equal_to(0)",
        4: "symbol: str_length(1, None)"}


def test_header_only_file_gives_no_rows():
    res = parse_daily_bars({"d/EMPTY.csv": b"date,open,high,low,close,volume\n"}, source="mem")
    assert res.rows_in == 0
    assert res.reconciles
    assert res.data_spans.empty


def test_missing_column_names_the_file():
    with pytest.raises(ContractError, match=r"mem:d/NOVOL.csv: daily_bars source lacks columns \['volume'\]"):
        parse_daily_bars({"d/NOVOL.csv": b"date,open,high,low,close\n2013-03-01,1,1,1,1\n"},
                         source="mem")


@pytest.mark.parametrize(("text", "expected"), [
    ("Founder Michael Dell and Silver Lake Partners acquired Dell.[193]", "acquired"),
    ("Kraft merger with Heinz.[163]", "acquired"),
    ("PCG filed for bankruptcy[89]", "bankrupt"),
    ("The FDIC placed Signature Bank into FDIC Receivership.[31]", "bankrupt"),
    ("MXIM delisted from NASDAQ exchange.[258]", "delisted"),
    ("Market capitalization change.[6]", "replaced"),
    ("COTY replaces DO[127]", "replaced"),
    ("JEF spun off SPB.[76]", "other"),
    (None, "other"),
])
def test_exit_reason_classes(text, expected):
    assert classify_exit_reason(text) == expected


def test_membership_matches_the_removal_nearest_the_span_end(tmp_path):
    spans = tmp_path / "spans.csv"
    spans.write_text("ticker,start_date,end_date\nAAA,2000-01-03,2013-10-29\n"
                     "BBB,2001-01-02,\nCCC,2002-01-02,2014-05-01\nAAA,2015-01-02,2016-01-04\n")
    changes = tmp_path / "changes.csv"
    changes.write_text("Date,Added_Ticker,Removed_Ticker,Reason\n"
                       "2013-10-30,ZZZ,AAA,AAA acquired by ZZZ.[1]\n"          # 1 day after end
                       "2016-03-01,YYY,AAA,Market cap change.\n")            # 57 days: too far
    m = read_membership(spans, changes)
    assert m["exit_reason"].tolist()[:1] == ["acquired"]
    assert m["exit_reason"].isna().tolist() == [False, True, True, True]
    assert exit_reason_coverage(m)["with_reason"] == 1


def test_membership_span_ending_before_it_starts_is_a_contract_error(tmp_path):
    spans = tmp_path / "spans.csv"
    spans.write_text("ticker,start_date,end_date\nAAA,2010-01-04,2009-01-02\n")
    with pytest.raises(ContractError, match=r"spans\.csv: membership contract failed"):
        read_membership(spans)


# --------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def bars():
    return read_daily_bars(require_data_dir() / DAILY_BARS_TARBALL)


@pytest.fixture(scope="module")
def membership():
    d = require_data_dir()
    return read_membership(d / MEMBERSHIP_SPANS, d / MEMBERSHIP_CHANGES)


@pytest.fixture(scope="module")
def universe(bars, membership):
    sessions = pd.DatetimeIndex(np.sort(bars.clean["date"].unique()))
    return point_in_time_universe(membership, bars.clean, sessions[sessions >= "2013-03-01"])


@pytest.mark.realdata
def test_tarball_counts_reconcile(bars):
    assert bars.files == 640
    assert len(bars.data_spans) == 640
    assert bars.rows_in == 619_626
    assert bars.reconciles
    assert bars.cleanse.counts_by_rule == {RULE_RANGE: 41, RULE_SESSION: 2}
    assert bars.zero_volume_rows == 406


@pytest.mark.realdata
def test_data_spans_show_early_enders_and_late_starters(bars):
    s = bars.data_spans.set_index("symbol")
    assert (s["last_date"] < "2018-02-26").sum() == 138, "tickers whose data ends early"
    assert (s["first_date"] > "2013-03-01").sum() == 181
    assert s.loc["DELL", ["first_date", "last_date"]].tolist() == [pd.Timestamp("2013-02-28"),
                                                                    pd.Timestamp("2013-10-29")]


@pytest.mark.realdata
def test_quirky_files_parse(bars):
    c = bars.clean.set_index(["symbol", "date"]).sort_index()
    # LIFE.csv line 2: 5/7/2015,185.5,210.139999,180.600006,209.300003,235893 (CRLF)
    assert c.loc[("LIFE", pd.Timestamp("2015-05-07")), ["open", "high", "low", "close", "volume"]
                 ].tolist() == [185.5, 210.139999, 180.600006, 209.300003, 235893.0]
    assert len(c.loc["LIFE"]) == 707
    assert len(c.loc["WLP"]) == 1280
    assert c.loc[("WLP", pd.Timestamp("2013-01-28")), "open"] == 66.269997
    # AABA.csv (date,high,low,open,...): 2013-02-28,21.56999969482422,21.049999237060547,21.0599994...
    row = c.loc[("AABA", pd.Timestamp("2013-02-28"))]
    assert (row["open"], row["high"], row["low"]) == (21.059999465942383, 21.56999969482422,
                                                      21.049999237060547)
    assert c.loc[("ABT", pd.Timestamp("2013-11-29")), "available_at"] == pd.Timestamp(
        "2013-11-29 18:00", tz="UTC"), "early close the day after Thanksgiving"


@pytest.mark.realdata
def test_membership_reasons(membership):
    dell = membership[membership["symbol"] == "DELL"].iloc[0]
    assert dell["end_date"] == pd.Timestamp("2013-10-29")
    assert dell["exit_reason"] == "acquired"
    cov = exit_reason_coverage(membership)
    assert (cov["spans"], cov["ended"], cov["with_reason"]) == (1230, 727, 308)


@pytest.mark.realdata
def test_dell_in_universe_while_a_member_only(universe):
    dell = universe.loc[universe["symbol"] == "DELL", "date"]
    assert pd.Timestamp("2013-04-01") in set(dell)
    assert dell.max() == pd.Timestamp("2013-10-28"), "left the S&P 500 on 2013-10-29"


@pytest.mark.realdata
def test_real_universe_keeps_later_leavers(universe, membership):
    rep = survivorship_report(universe[universe["date"] <= "2018-12-31"], membership)
    assert rep["later_leavers"].sum() > 0
    assert rep["outside_span"].sum() == 0
    check_survivorship(rep)
    survivors = universe[~universe["symbol"].isin(
        membership.loc[membership["end_date"].notna(), "symbol"])]
    with pytest.raises(SurvivorshipError, match="no member leaves the index"):
        check_survivorship(survivorship_report(survivors, membership))


@pytest.mark.realdata
def test_index_and_vix_files():
    d = require_data_dir()
    spx = read_index_daily(d / INDEX_FILES["SPX"], "SPX")
    assert spx.rows_in == 5031
    assert spx.reconciles
    assert len(spx.quarantine) == 0
    first = spx.clean.iloc[0]
    assert (first["date"], first["open"], first["close"]) == (pd.Timestamp("1999-01-04"),
                                                              1229.22998, 1228.099976)
    ixic = read_index_daily(d / INDEX_FILES["IXIC"], "IXIC")
    assert ixic.clean["close"].iloc[-1] == 6635.279785
    vix = read_vix(d / VIX_FILE)
    assert (vix.rows_in, len(vix.clean), len(vix.quarantine)) == (1305, 1259, 46)
    assert vix.clean.iloc[0][["vix", "available_at"]].tolist() == [
        13.76, pd.Timestamp("2014-01-03 21:15", tz="UTC")]
