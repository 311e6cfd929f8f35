"""An order's point-in-time state from its own symbol's book equals the state from the whole book.

The paper service's planner computes each order's state from the quotes and trades of the
orders' symbols only (``bestex.paper.engine.order_state``): a fraction of the data, and the
decision that follows finds its caches. That is right only if every state feature is per
symbol; this test checks it on a 3-symbol synthetic day, column by column, and that the feed's
own frames are left as they were (the per-symbol frames are views of them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import serving_rows, tiny_bundle

from bestex.paper.engine import ParentOrder, order_state
from bestex.paper.market import synth_feed
from bestex.paper.service import ModelSource
from models._desk_execution import _volume_history
from models.synthetic_market import SyntheticMarketConfig, generate_market


@pytest.fixture(scope="module")
def feed_and_model():
    m = generate_market(SyntheticMarketConfig(n_symbols=3, n_sessions=6, seed=4,
                                              start_date="2025-01-06"))
    feed = synth_feed(m.quotes, m.trades, m.daily_bars, m.truth,
                      volume_history=_volume_history)
    feed.advance(feed.start_ns + 95 * 60 * 10**9)
    return feed, ModelSource(feed, bundle=tiny_bundle(serving_rows()), version="1")


def _orders(feed, symbols):
    now = feed.now_ns
    return [ParentOrder(f"P{i}", f"C{i}", "DESK", s, 1 if i % 2 else -1, 300.0 + 100 * i, "1",
                        None, now, now + 30 * 60 * 10**9, model_version="1")
            for i, s in enumerate(symbols)]


@pytest.mark.parametrize("pick", [[0], [1, 2], [2, 0, 2]])
def test_the_state_from_the_orders_symbols_is_the_state_from_the_whole_book(feed_and_model,
                                                                            pick):
    feed, model = feed_and_model
    orders = _orders(feed, [feed.symbols[i] for i in pick])
    before = {s: feed.known_quotes(s).copy() for s in feed.symbols}
    _, got = order_state(feed, model, orders)
    _, want = order_state(feed, model, orders, symbols=list(feed.symbols))
    assert len(got) == len(orders)
    pd.testing.assert_frame_equal(got, want)
    # a real state: the order's arrival quote and its volatility are known
    assert np.isfinite(got["arrival_mid"]).all()
    assert np.isfinite(got["sigma_seen"]).all()
    for s in feed.symbols:  # the feed's frames were not written to
        pd.testing.assert_frame_equal(feed.known_quotes(s), before[s])


@pytest.fixture(scope="module")
def multi_day_feed():
    """A feed holding 26 sessions of 2 symbols' quotes: the regime HMM's inputs (spread and
    volatility relative to earlier sessions) exist, and bars become known as it runs."""
    from bestex.paper.market import Feed
    from models.simulator import SimulatorConfig

    m = generate_market(SyntheticMarketConfig(n_symbols=2, n_sessions=26, seed=4,
                                              start_date="2025-01-06"))
    return Feed("synth", m.quotes, m.trades, SimulatorConfig.from_truth(m.truth.impact),
                daily_bars=m.daily_bars, calendar="XNYS")


def test_the_feeds_regime_table_gives_the_states_of_a_table_computed_per_order(
        multi_day_feed, monkeypatch):
    """The feed keeps the regime HMM's table (``Feed.regime_table``) until a bar becomes known
    or a row's ``available_at`` passes, instead of recomputing it for every order: the states
    are identical, column by column, at decisions across several sessions, and the regime
    probabilities are real numbers there (a model exists)."""
    import copy

    from models.features import FeatureConfig

    feed = multi_day_feed
    b = copy.copy(tiny_bundle(serving_rows()))
    b.feature_config = FeatureConfig(**{**b.feature_config.model_dump(),
                                        "regime_hmm_min_train": 15, "regime_hmm_refit_every": 2,
                                        "regime_hmm_restarts": 1})
    m = ModelSource(feed, bundle=b, version="1")
    finite = 0
    for cur in np.linspace(len(feed.times) * 0.8, len(feed.times) - 1, 7).astype(int):
        feed.seek(int(cur))
        orders = _orders(feed, feed.symbols)
        _, kept = order_state(feed, m, orders)
        with monkeypatch.context() as mp:  # build_features computes the table itself
            mp.setattr(type(feed), "regime_table", lambda self, config: None)
            _, fresh = order_state(feed, m, orders)
        pd.testing.assert_frame_equal(kept, fresh)
        finite += int(np.isfinite(kept["regime_p_calm"]).all())
    assert finite >= 3


def test_a_synthetic_days_state_is_the_training_pipelines_state(monkeypatch):
    """The synthetic feed replays one session but carries the earlier sessions' quotes and
    trades (21 sessions: the features' lookbacks) and the regime HMM's inputs of every earlier
    session: an order's state equals the features the training pipeline computes for it from
    the whole market (every numeric column, to the last bits of a sum over a longer array).
    Without them the previous session's volatility, the 20-session baselines and the regime
    probabilities were NaN or different: the policy priced orders on features the model was
    not trained on."""
    import copy

    from models.features import FeatureConfig, build_features

    m = generate_market(SyntheticMarketConfig(n_symbols=2, n_sessions=26, seed=4,
                                              start_date="2025-01-06"))
    feed = synth_feed(m.quotes, m.trades, m.daily_bars, m.truth)
    last = pd.to_datetime(m.quotes["ts"], utc=True).dt.date.max()
    assert pd.Timestamp(feed.start_ns, tz="UTC").date() == last  # the history is not replayed
    b = copy.copy(tiny_bundle(serving_rows()))
    cfg = FeatureConfig(**{**b.feature_config.model_dump(), "regime_hmm_min_train": 15,
                           "regime_hmm_refit_every": 2, "regime_hmm_restarts": 1})
    b.feature_config = cfg
    model = ModelSource(feed, bundle=b, version="1")
    for frac in (0.3, 0.8):
        feed.seek(int(len(feed.times) * frac))
        orders = _orders(feed, feed.symbols)
        frame, state = order_state(feed, model, orders)
        full = build_features(frame, quotes=m.quotes, trades=m.trades, daily_bars=m.daily_bars,
                              calibrations=b.calibrations, config=model.bundle.feature_config)
        num = [c for c in state.columns if pd.api.types.is_float_dtype(state[c])]
        assert {"rv_prev_session", "vol_ratio", "trade_intensity_rel",
                "regime_p_calm"} <= set(num)
        np.testing.assert_allclose(state[num].to_numpy(), full[num].to_numpy(), rtol=1e-12,
                                   atol=0, err_msg=str(num))
        assert np.isfinite(state[["rv_prev_session", "vol_ratio", "regime_p_calm"]]).all().all()
