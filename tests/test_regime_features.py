"""Regime probabilities as features (models/_feature_regime.py): each order reads the walk-forward
HMM's filter through the previous session, one step ahead; nothing of its own session, no model
fitted on it, NaN before the first model, the same through the serving path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import models.features as features_module
from models.desk_history import DeskHistoryConfig, generate_parent_orders
from models.features import (
    STATE_INPUTS,
    FeatureConfig,
    build_features,
    features_from_state,
    point_in_time_features,
    regime_probability_table,
)
from models.regimes import DEFAULT_LABELS, regime_inputs, walk_forward_regimes
from models.synthetic_market import SyntheticMarketConfig, generate_market
from validation.leakage import knowledge_after_decision, truncation_test

PROBS = [f"regime_p_{k}" for k in DEFAULT_LABELS]
N_SESSIONS = 26  # the first model after 20 sessions: orders of sessions 21-25 get probabilities


@pytest.fixture(scope="module")
def desk():
    market = generate_market(SyntheticMarketConfig(n_symbols=3, n_sessions=N_SESSIONS, seed=4,
                                                   micro={"quote_interval_s": 60.0}))
    orders = generate_parent_orders(market, DeskHistoryConfig(n_orders=240, seed=5))
    src = {"quotes": market.quotes, "trades": market.trades, "daily_bars": market.daily_bars}
    feats = build_features(orders, **src, knowledge_by_group=True)
    return market, orders, src, feats


def _session(ts: pd.Series) -> pd.Series:
    return pd.to_datetime(ts, utc=True).dt.tz_convert("America/New_York").dt.tz_localize(None) \
        .dt.normalize()


def test_labels_of_the_features_are_the_hmm_labels():
    assert tuple(c.removeprefix("regime_p_") for c in PROBS) == DEFAULT_LABELS
    assert set(PROBS) <= set(STATE_INPUTS)


def test_an_order_reads_the_previous_session_one_step_ahead(desk):
    market, _, _, f = desk
    cfg = FeatureConfig()
    wf = walk_forward_regimes(regime_inputs(market.daily_bars, quotes=market.quotes),
                              seed=cfg.regime_hmm_seed, min_train=cfg.regime_hmm_min_train,
                              refit_every=cfg.regime_hmm_refit_every,
                              n_restarts=cfg.regime_hmm_restarts)
    sessions = list(wf["date"])
    day = _session(f["decision_ts"])
    pos = day.map(sessions.index).to_numpy()
    assert pos.min() >= 1  # the desk trades from the second session on
    by_date = wf.set_index("date")
    prev = [sessions[i - 1] for i in pos]
    want = by_date.loc[prev, [f"p_next_{k}" for k in DEFAULT_LABELS]].to_numpy()
    np.testing.assert_allclose(f[PROBS].to_numpy(), want, rtol=1e-12)
    has = f[PROBS].notna().all(axis=1)
    # sessions 0-20 have no model through their previous session: NaN, never a guess
    assert has.to_numpy().tolist() == (day > sessions[cfg.regime_hmm_min_train]).tolist()
    assert 0 < has.sum() < len(f)
    np.testing.assert_allclose(f.loc[has, PROBS].sum(axis=1), 1.0, rtol=1e-9)
    # known at the previous session's close (its inputs' available_at), before the decision
    known = by_date.loc[prev, "available_at"].to_numpy()
    np.testing.assert_array_equal(f.loc[has, "knowledge_ts__regime_hmm"].to_numpy(),
                                  pd.to_datetime(known[has.to_numpy()], utc=True))
    assert knowledge_after_decision(f).empty
    # one value per session: every order of a day reads the same probabilities
    assert (f[has].groupby(day[has])[PROBS].nunique() == 1).all().all()


def test_sources_cut_at_each_decision_give_the_same_probabilities(desk):
    _, orders, src, f = desk
    later = orders[f[PROBS[0]].notna().to_numpy()]
    diffs = truncation_test(later, build_features, src, n_sample=3, seed=0)
    assert diffs.empty, diffs.to_string()


def test_before_the_first_model_the_probabilities_are_nan(desk):
    market, orders, src, _ = desk
    cfg = FeatureConfig()
    first = sorted(market.daily_bars["date"].unique())[:cfg.regime_hmm_min_train]
    bars = market.daily_bars[market.daily_bars["date"].isin(first)]
    assert regime_probability_table(bars, market.quotes, config=cfg).empty
    early = build_features(orders.iloc[:20], quotes=src["quotes"], trades=src["trades"],
                           daily_bars=bars)
    assert early[PROBS].isna().all().all()
    assert regime_probability_table(None, None).columns.tolist() == ["date", "available_at",
                                                                      *PROBS]


def test_serving_rows_carry_the_probabilities_or_get_nan(desk):
    _, _, _, f = desk
    has = f[PROBS[0]].notna().to_numpy()
    served = features_from_state(f)
    np.testing.assert_array_equal(served[PROBS].to_numpy(), f[PROBS].to_numpy())
    without = features_from_state(f.drop(columns=PROBS))
    assert without[PROBS].isna().all().all()
    assert has.any()


def test_point_in_time_features_fits_the_walk_forward_once(desk, monkeypatch):
    _, orders, src, f = desk
    calls = []
    real = features_module.regime_probability_table

    def counting(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(features_module, "regime_probability_table", counting)
    labels = pd.DataFrame({"order_id": orders["order_id"], "is_bps": 1.0,
                           "t1": orders["end_ts"]})
    pit = point_in_time_features(orders, labels=labels, **src)
    assert len(calls) == 1
    np.testing.assert_array_equal(pit[PROBS].to_numpy(), f[PROBS].to_numpy())
