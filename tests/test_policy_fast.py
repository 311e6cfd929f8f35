"""FastPlanner decides one order the way ``models.policy.decide`` decides a batch (issue 14).

Contract: for every order, the same chosen candidate, and every candidate's predicted mean and
80 % band equal to 1e-9 relative (``plan_summary`` takes a batch's suffix sums from one
cumulative sum, so the timing variance of an order in a batch moves by a few ulps); the plan
inputs of one order equal ``plan_frame``'s bit for bit. Checked on the tests' serving rows with
a tiny real bundle, with and without the out-of-domain band, with VWAP/POV volume histories,
small orders whose grids drop slices, odd lots, risk limits and exploration.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from conftest import serving_rows, tiny_bundle

from models._policy_fast import (
    _BETA,
    FastPlanner,
    _grid_one,
    _plan_sums,
    _round_rows,
    _summary,
)
from models._schedules_grid import elapsed, round_lots, uniform_grid
from models.cost_bundle import CostModelBundle
from models.desk_history import plan_summary
from models.features import features_from_state
from models.policy import (
    Candidate,
    PolicyConfig,
    candidate_children,
    candidate_grid,
    decide,
    plan_frame,
)
from models.simulator import PASSIVE

SYMBOLS = ("AAA", "BBB", "CCC")


def _volume_history(seed: int = 5) -> dict[str, pd.Series]:
    """5-minute volume of 25 NYSE winter sessions before the rows' week (14:30-21:00 UTC),
    U-shaped, per symbol."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-12-02", "2025-01-10", tz="UTC")
    days = days[~days.strftime("%m-%d").isin(["12-25", "01-01", "01-09"])]
    out = {}
    for s in SYMBOLS:
        bins = [d + pd.Timedelta(minutes=14 * 60 + 30 + 5 * k) for d in days for k in range(78)]
        shape = np.tile(1 + 2 * np.linspace(-1, 1, 78) ** 2, len(days))
        out[s] = pd.Series(shape * rng.gamma(4.0, 2_000.0, len(bins)),
                           index=pd.DatetimeIndex(bins))
    return out


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """300 orders; the first 20 small (3-41 shares: slices without a child), the next 10 odd
    lots (x.5 shares)."""
    r = serving_rows(300, seed=11)
    r.loc[:19, "qty"] = np.arange(3, 43, 2, dtype=float)
    r.loc[20:29, "qty"] = np.arange(10) * 37 + 100.5
    return r


@pytest.fixture(scope="module")
def volume() -> dict[str, pd.Series]:
    return _volume_history()


@pytest.fixture(scope="module")
def tiny() -> CostModelBundle:
    # one OpenMP thread: with the cores busy, threads make 30 rounds on 300 rows take seconds
    with xgb.config_context(nthread=1):
        b = tiny_bundle(serving_rows(300, seed=1))
    for booster in (b.mean, b.quantile):
        booster.set_param({"nthread": 1})
    return b


@pytest.fixture(scope="module", params=["format3", "out_of_domain"])
def bundle(request, tiny) -> CostModelBundle:
    """The tests' tiny bundle; ``out_of_domain``: per-regime margins, the out-of-domain margin
    and a standardized quantile booster (the champion's band)."""
    b = tiny
    if request.param == "format3":
        return b
    return CostModelBundle(b.mean, b.quantile, b.features, b.margin, b.noise_floor_bps,
                           quantile_scaled=True, domain=b.domain, risk_fill_bps=b.risk_fill_bps,
                           ood_margin=0.9, group_feature="regime_code",
                           group_margins={0.0: 0.2, 1.0: 0.35, 2.0: 0.6})


def _fast(planner: FastPlanner, rows: pd.DataFrame, **kw) -> list:
    return [planner.decide_one(r, **kw) for r in FastPlanner.records(rows)]


def _assert_same(fast: list, dec, k: int) -> None:
    ch = dec.chosen
    np.testing.assert_array_equal([d.candidate for d in fast], ch["candidate"].to_numpy())
    for col, attr in (("pred_mean_bps", "mean_bps"), ("pred_lo_bps", "lo_bps"),
                      ("pred_hi_bps", "hi_bps")):
        want = dec.candidates[col].to_numpy().reshape(k, -1).T
        got = np.array([getattr(d, attr) for d in fast])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=col)
    np.testing.assert_allclose([d.objective for d in fast], ch["objective"], rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_allclose([d.propensity for d in fast], ch["propensity"])
    assert [d.order_id for d in fast] == ch["order_id"].tolist()


def test_matches_decide(bundle, rows, volume):
    # Arrange: the rows reach both sides of the training domain
    outside = np.array(bundle.outside_domain(features_from_state(rows))) != ""
    assert 0 < outside.sum() < len(rows)
    cfg = PolicyConfig(risk_aversion=0.5)
    # Act
    dec = decide(bundle, rows, config=cfg, volume_history=volume)
    fast = _fast(FastPlanner(bundle, config=cfg, volume_history=volume), rows)
    # Assert: several candidates chosen, all as decide
    assert len({d.candidate for d in fast}) >= 2
    _assert_same(fast, dec, len(candidate_grid()))


def test_one_row_frame_and_series_equal_mapping(bundle, rows, volume):
    planner = FastPlanner(bundle, volume_history=volume)
    want = planner.decide_one(FastPlanner.records(rows.iloc[[7]])[0])
    for row in (rows.iloc[[7]], rows.iloc[7]):
        got = planner.decide_one(row)
        assert got.candidate == want.candidate
        np.testing.assert_array_equal(got.objectives, want.objectives)


def test_symbol_without_volume_history_works_vwap_and_pov_twap(bundle, rows, volume):
    part = {"AAA": volume["AAA"]}
    dec = decide(bundle, rows.head(60), volume_history=part)
    _assert_same(_fast(FastPlanner(bundle, volume_history=part), rows.head(60)), dec,
                 len(candidate_grid()))


def test_risk_limits_exclude_candidates(bundle, rows, volume):
    # Arrange: forbid each order's greedy choice and every passive plan
    head = rows.head(40)
    grid = candidate_grid()
    first = decide(bundle, head, volume_history=volume).chosen["candidate"].to_numpy()
    allowed = np.ones((len(head), len(grid)), bool)
    allowed[np.arange(len(head)), first] = False
    allowed[:, [j for j, c in enumerate(grid) if c.passive > 0]] = False
    # Act
    dec = decide(bundle, head, volume_history=volume, allowed=allowed)
    planner = FastPlanner(bundle, volume_history=volume)
    fast = [planner.decide_one(r, allowed=a)
            for r, a in zip(FastPlanner.records(head), allowed, strict=True)]
    # Assert
    _assert_same(fast, dec, len(grid))
    assert all(d.n_allowed == allowed[i].sum() for i, d in enumerate(fast))


def test_exploration_logs_decides_propensities(bundle, rows, volume):
    planner = FastPlanner(bundle, config=PolicyConfig(explore=0.3, seed=3),
                          volume_history=volume)
    fast = _fast(planner, rows.head(80))
    for d in fast:
        expected = (0.7 if d.candidate == d.greedy else 0.0) + 0.3 / d.n_allowed
        assert d.propensity == pytest.approx(expected)
        assert d.explored == (d.candidate != d.greedy)
    assert 0 < sum(d.explored for d in fast) < 40


def test_custom_grid_and_names(bundle, rows, volume):
    grid = (Candidate(family="pov", param=0.2), Candidate(family="twap", passive=0.34),
            Candidate(family="is_urgency", param=0.0))  # urgency 0 is TWAP
    cfg = PolicyConfig(risk_aversion=2.0, child_interval_min=3.0, max_children=25)
    dec = decide(bundle, rows.head(50), config=cfg, grid=grid, volume_history=volume)
    fast = _fast(FastPlanner(bundle, config=cfg, grid=grid, volume_history=volume),
                 rows.head(50))
    _assert_same(fast, dec, len(grid))
    assert {d.name for d in fast} <= {c.name for c in grid}


@pytest.mark.parametrize("i", [0, 7, 19, 25, 40, 123, 250])
def test_plan_inputs_are_plan_frame_bit_for_bit(tiny, rows, volume, i):
    # one order alone: candidate_children + plan_frame, every candidate of the grid
    order = rows.iloc[[i]].reset_index(drop=True)
    planner = FastPlanner(tiny, volume_history=volume)
    rec = FastPlanner.records(order)[0]
    got = planner._plan(int(rec["decision_ts"].value), int(rec["end_ts"].value),
                        float(rec["qty"]), rec["symbol"])
    for j, cand in enumerate(planner.grid):
        want = plan_frame(order, candidate_children(order, cand, volume_history=volume), cand)
        for c, v in got.items():
            assert v[j] == want[c].iloc[0], (cand.name, c)


# ------------------------------------------------------------------ the pieces, by hand
@pytest.mark.parametrize(("dec", "end", "n"), [(0, 600, 3), (10, 10, 4), (5, 1_000_003, 7)])
def test_grid_one_is_uniform_grid(dec, end, n):
    d, e = np.array([dec]), np.array([end])
    flat = uniform_grid(d, e, np.array([n]), None)
    start, stop, s = _grid_one(dec, end, n)
    np.testing.assert_array_equal(start, flat.start)
    np.testing.assert_array_equal(stop, flat.stop)
    np.testing.assert_array_equal(s, elapsed(flat, d, e))


def test_round_rows_is_round_lots():
    # 7.5 shares over 4 slices: the cumulative position in whole shares, the half share last
    frac = np.array([[0.25, 0.5, 0.75, 1.0], [0.9, 0.95, 0.99, 1.0]])
    got = _round_rows(frac, 7.5)
    flat = uniform_grid(np.zeros(2, np.int64), np.full(2, 400), np.full(2, 4), None)
    np.testing.assert_array_equal(got.ravel(), round_lots(flat, frac.ravel(), np.full(2, 7.5), 1))
    np.testing.assert_array_equal(got, [[2.0, 2.0, 1.0, 2.5], [6.0, 1.0, 0.0, 0.5]])


def test_summary_is_plan_summary_with_dropped_slices():
    # 5 shares over 8 slices of TWAP: 3 slices get no child; passive every 2nd child
    order = pd.DataFrame({"order_id": ["A"], "symbol": ["AAA"], "side": [1], "qty": [5.0],
                          "decision_ts": [pd.Timestamp("2025-01-13 15:00", tz="UTC")],
                          "end_ts": [pd.Timestamp("2025-01-13 15:40", tz="UTC")]})
    cand = Candidate(family="twap", passive=0.5)
    ch = candidate_children(order, cand)
    want = plan_summary(ch, order)
    dec = int(order["decision_ts"].iloc[0].value)
    end = int(order["end_ts"].iloc[0].value)
    start, _, s = _grid_one(dec, end, 8)
    child = _round_rows(s[None, :], 5.0)
    assert (child == 0).sum() == 3
    assert len(ch) == 5
    assert (ch["kind"] == PASSIVE).sum() == 2
    got = _summary(child, start, dec, end, np.array([2]))
    for c, v in got.items():
        np.testing.assert_allclose(v, want[c].to_numpy(), rtol=1e-15, err_msg=c)


@pytest.mark.parametrize("qty", [5.0, 7.5, 40.0, 1234.0, 0.4])
def test_compiled_plan_sums_are_round_rows_then_summary(qty):
    # the compiled kernel against the numpy reference, bit for bit: schedules that leave
    # slices empty (small qty, front-loaded fractions), passive patterns every 2nd/3rd child
    rng = np.random.default_rng(int(qty * 10))
    dec, end = 1_000_000_000_000, 1_000_000_000_000 + 7 * 600 * 10**9 + 13
    start, _, s = _grid_one(dec, end, 7)
    frac = np.vstack([s, 1 - (1 - s) ** 4, np.sort(rng.uniform(size=(3, s.size)), axis=1)])
    row_of = np.array([0, 0, 1, 2, 3, 4, 1])
    step = np.array([0, 2, 0, 3, 0, 2, 1])
    sums, act_w, act_z = _plan_sums(frac, qty, row_of, step, start, dec, end)
    got = [*sums, (act_w * act_z ** _BETA).cumsum(axis=1)[:, -1]]
    want = _summary(_round_rows(frac, qty)[row_of], start, dec, end, step)
    for v, (c, w) in zip(got, want.items(), strict=True):
        np.testing.assert_array_equal(v, w, err_msg=c)
    assert sums[0].max() <= 7  # at most one child a slice


# ------------------------------------------------------------------ errors
def test_errors_name_the_problem(bundle, rows):
    planner = FastPlanner(bundle)
    with pytest.raises(ValueError, match="takes one order, got a frame of 2 rows"):
        planner.decide_one(rows.head(2))
    rec = FastPlanner.records(rows.head(1))[0]
    with pytest.raises(ValueError, match="the row has no 'qty'"):
        planner.decide_one({k: v for k, v in rec.items() if k != "qty"})
    with pytest.raises(ValueError, match="column 'adv' must be a number, got 'lots'"):
        planner.decide_one({**rec, "adv": "lots"})
    with pytest.raises(ValueError, match="it needs qty > 0 and end_ts >= decision_ts"):
        planner.decide_one({**rec, "end_ts": rec["decision_ts"] - pd.Timedelta("1min")})
    with pytest.raises(ValueError, match="no candidate within the limits"):
        planner.decide_one(rec, allowed=np.zeros(len(planner.grid), bool))
    with pytest.raises(ValueError, match="unknown schedule family 'iceberg'"):
        FastPlanner(bundle, grid=[Candidate(family="iceberg")])
    with pytest.raises(TypeError, match="needs a CostModelBundle"):
        FastPlanner(object())
