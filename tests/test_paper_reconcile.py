"""Stage 5's reconciliation on hand-made books, where each difference can be checked by hand,
and the engine's fills, journal and live risk checks in isolation (no sockets)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bestex.paper.engine import PaperEngine, ParentOrder
from bestex.paper.journal import Journal
from bestex.paper.market import Feed
from models.live_risk import LiveLimits, OrderCheck, check_order
from models.simulator import SimulatorConfig
from validation.paper_reconcile import PaperJournal, desk_day_orders, reconcile

T0 = pd.Timestamp("2025-01-13 15:00", tz="UTC")
S = 1_000_000_000


def _book(times_s, mids, *, lag_ms=0.0, half_spread=0.01, size=1e6):
    ts = T0 + pd.to_timedelta(np.asarray(times_s, float), unit="s")
    q = pd.DataFrame({"ts": ts, "available_at": ts + pd.Timedelta(milliseconds=lag_ms),
                      "symbol": "AAA", "bid_px": np.asarray(mids) - half_spread,
                      "bid_sz": size, "ask_px": np.asarray(mids) + half_spread, "ask_sz": size})
    t = pd.DataFrame({"ts": ts[:1], "available_at": ts[:1], "symbol": "AAA",
                      "px": [mids[0]], "qty": [100.0], "aggressor": [1]})
    return q, t


class _Model:
    version = "9"


def _engine(feed, tmp_path):
    return PaperEngine(feed, Journal(tmp_path / "j.db"), _Model(), limits=LiveLimits())


def _work(eng, child_s, *, qty=100.0, kind=None, side=1, end_s=600.0):
    """One parent decided at the feed's current time with a hand-made plan, run to the end."""
    feed = eng.feed
    now = feed.now_ns
    o = ParentOrder("P1", "C1", "DESK", "AAA", side, qty, "1", None, now,
                    T0.value + int(end_s * S))
    eng.orders[o.order_id] = o
    bid, ask = feed.touch("AAA")
    k = len(child_s)
    eng.apply_plans([o.order_id], [{
        "plan": {"name": "hand"}, "ns": [T0.value + int(t * S) for t in child_s],
        "qty": [qty / k] * k, "kind": kind or [0] * k, "adv": 1e7, "sigma_daily": 0.02,
        "shares_outstanding": 1e9, "arrival_mid": (bid + ask) / 2, "explain": {}}])
    while feed.next_ns() is not None:
        feed.advance(feed.next_ns())
        eng.on_event()
    j = eng.journal
    orders = pd.DataFrame(j.orders()).assign(plan_name="hand")
    return PaperJournal(orders, j.fills(), j.events())


def test_a_child_sent_at_the_next_event_after_a_jump_pays_the_jump_as_latency(tmp_path):
    # mid 100 until t=10 s, 101 from t=10.5 s; the child is due at t=10.2 s: no event between
    # its schedule and the jump, so the service sends it at the jump's event and pays 101.01
    # where the backtest, at 10.2 s, pays 100.01: +100 bps of latency, no feed-time part
    q, t = _book([0, 5, 10, 10.5, 20], [100, 100, 100, 101, 101])
    feed = Feed("hand", q, t, SimulatorConfig(venue="PAPER"))
    feed.advance(T0.value + 1 * S)
    rec = reconcile(_work(_engine(feed, tmp_path), [10.2]), q, feed.sim)
    row = rec.table.iloc[0]
    assert row["paper_is_bps"] == pytest.approx((101.01 / 100.0 - 1) * 1e4)
    assert row["bt_is_bps"] == pytest.approx((100.01 / 100.0 - 1) * 1e4)
    assert row["latency_bps"] == pytest.approx(100.0)
    assert row["feed_bps"] == pytest.approx(0.0, abs=1e-9)
    assert row["mean_delay_ms"] == pytest.approx(300.0)
    assert row["reason"].startswith("latency: children sent 300 ms")


def test_a_feed_that_lags_makes_the_child_meet_the_quote_the_service_knew(tmp_path):
    # quotes are known 200 ms after their time; the mid moves to 102 at t=10.75 s (known at
    # 10.95 s). The child is due at 10.8 s and sent at the next event, a trade known at 10.9 s:
    # the service still knows only the 10.5 s quote (101) and pays 101.01, the backtest at
    # the same arrival time meets the 10.75 s quote and pays 102.01: -100 bps of feed time,
    # no latency part (the backtest at 10.8 s pays 102.01 too)
    q, _ = _book([0, 5, 10, 10.5, 10.75, 20], [100, 100, 100, 101, 102, 102], lag_ms=200)
    ts = T0 + pd.to_timedelta([0.0, 10.9], unit="s")
    t = pd.DataFrame({"ts": ts, "available_at": ts, "symbol": "AAA", "px": [100.0, 101.0],
                      "qty": [100.0, 100.0], "aggressor": [1, 1]})
    feed = Feed("hand", q, t, SimulatorConfig(venue="PAPER"))
    feed.advance(T0.value + 1 * S)
    rec = reconcile(_work(_engine(feed, tmp_path), [10.8]), q, feed.sim)
    row = rec.table.iloc[0]
    assert row["mean_delay_ms"] == pytest.approx(100.0)
    assert row["paper_is_bps"] == pytest.approx((101.01 / 100.0 - 1) * 1e4)
    assert row["bt_is_bps"] == pytest.approx((102.01 / 100.0 - 1) * 1e4)
    assert row["latency_bps"] == pytest.approx(0.0, abs=1e-9)
    assert row["feed_bps"] == pytest.approx(-100.0)
    assert row["reason"].startswith("feed time")


def test_without_feed_lag_paper_equals_the_backtest_at_the_papers_own_times(tmp_path):
    rng = np.random.default_rng(1)
    times = np.sort(rng.uniform(0, 590, 400))
    mids = 100 * np.exp(np.cumsum(rng.normal(0, 2e-4, 400)))
    q, t = _book(times, mids, size=300.0)
    feed = Feed("hand", q, t, SimulatorConfig(venue="PAPER"))
    feed.advance(T0.value + 2 * S)
    pj = _work(_engine(feed, tmp_path), [5, 65, 125, 185, 245, 305], qty=900.0,
               kind=[0, 1, 0, 1, 0, 0])
    rec = reconcile(pj, q, feed.sim)
    row = rec.table.iloc[0]
    assert row["feed_bps"] == pytest.approx(0.0, abs=1e-9)
    assert row["paper_fill_rate"] == pytest.approx(row["bt_fill_rate"], abs=1 / 3)
    assert rec.summary["children_unsent"] == 0
    assert pj.fills.groupby("child").size().max() == 1


def test_desk_day_orders_fit_the_day():
    q, _ = _book(np.linspace(0, 23_400, 500), np.full(500, 50.0))
    o = desk_day_orders(q, symbol="AAA", adv=1e6, n=30, seed=2, pct_adv=(1e-4, 1e-2))
    end = o["decision_ts"] + pd.to_timedelta(o["duration_min"], unit="min")
    assert (o["decision_ts"] >= T0).all()
    assert (end <= q["ts"].max()).all()
    assert o["qty"].between(100, 10_000).all()
    assert set(o["side"]) == {1, -1}
    assert o["cl_ord_id"].is_unique


@pytest.mark.parametrize(("check", "rule"), [
    (OrderCheck(qty=2e6, side=1, mid=10.0, adv=1e8), "max_order_qty"),
    (OrderCheck(qty=1e5, side=1, mid=1000.0, adv=1e8), "max_order_notional"),
    (OrderCheck(qty=3e5, side=1, mid=10.0, adv=1e6), "fat_finger"),
    (OrderCheck(qty=100, side=1, mid=10.0, adv=1e6, limit_price=11.0), "price_collar"),
    (OrderCheck(qty=100, side=1, mid=10.0, adv=1e6, kill_switch=True), "kill_switch"),
])
def test_each_order_level_control_names_its_rule(check, rule):
    r = check_order(check, LiveLimits())
    assert r is not None
    assert r.rule == rule


def test_position_and_daily_loss_limits():
    lim = LiveLimits(max_position=1000, daily_loss_limit=500.0)
    ok = OrderCheck(qty=400, side=1, mid=10.0, adv=1e6, position=300, working_signed=200)
    assert check_order(ok, lim) is None  # 300 + 200 + 400 = 900
    over = OrderCheck(qty=600, side=1, mid=10.0, adv=1e6, position=300, working_signed=200)
    assert check_order(over, lim).rule == "position_limit"  # 1100 > 1000
    sell = OrderCheck(qty=600, side=-1, mid=10.0, adv=1e6, position=300, working_signed=200)
    assert check_order(sell, lim) is None  # -100
    lost = OrderCheck(qty=10, side=1, mid=10.0, adv=1e6, day_loss=500.0)
    assert check_order(lost, lim).rule == "daily_loss_limit"


def test_the_engine_refuses_an_order_over_a_limit_and_journals_why(tmp_path):
    q, t = _book([0, 5, 10], [100, 100, 100])
    feed = Feed("hand", q, t, SimulatorConfig(venue="PAPER"),
                estimates={"AAA": {"adv": 1e5}})
    feed.advance(T0.value + 6 * S)
    eng = _engine(feed, tmp_path)
    r = eng.new_order("DESK", "X1", "AAA", 1, 30_000.0)  # 30 % of ADV
    assert (r.fields["exec_type"], r.fields["ord_status"]) == ("8", "8")
    assert r.fields["text"].startswith("fat_finger")
    ev = eng.journal.events("refused")
    assert len(ev) == 1
    assert "fat_finger" in ev["payload"].iloc[0]


# ------------------------------------------------------------------ knowledge time, restarts
def test_the_feed_never_shows_an_event_before_its_knowledge_time():
    rng = np.random.default_rng(4)
    times = np.sort(rng.uniform(0, 60, 300))
    q, t = _book(times, 100 + np.cumsum(rng.normal(0, 0.01, 300)), lag_ms=250)
    feed = Feed("hand", q, t, SimulatorConfig(venue="PAPER"))
    av = pd.to_datetime(q["available_at"], utc=True).astype("int64").to_numpy()
    for cut_s in (0.1, 7.3, 30.0, 59.9):
        now = T0.value + int(cut_s * S)
        feed.advance(now)
        known = feed.known_quotes("AAA")
        k_av = pd.to_datetime(known["available_at"], utc=True).astype("int64").to_numpy()
        assert (k_av <= now).all()
        assert len(known) == int((av <= now).sum())  # and nothing known is held back
        if len(known):
            assert feed.touch("AAA")[0] == known["bid_px"].iloc[-1]
        else:  # before the first quote is known: no touch to trade on
            assert feed.touch("AAA") is None


def test_sequence_numbers_survive_a_restart_through_the_journal(tmp_path):
    import simplefix

    from bestex.paper.fix import FixConfig, FixSession

    class App:
        def __getattr__(self, name):
            return lambda *a: None

    def msg(seq, mtype, pairs):
        m = simplefix.FixMessage()
        for tg, v in [(8, "FIX.4.4"), (35, mtype), (49, "DESK"), (56, "BESTEX"), (34, seq),
                      (52, "20250113-15:00:00.000"), *pairs]:
            m.append_pair(tg, v)
        return m.encode()

    cfg = FixConfig(password="pw")
    s1 = FixSession(cfg, Journal(tmp_path / "j.db"), App())
    s1.on_bytes(msg(1, "A", [(98, 0), (108, 30), (554, "pw")]))
    s1.on_bytes(msg(2, "1", [(112, "ping")]))
    assert (s1.next_in, s1.next_out) == (3, 3)
    # the process dies; a new one opens the same journal and the client logs on again at 3
    s2 = FixSession(cfg, Journal(tmp_path / "j.db"), App())
    out = s2.on_bytes(msg(3, "A", [(98, 0), (108, 30), (554, "pw")]))
    parser = simplefix.FixParser()
    parser.append_buffer(b"".join(out))
    reply = parser.get_message()
    assert reply.get(35) == b"A"
    assert reply.get(34) == b"3"  # our numbering goes on too
    assert (s2.next_in, s2.next_out) == (4, 4)


def test_an_order_replaced_while_its_plan_is_decided_works_the_new_quantity(tmp_path):
    q, t = _book([0, 5, 10, 20, 600], [100, 100, 100, 100, 100])
    feed = Feed("hand", q, t, SimulatorConfig(venue="PAPER"))
    feed.advance(T0.value + 6 * S)
    eng = _engine(feed, tmp_path)
    assert eng.new_order("DESK", "R1", "AAA", 1, 300.0).fields["exec_type"] == "0"
    (oid,) = eng.take_pending()  # handed to the planner with qty 300
    rep = eng.replace("DESK", "R2", "R1", 450.0)
    assert (rep.fields["exec_type"], rep.fields["order_qty"]) == ("5", 450.0)
    plan = {"plan": {"name": "hand"}, "ns": [T0.value + 10 * S, T0.value + 20 * S],
            "qty": [150.0, 150.0], "kind": [0, 0], "adv": 1e9, "sigma_daily": 0.02,
            "shares_outstanding": 1e9, "arrival_mid": 100.0, "explain": {}}
    eng.apply_plans([oid], [plan])
    assert eng.orders[oid].child_qty == [225.0, 225.0]
    assert eng.position("AAA") == 0.0
    while feed.next_ns() is not None:
        feed.advance(feed.next_ns())
        eng.on_event()
    assert eng.orders[oid].cum_qty == pytest.approx(450.0)
    assert eng.position("AAA") == pytest.approx(450.0)  # the running total follows the fills
