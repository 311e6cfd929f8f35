"""Data contracts: one tiny hand-checkable fixture per table and per bound.

Each case starts from a valid row, breaks exactly one thing, and asserts which row fails and
which rule names it.
"""

import pandas as pd
import pytest

from validation.contracts import (
    CONTRACTS,
    USER_TABLES,
    ContractError,
    check_columns,
    columns,
    empty,
    split_valid,
)
from validation.quarantine import cleanse_contract

T0 = "2012-06-21T13:30:00Z"
T1 = "2012-06-21T13:30:01Z"

VALID = {
    "quotes": {"ts": T0, "available_at": T1, "symbol": "AMZN", "bid_px": 220.0, "bid_sz": 100,
               "ask_px": 220.1, "ask_sz": 200},
    "depth": {"ts": T0, "available_at": T1, "symbol": "AAPL", "level": 2, "bid_px": 580.0,
              "bid_sz": 10, "ask_px": 580.5, "ask_sz": 5},
    "trades": {"ts": T0, "available_at": T0, "symbol": "AMZN", "px": 220.05, "qty": 100,
               "aggressor": 1},
    "daily_bars": {"date": "2013-03-01", "symbol": "DELL", "open": 13.0, "high": 13.5,
                   "low": 12.9, "close": 13.2, "volume": 1e6,
                   "available_at": "2013-03-01T21:00:00Z"},
    "membership": {"symbol": "DELL", "start_date": "1996-01-02", "end_date": "2013-10-29"},
    "parent_orders": {"order_id": "P1", "symbol": "AMZN", "side": -1, "qty": 5000,
                      "decision_ts": T0, "end_ts": "2012-06-21T14:30:00Z", "strategy": "twap"},
    "child_fills": {"order_id": "P1", "fill_ts": T1, "px": 220.0, "qty": 100, "fee": -0.2,
                    "liquidity": "maker", "venue": "XNAS"},
    "labels": {"order_id": "P1", "decision_ts": T0, "t1": "2012-06-21T14:30:00Z",
               "arrival_mid": 220.05, "avg_px": 220.1, "filled_qty": 5000, "is_bps": 2.27,
               "delay_bps": 0.1, "spread_bps": 2.0, "impact_bps": 0.5, "timing_bps": -0.3,
               "opportunity_bps": 0.0, "fees_bps": -0.03},
    "news": {"ts": T0, "available_at": T1, "symbol": "AMZN",
             "headline": "Amazon misses revenue forecast, cuts outlook", "event_type": "earnings"},
}

# (table, column, bad value, expected rule fragment)
BREAKS = [
    ("quotes", "bid_px", 0.0, "bid_px: greater_than(0)"),
    ("quotes", "ask_sz", -5, "ask_sz: greater_than(0)"),
    ("quotes", "bid_px", 221.0, "bid_px <= ask_px"),
    ("quotes", "available_at", "2012-06-21T13:29:59Z", "available_at >= ts"),
    ("quotes", "ask_px", "abc", "type: ask_px must be float64"),
    ("depth", "level", 0, "level: greater_than_or_equal_to(1)"),
    ("depth", "bid_px", 581.0, "bid_px <= ask_px"),
    ("depth", "bid_sz", -1, "bid_sz: greater_than_or_equal_to(0)"),
    ("trades", "aggressor", 2, "aggressor: isin"),
    ("trades", "qty", 0, "qty: greater_than(0)"),
    ("trades", "px", -220.0, "px: greater_than(0)"),
    ("daily_bars", "high", 13.1, "low <= min(open, close) and high >= max(open, close)"),
    ("daily_bars", "volume", -1, "volume: greater_than_or_equal_to(0)"),
    ("daily_bars", "available_at", "2013-03-01T05:00:00Z", "available_at >= session close"),
    ("daily_bars", "date", "2013-03-02", "date is a weekday"),
    ("daily_bars", "date", "2013-03-01T13:45:00", "date is a weekday without a time of day"),
    ("quotes", "ask_px", "inf", "type: ask_px must be a finite float64"),
    ("trades", "px", "1e400", "type: px must be a finite float64"),
    ("membership", "end_date", "1990-01-01", "end_date >= start_date"),
    ("parent_orders", "side", 0, "side: isin"),
    ("parent_orders", "end_ts", "2012-06-21T13:00:00Z", "end_ts >= decision_ts"),
    ("child_fills", "liquidity", "both", "liquidity: isin"),
    ("child_fills", "px", 0.0, "px: greater_than(0)"),
    ("labels", "t1", "2012-06-21T13:00:00Z", "t1 >= decision_ts"),
    ("labels", "arrival_mid", -1.0, "arrival_mid: greater_than(0)"),
    ("labels", "filled_qty", -1.0, "filled_qty: greater_than_or_equal_to(0)"),
    ("news", "available_at", "2012-06-21T13:29:59Z", "available_at >= ts"),
    ("news", "headline", "Amazon misses\nforecast", "headline: str_matches"),
    ("news", "headline", "Amazon misses forecast\n", "headline: str_matches"),
    ("news", "headline", "   ", "headline: str_matches"),
    ("news", "headline", "x" * 1001, "headline: str_length"),
    ("news", "symbol", "AM\x00ZN", "symbol: str_matches"),
    ("news", "ts", "06/21/2012 13:30", "type: ts must be an ISO 8601 timestamp"),
]


def _frame(table: str, n: int = 3) -> pd.DataFrame:
    df = pd.DataFrame([dict(VALID[table]) for _ in range(n)])
    if table in ("daily_bars", "membership"):  # one bar per (date, symbol); distinct spans
        df["symbol"] = ["DELL", "EMC", "YHOO", "SNDK"][:n]
    elif table == "news":  # distinct headlines: an exact repeat is a duplicate
        df["headline"] = [f"{df['headline'].iat[0]} ({i})" for i in range(n)]
    else:  # distinct rows: an exact repeat is a duplicate
        size = {"quotes": "bid_sz", "depth": "bid_sz", "labels": "filled_qty"}.get(table, "qty")
        df[size] = [float(df[size].iat[0]) + i for i in range(n)]
    return df


def test_every_user_table_has_a_contract_and_a_fixture():
    assert set(USER_TABLES) <= set(CONTRACTS)
    assert set(VALID) == set(USER_TABLES)


@pytest.mark.parametrize("table", USER_TABLES)
def test_valid_rows_pass_and_are_coerced(table):
    df = _frame(table)
    if "order_id" in df.columns and table in ("parent_orders", "labels"):
        df["order_id"] = ["P1", "P2", "P3"]  # unique per order
    clean, failures = split_valid(table, df)
    assert failures == []
    assert len(clean) == 3
    for col, (dtype, _) in columns(table).items():
        if col in clean.columns and dtype.startswith("string"):
            assert pd.api.types.is_string_dtype(clean[col].dtype), col
        elif col in clean.columns:
            assert str(clean[col].dtype) == dtype, col


@pytest.mark.parametrize(("table", "column", "value", "rule"), BREAKS)
def test_one_broken_row_is_named_with_its_rule(table, column, value, rule):
    df = _frame(table)
    if table in ("parent_orders", "labels"):
        df["order_id"] = ["P1", "P2", "P3"]
    df[column] = df[column].astype(object)
    df.loc[1, column] = value

    clean, failures = split_valid(table, df)

    assert len(clean) == 2
    assert {f.row for f in failures} == {1}
    assert any(rule in f.rule for f in failures), [f.rule for f in failures]


def test_daily_bars_keep_one_bar_per_symbol_and_date():
    df = _frame("daily_bars").assign(symbol="DELL", volume=[1e6, 2e6, 3e6])  # same (date, symbol)
    # thrice with different volumes: keep the first
    clean, failures = split_valid("daily_bars", df)
    assert len(clean) == 1
    assert [(f.row, f.rule) for f in failures] == [(1, "unique (date, symbol)"),
                                                   (2, "unique (date, symbol)")]


def test_an_exact_repeat_keeps_its_first_occurrence():
    df = _frame("child_fills")
    df = pd.concat([df, df.iloc[[1]]], ignore_index=True)
    clean, failures = split_valid("child_fills", df)
    assert len(clean) == 3
    assert [(f.row, f.rule, f.value) for f in failures] == [
        (3, "duplicate: every column repeats an earlier row", "repeats row 1")]


def test_duplicate_order_ids_fail_uniqueness():
    df = _frame("parent_orders")  # three rows with order_id P1
    _, failures = split_valid("parent_orders", df)
    assert {f.row for f in failures} == {0, 1, 2}
    assert all("order_id: field_uniqueness" in f.rule for f in failures)


def test_missing_and_unknown_columns_are_refused_whole():
    df = _frame("quotes").drop(columns=["ask_sz"]).assign(venue="X")
    with pytest.raises(ContractError, match=r"quotes.csv: quotes contract: missing columns \['ask_sz'\]; unknown columns \['venue'\]"):
        check_columns("quotes", df, source="quotes.csv")


def test_optional_columns_may_be_absent_or_present():
    df = _frame("parent_orders")
    df["order_id"] = ["P1", "P2", "P3"]
    df["limit_px"] = [None, 221.0, -1.0]
    clean, failures = split_valid("parent_orders", df)
    assert [f.row for f in failures] == [2]
    assert len(clean) == 2


def test_cleanse_contract_reconciles_and_keeps_the_source_row():
    df = _frame("trades", 4)
    df["px"] = df["px"].astype(object)
    df.loc[2, "px"] = "abc"
    df.loc[3, "qty"] = -5

    result = cleanse_contract("trades", df, source="trades.csv")

    assert result.reconciles
    assert (result.rows_in, len(result.clean), len(result.quarantine)) == (4, 2, 2)
    assert list(result.quarantine["row"]) == [2, 3]
    assert list(result.quarantine["rule"]) == ["type: px must be float64", "qty: greater_than(0)"]
    assert '"px": "abc"' in result.quarantine["record"].iloc[0]
    assert result.counts_by_rule == {"type: px must be float64": 1, "qty: greater_than(0)": 1}


@pytest.mark.parametrize("table", list(CONTRACTS))
def test_empty_frames_have_contract_dtypes(table):
    frame = empty(table)
    assert len(frame) == 0
    clean, failures = split_valid(table, frame)
    assert failures == []
    assert len(clean) == 0


def test_a_name_with_a_trailing_line_break_is_refused():
    """'$' matches before a final newline: the name rule ends in \\Z (found in review)."""
    df = _frame("trades")
    df.loc[1, "symbol"] = "AMZN\n"
    _, failures = split_valid("trades", df)
    assert [(f.row, f.column) for f in failures] == [(1, "symbol")]
