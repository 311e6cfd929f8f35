"""Off-policy evaluation (``models.ope``): the worked example of REFERENCES.md section 7.1,
the algebraic invariants of the estimators, and their statistics on a simulated bandit whose
true target value is known in closed form.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from models.ope import (
    OPEEstimate,
    direct_method,
    doubly_robust,
    epsilon_greedy_prob,
    epsilon_greedy_propensities,
    ips,
    snips,
)

# REFERENCES.md 7.1 worked example: reward = -slippage (bp), deterministic target policy pi,
# so p_target is 1 where pi(x_i) equals the logged action and 0 elsewhere.
Y = np.array([-2.0, -6.0, -4.0, -3.0])
P_LOG = np.array([0.8, 0.2, 0.5, 0.4])
P_TARGET = np.array([1.0, 0.0, 0.0, 1.0])  # pi(x_i) = P, P, A, A against a_i = P, A, P, A
Q_LOGGED = np.array([-1.5, -5.0, -3.0, -4.0])  # r_hat(x_i, a_i)
Q_TARGET = np.array([-1.5, -3.0, -5.0, -4.0])  # r_hat(x_i, pi(x_i))


# --------------------------------------------------------------------------- worked example


def test_reference_worked_example_values():
    # Arrange: w = (1.25, 0, 0, 2.5); w*r = (-2.5, 0, 0, -7.5); sum w = 3.75, sum w^2 = 7.8125.
    # Act
    e_ips = ips(Y, P_LOG, P_TARGET)
    e_snips = snips(Y, P_LOG, P_TARGET)
    e_dm = direct_method(Q_TARGET)
    e_dr = doubly_robust(Y, P_LOG, P_TARGET, Q_LOGGED, Q_TARGET)
    # Assert: the numbers printed in REFERENCES.md 7.1.
    assert e_ips.estimate == pytest.approx(-2.5, abs=1e-12)
    assert e_snips.estimate == pytest.approx(-10 / 3.75, abs=1e-12)
    assert round(e_snips.estimate, 4) == -2.6667
    assert e_dm.estimate == pytest.approx(-3.375, abs=1e-12)
    assert e_dr.estimate == pytest.approx(-2.90625, abs=1e-12)
    for e in (e_ips, e_snips, e_dr):
        assert e.ess == pytest.approx(1.8, abs=1e-12)
        assert e.n == 4
    assert e_dm.ess == 4.0  # no weights


def test_reference_worked_example_dr_terms():
    # DR terms of the table: -2.125, -3, -5, -1.5; their mean is the DR estimate and their
    # sample sd / sqrt(4) its se.
    terms = np.array([-2.125, -3.0, -5.0, -1.5])
    e = doubly_robust(Y, P_LOG, P_TARGET, Q_LOGGED, Q_TARGET)
    assert e.estimate == pytest.approx(terms.mean(), abs=1e-12)
    assert e.se == pytest.approx(terms.std(ddof=1) / 2.0, abs=1e-12)


def test_reference_worked_example_standard_errors_by_hand():
    # IPS terms (-2.5, 0, 0, -7.5): deviations (0, 2.5, 2.5, -5), sum of squares 37.5,
    # sample variance 12.5, se = sqrt(12.5 / 4).
    e = ips(Y, P_LOG, P_TARGET)
    assert e.se == pytest.approx(math.sqrt(12.5 / 4), abs=1e-12)
    assert e.ci_low == pytest.approx(-2.5 - 1.959963984540054 * e.se, abs=1e-12)
    assert e.ci_high == pytest.approx(-2.5 + 1.959963984540054 * e.se, abs=1e-12)
    # SNIPS, V = -8/3: w^2 (r - V)^2 = 1.5625 * 4/9 + 6.25 * 1/9 = 25/18; se = sqrt(25/18) / 3.75.
    s = snips(Y, P_LOG, P_TARGET)
    assert s.se == pytest.approx(math.sqrt(25 / 18) / 3.75, abs=1e-12)


def test_reference_invariants():
    # pi = mu gives IPS = SNIPS = mean(r).
    assert ips(Y, P_LOG, P_LOG).estimate == Y.mean()
    assert snips(Y, P_LOG, P_LOG).estimate == pytest.approx(Y.mean(), abs=1e-12)
    # r_hat = 0 gives DR = IPS.
    zero = np.zeros(4)
    assert doubly_robust(Y, P_LOG, P_TARGET, zero, zero) == ips(Y, P_LOG, P_TARGET)
    # r_hat(x_i, a_i) = r_i gives DR = DM.
    dr, dm = doubly_robust(Y, P_LOG, P_TARGET, Y, Q_TARGET), direct_method(Q_TARGET)
    assert (dr.estimate, dr.se, dr.ci_low, dr.ci_high) == (dm.estimate, dm.se, dm.ci_low, dm.ci_high)


# --------------------------------------------------------------------------- algebra


def _random_log(seed: int, n: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.normal(5.0, 4.0, n), rng.uniform(0.05, 1.0, n), rng.uniform(0.0, 1.0, n))


def test_ips_with_target_equal_to_logging_is_the_sample_mean_exactly():
    y, p, _ = _random_log(1, n=1000)
    e = ips(y, p, p)
    assert e.estimate == np.mean(y)
    assert e.se == np.std(y, ddof=1) / math.sqrt(1000)
    assert e.ess == pytest.approx(1000.0, rel=1e-12)  # equal weights: ess = n


def test_dr_with_zero_reward_model_is_ips_exactly():
    y, p_log, p_t = _random_log(2)
    zero = np.zeros_like(y)
    assert doubly_robust(y, p_log, p_t, zero, zero, bootstrap=50, seed=3) == ips(
        y, p_log, p_t, bootstrap=50, seed=3)


@pytest.mark.parametrize("c", [-7.5, 0.25, 100.0])
def test_snips_is_shift_equivariant_and_ips_is_not(c):
    y, p_log, p_t = _random_log(4)
    base, shifted = snips(y, p_log, p_t), snips(y + c, p_log, p_t)
    assert shifted.estimate == pytest.approx(base.estimate + c, abs=1e-9)
    assert shifted.se == pytest.approx(base.se, abs=1e-9)  # the se only sees y - V
    # IPS moves by c * mean(w), not by c.
    w = p_t / p_log
    moved = ips(y + c, p_log, p_t).estimate - ips(y, p_log, p_t).estimate
    assert moved == pytest.approx(c * w.mean(), abs=1e-9)
    assert moved != pytest.approx(c, abs=1e-3)


def test_snips_stays_inside_the_range_of_y():
    for seed in range(20):
        y, p_log, p_t = _random_log(seed, n=8)
        v = snips(y, p_log, p_t).estimate
        assert y.min() <= v <= y.max()


def test_single_order_has_no_standard_error():
    e = ips([3.0], [0.5], [0.25])
    assert e.estimate == 1.5
    assert math.isnan(e.se)
    assert math.isnan(e.ci_low)
    assert math.isnan(e.ci_high)
    assert e.ess == 1.0


def test_all_zero_weights_give_nan_ess_and_snips_refuses():
    e = ips([1.0, 2.0], [0.5, 0.5], [0.0, 0.0])
    assert e.estimate == 0.0
    assert math.isnan(e.ess)
    with pytest.raises(ValueError, match=r"`p_target` is 0 for every logged action"):
        snips([1.0, 2.0], [0.5, 0.5], [0.0, 0.0])


def test_estimate_is_frozen():
    e = ips(Y, P_LOG, P_TARGET)
    assert isinstance(e, OPEEstimate)
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.estimate = 0.0  # type: ignore[misc]


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_interval_is_seeded_and_near_the_normal_one():
    y, p_log, p_t = _random_log(5, n=400)
    normal = ips(y, p_log, p_t)
    a = ips(y, p_log, p_t, bootstrap=2000, seed=7)
    b = ips(y, p_log, p_t, bootstrap=2000, seed=7)
    c = ips(y, p_log, p_t, bootstrap=2000, seed=8)
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    # Same estimate and analytic se; only the interval changes.
    assert (a.estimate, a.se) == (normal.estimate, normal.se)
    assert a.ci_low < a.estimate < a.ci_high
    width = normal.ci_high - normal.ci_low
    assert abs(a.ci_low - normal.ci_low) < 0.15 * width
    assert abs(a.ci_high - normal.ci_high) < 0.15 * width


def test_bootstrap_for_every_estimator_brackets_the_estimate():
    y, p_log, p_t = _random_log(6, n=200)
    q = np.full_like(y, 5.0)
    for e in (snips(y, p_log, p_t, bootstrap=500, seed=1),
              doubly_robust(y, p_log, p_t, q, q, bootstrap=500, seed=1),
              direct_method(q + np.linspace(-1, 1, 200), bootstrap=500, seed=1)):
        assert e.ci_low < e.estimate < e.ci_high


# --------------------------------------------------------------------------- simulated bandit

# 4 equally likely order contexts, 3 actions; true mean cost (bps) of action a in context x:
MU = np.array([[5.0, 8.0, 12.0],
               [10.0, 6.0, 9.0],
               [7.0, 11.0, 4.0],
               [9.0, 9.0, 3.0]])
SIGMA = 3.0  # cost noise (bps)
LOG_GREEDY, LOG_EPS = np.array([1, 0, 1, 0]), 0.6  # a poor, exploring logging policy
TGT_GREEDY, TGT_EPS = MU.argmin(axis=1), 0.1  # the cheapest action, rarely exploring
PI_T = epsilon_greedy_propensities(TGT_GREEDY, 3, TGT_EPS)  # (4, 3)
PI_LOG = epsilon_greedy_propensities(LOG_GREEDY, 3, LOG_EPS)
TRUE_VALUE = float(np.mean((PI_T * MU).sum(axis=1)))
N_ORDERS, N_REPS = 300, 400


def _simulate(rng: np.random.Generator, n: int, sigma: float = SIGMA,
              contexts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    x = rng.integers(0, 4, n) if contexts is None else contexts
    u = rng.random(n)[:, None]
    a = (u > PI_LOG[x].cumsum(axis=1)).sum(axis=1)  # inverse-cdf draw from pi_log(.|x)
    y = MU[x, a] + sigma * rng.standard_normal(n)
    return {
        "x": x, "a": a, "y": y,
        "p_log": epsilon_greedy_prob(a, LOG_GREEDY[x], 3, LOG_EPS),
        "p_target": epsilon_greedy_prob(a, TGT_GREEDY[x], 3, TGT_EPS),
    }


def _dr(d: dict[str, np.ndarray], q: np.ndarray, **kw) -> OPEEstimate:
    """DR with a (4, 3) reward-model table ``q``."""
    x, a = d["x"], d["a"]
    return doubly_robust(d["y"], d["p_log"], d["p_target"], q[x, a],
                         (PI_T[x] * q[x]).sum(axis=1), **kw)


@pytest.fixture(scope="module")
def replications() -> dict[str, np.ndarray]:
    """N_REPS independent logs of N_ORDERS orders; each estimator's results per replication."""
    rng = np.random.default_rng(20110601)
    good_q = MU + rng.normal(0.0, 0.3, MU.shape)  # a good, slightly wrong reward model
    bad_q = MU + 4.0  # a badly biased one
    out: dict[str, list[float]] = {k: [] for k in
                                   ("ips", "ips_covers", "snips", "dr_good", "dr_bad", "dm_bad")}
    for _ in range(N_REPS):
        d = _simulate(rng, N_ORDERS)
        e = ips(d["y"], d["p_log"], d["p_target"])
        out["ips"].append(e.estimate)
        out["ips_covers"].append(float(e.ci_low <= TRUE_VALUE <= e.ci_high))
        out["snips"].append(snips(d["y"], d["p_log"], d["p_target"]).estimate)
        out["dr_good"].append(_dr(d, good_q).estimate)
        out["dr_bad"].append(_dr(d, bad_q).estimate)
        out["dm_bad"].append(direct_method((PI_T[d["x"]] * bad_q[d["x"]]).sum(axis=1)).estimate)
    return {k: np.asarray(v) for k, v in out.items()}


def test_simulated_truth_is_what_the_tables_say():
    # Target: 0.9 + 0.1/3 on the cheapest action, 0.1/3 on the others, so per context
    # 0.9 * cheapest + 0.1 * row mean. Cheapest costs (5, 6, 4, 3) average 4.5; row means of MU
    # (25/3, 25/3, 22/3, 7) average 7.75: V = 0.9 * 4.5 + 0.1 * 7.75 = 4.825.
    assert TRUE_VALUE == pytest.approx(4.825, abs=1e-12)


@pytest.mark.parametrize("name", ["ips", "dr_good", "dr_bad"])
def test_ips_and_dr_are_unbiased(replications, name):
    est = replications[name]
    se_of_mean = est.std(ddof=1) / math.sqrt(est.size)
    assert abs(est.mean() - TRUE_VALUE) < 3.0 * se_of_mean, (
        f"{name}: mean {est.mean():.4f} vs truth {TRUE_VALUE} (se {se_of_mean:.4f})")


def test_direct_method_with_a_biased_model_is_biased(replications):
    # The contrast to DR with the same model: DM inherits the model's +4 bps bias whole.
    assert replications["dm_bad"].mean() == pytest.approx(TRUE_VALUE + 4.0, abs=0.05)


def test_dr_with_a_good_model_has_smaller_variance_than_ips(replications):
    var_ips, var_dr = replications["ips"].var(ddof=1), replications["dr_good"].var(ddof=1)
    assert var_dr < 0.5 * var_ips, f"var DR {var_dr:.4f} vs var IPS {var_ips:.4f}"


def test_snips_is_close_to_unbiased_and_less_variable_than_ips(replications):
    est = replications["snips"]
    assert abs(est.mean() - TRUE_VALUE) < 3.0 * est.std(ddof=1) / math.sqrt(est.size) + 0.05
    assert est.var(ddof=1) < replications["ips"].var(ddof=1)


def test_ips_normal_interval_covers_the_truth_about_95_percent(replications):
    coverage = replications["ips_covers"].mean()
    assert 0.90 <= coverage <= 0.99, f"coverage {coverage:.3f}"


def test_dr_with_a_perfect_model_and_no_noise_is_exact():
    # Fixed contexts, noiseless costs, q = MU: every DR term is V(x_i), whatever action was
    # logged, so DR is the same number in every replication while IPS still varies.
    rng = np.random.default_rng(11)
    contexts = np.repeat(np.arange(4), 25)
    exact = float(np.mean((PI_T * MU).sum(axis=1)))
    drs, ipss = [], []
    for _ in range(50):
        d = _simulate(rng, contexts.size, sigma=0.0, contexts=contexts)
        drs.append(_dr(d, MU).estimate)
        ipss.append(ips(d["y"], d["p_log"], d["p_target"]).estimate)
    assert np.allclose(drs, exact, atol=1e-12)
    assert np.std(ipss) > 0.1


def test_dr_with_a_perfect_model_has_only_the_noise_variance():
    # Fixed contexts and q = MU: DR - V(x) = mean(w_i eps_i), so its variance across logs is
    # sigma^2 * E_x E_mu[w^2] / n with E_mu[w^2 | x] = sum_a pi_t(a|x)^2 / pi_log(a|x).
    rng = np.random.default_rng(12)
    contexts = np.repeat(np.arange(4), 50)
    expected_var = SIGMA**2 * np.mean((PI_T**2 / PI_LOG).sum(axis=1)) / contexts.size
    drs = np.array([_dr(_simulate(rng, contexts.size, contexts=contexts), MU).estimate
                    for _ in range(N_REPS)])
    assert drs.var(ddof=1) == pytest.approx(expected_var, rel=0.25)


# --------------------------------------------------------------------------- epsilon-greedy


def test_epsilon_greedy_matrix_by_hand():
    p = epsilon_greedy_propensities([0, 2, 1], [3, 3, 2], 0.3)
    expected = np.array([[0.8, 0.1, 0.1],
                         [0.1, 0.1, 0.8],
                         [0.15, 0.85, 0.0]])  # a 2-action row: eps/2 = 0.15, padded with 0
    np.testing.assert_allclose(p, expected, atol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


def test_epsilon_greedy_prob_matches_the_matrix():
    rng = np.random.default_rng(3)
    k = rng.integers(1, 6, 40)
    chosen = rng.integers(0, k)
    actions = rng.integers(0, k)
    p = epsilon_greedy_propensities(chosen, k, 0.25)
    np.testing.assert_array_equal(epsilon_greedy_prob(actions, chosen, k, 0.25),
                                  p[np.arange(40), actions])


def test_epsilon_greedy_extremes():
    np.testing.assert_allclose(epsilon_greedy_prob([0, 1], [0, 0], 4, 0.0), [1.0, 0.0])
    np.testing.assert_allclose(epsilon_greedy_prob([0, 1], [0, 0], 4, 1.0), [0.25, 0.25])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"y": []}, r"`y` is empty"),
    ({"y": [1.0, 2.0]}, r"`p_log` has 4 values but `y` has 2"),
    ({"p_target": [1.0, 0.0]}, r"`p_target` has 2 values but `y` has 4"),
    ({"y": [1.0, np.nan, 3.0, 4.0]}, r"`y` must be finite; row 1: nan"),
    ({"y": [1.0, 2.0, np.inf, 4.0]}, r"`y` must be finite; row 2: inf"),
    ({"p_log": [0.8, 0.0, 0.5, 0.4]}, r"`p_log` must be in \(0, 1\]; row 1: 0.0"),
    ({"p_log": [0.8, 0.2, 1.5, 0.4]}, r"`p_log` must be in \(0, 1\]; row 2: 1.5"),
    ({"p_log": [0.8, 0.2, 0.5, np.nan]}, r"`p_log` must be in \(0, 1\]; row 3: nan"),
    ({"p_target": [1.0, -0.1, 0.0, 1.0]}, r"`p_target` must be in \[0, 1\]; row 1: -0.1"),
    ({"p_target": [1.0, 0.0, 0.0, 1.01]}, r"`p_target` must be in \[0, 1\]; row 3: 1.01"),
    ({"y": [[1.0, 2.0], [3.0, 4.0]]}, r"`y` must be 1-D"),
    ({"y": ["a", "b", "c", "d"]}, r"`y` must be a 1-D array of numbers"),
    ({"bootstrap": -1}, r"`bootstrap` must be a non-negative int"),
    ({"bootstrap": 10.0}, r"`bootstrap` must be a non-negative int"),
    ({"seed": "x"}, r"`seed` must be an int"),
])
@pytest.mark.parametrize("estimator", [ips, snips])
def test_bad_logged_input_names_the_argument(estimator, kwargs, match):
    args = {"y": Y, "p_log": P_LOG, "p_target": P_TARGET} | kwargs
    with pytest.raises(ValueError, match=match):
        estimator(**args)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"q_logged": [1.0, 2.0]}, r"`q_logged` has 2 values but `y` has 4"),
    ({"q_target_expected": [1.0, 2.0, 3.0]}, r"`q_target_expected` has 3 values but `y` has 4"),
    ({"q_logged": [1.0, np.nan, 3.0, 4.0]}, r"`q_logged` must be finite; row 1"),
    ({"q_target_expected": [np.inf, 0, 0, 0]}, r"`q_target_expected` must be finite; row 0"),
    ({"p_log": [0.8, 0.2, 0.5, -0.4]}, r"`p_log` must be in \(0, 1\]; row 3"),
])
def test_bad_doubly_robust_input_names_the_argument(kwargs, match):
    args = {"y": Y, "p_log": P_LOG, "p_target": P_TARGET, "q_logged": Q_LOGGED,
            "q_target_expected": Q_TARGET} | kwargs
    with pytest.raises(ValueError, match=match):
        doubly_robust(**args)


def test_bad_direct_method_input_names_the_argument():
    with pytest.raises(ValueError, match=r"`q_target_expected` is empty"):
        direct_method([])
    with pytest.raises(ValueError, match=r"`q_target_expected` must be finite; row 1: nan"):
        direct_method([1.0, np.nan])


@pytest.mark.parametrize(("call", "match"), [
    (lambda: epsilon_greedy_propensities([], 3, 0.1), r"`chosen` must be a non-empty 1-D"),
    (lambda: epsilon_greedy_propensities([0.0, 1.0], 3, 0.1), r"`chosen` must hold integer"),
    (lambda: epsilon_greedy_propensities([0, 3], 3, 0.1), r"`chosen` must be in \[0, n_actions\); row 1"),
    (lambda: epsilon_greedy_propensities([0, -1], 3, 0.1), r"`chosen` must be in \[0, n_actions\); row 1"),
    (lambda: epsilon_greedy_propensities([0, 0], 0, 0.1), r"`n_actions` must be >= 1"),
    (lambda: epsilon_greedy_propensities([0, 0], [3, 3, 3], 0.1), r"`n_actions` has shape \(3,\)"),
    (lambda: epsilon_greedy_propensities([0, 0], 2.5, 0.1), r"`n_actions` must be an int"),
    (lambda: epsilon_greedy_propensities([0, 0], 3, 1.5), r"`epsilon` must be a float in \[0, 1\]"),
    (lambda: epsilon_greedy_propensities([0, 0], 3, np.nan), r"`epsilon` must be a float in \[0, 1\]"),
    (lambda: epsilon_greedy_prob([0], [0, 1], 3, 0.1), r"`actions` has shape \(1,\)"),
    (lambda: epsilon_greedy_prob([0, 5], [0, 1], 3, 0.1), r"`actions` must be in \[0, n_actions\); row 1"),
    (lambda: epsilon_greedy_prob([0.0, 1.0], [0, 1], 3, 0.1), r"`actions` must hold integer"),
])
def test_bad_epsilon_greedy_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- layering


def test_ope_is_pure():
    """models/ope.py imports numpy and the standard library only (no dagster, mlflow, assets)."""
    source = (Path(__file__).resolve().parent.parent / "models" / "ope.py").read_text()
    tops = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            tops.add((node.module or "").split(".")[0])
    assert tops <= {"__future__", "collections", "dataclasses", "numpy", "pandas"}, tops
