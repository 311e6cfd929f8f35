"""Execution simulator: child orders of many parent orders against a synthetic or recorded market.

The hot loop of every backtest. Inputs are flat numpy columns (:class:`Parents`,
:class:`Children`); the physics is a frozen :class:`SimulatorConfig` whose defaults are the
synthetic market's true impact (``models._synth_config.ImpactConfig``); pre-trade limits are a
:class:`models.risk_controls.RiskLimits`. Impact goes through the config's ATHL model
(``SimulatorConfig.impact_model()``, a :class:`models.impact.ATHLImpact`), whose formula
(:func:`models.impact.athl_permanent`, :func:`models.impact.athl_temporary`) the kernels and
:func:`athl_expected_cost_bps` call. One compiled pass (:mod:`models._sim_kernels`) executes
every child in arrival-time order.

Synthetic physics (:func:`simulate`), all in fractions of the parent's arrival mid ``m0``
-------------------------------------------------------------------------------------------
* **Arrival**: a child decided at ``t_d`` arrives at ``t = t_d + latency_ns``; one arriving after
  the parent's ``end_ts`` is never sent. Its **slot** is the time to the parent's next child (or
  to ``end_ts``), floored at ``min_slot_ns``; the market trades ``V_slot = ADV * slot/session``.
* **Quantity sent** ``q`` = child qty + remainder carried from the parent's earlier children,
  capped at ``participation_cap * V_slot`` (the excess is carried on).
* **Mid seen** ``m(t) = m0 * (1 + W(t) + side * (P + T))``: ``W`` a driftless diffusion
  ``sigma_daily * sqrt(dt/session) * N(0,1)`` per parent (off with ``mid_noise=False``), ``P``
  the permanent impact accumulated by the parent's earlier fills (all parents on the symbol with
  ``shared_footprint``), ``T`` the transient footprint ``sum K_j (1 + (t-t_j)/tau)^-decay`` of
  its earlier marketable fills when ``transient`` is set.
* **Marketable** child: fills ``q`` at ``m(t) + side*m0*(s/2 + K + dI/2)`` with
  ``K = eta*sigma*(q/V_slot)^beta`` (the rate is the child's participation in its slot, equal to
  ATHL's ``X/(V T)`` for a uniform schedule), ``dI = gamma*sigma*(q/ADV)*(Theta/ADV)^delta``
  (its own permanent impact, half of which it pays itself: the price moves while it trades) and
  ``s`` the quoted spread. A limit offset ``L`` bps beyond the far touch caps ``K`` at ``L``: the
  child then fills ``V_slot*(L/(eta*sigma))^(1/beta)`` and carries the rest (a partial fill).
  Taker fee: ``taker_fee_bps * px * q + taker_fee_per_share * q``.
* **Passive** child: rests at the near touch (minus its offset) for its slot, fills with the
  :class:`FillModel` probability at ``m(t) - side*m0*(s/2 + L) + side*m0*dI/2``, pays no ``K``
  and earns the maker rebate; unfilled, it is carried to the next child.
* After a fill, ``P += dI``; the remainder still unfilled after the last child is ``unfilled``.

True expected cost (``SimResult.truth_bps``)
--------------------------------------------
The expected implementation shortfall of the filled part, in bps of ``m0`` with fees::

    truth = (side * (sum_k q_k px*_k - m0 * sum_k q_k) + sum_k fee(px*_k, q_k)) / (m0 sum q_k) * 1e4

where ``px*_k`` is the fill price without the diffusion ``W``. ``W`` has mean zero and is drawn
independently of which children fill, and fees are linear in the price, so ``truth`` is the
expectation of the realized ``shortfall_bps`` over the noise, given the fills (exact while the loss
limits, which look at realized prices, do not fire). For a uniform marketable schedule (N equal
children, equal slots, nothing capped) it is the ATHL closed form of
:func:`athl_expected_cost_bps`: ``s/2 + K + I/2 + fees``, with ``I = gamma sigma (X/V)
(Theta/V)^delta`` and ``K = eta sigma (X/(V T))^beta`` (the ``dI_k/2`` terms sum the staircase
of earlier fills to exactly ``I/2``). ``tests/test_simulator.py`` checks that the mean simulated
shortfall matches it within two standard errors over 10,000 orders per %ADV bucket (0.1%-20%).

Replay on recorded books (:func:`replay_l1`, :func:`walk_book`) is described in
:mod:`models._sim_replay`.

Examples
--------
>>> import numpy as np
>>> par = Parents(symbol_idx=[0], arrival_mid=[100.0], sigma_daily=[0.02], adv=[1e6],
...               spread_bps=[10.0], shares_outstanding=[2e8], start_ns=[0],
...               end_ns=[SESSION_NS])
>>> ch = twap_children(par, qty=np.array([1e4]), side=np.array([1]), n_children=10)
>>> res = simulate(par, ch, SimulatorConfig(mid_noise=False))
>>> round(float(res.truth_bps[0]), 6) == round(float(athl_expected_cost_bps(
...     1e4, 1e6, 0.02, 1.0, 10.0, 2e8)), 6)
True
"""

from __future__ import annotations

import numpy as np

from models._sim_kernels import simulate_kernel
from models._sim_replay import replay_l1, walk_book
from models._sim_types import (
    MARKETABLE,
    PASSIVE,
    SESSION_NS,
    Children,
    ConstantFillProb,
    FeeModel,
    FeeSchedule,
    FillModel,
    Parents,
    QueueFillProb,
    SimResult,
    SimulatorConfig,
    TransientImpact,
    assemble,
    child_outputs,
    cost_bps,
    prepare,
)
from models.impact import athl_permanent, athl_temporary
from models.risk_controls import RiskLimits

__all__ = ["MARKETABLE", "PASSIVE", "SESSION_NS", "Children", "ConstantFillProb", "FeeModel",
           "FeeSchedule", "FillModel", "Parents", "QueueFillProb", "RiskLimits", "SimResult",
           "SimulatorConfig", "TransientImpact", "athl_expected_cost_bps", "replay_l1",
           "simulate", "twap_children", "walk_book"]


def simulate(parents: Parents, children: Children, config: SimulatorConfig | None = None,
             rng: np.random.Generator | int = 0, limits: RiskLimits | None = None) -> SimResult:
    """Execute ``children`` of ``parents`` on the synthetic market (physics in the module doc).

    Parameters
    ----------
    parents : Parents
    children : Children
        Any order; they are executed in arrival-time order (ties: input order).
    config : SimulatorConfig, default=SimulatorConfig()
    rng : numpy.random.Generator or int, default=0
        Source of the mid diffusion and passive-fill draws (an int seeds a new Generator).
        Draws, in order: one normal per child, one per parent (to ``end_ts``), one uniform per
        child; the same generator state gives the same result.
    limits : RiskLimits, default=RiskLimits() (all off)

    Returns
    -------
    SimResult
    """
    cfg = config or SimulatorConfig()
    lim = limits or RiskLimits()
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    prep = prepare(parents, children, cfg, time_order=lim.daily_loss_limit is not None)
    n_par, n_ch = len(parents), len(children)
    z = gen.standard_normal(n_ch)
    z_end = gen.standard_normal(n_par)
    u = gen.random(n_ch)
    if not cfg.mid_noise:
        z[:] = 0.0
        z_end[:] = 0.0
    if cfg.shared_footprint:
        ev_t = np.concatenate([parents.start_ns, parents.end_ns, prep.arrival_ns])
        ev_id = np.concatenate([-1 - np.arange(2 * n_par), np.arange(n_ch)])
        order = ev_id[np.argsort(ev_t, kind="stable")]
    elif lim.daily_loss_limit is not None:
        order = prep.by_time
    else:  # parents are independent: run parent by parent (same result, cache-friendly)
        order = prep.by_parent
    sig, adv = parents.sigma_daily, parents.adv
    impact = cfg.impact_model()
    fill = cfg.fill
    fees = cfg.fees
    tr = cfg.transient
    out = child_outputs(n_ch)
    o = {k: np.zeros(n_par) for k in ("filled", "notional", "fees", "det_notional", "det_fees")}
    o["end_mid"] = np.full(n_par, np.nan)
    simulate_kernel(
        order, children.parent_idx, prep.arrival_ns, children.qty, children.kind,
        prep.limit_frac, prep.mvol, z, u,
        prep.p_side, parents.symbol_idx, parents.arrival_mid, sig / np.sqrt(cfg.session_ns), adv,
        parents.spread_bps * 0.5e-4 * cfg.pay_half_spread,
        impact.permanent_per_share(adv=adv, sigma_daily=sig,
                                   shares_outstanding=parents.shares_outstanding), sig,
        parents.start_ns, parents.end_ns, z_end,
        int(parents.symbol_idx.max(initial=0)) + 1, impact.eta, impact.beta,
        fees.taker_fee_bps, fees.taker_fee_per_share, fees.maker_rebate_bps,
        fees.maker_rebate_per_share,
        np.inf if cfg.participation_cap is None else cfg.participation_cap,
        0 if isinstance(fill, ConstantFillProb) else 1,
        fill.prob if isinstance(fill, ConstantFillProb) else 0.0,
        fill.queue_ahead_adv if isinstance(fill, QueueFillProb) else 0.0,
        fill.side_volume_share if isinstance(fill, QueueFillProb) else 0.5,
        tr is not None, float(tr.tau_ns) if tr else 1.0, tr.decay_exponent if tr else 1.0,
        cfg.shared_footprint, *lim.kernel_args(),
        out["f_qty"], out["f_px"], out["f_fee"], out["f_maker"], out["f_ts"], out["r_code"],
        out["r_val"], out["r_lim"],
        o["filled"], o["notional"], o["fees"], o["det_notional"], o["det_fees"], o["end_mid"])
    truth = cost_bps(prep.p_side, parents.arrival_mid, o["filled"], o["det_notional"],
                     o["det_fees"])
    return assemble(parents, children, prep, out, parents.arrival_mid, o["filled"],
                    o["notional"], o["fees"], o["end_mid"], truth, cfg.venue)


def athl_expected_cost_bps(qty, adv, sigma_daily, duration_days, spread_bps, shares_outstanding,
                           config: SimulatorConfig | None = None, *, side=1, arrival_mid=None):
    """Closed-form true expected cost (bps) of a uniform marketable schedule: s/2 + K + I/2 + fees.

    ``I = gamma sigma (X/V) (Theta/V)^delta``, ``K = eta sigma (X/(V T))^beta`` (REFERENCES.md
    §3.1), ``T = duration_days``; fees ``taker_fee_bps * (1 + side*c) + per_share/mid`` where
    ``c = s/2 + K + I/2`` (the fee is charged on the fill price). ``arrival_mid`` is needed only
    with a per-share fee. Arguments broadcast.
    """
    cfg = config or SimulatorConfig()
    impact = cfg.impact_model()
    x = np.asarray(qty, float) / np.asarray(adv, float)
    sig = np.asarray(sigma_daily, float)
    perm = athl_permanent(impact.gamma, sig, x, np.asarray(shares_outstanding, float) / adv,
                          impact.delta)
    temp = athl_temporary(impact.eta, sig, x / np.asarray(duration_days, float), impact.beta)
    c = np.asarray(spread_bps, float) * 0.5e-4 * cfg.pay_half_spread + temp + 0.5 * perm
    fee = cfg.fees.taker_fee_bps * 1e-4 * (1 + np.asarray(side) * c)
    if cfg.fees.taker_fee_per_share:
        if arrival_mid is None:
            raise ValueError("athl_expected_cost_bps: a per-share fee needs `arrival_mid`")
        fee = fee + cfg.fees.taker_fee_per_share / np.asarray(arrival_mid, float)
    return (c + fee) * 1e4


def twap_children(parents: Parents, qty: np.ndarray, side: np.ndarray, n_children: int | np.ndarray,
                  kind: int = MARKETABLE, limit_offset_bps: float = np.nan) -> Children:
    """Uniform schedule: parent ``p`` sends ``n_children`` equal children at
    ``start + k (end - start)/n``, ``k = 0..n-1`` (parent-major, time order within a parent)."""
    n_par = len(parents)
    n = np.broadcast_to(np.asarray(n_children, np.int64), (n_par,))
    if np.any(n < 1):
        raise ValueError("twap_children: `n_children` must be >= 1 for every parent")
    pi = np.repeat(np.arange(n_par), n)
    first = np.concatenate([[0], np.cumsum(n)[:-1]])
    k = np.arange(len(pi)) - np.repeat(first, n)
    dur = parents.end_ns - parents.start_ns
    dec = parents.start_ns[pi] + (dur[pi] * k) // n[pi]
    q = np.asarray(qty, float)[pi] / n[pi]
    return Children(parent_idx=pi, decision_ns=dec, qty=q,
                    side=np.broadcast_to(np.asarray(side, np.int64), (n_par,))[pi],
                    kind=np.full(len(pi), kind, np.int8),
                    limit_offset_bps=np.full(len(pi), limit_offset_bps))
