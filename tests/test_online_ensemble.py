"""Contracts of the online corrector, the ensemble and the ensemble stage (issue 16, item 3).

The corrector learns only from labels known at each decision (``t1 <= decision_ts``); a step in
the residuals is learned at the pace its half-life sets; the ensemble's weights are convex and go
to the perfect model; :func:`validation.ensemble_stage.compare` returns its table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.cost_training import TrainingConfig
from models.ensemble import CostEnsemble, simplex_lstsq
from models.online import OnlineConfig, OnlineCorrector
from validation.ensemble_stage import MODELS, compare
from validation.errors import LeakageError

T0 = pd.Timestamp("2025-01-02 14:30", tz="UTC")
PLAIN = OnlineConfig(half_life_orders=20.0, prior_orders=0.0, group=None, noise_floor_bps=None)


def _base(frame: pd.DataFrame) -> np.ndarray:
    return frame["base"].to_numpy(np.float64)


def test_a_label_known_after_the_decision_has_no_effect():
    # Arrange: one order decided at 10:00 whose label (1000 bps over the base) is known at 12:00
    past = pd.DataFrame({"decision_ts": [T0], "t1": [T0 + pd.Timedelta("2h")],
                         "is_bps": [1010.0], "base": [10.0]})
    now = pd.DataFrame({"decision_ts": [T0 + pd.Timedelta("1h"), T0 + pd.Timedelta("2h")],
                        "base": [10.0, 10.0]})
    c = OnlineCorrector(_base, PLAIN).observe(past)
    # Act
    pred = c.predict(now)
    # Assert: at 11:00 the label is not known (no effect); at 12:00 it is (knowledge <= decision)
    assert pred[0] == 10.0
    assert pred[1] == 1010.0
    assert c.n_absorbed == 1


def test_pricing_before_an_absorbed_label_is_refused():
    past = pd.DataFrame({"decision_ts": [T0], "t1": [T0 + pd.Timedelta("2h")],
                         "is_bps": [15.0], "base": [10.0]})
    c = OnlineCorrector(_base, PLAIN).observe(past)
    c.predict(pd.DataFrame({"decision_ts": [T0 + pd.Timedelta("3h")], "base": [10.0]}))
    with pytest.raises(LeakageError, match="before the label absorbed"):
        c.predict(pd.DataFrame({"decision_ts": [T0 + pd.Timedelta("1h")], "base": [10.0]}))


def test_a_plus_5_bps_break_is_learned_within_the_half_life_count():
    # Arrange: 1000 orders with zero residual, then a +5 bps bias; one order a minute, each
    # label known 30 s after its decision. Half-life h = 20 orders, n0 = 0, unit weights.
    # With the sums saturated (lam^1000 = 2^-50), after n post-break labels the correction is
    # 5 (1 - lam^n); it reaches 90% (4.5 bps) when lam^n <= 0.1, n >= h log2(10) = 66.4: the
    # 67th label, not the 66th.
    n_pre, n_post = 1000, 80
    dec = T0 + pd.to_timedelta(np.arange(n_pre + n_post), unit="min")
    base = np.full(n_pre + n_post, 20.0)
    labels = base + np.where(np.arange(n_pre + n_post) >= n_pre, 5.0, 0.0)
    hist = pd.DataFrame({"decision_ts": dec, "t1": dec + pd.Timedelta("30s"),
                         "is_bps": labels, "base": base})
    c = OnlineCorrector(_base, PLAIN).observe(hist)
    # Act: price at each post-break label's knowledge time (that label included)
    probes = pd.DataFrame({"decision_ts": hist["t1"].iloc[n_pre:].to_numpy(),
                           "base": base[n_pre:]})
    corr = c.correction(probes)
    # Assert
    expected_n = math.ceil(20.0 * math.log2(10.0))
    assert expected_n == 67
    assert corr[expected_n - 2] < 4.5 <= corr[expected_n - 1]
    assert corr[-1] == pytest.approx(5.0 * (1 - 2.0 ** (-n_post / 20.0)), abs=1e-9)


def test_group_means_shrink_toward_the_pooled_mean():
    # two regimes: +6 bps in regime 1 only; n0 = 2 pseudo-orders, no decay
    cfg = OnlineConfig(half_life_orders=1e12, prior_orders=2.0, noise_floor_bps=None)
    hist = pd.DataFrame({"decision_ts": [T0] * 4, "t1": [T0] * 4,
                         "is_bps": [16.0, 16.0, 10.0, 10.0], "base": [10.0] * 4,
                         "regime_code": [1, 1, 0, 0]})
    c = OnlineCorrector(_base, cfg).observe(hist)
    corr = c.correction(pd.DataFrame({"decision_ts": [T0] * 3, "base": [10.0] * 3,
                                      "regime_code": [1, 0, np.nan]}))
    pooled = 12.0 / (4 + 2)  # S / (W + n0) = 2
    assert corr.tolist() == pytest.approx([(12 + 2 * pooled) / 4, (0 + 2 * pooled) / 4, pooled])


def test_ensemble_weights_are_convex():
    rng = np.random.default_rng(0)
    y = rng.normal(20, 10, 400)
    preds = {"physics": y + rng.normal(3, 8, 400), "learned": 0.5 * y + rng.normal(0, 4, 400),
             "online": y[::-1].copy()}
    w = np.array(list(CostEnsemble().fit(preds, y).weights_["pooled"].values()))
    assert (w >= 0).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-9)


def test_ensemble_puts_its_weight_on_the_perfect_model():
    rng = np.random.default_rng(1)
    truth = rng.normal(15, 10, 2000)
    y = truth + rng.normal(0, 5, 2000)
    preds = {"physics": truth + rng.normal(0, 20, 2000), "learned": truth,
             "online": truth + rng.normal(0, 20, 2000)}
    ens = CostEnsemble().fit(preds, y)
    assert ens.weights_["pooled"]["learned"] >= 0.95
    assert simplex_lstsq(np.column_stack([truth, preds["physics"]]), y)[0] >= 0.95


def _synthetic(n: int = 600, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dec = T0 + pd.to_timedelta(np.sort(rng.uniform(0, 20 * 24 * 60, n)), unit="min")
    pct = rng.uniform(0.001, 0.05, n)
    truth = 5 + 100 * np.sqrt(pct)
    return pd.DataFrame({"decision_ts": dec, "t1": dec + pd.Timedelta("30min"),
                         "pct_adv": pct, "regime_code": rng.integers(0, 2, n).astype(float),
                         "timing_risk_bps": np.full(n, 5.0), "truth_bps": truth,
                         "athl_pred_bps": 0.8 * truth, "is_bps": truth + rng.normal(0, 5, n)})


def _linear(train: pd.DataFrame):
    x = np.sqrt(train["pct_adv"].to_numpy())
    b, a = np.polyfit(x, train["is_bps"].to_numpy(), 1)
    return lambda f: a + b * np.sqrt(f["pct_adv"].to_numpy())


def test_compare_returns_the_table_per_model():
    res = compare(_synthetic(), fit=_linear, n_windows=3,
                  training=TrainingConfig(holdout_embargo_hours=0.0))
    assert list(res.table.columns) == ["evaluation", "model", "n", "mae", "rmse", "bias",
                                       "truth_mae"]
    assert res.table["evaluation"].unique().tolist() == ["holdout", "walk_forward",
                                                         "wf_expanding", "wf_rolling"]
    assert res.table["model"].tolist()[:4] == list(MODELS)
    assert res.metric == "truth_mae"
    assert isinstance(res.beats_singles, bool)
    assert len(res.windows) == 6
    w = res.weights[["physics", "learned", "online"]].to_numpy()
    assert np.allclose(w.sum(axis=1), 1.0)
    assert (w >= 0).all()
    # the linear model on the right feature is near-perfect: physics (20% low) loses
    hold = res.table[res.table["evaluation"] == "holdout"].set_index("model")["truth_mae"]
    assert hold["learned"] < hold["physics"]
