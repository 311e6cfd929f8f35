"""Cost models: monotone quantiles, conformal coverage, hand-checked metrics, fold-by-fold CV.

The synthetic orders carry a known expected cost (``truth``): half spread (wider at the open),
a square-root law scaled by a volatility regime, and a participation term a square-root law cannot
express; the label adds timing noise ``~ sigma sqrt(T)``.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold

from models.cost_models import (
    ATHLBaseline,
    ConformalInterval,
    CostModelParams,
    MeanCostModel,
    QuantileCostModel,
    SquareRootBaseline,
    cross_validate_cost_model,
    evaluate,
    fold_loss,
    inverse_noise_weights,
)

FAST = CostModelParams(num_boost_round=60, learning_rate=0.15, max_depth=4, nthread=1)


def _orders(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    adv = np.exp(rng.normal(np.log(2e6), 1.0, n))
    pct = np.exp(rng.uniform(np.log(1e-3), np.log(0.2), n))
    qty = np.round(pct * adv) + 1.0
    sigma = np.exp(rng.normal(np.log(0.02), 0.35, n))
    dur = np.exp(rng.uniform(np.log(5 / 390), 0.0, n))
    spread = np.exp(rng.normal(np.log(4.0), 0.5, n))
    tod = rng.uniform(0, 1, n)
    regime = rng.integers(0, 3, n).astype(float)
    part = np.minimum(qty / (adv * dur), 1.0)
    X = pd.DataFrame({"qty": qty, "adv": adv, "sigma": sigma, "duration_days": dur,
                      "shares_outstanding": 200 * adv, "arrival_spread_bps": spread,
                      "pct_adv": qty / adv, "implied_participation": part,
                      "time_of_day": tod, "regime": regime})
    truth = (0.5 * spread * (1 + 0.5 * (tod < 0.1))
             + 0.8 * sigma * np.sqrt(qty / adv) * 1e4 * (1 + 0.5 * regime)
             + 3e3 * sigma * part ** 1.5)
    y = truth + rng.normal(0, 1, n) * 0.3 * sigma * np.sqrt(dur) * 1e4
    return X, y, truth


@pytest.fixture(scope="module")
def orders():
    return _orders(4000)


def test_quantile_model_is_monotone_in_size_and_participation(orders):
    # Arrange: 20 orders, each swept over a grid of one constrained feature, others held fixed
    X, y, _ = orders
    model = QuantileCostModel(FAST).fit(X, y)
    for col in ("pct_adv", "implied_participation"):
        grid = np.linspace(X[col].min(), X[col].max(), 40)
        sweep = X.iloc[np.repeat(np.arange(20), grid.size)].copy()
        sweep[col] = np.tile(grid, 20)
        # Act
        q = model.predict(sweep).reshape(20, grid.size, 3)
        # Assert: non-decreasing along the grid for p10, p50 and p90
        assert (np.diff(q, axis=1) >= -1e-9).all(), f"quantiles decrease in {col}"


def test_quantiles_are_ordered(orders):
    X, y, _ = orders
    q = QuantileCostModel(FAST).fit(X.iloc[:2000], y[:2000]).predict(X.iloc[2000:])
    assert q.shape == (2000, 3)
    assert (q[:, 0] <= q[:, 1]).all()
    assert (q[:, 1] <= q[:, 2]).all()


def test_monotone_feature_must_exist(orders):
    X, y, _ = orders
    with pytest.raises(ValueError, match=r"monotone_increasing names \['size'\]"):
        QuantileCostModel(FAST, monotone_increasing=("size",)).fit(X, y)


def test_conformal_band_covers_80pct_out_of_sample():
    # Arrange: fit on 3,000 orders, calibrate on 5,000, measure on 5,000 new ones
    X, y, _ = _orders(13_000, seed=1)
    fit, cal, new = slice(0, 3000), slice(3000, 8000), slice(8000, None)
    model = QuantileCostModel(FAST).fit(X.iloc[fit], y[fit])
    # Act
    conf = ConformalInterval(0.8).fit(model.predict(X.iloc[cal]), y[cal])
    band = conf.apply(model.predict(X.iloc[new]))
    # Assert
    covered = np.mean((band[:, 0] <= y[new]) & (y[new] <= band[:, 2]))
    assert 0.75 <= covered <= 0.85, covered


def test_standardized_band_keeps_coverage_in_a_4x_volatility_regime():
    # Arrange: train and calibrate on normal volatility; measure on orders whose sigma is 4x
    # anything seen (a 2008-like week). The noise scale sd = 0.3 sigma sqrt(T) is known pre-trade.
    X, y, _ = _orders(9000, seed=2)
    Xc, yc, _ = _orders(3000, seed=3)
    Xc, yc = Xc.assign(sigma=4 * Xc["sigma"]), None
    rng = np.random.default_rng(4)
    truth_c = (0.5 * Xc["arrival_spread_bps"] * (1 + 0.5 * (Xc["time_of_day"] < 0.1))
               + 0.8 * Xc["sigma"] * np.sqrt(Xc["qty"] / Xc["adv"]) * 1e4 * (1 + 0.5 * Xc["regime"])
               + 3e3 * Xc["sigma"] * Xc["implied_participation"] ** 1.5).to_numpy()
    sd = lambda F: (0.3 * F["sigma"] * np.sqrt(F["duration_days"]) * 1e4).to_numpy()  # noqa: E731
    yc = truth_c + rng.normal(0, 1, len(Xc)) * sd(Xc)
    fit, cal = slice(0, 5000), slice(5000, None)

    def coverage(scaled: bool) -> float:
        qm = QuantileCostModel(FAST).fit(X.iloc[fit], y[fit],
                                         scale=sd(X.iloc[fit]) if scaled else None)
        s_cal, s_new = (sd(X.iloc[cal]), sd(Xc)) if scaled else (None, None)
        conf = ConformalInterval(0.8).fit(qm.predict(X.iloc[cal], s_cal), y[cal], sd(X.iloc[cal]))
        band = conf.apply(qm.predict(Xc, s_new), sd(Xc))
        return float(np.mean((band[:, 0] <= yc) & (yc <= band[:, 2])))

    # Act
    raw, standardized = coverage(False), coverage(True)
    # Assert: bps-quantile trees stay as narrow as the widest leaf they saw; the standardized
    # band stretches with sd and keeps the 80% target
    assert 0.74 <= standardized <= 0.86, standardized
    assert raw < standardized - 0.05, (raw, standardized)


def test_scaled_quantile_model_learns_the_standardized_cost(orders):
    # Arrange: a per-row scale; the same booster trained by hand on y / scale
    X, y, _ = orders
    scale = np.exp(np.random.default_rng(5).normal(0, 0.5, len(X)))
    qm = QuantileCostModel(FAST).fit(X, y, scale=scale)
    by_hand = QuantileCostModel(FAST).fit(X, y / scale)
    # Act / Assert: its predictions are the hand-trained quantiles times each row's scale
    np.testing.assert_allclose(qm.predict(X.iloc[:50], scale[:50]),
                               by_hand.predict(X.iloc[:50]) * scale[:50, None], rtol=1e-6)
    with pytest.raises(ValueError, match="pass `scale` to predict"):
        qm.predict(X.iloc[:5])
    with pytest.raises(ValueError, match="`scale` must be > 0"):
        QuantileCostModel(FAST).fit(X, y, scale=np.zeros(len(X)))


def test_conformal_margin_by_hand():
    # scores max(lo - y, y - hi): 1, -1, 3, 0 -> sorted -1, 0, 1, 3; k = ceil(5 * 0.6) = 3 -> 1.0
    q = np.array([[0.0, 1.0, 2.0]] * 4)
    conf = ConformalInterval(0.6).fit(q, [3.0, 1.0, 5.0, 2.0])
    assert conf.margin_ == 1.0
    np.testing.assert_array_equal(conf.apply(q[:1]), [[-1.0, 1.0, 3.0]])


def test_scaled_conformal_margin_by_hand():
    # scores / scale: (1/1, -1/1, 3/2, 0/4) -> sorted -1, 0, 1, 1.5; k = 3 -> margin 1.0 (sd units)
    q = np.array([[0.0, 1.0, 2.0]] * 4)
    conf = ConformalInterval(0.6).fit(q, [3.0, 1.0, 5.0, 2.0], scale=[1.0, 1.0, 2.0, 4.0])
    assert conf.margin_ == 1.0
    np.testing.assert_array_equal(conf.apply(q[:1], scale=[3.0]), [[-3.0, 1.0, 5.0]])
    with pytest.raises(ValueError, match="pass `scale`"):
        conf.apply(q[:1])


def test_inverse_noise_weights_by_hand():
    # 1 / (r^2 + 5^2) for r = 0, 5, NaN (-> median) -> 1/25, 1/50, 1/37.5; then mean 1
    w = inverse_noise_weights([0.0, 5.0, np.nan], floor_bps=5.0)
    raw = np.array([1 / 25, 1 / 50, (1 / 25 + 1 / 50) / 2])
    np.testing.assert_allclose(w, raw / raw.mean())
    assert w.mean() == pytest.approx(1.0)


def test_evaluate_by_hand():
    # errors y - pred = 0, -1, 2: MAE 1, RMSE sqrt(5/3); TSS of y = 42/9
    y, pred = [1.0, 2.0, 4.0], [1.0, 3.0, 2.0]
    m = evaluate(y, pred, truth=[1.0, 2.0, 3.0], q_lo=[0.0, 0.0, 0.0], q_mid=[1.0, 2.0, 3.0],
                 q_hi=[2.0, 2.0, 5.0], baseline_pred={"sqrt": [1.0, 2.0, 2.0]})
    assert m["mae"] == pytest.approx(1.0)
    assert m["rmse"] == pytest.approx(np.sqrt(5 / 3))
    assert m["r2"] == pytest.approx(1 - 5 / (42 / 9))
    assert m["pinball_p10"] == pytest.approx((0.1 + 0.2 + 0.4) / 3)  # y above q: 0.1 (y - q)
    assert m["pinball_p50"] == pytest.approx(0.5 / 3)  # only the last row misses, by 1
    assert m["pinball_p90"] == pytest.approx((0.1 + 0.0 + 0.1) / 3)  # y below q: 0.1 (q - y)
    assert m["coverage_80"] == 1.0
    assert m["width_80"] == pytest.approx(3.0)
    assert m["truth_mae"] == pytest.approx(2 / 3)
    assert m["oracle_r2"] == pytest.approx(1 - 1 / (42 / 9))
    assert m["r2_over_oracle"] == pytest.approx(m["r2"] / m["oracle_r2"])
    assert m["sqrt_mae"] == pytest.approx(2 / 3)
    assert m["improvement_sqrt_pct"] == pytest.approx(-50.0)
    assert m["truth_improvement_sqrt_pct"] == pytest.approx(100 * (1 - (2 / 3) / (1 / 3)))


def test_weighted_fold_loss_by_hand():
    # errors 1 and 3 with weights 3 and 1: sqrt((3*1 + 1*9) / 4) = sqrt(3); MAE (3 + 3) / 4
    assert fold_loss([0.0, 0.0], [1.0, 3.0], "rmse", [3.0, 1.0]) == pytest.approx(np.sqrt(3))
    assert fold_loss([0.0, 0.0], [1.0, 3.0], "mae", [3.0, 1.0]) == pytest.approx(1.5)


def test_fold_loss_rejects_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss 'mse'"):
        fold_loss([1.0], [1.0], "mse")


def test_mean_model_keeps_feature_names(orders):
    X, y, _ = orders
    model = MeanCostModel(FAST).fit(X, y)
    shuffled = X[list(reversed(X.columns))]
    np.testing.assert_array_equal(model.predict(shuffled), model.predict(X))
    with pytest.raises(ValueError, match=r"lacks feature column\(s\) \['regime'\]"):
        model.predict(X.drop(columns="regime"))


def test_pseudohuber_objective_trains(orders):
    X, y, _ = orders
    params = FAST.model_copy(update={"objective": "reg:pseudohubererror"})
    pred = MeanCostModel(params).fit(X, y).predict(X)
    assert np.isfinite(pred).all()
    assert params.booster_params()["huber_slope"] == 10.0


def test_square_root_baseline_recovers_the_law():
    # Arrange: cost = half spread + 0.7 sigma sqrt(qty/adv) 1e4, no noise
    X, _, _ = _orders(500)
    y = 0.5 * X["arrival_spread_bps"] + 0.7 * X["sigma"] * np.sqrt(X["qty"] / X["adv"]) * 1e4
    # Act
    base = SquareRootBaseline().fit(X, y)
    # Assert
    assert base.uses_spread_
    assert base.calibration_.params["y"] == pytest.approx(0.7, rel=1e-6)
    np.testing.assert_allclose(base.predict(X), y, rtol=1e-6)


def test_athl_baseline_names_missing_column(orders):
    X, y, _ = orders
    with pytest.raises(ValueError, match="needs column 'shares_outstanding'"):
        ATHLBaseline().fit(X.drop(columns="shares_outstanding"), y)


def test_cross_validation_trains_every_fold_and_fits_parametric_on_train_only(orders):
    # Arrange: a parametric feature whose fit records the rows it saw
    X, y, truth = orders
    cv = KFold(3)
    seen: list[np.ndarray] = []

    def fit_parametric(train):
        seen.append(np.sort(train))
        base = SquareRootBaseline(spread_column=None).fit(X.iloc[train], y[train])
        return lambda frame: frame.assign(sqrt_pred_bps=base.predict(frame))

    # Act
    res = cross_validate_cost_model(X, y, cv, FAST, truth=truth, fit_parametric=fit_parametric)
    # Assert
    expected = [np.sort(tr) for tr, _ in cv.split(X)]
    assert len(seen) == 3
    for got, want in zip(seen, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert list(res.folds["fold"]) == [0, 1, 2]
    assert (res.oof["fold"] >= 0).all()
    assert res.fold_losses.shape == (3,)
    np.testing.assert_allclose(res.fold_losses, res.folds["rmse"])
    m = res.metrics
    assert m["truth_mae"] < 0.5 * m["sqrt_truth_mae"]
    assert m["r2_over_oracle"] > 0.8
    assert 0.7 <= m["coverage_80"] <= 0.9
    assert (res.oof[["lo80", "hi80"]].notna()).all().all()


def test_bundle_training_domain_by_hand(tmp_path):
    # a = 0..999: the 0.5% / 99.5% quantiles are 4.995 and 994.005 (linear interpolation);
    # b was missing in training, so a missing b is inside the domain; a missing a is not
    import xgboost as xgb

    from models.cost_bundle import CostModelBundle

    X = pd.DataFrame({"a": np.arange(1000.0), "b": np.r_[np.nan, np.ones(999)]})
    dom = CostModelBundle.fit_domain(X)
    assert dom["a"] == pytest.approx((4.995, 994.005, False))
    assert dom["b"] == (1.0, 1.0, True)
    booster = xgb.train({"max_depth": 1}, xgb.DMatrix(X.to_numpy(), label=np.zeros(1000)), 1)
    bundle = CostModelBundle(booster, booster, ["a", "b"], 0.5, 5.0, domain=dom)
    new = pd.DataFrame({"a": [500.0, 1.0, np.nan, 995.0], "b": [np.nan, 1.0, 2.0, 1.0]})
    assert bundle.outside_domain(new) == ["", "a", "a,b", "a"]
    loaded = CostModelBundle.load(bundle.save(tmp_path / "m"))
    assert loaded.outside_domain(new) == ["", "a", "a,b", "a"]


def test_bundle_band_equals_the_cv_construction_and_survives_save_load(tmp_path):
    # the deployed band = conformal.apply(quantile.predict(X, sd), sd), as in the CV folds;
    # a missing timing risk gets the training median, whatever the batch
    from models.cost_bundle import CostModelBundle
    from models.cost_models import noise_sd_bps

    X, y, _ = _orders(3000, seed=6)
    risk = (0.3 * X["sigma"] * np.sqrt(X["duration_days"]) * 1e4).to_numpy()
    sd = noise_sd_bps(risk, 5.0)
    mean = MeanCostModel(FAST).fit(X, y)
    qm = QuantileCostModel(FAST).fit(X.iloc[:2000], y[:2000], scale=sd[:2000])
    conf = ConformalInterval(0.8).fit(qm.predict(X.iloc[2000:], sd[2000:]), y[2000:], sd[2000:])
    bundle = CostModelBundle(mean.booster_, qm.booster_, list(X.columns), conf.margin_, 5.0,
                             quantile_scaled=True, risk_fill_bps=float(np.median(risk)))
    frame = X.assign(timing_risk_bps=risk)
    _, lo, hi = CostModelBundle.load(bundle.save(tmp_path / "b")).predict(frame)
    band = conf.apply(qm.predict(X, sd), sd)
    np.testing.assert_allclose(lo, band[:, 0], rtol=1e-6)
    np.testing.assert_allclose(hi, band[:, 2], rtol=1e-6)
    # one order with no risk: the same band alone as inside a batch of very risky orders
    one = frame.iloc[:1].assign(timing_risk_bps=np.nan)
    batch = pd.concat([one, frame.iloc[1:50].assign(timing_risk_bps=1e3)])
    assert bundle.predict(one)[1][0] == pytest.approx(bundle.predict(batch)[1][0])


def test_bundle_refuses_a_newer_format(tmp_path):
    import json

    import xgboost as xgb

    from models.cost_bundle import BUNDLE_FORMAT, CostModelBundle

    booster = xgb.train({"max_depth": 1}, xgb.DMatrix(np.zeros((4, 1)), label=np.zeros(4)), 1)
    folder = CostModelBundle(booster, booster, ["a"], 0.5, 5.0).save(tmp_path / "b")
    meta = json.loads((folder / "bundle.json").read_text())
    meta["format"] = BUNDLE_FORMAT + 1
    (folder / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="newer than this code"):
        CostModelBundle.load(folder)


def test_cv_with_interval_scale_keeps_coverage():
    X, y, _ = _orders(4000, seed=7)
    sd = (0.3 * X["sigma"] * np.sqrt(X["duration_days"]) * 1e4).to_numpy()
    res = cross_validate_cost_model(X, y, KFold(4), FAST, baselines=False, interval_scale=sd)
    assert 0.74 <= res.metrics["coverage_80"] <= 0.86, res.metrics["coverage_80"]
    # the band's width follows sd: the noisiest quarter's band is wider than the calmest's
    width = (res.oof["hi80"] - res.oof["lo80"]).to_numpy()
    q = np.quantile(sd, [0.25, 0.75])
    assert np.median(width[sd >= q[1]]) > 2 * np.median(width[sd <= q[0]])


def test_public_names_and_doctests_of_the_split_modules():
    import doctest

    import models._cost_models_baselines
    import models._cost_models_metrics
    import models._cost_models_xgb
    import models.cost_models

    for name in models.cost_models.__all__:
        assert hasattr(models.cost_models, name), name
    for mod in (models.cost_models, models._cost_models_xgb, models._cost_models_baselines,
                models._cost_models_metrics):
        assert doctest.testmod(mod).failed == 0
