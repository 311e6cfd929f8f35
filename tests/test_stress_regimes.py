"""The regime HMM on the stress days (issue 13, item 3): the training market's model, filtered
over each scenario market, against the generator's true regimes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from models.synthetic_market import SyntheticMarketConfig, generate_market
from validation._stress_regimes import (
    DETECTION_COLUMNS,
    REGIME_COLUMNS,
    fit_stress_regime_model,
    regime_detection,
    scenario_regimes,
)
from validation.stress import SCENARIOS, stress_market, stressed_sessions


@pytest.fixture(scope="module")
def model():
    # the demo's market: 8 symbols x 60 sessions, calm, volatile and crisis spells
    m = generate_market(SyntheticMarketConfig(n_symbols=8, n_sessions=60, seed=7))
    assert {"calm", "crisis"} <= set(m.truth.regime_path)
    return fit_stress_regime_model(m.daily_bars, m.quotes)


@pytest.fixture(scope="module")
def crisis():
    sc = SCENARIOS["crisis_2008"]
    return sc, stress_market(sc, seed=0)


def test_a_crisis_week_is_read_as_crisis_from_its_first_close(model, crisis):
    sc, market = crisis
    t = scenario_regimes("crisis_2008", market, model, stressed_sessions(sc, market))
    assert list(t.columns) == list(REGIME_COLUMNS)
    assert len(t) == len(market.truth.sessions)
    scored = t[t["regime"] != ""]
    # the first 5 sessions have no baseline of their own (min_baseline 5): no regime
    assert (t["regime"].iloc[:5] == "").all()
    assert t.loc[t["regime"] == "", "p_crisis"].isna().all()
    p = scored[["p_calm", "p_volatile", "p_crisis"]].to_numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    st = scored["stressed"].to_numpy()
    assert st.sum() == 5
    assert (scored.loc[st, "regime"] == "crisis").all()
    assert (scored.loc[~st, "regime"] == "calm").all()
    d = regime_detection(t)
    assert list(d.columns) == list(DETECTION_COLUMNS)
    row = d.iloc[0]
    assert (row["accuracy"], row["stressed_flagged"], row["detection_delay"],
            row["false_alarm_rate"]) == (1.0, 1.0, 0.0, 0.0)


def test_a_sessions_regime_uses_that_session_and_earlier_ones_only(model, crisis):
    _, market = crisis
    full = scenario_regimes("x", market, model)
    cut_day = market.truth.sessions[8]
    bars = market.daily_bars[pd.to_datetime(market.daily_bars["date"]).dt.date <= cut_day]
    ny = pd.to_datetime(market.quotes["ts"]).dt.tz_convert("America/New_York").dt.date
    cut = SimpleNamespace(daily_bars=bars, quotes=market.quotes[ny <= cut_day],
                          truth=market.truth)
    part = scenario_regimes("x", cut, model)
    assert len(part) == 9
    cols = ["p_calm", "p_volatile", "p_crisis"]
    np.testing.assert_allclose(part[cols].to_numpy(), full[cols].iloc[:9].to_numpy(),
                               rtol=1e-9, atol=1e-12)


def test_detection_on_a_hand_made_table():
    t = pd.DataFrame({
        "scenario": "s", "date": range(6),
        "stressed": [False, False, False, True, True, True],
        "true_regime": ["calm", "calm", "calm", "crisis", "crisis", "crisis"],
        "p_calm": np.nan, "p_volatile": np.nan, "p_crisis": np.nan,
        "regime": ["", "calm", "volatile", "calm", "crisis", "crisis"]})
    d = regime_detection(t).iloc[0]
    # 5 sessions with a regime: right on calm (1), crisis (4, 5): 3 of 5
    assert d["sessions"] == 5
    assert d["accuracy"] == pytest.approx(0.6)
    assert d["stressed_flagged"] == pytest.approx(2 / 3)
    assert d["detection_delay"] == 1.0  # first stressed session missed, the next one flagged
    assert d["false_alarm_rate"] == pytest.approx(0.5)  # of the 2 calm sessions, one flagged
