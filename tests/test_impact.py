"""Impact models: the published illustrative outputs of REFERENCES.md §3, and the shared interface."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from models.impact import (
    MINUTES_PER_DAY,
    ATHLImpact,
    ExponentialKernel,
    ImpactModel,
    IStarImpact,
    PowerLawKernel,
    PropagatorImpact,
    SquareRootImpact,
    ZeroImpact,
    athl_permanent,
    athl_temporary,
    athl_temporary_rate,
    propagate,
)
from models.synthetic_market import ImpactConfig

ADV = 1e6
SIGMA_25_ANNUAL = 0.25 / np.sqrt(252)  # I-Star takes daily vol and annualizes with sqrt(252)


# ------------------------------------------------------------------------ §3.1 ATHL
@pytest.mark.parametrize(
    ("x_over_v", "t_days", "i_bps", "k_bps", "j_bps"),
    [
        (0.10, 1.0, 23.6, 7.1, 18.9),
        (0.10, 0.5, 23.6, 10.8, 22.6),  # half the time: faster rate, more temporary impact
        (0.01, 1.0, 2.4, 1.8, 3.0),
    ],
)
def test_athl_reproduces_the_illustrative_outputs(x_over_v, t_days, i_bps, k_bps, j_bps):
    m = ATHLImpact()
    kw = {"qty": x_over_v * ADV, "adv": ADV, "sigma_daily": 0.02, "duration_days": t_days,
          "shares_outstanding": 200 * ADV}
    assert round(float(m.permanent_bps(**kw)), 1) == i_bps
    assert round(float(m.temporary_bps(**kw)), 1) == k_bps
    assert round(float(m.expected_cost_bps(**kw)), 1) == j_bps


def test_athl_defaults_are_the_papers():
    assert ATHLImpact().model_dump() == {"kind": "athl", "gamma": 0.314, "eta": 0.142, "beta": 0.6,
                                         "delta": 0.25, "alpha": 1.0}


def test_athl_equal_slices_schedule_is_the_closed_form():
    m = ATHLImpact(gamma=0.5, eta=0.09, beta=0.55)
    n, qty, t_days = 13, 1e5, 0.7
    closed = m.expected_cost_bps(qty=qty, adv=ADV, sigma_daily=0.02, duration_days=t_days,
                                 shares_outstanding=200 * ADV)
    sched = m.schedule_cost_bps(np.full(n, qty / n), np.full(n, t_days / n), adv=ADV,
                                sigma_daily=0.02, shares_outstanding=200 * ADV)
    assert sched == pytest.approx(float(closed), rel=1e-12)


def test_athl_front_loaded_schedule_costs_more_than_even():
    m, n = ATHLImpact(), 10
    even = m.schedule_cost_bps(np.full(n, 1e4), np.full(n, 0.1), adv=ADV, sigma_daily=0.02,
                               shares_outstanding=2e8)
    front = m.schedule_cost_bps(np.r_[5e4, np.full(n - 1, 5e4 / 9)], np.full(n, 0.1), adv=ADV,
                                sigma_daily=0.02, shares_outstanding=2e8)
    assert front > even


def test_athl_formula_functions_are_the_models_terms():
    m = ATHLImpact(gamma=0.4, eta=0.2, beta=0.55, delta=0.3)
    q, v, s, t, theta = np.array([1e4, 5e4]), 1e6, np.array([0.01, 0.03]), 0.5, 2e8
    kw = {"qty": q, "adv": v, "sigma_daily": s, "duration_days": t, "shares_outstanding": theta}
    np.testing.assert_array_equal(m.permanent_bps(**kw),
                                  athl_permanent(0.4, s, q / v, theta / v, 0.3) * 1e4)
    np.testing.assert_array_equal(m.temporary_bps(**kw),
                                  athl_temporary(0.2, s, q / (v * t), 0.55) * 1e4)
    # the temporary law is even in the rate, and its inverse gives the rate back
    np.testing.assert_array_equal(athl_temporary(0.2, s, -q / v, 0.55),
                                  athl_temporary(0.2, s, q / v, 0.55))
    k = athl_temporary(0.2, s, q / v, 0.55)
    np.testing.assert_allclose(athl_temporary_rate(0.2, s, k, 0.55), q / v, rtol=1e-12)


def test_athl_permanent_per_share_is_linear_only():
    m = ATHLImpact()
    kw = {"adv": 1e6, "sigma_daily": 0.02, "shares_outstanding": 2e8}
    per_share = m.permanent_per_share(**kw)
    assert per_share * 1e5 * 1e4 == pytest.approx(
        float(m.permanent_bps(qty=1e5, **kw)), rel=1e-12)
    with pytest.raises(ValueError, match="alpha=1"):
        ATHLImpact(alpha=0.8).permanent_per_share(**kw)


def test_athl_needs_shares_outstanding():
    with pytest.raises(ValueError, match="needs `shares_outstanding`"):
        ATHLImpact().expected_cost_bps(qty=1e4, adv=ADV, sigma_daily=0.02, duration_days=1.0)


# ------------------------------------------------------------------------ §3.2 square root
@pytest.mark.parametrize(
    ("y", "q_over_v", "bps"),
    [(0.5, 0.01, 10.0), (1.0, 0.01, 20.0), (0.5, 0.10, 31.6), (1.0, 0.10, 63.2)],
)
def test_square_root_law_examples(y, q_over_v, bps):
    got = SquareRootImpact(y=y).expected_cost_bps(qty=q_over_v * ADV, adv=ADV, sigma_daily=0.02,
                                                  duration_days=1.0)
    assert round(float(got), 1) == bps


# ------------------------------------------------------------------------ §3.3 I-Star
@pytest.mark.parametrize(
    ("q_over_adv", "sigma_annual", "pov", "istar_bps", "mi_bps"),
    [
        (0.10, 0.25, 0.10, 74.6, 24.6),
        (0.10, 0.25, 0.30, 74.6, 41.5),
        (0.01, 0.25, 0.05, 21.0, 5.0),
        (0.30, 0.40, 0.20, 190.5, 87.3),
    ],
)
def test_istar_reproduces_the_illustrative_outputs(q_over_adv, sigma_annual, pov, istar_bps, mi_bps):
    m, sig = IStarImpact(), sigma_annual / np.sqrt(252)
    assert round(float(m.istar_bps(qty=q_over_adv * ADV, adv=ADV, sigma_daily=sig)), 1) == istar_bps
    mi = m.expected_cost_bps(qty=q_over_adv * ADV, adv=ADV, sigma_daily=sig, duration_days=1.0,
                             pov=pov)
    assert round(float(mi), 1) == mi_bps


def test_istar_pov_defaults_to_the_constant_rate_capped_at_one():
    m = IStarImpact()
    kw = {"qty": 1e5, "adv": ADV, "sigma_daily": SIGMA_25_ANNUAL}
    # 10% ADV over one day is POV 10%; over 0.05 days it would be 200%: capped at 1 (MI = I*).
    assert m.expected_cost_bps(**kw, duration_days=1.0) == pytest.approx(
        m.expected_cost_bps(**kw, duration_days=1.0, pov=0.1))
    assert m.expected_cost_bps(**kw, duration_days=0.05) == pytest.approx(m.istar_bps(**kw))


def test_istar_timing_risk_by_hand():
    # sigma_annual * sqrt(0.1 * 0.9 / (3 * 252 * 0.1)) * 1e4 = 0.25 * 0.0345033 * 1e4
    got = IStarImpact().timing_risk_bps(qty=1e5, adv=ADV, sigma_daily=SIGMA_25_ANNUAL, pov=0.1)
    assert float(got) == pytest.approx(86.258, abs=1e-3)


# ------------------------------------------------------------------------ §3.5 propagator
def test_propagate_peer_case():
    assert propagate([1, 0, 0], [1, 0.5, 0]).tolist() == [1.0, 0.5, 0.0]
    assert propagate([1, 1, 0], [1, 0.5, 0.25]).tolist() == [1.0, 1.5, 0.75]


def test_power_law_kernel_forms():
    k = PowerLawKernel(g0=2.0, l0_min=4.0, beta=0.5)
    assert k([0.0, 12.0]).tolist() == [2.0, 1.0]  # 2 * (1 + 12/4)^-1/2
    lor = PowerLawKernel(l0_min=3.0, beta=1.0, form="lorentzian")
    assert lor([4.0]).tolist() == pytest.approx([0.6])  # (1 + 16/9)^-1/2 = 3/5


def test_propagator_single_child_is_the_square_root_law_then_decays():
    m = PropagatorImpact(kernel=PowerLawKernel(l0_min=1.0, beta=0.5), y=1.0)
    assert m.schedule_cost_bps([1e4], [0.0], adv=ADV, sigma_daily=0.02) == pytest.approx(20.0)
    path = m.price_path_bps([1e4], [0.0], adv=ADV, sigma_daily=0.02, at_time_min=[0.0, 3.0, -1.0])
    assert path.tolist() == pytest.approx([20.0, 10.0, 0.0])  # (1+3)^-1/2 = 1/2; nothing before
    sell = m.price_path_bps([-1e4], [0.0], adv=ADV, sigma_daily=0.02)
    assert sell.tolist() == pytest.approx([-20.0])


def test_propagator_exponential_kernel_composes():
    m = PropagatorImpact(kernel=ExponentialKernel(tau_min=10.0), y=1.0, exponent=1.0)
    path = m.price_path_bps([1e4, 1e4], [0.0, 10.0], adv=ADV, sigma_daily=0.02)
    assert path.tolist() == pytest.approx([2.0, 2.0 + 2.0 * np.exp(-1.0)])


def test_propagator_expected_cost_equals_the_equal_slice_schedule():
    m = PropagatorImpact(n_slices=8)
    qty, t_days = np.array([1e4, 1e5]), np.array([0.1, 0.5])
    vec = m.expected_cost_bps(qty=qty, adv=ADV, sigma_daily=0.02, duration_days=t_days)
    for i in range(2):
        times = np.arange(8) * t_days[i] * MINUTES_PER_DAY / 8
        assert vec[i] == pytest.approx(
            m.schedule_cost_bps(np.full(8, qty[i] / 8), times, adv=ADV, sigma_daily=0.02))


def test_propagator_slower_execution_is_cheaper():
    m = PropagatorImpact()
    fast, slow = m.expected_cost_bps(qty=1e5, adv=ADV, sigma_daily=0.02, duration_days=[0.05, 1.0])
    assert slow < fast


def test_propagator_rejects_bad_schedules():
    m = PropagatorImpact()
    with pytest.raises(ValueError, match="equal length"):
        m.price_path_bps([1.0, 2.0], [0.0], adv=ADV, sigma_daily=0.02)
    with pytest.raises(ValueError, match="non-negative with a positive total"):
        m.schedule_cost_bps([1.0, -2.0], [0.0, 1.0], adv=ADV, sigma_daily=0.02)


# ------------------------------------------------------------------------ the interface
MODELS = [ZeroImpact(), SquareRootImpact(), ATHLImpact(), IStarImpact(), PropagatorImpact()]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.kind)
def test_every_model_is_a_vectorized_impact_model(model):
    assert isinstance(model, ImpactModel)
    qty = np.array([[1e3, 1e4, 1e5]])  # (1, 3) against (2, 1): broadcasts to (2, 3)
    sig = np.array([[0.01], [0.03]])
    got = model.expected_cost_bps(qty=qty, adv=ADV, sigma_daily=sig, duration_days=0.5,
                                  shares_outstanding=2e8)
    assert got.shape == (2, 3)
    assert np.all(np.isfinite(got))
    if model.kind == "zero":
        assert np.all(got == 0)
    else:
        assert np.all(got > 0)
        assert np.all(np.diff(got, axis=1) > 0)  # cost grows with size
        assert np.all(got[1] > got[0])  # and with volatility


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(SquareRootImpact, {"y": -0.1}), (ATHLImpact, {"beta": 0.0}), (IStarImpact, {"b1": 1.2}),
     (PowerLawKernel, {"l0_min": 0.0}), (ATHLImpact, {"gamma_": 0.3})],
)
def test_configs_validate_bounds_and_forbid_extras(cls, kwargs):
    with pytest.raises(ValidationError):
        cls(**kwargs)


def test_configs_are_frozen():
    m = ATHLImpact()
    with pytest.raises(ValidationError, match="frozen"):
        m.gamma = 1.0  # type: ignore[misc]


def test_from_truth_reads_the_synthetic_markets_parameters():
    truth = ImpactConfig(sqrt_law_y=0.7, athl_gamma=0.4, kissell_a1=600.0,
                         propagator_decay_exponent=0.4)
    assert SquareRootImpact.from_truth(truth).y == 0.7
    assert ATHLImpact.from_truth(truth).gamma == 0.4
    assert IStarImpact.from_truth(truth).a1 == 600.0
    prop = PropagatorImpact.from_truth(truth)
    assert (prop.y, prop.kernel.beta) == (0.7, 0.4)
