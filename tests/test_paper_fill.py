"""The paper service's one-parent fill path equals the simulator's general replay, bit for bit.

``Feed.fill`` builds the kernel's arrays for one parent directly instead of validating a general
batch (``Feed.replay``, :func:`models._sim_replay._run`); the gateway's loop waits for every
fill, so this is on the acknowledgement path. Same physics: every per-child output (quantity,
price, fee, maker flag, time, refusal rule, value and limit) must be identical on marketable
and passive children, sizes beyond the touch, the risk limits and the kill switch.
"""

from __future__ import annotations

import numpy as np
import pytest

from bestex.paper.market import Fills, synth_feed
from models.risk_controls import RiskLimits
from models.synthetic_market import SyntheticMarketConfig, generate_market

_MIN = 60 * 10**9
_FIELDS = ("fill_qty", "fill_px", "fee", "maker", "fill_ts", "reject_code", "reject_value",
           "reject_limit")


@pytest.fixture(scope="module")
def feed():
    m = generate_market(SyntheticMarketConfig(n_symbols=2, n_sessions=3, seed=11,
                                              start_date="2025-02-03"))
    return synth_feed(m.quotes, m.trades, m.daily_bars, m.truth)


LIMITS = [None, RiskLimits(kill_switch=True),
          RiskLimits(max_child_qty=700.0, price_collar_bps=15.0, max_participation=0.05),
          RiskLimits(order_loss_limit=50.0, daily_loss_limit=200.0)]


@pytest.mark.parametrize("limits", LIMITS, ids=["none", "kill", "child", "loss"])
def test_the_one_parent_path_is_the_general_replay(feed, limits):
    rng = np.random.default_rng(5)
    checked = {"passive_filled": 0, "refused": 0, "beyond_touch": 0}
    for case in range(120):
        feed.seek(int(rng.integers(len(feed.times) // 4, len(feed.times))))
        now = feed.now_ns
        sym = feed.symbols[case % 2]
        bid, ask = feed.touch(sym)
        k = int(rng.integers(1, 9))
        start = now - int(rng.integers(k, 90)) * _MIN
        t = np.sort(rng.integers(start, now + 1, size=k))
        qty = rng.choice([100.0, 500.0, 3_000.0, 40_000.0], size=k)
        kind = rng.integers(0, 2, size=k)
        kw = dict(side=int(rng.choice([-1, 1])), qty=float(qty.sum()), start_ns=int(start),
                  end_ns=int(now + rng.integers(0, 30) * _MIN),
                  arrival_mid=0.5 * (bid + ask) * (1 + rng.normal(0, 1e-3)),
                  child_ns=[int(x) for x in t], child_qty=[float(x) for x in qty],
                  child_kind=[int(x) for x in kind], adv=float(rng.uniform(2e5, 5e6)),
                  sigma_daily=float(rng.uniform(0.01, 0.05)),
                  shares_outstanding=float(rng.uniform(1e7, 1e9)), limits=limits,
                  order_id=f"P{case}")
        fast = feed.fill(sym, **kw)
        ref = feed.replay(sym, **{a: b for a, b in kw.items() if a != "qty"})
        assert isinstance(fast, Fills)
        for f in _FIELDS:
            np.testing.assert_array_equal(getattr(fast, f), getattr(ref, f), err_msg=f)
        checked["passive_filled"] += int(((kind == 1) & (fast.fill_qty > 0)).sum())
        checked["refused"] += int((fast.reject_code != 0).sum())
        checked["beyond_touch"] += int((qty > 10_000).sum())
    # the cases reach the branches the equality is meant to cover
    if limits is None:
        assert checked["passive_filled"] > 0
        assert checked["beyond_touch"] > 0
    else:
        assert checked["refused"] > 0


def test_a_parent_without_its_arrival_mid_takes_the_general_replay(feed):
    feed.seek(len(feed.times) // 2)
    now = feed.now_ns
    sym = feed.symbols[0]
    kw = dict(side=1, qty=200.0, start_ns=now - 10 * _MIN, end_ns=now, arrival_mid=np.nan,
              child_ns=[now - 5 * _MIN, now], child_qty=[100.0, 100.0], child_kind=[0, 0],
              adv=1e6, sigma_daily=0.02, shares_outstanding=1e8)
    res = feed.fill(sym, **kw)
    assert not isinstance(res, Fills)  # the SimResult: the mid known at start_ns
    assert np.isfinite(res.arrival_mid[0])
    assert res.fill_qty.sum() == 200.0
