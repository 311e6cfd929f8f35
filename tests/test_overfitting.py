"""Overfitting statistics against ../shared/REFERENCES.md §2 (worked examples, exact values).

* §2.1: DSR paper example (0.9003968344), E[max], PSR (0.9132343069), MinTRL, MinBTL, plus a
  high-SR/high-kurtosis case that tells Pearson from excess kurtosis (the DSR example cannot:
  0.90040 against 0.90178).
* §2.2: the 4×3 CSCV toy table row by row, the seeded random benchmark (PBO 0.63737), loss
  matrices, block trimming, and a brute-force statement of CSCV on random and tied matrices.
"""

from __future__ import annotations

import dataclasses
import doctest
import math
import time
from itertools import combinations

import numpy as np
import pytest
from scipy.stats import norm, rankdata

from validation import _overfitting_pbo, _overfitting_sharpe, overfitting
from validation.overfitting import (
    deflated_sharpe_ratio,
    expected_max_sr,
    min_backtest_length,
    min_track_record_length,
    pbo,
    probabilistic_sharpe_ratio,
)

DAILY, WEEKLY, MONTHLY = 250, 52, 12

# REFERENCES §2.2 toy: S = 4 blocks of one row, N = 3, metric = mean.
TOY = np.array([[0.30, 0.10, 0.20],
                [0.00, 0.40, 0.26],
                [0.36, -0.10, 0.16],
                [-0.20, 0.50, 0.12]])
L3 = math.log(3)  # logit(0.75) = ln 3 = 1.0986


@pytest.mark.parametrize("module", [overfitting, _overfitting_pbo, _overfitting_sharpe])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


def test_public_names_are_importable_from_overfitting():
    for name in overfitting.__all__:
        assert hasattr(overfitting, name), name


# ------------------------------------------------------------------ E[max], PSR, DSR


@pytest.mark.parametrize(("n", "expected", "tol"),
                         [(100, 2.5306028932, 1e-10), (10, 1.5746, 5e-5), (1000, 3.2551, 5e-5)])
def test_expected_max_sr_matches_references(n, expected, tol):
    assert expected_max_sr(n) == pytest.approx(expected, abs=tol)


def test_expected_max_sr_is_about_one_percent_above_monte_carlo():
    rng = np.random.default_rng(7)
    exact = rng.standard_normal((20_000, 100)).max(axis=1).mean()  # ≈ 2.507 (REFERENCES)
    assert exact == pytest.approx(2.507, abs=0.01)
    assert 1.0 < expected_max_sr(100) / exact < 1.02


def test_expected_max_sr_one_trial_is_zero_and_grows_with_n():
    assert expected_max_sr(1) == 0.0
    values = [expected_max_sr(n) for n in (1, 2, 10, 100, 1000, 2.5e4)]
    assert np.all(np.diff(values) > 0)
    with pytest.raises(ValueError, match=r"`n_trials` must be >= 1, got `n_trials=0.5`"):
        expected_max_sr(0.5)


def test_psr_sharpe_efficient_frontier_example():
    psr = probabilistic_sharpe_ratio(1.585 / math.sqrt(MONTHLY), n_obs=24, skew=-2.448,
                                     kurtosis=10.164)
    assert psr == pytest.approx(0.9132343069, abs=1e-10)


def test_dsr_paper_example():
    # N=100, V_ann=0.5, SR_ann=2.5, T=1250 daily returns, skew -3, kurtosis 10.
    res = deflated_sharpe_ratio(2.5 / math.sqrt(DAILY), n_obs=1250, sr_trials_variance=0.5 / DAILY,
                                n_trials=100, skew=-3.0, kurtosis=10.0)
    assert res.dsr == pytest.approx(0.9003968344, abs=1e-10)
    assert res.sr0 == pytest.approx(0.113172, abs=1e-6)
    assert res.sr0 * math.sqrt(DAILY) == pytest.approx(1.7894, abs=1e-4)
    assert res.e_max == pytest.approx(2.5306028932, abs=1e-10)
    assert res.psr > res.dsr  # deflating only lowers the probability
    assert (res.n_trials, res.n_obs, res.kurtosis) == (100.0, 1250, 10.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.dsr = 1.0  # type: ignore[misc]


def test_dsr_from_trial_sharpe_ratios_uses_sample_variance_and_count():
    trials = np.array([0.01, -0.02, 0.05, 0.03, 0.00, 0.04])
    sr = 0.05
    a = deflated_sharpe_ratio(sr, n_obs=500, sr_trials=trials)
    b = deflated_sharpe_ratio(sr, n_obs=500, sr_trials_variance=trials.var(ddof=1), n_trials=6)
    assert a == b
    assert a.sr_trials_variance == pytest.approx(trials.var(ddof=1))
    assert a.n_trials == 6.0
    c = deflated_sharpe_ratio(sr, n_obs=500, sr_trials=trials, n_trials=3)  # effective N
    assert c.e_max == expected_max_sr(3)
    assert c.dsr > a.dsr


@pytest.mark.parametrize(("kwargs", "match"), [
    ({}, "exactly one of `sr_trials`"),
    ({"sr_trials": [0.1, 0.2], "sr_trials_variance": 0.1, "n_trials": 2}, "exactly one of"),
    ({"sr_trials_variance": 0.01}, "`sr_trials_variance` needs `n_trials`"),
    ({"sr_trials_variance": -0.01, "n_trials": 5}, "must be >= 0"),
    ({"sr_trials": [0.1]}, "needs >= 2 finite Sharpe ratios, got 1 values"),
    ({"sr_trials": [0.1, np.nan]}, r"\(1 not finite\)"),
])
def test_dsr_input_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        deflated_sharpe_ratio(0.1, n_obs=100, **kwargs)


# ------------------------------------------------------------------ kurtosis: Pearson, not excess


def test_high_sr_high_kurtosis_tells_pearson_from_excess():
    # SR^ = 0.5, SR* = 0.25, T = 101, skew 0, kurtosis 10 (excess 7):
    # 1 + 9/4 * 0.25 = 1.5625 -> z = 0.25 * sqrt(100) / 1.25 = 2 exactly -> PSR = Φ(2).
    psr = probabilistic_sharpe_ratio(0.5, sr_star=0.25, n_obs=101, kurtosis=10.0)
    assert psr == pytest.approx(norm.cdf(2.0), abs=1e-12)
    assert probabilistic_sharpe_ratio(0.5, sr_star=0.25, n_obs=101, excess_kurtosis=7.0) == psr
    # Passing the excess value as kurtosis: 1 + 6/4 * 0.25 = 1.375, z = 2.5 / sqrt(1.375).
    wrong = probabilistic_sharpe_ratio(0.5, sr_star=0.25, n_obs=101, kurtosis=7.0)
    assert wrong == pytest.approx(norm.cdf(2.5 / math.sqrt(1.375)), abs=1e-12)
    assert wrong - psr > 0.006
    # MinTRL = 1 + factor * (z95 / 0.5)^2 : 1 + 6.25 z² (kurtosis 10) against 1 + 5.5 z² (7).
    z2 = norm.ppf(0.95) ** 2
    assert min_track_record_length(0.5, kurtosis=10.0) == pytest.approx(1 + 6.25 * z2, rel=1e-12)
    assert min_track_record_length(0.5, excess_kurtosis=7.0) == pytest.approx(1 + 6.25 * z2)
    assert min_track_record_length(0.5, kurtosis=7.0) == pytest.approx(1 + 5.5 * z2)
    assert 1 + 6.25 * z2 == pytest.approx(17.9096465881, abs=1e-9)


def test_kurtosis_defaults_to_normal():
    assert probabilistic_sharpe_ratio(0.1, n_obs=50) == probabilistic_sharpe_ratio(
        0.1, n_obs=50, kurtosis=3.0) == probabilistic_sharpe_ratio(0.1, n_obs=50,
                                                                   excess_kurtosis=0.0)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"kurtosis": 0.5}, r"`kurtosis=0.5` is below 1 \+ skew² = 1, .*EXCESS kurtosis.*"
                        r"`excess_kurtosis=0.5`"),
    ({"kurtosis": 2.0, "skew": -1.5}, r"below 1 \+ skew² = 3.25"),
    ({"excess_kurtosis": -2.5}, r"`excess_kurtosis=-2.5 \(kurtosis 0.5\)` is below"),
    ({"kurtosis": 4.0, "excess_kurtosis": 1.0}, "pass either `kurtosis`"),
    ({"kurtosis": math.nan}, "`kurtosis` must be finite"),
])
def test_kurtosis_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        probabilistic_sharpe_ratio(0.1, n_obs=100, **kwargs)


def test_psr_needs_two_observations():
    with pytest.raises(ValueError, match=r"`n_obs` must be >= 2 .* got `n_obs=1`"):
        probabilistic_sharpe_ratio(0.1, n_obs=1)


# ------------------------------------------------------------------ MinTRL, MinBTL


@pytest.mark.parametrize(("sr", "sr_star", "freq", "skew", "kurt", "years"), [
    (2.0, 1.0, DAILY, 0.0, 3.0, 2.7311878),
    (2.0, 1.0, WEEKLY, 0.0, 3.0, 2.8288336),
    (3.0, 2.5, MONTHLY, -0.72, 5.78, 27.3529202),
])
def test_min_track_record_length_in_years(sr, sr_star, freq, skew, kurt, years):
    obs = min_track_record_length(sr / math.sqrt(freq), sr_star=sr_star / math.sqrt(freq),
                                  skew=skew, kurtosis=kurt, prob=0.95)
    assert obs / freq == pytest.approx(years, abs=1e-7)


def test_min_track_record_length_of_dsr_example():
    obs = min_track_record_length(2.5 / math.sqrt(DAILY), skew=-3.0, kurtosis=10.0)
    assert obs == pytest.approx(166.64, abs=0.005)
    # Consistency: at that length the PSR(0) is exactly 95% (n_obs enters as sqrt(n_obs - 1)).
    factor = 1 + 3 * 0.158114 + 9 / 4 * 0.158114**2
    assert norm.cdf(2.5 / math.sqrt(DAILY) * math.sqrt(obs - 1) / math.sqrt(factor)) == (
        pytest.approx(0.95, abs=1e-5))


def test_min_track_record_length_edges():
    assert min_track_record_length(0.1, sr_star=0.1) == math.inf
    with pytest.raises(ValueError, match=r"`prob` must be in \(0.5, 1\), got `prob=0.4`"):
        min_track_record_length(0.1, prob=0.4)


def test_min_backtest_length():
    assert min_backtest_length(45, 1.0) == pytest.approx(4.998087, abs=1e-6)
    assert min_backtest_length(45, 1.0, upper_bound=True) == pytest.approx(7.613, abs=5e-4)
    assert min_backtest_length(45, 2.0) == pytest.approx(4.998087 / 4, abs=1e-6)
    with pytest.raises(ValueError, match=r"`sr_annual` must be > 0, got `sr_annual=0.0`"):
        min_backtest_length(45, 0.0)


# ------------------------------------------------------------------ PBO: the toy table


def test_pbo_toy_table_row_by_row():
    res = pbo(TOY, n_blocks=4, metric="mean")
    assert res.combinations.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    np.testing.assert_allclose(res.is_scores, [[.15, .25, .23], [.33, .00, .18], [.05, .30, .16],
                                               [.18, .15, .21], [-.10, .45, .19], [.08, .20, .14]],
                               atol=1e-12)
    np.testing.assert_allclose(res.oos_scores, res.is_scores[::-1], atol=1e-12)  # complements
    assert res.best_is.tolist() == [1, 0, 1, 2, 1, 1]
    assert res.oos_ranks.tolist() == [3, 1, 1, 2, 1, 3]
    np.testing.assert_allclose(res.relative_ranks, [.75, .25, .25, .5, .25, .75])
    np.testing.assert_allclose(res.logits, [L3, -L3, -L3, 0.0, -L3, L3], atol=1e-12)
    assert res.pbo == pytest.approx(4 / 6)  # λ = 0 counts as overfit (strict < would give 3/6)
    assert res.prob_oos_loss == pytest.approx(1 / 6)
    np.testing.assert_allclose(res.oos_performance, [.20, -.10, .15, .16, .00, .25], atol=1e-12)
    assert (res.n_combinations, res.n_blocks, res.block_size, res.n_rows_dropped) == (6, 4, 1, 0)


def test_pbo_result_is_frozen_and_read_only():
    res = pbo(TOY, n_blocks=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.pbo = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        res.logits[0] = 0.0


def test_pbo_loss_matrix_is_the_negated_performance_matrix():
    # A trials × folds loss matrix (3 trials, 4 folds) enters transposed: rows = folds.
    losses = (-TOY).T
    res = pbo(losses.T, n_blocks=None, higher_is_better=False)
    toy = pbo(TOY, n_blocks=4)
    np.testing.assert_array_equal(res.logits, toy.logits)
    assert res.best_is.tolist() == toy.best_is.tolist()  # the lowest IS loss wins
    assert res.pbo == toy.pbo
    assert res.prob_oos_loss == toy.prob_oos_loss


def test_pbo_odd_fold_count_drops_the_first_fold():
    # 5 folds: S = 5 is odd -> 4 blocks, fold 0 is trimmed (like the T % S remainder).
    folds = np.vstack([[9.0, -9.0, 3.0], TOY])
    for n_blocks in (None, 5, 4):
        res = pbo(folds, n_blocks=n_blocks)
        assert (res.n_blocks, res.n_rows_dropped) == (4, 1)
        np.testing.assert_array_equal(res.logits, pbo(TOY, n_blocks=4).logits)


def test_pbo_trims_rows_from_the_start_into_contiguous_blocks():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(27, 4))  # 27 = 3 * 8 + 3: rows 0-2 dropped, blocks of 3 rows
    res = pbo(m, n_blocks=8, metric="sharpe")
    assert (res.block_size, res.n_rows_dropped, res.n_combinations) == (3, 3, 70)
    changed = m.copy()
    changed[:3] = 100.0
    np.testing.assert_array_equal(pbo(changed, n_blocks=8, metric="sharpe").logits, res.logits)
    blocks = m[3:].reshape(8, 3, 4)
    first = blocks[res.combinations[0]].reshape(-1, 4)  # blocks 0-3 = rows 3..14 in time order
    np.testing.assert_array_equal(first, m[3:15])
    np.testing.assert_allclose(res.is_scores[0], first.mean(0) / first.std(0, ddof=1))


# ------------------------------------------------------------------ PBO: brute force


def _pbo_brute_force(m: np.ndarray, s: int, metric) -> tuple[float, np.ndarray]:
    """CSCV as written in REFERENCES §2.2, one combination at a time."""
    m = m[m.shape[0] % s:]
    blocks = np.array_split(np.arange(m.shape[0]), s)
    logits = []
    for c in combinations(range(s), s // 2):
        j = np.concatenate([blocks[b] for b in c])
        jbar = np.concatenate([blocks[b] for b in range(s) if b not in c])
        r, rbar = metric(m[j]), metric(m[jbar])
        n_star = int(np.argmax(r))
        w = rankdata(rbar)[n_star] / (m.shape[1] + 1)
        logits.append(math.log(w / (1 - w)))
    logits_arr = np.array(logits)
    return float(np.mean(logits_arr <= 0)), logits_arr


def _sharpe(x: np.ndarray) -> np.ndarray:
    return x.mean(0) / x.std(0, ddof=1)


@pytest.mark.parametrize("metric", ["mean", "sharpe"])
def test_pbo_matches_brute_force_on_random_matrix(metric):
    rng = np.random.default_rng(11)
    m = rng.normal(0.0, 0.01, (83, 7)) + np.linspace(0, 0.004, 7)
    fn = _sharpe if metric == "sharpe" else (lambda x: x.mean(0))
    expected_pbo, expected_logits = _pbo_brute_force(m, 10, fn)
    res = pbo(m, n_blocks=10, metric=metric)
    np.testing.assert_allclose(res.logits, expected_logits, atol=1e-12)
    assert res.pbo == expected_pbo


def test_pbo_matches_brute_force_with_ties():
    # Integer data with duplicated columns: IS ties -> first column; OOS ties -> average ranks.
    rng = np.random.default_rng(5)
    base = rng.integers(-2, 3, size=(8, 3)).astype(float)
    m = np.column_stack([base, base[:, 0], base[:, 1]])
    expected_pbo, expected_logits = _pbo_brute_force(m, 8, lambda x: x.mean(0))
    res = pbo(m, n_blocks=8)
    np.testing.assert_allclose(res.logits, expected_logits, atol=1e-12)
    assert res.pbo == expected_pbo
    assert not np.isin(res.best_is, [3, 4]).any()  # duplicates never beat their first copy
    assert np.any(res.oos_ranks % 1 == 0.5)  # average ranks do occur


def test_pbo_callable_metric():
    res = pbo(TOY, n_blocks=4, metric=lambda x: np.median(x, axis=0))
    np.testing.assert_array_equal(res.logits, pbo(TOY, n_blocks=4).logits)  # median = mean of 2


# ------------------------------------------------------------------ PBO: REFERENCES benchmark


def test_pbo_random_benchmark():
    rng = np.random.default_rng(12345)
    m = rng.normal(0, 0.01, (1600, 20))
    start = time.perf_counter()
    res = pbo(m, n_blocks=16, metric="sharpe")
    assert time.perf_counter() - start < 2.0  # vectorized over the 12,870 combinations
    assert res.n_combinations == 12_870
    assert res.pbo == pytest.approx(0.63737, abs=5e-6)  # 8203 / 12870
    assert res.prob_oos_loss == pytest.approx(0.6337, abs=5e-5)
    assert res.degradation_slope == pytest.approx(-0.672, abs=5e-4)
    skilled = m.copy()
    skilled[:, 0] += 0.002
    assert pbo(skilled, n_blocks=16, metric="sharpe").pbo == 0.0


# ------------------------------------------------------------------ PBO: errors


@pytest.mark.parametrize(("matrix", "kwargs", "exc", "match"), [
    (TOY, {"n_blocks": 6}, ValueError,
     r"`n_blocks=6` exceeds the 4 rows .*transpose a trials × folds matrix.*`n_blocks=None`"),
    (TOY, {"n_blocks": 1}, ValueError, r"`n_blocks` must be >= 2, got `n_blocks=1`"),
    (TOY, {"n_blocks": 4.0}, TypeError, r"`n_blocks` must be an int or None, got `n_blocks=4.0`"),
    (TOY[:1], {"n_blocks": None}, ValueError, r"needs >= 2 rows .* got 1"),
    (TOY[:, :1], {}, ValueError, r"with >= 2 columns, got shape \(4, 1\)"),
    (np.where(TOY == 0.26, np.nan, TOY), {"n_blocks": 4}, ValueError,
     r"1 non-finite value\(s\), first at row 1, column 2"),
    (np.zeros((24, 2)), {"n_blocks": 24}, ValueError,
     r"`n_blocks=24` gives 2,704,156 combinations .*use fewer blocks"),
    (TOY[:2], {"n_blocks": None, "metric": "sharpe"}, ValueError,
     r"metric='sharpe' needs >= 2 rows per half, got 1 \(2 blocks of 1 row\(s\)\)"),
    (np.column_stack([np.ones(8), np.arange(8.0)]), {"n_blocks": 4, "metric": "sharpe"},
     ValueError, r"not finite .* for column 0 in combination 0 .*constant column"),
    (TOY, {"n_blocks": 4, "metric": "median"}, ValueError, r"got `metric='median'`"),
    (TOY, {"n_blocks": 4, "metric": lambda x: x.mean()}, ValueError,
     r"to shape \(3,\) \(one value per column\), got shape \(\)"),
])
def test_pbo_errors(matrix, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pbo(matrix, **kwargs)
