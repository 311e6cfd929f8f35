"""Pre-trade risk controls: each one fires in a tiny hand-checked scenario, and does not fire in
the same scenario with a looser limit.

Scenario (unless a test says otherwise): one buy parent at mid 100 over the whole session, spread
20 bps (a marketable child pays 10 bps = $0.10 a share), no impact, no noise, no fees; three
children of 100, 200 and 100 shares at 0, 1/3 and 2/3 of the session. ADV 300,000 shares, so
each child's slot trades 100,000 shares: participation 0.001, 0.002, 0.001. Loss of a filled child
= $0.10 x qty: 10, 20, 10.
"""

import numpy as np
import pytest

from models.risk_controls import REASONS, RiskLimits, check_child
from models.simulator import (
    SESSION_NS,
    Children,
    Parents,
    SimulatorConfig,
    replay_l1,
    simulate,
)

CFG = SimulatorConfig(gamma=0.0, eta=0.0, mid_noise=False)
DAY = 86_400_000_000_000


def _parents(n=1, start=0):
    start = np.full(n, start, np.int64) if np.ndim(start) == 0 else np.asarray(start)
    return Parents(symbol_idx=np.zeros(n, int), arrival_mid=np.full(n, 100.0),
                   sigma_daily=np.full(n, 0.02), adv=np.full(n, 3e5),
                   spread_bps=np.full(n, 20.0), shares_outstanding=np.full(n, 6e7),
                   start_ns=start, end_ns=start + SESSION_NS)


def _children(qty=(100.0, 200.0, 100.0), parent=(0, 0, 0), dec=None, limit=np.nan):
    n = len(qty)
    dec = np.arange(n) * (SESSION_NS // 3) if dec is None else np.asarray(dec)
    return Children(parent_idx=np.asarray(parent), decision_ns=dec, qty=np.asarray(qty),
                    side=np.ones(n, int), kind=np.zeros(n, int),
                    limit_offset_bps=np.broadcast_to(np.asarray(limit, float), (n,)))


def _run(limits, parents=None, children=None):
    res = simulate(parents or _parents(), children or _children(), CFG, rng=0, limits=limits)
    return res, res.rejections()


def test_no_limits_fill_everything_at_the_half_spread():
    res, rej = _run(RiskLimits())
    assert rej.empty
    np.testing.assert_allclose(res.fill_px, [100.1, 100.1, 100.1])
    assert res.filled_qty[0] == 400.0


@pytest.mark.parametrize(("limits", "fires", "rejected"), [
    (RiskLimits(kill_switch=True), "kill_switch", [0, 1, 2]),
    (RiskLimits(kill_switch=False), None, []),
    (RiskLimits(max_child_qty=150.0), "max_child_size", [1]),  # the 200-share child
    (RiskLimits(max_child_qty=200.0), None, []),
    (RiskLimits(max_participation=0.0015), "max_participation", [1]),  # 0.002 > 0.0015
    (RiskLimits(max_participation=0.002), None, []),
    (RiskLimits(price_collar_bps=5.0), "price_collar", [0, 1, 2]),  # pays 10 bps from the mid
    (RiskLimits(price_collar_bps=15.0), None, []),
    (RiskLimits(order_loss_limit=25.0), "order_loss_limit", [1]),  # 10 + 20 > 25; 10 + 10 ok
    (RiskLimits(order_loss_limit=45.0), None, []),  # 10 + 20 + 10 = 40
    (RiskLimits(daily_loss_limit=35.0), "daily_loss_limit", [2]),  # 30 + 10 > 35
    (RiskLimits(daily_loss_limit=45.0), None, []),
])
def test_each_control_fires_or_not(limits, fires, rejected):
    res, rej = _run(limits)
    assert rej["child"].tolist() == rejected
    assert set(rej["reason"]) == ({fires} if fires else set())
    # a rejected child is dropped: its quantity is not carried, it stays unfilled
    kept = [q for i, q in enumerate([100.0, 200.0, 100.0]) if i not in rejected]
    assert res.filled_qty[0] == sum(kept)
    assert res.unfilled_qty[0] == 400.0 - sum(kept)


def test_order_loss_limit_counts_the_loss_so_far_plus_the_child():
    # child 0: 0 + 10 <= 25 ok; child 1: 10 + 20 = 30 > 25 rejected; child 2: 10 + 10 = 20 ok
    _, rej = _run(RiskLimits(order_loss_limit=25.0), children=_children())
    assert rej["child"].tolist() == [1]
    assert rej["detail"].iat[0] == "order loss=30 > order_loss_limit=25"


def test_price_collar_uses_the_limit_price_of_a_limit_order():
    # limit 20 bps beyond the ask: the order may pay 10 + 20 = 30 bps from the mid
    _, rej = _run(RiskLimits(price_collar_bps=25.0), children=_children(limit=[np.nan, 20.0, 0.0]))
    assert rej["child"].tolist() == [1]
    assert rej["detail"].iat[0] == "limit distance=30 bps > price_collar_bps=25"


def test_daily_loss_limit_spans_parents_and_resets_each_day():
    # parent 0 loses 10 + 20 on day 0; parent 1's 100-share child (loss 10) comes after
    kids = _children(qty=(100.0, 200.0, 100.0), parent=(0, 0, 1),
                     dec=[0, 1_000, 2_000])
    _, rej = _run(RiskLimits(daily_loss_limit=35.0), _parents(2), kids)
    assert rej["reason"].tolist() == ["daily_loss_limit"]
    assert rej["order_id"].tolist() == ["P1"]
    # the same child one day later: a new day, no rejection
    kids = _children(qty=(100.0, 200.0, 100.0), parent=(0, 0, 1), dec=[0, 1_000, DAY])
    _, rej = _run(RiskLimits(daily_loss_limit=35.0), _parents(2, start=[0, DAY]), kids)
    assert rej.empty


def test_rejections_frame_columns_and_ts():
    _, rej = _run(RiskLimits(max_child_qty=150.0))
    assert list(rej.columns) == ["order_id", "child", "ts", "reason", "detail"]
    assert str(rej["ts"].dtype) == "datetime64[ns, UTC]"
    assert rej["ts"].iat[0].value == SESSION_NS // 3
    assert rej["detail"].iat[0] == "qty=200 > max_child_qty=150"


def test_controls_are_enforced_in_the_replay_too():
    import pandas as pd

    quotes = pd.DataFrame({"ts": pd.to_datetime([0], unit="ns", utc=True), "symbol": ["X"],
                           "bid_px": [99.9], "bid_sz": [1e6], "ask_px": [100.1], "ask_sz": [1e6]})
    res = replay_l1(quotes, _parents(), _children(), CFG, RiskLimits(max_child_qty=150.0))
    assert res.rejections()["child"].tolist() == [1]
    np.testing.assert_allclose(res.fill_px[[0, 2]], [100.1, 100.1])


def test_check_child_order_and_pass():
    args = RiskLimits(max_child_qty=1.0, max_participation=0.1).kernel_args()
    assert REASONS[check_child(*args, 5.0, 0.5, 0.0, 0.0, 0.0)[0]] == "max_child_size"
    assert check_child(*RiskLimits().kernel_args(), 5.0, 0.5, 0.0, 0.0, 0.0)[0] == 0


def test_limits_are_validated():
    with pytest.raises(ValueError, match="max_child_qty"):
        RiskLimits(max_child_qty=0.0)
