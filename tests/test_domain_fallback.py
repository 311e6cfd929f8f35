"""Honest out of domain (issue 13 item 5): the reason, the calibrated widening, the per-regime
band and the physics fallback of :class:`models.cost_bundle.CostModelBundle`.

The bundle tests use boosters that predict exactly 10 bps for every row (one tree of zero
leaves around ``base_score=10``), used both as the mean and as the (one-column, unscaled)
quantile model: the band is then ``10 -+ margin * scale`` and every number can be checked by
hand. Rows carry ``timing_risk_bps=3`` with a noise floor of 4 bps: ``scale = 5``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from models._domain import (
    calibrate_ood_margin,
    conformal_margin,
    domain_reasons,
    edge_rows,
    fit_domain_extras,
    fit_venue_physics,
    group_margins,
)
from models.cost_bundle import SERVING_OUTPUTS, CostModelBundle
from models.cost_models import ConformalInterval

Z80 = 1.2815515655446004  # the 90 % normal quantile: |N(0, 1)|'s 80 % quantile

FEATURES = ["pct_adv", "sigma_seen", "arrival_spread_bps", "regime_code", "time_of_day",
            "l1_imbalance", "quote_age_s", "vol_ratio", "timing_risk_bps"]
DOMAIN = {"pct_adv": (1e-4, 0.01, False), "sigma_seen": (0.01, 0.04, False),
          "arrival_spread_bps": (1.0, 20.0, False), "regime_code": (0.0, 2.0, True),
          "time_of_day": (0.0, 390.0, False), "l1_imbalance": (-0.9, 0.9, False),
          "quote_age_s": (0.0, 5.0, False), "vol_ratio": (0.5, 3.0, False),
          "timing_risk_bps": (1.0, 30.0, False)}
BITMEX = {"law": "sqrt", "y": 0.5, "exponent": 0.5, "sigma": ["sigma_seen", "sigma_daily"],
          "n": 400, "rmse_bps": 9.0, "band_sd": 1.0}


def _constant_booster(value: float = 10.0) -> xgb.Booster:
    X = np.random.default_rng(0).random((16, len(FEATURES)))
    return xgb.train({"base_score": value, "max_depth": 1, "nthread": 1},
                     xgb.DMatrix(X, label=np.full(16, value)), 1)


def _bundle(**extras) -> CostModelBundle:
    b = _constant_booster()
    return CostModelBundle(b, b, FEATURES, 0.2, 4.0, domain=DOMAIN, risk_fill_bps=3.0, **extras)


def _row(**change) -> dict:
    base = {"pct_adv": 0.001, "sigma_seen": 0.02, "arrival_spread_bps": 10.0,
            "regime_code": 1.0, "time_of_day": 100.0, "l1_imbalance": 0.0, "quote_age_s": 1.0,
            "vol_ratio": 1.0, "timing_risk_bps": 3.0, "venue": "BitMEX"}
    return {**base, **change}


# ---------------------------------------------------------------- domain_reason
def test_domain_reason_names_each_feature_and_how():
    frame = pd.DataFrame([_row(), _row(pct_adv=0.031),
                          _row(sigma_seen=np.nan, arrival_spread_bps=0.5),
                          _row(regime_code=np.nan)])  # regime was missing in training: inside
    want = ["", "pct_adv=0.031 > 0.01 (training 99.5%)",
            "sigma_seen missing (never missing in training); "
            "arrival_spread_bps=0.5 < 1 (training 0.5%)", ""]
    assert domain_reasons(frame, DOMAIN) == want
    bundle = _bundle()
    assert bundle.domain_reasons(frame) == want
    # the old flag keeps its comma-separated names
    assert bundle.outside_domain(frame) == ["", "pct_adv", "sigma_seen,arrival_spread_bps", ""]


# ---------------------------------------------------------- conformal pieces
def test_conformal_margin_is_conformal_intervals():
    rng = np.random.default_rng(0)
    q = np.sort(rng.normal(0, 1, (301, 3)), axis=1)
    y, sc = rng.normal(0, 2, 301), rng.uniform(1, 3, 301)
    want = ConformalInterval(0.8).fit(q, y, sc).margin_
    s = np.maximum(q[:, 0] - y, y - q[:, -1]) / sc
    assert conformal_margin(s, 0.8) == want


def test_edge_rows_are_cross_fitted_by_hand():
    # 12 rows a = 0..11 in two interleaved folds: fold 0 holds 0, 2, .., 10, fold 1 1, .., 11.
    # Row 0 lies below every row of fold 1 (u = 0) and row 11 above every row of fold 0 (u = 1):
    # both edge. Row 10 has 5 of fold 1's 6 values below it: u = 5/6, tail 1/6: not edge at 0.1.
    X = pd.DataFrame({"a": np.arange(12.0)})
    folds = np.tile([0, 1], 6)
    assert np.flatnonzero(edge_rows(X, folds, tail=0.1)).tolist() == [0, 11]
    # row 0 never predicted (-1): no edge itself, still every fold's reference (so row 1,
    # above it, is not an edge); row 4 missing where fold 1 never is: outside
    X.loc[4, "a"] = np.nan
    folds[0] = -1
    assert np.flatnonzero(edge_rows(X, folds, tail=0.1)).tolist() == [4, 11]


def test_ood_margin_recovers_k_times_wider_edge_residuals():
    # a ~ U(0, 1); residuals are N(0, 1), and N(0, 3^2) on the 2 % of rows with a < 0.01 or
    # a > 0.99, which hold every row beyond the other folds' 0.5 % / 99.5 % (the edge rows).
    # With q = 0 the score is |y|: interior margin Z80, edge margin 3 Z80.
    rng = np.random.default_rng(1)
    n, k = 20_000, 3.0
    X = pd.DataFrame({"a": rng.uniform(0, 1, n), "b": (rng.uniform(0, 1, n) < 0.3) * 1.0})
    wide = (X["a"] < 0.01) | (X["a"] > 0.99)
    y = rng.normal(0, 1, n) * np.where(wide, k, 1.0)
    q, sc = np.zeros((n, 3)), np.ones(n)
    folds = rng.integers(0, 5, n)
    interior = conformal_margin(np.abs(y[~wide]), 0.8)
    assert interior == pytest.approx(Z80, rel=0.03)
    ood = calibrate_ood_margin(X, q, y, sc, coverage=0.8, folds=folds)
    assert ood / interior == pytest.approx(k, rel=0.12)
    # the edge: about 1 % of rows, all of them wide (the binary b is never an edge)
    edge = edge_rows(X, folds)
    assert 0.007 < edge.mean() < 0.013
    assert wide[edge].all()
    # residuals no wider at the edge: the out-of-domain margin is the pooled one
    flat = rng.normal(0, 1, n)
    assert calibrate_ood_margin(X, q, flat, sc, coverage=0.8, folds=folds) == pytest.approx(
        conformal_margin(np.abs(flat), 0.8), rel=0.12)
    # too few edge rows at every tail: the pooled margin
    assert calibrate_ood_margin(X.iloc[:300], q[:300], y[:300], sc[:300], coverage=0.8,
                                folds=folds[:300]) == conformal_margin(np.abs(y[:300]), 0.8)


def test_ood_increment_is_over_the_rows_own_regime_margin():
    # regime 1 (a > 0.8) is 3x noisier than regime 0, and every upper-edge row is regime 1;
    # within a regime the edge is no worse. Over the pooled margin the edge looks wide (it is
    # mostly regime 1); over each row's regime margin it adds nothing (up to sampling noise).
    rng = np.random.default_rng(3)
    n = 20_000
    X = pd.DataFrame({"a": rng.uniform(0, 1, n)})
    X["regime_code"] = (X["a"] > 0.8) * 1.0
    y = rng.normal(0, 1, n) * np.where(X["regime_code"] == 1, 3.0, 1.0)
    q, sc, folds = np.zeros((n, 3)), np.ones(n), rng.integers(0, 5, n)
    pooled = conformal_margin(np.abs(y), 0.8)
    naive = calibrate_ood_margin(X, q, y, sc, coverage=0.8, folds=folds)
    assert naive - pooled > 0.6  # ~2.41 against ~1.62: half the edge rows are regime 1
    extras = fit_domain_extras(X, y, sc, q, coverage=0.8, folds=folds,
                               group_feature="regime_code")
    assert extras["group_margins"][1.0] / extras["group_margins"][0.0] == pytest.approx(
        3.0, rel=0.06)
    assert 0 <= extras["ood_margin"] - pooled < 0.3


def test_group_margins_recover_per_group_quantiles():
    # group 0: N(0, 1), group 1: N(0, 2^2); group 2 has 50 rows (< 100): pooled, so absent
    rng = np.random.default_rng(2)
    g = np.r_[np.zeros(5000), np.ones(5000), np.full(50, 2.0), [np.nan]]
    y = rng.normal(0, 1, len(g)) * np.where(g == 1, 2.0, 1.0)
    q, sc = np.zeros((len(g), 3)), np.ones(len(g))
    m = group_margins(q, y, sc, g, coverage=0.8)
    assert sorted(m) == [0.0, 1.0]
    assert m[0.0] == pytest.approx(Z80, rel=0.04)
    assert m[1.0] / m[0.0] == pytest.approx(2.0, rel=0.06)
    assert m[1.0] == ConformalInterval(0.8).fit(q[g == 1], y[g == 1], sc[g == 1]).margin_


# --------------------------------------------------------------- the bundle
def test_band_per_regime_and_widened_out_of_domain():
    bundle = _bundle(ood_margin=0.6, group_feature="regime_code",
                     group_margins={0.0: 0.1, 1.0: 0.3, 2.0: 0.5})
    frame = pd.DataFrame([_row(regime_code=1.0), _row(regime_code=np.nan),
                          _row(regime_code=7.0, time_of_day=400.0),  # unknown group, outside
                          _row(regime_code=2.0, time_of_day=400.0),
                          _row(regime_code=0.0)])
    out = bundle.predict_frame(frame)
    assert list(out.columns) == list(SERVING_OUTPUTS)
    # half-widths = margin x scale 5: regime 1 0.3; NaN the pooled 0.2; out of domain the
    # row's margin + (0.6 - 0.2): unknown regime 7 0.2 + 0.4, regime 2 0.5 + 0.4
    np.testing.assert_allclose(out["p90_bps"] - 10, [1.5, 1.0, 3.0, 4.5, 0.5])
    np.testing.assert_allclose(10 - out["p10_bps"], [1.5, 1.0, 3.0, 4.5, 0.5])
    assert out["in_domain"].tolist() == [True, True, False, False, True]
    assert out["fallback"].tolist() == [""] * 5  # time of day: the trees stay
    mean, lo, hi = bundle.predict(frame)
    np.testing.assert_array_equal(mean, out["mean_bps"])
    np.testing.assert_array_equal(lo, out["p10_bps"])
    np.testing.assert_array_equal(hi, out["p90_bps"])


def test_fallback_exactly_where_the_rule_says_and_a_calibration_exists():
    bundle = _bundle(ood_margin=0.6, venue_calibrations={"BitMEX": BITMEX})
    three = {"time_of_day": 400.0, "l1_imbalance": 0.95, "quote_age_s": 9.0}
    frame = pd.DataFrame([
        _row(pct_adv=0.03),                     # size outside, calibrated venue: law
        _row(pct_adv=0.03, venue="LOBSTER"),    # no calibration for the venue: trees
        _row(pct_adv=0.03, venue=None),         # no venue: trees
        _row(),                                 # inside: trees
        _row(**three),                          # 3 non-key features outside: trees
        _row(**three, vol_ratio=4.0),           # 4 outside (> 3): law
    ])
    out = bundle.predict_frame(frame)
    assert out["fallback"].tolist() == ["sqrt:BitMEX", "", "", "", "", "sqrt:BitMEX"]
    # law: s/2 + y sigma sqrt(pct_adv) 1e4 = 5 + 0.5 * 0.02 * sqrt(0.03) * 1e4 = 22.3205 bps
    law0 = 5 + 0.5 * 0.02 * np.sqrt(0.03) * 1e4
    law5 = 5 + 0.5 * 0.02 * np.sqrt(0.001) * 1e4  # 5.3162
    np.testing.assert_allclose(out["mean_bps"], [law0, 10, 10, 10, 10, law5])
    # band: the learned 10 -+ 0.6*5 moved onto the law, and at least law -+ band_sd*5 = -+5
    np.testing.assert_allclose(out["p10_bps"], [law0 - 5, 7, 7, 9, 7, law5 - 5])
    np.testing.assert_allclose(out["p90_bps"], [law0 + 5, 13, 13, 11, 13, law5 + 5])
    mean, _, _ = bundle.predict(frame)
    np.testing.assert_array_equal(mean, out["mean_bps"])
    # a pandas string column with gaps reads the same
    typed = frame.assign(venue=frame["venue"].astype("string"))
    assert bundle.predict_frame(typed)["fallback"].tolist() == out["fallback"].tolist()
    # the same rows without a `venue` column: never a fallback
    assert bundle.predict_frame(frame.drop(columns="venue"))["fallback"].tolist() == [""] * 6


def test_predict_raw_records_the_fallback():
    # raw serving rows: the features are built inside; the size 0.5 ADV is outside the domain
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import serving_rows

    from models.features import MODEL_FEATURES

    names = [*MODEL_FEATURES, "qty", "shares_outstanding"]
    b = xgb.train({"base_score": 10.0, "max_depth": 1, "nthread": 1},
                  xgb.DMatrix(np.zeros((4, len(names))), label=np.full(4, 10.0)), 1)
    bundle = CostModelBundle(b, b, names, 0.2, 5.0, domain={"pct_adv": (1e-3, 0.05, False)},
                             ood_margin=0.6, venue_calibrations={"BitMEX": BITMEX})
    rows = serving_rows(4, seed=3).assign(venue=["BitMEX", "BitMEX", "LOBSTER", None])
    rows["qty"] = rows["adv"] * np.array([0.5, 0.01, 0.5, 0.5])
    got = bundle.predict_raw(rows)
    assert list(got.columns) == list(SERVING_OUTPUTS)
    assert got["fallback"].tolist() == ["sqrt:BitMEX", "", "", ""]
    assert got["in_domain"].tolist() == [False, True, False, False]
    assert got["domain_reason"].iloc[0] == "pct_adv=0.5 > 0.05 (training 99.5%)"
    r = rows.iloc[0]
    law = r["arrival_spread_bps"] / 2 + 0.5 * r["sigma_seen"] * np.sqrt(0.5) * 1e4
    assert got["mean_bps"].tolist() == pytest.approx([law, 10, 10, 10])


def test_save_load_round_trip_of_the_new_fields(tmp_path):
    bundle = _bundle(ood_margin=0.6, group_feature="regime_code",
                     group_margins={0.0: 0.1, 1.0: 0.3}, venue_calibrations={"BitMEX": BITMEX},
                     fallback_features=("pct_adv",), fallback_max_outside=2)
    loaded = CostModelBundle.load(bundle.save(tmp_path / "b"))
    assert loaded.ood_margin == 0.6
    assert loaded.group_feature == "regime_code"
    assert loaded.group_margins == {0.0: 0.1, 1.0: 0.3}
    assert loaded.venue_calibrations == {"BitMEX": BITMEX}
    assert loaded.fallback_features == ("pct_adv",)
    assert loaded.fallback_max_outside == 2
    frame = pd.DataFrame([_row(), _row(pct_adv=0.03), _row(regime_code=0.0, vol_ratio=9.0)])
    pd.testing.assert_frame_equal(loaded.predict_frame(frame), bundle.predict_frame(frame))


def test_an_old_bundle_predicts_exactly_as_before(tmp_path):
    # a format-3 bundle.json (no out-of-domain fields) gives the numbers of the format-3 code:
    # mean booster; quantiles (standardized, x scale) -+ margin x scale
    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.uniform(0, 1, (400, len(FEATURES))), columns=FEATURES)
    y = 10 * X["pct_adv"] + rng.normal(0, 1, 400)
    d = xgb.DMatrix(X.to_numpy(np.float32), label=y.to_numpy())
    mean = xgb.train({"max_depth": 2, "nthread": 1, "seed": 0}, d, 5)
    quant = xgb.train({"objective": "reg:quantileerror", "quantile_alpha": [0.1, 0.5, 0.9],
                       "max_depth": 2, "nthread": 1, "seed": 0}, d, 5)
    new = CostModelBundle(mean, quant, FEATURES, 0.37, 5.0, quantile_scaled=True,
                          domain=CostModelBundle.fit_domain(X), risk_fill_bps=0.5)
    folder = new.save(tmp_path / "old")
    meta = json.loads((folder / "bundle.json").read_text())
    for k in ("ood_margin", "group_feature", "group_margins", "venue_calibrations",
              "fallback_features", "fallback_max_outside"):
        del meta[k]
    meta["format"] = 3
    (folder / "bundle.json").write_text(json.dumps(meta))
    old = CostModelBundle.load(folder)
    assert not old.out_of_domain_rules
    frame = X.assign(pct_adv=X["pct_adv"] * 3, venue="BitMEX")  # a third outside the domain
    x = frame[FEATURES].to_numpy(np.float32)
    sc = np.sqrt(frame["timing_risk_bps"].to_numpy() ** 2 + 25.0)
    q = np.sort(quant.inplace_predict(x, missing=np.nan).reshape(len(x), -1), axis=1) * sc[:, None]
    want = (mean.inplace_predict(x, missing=np.nan).astype(np.float64),
            q[:, 0] - 0.37 * sc, q[:, -1] + 0.37 * sc)
    got = old.predict(frame)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    out = old.predict_frame(frame)
    np.testing.assert_array_equal(out["p90_bps"], want[2])
    assert (~out["in_domain"]).sum() > 100
    assert out["fallback"].tolist() == [""] * len(frame)


# -------------------------------------------------------------------- fitting
def test_venue_physics_recovers_the_law_and_skips_synthetic_rows():
    # y = s/2 + 0.7 sigma sqrt(pct_adv) 1e4 + N(0, scale^2) on 2000 BitMEX rows
    rng = np.random.default_rng(5)
    n = 2000
    f = pd.DataFrame({"pct_adv": rng.uniform(1e-4, 1e-2, n), "sigma_seen": rng.uniform(0.01, 0.05, n),
                      "sigma_daily": 0.02, "arrival_spread_bps": rng.uniform(2, 10, n)})
    sc = rng.uniform(3, 10, n)
    y = (f["arrival_spread_bps"] / 2 + 0.7 * f["sigma_seen"] * np.sqrt(f["pct_adv"]) * 1e4
         + rng.normal(0, 1, n) * sc).to_numpy()
    venues = np.array(["BitMEX"] * (n - 130) + ["SYNTH"] * 100 + [""] * 20 + ["LOBSTER"] * 10,
                      dtype=object)
    cal = fit_venue_physics(f, y, sc, venues, coverage=0.8)
    assert list(cal) == ["BitMEX"]  # SYNTH and '' are no venue; LOBSTER has 10 rows (< 50)
    assert cal["BitMEX"]["y"] == pytest.approx(0.7, abs=0.02)
    assert cal["BitMEX"]["n"] == n - 130
    assert cal["BitMEX"]["band_sd"] == pytest.approx(Z80, rel=0.08)  # |N(0, 1)|'s 80 %
    # realized = the mean label + a 20 bps drift the day's orders share: the law is fitted on
    # the mean label (the same Y), the band on what orders cost (wider)
    drift = fit_venue_physics(f, y + 20, sc, venues, coverage=0.8, y_mean=y)
    assert drift["BitMEX"]["y"] == cal["BitMEX"]["y"]
    assert drift["BitMEX"]["band_sd"] > cal["BitMEX"]["band_sd"] + 1


def test_fit_domain_extras_gives_bundle_kwargs():
    rng = np.random.default_rng(6)
    n = 3000
    X = pd.DataFrame({"pct_adv": rng.uniform(1e-4, 1e-2, n), "sigma_seen": rng.uniform(0.01, 0.05, n),
                      "arrival_spread_bps": rng.uniform(2, 10, n),
                      "regime_code": rng.integers(0, 3, n).astype(float)})
    y = rng.normal(0, 1, n) * (1 + X["regime_code"].to_numpy())
    q = np.where(rng.uniform(0, 1, (n, 1)) < 0.3, 0.0, np.nan) * np.ones((1, 3))  # 30 % cal
    extras = fit_domain_extras(X, y, np.ones(n), q, coverage=0.8, group_feature="regime_code",
                               venues=np.full(n, "BitMEX", dtype=object))
    assert sorted(extras) == ["group_feature", "group_margins", "ood_margin",
                              "venue_calibrations"]
    assert extras["group_feature"] == "regime_code"
    m = extras["group_margins"]
    assert m[1.0] / m[0.0] == pytest.approx(2.0, rel=0.2)
    assert m[2.0] / m[0.0] == pytest.approx(3.0, rel=0.2)
    assert extras["ood_margin"] >= conformal_margin(np.abs(y[np.isfinite(q[:, 0])]), 0.8)
    assert list(extras["venue_calibrations"]) == ["BitMEX"]
    b = _constant_booster()
    CostModelBundle(b, b, FEATURES, 0.2, 4.0, **extras)  # the bundle takes them as they are
    # a group feature the model does not have: no groups
    assert fit_domain_extras(X, y, np.ones(n), q, coverage=0.8,
                             group_feature="regime_p_calm")["group_margins"] == {}
