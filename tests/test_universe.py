"""Point-in-time universe and survivorship checks on a 3-ticker, 12-session fixture.

Fixture (sessions d0..d11 = business days from 2024-01-02), params adv_window=3, min_history=3,
min_adv_usd=5000:

* A: member throughout, close 10, volume 1000 -> dollar volume 10,000 every day.
* B: member from d2 on, close 20, volume 100*(i+1) -> dollar volume 2000*(i+1) on day i, so the
  ADV of the 3 sessions before day i is 2000*(i-1): 4000 on d3 (too low), 6000 on d4.
* C: member d0..d7 (end_date = d8, half-open), delisted: last bar on d7; dollar volume 50,000.

Expected universe: d0-d2 empty (history < 3); d3 {A, C}; d4-d7 {A, B, C}; d8-d11 {A, B}.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from validation.errors import SurvivorshipError
from validation.universe import (
    check_membership_spans,
    check_survivorship,
    point_in_time_universe,
    survivorship_report,
)

DAYS = pd.bdate_range("2024-01-02", periods=12)
PARAMS = {"adv_window": 3, "min_history": 3, "min_adv_usd": 5000.0}


def _bars() -> pd.DataFrame:
    a = pd.DataFrame({"date": DAYS, "symbol": "A", "close": 10.0, "volume": 1000.0})
    b = pd.DataFrame({"date": DAYS, "symbol": "B", "close": 20.0,
                      "volume": 100.0 * np.arange(1, 13)})
    c = pd.DataFrame({"date": DAYS[:8], "symbol": "C", "close": 5.0, "volume": 10_000.0})
    return pd.concat([a, b, c], ignore_index=True)


def _membership() -> pd.DataFrame:
    return pd.DataFrame({"symbol": ["A", "B", "C"], "start_date": [DAYS[0], DAYS[2], DAYS[0]],
                         "end_date": [pd.NaT, pd.NaT, DAYS[8]]})


def _by_day(u: pd.DataFrame) -> dict[int, list[str]]:
    pos = {d: i for i, d in enumerate(DAYS)}
    out: dict[int, list[str]] = {}
    for d, s in zip(u["date"], u["symbol"], strict=True):
        out.setdefault(pos[d], []).append(s)
    return out


EXPECTED = {3: ["A", "C"], **{i: ["A", "B", "C"] for i in range(4, 8)},
            **{i: ["A", "B"] for i in range(8, 12)}}


def test_universe_follows_membership_history_and_liquidity():
    u = point_in_time_universe(_membership(), _bars(), DAYS, **PARAMS)
    assert _by_day(u) == EXPECTED, "C is in while a member (d3-d7), B once liquid (d4 on)"
    assert (u["last_data_date"] < u["date"]).all(), "data used must predate the date"


def test_adv_averages_previous_sessions_only():
    u = point_in_time_universe(_membership(), _bars(), DAYS, **PARAMS, include_rejected=True)
    b = u[u["symbol"] == "B"].set_index("date")["adv_usd"]
    # 3 sessions before day i: 2000*(i-2) + 2000*(i-1) + 2000*i over 3 = 2000*(i-1)
    assert b.loc[DAYS[3:]].tolist() == [2000.0 * (i - 1) for i in range(3, 12)]
    assert b.loc[DAYS[2]] == 3000.0, "only 2 sessions before d2: (2000 + 4000) / 2"


def test_rejected_rows_name_the_first_failed_rule():
    u = point_in_time_universe(_membership(), _bars(), DAYS, **PARAMS, include_rejected=True)
    reason = u.set_index(["date", "symbol"])["reason"]
    assert reason[(DAYS[2], "A")] == "history < min_history"
    assert reason[(DAYS[3], "B")] == "adv_usd < min_adv_usd"
    assert reason[(DAYS[8], "C")] == "not a member", "end_date is exclusive: C leaves on d8"
    assert reason[(DAYS[7], "C")] == ""
    assert (DAYS[9], "C") not in reason.index, "a non-member without fresh data is not shown"


def test_missing_previous_session_drops_the_name():
    bars = _bars()
    bars = bars[~((bars["symbol"] == "A") & (bars["date"] == DAYS[5]))]
    u = point_in_time_universe(_membership(), bars, DAYS, **PARAMS, include_rejected=True)
    row = u[(u["symbol"] == "A") & (u["date"] == DAYS[6])].iloc[0]
    assert row["reason"] == "no data on previous session"
    assert row["last_data_date"] == DAYS[4]
    assert row["prev_session"] == DAYS[5]


@pytest.mark.parametrize("i", range(12))
def test_no_look_ahead(i):
    """Changing, deleting or adding bars on/after day i leaves the universe of day i unchanged."""
    d = DAYS[i]
    before = point_in_time_universe(_membership(), _bars(), [d], **PARAMS, include_rejected=True)
    bars = _bars()
    future = bars["date"] >= d
    bars.loc[future, "volume"] *= 1000.0
    bars = bars[~(future & (bars["symbol"] == "C"))]
    extra = pd.DataFrame({"date": DAYS[i:], "symbol": "Z", "close": 1.0, "volume": 1e9})
    after = point_in_time_universe(_membership(), pd.concat([bars, extra]), [d], **PARAMS,
                                   include_rejected=True)
    pd.testing.assert_frame_equal(before, after)


def test_survivorship_report_counts_later_leavers():
    u = point_in_time_universe(_membership(), _bars(), DAYS, **PARAMS)
    rep = survivorship_report(u, _membership()).set_index("date")
    assert rep.loc[DAYS[3], ["members", "later_leavers", "leavers_in_window"]].tolist() == [2, 1, 1]
    assert rep.loc[DAYS[3], "later_leaver_fraction"] == 0.5
    assert rep.loc[DAYS[9], ["members", "later_leavers", "index_members"]].tolist() == [2, 0, 2]
    assert rep["outside_span"].sum() == 0
    check_survivorship(rep.reset_index())  # the honest universe passes


def test_todays_members_only_universe_fails():
    """A universe built from the names still listed at the end (A, B) never sees C leave."""
    u = point_in_time_universe(_membership(), _bars(), DAYS, **PARAMS)
    survivors = u[u["symbol"].isin(["A", "B"])]
    rep = survivorship_report(survivors, _membership())
    with pytest.raises(SurvivorshipError, match="no member leaves the index within the window"):
        check_survivorship(rep)


def test_too_few_leavers_fails_the_ratio_rule():
    u = point_in_time_universe(_membership(), _bars(), DAYS, **PARAMS)
    thin = u[(u["symbol"] != "C") | (u["date"] == DAYS[3])]  # C kept on one day only
    rep = survivorship_report(thin, _membership())
    with pytest.raises(SurvivorshipError, match=r"rule 'leaver share >= 0.5 x index share'"):
        check_survivorship(rep)


def test_rows_outside_membership_span_are_evidence_and_fail():
    u = point_in_time_universe(_membership(), _bars(), DAYS, **PARAMS)
    static = pd.concat([u, pd.DataFrame({"date": DAYS[8:10], "symbol": "C"})], ignore_index=True)
    static["in_universe"] = True
    bad = check_membership_spans(static, _membership())
    assert bad["date"].tolist() == list(DAYS[8:10])
    assert bad["symbol"].tolist() == ["C", "C"]
    with pytest.raises(SurvivorshipError, match="2 \\(date, symbol\\) rows lie outside"):
        check_survivorship(survivorship_report(static, _membership()))


def test_bad_parameters_and_dates_are_rejected():
    with pytest.raises(ValueError, match="adv_window"):
        point_in_time_universe(_membership(), _bars(), DAYS, adv_window=0)
    with pytest.raises(ValueError, match="must be naive calendar dates"):
        point_in_time_universe(_membership(), _bars(), DAYS.tz_localize("UTC"))
    with pytest.raises(ValueError, match=r"`min_leaver_ratio` must be in \[0, 1\], got 2"):
        check_survivorship(pd.DataFrame(), min_leaver_ratio=2)


def test_report_tells_market_exits_from_index_replacements():
    # A was acquired, B was replaced in the index (still trades), C is still a member
    mem = pd.DataFrame({
        "symbol": ["A", "B", "C"],
        "start_date": pd.to_datetime(["2013-01-02"] * 3),
        "end_date": pd.to_datetime(["2013-06-03", "2013-07-01", None]),
        "exit_reason": ["acquired", "replaced", None],
    })
    universe = pd.DataFrame({"date": pd.to_datetime(["2013-03-01"] * 3), "symbol": ["A", "B", "C"]})
    rep = survivorship_report(universe, mem).iloc[0]
    assert (rep["members"], rep["later_leavers"], rep["later_left_market"]) == (3, 2, 1)
