"""Replay child orders against a recorded book: level 1 (:func:`replay_l1`) or level N (:func:`walk_book`).

Rules (one compiled pass, :func:`models._sim_kernels.replay_kernel`, children in arrival order):

* The book a child meets is the last recorded state with ``ts <= arrival`` (``arrival = decision +
  latency_ns``, found by ``searchsorted`` on the book times of the parent's symbol). A parent's
  ``arrival_mid``, when NaN, is the mid **known** at its decision: the last state with
  ``available_at <= start_ns`` (``ts`` when the table has no ``available_at``).
* **Marketable** child: consumes the opposite side level by level (only levels within its limit
  price ``far touch + side * L * mid`` when it has a limit offset ``L``) and pays the VWAP of the
  walk. Size beyond the recorded depth either pays temporary impact on top of the touch,
  ``touch * (1 + side * eta sigma (rest/V_slot)^beta)`` (``config.l1_excess="impact"``, the
  default of :func:`replay_l1`), or is carried to the parent's next child (``"carry"``, the
  default of :func:`walk_book`: beyond ten levels we do not make up liquidity). The book does
  not remember what we took: every child meets the recorded book (a replay, not a matching
  engine).
* **Passive** child: posts at the near touch (minus ``L``) and fills, in full, at its price when
  the opposite touch reaches that price within its slot (trade-through rule; queue fills at our
  level without the price crossing are ignored, a conservative baseline). Otherwise it is
  carried to the next child.
* **Our footprint**: every fill adds ATHL permanent impact ``gamma sigma (q/ADV)
  (Theta/ADV)^delta`` to a shift of all prices later children of the same parent see.
* Participation cap, fees, risk controls, carry and the unfilled remainder as in
  :func:`models.simulator.simulate`; the market volume of a slot is ``ADV * slot / session``.
  ``end_mid`` is the recorded mid at ``end_ts`` plus our footprint; ``truth_bps`` is NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from models._sim_kernels import replay_kernel
from models._sim_types import (
    Children,
    Parents,
    SimResult,
    SimulatorConfig,
    assemble,
    child_outputs,
    prepare,
)
from models.risk_controls import RiskLimits


def _ns(s: pd.Series) -> np.ndarray:
    return np.ascontiguousarray(s.dt.as_unit("ns").array.asi8)


def _book(frame: pd.DataFrame, levels: int) -> dict[str, object]:
    """Per-symbol blocks of (n, levels) arrays, time-sorted within each symbol."""
    ts = _ns(frame["ts"])
    av = _ns(frame["available_at"]) if "available_at" in frame.columns else ts
    n = len(frame) // levels
    codes, names = pd.factorize(frame["symbol"].iloc[::levels], sort=True)
    t_snap, a_snap = ts[::levels], av[::levels]
    if len(names) <= 1 and bool(np.all(np.diff(t_snap) >= 0)):
        order = slice(None)
        bounds = np.array([0, n])
    else:
        order = np.lexsort((t_snap, codes))
        bounds = np.append(np.searchsorted(codes[order], np.arange(len(names))), n)
    cols = {c: np.ascontiguousarray(frame[c].to_numpy(np.float64).reshape(n, levels)[order])
            for c in ("bid_px", "bid_sz", "ask_px", "ask_sz")}
    return {"ts": np.ascontiguousarray(t_snap[order]), "avail": np.ascontiguousarray(a_snap[order]),
            **cols,
            "blocks": {str(s): (int(bounds[k]), int(bounds[k + 1])) for k, s in enumerate(names)}}


def _run(book: dict, parents: Parents, children: Children, config: SimulatorConfig,
         limits: RiskLimits | None, symbols: Sequence[str] | None, excess_impact: bool
         ) -> SimResult:
    blocks: dict[str, tuple[int, int]] = book["blocks"]  # type: ignore[assignment]
    if symbols is None:
        if len(blocks) != 1:
            raise ValueError(f"the book holds symbols {sorted(blocks)}; pass `symbols` "
                             "(symbols[symbol_idx] names each parent's book)")
        symbols = list(blocks)
    missing = sorted({symbols[i] for i in np.unique(parents.symbol_idx)} - set(blocks))
    if missing:
        raise ValueError(f"no book rows for symbols {missing}; the book holds {sorted(blocks)}")
    lo_hi = np.array([blocks[s] for s in symbols], np.int64)[parents.symbol_idx]
    p_lo, p_hi = np.ascontiguousarray(lo_hi[:, 0]), np.ascontiguousarray(lo_hi[:, 1])
    cfg = config
    lim = limits or RiskLimits()
    prep = prepare(parents, children, cfg, time_order=lim.daily_loss_limit is not None)
    mid = parents.arrival_mid.copy()
    need = np.flatnonzero(np.isnan(mid))
    ts, av = book["ts"], book["avail"]
    bid, ask = book["bid_px"], book["ask_px"]
    for lo, hi in set(zip(p_lo[need].tolist(), p_hi[need].tolist(), strict=True)):
        grp = need[(p_lo[need] == lo) & (p_hi[need] == hi)]  # mid known at the decision
        j = lo + np.searchsorted(av[lo:hi], parents.start_ns[grp], side="right") - 1
        if np.any(j < lo):
            p = int(grp[np.argmax(j < lo)])
            raise ValueError(f"parent {parents.order_id[p]}: no book known at its decision "  # type: ignore[index]
                             f"({pd.Timestamp(parents.start_ns[p], tz='UTC')})")
        mid[grp] = 0.5 * (bid[j, 0] + ask[j, 0])
    sig, adv = parents.sigma_daily, parents.adv
    impact = cfg.impact_model()
    fees = cfg.fees
    out = child_outputs(len(children))
    n_par = len(parents)
    filled, notional, fee_sum = np.zeros(n_par), np.zeros(n_par), np.zeros(n_par)
    end_mid = np.full(n_par, np.nan)
    replay_kernel(
        prep.by_time, children.parent_idx, prep.arrival_ns, children.qty, children.kind,
        prep.limit_frac, prep.mvol, prep.slot_ns,
        prep.p_side, mid, p_lo, p_hi,
        impact.permanent_per_share(adv=adv, sigma_daily=sig,
                                   shares_outstanding=parents.shares_outstanding), sig,
        parents.end_ns, ts, bid, book["bid_sz"], ask, book["ask_sz"], impact.eta, impact.beta,
        excess_impact,
        fees.taker_fee_bps, fees.taker_fee_per_share, fees.maker_rebate_bps,
        fees.maker_rebate_per_share,
        np.inf if cfg.participation_cap is None else cfg.participation_cap, *lim.kernel_args(),
        out["f_qty"], out["f_px"], out["f_fee"], out["f_maker"], out["f_ts"], out["r_code"],
        out["r_val"], out["r_lim"], filled, notional, fee_sum, end_mid)
    return assemble(parents, children, prep, out, mid, filled, notional, fee_sum, end_mid,
                    np.full(n_par, np.nan), cfg.venue)


def replay_l1(quotes: pd.DataFrame, parents: Parents, children: Children,
              config: SimulatorConfig | None = None, limits: RiskLimits | None = None,
              symbols: Sequence[str] | None = None) -> SimResult:
    """Replay ``children`` against a level-1 book (``quotes`` contract columns; extra columns
    are ignored). ``symbols[symbol_idx]`` names each parent's symbol (not needed for one symbol).
    Size beyond the touch follows ``config.l1_excess`` (default ``"impact"``)."""
    cfg = config or SimulatorConfig(venue="REPLAY")
    book = _book(quotes[["ts", "symbol", "bid_px", "bid_sz", "ask_px", "ask_sz"]
                        + (["available_at"] if "available_at" in quotes.columns else [])], 1)
    return _run(book, parents, children, cfg, limits, symbols, cfg.l1_excess == "impact")


def walk_book(depth: pd.DataFrame, parents: Parents, children: Children,
              config: SimulatorConfig | None = None, limits: RiskLimits | None = None,
              symbols: Sequence[str] | None = None) -> SimResult:
    """Replay ``children`` against a level-N book (``depth`` contract, long format: one row per
    (snapshot, level), levels ``1..N`` consecutive, as :func:`sources.lobster.read_lobster` and
    :func:`sources.bitmex.read_bitmex_book` return them). Marketable children walk the levels;
    what is left after the last level is carried (``config.l1_excess="impact"`` to charge
    temporary impact instead). Default config: ``l1_excess="carry"``, venue ``"REPLAY"``."""
    cfg = config or SimulatorConfig(venue="REPLAY", l1_excess="carry")
    level = depth["level"].to_numpy()
    n_lev = int(level.max()) if len(level) else 1
    if len(level) % n_lev or not np.array_equal(level, np.tile(np.arange(1, n_lev + 1),
                                                               len(level) // n_lev)):
        raise ValueError(f"walk_book: `depth` must hold whole snapshots, levels 1..{n_lev} "
                         "consecutive in each (as the LOBSTER and BitMEX readers write them)")
    book = _book(depth, n_lev)
    return _run(book, parents, children, cfg, limits, symbols, cfg.l1_excess == "impact")
