"""Real books' rows in the cost model's final fits (issue 13, item 1): the mean model learns
their market-adjusted cost, not the one price path all orders of a recorded day share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.cost_training import (
    TrainingConfig,
    holdout_split,
    real_rows_for,
    share_weights,
    train_cost_model,
)

CFG = TrainingConfig(n_trials=1, n_splits=3, max_rounds=100, max_depth=3, seed=0)


def _orders(n: int, seed: int, k: float, start: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dec = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(n) * 20, unit="min")
    f = pd.DataFrame({"order_id": [f"{seed}-{i}" for i in range(n)], "decision_ts": dec,
                      "t1": dec + pd.Timedelta("15min"),
                      "pct_adv": rng.uniform(1e-4, 2e-2, n),
                      "sigma_daily": rng.uniform(0.01, 0.03, n),
                      "arrival_spread_bps": rng.uniform(2, 10, n),
                      "timing_risk_bps": rng.uniform(5, 15, n), "duration_days": 0.05})
    f["implied_participation"] = f["pct_adv"] * 10
    f["adv"] = 1e6
    f["qty"] = f["pct_adv"] * f["adv"]
    f["shares_outstanding"] = 2e8
    cost = f["arrival_spread_bps"] / 2 + k * f["sigma_daily"] * np.sqrt(f["pct_adv"]) * 1e4
    f["truth_bps"] = cost
    f["is_bps"] = cost + rng.normal(0, 1, n) * f["timing_risk_bps"]
    return f


@pytest.fixture(scope="module")
def sets():
    synth = _orders(600, 0, 0.7, "2024-01-02")
    real = _orders(200, 1, 0.7, "2012-06-21").drop(columns="truth_bps")  # the same physics
    real["adjusted_bps"] = real["is_bps"]
    real["is_bps"] = real["adjusted_bps"] + 40.0  # the day's path: +40 bps on every order
    real["book"] = "day"
    return synth, real


def test_share_weights_by_hand():
    w = share_weights(300, 100, 0.25)  # 100 rows x 1 = 1/4 of 300 x 1 + 100 x 1
    assert w[:300].tolist() == [1.0] * 300
    assert w[300:] == pytest.approx(1.0)
    assert share_weights(300, 100, 0.5)[300:] == pytest.approx(3.0)
    assert share_weights(5, 0, 0.25).tolist() == [1.0] * 5
    with pytest.raises(ValueError, match="share must be in"):
        share_weights(5, 5, 1.0)


def test_mean_model_learns_the_adjusted_cost_of_real_rows(sets):
    synth, real = sets
    adj = real["adjusted_bps"].to_numpy()
    with_adj = train_cost_model(synth, CFG, extra=real)
    feats = with_adj.bundle.features
    x = real_rows_for(real, feats, with_adj.bundle.calibrations)
    bias_adj = float(np.mean(adj - with_adj.bundle.predict(x)[0]))
    raw = train_cost_model(synth, CFG, extra=real.drop(columns="adjusted_bps"))
    bias_raw = float(np.mean(adj - raw.bundle.predict(x)[0]))
    assert abs(bias_adj) < 3.0  # the real rows' own cost, learned
    assert bias_raw < -5.0  # the path's +40 bps learned as a cost of such orders
    # the holdout is the synthetic desk's alone, cut as without real rows
    alone = holdout_split(synth, CFG)
    assert with_adj.split.holdout["order_id"].equals(alone.holdout["order_id"])
    assert len(with_adj.holdout_predictions) == len(alone.holdout)
