"""Executing a desk's parent orders on the synthetic market: schedules, the simulator with the
market's true impact, the orders laid on the market's own mid path, the counterfactual without
our impact, the volatility the market has seen and the plan summaries. Re-exported by
:mod:`models.desk_history`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models._desk_orders import _NS_PER_MIN, DeskHistoryConfig, generate_parent_orders
from models._sim_types import FeeSchedule, cost_bps
from models.features import minute_rv
from models.risk_controls import RiskLimits
from models.schedules import schedule_batch
from models.simulator import (
    MARKETABLE,
    PASSIVE,
    SESSION_NS,
    Children,
    Parents,
    SimResult,
    SimulatorConfig,
    athl_expected_cost_bps,
    simulate,
)


# =========================================================================== execution (item 6)
class DeskExecutionConfig(BaseModel):
    """How the synthetic desk works its parent orders into child orders.

    One child per ``child_interval_min`` of the order's window (at least 1, at most
    ``max_children``). ``passive_order_share`` of the orders post some children passively: each
    of their children rests at the near touch with probability ``passive_child_prob``. IS-urgency
    orders draw an urgency uniformly in ``urgency_range``; Almgren–Chriss orders a ``kappa*T`` in
    ``kappa_t_range``; POV orders trade at least ``pov_rate`` of the forecast volume and up to
    ``pov_max_rate`` when that cannot finish them by ``end_ts``. VWAP and POV forecasts come from
    the symbol's own 5-minute trade volume of earlier sessions (:mod:`models.schedules`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    child_interval_min: float = Field(5.0, gt=0)
    max_children: int = Field(40, ge=1)
    passive_order_share: float = Field(0.2, ge=0, le=1)
    passive_child_prob: float = Field(0.5, ge=0, le=1)
    urgency_range: tuple[float, float] = (0.5, 5.0)
    kappa_t_range: tuple[float, float] = (0.5, 4.0)
    pov_rate: float = Field(0.05, gt=0, le=1)
    pov_max_rate: float = Field(1.0, gt=0, le=1)
    seed: int = 0


@dataclass(frozen=True)
class DeskHistory:
    """A desk's execution history with the truth kept aside.

    Attributes
    ----------
    parent_orders : pandas.DataFrame
        The ``parent_orders`` contract columns, the decision-time features and truth columns of
        :func:`generate_parent_orders`, and ``arrival_mid``, ``arrival_spread_bps`` (the quote
        known at the decision).
    child_fills : pandas.DataFrame
        The ``child_fills`` contract, exactly (time order).
    outcomes : pandas.DataFrame
        One row per order: ``order_id, shortfall_bps`` (realized, fees included), ``truth_bps``
        (true expected cost; NaN on a replay), ``impact_bps`` (counterfactual: the same order on
        the same market path with minus without our impact), ``model_bps`` (ATHL closed form
        ``s/2 + K + I/2`` at the simulator's parameters: a model estimate, equal to the truth
        only for a uniform marketable schedule), ``filled_qty, unfilled_qty, avg_px,
        arrival_mid, end_mid, fees, n_children``.
    rejections : pandas.DataFrame
        Risk-control rejections (``order_id, child, ts, reason, detail``); may be empty.
    child_orders : pandas.DataFrame
        The children sent: ``order_id, decision_ts, qty, side, kind`` (0 marketable,
        1 passive), input order of the simulator (what :mod:`models.counterfactual` re-runs).
    """

    parent_orders: pd.DataFrame
    child_fills: pd.DataFrame
    outcomes: pd.DataFrame
    rejections: pd.DataFrame
    child_orders: pd.DataFrame = field(default_factory=pd.DataFrame)


class _MarketPath:
    """As-of mids of the synthetic quotes, per symbol (``ts`` = state; ``available_at`` = known)."""

    def __init__(self, quotes: pd.DataFrame) -> None:
        codes, names = pd.factorize(quotes["symbol"].astype(str), sort=True)
        ts = quotes["ts"].dt.as_unit("ns").array.asi8
        av = quotes["available_at"].dt.as_unit("ns").array.asi8
        order = np.lexsort((ts, codes))
        self.names = {str(s): k for k, s in enumerate(names)}
        self.ts, self.av, c = ts[order], av[order], codes[order]
        bid = quotes["bid_px"].to_numpy(np.float64)[order]
        ask = quotes["ask_px"].to_numpy(np.float64)[order]
        self.mid = 0.5 * (bid + ask)
        self.spread_bps = (ask - bid) / self.mid * 1e4
        self.bounds = np.searchsorted(c, np.arange(len(names) + 1))

    def code(self, symbols: np.ndarray) -> np.ndarray:
        missing = sorted(set(map(str, np.unique(symbols))) - set(self.names))
        if missing:
            raise ValueError(f"no quotes for symbol(s) {missing}; the market quotes "
                             f"{sorted(self.names)}")
        return np.array([self.names[str(s)] for s in symbols], np.int64)

    def index(self, code: np.ndarray, t: np.ndarray, *, known: bool) -> np.ndarray:
        """Row of the last quote with ``ts <= t`` (``available_at <= t`` when ``known``)."""
        keys = self.av if known else self.ts
        out = np.full(len(t), -1, np.int64)
        for k in np.unique(code):
            m = code == k
            lo, hi = self.bounds[k], self.bounds[k + 1]
            j = np.searchsorted(keys[lo:hi], t[m], side="right") - 1
            out[m] = np.where(j >= 0, lo + j, -1)
        if np.any(out < 0):
            raise ValueError(f"{int((out < 0).sum())} time(s) precede every quote of their "
                             "symbol; no mid is known there")
        return out


def seen_volatility(path: _MarketPath, symbols: np.ndarray, decision_ns: np.ndarray,
                    blend_min: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Daily volatility **as the market sees it** at each decision, from the quotes' mid.

    Realized variance of 1-minute mid log returns (state time ``ts``), scaled to a 390-minute
    session: ``RV_prev`` over the symbol's previous session, ``RV_open`` from today's first quote
    to the decision. ``sigma_seen^2 = w RV_open + (1 - w) RV_prev`` with ``w = m / (m + blend_min)``
    (``m`` whole minutes since today's first quote): at the open liquidity providers price
    yesterday's volatility and move to today's as it shows. Returns ``(sigma_seen, ok)``;
    ``ok`` is False where neither part exists (no earlier session and under 5 minutes today).

    This is the volatility the synthetic desk's impact physics uses (``DeskHistoryConfig.
    impact_sigma="seen"``): the truth is then driven by what a desk can see, while the latent
    daily volatility of the market still drives the timing noise.
    """
    code = path.code(np.asarray(symbols))
    dec = np.asarray(decision_ns, np.int64)
    out = np.full(len(dec), np.nan)
    for k in np.unique(code):
        lo, hi = path.bounds[k], path.bounds[k + 1]
        ts = path.ts[lo:hi]
        rv = minute_rv(ts, path.mid[lo:hi])
        sel = np.flatnonzero(code == k)
        dday = dec[sel] // 86_400_000_000_000
        di = np.searchsorted(rv.days, dday)
        for j, i, d in zip(sel, di, dday, strict=True):
            if i >= len(rv.days) or rv.days[i] != d:
                continue
            n = int(min(max((dec[j] - ts[rv.starts[i]]) // _NS_PER_MIN, 0),
                        len(rv.cums[i]) - 1))
            prev = rv.full[i - 1] if i > 0 else np.nan
            today = rv.today(i, n)
            w = n / (n + blend_min)
            if np.isfinite(prev) and np.isfinite(today):
                out[j] = np.sqrt(w * today + (1 - w) * prev)
            elif np.isfinite(prev):
                out[j] = np.sqrt(prev)
            elif np.isfinite(today):
                out[j] = np.sqrt(today)
    return out, np.isfinite(out)


PLAN_COLUMNS: Final = ("plan_n_children", "plan_passive_share", "plan_front_load",
                       "plan_timing_var_days", "plan_rate_shape")
"""Per-parent summary of the child schedule, fixed at the decision (:func:`plan_summary`)."""


def plan_summary(children: pd.DataFrame, orders: pd.DataFrame, *, beta: float = 0.6,
                 session_ns: int = SESSION_NS) -> pd.DataFrame:
    """What the desk knows of its own schedule at the decision, one row per parent order.

    ``children``: ``order_id, decision_ts, qty, kind`` (0 marketable, 1 passive); ``orders``:
    ``order_id, decision_ts, end_ts, qty``. With ``w_k = q_k / Q`` and ``tau_k`` the child's
    time after the parent's decision in session-days:

    * ``plan_n_children``; ``plan_passive_share`` = sum of ``w_k`` over passive children;
    * ``plan_front_load`` = sum ``w_k`` (child time / order window): 0.5 for TWAP, lower when
      front-loaded;
    * ``plan_timing_var_days`` = ``sum_k sum_l w_k w_l min(tau_k, tau_l)``: the variance of the
      weighted arrival-to-fill mid move per unit daily variance (``T/3`` for a long TWAP), so the
      timing risk is ``sigma sqrt(plan_timing_var_days)``;
    * ``plan_rate_shape`` = ``sum over marketable k of w_k (w_k / slot_k)^beta`` with ``slot_k``
      the time to the next child (or to ``end_ts``) in session-days: the temporary-impact term
      of the schedule is ``eta sigma (Q / ADV)^beta * plan_rate_shape`` (``T^-beta`` for a
      uniform marketable schedule over ``T``).
    """
    ids = orders["order_id"].astype(str).to_numpy()
    pi = pd.Index(ids).get_indexer(children["order_id"].astype(str))
    if np.any(pi < 0):
        raise ValueError("plan_summary: a child order has no parent in `orders`")
    t = children["decision_ts"].dt.as_unit("ns").array.asi8
    o = np.lexsort((t, pi))
    pi, t = pi[o], t[o]
    q = children["qty"].to_numpy(np.float64)[o]
    kind = children["kind"].to_numpy()[o]
    dec = orders["decision_ts"].dt.as_unit("ns").array.asi8
    end = orders["end_ts"].dt.as_unit("ns").array.asi8
    n = len(ids)
    total = np.bincount(pi, weights=q, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = q / total[pi]
    last = np.append(pi[1:] != pi[:-1], True)
    nxt = np.where(last, end[pi], np.append(t[1:], 0))
    slot = np.maximum(nxt - t, 1_000_000_000) / session_ns
    tau = np.maximum(t - dec[pi], 0) / session_ns
    window = np.maximum(end - dec, 1) / session_ns
    # S_k = sum_{l >= k} w_l within the parent (children in time order)
    rev = np.append(np.cumsum(w[::-1])[::-1], 0.0)
    s_k = rev[:-1] - rev[np.searchsorted(pi, np.arange(n), "right")][pi]
    bc = np.bincount
    out = pd.DataFrame({
        "order_id": ids,
        "plan_n_children": np.bincount(pi, minlength=n).astype(np.float64),
        "plan_passive_share": bc(pi, weights=w * (kind == PASSIVE), minlength=n),
        "plan_front_load": bc(pi, weights=w * tau / window[pi], minlength=n),
        "plan_timing_var_days": bc(pi, weights=tau * w * (2 * s_k - w), minlength=n),
        "plan_rate_shape": bc(pi, weights=np.where(kind == MARKETABLE,
                                                   w * (w / slot) ** beta, 0.0), minlength=n),
    })
    return out


def _volume_history(trades: pd.DataFrame, symbol: str) -> pd.Series:
    t = trades.loc[trades["symbol"] == symbol, ["ts", "qty"]]
    return t.set_index("ts")["qty"].resample("5min").sum()


def _children(orders: pd.DataFrame, market, cfg: DeskExecutionConfig,
              rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Schedule every order with its strategy; returns (children frame, executed strategy,
    per-order passive flag). Children are parent-major, time order within a parent."""
    n = len(orders)
    dec = orders["decision_ts"].dt.as_unit("ns").array.asi8
    end = orders["end_ts"].dt.as_unit("ns").array.asi8
    qty = orders["qty"].to_numpy(np.float64)
    n_sl = np.clip(np.ceil((end - dec) / (cfg.child_interval_min * _NS_PER_MIN)), 1,
                   cfg.max_children).astype(np.int64)
    urgency = rng.uniform(*cfg.urgency_range, n)
    kappa_t = rng.uniform(*cfg.kappa_t_range, n)
    passive_order = rng.random(n) < cfg.passive_order_share
    strategy = orders["strategy"].to_numpy(dtype=object).copy()
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def run(kind: str, idx: np.ndarray, **kw: object) -> None:
        if idx.size:
            s = schedule_batch(kind, dec[idx], end[idx], qty[idx], n_slices=n_sl[idx],  # type: ignore[arg-type]
                               **kw)
            parts.append((idx[s.order_idx], s.slice_ns, s.child_qty))

    for kind in ("twap", "is_urgency", "almgren_chriss"):
        idx = np.flatnonzero(strategy == kind)
        extra = {"is_urgency": {"urgency": urgency[idx]},
                 "almgren_chriss": {"kappa_t": kappa_t[idx]}}.get(kind, {})
        run(kind, idx, **extra)
    trades = getattr(market, "trades", None)
    for kind in ("vwap", "pov"):
        for sym in np.unique(orders["symbol"].to_numpy()[strategy == kind]):
            idx = np.flatnonzero((strategy == kind) & (orders["symbol"].to_numpy() == sym))
            kw: dict[str, object] = {"rate": cfg.pov_rate, "max_rate": cfg.pov_max_rate} \
                if kind == "pov" else {}
            try:
                if trades is None or not len(trades):
                    raise ValueError("the market has no trades to build a volume profile")
                run(kind, idx, volume_history=_volume_history(trades, str(sym)), **kw)
            except ValueError:  # no usable volume history: honestly executed (and labelled) twap
                strategy[idx] = "twap"
                run("twap", idx)
    pi = np.concatenate([p[0] for p in parts])
    t = np.concatenate([p[1] for p in parts])
    q = np.concatenate([p[2] for p in parts])
    o = np.lexsort((t, pi))
    pi, t, q = pi[o], t[o], q[o]
    kind = np.where(passive_order[pi] & (rng.random(len(pi)) < cfg.passive_child_prob),
                    PASSIVE, MARKETABLE).astype(np.int8)
    side = orders["side"].to_numpy(np.int64)
    ch = pd.DataFrame({
        "order_id": orders["order_id"].to_numpy()[pi].astype(str),
        "parent_idx": pi, "decision_ts": pd.to_datetime(t, utc=True), "qty": q,
        "side": side[pi], "kind": kind})
    return ch, strategy.astype(str), passive_order


def _sim_children(ch: pd.DataFrame, orders: pd.DataFrame) -> Children:
    pi = pd.Index(orders["order_id"].astype(str)).get_indexer(ch["order_id"].astype(str))
    if np.any(pi < 0):
        raise ValueError(f"child order of unknown parent {ch['order_id'].to_numpy()[pi < 0][0]!r}")
    return Children(parent_idx=pi, decision_ns=ch["decision_ts"]
                    .dt.as_unit("ns").array.asi8, qty=ch["qty"].to_numpy(),
                    side=ch["side"].to_numpy(), kind=ch["kind"].to_numpy(),
                    limit_offset_bps=np.full(len(ch), np.nan))


def _sim_parents(orders: pd.DataFrame) -> Parents:
    return Parents(
        symbol_idx=pd.factorize(orders["symbol"], sort=True)[0],
        arrival_mid=orders["arrival_mid"].to_numpy(), sigma_daily=orders["true_sigma"].to_numpy(),
        adv=orders["true_adv"].to_numpy(), spread_bps=orders["arrival_spread_bps"].to_numpy(),
        shares_outstanding=orders["shares_outstanding"].to_numpy(),
        start_ns=orders["decision_ts"].dt.as_unit("ns").array.asi8,
        end_ns=orders["end_ts"].dt.as_unit("ns").array.asi8,
        order_id=orders["order_id"].to_numpy())


def _on_market_path(res: SimResult, orders: pd.DataFrame, path: _MarketPath,
                    cfg: SimulatorConfig) -> SimResult:
    """Lay the deterministic fills of ``res`` on the market's own mid path.

    The simulator ran without its diffusion: a fill's price is ``m0 (1 + side (footprint + cost))``.
    The market's move since the decision, ``mid(t) - m0`` (the synthetic quotes), is added to
    every fill price and to ``end_mid``; fees proportional to the price follow it.
    """
    code = path.code(orders["symbol"].to_numpy())
    m0 = res.arrival_mid
    filled = res.fill_qty > 0
    p = res.child_parent
    move = np.zeros(len(p))
    i = np.flatnonzero(filled)
    move[i] = path.mid[path.index(code[p[i]], res.fill_ts[i], known=False)] - m0[p[i]]
    px = np.where(filled, res.fill_px + move, 0.0)
    f = cfg.fees
    fee_bps = np.where(res.maker != 0, -f.maker_rebate_bps, f.taker_fee_bps) * 1e-4
    fee = np.where(filled, res.fee + fee_bps * move * res.fill_qty, 0.0)
    n_par = len(m0)
    notional = np.bincount(p, weights=px * res.fill_qty, minlength=n_par)
    fees = np.bincount(p, weights=fee, minlength=n_par)
    end_ns = orders["end_ts"].dt.as_unit("ns").array.asi8
    end_mid = res.end_mid + path.mid[path.index(code, end_ns, known=False)] - m0
    with np.errstate(divide="ignore", invalid="ignore"):
        avg = np.where(res.filled_qty > 0, notional / res.filled_qty, np.nan)
    return replace(res, fill_px=px, fee=fee, fees=fees, end_mid=end_mid, avg_px=avg,
                   shortfall_bps=cost_bps(res.side, m0, res.filled_qty, notional, fees))


def _outcomes(res: SimResult, cf: SimResult, orders: pd.DataFrame, cfg: SimulatorConfig,
              n_children: np.ndarray) -> pd.DataFrame:
    model = athl_expected_cost_bps(
        orders["qty"].to_numpy(), orders["true_adv"].to_numpy() if "true_adv" in orders
        else orders["adv_est"].to_numpy(),
        orders["true_sigma"].to_numpy() if "true_sigma" in orders
        else orders["sigma_est"].to_numpy(),
        (orders["end_ts"] - orders["decision_ts"]).dt.total_seconds().to_numpy() * 1e9
        / cfg.session_ns, orders["arrival_spread_bps"].to_numpy(),
        orders["shares_outstanding"].to_numpy(), cfg, side=orders["side"].to_numpy(),
        arrival_mid=res.arrival_mid)
    return pd.DataFrame({
        "order_id": pd.array(res.order_id, dtype="str"),
        "shortfall_bps": res.shortfall_bps, "truth_bps": res.truth_bps,
        "impact_bps": res.shortfall_bps - cf.shortfall_bps, "model_bps": model,
        "filled_qty": res.filled_qty, "unfilled_qty": res.unfilled_qty, "avg_px": res.avg_px,
        "arrival_mid": res.arrival_mid, "end_mid": res.end_mid, "fees": res.fees,
        "n_children": n_children})


def no_impact(cfg: SimulatorConfig) -> SimulatorConfig:
    """``cfg`` without our footprint: no permanent, temporary or transient impact."""
    return cfg.model_copy(update={"gamma": 0.0, "eta": 0.0, "transient": None})


def execute_on_market(market, orders: pd.DataFrame, child_orders: pd.DataFrame,
                      sim: SimulatorConfig, seed: int = 0, limits: RiskLimits | None = None,
                      path: _MarketPath | None = None) -> tuple[SimResult, SimResult]:
    """Run ``child_orders`` of ``orders`` on ``market``'s mid path with ``sim``'s impact and
    without it (same path, same simulator random stream): ``(with_impact, without_impact)``.

    ``orders`` needs ``arrival_mid, arrival_spread_bps, true_sigma, true_adv`` (as
    :func:`simulate_desk_history` writes them). The simulator runs deterministically
    (``mid_noise=False``) and the market's own mid path is laid on top (:func:`_on_market_path`).
    """
    path = path or _MarketPath(market.quotes)
    cfg = sim.model_copy(update={"mid_noise": False})
    par, kids = _sim_parents(orders), _sim_children(child_orders, orders)
    runs = []
    for c in (cfg, no_impact(cfg)):
        res = simulate(par, kids, c, rng=np.random.default_rng(seed), limits=limits)
        runs.append(_on_market_path(res, orders, path, c))
    return runs[0], runs[1]


# A US-equities-like schedule: taker pays $0.003/share, maker earns a $0.002/share rebate.
DESK_FEES: Final = FeeSchedule(taker_fee_per_share=0.003, maker_rebate_per_share=0.002)


def simulate_desk_history(market, config: DeskHistoryConfig | None = None, *,
                          sim: SimulatorConfig | None = None, limits: RiskLimits | None = None,
                          execution: DeskExecutionConfig | None = None) -> DeskHistory:
    """The synthetic desk's history: :func:`generate_parent_orders` executed on ``market``.

    Children come from :func:`models.schedules.schedule_batch` with each order's strategy (see
    :class:`DeskExecutionConfig`; a VWAP/POV order whose symbol has no usable volume history is
    executed, and labelled, ``twap``). Each parent starts from the mid and quoted spread known
    at its decision (the last synthetic quote with ``available_at <= decision_ts``), with its
    true daily volatility and true ADV; the physics is ``sim`` (default
    ``SimulatorConfig.from_truth(market.truth.impact)``).

    Noise: the simulator runs without its own diffusion and every fill is laid on the synthetic
    market's mid path (``mid(fill_ts) - arrival_mid`` added to its price), so the fills are
    consistent with the market's quotes and trades, and the realized ``shortfall_bps`` is the
    true expected cost ``truth_bps`` plus the market's move (zero mean: sides are random).
    The same children are also run **without our impact** on the same path: ``impact_bps`` is
    the difference, our footprint with the market's noise cancelled (item 8). Risk limits act
    inside the with-impact run; loss limits see the deterministic fill prices.
    """
    cfg = config or DeskHistoryConfig()
    ex = execution or DeskExecutionConfig()
    sim_cfg = sim or SimulatorConfig.from_truth(market.truth.impact, fees=DESK_FEES)
    path = _MarketPath(market.quotes)
    orders = arrival_state(market, generate_parent_orders(market, cfg), path=path,
                           seen_vol_blend_min=cfg.seen_vol_blend_min
                           if cfg.impact_sigma == "seen" else None)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, ex.seed, 0xE8EC]))
    ch, strategy, passive = _children(orders, market, ex, rng)
    orders["strategy"] = strategy
    orders["passive_mix"] = passive
    return execute_plan(market, orders, ch.drop(columns="parent_idx"), sim_cfg, seed=cfg.seed,
                        limits=limits, path=path)


def arrival_state(market, orders: pd.DataFrame, *, path: _MarketPath | None = None,
                  seen_vol_blend_min: float | None = 60.0) -> pd.DataFrame:
    """``orders`` (of :func:`generate_parent_orders`) with what the simulator starts each parent
    from: ``arrival_mid`` and ``arrival_spread_bps`` (the last quote known at the decision),
    ``latent_sigma`` (the generator's) and ``true_sigma``, the volatility the market has seen
    (:func:`seen_volatility`; the latent one without ``seen_vol_blend_min``). A copy."""
    orders = orders.copy()
    path = path or _MarketPath(market.quotes)
    code = path.code(orders["symbol"].to_numpy())
    dec = orders["decision_ts"].dt.as_unit("ns").array.asi8
    j = path.index(code, dec, known=True)
    orders["arrival_mid"] = path.mid[j]
    orders["arrival_spread_bps"] = path.spread_bps[j]
    orders["latent_sigma"] = orders["true_sigma"]
    if seen_vol_blend_min is not None:
        seen, ok = seen_volatility(path, orders["symbol"].to_numpy(), dec, seen_vol_blend_min)
        orders["true_sigma"] = np.where(ok, seen, orders["latent_sigma"])
    return orders


def execute_plan(market, orders: pd.DataFrame, child_orders: pd.DataFrame,
                 sim: SimulatorConfig, *, seed: int = 0, limits: RiskLimits | None = None,
                 path: _MarketPath | None = None) -> DeskHistory:
    """Execute ``child_orders`` (``order_id, decision_ts, qty, side, kind``) of ``orders``
    (:func:`arrival_state`'s columns) on ``market``: the plan summaries written into the
    orders, then :func:`execute_on_market` and the outcomes, as a :class:`DeskHistory`."""
    orders = orders.copy()
    ch = child_orders.reset_index(drop=True)
    pi = pd.Index(orders["order_id"].astype(str)).get_indexer(ch["order_id"].astype(str))
    n_children = np.bincount(pi[pi >= 0], minlength=len(orders))
    plan = plan_summary(ch, orders, beta=sim.beta, session_ns=sim.session_ns)
    for c in PLAN_COLUMNS:
        orders[c] = plan[c].to_numpy()
    res, cf = execute_on_market(market, orders, ch, sim, seed=seed, limits=limits, path=path)
    return DeskHistory(parent_orders=orders, child_fills=res.child_fills(),
                       outcomes=_outcomes(res, cf, orders, sim, n_children),
                       rejections=res.rejections(), child_orders=ch)
