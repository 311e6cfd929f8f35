"""Drift statistics against ../shared/REFERENCES.md §7.2 (worked examples, exact values).

* PSI: the 4-bin share example (0.2282) and the 1..8 training sample (edges 2.75/4.5/6.25,
  shares .125/0/.25/.625, PSI 2.3855 at eps 1e-4 and 3.5375 at eps 1e-6).
* KS: D = 0.375, p = 0.660 on the same 8-vs-8 sample; the 5 % critical value 1.3581·√((n+m)/nm).
* CUSUM and Page–Hinkley on the worked sequence (fire at t = 8 and t = 7, 1-based), and the
  CUSUM ARL0 ≈ 335 / ARL1 ≈ 8.4 (k = 0.5, h = 4) by a seeded Monte Carlo.
* feature_drift and calibration_drift on planted shifts; the threshold file.
"""

from __future__ import annotations

import dataclasses
import doctest
import time

import numpy as np
import pandas as pd
import pytest

from validation import drift
from validation.drift import (
    Cusum,
    DriftThresholds,
    PageHinkley,
    alarms,
    calibration_drift,
    feature_drift,
    ks,
    load_thresholds,
    psi,
    psi_edges,
    psi_from_shares,
    run_detector,
)

TRAIN8 = np.arange(1, 9, dtype=float)
LIVE8 = [1, 5, 6, 7, 7.5, 8, 9, 10]
SEQ = [0.2, -0.4, 0.1, 0.3, -0.2, 1.4, 1.1, 1.6, 0.9, 1.3]


def test_doctests_pass():
    assert doctest.testmod(drift).failed == 0


# --------------------------------------------------------------------------- PSI


def test_psi_from_shares_reference_example():
    # terms .13744 + .01116 + .00912 + .07050
    assert psi_from_shares([.25] * 4, [.1, .2, .3, .4]) == pytest.approx(0.2282, abs=1e-4)
    assert psi_from_shares([.25] * 4, [.25] * 4) == 0.0


def test_psi_edges_are_linear_quartiles_and_deduplicated():
    np.testing.assert_allclose(psi_edges(TRAIN8, bins=4), [2.75, 4.5, 6.25])
    np.testing.assert_allclose(psi_edges(np.arange(1, 11), bins=10), np.arange(1.9, 10, 0.9))
    # ties collapse: 9 deciles of a sample that is 80 % zeros give 3 distinct edges
    np.testing.assert_allclose(psi_edges([0] * 8 + [1, 2], bins=10), [0.0, 0.2, 1.1])


@pytest.mark.parametrize(("eps", "expected"), [(1e-4, 2.3855), (1e-6, 3.5375)])
def test_psi_reference_example(eps, expected):
    r = psi(TRAIN8, LIVE8, bins=4, eps=eps, min_count=8)
    assert r.edges == (2.75, 4.5, 6.25)
    assert r.expected == (0.25, 0.25, 0.25, 0.25)
    assert r.actual == (0.125, 0.0, 0.25, 0.625)  # 1 | - | 5, 6 | 7, 7.5, 8, 9, 10
    assert r.value == pytest.approx(expected, abs=1e-4)
    assert (r.n_live, r.enough) == (8, True)
    assert psi(TRAIN8, LIVE8, bins=4, eps=eps, min_count=9).enough is False


def test_psi_bins_are_left_closed_and_frozen_edges_are_used():
    # a live value on an edge falls in the bin to its right
    assert psi(TRAIN8, [2.75, 4.5, 6.25, 6.25], edges=[2.75, 4.5, 6.25]).actual == (
        0.0, 0.25, 0.25, 0.5)
    # NaN are dropped from both samples
    r = psi([*TRAIN8, np.nan], [*LIVE8, np.nan], bins=4)
    assert (r.n_live, round(r.value, 4)) == (8, 2.3855)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: psi([], LIVE8), "`train` is empty"),
    (lambda: psi([np.nan, np.nan], LIVE8), "`train` holds only NaN"),
    (lambda: psi(TRAIN8, [np.nan]), "`live` holds only NaN"),
    (lambda: psi(TRAIN8, [1.0, np.inf]), r"`live` holds 1 infinite"),
    (lambda: psi(TRAIN8, LIVE8, edges=[2.75, 6.25, 4.5]),
     r"strictly increasing: edges\[2\]=4.5 <= edges\[1\]=6.25"),
    (lambda: psi(TRAIN8, LIVE8, edges=[1.0, np.nan]), "edges must be finite"),
    (lambda: psi_edges(TRAIN8, bins=1), "`bins` must be an integer >= 2"),
    (lambda: psi_from_shares([.5, .5], [.2, .3, .5]), "equal length, got 2 and 3"),
    (lambda: psi_from_shares([.5, .5], [.2, .3]), r"`actual` shares .* sum to 1"),
    (lambda: psi_from_shares([.5, .5], [.5, .5], eps=0), r"`eps` must be in \(0, 1\)"),
    (lambda: ks([], LIVE8), "`train` is empty"),
])
def test_bad_inputs_are_refused_with_a_clear_message(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- KS


def test_ks_reference_example():
    d, p = ks(TRAIN8, LIVE8)
    assert d == pytest.approx(0.375, abs=1e-12)  # 3/8 at x in [2, 4]
    assert p == pytest.approx(0.660, abs=1e-3)  # exact p: KS sees no shift, PSI says "major"


def test_ks_five_percent_critical_value():
    """Under H0, D exceeds 1.3581·√((n+m)/nm) in about 5 % of the draws, and p < 0.05 there."""
    rng = np.random.default_rng(7)
    n = m = 200
    crit = 1.3581 * np.sqrt((n + m) / (n * m))
    draws = [ks(rng.standard_normal(n), rng.standard_normal(m)) for _ in range(300)]
    above = np.array([d > crit for d, _ in draws])
    assert 0.02 <= above.mean() <= 0.09
    # away from the boundary (|D − crit| > 0.01), p < 0.05 exactly when D > crit
    assert all((p < 0.05) == a for (d, p), a in zip(draws, above, strict=True)
               if abs(d - crit) > 0.01)


# --------------------------------------------------------------------------- detectors


def test_cusum_reference_sequence():
    c = Cusum(k=0.5, h=2.0)
    fired, path = [], []
    for x in SEQ[:8]:
        fired.append(c.update(x))
        path.append(c.s_hi)
    np.testing.assert_allclose(path, [0, 0, 0, 0, 0, 0.9, 1.5, 2.6], atol=1e-12)
    assert fired == [False] * 7 + [True]
    assert run_detector(Cusum(k=0.5, h=2.0), SEQ) == 7  # t = 8, 1-based
    c.reset()
    assert (c.s_hi, c.s_lo) == (0.0, 0.0)


def test_cusum_lower_two_sided_and_sigma():
    neg = [-x for x in SEQ]
    assert run_detector(Cusum(k=0.5, h=2.0), neg) is None
    assert run_detector(Cusum(k=0.5, h=2.0, side="lower"), neg) == 7
    assert run_detector(Cusum(k=0.5, h=2.0, side="two-sided"), neg) == 7
    # sigma = 2 halves every value: z − k = .2, .05, .3, −.05, .15 from t = 6 -> S ends at .65
    c = Cusum(k=0.5, h=2.0, mu0=0.0, sigma=2.0)
    assert [c.update(x) for x in SEQ] == [False] * 10
    assert c.s_hi == pytest.approx(0.65)
    assert repr(c) == "Cusum(k=0.5, h=2.0, mu0=0.0, sigma=2.0, side='upper')"


def test_page_hinkley_reference_sequence():
    p = PageHinkley(0.1, 1.5)
    path = []
    for x in SEQ[:7]:
        fired = p.update(x)
        path.append(p.ph_hi)
    np.testing.assert_allclose(path, [0, 0, 0.0333, 0.1833, 0, 1.0667, 1.7095], atol=1e-4)
    assert fired
    assert run_detector(PageHinkley(0.1, 1.5), SEQ) == 6  # t = 7, 1-based
    assert run_detector(PageHinkley(0.1, 1.5, min_instances=9), SEQ) == 8
    assert run_detector(PageHinkley(0.1, 1.5, side="lower"), [-x for x in SEQ]) == 6
    assert run_detector(PageHinkley(0.1, 1.5, side="lower"), SEQ) is None


@pytest.mark.parametrize(("call", "match"), [
    (lambda: Cusum(k=0.5, h=0.0), "Cusum needs k >= 0, h > 0"),
    (lambda: Cusum(k=0.5, h=4.0, side="up"), "`side` must be 'upper', 'lower' or 'two-sided'"),
    (lambda: PageHinkley(-0.1, 1.0), "PageHinkley needs delta >= 0"),
    (lambda: Cusum(k=0.5, h=4.0).update(float("nan")), "finite values, got x=nan"),
])
def test_bad_detector_parameters(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_alarms_restart_after_each_alarm():
    # two copies of the sequence: fires at t=8 and, restarted at 0, again at 10 + 8
    assert alarms(Cusum(k=0.5, h=2.0), SEQ + SEQ) == [7, 17]


def test_cusum_arl0_and_arl1_by_monte_carlo():
    """k = 0.5, h = 4, one-sided: ARL0 = 335.4, ARL1 (1 sd shift) = 8.4 (Brook–Evans)."""
    start = time.perf_counter()
    rng = np.random.default_rng(20240411)
    calm = rng.standard_normal(2_000 * 335)  # about 2,000 in-control runs, restarted at 0
    arl0 = calm.size / len(alarms(Cusum(k=0.5, h=4.0), calm))
    assert 250 <= arl0 <= 430
    shifted = rng.standard_normal(2_000 * 8) + 1.0
    arl1 = shifted.size / len(alarms(Cusum(k=0.5, h=4.0), shifted))
    assert 6.5 <= arl1 <= 10.5
    assert time.perf_counter() - start < 5


# --------------------------------------------------------------------------- feature drift


def _feature_frames():
    rng = np.random.default_rng(3)
    n_train, n_day, days = 5_000, 500, 5

    def draw(n):
        return pd.DataFrame({"a": rng.standard_normal(n), "b": rng.uniform(0, 1, n),
                             "c": rng.lognormal(0, 1, n)})

    train = draw(n_train)
    live = pd.concat([draw(n_day).assign(day=d) for d in range(days)], ignore_index=True)
    hit = live["day"] == 3
    live.loc[hit, "a"] += 1.0  # planted: feature a moves by one sd on day 3
    return train, live


def test_feature_drift_finds_the_planted_shift_only():
    train, live = _feature_frames()
    out = feature_drift(train, live, features=["a", "b", "c"], day_col="day")
    assert len(out) == 15
    assert list(out.columns) == ["day", "feature", "n", "psi", "ks_stat", "ks_p", "enough",
                                 "psi_warn", "psi_alarm", "ks_reject", "drift"]
    flagged = out.loc[out["drift"], ["day", "feature"]].to_numpy().tolist()
    assert flagged == [[3, "a"]]
    planted = out[(out["day"] == 3) & (out["feature"] == "a")].iloc[0]
    assert planted["psi"] > 0.5
    assert planted["ks_p"] < 1e-10
    calm = out[~out["drift"]]
    assert calm["psi"].max() < 0.1  # ≈ 9·(1/500 + 1/5000) = 0.02 expected under no drift
    assert (~calm["psi_warn"]).all()


def test_feature_drift_small_days_and_missing_values():
    train, live = _feature_frames()
    live = live[live["day"] == 3].head(50).copy()
    live.loc[live.index[:10], "b"] = np.nan
    out = feature_drift(train, live, features=["a", "b"], day_col="day", min_count=45)
    assert out["n"].tolist() == [50, 40]
    assert out["enough"].tolist() == [True, False]
    assert not out["drift"].iloc[1]
    live["b"] = np.nan
    out = feature_drift(train, live, features=["b"], day_col="day")
    assert out["n"].tolist() == [0]
    assert np.isnan(out["psi"].iloc[0])


def test_feature_drift_errors():
    train, live = _feature_frames()
    with pytest.raises(ValueError, match=r"`train` lacks column\(s\) \['zz'\]"):
        feature_drift(train, live, features=["a", "zz"], day_col="day")
    with pytest.raises(ValueError, match=r"`live` lacks column\(s\) \['c'\]"):
        feature_drift(train, live.drop(columns="c"), features=["a", "c"], day_col="day")
    with pytest.raises(ValueError, match="feature 'a': `train\\['a'\\]` holds only NaN"):
        feature_drift(train.assign(a=np.nan), live, features=["a"], day_col="day")


# --------------------------------------------------------------------------- calibration drift


def _calibration_frame(shift_day=30, bias_sd=0.5, days=40, per_day=30, seed=0):
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(days), per_day)
    sd = 10.0
    pred = rng.uniform(-5, 20, day.size)
    realized = pred + sd * rng.standard_normal(day.size) + np.where(day >= shift_day,
                                                                    bias_sd * sd, 0.0)
    return pd.DataFrame({"d": day, "y": realized, "mu": pred, "lo": pred - drift.Z80 * sd,
                         "hi": pred + drift.Z80 * sd})


def test_calibration_drift_detects_a_planted_bias_within_two_days():
    frame = _calibration_frame()
    out = calibration_drift(frame, realized="y", mean="mu", lo="lo", hi="hi", day_col="d")
    assert len(out) == 40
    assert out["n"].eq(30).all()
    # per day z_day = z_mean·√30; after the shift its mean is 0.5·√30 = 2.74 sd
    after = out["day"] >= 30
    assert out.loc[after, "bias"].mean() == pytest.approx(5.0, abs=1.0)
    assert out.loc[~after, "bias"].abs().max() < 6  # the daily mean of 30 rows: sd 1.8 bps
    # S gains ≈ 2.74 − 0.5 a day: it crosses h = 4 on the 2nd or 3rd shifted day (delay <= 2)
    first_cusum = out.loc[out["cusum_alarm"], "day"].min()
    assert first_cusum in (30, 31, 32)
    assert not out.loc[~after, "cusum_alarm"].any()
    assert out.loc[out["ph_alarm"], "day"].min() in (30, 31, 32)
    assert not out.loc[~after, "ph_alarm"].any()
    # the 80 % band still covers ~0.8 before the shift
    assert out.loc[19:29, "coverage"].between(0.75, 0.85).all()
    assert not out["coverage_low"].any()


def test_calibration_drift_coverage_and_statistics_by_hand():
    # two days, band [−1.2816, 1.2816] (sd 1): day 0 residuals 0, 2 -> z_mean 1, one inside
    frame = pd.DataFrame({"d": [0, 0, 1, 1], "y": [0.0, 2.0, 0.0, 0.0], "mu": 0.0,
                          "lo": -drift.Z80, "hi": drift.Z80})
    out = calibration_drift(frame, realized="y", mean="mu", lo="lo", hi="hi", day_col="d",
                            window=2)
    assert out["bias"].tolist() == [1.0, 0.0]
    np.testing.assert_allclose(out["z_mean"], [1.0, 0.0])
    assert out["coverage_day"].tolist() == [0.5, 1.0]
    assert out["coverage"].tolist() == [0.5, 0.75]  # pooled over the window: 3 of 4
    assert out["coverage_low"].tolist() == [False, False]  # day 0: window not full
    np.testing.assert_allclose(out["z_day"], [np.sqrt(2), 0.0])
    np.testing.assert_allclose(out["cusum_hi"], [np.sqrt(2) - 0.5, np.sqrt(2) - 1.0])
    low = calibration_drift(frame, realized="y", mean="mu", lo="lo", hi="hi", day_col="d",
                            window=2, thresholds=DriftThresholds(coverage_min=0.8))
    assert low["coverage_low"].tolist() == [False, True]


def test_calibration_drift_errors():
    frame = _calibration_frame(days=2, per_day=3)
    kw = {"realized": "y", "mean": "mu", "lo": "lo", "hi": "hi", "day_col": "d"}
    with pytest.raises(ValueError, match="with hi <= lo"):
        calibration_drift(frame.assign(hi=frame["lo"]), **kw)
    with pytest.raises(ValueError, match=r"1 row\(s\) with a missing or infinite"):
        calibration_drift(frame.assign(y=[np.nan, 1, 2, 3, 4, 5]), **kw)
    with pytest.raises(ValueError, match="`window` must be an integer >= 1"):
        calibration_drift(frame, window=0, **kw)


# --------------------------------------------------------------------------- thresholds


def test_packaged_thresholds_equal_the_defaults():
    t = load_thresholds()
    assert t == DriftThresholds()
    assert (t.psi_warn, t.psi_alarm, t.cusum_k, t.cusum_h) == (0.1, 0.25, 0.5, 5.0)


def test_threshold_file_errors(tmp_path):
    text = drift.DEFAULT_DRIFT_PATH.read_text()
    bad = tmp_path / "drift.toml"
    bad.write_text(text + "\npsi_wran = 0.2\n")
    with pytest.raises(ValueError, match=r"drift.toml: unknown key\(s\) \['psi_wran'\]"):
        load_thresholds(bad)
    bad.write_text(text.replace("ks_p = 0.01", ""))
    with pytest.raises(ValueError, match=r"missing key\(s\) \['ks_p'\]"):
        load_thresholds(bad)
    bad.write_text(text.replace("psi_bins = 10", "psi_bins = 9.5"))
    with pytest.raises(ValueError, match=r"`psi_bins = 9\.5` must be an integer"):
        load_thresholds(bad)
    bad.write_text(text.replace("psi_alarm = 0.25", "psi_alarm = 0.05"))
    with pytest.raises(ValueError, match="0 < psi_warn <= psi_alarm"):
        load_thresholds(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_thresholds(tmp_path / "nope.toml")
    assert dataclasses.replace(load_thresholds(), window_days=5).window_days == 5
