"""Executing a desk's parent orders on the synthetic market: schedules, the simulator with the
market's true impact, the orders laid on the market's own mid path, the counterfactual without
our impact, the volatility the market has seen and the plan summaries. Re-exported by
:mod:`models.desk_history`.

Fan-out: the parents that interact in the simulator form groups (:func:`parent_groups`); with
``n_chunks > 1`` the execution runs as chunks of whole groups through an injected ``mapper``
(the builtin ``map``, or an engine's such as :func:`bestex.distributed.cluster`), each chunk on
its own slice of the one random stream, so the result equals the unchunked run exactly."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import partial
from typing import Any, Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models._desk_orders import _NS_PER_MIN, DeskHistoryConfig, generate_parent_orders
from models._sim_kernels import DAY_NS
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


def _outcomes(res: SimResult, cf_bps: np.ndarray, orders: pd.DataFrame, cfg: SimulatorConfig,
              n_children: np.ndarray) -> pd.DataFrame:
    """One row per order of ``res``; ``cf_bps``: the shortfall of the run without our impact."""
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
        "impact_bps": res.shortfall_bps - cf_bps, "model_bps": model,
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
    return _run_on_path(path or _MarketPath(market.quotes), orders, child_orders, sim, limits,
                        lambda: np.random.default_rng(seed))


def _run_on_path(path: _MarketPath, orders: pd.DataFrame, child_orders: pd.DataFrame,
                 sim: SimulatorConfig, limits: RiskLimits | None,
                 rng: Callable[[], np.random.Generator]) -> tuple[SimResult, SimResult]:
    cfg = sim.model_copy(update={"mid_noise": False})
    par, kids = _sim_parents(orders), _sim_children(child_orders, orders)
    runs = []
    for c in (cfg, no_impact(cfg)):
        res = simulate(par, kids, c, rng=rng(), limits=limits)
        runs.append(_on_market_path(res, orders, path, c))
    return runs[0], runs[1]


# =========================================================================== fan-out
Mapper = Callable[..., Iterable[Any]]
"""``mapper(fn, items)``: ``fn(item)`` for every item, in order, like the builtin :func:`map` (the
default everywhere: serial, in process). An engine's mapper (:func:`bestex.distributed.cluster`)
runs the calls on worker processes or machines. Inputs every call shares are bound to ``fn`` as
keywords of a :func:`functools.partial`, so such an engine ships them once to each worker."""


def parent_groups(orders: pd.DataFrame, child_orders: pd.DataFrame, sim: SimulatorConfig,
                  limits: RiskLimits | None = None) -> np.ndarray:
    """Label per parent: parents with different labels never interact in the simulator.

    :func:`models.simulator.simulate` couples parents only through the daily loss limit (one
    running loss per UTC day over every symbol) and the shared footprint (one permanent
    footprint per symbol over every day). So a parent is alone (its row) without either, in
    the group of the UTC day its children arrive with the daily loss limit, of its symbol with
    the shared footprint, and every parent is in one group with both (or when a parent's
    children arrive on two days). Runs of whole groups equal the joint run exactly.
    """
    n = len(orders)
    daily = limits is not None and limits.daily_loss_limit is not None
    if daily and sim.shared_footprint:
        return np.zeros(n, np.int64)
    if sim.shared_footprint:
        return pd.factorize(orders["symbol"].astype(str))[0].astype(np.int64)
    if not daily:
        return np.arange(n, dtype=np.int64)
    day = orders["decision_ts"].dt.as_unit("ns").array.asi8 // DAY_NS
    pi = pd.Index(orders["order_id"].astype(str)).get_indexer(child_orders["order_id"].astype(str))
    arrive = child_orders["decision_ts"].dt.as_unit("ns").array.asi8 + sim.latency_ns
    ok = pi >= 0
    if np.any(arrive[ok] // DAY_NS != day[pi[ok]]):
        return np.zeros(n, np.int64)
    return day.astype(np.int64)


def _chunk_of(groups: np.ndarray, weight: np.ndarray, n_chunks: int) -> np.ndarray:
    """Chunk per parent: whole groups in order of first appearance, cut into ``n_chunks`` runs
    of about equal ``weight`` (contiguous rows when every parent is its own group)."""
    codes = pd.factorize(groups)[0]
    w = np.bincount(codes, weights=weight)
    before = np.cumsum(w) - w
    return np.minimum((before / w.sum() * n_chunks).astype(np.int64), n_chunks - 1)[codes]


class _Draws(np.random.Generator):
    """The draws of a whole run, replayed to one chunk's :func:`models.simulator.simulate` in its
    documented order (a normal per child, a normal per parent, a uniform per child): the chunk
    runs on its own slice of the one stream, as it would inside the whole run. Any other call,
    or another order, raises (the simulator's draws changed; update this class)."""

    def __init__(self, z: np.ndarray, z_end: np.ndarray, u: np.ndarray) -> None:
        super().__init__(np.random.PCG64(0))
        self._queue = [("standard_normal", z), ("standard_normal", z_end), ("random", u)]

    def _next(self, method: str, size: object) -> np.ndarray:
        want, arr = self._queue[0] if self._queue else ("nothing", np.empty(0))
        if method != want or size != len(arr):
            raise RuntimeError(f"_Draws: simulate asked {method}({size}), the chunk holds "
                               f"{want}({len(arr)}); its draws changed, update _Draws")
        self._queue.pop(0)
        return arr.copy()

    def standard_normal(self, size=None, dtype=np.float64, out=None):  # type: ignore[override]
        return self._next("standard_normal", size)

    def random(self, size=None, dtype=np.float64, out=None):  # type: ignore[override]
        return self._next("random", size)


def _run_chunk(task: tuple[pd.DataFrame, pd.DataFrame, tuple[np.ndarray, ...] | None], *,
               path: _MarketPath, sim: SimulatorConfig, limits: RiskLimits | None, seed: int,
               arrival: bool, blend: float | None
               ) -> tuple[pd.DataFrame | None, SimResult, np.ndarray]:
    """One chunk: its arrival state (when ``arrival``), then both runs on the market path;
    of the run without our impact only its shortfall (what the outcomes use) comes back."""
    orders, ch, draws = task
    if arrival:
        orders = arrival_state(None, orders, path=path, seen_vol_blend_min=blend)
    rng = (lambda: np.random.default_rng(seed)) if draws is None else (lambda: _Draws(*draws))
    res, cf = _run_on_path(path, orders, ch, sim, limits, rng)
    return (orders[list(ARRIVAL_COLUMNS)] if arrival else None), res, cf.shortfall_bps


_CHILD_FIELDS: Final = frozenset({"child_parent", "arrival_ns", "fill_qty", "fill_px", "fee",
                                  "maker", "fill_ts", "reject_code", "reject_value",
                                  "reject_limit"})


def _merge(parts: Sequence[SimResult], parents: Sequence[np.ndarray],
           kids: Sequence[np.ndarray], n_par: int, n_ch: int) -> SimResult:
    """The chunks' results written back at their parents' and children's rows."""
    out: dict[str, Any] = {"venue": parts[0].venue}
    for f in fields(SimResult):
        if f.name == "venue":
            continue
        child = f.name in _CHILD_FIELDS
        arrs = [getattr(r, f.name) for r in parts]
        a = np.empty(n_ch if child else n_par, np.result_type(*arrs))
        for x, p, c in zip(arrs, parents, kids, strict=True):
            a[c if child else p] = p[x] if f.name == "child_parent" else x
        out[f.name] = a
    return SimResult(**out)


def _execute(orders: pd.DataFrame, ch: pd.DataFrame, sim: SimulatorConfig, *, seed: int,
             limits: RiskLimits | None, path: _MarketPath, mapper: Mapper, n_chunks: int,
             arrival: bool = False, blend: float | None = None
             ) -> tuple[pd.DataFrame, SimResult, np.ndarray]:
    """``(orders, with_impact, shortfall_bps without impact)``: :func:`execute_on_market`
    (after :func:`arrival_state` when ``arrival``) in ``n_chunks`` chunks of whole
    :func:`parent_groups` through ``mapper``; equal to the single run exactly."""
    if isinstance(n_chunks, bool) or not isinstance(n_chunks, int) or n_chunks < 1:
        raise ValueError(f"`n_chunks` must be an integer >= 1, got `n_chunks={n_chunks!r}`; "
                         "use 1 to run in process")
    run = partial(_run_chunk, path=path, sim=sim, limits=limits, seed=seed, arrival=arrival,
                  blend=blend)
    pi = pd.Index(orders["order_id"].astype(str)).get_indexer(ch["order_id"].astype(str))
    n_par, n_ch = len(orders), len(ch)
    chunk = np.zeros(n_par, np.int64) if n_chunks == 1 or np.any(pi < 0) else _chunk_of(
        parent_groups(orders, ch, sim, limits),
        1.0 + np.bincount(pi, minlength=n_par), n_chunks)
    ks = np.unique(chunk)
    if len(ks) <= 1:
        got, res, cf = run((orders, ch, None))
    else:
        gen = np.random.default_rng(seed)
        z, z_end, u = gen.standard_normal(n_ch), gen.standard_normal(n_par), gen.random(n_ch)
        parents = [np.flatnonzero(chunk == k) for k in ks]
        kids = [np.flatnonzero(chunk[pi] == k) for k in ks]
        tasks = [(orders.iloc[p], ch.iloc[c], (z[c], z_end[p], u[c]))
                 for p, c in zip(parents, kids, strict=True)]
        done = list(mapper(run, tasks))
        res = _merge([d[1] for d in done], parents, kids, n_par, n_ch)
        cf = np.empty(n_par)
        for d, p in zip(done, parents, strict=True):
            cf[p] = d[2]
        got = pd.concat([d[0] for d in done]).iloc[np.argsort(np.concatenate(parents))] \
            if arrival else None
    if got is not None:  # the arrival state, written as arrival_state writes it
        orders = orders.copy()
        for c in ARRIVAL_COLUMNS:
            orders[c] = got[c].to_numpy()
    return orders, res, cf


# A US-equities-like schedule: taker pays $0.003/share, maker earns a $0.002/share rebate.
DESK_FEES: Final = FeeSchedule(taker_fee_per_share=0.003, maker_rebate_per_share=0.002)


def simulate_desk_history(market, config: DeskHistoryConfig | None = None, *,
                          sim: SimulatorConfig | None = None, limits: RiskLimits | None = None,
                          execution: DeskExecutionConfig | None = None,
                          mapper: Mapper = map, n_chunks: int = 1) -> DeskHistory:
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

    Fan-out: with ``n_chunks > 1`` the arrival state and both runs of each chunk of
    :func:`parent_groups` go through ``mapper`` (default the builtin ``map``; e.g.
    :func:`bestex.distributed.cluster`'s, with ``n_chunks=mapper.n_workers``); the orders and
    their children are drawn, and the plan summaries, fills and outcomes assembled, in process.
    The history equals the ``n_chunks=1`` one exactly. Most of a desk's time is in process
    (docs/distributed.md): chunks pay where the physics per parent is heavy.
    """
    cfg = config or DeskHistoryConfig()
    ex = execution or DeskExecutionConfig()
    sim_cfg = sim or SimulatorConfig.from_truth(market.truth.impact, fees=DESK_FEES)
    path = _MarketPath(market.quotes)
    orders = generate_parent_orders(market, cfg)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, ex.seed, 0xE8EC]))
    ch, strategy, passive = _children(orders, market, ex, rng)  # reads no arrival state
    orders["strategy"] = strategy
    ch = ch.drop(columns="parent_idx")
    orders, res, cf = _execute(orders, ch, sim_cfg, seed=cfg.seed, limits=limits, path=path,
                               mapper=mapper, n_chunks=n_chunks, arrival=True,
                               blend=cfg.seen_vol_blend_min if cfg.impact_sigma == "seen"
                               else None)
    orders["passive_mix"] = passive
    return _history(orders, ch, res, cf, sim_cfg)


ARRIVAL_COLUMNS: Final = ("arrival_mid", "arrival_spread_bps", "latent_sigma", "true_sigma")
"""The columns :func:`arrival_state` adds (the first three) or rewrites (``true_sigma``)."""


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
                 path: _MarketPath | None = None, mapper: Mapper = map,
                 n_chunks: int = 1) -> DeskHistory:
    """Execute ``child_orders`` (``order_id, decision_ts, qty, side, kind``) of ``orders``
    (:func:`arrival_state`'s columns) on ``market``: the plan summaries written into the
    orders, then :func:`execute_on_market` and the outcomes, as a :class:`DeskHistory`.
    With ``n_chunks > 1`` the runs go through ``mapper`` in chunks of :func:`parent_groups`
    (the same history exactly; see :func:`simulate_desk_history`)."""
    ch = child_orders.reset_index(drop=True)
    orders, res, cf = _execute(orders, ch, sim, seed=seed, limits=limits,
                               path=path or _MarketPath(market.quotes), mapper=mapper,
                               n_chunks=n_chunks)
    return _history(orders, ch, res, cf, sim)


def _history(orders: pd.DataFrame, ch: pd.DataFrame, res: SimResult, cf_bps: np.ndarray,
             sim: SimulatorConfig) -> DeskHistory:
    """The :class:`DeskHistory` of executed ``orders``: plan summaries, fills, outcomes."""
    orders = orders.copy()
    pi = pd.Index(orders["order_id"].astype(str)).get_indexer(ch["order_id"].astype(str))
    n_children = np.bincount(pi[pi >= 0], minlength=len(orders))
    plan = plan_summary(ch, orders, beta=sim.beta, session_ns=sim.session_ns)
    for c in PLAN_COLUMNS:
        orders[c] = plan[c].to_numpy()
    return DeskHistory(parent_orders=orders, child_fills=res.child_fills(),
                       outcomes=_outcomes(res, cf_bps, orders, sim, n_children),
                       rejections=res.rejections(), child_orders=ch)
