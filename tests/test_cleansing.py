"""Market-data cleansing rules, one tiny hand-checkable fixture per rule.

Times are seconds after 2012-06-21 14:00:00 UTC (10:00 New York, inside the XNYS session).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pydantic
import pytest

from validation.cleansing import (
    READ_ERROR,
    RULE_ORDER,
    SOURCE_ROW,
    TABLE_RULES,
    CleanseConfig,
    cleanse_market,
)
from validation.contracts import ContractError, split_valid

T0 = pd.Timestamp("2012-06-21 14:00:00", tz="UTC")
NO_TICKS = CleanseConfig(bad_tick=False)


def at(*seconds: float) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([T0 + pd.Timedelta(seconds=s) for s in seconds])


def trades(px, qty=None, aggressor=None, secs=None, symbol="X", latency_s=0.0) -> pd.DataFrame:
    n = len(px)
    ts = at(*(secs if secs is not None else range(n)))
    return pd.DataFrame({
        "ts": ts, "available_at": ts + pd.Timedelta(seconds=latency_s),
        "symbol": symbol if isinstance(symbol, str) else list(symbol),
        "px": px, "qty": qty if qty is not None else [100.0] * n,
        "aggressor": aggressor if aggressor is not None else [1] * n,
    })


def quotes(bid, ask, secs=None, bid_sz=None, ask_sz=None) -> pd.DataFrame:
    n = len(bid)
    ts = at(*(secs if secs is not None else range(n)))
    return pd.DataFrame({
        "ts": ts, "available_at": ts, "symbol": "X",
        "bid_px": bid, "bid_sz": bid_sz if bid_sz is not None else [100.0] * n,
        "ask_px": ask, "ask_sz": ask_sz if ask_sz is not None else [100.0] * n,
    })


def run(table, raw, config=NO_TICKS):
    res = cleanse_market(table, raw, source="fixture.csv", config=config)
    assert res.rows_in == len(raw) == len(res.clean) + len(res.quarantine)
    _, failures = split_valid(table, res.clean, source="clean")
    assert failures == []
    return res


def rules(res) -> dict[int, str]:
    return dict(zip(res.quarantine["row"].tolist(), res.quarantine["rule"].tolist(), strict=True))


# ----------------------------------------------------------------------------- value rules
def test_type_rule_names_column_and_value():
    raw = trades([100.0, 100.0, 100.0]).astype({"px": object, "qty": object})
    raw.loc[1, "px"] = "abc"
    raw.loc[2, "qty"] = "1O0"

    res = run("trades", raw)

    assert rules(res) == {1: "type", 2: "type"}
    detail = res.quarantine["detail"].tolist()
    assert detail[0] == "type: px='abc' is not a number"
    assert detail[1] == "type: qty='1O0' is not a number"
    assert res.clean["px"].tolist() == [100.0]


def test_string_columns_are_converted():
    raw = trades([100.0, 100.5]).astype(str)

    res = run("trades", raw)

    assert len(res.clean) == 2
    assert res.clean["ts"].iloc[1] == T0 + pd.Timedelta(seconds=1)
    assert res.clean["aggressor"].dtype == np.int64


def test_non_positive_price_and_size():
    raw = trades([100.0, 0.0, 100.0, -1.0], qty=[100.0, 100.0, 0.0, 100.0])

    res = run("trades", raw)

    assert rules(res) == {1: "non_positive_price", 2: "non_positive_size", 3: "non_positive_price"}
    assert res.quarantine["detail"].tolist()[1] == "non_positive_size: qty=0.0"


def test_missing_value():
    raw = trades([100.0, np.nan, 100.0])

    res = run("trades", raw)

    assert rules(res) == {1: "missing"}
    assert res.quarantine["detail"].iloc[0] == "missing: px is null"


def test_crossed_quote_is_rejected_and_locked_quote_kept():
    raw = quotes(bid=[10.0, 10.2, 10.1], ask=[10.1, 10.1, 10.1])

    res = run("quotes", raw)

    assert rules(res) == {1: "crossed_quote"}
    assert res.quarantine["detail"].iloc[0] == "crossed_quote: bid_px=10.2 > ask_px=10.1"
    assert res.clean["bid_px"].tolist() == [10.0, 10.1]  # row 2 is locked: kept


def test_empty_book_side():
    raw = quotes(bid=[10.0, np.nan, 10.0], ask=[10.1, 10.1, np.nan], bid_sz=[100.0, 0.0, 100.0],
                 ask_sz=[100.0, 100.0, 0.0])

    res = run("quotes", raw)

    assert rules(res) == {1: "empty_book_side", 2: "empty_book_side"}
    assert res.quarantine["detail"].tolist() == ["empty_book_side: bid side empty (bid_px is null)",
                                                 "empty_book_side: ask side empty (ask_px is null)"]


def test_available_before_event():
    raw = trades([100.0, 100.0], latency_s=0.001)
    raw.loc[1, "available_at"] = raw.loc[1, "ts"] - pd.Timedelta(milliseconds=1)

    res = run("trades", raw)

    assert rules(res) == {1: "available_before_event"}
    assert "available_at=2012-06-21T14:00:00.999000+00:00 < ts=2012-06-21T14:00:01+00:00" in \
        res.quarantine["detail"].iloc[0]


def test_bad_aggressor():
    raw = trades([100.0, 100.0, 100.0], aggressor=[1, 2, 0])

    res = run("trades", raw)

    assert rules(res) == {1: "bad_aggressor"}


def test_non_finite_numbers_fail_type():
    raw = trades([100.0, np.inf, 100.0, 100.0], qty=[100.0, 100.0, -np.inf, 100.0])
    raw = raw.astype({"px": object})
    raw.loc[3, "px"] = "inf"
    q = quotes(bid=[10.0, 10.0], ask=[10.1, np.inf])

    res, res_q = run("trades", raw), run("quotes", q)

    assert rules(res) == {1: "type", 2: "type", 3: "type"}
    assert res.quarantine["detail"].tolist() == [
        "type: px=inf is not a finite number",
        "type: qty=-inf is not a finite number; non_positive_size: qty=-inf",
        "type: px=inf is not a finite number",
    ]
    assert rules(res_q) == {1: "type"}
    assert res_q.quarantine["detail"].iloc[0] == "type: ask_px=inf is not a finite number"
    assert np.isfinite(res_q.clean["ask_px"]).all()


def test_first_rule_wins_and_detail_lists_all():
    raw = trades([100.0, -1.0], qty=[100.0, -5.0])
    raw.loc[1, "available_at"] = raw.loc[1, "ts"] - pd.Timedelta(seconds=1)

    res = run("trades", raw)

    assert rules(res) == {1: "non_positive_price"}
    detail = res.quarantine["detail"].iloc[0]
    assert detail.startswith("non_positive_price: px=-1.0; non_positive_size: qty=-5.0; ")
    assert "available_before_event" in detail


# ----------------------------------------------------------------------------- row rules
def test_duplicate_keeps_first():
    raw = trades([100.0, 100.1, 100.1, 100.2, 100.1], secs=[0, 1, 1, 2, 1])

    res = run("trades", raw)

    assert rules(res) == {2: "duplicate", 4: "duplicate"}
    assert res.quarantine["detail"].tolist() == ["duplicate: repeats row 1", "duplicate: repeats row 1"]


def test_same_time_different_content_is_not_a_duplicate():
    raw = trades([100.0, 100.1, 100.2], secs=[0, 1, 1])

    assert len(run("trades", raw).quarantine) == 0


def test_extra_columns_tell_equal_rows_apart():
    raw = trades([100.0, 100.0, 100.0], secs=[0, 1, 1]).assign(order_id=[1, 2, 3])

    res = run("trades", raw)

    assert len(res.quarantine) == 0
    assert list(res.clean.columns) == ["ts", "available_at", "symbol", "px", "qty", "aggressor"]


def test_out_of_order_is_quarantined_not_resorted():
    raw = trades([100.0, 100.1, 100.2, 100.3], secs=[0, 2, 1, 3])

    res = run("trades", raw)

    assert rules(res) == {2: "out_of_order"}
    assert res.clean["px"].tolist() == [100.0, 100.1, 100.3]


def test_out_of_order_is_per_symbol():
    raw = trades([100.0, 50.0, 100.1, 50.1], secs=[5, 1, 6, 2], symbol=["A", "B", "A", "B"])

    res = run("trades", raw)

    assert len(res.quarantine) == 0
    assert res.clean["symbol"].tolist() == ["A", "B", "A", "B"]


def test_outside_session():
    # 13:00 UTC = 09:00 New York (pre-open); 20:30 UTC = 16:30 (after close); 2012-06-23 is a Saturday
    ts = pd.DatetimeIndex(["2012-06-21 13:00", "2012-06-21 13:30", "2012-06-21 20:00",
                           "2012-06-21 20:30", "2012-06-23 15:00"], tz="UTC")
    raw = pd.DataFrame({"ts": ts, "available_at": ts, "symbol": "X", "px": 100.0, "qty": 1.0,
                        "aggressor": 0})

    res = run("trades", raw)
    res_24h = run("trades", raw, config=CleanseConfig(calendar=None, bad_tick=False))

    assert rules(res) == {0: "outside_session", 3: "outside_session", 4: "outside_session"}
    assert len(res_24h.quarantine) == 0


def test_bad_tick_that_reverts_is_caught():
    px = [100.0, 100.1, 100.0, 100.1, 100.0, 100.1, 103.0, 100.0, 100.1, 100.0]
    raw = trades(px)

    res = run("trades", raw, config=CleanseConfig())

    assert rules(res) == {6: "bad_tick"}
    assert res.quarantine["detail"].iloc[0] == (
        "bad_tick: px=103 is more than 1.0005 from every recent price (nearest 100.1, "
        "median 100.05); back at row 7")


def test_two_row_bad_tick_is_caught():
    px = [100.0, 100.1, 100.0, 100.1, 100.0, 100.1, 97.0, 97.1, 100.1, 100.0]

    res = run("trades", trades(px), config=CleanseConfig())

    assert rules(res) == {6: "bad_tick", 7: "bad_tick"}


def test_level_shift_that_persists_is_not_a_bad_tick():
    px = [100.0, 100.1, 100.0, 100.1, 100.0, 100.1, 103.0, 103.1, 103.0, 103.1, 103.0, 103.1]

    res = run("trades", trades(px), config=CleanseConfig())

    assert len(res.quarantine) == 0


def test_bid_ask_bounce_across_a_wide_spread_is_not_a_bad_tick():
    # prints alternate between a bid of 100 and an ask of 101 (100 bps): each jump reverts, but
    # every print repeats a level seen in the window
    px = [100.0, 100.0, 100.0, 101.0, 100.0, 100.0, 100.0, 100.0, 101.0, 100.0, 101.0, 100.0]

    res = run("trades", trades(px), config=CleanseConfig())

    assert len(res.quarantine) == 0


def test_overnight_gap_restarts_the_reference():
    # close at 100, open at 103 the next morning, then 100.2: the opening print is not judged
    # against yesterday (fewer than bad_tick_min_periods rows since the pause)
    secs = [0, 1, 2, 3, 4, 5, 86_400, 86_401, 86_402, 86_403]
    px = [100.0, 100.1, 100.0, 100.1, 100.0, 100.1, 103.0, 100.2, 100.3, 100.2]

    res = run("trades", trades(px, secs=secs), config=CleanseConfig())
    no_reset = run("trades", trades(px, secs=secs), config=CleanseConfig(bad_tick_reset_s=None))

    assert len(res.quarantine) == 0
    assert rules(no_reset) == {6: "bad_tick"}


def test_bad_tick_on_quote_mid():
    bid = [10.00, 10.01, 10.00, 10.01, 10.00, 10.01, 11.00, 10.00, 10.01]
    ask = [b + 0.02 for b in bid]

    res = run("quotes", quotes(bid, ask), config=CleanseConfig())

    assert rules(res) == {6: "bad_tick"}


# ----------------------------------------------------------------------------- reserved columns
def test_source_row_column_points_quarantine_into_the_file():
    # rows derived from file rows 10, 20, 30, 40, 50 (a reader's subset of the file)
    raw = trades([100.0, 100.1, 100.1, -1.0, 100.1], secs=[0, 1, 1, 2, 3])
    raw[SOURCE_ROW] = np.array([10, 20, 30, 40, 50])

    res = run("trades", raw)

    assert rules(res) == {30: "duplicate", 40: "non_positive_price"}  # file rows, not 2 and 3
    assert res.quarantine["detail"].iloc[0] == "duplicate: repeats row 20"
    assert SOURCE_ROW not in res.clean.columns
    assert SOURCE_ROW not in json.loads(res.quarantine["record"].iloc[0])


def test_bad_source_row_column_is_a_contract_error():
    raw = trades([100.0, 100.1]).assign(**{SOURCE_ROW: [0.5, 1.0]})

    with pytest.raises(ContractError, match=r"fixture\.csv: column '_src_row' must hold integers"):
        cleanse_market("trades", raw, source="fixture.csv")


def test_read_error_column_fails_type():
    raw = trades([100.0, 100.0, 100.0], secs=[0, 1, 2])
    raw[READ_ERROR] = pd.array([None, "", "message type unreadable: 'x'"], dtype="string")

    res = run("trades", raw)

    assert rules(res) == {2: "type"}
    assert res.quarantine["detail"].iloc[0] == "type: message type unreadable: 'x'"
    assert READ_ERROR not in res.clean.columns


# ----------------------------------------------------------------------------- quarantine text
def test_record_is_the_json_of_the_source_row():
    raw = trades([100.0, 1e-05, np.nan, 100.0], qty=[100.0, -1.0, 5.0, 1.0],
                 secs=[0, 1.000001, 2.123456789, 3]).astype({"px": object})
    raw.loc[3, "px"] = 'a"b'
    raw["note"] = pd.array(["x", None, "z", "w"], dtype="string[pyarrow]")

    res = run("trades", raw)

    want = [json.dumps(r, default=str) for r in raw.iloc[[1, 2, 3]].to_dict(orient="records")]
    assert res.quarantine["record"].tolist() == want
    assert '"px": "a\\"b"' in want[2]
    assert split_valid("quarantine", res.quarantine)[1] == []


def test_a_file_of_mostly_bad_rows_is_quarantined_fast():
    # 10,000 distinct rows repeated 30 times: 290,000 duplicates, out-of-order rows, details and
    # records; ~30 us per row with a Python loop per row (9 s), well under a second vectorized
    base = trades(100.0 + np.arange(10_000) % 50 / 100, secs=np.arange(10_000) / 1000)
    raw = pd.concat([base] * 30, ignore_index=True)

    t0 = time.perf_counter()
    res = cleanse_market("trades", raw, source="fixture.csv", config=NO_TICKS)
    elapsed = time.perf_counter() - t0

    assert res.reconciles
    assert len(res.quarantine) == 290_000
    assert res.counts_by_rule == {"duplicate": 290_000}
    assert res.quarantine["detail"].iloc[-1] == "duplicate: repeats row 9999"
    assert res.quarantine["record"].iloc[-1] == json.dumps(
        raw.iloc[-1].to_dict(), default=str)
    assert elapsed < 3.0


def test_details_of_many_rules_at_once():
    raw = trades([100.0, 100.0, 100.0, 100.0], secs=[0, 5, 3, 4], aggressor=[1, 1, 7, 1])
    raw.loc[3, "available_at"] = raw.loc[3, "ts"] - pd.Timedelta(microseconds=1)

    res = run("trades", raw)

    assert res.quarantine["detail"].tolist() == [
        "bad_aggressor: aggressor=7 not in (-1, 0, 1)",
        "available_before_event: available_at=2012-06-21T14:00:03.999999+00:00 < "
        "ts=2012-06-21T14:00:04+00:00",
    ]
    raw.loc[3, "available_at"] = raw.loc[3, "ts"]
    res = run("trades", raw)
    assert res.quarantine["detail"].tolist() == [
        "bad_aggressor: aggressor=7 not in (-1, 0, 1)",
        "out_of_order: ts=2012-06-21T14:00:04+00:00 < 2012-06-21T14:00:05+00:00 seen earlier",
    ]


# ----------------------------------------------------------------------------- depth
def test_depth_rules():
    ts = at(0, 0, 1, 1, 2, 2)
    raw = pd.DataFrame({
        "ts": ts, "available_at": ts, "symbol": "X", "level": [1, 2, 1, 0, 1, 2],
        "bid_px": [10.0, np.nan, 10.0, 9.9, 10.3, 9.9],
        "bid_sz": [100.0, 0.0, -1.0, 5.0, 100.0, 5.0],
        "ask_px": [10.1, 10.2, 10.1, 10.2, 10.2, 10.3],
        "ask_sz": [100.0, 5.0, 100.0, 5.0, 100.0, 5.0],
    })

    res = run("depth", raw)

    assert rules(res) == {2: "negative_size", 3: "bad_level", 4: "crossed_quote"}
    assert res.clean["level"].tolist() == [1, 2, 2]
    assert np.isnan(res.clean["bid_px"].iloc[1])  # an empty level is valid depth


# ----------------------------------------------------------------------------- outages
def test_outage_for_a_gap():
    raw = quotes(bid=[10.0] * 4, ask=[10.1] * 4, secs=[0, 1, 91, 92], bid_sz=[1.0, 2.0, 3.0, 4.0])

    res = run("quotes", raw, config=CleanseConfig(calendar=None, gap_threshold_s=60.0))

    out = res.outages
    assert len(out) == 1
    assert out["start_ts"].iloc[0] == T0 + pd.Timedelta(seconds=1)
    assert out["end_ts"].iloc[0] == T0 + pd.Timedelta(seconds=91)
    assert out["gap_s"].iloc[0] == 90.0
    assert len(res.clean) == 4  # nothing deleted for a gap
    assert split_valid("outages", out)[1] == []


def test_outages_include_session_edges():
    # session 13:30-20:00 UTC; data from 14:00:00 to 14:00:03
    raw = quotes(bid=[10.0] * 4, ask=[10.1] * 4, bid_sz=[1.0, 2.0, 3.0, 4.0])

    out = run("quotes", raw, config=CleanseConfig(gap_threshold_s=60.0)).outages

    assert out["gap_s"].tolist() == [1800.0, 21597.0]
    assert str(out["start_ts"].iloc[0]) == "2012-06-21 13:30:00+00:00"
    assert str(out["end_ts"].iloc[1]) == "2012-06-21 20:00:00+00:00"


def test_depth_gaps_are_outages_and_trade_gaps_are_not():
    # a stretch without trades is a quiet market, not a feed outage
    cfg = CleanseConfig(calendar=None, gap_threshold_s=60.0)
    ts = at(0, 0, 91, 91)
    depth = pd.DataFrame({"ts": ts, "available_at": ts, "symbol": "X", "level": [1, 2, 1, 2],
                          "bid_px": 10.0, "bid_sz": 1.0, "ask_px": 10.1, "ask_sz": 1.0})

    assert len(run("trades", trades([100.0] * 4, secs=[0, 1, 91, 92]), config=cfg).outages) == 0
    assert run("depth", depth, config=cfg).outages["gap_s"].tolist() == [91.0]


# ----------------------------------------------------------------------------- contract
def test_clean_output_passes_pandera_after_every_rule():
    raw = trades([100.0, -1.0, 100.1, 100.1, 100.0, 100.1, 100.0, 100.1, 130.0, 100.1, 100.0],
                 aggressor=[1, 1, 5, 1, -1, 0, 1, 1, -1, 1, 1],
                 secs=[0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9]).astype({"px": object})
    raw.loc[10, "px"] = "n/a"

    res = cleanse_market("trades", raw, source="fixture.csv")
    clean, failures = split_valid("trades", res.clean)

    assert failures == []
    assert len(clean) == len(res.clean) == 7
    assert res.reconciles
    assert res.counts_by_rule == {"non_positive_price": 1, "bad_aggressor": 1, "bad_tick": 1,
                                  "type": 1}
    assert split_valid("quarantine", res.quarantine)[1] == []


def test_missing_column_is_a_contract_error():
    raw = trades([100.0]).drop(columns=["qty"])

    with pytest.raises(ContractError, match=r"fixture\.csv: trades contract: missing columns \['qty'\]"):
        cleanse_market("trades", raw, source="fixture.csv")


def test_unknown_table_is_a_contract_error():
    with pytest.raises(ContractError, match="cleanse_market handles quotes, trades, depth"):
        cleanse_market("daily_bars", trades([1.0]), source="fixture.csv")


def test_config_is_frozen_and_strict():
    cfg = CleanseConfig()

    with pytest.raises(pydantic.ValidationError):
        CleanseConfig(gap_treshold_s=5)  # typo: extra fields are forbidden
    with pytest.raises(pydantic.ValidationError):
        cfg.calendar = None  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="bad_tick_min_periods=30"):
        CleanseConfig(bad_tick_min_periods=30)


def test_rule_tables_follow_the_priority_order():
    for names in TABLE_RULES.values():
        assert list(names) == sorted(names, key=RULE_ORDER.index)


def test_empty_input():
    res = run("quotes", quotes([], []))

    assert len(res.clean) == 0
    assert len(res.quarantine) == 0
    assert len(res.outages) == 0
