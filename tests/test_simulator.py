"""Execution simulator: hand-checked micro-scenarios of each physics component, the truth test
(mean simulated shortfall = the ATHL closed form within 2 SE over 10,000 orders per %ADV
bucket), replay on hand-made books and on the real LOBSTER / BitMEX books."""

import itertools

import numpy as np
import pandas as pd
import pytest

from models.simulator import (
    MARKETABLE,
    PASSIVE,
    SESSION_NS,
    Children,
    ConstantFillProb,
    FeeSchedule,
    Parents,
    QueueFillProb,
    RiskLimits,
    SimulatorConfig,
    TransientImpact,
    athl_expected_cost_bps,
    replay_l1,
    simulate,
    twap_children,
    walk_book,
)
from validation.contracts import ChildFillsSchema

S = 1_000_000_000
# gamma*sigma*q/V with delta=0, sigma=0.02, V=1e6: gamma=0.5 -> 1 bp of permanent impact per 10k
PERM = SimulatorConfig(gamma=0.5, eta=0.0, delta=0.0, mid_noise=False)


def _parents(n=1, mid=100.0, spread=0.0, adv=1e6, start=0, end=SESSION_NS, symbol=0):
    def col(x, dt=float):
        return np.broadcast_to(np.asarray(x, dt), (n,)).copy()
    return Parents(symbol_idx=col(symbol, int), arrival_mid=col(mid), sigma_daily=col(0.02),
                   adv=col(adv), spread_bps=col(spread), shares_outstanding=col(2e8),
                   start_ns=col(start, np.int64), end_ns=col(end, np.int64))


def _kids(qty, dec, parent=None, side=1, kind=MARKETABLE, limit=np.nan):
    n = len(qty)
    return Children(parent_idx=np.zeros(n, int) if parent is None else parent, decision_ns=dec,
                    qty=np.asarray(qty, float), side=np.full(n, side),
                    kind=np.broadcast_to(kind, (n,)), limit_offset_bps=np.full(n, limit))


THIRDS = [0, SESSION_NS // 3, 2 * SESSION_NS // 3]


# ----------------------------------------------------------------------------- closed form
def test_athl_closed_form_reproduces_references_3_1():
    # X/V = 0.10, T = 1 day, sigma = 2%, Theta/V = 200 -> I = 23.6 bp, K = 7.1 bp, J = 18.9 bp
    cfg = SimulatorConfig(gamma=0.314, delta=0.25, eta=0.142, beta=0.6)
    assert athl_expected_cost_bps(0.1, 1.0, 0.02, 1.0, 0.0, 200.0, cfg) == pytest.approx(18.9, abs=0.05)
    assert athl_expected_cost_bps(0.1, 1.0, 0.02, 0.5, 0.0, 200.0, cfg) == pytest.approx(22.6, abs=0.05)
    assert athl_expected_cost_bps(0.01, 1.0, 0.02, 1.0, 0.0, 200.0, cfg) == pytest.approx(3.0, abs=0.05)


def test_defaults_are_the_synthetic_market_truth():
    from models._synth_config import ImpactConfig

    truth = ImpactConfig()
    cfg = SimulatorConfig()
    assert (cfg.gamma, cfg.delta, cfg.eta, cfg.beta) == (
        truth.athl_gamma, truth.athl_delta, truth.athl_eta, truth.athl_beta)
    assert SimulatorConfig.from_truth(truth.model_copy(update={"athl_eta": 0.2})).eta == 0.2


def test_the_simulators_impact_is_an_athl_impact_model():
    from models.impact import ATHLImpact, ImpactModel

    cfg = SimulatorConfig(gamma=0.5, eta=0.2, beta=0.55, delta=0.3)
    model = cfg.impact_model()
    assert isinstance(model, ImpactModel)
    assert model == ATHLImpact(gamma=0.5, eta=0.2, beta=0.55, delta=0.3, alpha=1.0)
    assert SimulatorConfig.from_impact(model, venue="X") == cfg.model_copy(update={"venue": "X"})
    with pytest.raises(ValueError, match="linear"):
        SimulatorConfig.from_impact(ATHLImpact(alpha=0.8))
    # no spread, no fees: the closed form is the model's J = I/2 + K
    kw = {"qty": 5e4, "adv": 1e6, "sigma_daily": 0.02, "duration_days": 1.0,
          "shares_outstanding": 2e8}
    assert athl_expected_cost_bps(5e4, 1e6, 0.02, 1.0, 0.0, 2e8, cfg) == pytest.approx(
        float(model.expected_cost_bps(**kw)), rel=1e-12)


# ----------------------------------------------------------------------------- physics
def test_permanent_impact_moves_the_mid_later_children_see():
    # each 10k child adds 1 bp; it pays half of its own: 0.5, 1.5, 2.5 bp; I = 3 bp, J = I/2
    res = simulate(_parents(), _kids([1e4] * 3, THIRDS), PERM)
    np.testing.assert_allclose(res.fill_px, [100.005, 100.015, 100.025])
    assert res.shortfall_bps[0] == pytest.approx(1.5)
    assert res.end_mid[0] == pytest.approx(100.03)
    assert res.truth_bps[0] == pytest.approx(1.5)


def test_sell_side_mirrors():
    res = simulate(_parents(spread=20.0), _kids([1e4] * 3, THIRDS, side=-1), PERM)
    np.testing.assert_allclose(res.fill_px, [99.895, 99.885, 99.875])  # - 10 bp half spread
    assert res.shortfall_bps[0] == pytest.approx(11.5)


def test_temporary_impact_uses_the_childs_rate():
    # slot = session/3 -> V_slot = 333,333; rate 0.03; K = 0.1 * 0.02 * 0.03^0.5 = 3.4641 bp
    cfg = SimulatorConfig(gamma=0.0, eta=0.1, beta=0.5, mid_noise=False)
    res = simulate(_parents(), _kids([1e4] * 3, THIRDS), cfg)
    np.testing.assert_allclose(res.fill_px, 100 * (1 + 0.002 * np.sqrt(0.03)))


def test_transient_impact_decays_as_a_power_law():
    cfg = SimulatorConfig(gamma=0.0, eta=0.1, beta=0.5, mid_noise=False,
                          transient=TransientImpact(decay_exponent=0.5, tau_ns=SESSION_NS // 3))
    res = simulate(_parents(), _kids([1e4] * 3, THIRDS), cfg)
    k = 0.002 * np.sqrt(0.03)
    g = [1.0, 1 + 2 ** -0.5, 1 + 2 ** -0.5 + 3 ** -0.5]  # own K + decayed K of earlier fills
    np.testing.assert_allclose(res.fill_px, 100 * (1 + k * np.array(g)), rtol=1e-9)
    # the footprint left at end_ts (t = 3 slots after the first fill)
    assert res.end_mid[0] == pytest.approx(100 * (1 + k * (4 ** -0.5 + 3 ** -0.5 + 2 ** -0.5)))


def test_shared_footprint_moves_other_parents_on_the_same_symbol_only():
    # all three decided at 0 (same arrival mid); parent 0 trades at 5 s, parents 1 and 2 at 10 s
    par = _parents(3, symbol=[0, 0, 1])
    kids = _kids([1e4] * 3, [5 * S, 10 * S, 10 * S], parent=np.array([0, 1, 2]))
    own = simulate(par, kids, PERM)
    shared = simulate(par, kids, PERM.model_copy(update={"shared_footprint": True}))
    np.testing.assert_allclose(own.fill_px, [100.005, 100.005, 100.005])
    np.testing.assert_allclose(shared.fill_px, [100.005, 100.015, 100.005])
    np.testing.assert_allclose(shared.end_mid, [100.02, 100.02, 100.01])


def test_participation_cap_carries_the_excess_and_leaves_it_unfilled_at_the_end():
    cfg = PERM.model_copy(update={"gamma": 0.0, "participation_cap": 0.01})
    res = simulate(_parents(), _kids([1e4] * 3, THIRDS), cfg)
    np.testing.assert_allclose(res.fill_qty, [1e6 / 300] * 3)
    assert res.unfilled_qty[0] == pytest.approx(2e4)


def test_latency_delays_arrival_and_a_child_arriving_after_end_is_not_sent():
    cfg = PERM.model_copy(update={"latency_ns": SESSION_NS // 3 + 1})
    res = simulate(_parents(), _kids([1e4] * 3, THIRDS), cfg)
    assert res.fill_ts[:2].tolist() == [SESSION_NS // 3 + 1, 2 * (SESSION_NS // 3) + 1]
    assert res.fill_qty[2] == 0.0
    assert res.unfilled_qty[0] == 1e4


def test_limit_offset_gives_a_partial_fill_and_carries_the_rest():
    # K would be 3.46 bp; a 1 bp limit fills V_slot*(1e-4/(0.1*0.02))^2 = 833.33 shares at +1 bp
    cfg = SimulatorConfig(gamma=0.0, eta=0.1, beta=0.5, mid_noise=False)
    res = simulate(_parents(), _kids([1e4], [0], limit=1.0), cfg)
    assert res.fill_qty[0] == pytest.approx(1e6 * (1e-4 / 0.002) ** 2)
    assert res.fill_px[0] == pytest.approx(100.01)
    assert res.unfilled_qty[0] == pytest.approx(1e4 - 2500)


def test_passive_fill_earns_the_half_spread_and_the_rebate():
    cfg = PERM.model_copy(update={"gamma": 0.0, "fees": FeeSchedule(maker_rebate_bps=0.2,
                                                                    maker_rebate_per_share=0.001)})
    res = simulate(_parents(spread=20.0), _kids([1e4] * 3, THIRDS, kind=PASSIVE), cfg)
    np.testing.assert_allclose(res.fill_px, 99.9)
    np.testing.assert_allclose(res.fee, -(0.2e-4 * 99.9 * 1e4 + 10.0))
    assert res.shortfall_bps[0] == pytest.approx(-10.0 - 0.2 * 0.999 - 0.1)  # $0.001 = 0.1 bp
    fills = res.child_fills()
    assert set(fills["liquidity"]) == {"maker"}
    never = simulate(_parents(spread=20.0), _kids([1e4] * 3, THIRDS, kind=PASSIVE),
                     cfg.model_copy(update={"fill": ConstantFillProb(prob=0.0)}))
    assert never.filled_qty[0] == 0.0
    assert never.unfilled_qty[0] == 3e4
    assert np.isnan(never.avg_px[0])


def test_queue_fill_probability_matches_its_formula():
    model = QueueFillProb(queue_ahead_adv=0.01, side_volume_share=0.5)
    n = 20_000
    par = _parents(n, end=SESSION_NS // 20)  # one child each, slot = 1/20 day
    res = simulate(par, _kids(np.full(n, 5e3), np.zeros(n, np.int64), parent=np.arange(n),
                              kind=PASSIVE), PERM.model_copy(update={"fill": model}), rng=3)
    p = model.prob_fill(5e3, 1e6 / 20, 1e6)  # 1 - exp(-25,000 / 15,000) = 0.811
    assert p == pytest.approx(1 - np.exp(-25_000 / 15_000))
    hit = (res.fill_qty > 0).mean()
    assert abs(hit - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_same_seed_same_result_and_generator_injection():
    par = _parents(50)
    kids = twap_children(par, np.full(50, 1e4), np.ones(50), 5)
    a = simulate(par, kids, rng=7)
    b = simulate(par, kids, rng=np.random.default_rng(7))
    c = simulate(par, kids, rng=8)
    np.testing.assert_array_equal(a.fill_px, b.fill_px)
    assert not np.array_equal(a.fill_px, c.fill_px)


def test_time_order_and_parent_order_agree():
    # a non-binding daily loss limit switches to global time order; parents are independent
    rng = np.random.default_rng(0)
    par = _parents(200, start=rng.integers(0, SESSION_NS // 2, 200), end=SESSION_NS)
    kids = twap_children(par, np.full(200, 2e4), rng.choice([-1, 1], 200), 7)
    a = simulate(par, kids, rng=1)
    b = simulate(par, kids, rng=1, limits=RiskLimits(daily_loss_limit=1e12))
    np.testing.assert_array_equal(a.fill_px, b.fill_px)
    np.testing.assert_array_equal(a.end_mid, b.end_mid)


def test_child_fills_meet_the_contract():
    par = _parents(20, spread=8.0)
    kids = twap_children(par, np.full(20, 1e4), np.ones(20), 4)
    fills = simulate(par, kids, SimulatorConfig(fees=FeeSchedule(taker_fee_bps=0.3))).child_fills()
    ChildFillsSchema.validate(fills)
    assert len(fills) == 80
    assert fills["order_id"].iat[0] == "P0"


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="side differs from the other children of parent 0"):
        simulate(_parents(), Children(parent_idx=[0, 0], decision_ns=[0, 1], qty=[1.0, 1.0],
                                      side=[1, -1], kind=[0, 0], limit_offset_bps=[np.nan] * 2))
    with pytest.raises(ValueError, match=r"parent_idx must lie in \[0, 1\)"):
        simulate(_parents(), _kids([1.0], [0], parent=np.array([3])))
    with pytest.raises(ValueError, match="end_ns < start_ns"):
        _parents(start=10, end=5)


# ----------------------------------------------------------------------------- the truth test
def test_mean_shortfall_matches_the_true_expected_cost_per_adv_bucket():
    """10,000 TWAP orders per %ADV bucket (0.1% to 20%), random sigma, spread, turnover,
    duration (5% of a day to a day), side; mid noise on; fees on. Per bucket the mean realized
    shortfall lies within 2 standard errors of the mean closed-form truth."""
    rng = np.random.default_rng(2024)
    edges = [0.001, 0.005, 0.02, 0.05, 0.1, 0.2]
    nb = 10_000
    n = nb * (len(edges) - 1)
    pct = np.concatenate([np.exp(rng.uniform(np.log(a), np.log(b), nb))
                          for a, b in itertools.pairwise(edges)])
    adv = rng.lognormal(13, 1, n)
    dur = (SESSION_NS * rng.uniform(0.05, 1.0, n)).astype(np.int64)
    start = rng.integers(0, SESSION_NS, n)
    par = Parents(symbol_idx=np.zeros(n, int), arrival_mid=rng.uniform(20, 300, n),
                  sigma_daily=rng.uniform(0.01, 0.03, n), adv=adv,
                  spread_bps=rng.uniform(2, 20, n), shares_outstanding=adv * rng.uniform(50, 500, n),
                  start_ns=start, end_ns=start + dur)
    side = rng.choice([-1, 1], n)
    kids = twap_children(par, adv * pct, side, 10)
    cfg = SimulatorConfig(fees=FeeSchedule(taker_fee_bps=0.3, taker_fee_per_share=0.003))
    res = simulate(par, kids, cfg, rng=0)
    truth = athl_expected_cost_bps(adv * pct, adv, par.sigma_daily, dur / SESSION_NS,
                                   par.spread_bps, par.shares_outstanding, cfg, side=side,
                                   arrival_mid=par.arrival_mid)
    np.testing.assert_allclose(res.truth_bps, truth, rtol=1e-9)  # kernel truth = closed form
    for b in range(len(edges) - 1):
        sl = slice(b * nb, (b + 1) * nb)
        mean = res.shortfall_bps[sl].mean()
        se = res.shortfall_bps[sl].std(ddof=1) / np.sqrt(nb)
        assert abs(mean - truth[sl].mean()) < 2 * se, (edges[b], mean, truth[sl].mean(), se)


# ----------------------------------------------------------------------------- replay
def _quotes(ask_sz=1000.0):
    return pd.DataFrame({
        "ts": pd.to_datetime([0, 10 * S, 20 * S], unit="ns", utc=True),
        "available_at": pd.to_datetime([S, 11 * S, 21 * S], unit="ns", utc=True),
        "symbol": "X", "bid_px": [99.9, 100.0, 99.7], "bid_sz": 1000.0,
        "ask_px": [100.1, 100.2, 99.8], "ask_sz": ask_sz})


NO_IMPACT = SimulatorConfig(gamma=0.0, venue="REPLAY")


def test_replay_l1_fills_at_the_touch_prevailing_at_arrival():
    par = _parents(mid=np.nan, start=S, end=30 * S)
    kids = _kids([100.0] * 3, [5 * S, 15 * S, 25 * S])
    res = replay_l1(_quotes(), par, kids, NO_IMPACT)
    np.testing.assert_allclose(res.fill_px, [100.1, 100.2, 99.8])
    assert res.arrival_mid[0] == pytest.approx(100.0)  # the first quote, known at 1 s
    late = replay_l1(_quotes(), par, kids, NO_IMPACT.model_copy(update={"latency_ns": 6 * S}))
    np.testing.assert_allclose(late.fill_px[:2], [100.2, 99.8])
    assert late.unfilled_qty[0] == 100.0  # the last child arrives at 31 s > end_ts
    ChildFillsSchema.validate(res.child_fills())


def test_replay_arrival_mid_is_the_mid_known_at_the_decision():
    par = _parents(mid=np.nan, start=12 * S, end=30 * S)  # quote of 10 s known at 11 s
    res = replay_l1(_quotes(), par, _kids([1.0], [12 * S]), NO_IMPACT)
    assert res.arrival_mid[0] == pytest.approx(100.1)
    with pytest.raises(ValueError, match="no book known at its decision"):
        replay_l1(_quotes(), _parents(mid=np.nan, start=0, end=S), _kids([1.0], [0]), NO_IMPACT)


def test_replay_l1_beyond_the_touch_pays_impact_or_is_carried():
    par = _parents(end=30 * S)
    kids = _kids([100.0, 100.0], [5 * S, 15 * S])
    impact = replay_l1(_quotes(ask_sz=50.0), par, kids, NO_IMPACT)
    k = 0.142 * 0.02 * (50 / (1e6 * 10 * S / SESSION_NS)) ** 0.6
    assert impact.fill_px[0] == pytest.approx((50 * 100.1 + 50 * 100.1 * (1 + k)) / 100)
    carry = replay_l1(_quotes(ask_sz=50.0), par, kids,
                      NO_IMPACT.model_copy(update={"l1_excess": "carry"}))
    np.testing.assert_allclose(carry.fill_qty, [50.0, 50.0])  # 50 + 150 carried, 50 at the touch
    assert carry.unfilled_qty[0] == 100.0


def test_replay_passive_fills_when_the_opposite_touch_trades_through():
    par = _parents(end=30 * S)
    res = replay_l1(_quotes(), par, _kids([100.0], [5 * S], kind=PASSIVE), NO_IMPACT)
    assert res.fill_px[0] == 99.9  # our bid; the ask reaches 99.8 at 20 s
    assert res.fill_ts[0] == 20 * S
    short = replay_l1(_quotes(), par, _kids([100.0, 1.0], [5 * S, 15 * S], kind=PASSIVE),
                      NO_IMPACT)
    assert short.fill_qty[0] == 0.0  # its slot ends at 15 s, before the trade-through


def test_replay_footprint_shifts_later_children():
    cfg = NO_IMPACT.model_copy(update={"gamma": 0.5, "delta": 0.0})
    res = replay_l1(_quotes(ask_sz=1e6), _parents(end=30 * S), _kids([1e4, 1e4], [5 * S, 6 * S]),
                    cfg)
    np.testing.assert_allclose(res.fill_px, [100.1, 100.1 + 0.01])  # + 1 bp of 100


def _depth():
    ts = pd.to_datetime([0, 0], unit="ns", utc=True)
    return pd.DataFrame({"ts": ts, "available_at": ts, "symbol": "X", "level": [1, 2],
                         "bid_px": [99.9, 99.8], "bid_sz": [100.0, 100.0],
                         "ask_px": [100.1, 100.2], "ask_sz": [100.0, 200.0]})


WALK = NO_IMPACT.model_copy(update={"l1_excess": "carry"})


def test_walk_book_pays_the_vwap_of_the_levels_and_carries_what_is_beyond():
    res = walk_book(_depth(), _parents(end=30 * S), _kids([250.0], [S]))  # default: carry
    assert res.fill_px[0] == pytest.approx((100 * 100.1 + 150 * 100.2) / 250)
    res = walk_book(_depth(), _parents(end=30 * S), _kids([250.0], [S]), WALK)
    assert res.fill_px[0] == pytest.approx((100 * 100.1 + 150 * 100.2) / 250)
    res = walk_book(_depth(), _parents(end=30 * S), _kids([400.0, 50.0], [S, 2 * S]), WALK)
    np.testing.assert_allclose(res.fill_qty, [300.0, 150.0])  # 100 carried to the second
    sell = walk_book(_depth(), _parents(end=30 * S), _kids([150.0], [S], side=-1), WALK)
    assert sell.fill_px[0] == pytest.approx((100 * 99.9 + 50 * 99.8) / 150)
    lim = walk_book(_depth(), _parents(end=30 * S), _kids([250.0], [S], limit=5.0), WALK)
    assert lim.fill_qty[0] == 100.0  # 100.2 is beyond 100.1 + 5 bp


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def lobster():
    from bestex.settings import require_data_dir
    from sources.lobster import read_lobster

    d = require_data_dir() / "lobster"
    amzn = read_lobster(d / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")[0]
    aapl = read_lobster(d / "AAPL_2012-06-21_34200000_57600000_message_10_first999.csv")[0]
    return amzn, aapl


def _real_parents(quotes, n, rng, minutes=30.0):
    t = quotes["ts"].dt.as_unit("ns").array.asi8
    start = rng.integers(t[0] + S, t[-1] - int(minutes * 60 * S), n)
    return Parents(symbol_idx=np.zeros(n, int), arrival_mid=np.full(n, np.nan),
                   sigma_daily=np.full(n, 0.015), adv=np.full(n, 3e6),
                   spread_bps=np.zeros(n), shares_outstanding=np.full(n, 4.5e8),
                   start_ns=start, end_ns=start + int(minutes * 60 * S))


@pytest.mark.realdata
def test_amzn_replay_fills_at_the_real_touch(lobster):
    amzn, _ = lobster
    q = amzn.quotes
    rng = np.random.default_rng(5)
    par = _real_parents(q, 50, rng)
    kids = twap_children(par, np.full(50, 1000.0), rng.choice([-1, 1], 50), 10)  # 100 a child
    res = replay_l1(q, par, kids, NO_IMPACT.model_copy(update={"latency_ns": 1_000_000}))
    ts = q["ts"].dt.as_unit("ns").array.asi8
    j = np.searchsorted(ts, res.arrival_ns, side="right") - 1
    touch = np.where(kids.side > 0, q["ask_px"].to_numpy()[j], q["bid_px"].to_numpy()[j])
    size = np.where(kids.side > 0, q["ask_sz"].to_numpy()[j], q["bid_sz"].to_numpy()[j])
    at_touch = size >= 100.0
    assert at_touch.mean() > 0.5
    np.testing.assert_allclose(res.fill_px[at_touch], touch[at_touch])
    assert np.all(kids.side * (res.fill_px - touch) >= -1e-9)  # beyond the touch pays more
    ChildFillsSchema.validate(res.child_fills())


@pytest.mark.realdata
def test_walk_the_real_aapl_level10_book(lobster):
    _, aapl = lobster
    rng = np.random.default_rng(6)
    par = _real_parents(aapl.quotes, 20, rng, minutes=0.5)
    kids = twap_children(par, np.full(20, 3000.0), rng.choice([-1, 1], 20), 3)
    res = walk_book(aapl.depth, par, kids, WALK)
    d = aapl.depth
    assert res.filled_qty.sum() > 0
    best = np.where(kids.side > 0, 1, -1) * (res.fill_px - res.arrival_mid[kids.parent_idx])
    assert np.all(best[res.fill_qty > 0] > 0)  # a marketable walk pays over the mid
    assert d["level"].max() == 10


@pytest.mark.realdata
def test_walk_the_real_bitmex_book():
    from bestex.settings import require_data_dir
    from sources.bitmex import read_bitmex_book

    depth, _ = read_bitmex_book(require_data_dir() / "crypto"
                                / "bitmex_2020-03-10_orderbook10_snapshots.csv.gz")
    t = depth["ts"].dt.as_unit("ns").array.asi8
    start = np.array([t[0] + 60 * S, t[0] + 120 * S])
    par = Parents(symbol_idx=[0, 1], arrival_mid=[np.nan, np.nan], sigma_daily=[0.08, 0.1],
                  adv=[3e9, 5e8], spread_bps=[0.0, 0.0], shares_outstanding=[3e10, 5e9],
                  start_ns=start, end_ns=start + 60 * S)
    kids = twap_children(par, np.array([2e6, 2e5]), np.array([1, -1]), 4)
    res = walk_book(depth, par, kids, WALK, symbols=["XBTUSD", "ETHUSD"])
    assert np.all(res.filled_qty > 0)
    assert res.arrival_mid[0] > 1000 > res.arrival_mid[1] > 50  # XBT ~ 7,900, ETH ~ 200
    # each fill is at or beyond the touch its child met (the walk's VWAP)
    lvl1 = depth[depth["level"] == 1]
    for i in np.flatnonzero(res.fill_qty > 0):
        book = lvl1[lvl1["symbol"] == ["XBTUSD", "ETHUSD"][kids.parent_idx[i]]]
        j = np.searchsorted(book["ts"].dt.as_unit("ns").array.asi8, res.arrival_ns[i], "right") - 1
        touch = book["ask_px"].iat[j] if kids.side[i] > 0 else book["bid_px"].iat[j]
        assert kids.side[i] * (res.fill_px[i] - touch) >= -1e-9
