"""News and events (issue 13 item 4): the synthetic feed and its truth, the ``news`` contract and
its landing path, VADER scoring, point-in-time news features and the true news effect.

The central rule under test: a headline is used for a decision at ``d`` only when its
``available_at <= d`` — never because its ``ts`` is earlier.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sources
from bestex.cli import main
from models.news import (
    EVENT_TYPES,
    GAP_TEMPLATES,
    NEUTRAL_BAND,
    TEMPLATES,
    apply_news_effect,
    desk_cost_parts,
    news_effect,
    news_feature_names,
    news_features,
    news_feed,
    score_headlines,
    vader_agreement,
)
from models.synthetic_market import SyntheticMarketConfig, generate_market
from validation.contracts import columns, split_valid

CONTRACT = list(columns("news"))
T = pd.Timestamp("2024-11-04T15:00:00Z")  # a Monday, 10:00 New York


def _at(minutes: float) -> pd.Timestamp:
    return T + pd.Timedelta(minutes=minutes)


@pytest.fixture(scope="module")
def market():
    # daily-only: the feed needs the sessions and each symbol's listed span, not the quotes
    return generate_market(SyntheticMarketConfig(n_symbols=5, n_sessions=20, seed=3,
                                                 intraday=False))


@pytest.fixture(scope="module")
def feed(market):
    return news_feed(market, seed=5, rate_per_symbol_day=1.0)


# ============================================================================ VADER
def test_vader_reproduces_the_worked_numbers_of_references_7_5():
    got = score_headlines(["Acme Corp shares surge after strong earnings beat",
                           "Acme Corp misses revenue forecast, cuts dividend",
                           "Acme Corp beats earnings estimates and raises full-year guidance"])
    assert got.tolist() == [0.6705, -0.4767, 0.0]


def test_score_headlines_of_nothing_is_empty():
    assert score_headlines([]).shape == (0,)


@pytest.mark.parametrize(("key", "template"), [(k, t) for k, ts in TEMPLATES.items() for t in ts])
def test_every_template_scores_with_its_polarity(key, template):
    _, polarity, _ = key
    c = score_headlines([template.format(s="SYN03")])[0]
    assert (c >= NEUTRAL_BAND) if polarity == "pos" else (c <= -NEUTRAL_BAND), (template, c)


def test_strong_templates_score_stronger_than_mild_ones_on_average():
    def mean_abs(strong: bool) -> float:
        text = [t.format(s="X") for (_, _, s), ts in TEMPLATES.items() if s == strong for t in ts]
        return float(np.mean(np.abs(score_headlines(text))))

    assert mean_abs(True) > mean_abs(False) + 0.15


def test_lexicon_gap_templates_are_mostly_misread():
    text, sign = [], []
    for (_, polarity), ts in GAP_TEMPLATES.items():
        text += [t.format(s="SYN03") for t in ts]
        sign += [1 if polarity == "pos" else -1] * len(ts)
    c = score_headlines(text)
    label = np.where(c >= NEUTRAL_BAND, 1, np.where(c <= -NEUTRAL_BAND, -1, 0))
    assert np.mean(label == np.array(sign)) < 0.35


# ============================================================================ the feed
def test_the_feed_is_a_pure_function_of_its_seed(market, feed):
    pd.testing.assert_frame_equal(feed, news_feed(market, seed=5, rate_per_symbol_day=1.0))
    other = news_feed(market, seed=6, rate_per_symbol_day=1.0)
    assert not feed["headline"].equals(other["headline"])


def test_the_feed_meets_the_news_contract(feed):
    clean, failures = split_valid("news", feed[CONTRACT], source="feed")
    assert failures == []
    assert len(clean) == len(feed)
    assert (feed["available_at"] >= feed["ts"]).all()
    assert feed["available_at"].is_monotonic_increasing


def test_the_truth_is_within_its_bounds(feed):
    assert len(feed) > 50
    assert set(feed["event_type"]) <= set(EVENT_TYPES)
    s = feed["true_sentiment"]
    assert s.abs().between(0.2, 1.0).all()
    for c in ("vol_mult", "spread_mult", "impact_mult"):
        assert (feed[c] >= 1.0).all(), c
    assert (feed["effect_hours"] > 0).all()
    assert (np.sign(feed["drift_bps"]) == np.sign(s)).all()
    assert (s[feed["event_type"] == "upgrade"] > 0).all()
    assert (s[feed["event_type"] == "downgrade"] < 0).all()


def test_bad_news_moves_the_market_more_than_good_news(feed):
    co = feed[feed["event_type"] != "macro"]
    neg, pos = co[co["true_sentiment"] < 0], co[co["true_sentiment"] > 0]
    assert neg["impact_mult"].mean() > pos["impact_mult"].mean()


def test_headlines_name_only_symbols_listed_that_session(market, feed):
    span = {s.symbol: (s.first_session, s.last_session) for s in market.truth.symbols}
    day = feed["ts"].dt.tz_convert("America/New_York").dt.date
    for sym, d in zip(feed["symbol"], day, strict=True):
        first, last = span[sym]
        assert first <= d <= last, (sym, d)
    co = feed[feed["event_type"] != "macro"]
    assert all(h.startswith(s) or f" {s}" in h for s, h in zip(co["symbol"], co["headline"],
                                                              strict=True))


def test_a_macro_release_is_one_story_for_every_listed_symbol(feed):
    macro = feed[feed["event_type"] == "macro"]
    assert len(macro) > 0
    for _, g in macro.groupby("ts"):
        assert g["symbol"].is_unique
        for c in ("headline", "available_at", "true_sentiment", "impact_mult", "effect_hours"):
            assert g[c].nunique() == 1, c
    ny = macro["ts"].dt.tz_convert("America/New_York")
    assert set(zip(ny.dt.hour, ny.dt.minute, strict=True)) <= {(8, 30), (14, 0)}


def test_company_news_falls_before_the_open_or_in_the_session(feed):
    co = feed[feed["event_type"] != "macro"]
    ny = co["ts"].dt.tz_convert("America/New_York")
    minute = ny.dt.hour * 60 + ny.dt.minute
    assert minute.between(8 * 60, 16 * 60).all()
    assert (minute < 9 * 60 + 30).mean() == pytest.approx(0.3, abs=0.12)


def test_vader_agrees_with_the_true_sentiment_on_most_headlines(feed):
    assert vader_agreement(feed) >= 0.8
    assert vader_agreement(feed.assign(true_sentiment=-feed["true_sentiment"])) <= 0.2


def test_a_feed_from_sessions_and_symbols():
    f = news_feed(([dt.date(2024, 11, 4), dt.date(2024, 11, 5)], ["AAA", "BBB"]), seed=1,
                  rate_per_symbol_day=3.0, macro_rate_per_day=0.0)
    assert set(f["symbol"]) == {"AAA", "BBB"}
    assert f["ts"].dt.tz_convert("America/New_York").dt.date.isin(
        [dt.date(2024, 11, 4), dt.date(2024, 11, 5)]).all()


def test_no_session_no_news_and_a_weekend_is_refused():
    empty = news_feed(([], ["AAA"]), seed=0)
    assert list(empty.columns)[:5] == CONTRACT
    assert len(empty) == 0
    with pytest.raises(ValueError, match=r"news_feed: not XNYS sessions: \['2024-11-02'\]"):
        news_feed(([dt.date(2024, 11, 2)], ["AAA"]), seed=0)
    with pytest.raises(TypeError, match="pass a SyntheticMarket, its GroundTruth, or a pair"):
        news_feed(42, seed=0)
    with pytest.raises(ValueError, match=r"`gap_share=1.5` is out of range"):
        news_feed(([dt.date(2024, 11, 4)], ["AAA"]), seed=0, gap_share=1.5)


# ============================================================================ features
def _news(rows: list[tuple[str, float, float, str]]) -> pd.DataFrame:
    """(symbol, ts minutes, available_at minutes, headline) relative to ``T``."""
    return pd.DataFrame({"ts": pd.to_datetime([_at(r[1]) for r in rows], utc=True),
                         "available_at": pd.to_datetime([_at(r[2]) for r in rows], utc=True),
                         "symbol": pd.Series([r[0] for r in rows], dtype=object),
                         "headline": pd.Series([r[3] for r in rows], dtype=object)})


def _orders(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame({"order_id": [r[0] for r in rows], "symbol": [r[1] for r in rows],
                         "decision_ts": [_at(r[2]) for r in rows]})


GOOD, BAD = "AAA posts strong quarterly profit growth", "AAA warns of weaker demand"
NEUTRAL = "AAA names new auditor"


def test_news_features_by_hand():
    # Arrange: AAA headlines known at 10:00 (+0.8316), 11:30 (-0.5859), 12:00 (0.0);
    # BBB none. O1 decides 12:30 with a 2-hour window: the 10:00 headline is out of it.
    g, b, n = score_headlines([GOOD, BAD, NEUTRAL])
    assert (g, b, n) == (0.8316, -0.5859, 0.0)
    news = _news([("AAA", -1, 0, GOOD), ("AAA", 89, 90, BAD), ("AAA", 119, 120, NEUTRAL)])
    orders = _orders([("O1", "AAA", 150), ("O2", "BBB", 150), ("O3", "AAA", -5)])
    # Act
    f = news_features(orders, news, window_hours=2.0)
    # Assert
    assert list(f.columns) == ["order_id", *news_feature_names(2.0), "news_knowledge_ts"]
    o1 = f.iloc[0]
    assert o1["news_time_since_last_h"] == pytest.approx(0.5)  # 12:30 - 12:00
    assert o1["news_last_sentiment"] == 0.0  # the neutral one is the last known
    assert o1["news_intensity_2h"] == 2  # 11:30 and 12:00 (10:00 is 2.5 h back)
    assert (o1["news_pos_intensity_2h"], o1["news_neg_intensity_2h"]) == (0, 1)
    assert o1["news_sentiment_sum_2h"] == pytest.approx(-0.5859)
    assert o1["news_knowledge_ts"] == _at(120)
    for o in (f.iloc[1], f.iloc[2]):  # BBB has no news; O3 decides before any is known
        assert np.isnan(o["news_time_since_last_h"])
        assert np.isnan(o["news_last_sentiment"])
        assert o["news_intensity_2h"] == 0
        assert pd.isna(o["news_knowledge_ts"])


def test_a_headline_is_never_used_before_its_available_at():
    # stamped 09:50, on the wire at 10:20; the decision at 10:10 cannot know it
    news = _news([("AAA", -10, 20, BAD)])
    f = news_features(_orders([("early", "AAA", 10), ("on_time", "AAA", 20),
                               ("later", "AAA", 21)]), news, window_hours=1.0)
    assert f["news_intensity_1h"].tolist() == [0, 1, 1]  # available_at == d counts (<=)
    assert np.isnan(f["news_last_sentiment"].iloc[0])
    assert f["news_last_sentiment"].iloc[1] == -0.5859
    assert f["news_time_since_last_h"].iloc[2] == pytest.approx(1 / 60)


def test_ties_on_available_at_go_to_the_latest_ts():
    news = _news([("AAA", 5, 10, GOOD), ("AAA", 0, 10, BAD)])
    f = news_features(_orders([("O1", "AAA", 10)]), news)
    assert f["news_last_sentiment"].iloc[0] == 0.8316
    assert f["news_intensity_4h"].iloc[0] == 2


def test_news_features_refuse_bad_arguments():
    news, orders = _news([("AAA", 0, 1, GOOD)]), _orders([("O1", "AAA", 5)])
    with pytest.raises(ValueError, match=r"`window_hours=0` must be positive"):
        news_features(orders, news, window_hours=0)
    with pytest.raises(ValueError, match=r"news lacks column\(s\) \['headline'\]"):
        news_features(orders, news.drop(columns="headline"))


def _brute_force(orders: pd.DataFrame, news: pd.DataFrame, w_h: float) -> pd.DataFrame:
    """One order at a time, straight from the rule: headlines of its symbol with available_at
    <= d; the last one is the latest (available_at, ts, input position)."""
    score = score_headlines(news["headline"])
    rows = []
    for _, o in orders.iterrows():
        m = (news["symbol"] == o["symbol"]) & (news["available_at"] <= o["decision_ts"])
        k = news[m].assign(c=score[m.to_numpy()], pos=np.flatnonzero(m))
        win = k[k["available_at"] > o["decision_ts"] - pd.Timedelta(hours=w_h)]
        last = k.sort_values(["available_at", "ts", "pos"]).iloc[-1] if len(k) else None
        rows.append({
            "news_time_since_last_h": np.nan if last is None else
            (o["decision_ts"] - last["available_at"]) / pd.Timedelta(hours=1),
            "news_last_sentiment": np.nan if last is None else last["c"],
            "news_intensity_1.5h": len(win),
            "news_pos_intensity_1.5h": int((win["c"] >= NEUTRAL_BAND).sum()),
            "news_neg_intensity_1.5h": int((win["c"] <= -NEUTRAL_BAND).sum()),
            "news_sentiment_sum_1.5h": float(win["c"].sum())})
    return pd.DataFrame(rows)


HEADS = [GOOD, BAD, NEUTRAL, "AAA faces lawsuit over defects", "AAA wins court case"]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_point_in_time_over_random_latencies(data):
    """Property: with any publication latencies (seconds to hours), the features equal the
    brute-force rule and are unchanged when every headline not yet available at the decision
    is removed from the feed: a headline with ts < d <= available_at never counts."""
    n = data.draw(st.integers(0, 12), label="headlines")
    ts = data.draw(st.lists(st.integers(0, 600), min_size=n, max_size=n), label="ts_min")
    lat = data.draw(st.lists(st.one_of(st.integers(0, 3), st.integers(0, 240)), min_size=n,
                             max_size=n), label="latency_min")
    sym = data.draw(st.lists(st.sampled_from(["AAA", "BBB"]), min_size=n, max_size=n))
    head = data.draw(st.lists(st.sampled_from(HEADS), min_size=n, max_size=n))
    news = _news([(s, t, t + la, h) for s, t, la, h in zip(sym, ts, lat, head, strict=True)])
    d = data.draw(st.lists(st.integers(0, 900), min_size=1, max_size=6), label="decisions")
    osym = data.draw(st.lists(st.sampled_from(["AAA", "BBB"]), min_size=len(d),
                              max_size=len(d)))
    orders = _orders([(f"O{i}", s, x) for i, (s, x) in enumerate(zip(osym, d, strict=True))])
    f = news_features(orders, news, window_hours=1.5)
    names = list(news_feature_names(1.5))
    pd.testing.assert_frame_equal(f[names], _brute_force(orders, news, 1.5), check_dtype=False)
    assert (f["news_knowledge_ts"].isna() | (f["news_knowledge_ts"] <= orders["decision_ts"])).all()
    for i in range(len(orders)):
        known = news[news["available_at"] <= orders["decision_ts"].iat[i]]
        one = news_features(orders.iloc[[i]], known, window_hours=1.5)
        pd.testing.assert_frame_equal(one[names].reset_index(drop=True),
                                      f.iloc[[i]][names].reset_index(drop=True))


# ============================================================================ the true effect
def _event(**kw) -> pd.DataFrame:
    base = {"ts": _at(60), "symbol": "AAA", "vol_mult": 1.0, "spread_mult": 1.0,
            "impact_mult": 1.0, "effect_hours": 2.0, "drift_bps": 0.0}
    return pd.DataFrame([base | kw])


def _working(d_min: float, e_min: float, side: int = 1, oid: str = "O1") -> pd.DataFrame:
    return pd.DataFrame({"order_id": [oid], "symbol": ["AAA"], "side": [side],
                         "decision_ts": [_at(d_min)], "end_ts": [_at(e_min)]})


def test_the_effect_scales_with_the_overlap_by_hand():
    # the order works 10:00-12:00; the event runs 11:00-13:00: half the order is under it
    e = news_effect(_working(0, 120), _event(impact_mult=3.0, vol_mult=2.0, drift_bps=40.0))
    r = e.iloc[0]
    assert (bool(r["news_overlap"]), r["news_events"]) == (True, 1)
    assert r["news_impact_mult"] == pytest.approx(2.0)  # 1 + (3 - 1) * 0.5
    assert r["news_vol_mult"] == pytest.approx(1.5)
    assert r["news_spread_mult"] == 1.0
    # drift: D(t) = 40 * (t - 11:00) / 2 h; mean over 10:00-12:00 = 40 * (0.25 h / 2 h) = 5
    assert r["news_drift_bps"] == pytest.approx(5.0)
    sell = news_effect(_working(0, 120, side=-1), _event(drift_bps=40.0))
    assert sell["news_drift_bps"].iloc[0] == pytest.approx(-5.0)


def test_drift_before_the_decision_is_already_in_the_arrival_mid():
    # the event ran 09:00-11:00 (+40 bps); an order deciding at 10:30 pays only the rest:
    # D(10:30) = 30; mean of D over 10:30-11:30 = (35 * 0.5 + 40 * 0.5) = 37.5 -> 7.5 bps
    e = news_effect(_working(30, 90), _event(ts=_at(-60), drift_bps=40.0))
    assert e["news_drift_bps"].iloc[0] == pytest.approx(7.5)


def test_events_compound_and_other_orders_are_untouched():
    ev = pd.concat([_event(impact_mult=3.0), _event(ts=_at(0), impact_mult=1.5,
                                                    effect_hours=10.0)], ignore_index=True)
    orders = pd.concat([_working(0, 120), _working(200, 240, oid="after"),
                        _working(0, 120, oid="other").assign(symbol="BBB")], ignore_index=True)
    e = news_effect(orders, ev)
    assert e["news_impact_mult"].iloc[0] == pytest.approx(2.0 * 1.5)
    assert e["news_events"].tolist() == [2, 1, 0]  # 'after' is still under the 10-hour event
    assert e.iloc[2][["news_vol_mult", "news_spread_mult", "news_impact_mult"]].tolist() == \
        [1.0, 1.0, 1.0]
    assert not e["news_overlap"].iloc[2]


def test_an_order_of_zero_duration_takes_the_effect_at_its_instant():
    e = news_effect(_working(90, 90), _event(impact_mult=3.0, drift_bps=40.0))
    assert e["news_impact_mult"].iloc[0] == pytest.approx(3.0)
    assert e["news_drift_bps"].iloc[0] == 0.0


def test_apply_news_effect_by_hand():
    parts = pd.DataFrame({"order_id": ["O1", "O2"], "spread_bps": [2.0, 2.0],
                          "impact_bps": [10.0, 10.0], "noise_bps": [-4.0, -4.0],
                          "fees_bps": [0.5, 0.5]})
    effect = pd.DataFrame({"order_id": ["O2", "O1"], "news_overlap": [False, True],
                           "news_events": [0, 1], "news_vol_mult": [1.0, 3.0],
                           "news_spread_mult": [1.0, 1.5], "news_impact_mult": [1.0, 2.0],
                           "news_drift_bps": [0.0, 5.0]})
    out = apply_news_effect(parts, effect)
    # O1: 0.5 + 2 * 1.5 + 10 * 2 + 5 = 28.5; realized 28.5 - 4 * 3 = 16.5
    assert out["truth_news_bps"].tolist() == [28.5, 12.5]
    assert out["cost_news_bps"].tolist() == [16.5, 8.5]  # O2 keeps its costs exactly


def test_desk_cost_parts_add_up_to_the_truth_and_the_realized_cost():
    history = SimpleNamespace(
        parent_orders=pd.DataFrame({"order_id": ["A", "B"], "symbol": ["AAA", "AAA"],
                                    "side": [1, -1], "decision_ts": [_at(0)] * 2,
                                    "end_ts": [_at(60)] * 2, "arrival_spread_bps": [4.0, 4.0]}),
        outcomes=pd.DataFrame({"order_id": ["A", "B"], "shortfall_bps": [20.0, 0.0],
                               "truth_bps": [15.0, 3.0], "filled_qty": [100.0, 0.0],
                               "fees": [0.3, 0.0], "arrival_mid": [100.0, 100.0]}),
        child_fills=pd.DataFrame({"order_id": ["A", "A"], "qty": [75.0, 25.0],
                                  "liquidity": ["taker", "maker"]}))
    p = desk_cost_parts(history)
    assert p["order_id"].tolist() == ["A"]  # B filled nothing
    r = p.iloc[0]
    assert r["spread_bps"] == pytest.approx(0.5 * 4.0 * (0.75 - 0.25))
    assert r["fees_bps"] == pytest.approx(0.3 / (100.0 * 100.0) * 1e4)
    assert r["spread_bps"] + r["fees_bps"] + r["impact_bps"] == pytest.approx(15.0)
    assert r["noise_bps"] == pytest.approx(5.0)


# ============================================================================ the landing path
def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_a_desks_news_file_lands_with_quarantine(tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    csv = folder / "news.csv"
    csv.write_text(
        "ts,available_at,symbol,headline\n"
        "2024-11-04T14:00:00Z,2024-11-04T14:00:02Z,AMZN,\"Amazon misses forecast, cuts outlook\"\n"
        "2024-11-04T14:05:00Z,2024-11-04T14:04:00Z,AMZN,Known before it happened\n"
        "2024-11-04T14:06:00Z,2024-11-04T14:06:01Z,AMZN,\"Two\nlines\"\n"
        "2024-11-04T14:07:00,2024-11-04T14:07:01,AAPL,Apple posts strong quarterly profit growth\n"
        "2024-11-04T14:08:00Z,2024-11-04T14:08:01Z,AAPL,\n")
    res = sources.ingest("landing", folder)["news"]
    assert res.reconciles
    assert res.clean["symbol"].tolist() == ["AMZN", "AAPL"]
    assert res.clean["headline"].iloc[0] == "Amazon misses forecast, cuts outlook"
    assert str(res.clean["ts"].dtype) == "datetime64[ns, UTC]"
    assert list(res.quarantine["row"]) == [1, 2, 4]
    rules = res.quarantine["rule"].tolist()
    assert rules[0] == "available_at >= ts"
    assert rules[1].startswith("headline: str_matches")
    assert "headline" in rules[2]
    rc, o, e = _cli(["validate", "news", str(csv)])
    assert rc == 2
    assert f"{csv} row 1 (line 3) (symbol=AMZN): " in o
    assert "3 of 5 rows would be quarantined" in e


def test_the_synthetic_feed_round_trips_through_the_landing_folder(tmp_path, feed):
    folder = tmp_path / "landing"
    folder.mkdir()
    feed[CONTRACT].to_parquet(folder / "news.parquet", index=False)
    res = sources.ingest("landing", folder)["news"]
    assert res.quarantine.empty
    assert len(res.clean) == len(feed)
    rc, o, _ = _cli(["validate", "news", str(folder / "news.parquet")])
    assert rc == 0
    assert f"{len(feed)} rows meet the news contract" in o
    orders = _orders([("O1", "SYN01", 0)]).assign(
        decision_ts=feed["available_at"].iloc[len(feed) // 2])
    pd.testing.assert_frame_equal(news_features(orders, res.clean),
                                  news_features(orders, feed))
