"""Counterfactual impact (issue 3, item 8): the same market path with and without our orders."""

from __future__ import annotations

import numpy as np
import pytest

from models.counterfactual import counterfactual_impact, impact_per_order
from models.desk_history import DeskHistoryConfig, simulate_desk_history
from models.simulator import SimulatorConfig
from models.synthetic_market import SyntheticMarketConfig, generate_market


@pytest.fixture(scope="module")
def market():
    return generate_market(SyntheticMarketConfig(n_symbols=4, n_sessions=12, seed=4,
                                                 micro={"quote_interval_s": 30.0}))


@pytest.fixture(scope="module")
def desk(market):
    return simulate_desk_history(market, DeskHistoryConfig(n_orders=6_000, seed=2))


def test_impact_curve_rises_with_participation_and_follows_the_truth(market, desk):
    curve = counterfactual_impact(market, desk, n_buckets=8)
    assert len(curve) == 8
    assert curve["n"].sum() == 6_000
    assert curve["participation"].is_monotonic_increasing
    assert curve["impact_bps"].is_monotonic_increasing
    assert (curve["impact_ci_lo"] < curve["impact_bps"]).all()
    assert (curve["impact_bps"] < curve["impact_ci_hi"]).all()
    # the physics is ATHL: the curve sits on its closed form (non-uniform schedules cost a bit
    # more or less than the uniform-rate formula) ...
    ratio = curve["impact_bps"] / curve["athl_bps"]
    assert ratio.between(0.8, 1.25).all(), ratio
    # ... and within a factor of the square-root law of the truth (it depends on Q/V only).
    to_sqrt = curve["impact_bps"] / curve["sqrt_law_bps"]
    assert to_sqrt.between(0.2, 5.0).all(), to_sqrt


def test_twap_impact_is_the_athl_closed_form(market, desk):
    per = impact_per_order(market, desk)
    fills = desk.child_fills
    taker_only = ~fills.assign(m=fills["liquidity"] == "maker").groupby("order_id")["m"].any()
    twap = per["strategy"].eq("twap").to_numpy() & taker_only.reindex(per["order_id"]).to_numpy()
    assert twap.sum() > 1_000
    np.testing.assert_allclose(per["impact_bps"][twap], per["athl_bps"][twap], rtol=0.02)


def test_the_history_keeps_the_same_counterfactual(market, desk):
    per = impact_per_order(market, desk, seed=7)  # deterministic: seed only drives passive fills
    np.testing.assert_allclose(per["impact_bps"], desk.outcomes["impact_bps"], atol=1e-9)


def test_without_impact_physics_there_is_no_impact(market, desk):
    per = impact_per_order(market, desk, sim=SimulatorConfig(gamma=0.0, eta=0.0))
    np.testing.assert_allclose(per["impact_bps"], 0.0, atol=1e-9)


def test_bad_inputs(market, desk):
    with pytest.raises(ValueError, match="n_buckets must be >= 1"):
        counterfactual_impact(market, desk, n_buckets=0)
    bare = type(desk)(desk.parent_orders, desk.child_fills, desk.outcomes, desk.rejections)
    with pytest.raises(ValueError, match="no child_orders"):
        counterfactual_impact(market, bare)
