"""A synthetic desk's order history on the synthetic market, with the truth kept aside.

Parent orders are drawn the way a desk sends them — sizes heavy-tailed in %ADV (0.1 % to 20 %),
decision times across the session, durations from minutes to the close, a mix of schedules — and
carry the features a desk knows at the decision (ADV and daily volatility from **earlier sessions
only**). The true physics of each order (the symbol's true daily volatility that session, its true
ADV, its quoted spread) are kept in separate columns so every later model can be scored against
the best possible cost model: the true expected cost.

Execution (:func:`simulate_desk_history`): each order is scheduled with its strategy
(:mod:`models.schedules`), executed by the simulator with the market's true impact, and laid on
the synthetic market's own mid path; the outcome of each order keeps its realized shortfall, its
true expected cost and its counterfactual impact (the same children on the same path without our
impact). :func:`replay_desk_history` does the same on a recorded LOBSTER level-1 book,
:func:`sources.desk.load_desk_history` reads a desk's real files into the contracts, and
:func:`calibration_frame` turns a history into the input of
:func:`models.impact_calibration.calibrate`.

Volatility: the impact physics scales with the volatility the market has **seen** at the decision
(:func:`seen_volatility`: yesterday's 1-minute realized volatility blended into today's), the
public quantity liquidity providers price; the symbol's latent daily volatility (kept as
``latent_sigma``) drives the mid path and so the timing noise. The truth is then a function of
what a desk can observe — spread crossed, volatility seen, time of day, participation, its own
schedule (:func:`plan_summary`, written as ``plan_*`` columns) — plus noise it cannot.
``DeskHistoryConfig(impact_sigma="latent")`` runs the physics on the latent volatility instead.

Calibration on a synthetic history (measured in ``tests/test_desk_history.py``): the realized
shortfall (spread and fees taken out) recovers the square-root ``Y`` within 10%; ATHL's
``gamma`` is not identified by ~3,000 noisy TWAP orders (the timing noise ``sigma sqrt(T)`` swamps
the permanent term ``I/2``), so ATHL is fitted on the counterfactual-differenced cost
(``label="impact_bps"``) of the TWAP orders executed with marketable children only, for which the
ATHL closed form is the exact expected cost.

Layout: the orders are drawn in :mod:`models._desk_orders`, executed in
:mod:`models._desk_execution`; this module holds the recorded-book replay and the calibration
input, and re-exports the public names of both (import them from here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd

from models._desk_execution import (
    DESK_FEES,
    PLAN_COLUMNS,
    DeskExecutionConfig,
    DeskHistory,
    Mapper,
    _MarketPath,
    _outcomes,
    _sim_children,
    arrival_state,
    execute_on_market,
    execute_plan,
    no_impact,
    parent_groups,
    plan_summary,
    seen_volatility,
    simulate_desk_history,
)
from models._desk_orders import (
    _NS_PER_MIN,
    STRATEGIES,
    DeskHistoryConfig,
    _truncated_pareto,
    generate_parent_orders,
    point_in_time_stats,
)
from models.schedules import schedule_batch
from models.simulator import (
    MARKETABLE,
    SESSION_NS,
    Parents,
    SimulatorConfig,
    replay_l1,
)

__all__ = [
    "AMZN_2012",
    "DESK_FEES",
    "PLAN_COLUMNS",
    "STRATEGIES",
    "DeskExecutionConfig",
    "DeskHistory",
    "DeskHistoryConfig",
    "Mapper",
    "RecordedBook",
    "arrival_state",
    "calibration_frame",
    "execute_on_market",
    "execute_plan",
    "fill_slots",
    "generate_parent_orders",
    "market_drift_bps",
    "no_impact",
    "parent_groups",
    "plan_summary",
    "point_in_time_stats",
    "replay_desk_history",
    "seen_volatility",
    "simulate_desk_history",
]

@dataclass(frozen=True)
class RecordedBook:
    """A recorded day's cleansed level-1 book and trades of one ``symbol`` (from
    :func:`sources.ingest`: the replays and the stress stage read no file themselves)."""

    quotes: pd.DataFrame
    trades: pd.DataFrame
    symbol: str
    source: str

    @classmethod
    def of(cls, quotes: pd.DataFrame, trades: pd.DataFrame, symbol: str,
           source: str) -> RecordedBook:
        """The ``symbol`` rows of cleansed ``quotes`` and ``trades``, contract columns, in time
        order."""
        def pick(df: pd.DataFrame, cols: tuple[str, ...]) -> pd.DataFrame:
            df = df.loc[df["symbol"].astype(str) == symbol, list(cols)]
            return df.sort_values("ts", kind="stable").reset_index(drop=True)

        return cls(pick(quotes, _QUOTE_COLUMNS), pick(trades, _TRADE_COLUMNS), symbol, source)



_QUOTE_COLUMNS: Final = ("ts", "available_at", "symbol", "bid_px", "bid_sz", "ask_px", "ask_sz")
_TRADE_COLUMNS: Final = ("ts", "available_at", "symbol", "px", "qty", "aggressor")


# =========================================================================== AMZN replay
AMZN_2012: Final = {"adv": 3.5e6, "sigma_daily": 0.015, "shares_outstanding": 4.5e8}
"""Desk estimates for AMZN in June 2012 (ADV, daily volatility, shares outstanding)."""


def replay_desk_history(day, *, n_orders: int = 1000, seed: int = 0,
                        sim: SimulatorConfig | None = None, adv: float = AMZN_2012["adv"],
                        sigma_daily: float = AMZN_2012["sigma_daily"],
                        shares_outstanding: float = AMZN_2012["shares_outstanding"],
                        min_pct_adv: float = 1e-4, max_pct_adv: float = 1e-2,
                        size_tail_alpha: float = 0.5, child_interval_min: float = 5.0,
                        max_duration_min: float = 120.0) -> DeskHistory:
    """A desk's TWAP history replayed on a recorded level-1 book (:func:`models.simulator.replay_l1`).

    ``day`` is a :class:`RecordedBook` (e.g. the AMZN 2012-06-21 sample, cleansed; only its
    ``quotes``, ``symbol`` and ``source`` are used). ``n_orders`` parents: decisions uniform over the day, durations log-uniform from
    5 minutes to ``max_duration_min``, sizes truncated-Pareto in %ADV (``min_pct_adv`` to
    ``max_pct_adv`` of ``adv``, an estimate a desk would hold: the defaults are AMZN's), random
    sides, one marketable TWAP child per ``child_interval_min``. Arrival mid and spread are the
    book's, known at the decision. Physics: ``sim`` (default ``SimulatorConfig(venue="REPLAY")``,
    the synthetic truth's ATHL parameters for our footprint and for size beyond the touch).

    Outcomes: ``truth_bps`` is NaN (a recorded market has no true expected cost);
    ``model_bps`` is the ATHL closed form ``s/2 + K + I/2`` at ``sim``'s parameters (a model
    estimate, not a truth); ``impact_bps`` the replay with minus without our footprint on the
    same book.
    """
    cfg = sim or SimulatorConfig(venue="REPLAY")
    quotes = day.quotes
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xA3A2]))
    path = _MarketPath(quotes)
    t0, t1 = int(path.ts.min()), int(path.ts.max())
    min_dur = 5 * _NS_PER_MIN
    span = t1 - t0 - 2 * _NS_PER_MIN
    if span <= min_dur:
        raise ValueError(f"{day.source}: the book spans {(t1 - t0) / 6e10:.1f} min; a replay "
                         "needs more than 7 (1 min kept clear at each end, orders of 5 min "
                         "and more)")
    max_dur = min(int(max_duration_min * _NS_PER_MIN), span)
    dur = np.exp(rng.uniform(np.log(min_dur), np.log(max_dur), n_orders)).astype(np.int64)
    dec = t0 + _NS_PER_MIN + (rng.random(n_orders) * (span - dur)).astype(np.int64)
    pct = _truncated_pareto(rng, n_orders, min_pct_adv, max_pct_adv, size_tail_alpha)
    qty = np.maximum(np.round(pct * adv), 1.0)
    side = rng.choice(np.array([-1, 1]), n_orders)
    symbol = str(day.symbol)
    code = path.code(np.full(n_orders, symbol))
    j = path.index(code, dec, known=True)
    orders = pd.DataFrame({
        "order_id": [f"R{seed}-{i:05d}" for i in range(n_orders)], "symbol": symbol,
        "side": side, "qty": qty, "decision_ts": pd.to_datetime(dec, utc=True),
        "end_ts": pd.to_datetime(dec + dur, utc=True), "strategy": "twap",
        "adv_est": adv, "sigma_est": sigma_daily, "pct_adv": qty / adv,
        "duration_days": dur / cfg.session_ns, "shares_outstanding": shares_outstanding,
        "arrival_mid": path.mid[j], "arrival_spread_bps": path.spread_bps[j]})
    orders = orders.sort_values("decision_ts", kind="stable").reset_index(drop=True)
    dec, end = (orders[c].dt.as_unit("ns").array.asi8 for c in ("decision_ts", "end_ts"))
    n_sl = np.clip(np.ceil((end - dec) / (child_interval_min * _NS_PER_MIN)), 1, 1000)
    s = schedule_batch("twap", dec, end, orders["qty"].to_numpy(), n_slices=n_sl.astype(np.int64))
    ch = pd.DataFrame({"order_id": orders["order_id"].to_numpy()[s.order_idx],
                       "decision_ts": pd.to_datetime(s.slice_ns, utc=True), "qty": s.child_qty,
                       "side": orders["side"].to_numpy()[s.order_idx],
                       "kind": np.full(len(s.order_idx), MARKETABLE, np.int8)})
    par = Parents(symbol_idx=np.zeros(n_orders, np.int64),
                  arrival_mid=orders["arrival_mid"].to_numpy(),
                  sigma_daily=np.full(n_orders, sigma_daily), adv=np.full(n_orders, adv),
                  spread_bps=orders["arrival_spread_bps"].to_numpy(),
                  shares_outstanding=np.full(n_orders, shares_outstanding), start_ns=dec,
                  end_ns=end, order_id=orders["order_id"].to_numpy())
    kids = _sim_children(ch, orders)
    book = quotes[["ts", "available_at", "symbol", "bid_px", "bid_sz", "ask_px", "ask_sz"]]
    res = replay_l1(book, par, kids, cfg, symbols=[symbol])
    cf = replay_l1(book, par, kids, no_impact(cfg), symbols=[symbol])
    n_children = np.bincount(s.order_idx, minlength=n_orders)
    out = _outcomes(res, cf.shortfall_bps, orders, cfg, n_children)
    out["truth_bps"] = np.nan
    fills = res.child_fills()
    drift = market_drift_bps(orders, ch, fills, path)
    out["adjusted_bps"] = out["shortfall_bps"].to_numpy(np.float64) - drift.reindex(
        out["order_id"]).to_numpy(np.float64)
    return DeskHistory(parent_orders=orders, child_fills=fills, outcomes=out,
                       rejections=res.rejections(), child_orders=ch)


def market_drift_bps(orders: pd.DataFrame, child_orders: pd.DataFrame,
                     child_fills: pd.DataFrame, path: _MarketPath | pd.DataFrame) -> pd.Series:
    """The market's own move in each order's shortfall, bps: the fill-weighted move of the
    recorded mid (without our footprint) from the arrival mid to the **start of the slot**
    each fill belongs to (the latest child decision of its parent at or before the fill),
    signed by the side.

    The slot starts are fixed by the schedule before the order is sent, so under a martingale
    mid this term has zero expectation given anything known at the decision;
    ``shortfall_bps - market_drift_bps`` (``adjusted_bps`` of a replay's outcomes) has the same
    expectation as the realized cost and far less noise: what happens inside each slot (the
    spread, the walk of the book, our footprint, adverse selection of a passive child) stays
    in it. A control variate for a recorded day, where every order shares one price path: the
    scoring target of a replay and the mean model's label of its rows
    (:data:`models.cost_training.MEAN_LABEL`). Indexed by ``order_id``; NaN for an order
    without fills.
    """
    mp = path if isinstance(path, _MarketPath) else _MarketPath(path)
    po = orders.set_index("order_id")
    f = fill_slots(child_orders, child_fills)
    if f.empty:
        return pd.Series(np.nan, index=po.index, dtype=np.float64)
    oid, start = f["order_id"].to_numpy(), f["start_ns"].to_numpy()
    sym = po["symbol"].reindex(oid).astype(str).to_numpy()
    mid = mp.mid[mp.index(mp.code(sym), start, known=False)]
    a_mid = po["arrival_mid"].reindex(oid).to_numpy(np.float64)
    side = po["side"].reindex(oid).to_numpy(np.float64)
    q = f["qty"].to_numpy()
    move = pd.DataFrame({"o": oid, "w": q * side * (mid - a_mid) / a_mid * 1e4, "q": q})
    g = move.groupby("o", sort=False)[["w", "q"]].sum()
    return (g["w"] / g["q"]).reindex(po.index.astype(str)).rename("market_drift_bps")


def fill_slots(child_orders: pd.DataFrame, child_fills: pd.DataFrame) -> pd.DataFrame:
    """Each fill's ``order_id``, ``qty`` and ``start_ns``: the start of the slot it belongs to
    (the latest child decision of its parent at or before the fill; the fill time when none)."""
    f = pd.DataFrame({"order_id": child_fills["order_id"].astype(str).to_numpy(),
                      "t": child_fills["fill_ts"].dt.as_unit("ns").array.asi8,
                      "qty": child_fills["qty"].to_numpy(np.float64)}).sort_values(
                          "t", kind="stable")
    ch = pd.DataFrame({"order_id": child_orders["order_id"].astype(str).to_numpy(),
                       "start": child_orders["decision_ts"].dt.as_unit("ns").array.asi8})
    f = pd.merge_asof(f, ch.sort_values("start", kind="stable"), left_on="t",
                      right_on="start", by="order_id", direction="backward")
    start = np.where(f["start"].isna(), f["t"], f["start"].fillna(0)).astype(np.int64)
    return pd.DataFrame({"order_id": f["order_id"].to_numpy(), "qty": f["qty"].to_numpy(),
                         "start_ns": start})


# =========================================================================== calibration input
Label = Literal["shortfall_bps", "impact_bps", "truth_bps"]


def calibration_frame(history: DeskHistory, *, label: Label = "shortfall_bps",
                      features: Literal["estimate", "truth"] | None = None,
                      strategies: Sequence[str] | None = None,
                      marketable_only: bool = False) -> pd.DataFrame:
    """One row per filled order: the input of :func:`models.impact_calibration.calibrate`
    (and of ``bestex calibrate-impact``).

    Columns ``is_bps, qty, adv, sigma, duration_days, shares_outstanding, symbol`` (plus
    ``order_id, strategy, side``). ``duration_days`` is ``end_ts - decision_ts`` in trading
    days of 6.5 h (the simulator's day).

    Parameters
    ----------
    label : {"shortfall_bps", "impact_bps", "truth_bps"}
        ``shortfall_bps``: the realized shortfall, what a desk observes. Impact models have no
        spread or fee term, so the observable spread and fees are taken out: half the quoted
        spread at arrival times (taker share - maker share of the filled quantity, from the
        fills' ``liquidity``) and the fills' fees in bps. ``impact_bps``: the counterfactual
        difference (same orders, same market path, with minus without our impact; observable in
        simulation, not on a live desk); spread and fees cancel in it. ``truth_bps``: the oracle
        (the true expected cost, netted like ``shortfall_bps``), for scoring only.
    features : {"estimate", "truth"}, optional
        ``adv``/``sigma`` from the desk's point-in-time estimates (``adv_est, sigma_est``) or
        from the truth the physics used (``true_adv, true_sigma``, synthetic only). Default:
        the truth when the history has it (a synthetic desk: the calibration is then scored
        on its own, apart from the error of estimating volatility and ADV from a few
        sessions), else the estimates (a replay or a real desk).
    strategies : sequence of str, optional
        Keep only these strategies (e.g. ``("twap",)``: the ATHL closed form is exact for a
        uniform schedule).
    marketable_only : bool, default=False
        Keep only orders whose fills were all taker fills.
    """
    po = history.parent_orders.set_index(history.parent_orders["order_id"].astype(str))
    out = history.outcomes.set_index(history.outcomes["order_id"].astype(str))
    po = po.loc[out.index]
    fills = history.child_fills
    taker = fills["qty"].where(fills["liquidity"] == "taker", 0.0)
    by = fills["order_id"].astype(str)
    taker_qty = taker.groupby(by).sum().reindex(out.index, fill_value=0.0).to_numpy()
    filled = out["filled_qty"].to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        taker_share = taker_qty / filled
        fee_bps = out["fees"].to_numpy() / (out["arrival_mid"].to_numpy() * filled) * 1e4
    y = out[label].to_numpy(np.float64)
    if label != "impact_bps":
        y = y - 0.5 * po["arrival_spread_bps"].to_numpy() * (2 * taker_share - 1) - fee_bps
    if features is None:
        features = "truth" if {"true_adv", "true_sigma"} <= set(po.columns) else "estimate"
    adv_col, sig_col = ("true_adv", "true_sigma") if features == "truth" else ("adv_est",
                                                                                "sigma_est")
    missing = [c for c in (adv_col, sig_col) if c not in po.columns]
    if missing:
        raise ValueError(f"calibration_frame: parent_orders lack {missing}; use "
                         f"features={'estimate' if features == 'truth' else 'truth'!r}")
    dur = (po["end_ts"] - po["decision_ts"]).dt.total_seconds().to_numpy() * 1e9 / SESSION_NS
    frame = pd.DataFrame({
        "order_id": out.index.to_numpy(), "symbol": po["symbol"].astype(str).to_numpy(),
        "strategy": po["strategy"].astype(str).to_numpy(), "side": po["side"].to_numpy(),
        "is_bps": y, "qty": filled, "adv": po[adv_col].to_numpy(np.float64),
        "sigma": po[sig_col].to_numpy(np.float64), "duration_days": dur,
        "shares_outstanding": po["shares_outstanding"].to_numpy(np.float64)})
    keep = (filled > 0) & np.isfinite(y) & (dur > 0)
    if strategies is not None:
        keep &= frame["strategy"].isin(list(strategies)).to_numpy()
    if marketable_only:
        keep &= np.isclose(taker_share, 1.0)
    return frame[keep].reset_index(drop=True)
