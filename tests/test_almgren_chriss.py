"""Almgren–Chriss: the paper's example of REFERENCES.md §3.4, reproduced exactly.

Parameters: S0 = $50, sigma = 30 %/yr -> 0.3*50/sqrt(250) $/share/day^(1/2) (sigma^2 = 0.9),
X = 1e6 shares, T = 5 days, N = 5, epsilon = 1/16, gamma = 2.5e-7, eta = 2.5e-6.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.optimize import minimize

import models.almgren_chriss
import models.schedules
from models.almgren_chriss import (
    AlmgrenChrissParams,
    cost_of_trajectory,
    efficient_frontier,
    expected_cost,
    half_life,
    kappa,
    kappa_continuous,
    params_from_athl,
    params_from_linear_bps,
    trajectory,
    variance,
)

PAPER = dict(X=1e6, T=5.0, N=5, sigma=0.3 * 50 / math.sqrt(250), epsilon=0.0625, gamma=2.5e-7,
             eta=2.5e-6)

# REFERENCES.md §3.4 table: lam -> (kappa, 1/kappa, holdings x_0..x_5, E[cost] $, sqrt(V) $)
TABLE = [
    (2e-6, 0.84519, 1.183, [1_000_000, 429_071, 183_331, 76_538, 27_752, 0], 1_139_645, 449_340),
    (1e-6, 0.60626, 1.649, [1_000_000, 542_381, 290_295, 148_216, 62_303, 0], 910_478, 603_215),
    (1e-7, 0.19436, 5.145, [1_000_000, 757_990, 544_704, 352_060, 172_757, 0], 670_019, 960_489),
    (1e-8, 0.06155, 16.25, [1_000_000, 795_490, 593_995, 394_750, 197_002, 0], 662_588, 1_030_653),
    (0.0, 0.0, math.inf, [1_000_000, 800_000, 600_000, 400_000, 200_000, 0], 662_500, 1_039_230),
]


def paper(lam: float = 1e-6, **kw: float) -> AlmgrenChrissParams:
    return AlmgrenChrissParams(**(PAPER | kw), lam=lam)


@pytest.mark.parametrize(("lam", "k", "theta", "holdings", "e", "sqrt_v"), TABLE)
def test_reference_table(lam, k, theta, holdings, e, sqrt_v):
    p = paper(lam)

    assert round(kappa(p), 5) == k
    assert [round(v) for v in trajectory(p).x] == holdings
    assert round(expected_cost(p)) == e
    assert round(math.sqrt(variance(p))) == sqrt_v
    assert f"{half_life(p):.4g}" == f"{theta:.4g}"  # theta = 1/kappa; inf for TWAP


def test_eta_tilde_and_continuous_kappa():
    p = paper()
    assert p.eta_tilde == pytest.approx(2.375e-6, rel=1e-12)
    assert kappa_continuous(p) == pytest.approx(0.6, rel=1e-12)
    assert kappa(p) > kappa_continuous(p)  # the discrete kappa exceeds the continuous one


def test_sell_everything_in_the_first_interval():
    e, v = cost_of_trajectory(paper(), [1e6, 0, 0, 0, 0, 0])
    assert (e, v) == (pytest.approx(2_562_500.0, rel=1e-12), 0.0)


def test_trades_are_the_holdings_differences_and_match_the_closed_form():
    p = paper()
    tr = trajectory(p)
    k, tau = kappa(p), p.tau
    n_closed = (2 * math.sinh(k * tau / 2) / math.sinh(k * p.T)
                * np.cosh(k * (p.T - (tr.t[1:] - tau / 2))) * p.X)
    np.testing.assert_allclose(tr.n, n_closed, rtol=1e-12)
    assert tr.n.sum() == pytest.approx(p.X, rel=1e-15)
    assert tr.t.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("lam", [0.0, 1e-14, 1e-12, 1e-10, 1e-8, 1e-7, 1e-6, 2e-6, 1e-4, 1.0, 1e30])
@pytest.mark.parametrize("n", [1, 5, 50])
def test_closed_form_equals_direct_sums(lam, n):
    p = paper(lam, N=n)
    e, v = cost_of_trajectory(p, trajectory(p).x)
    assert expected_cost(p) == pytest.approx(e, rel=1e-9)
    assert variance(p) == pytest.approx(v, rel=1e-9, abs=1e-6)


def test_trajectory_minimizes_e_plus_lambda_v():
    # independent check: Nelder–Mead on E + lam V over the interior holdings
    p = paper(1e-6)

    def objective(y: np.ndarray) -> float:
        e, v = cost_of_trajectory(p, np.r_[p.X, y * p.X, 0.0])
        return (e + p.lam * v) / 1e5

    res = minimize(objective, np.linspace(0.8, 0.2, 4), method="Nelder-Mead",
                   options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000})
    np.testing.assert_allclose(res.x * p.X, trajectory(p).x[1:-1], atol=1.0)


def test_efficient_frontier_is_decreasing_and_convex_with_twap_at_min_e():
    lams = np.r_[0.0, np.logspace(-9, -4, 30)]
    f = efficient_frontier(paper(), lams)

    assert list(f.columns) == ["lam", "kappa", "E", "sqrtV"]
    v, e = f["sqrtV"].to_numpy() ** 2, f["E"].to_numpy()
    order = np.argsort(v)
    v, e = v[order], e[order]
    assert (np.diff(e) < 0).all()  # E decreases as V increases
    slopes = np.diff(e) / np.diff(v)
    assert (np.diff(slopes) > 0).all()  # convex
    twap = f.loc[f["lam"] == 0.0].iloc[0]
    assert twap["E"] == f["E"].min() == pytest.approx(662_500.0)
    assert twap["sqrtV"] == f["sqrtV"].max()


def test_large_urgency_is_finite_and_monotone():
    tr = trajectory(paper(1e30))
    assert np.isfinite(tr.x).all()
    assert (np.diff(tr.x) <= 0).all()
    assert tr.n[0] == pytest.approx(1e6)


def test_eta_tilde_must_be_positive_and_the_message_says_how_to_fix_it():
    with pytest.raises(ValidationError, match=r"eta_tilde .* must be > 0 .* use N >= 11"):
        AlmgrenChrissParams(**(PAPER | {"gamma": 1e-5}))
    AlmgrenChrissParams(**(PAPER | {"gamma": 1e-5, "N": 11}))  # the fix works


def test_params_are_frozen_and_strict():
    p = paper()
    with pytest.raises(ValidationError):
        p.lam = 0.0  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        AlmgrenChrissParams(**PAPER, rho=1.0)
    with pytest.raises(ValidationError, match="lam"):
        paper(-1.0)
    with pytest.raises(ValidationError, match="lam"):
        efficient_frontier(p, [-1e-6])


def test_cost_of_trajectory_rejects_bad_trajectories():
    with pytest.raises(ValueError, match=r"shape \(3,\); expected \(6,\)"):
        cost_of_trajectory(paper(), [1e6, 5e5, 0])
    with pytest.raises(ValueError, match="must run from X=1e\\+06 to 0"):
        cost_of_trajectory(paper(), [1e6, 8e5, 6e5, 4e5, 2e5, 1e5])


def test_params_from_linear_bps_recover_the_paper():
    # one spread (1/8 on $50 = 25 bps) per 10% of ADV permanent, per 1% of ADV/day temporary
    p = params_from_linear_bps(qty=1e6, days=5, n_intervals=5, price=50.0, adv=5e6,
                               sigma_daily=0.3 / math.sqrt(250), spread_bps=25.0,
                               permanent_bps_per_adv=250.0, temporary_bps_per_adv_per_day=2500.0,
                               lam=1e-6)
    ref = paper()
    for name in ("sigma", "epsilon", "gamma", "eta"):
        assert getattr(p, name) == pytest.approx(getattr(ref, name), rel=1e-12), name
    assert round(expected_cost(p)) == 910_478


@pytest.mark.parametrize(("days", "j_bps"), [(1.0, 18.9), (0.5, 22.6)])
def test_params_from_athl_reproduce_athl_cost_for_twap(days, j_bps):
    # REFERENCES.md §3.1: X/V = 0.10, sigma = 2 %, Theta/V = 200 -> J = 18.9 bp (T=1), 22.6 (T=0.5)
    price, qty = 40.0, 1e5
    p = params_from_athl(qty=qty, days=days, n_intervals=2000, price=price, adv=1e6,
                         sigma_daily=0.02, shares_outstanding=2e8)
    assert round(expected_cost(p) / (qty * price) * 1e4, 1) == j_bps
    # permanent half of ATHL's I = 23.6 bp is 1/2 gamma X^2
    assert round(0.5 * p.gamma * qty**2 / (qty * price) * 1e4 * 2, 1) == 23.6


@pytest.mark.parametrize("module", [models.almgren_chriss, models.schedules])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0
