"""Intraday layer of the synthetic market: one session of L1 quotes, trades and its daily bar.

Vectorized over (active symbols x quote steps) of one session; see ``docs/synthetic_market.md``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from models._synth_config import ProfileConfig, SyntheticMarketConfig
from models._synth_daily import FULL_SESSION_S, student_t

NY = "America/New_York"


def _shape(u: np.ndarray, base: float, smile: float, oa: float, od: float, ca: float,
           cd: float) -> np.ndarray:
    return base + smile * (2 * u - 1) ** 2 + oa * np.exp(-u / od) + ca * np.exp(-(1 - u) / cd)


def volume_profile(u: np.ndarray, p: ProfileConfig) -> np.ndarray:
    """U-shaped trade-rate profile over session time ``u`` in [0, 1], normalized to mean 1."""
    f = _shape(u, p.volume_base, p.volume_smile, p.volume_open_amp, p.volume_open_decay,
               p.volume_close_amp, p.volume_close_decay)
    return f / f.mean()


def variance_profile(u: np.ndarray, p: ProfileConfig) -> np.ndarray:
    """U-shaped variance profile over session time ``u`` in [0, 1], normalized to mean 1."""
    f = _shape(u, p.vol_base, p.vol_smile, p.vol_open_amp, p.vol_open_decay, p.vol_close_amp,
               p.vol_close_decay)
    return f / f.mean()


def spread_profile(minutes: np.ndarray, p: ProfileConfig) -> np.ndarray:
    """Reverse-J spread multiplier ``1 + A exp(-m / tau)`` (``m`` minutes since the open)."""
    return 1.0 + p.spread_open_amp * np.exp(-minutes / p.spread_open_decay_min)


def tick_decimals(tick: float) -> int:
    """Decimal places of the tick (0.01 -> 2, 0.25 -> 2, 0.0001 -> 4)."""
    exp = Decimal(str(tick)).normalize().as_tuple().exponent
    return max(0, -int(exp))


@dataclass(frozen=True)
class FlashWindow:
    """Flash-crash window of one session, in quote steps, with its instants (int ns UTC)."""

    k0: int
    k1: int
    start_ns: int
    trough_ns: int
    end_ns: int


def flash_window(cfg: SyntheticMarketConfig, date: pd.Timestamp, open_ns: int,
                 close_ns: int) -> FlashWindow:
    """Place the flash-crash window on ``date``.

    It starts at ``scenarios.flash.start`` New York time when the window fits inside the
    session; otherwise (an early close) it is moved to end one hour before the close.
    """
    s, dt_s = cfg.scenarios, cfg.micro.quote_interval_s
    n_win = max(1, round(s.flash.minutes * 60 / dt_s))
    local = pd.Timestamp(dt.datetime.combine(date.date(), s.flash.start), tz=NY)
    start_ns = int(local.tz_convert("UTC").value)
    n_steps = round((close_ns - open_ns) / 1e9 / dt_s)
    k0 = int(np.floor((start_ns - open_ns) / 1e9 / dt_s))
    if k0 < 0 or k0 + n_win > n_steps:
        k0 = max(0, n_steps - n_win - round(3600 / dt_s))
    k1 = min(k0 + n_win, n_steps)
    step_ns = round(dt_s * 1e9)
    kt = k0 + round(s.flash.trough_at * (k1 - k0))
    return FlashWindow(k0, k1, open_ns + k0 * step_ns, open_ns + kt * step_ns,
                       open_ns + k1 * step_ns)


@dataclass(frozen=True)
class HaltWindow:
    """A halt of one session: ``[start_ns, end_ns)`` (int ns UTC) over the halted symbols
    (``halted``: boolean mask over the session's active symbols)."""

    start_ns: int
    end_ns: int
    halted: np.ndarray


def halt_windows(cfg: SyntheticMarketConfig, session: int, date: pd.Timestamp,
                 active: np.ndarray) -> list[HaltWindow]:
    """The ``scenarios.halts`` falling on session index ``session`` (``floor(at * n_sessions)``)."""
    out = []
    for h in cfg.scenarios.halts:
        if int(np.floor(h.at * cfg.n_sessions)) != session:
            continue
        local = pd.Timestamp(dt.datetime.combine(date.date(), h.start), tz=NY)
        start = int(local.tz_convert("UTC").value)
        halted = (np.ones(len(active), bool) if h.symbols is None
                  else np.isin(active, np.asarray(h.symbols, np.int64)))
        out.append(HaltWindow(start, start + round(h.minutes * 60e9), halted))
    return out


def _halted(halts: Sequence[HaltWindow], sym: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Rows (active-symbol index ``sym``, time ``ts``) inside a halt of their symbol."""
    out = np.zeros(len(ts), bool)
    for h in halts:
        out |= h.halted[sym] & (ts >= h.start_ns) & (ts < h.end_ns)
    return out


@dataclass(frozen=True)
class SessionOut:
    """One session's rows (numpy arrays; symbol = index into the symbol table)."""

    q_ts: np.ndarray
    q_sym: np.ndarray
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray
    t_ts: np.ndarray
    t_sym: np.ndarray
    t_px: np.ndarray
    t_qty: np.ndarray
    t_aggr: np.ndarray
    bar_open: np.ndarray
    bar_high: np.ndarray
    bar_low: np.ndarray
    bar_close: np.ndarray
    bar_volume: np.ndarray
    log_close: np.ndarray


def _trade_sizes(cfg: SyntheticMarketConfig, mean_size: np.ndarray, sym: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Continuous trade sizes: round lots (geometric number of lots) or lognormal odd sizes."""
    m = cfg.micro
    p_lot, sd, q = m.round_lot_trade_share, m.odd_lot_log_sd, m.trade_qty_step
    lot_mean = m.lot_size / 0.85
    med = np.maximum((mean_size - p_lot * lot_mean) / ((1 - p_lot) * np.exp(sd * sd / 2)), 1.0)
    n = len(sym)
    odd = med[sym] * np.exp(sd * rng.standard_normal(n))
    odd = np.maximum(np.rint(odd / q), 1) * q
    lots = m.lot_size * rng.geometric(0.85, n)
    return np.where(rng.random(n) < p_lot, lots, odd).astype(float)


def simulate_session(cfg: SyntheticMarketConfig, *, open_ns: int, close_ns: int,
                     active: np.ndarray, state: int, sigma: np.ndarray, vmult: np.ndarray,
                     log_open: np.ndarray, spread_bps: np.ndarray, trades_per_min: np.ndarray,
                     mean_trade_size: np.ndarray, depth_lots: np.ndarray,
                     flash: FlashWindow | None, rng: np.random.Generator,
                     halts: Sequence[HaltWindow] = ()) -> SessionOut:
    """Simulate one session for the ``active`` symbols (all per-symbol arrays are over ``active``).

    Notes
    -----
    Step ``k`` (length ``dt``) of symbol ``i``: ``var_k = sigma_i^2 (1 - f_on) dt/23400 w(u_k) g_ik``,
    ``dlogmid = sqrt(var_k) (sqrt(rho) Z_mk + sqrt(1 - rho) Z_ik)`` with unit-variance Student-t Z,
    ``g = exp(y - s^2/2)`` an intraday log-vol AR(1); spread in ticks
    ``max(1, rint(s_i m_R J(minute) g^e exp(noise) mid / tick))``; trades Poisson with rate
    ``lambda_i V(u_k) vmult g^0.5 dt``, uniformly placed inside the step, priced at the prevailing
    ask (buyer-initiated) or bid (seller-initiated). Inside a halt (``halts``) a halted symbol
    prints no quote and no continuous trade; every random draw is made as without halts.
    """
    m, v, p, sc = cfg.micro, cfg.volatility, cfg.profiles, cfg.scenarios
    dt_s = m.quote_interval_s
    step_ns = round(dt_s * 1e9)
    n = round((close_ns - open_ns) / 1e9 / dt_s)
    na = len(active)
    k = np.arange(n)
    u = (k + 0.5) / n
    minutes = k * dt_s / 60.0

    # intraday log-vol factor g (mean 1), AR(1) along steps
    s_iv = v.intraday_log_sd
    phi = float(np.exp(-dt_s / (60.0 * v.intraday_timescale_min)))
    eps = rng.standard_normal((na, n))
    eps[:, 0] /= np.sqrt(1 - phi * phi)
    y = lfilter([s_iv * np.sqrt(1 - phi * phi)], [1.0, -phi], eps, axis=-1)
    g = np.exp(y - s_iv * s_iv / 2)

    var = (sigma**2)[:, None] * ((1 - v.overnight_var_share) * dt_s / FULL_SESSION_S) \
        * variance_profile(u, p)[None, :] * g
    sd = np.sqrt(var)
    rho, nu = v.market_return_share, v.intraday_t_dof
    z = np.sqrt(rho) * student_t(rng, nu, n)[None, :] + np.sqrt(1 - rho) * student_t(rng, nu, (na, n))
    spread_x = np.ones(n)
    depth_x = np.ones(n)
    rate_x = np.ones(n)
    p_buy = np.full(n, 0.5)
    drift = np.zeros(n)
    if flash is not None:
        w = slice(flash.k0, flash.k1)
        kw = flash.k1 - flash.k0
        sd[:, w] *= sc.flash.vol_mult
        spread_x[w], depth_x[w], rate_x[w] = sc.flash.spread_mult, sc.flash.depth_mult, \
            sc.flash.volume_mult
        x = np.arange(kw + 1) / kw
        a, big_l = sc.flash.trough_at, -np.log1p(-sc.flash.drop)
        path = np.where(x <= a, -big_l * x / a, -big_l * (1 - sc.flash.rebound * (x - a) / (1 - a)))
        drift[w] = np.diff(path)
        p_buy[w] = np.where(np.diff(path) < 0, 0.25, 0.65)
    incr = sd * z + drift[None, :]
    csum = np.cumsum(incr, axis=1)
    log_mid = log_open[:, None] + np.concatenate([np.zeros((na, 1)), csum[:, :-1]], axis=1)
    log_close = log_open + csum[:, -1]
    mid = np.exp(log_mid)

    # quotes on the tick grid
    tick, dec = m.tick_size, tick_decimals(m.tick_size)
    sprof = spread_profile(minutes, p)
    s_noise = np.exp(m.spread_noise_log_sd * rng.standard_normal((na, n))
                     - m.spread_noise_log_sd**2 / 2)
    sp_frac = (spread_bps[:, None] * 1e-4 * cfg.regimes.spread_mult[state] * (sprof * spread_x)[None, :]
               * g**m.spread_vol_elasticity * s_noise)
    ticks = np.maximum(np.rint(sp_frac * mid / tick), 1.0)
    bid_t = np.maximum(np.rint(mid / tick - ticks / 2), 1.0)
    ask_t = bid_t + ticks
    bid_px, ask_px = np.round(bid_t * tick, dec), np.round(ask_t * tick, dec)
    depth_mult = (sprof ** -p.depth_spread_elasticity * depth_x)[None, :] / cfg.regimes.spread_mult[state]
    pgeo = 1.0 / depth_lots[:, None]
    bid_sz = np.maximum(np.rint(rng.geometric(np.broadcast_to(pgeo, (na, n))) * depth_mult), 1) * m.lot_size
    ask_sz = np.maximum(np.rint(rng.geometric(np.broadcast_to(pgeo, (na, n))) * depth_mult), 1) * m.lot_size

    # trades: Poisson counts per (symbol, step), uniform times inside the step
    rate = (trades_per_min * vmult)[:, None] * (dt_s / 60.0) * (volume_profile(u, p) * rate_x)[None, :] \
        * np.sqrt(g) * np.exp(s_iv * s_iv / 8)  # E[sqrt(g)] = exp(-s^2/8)
    counts = rng.poisson(rate).ravel()
    flat = np.repeat(np.arange(na * n), counts)
    sym, stp = flat // n, flat % n
    frac = rng.random(len(flat))
    aggr = np.where(rng.random(len(flat)) < p_buy[stp], 1, -1).astype(np.int64)
    px = np.where(aggr > 0, ask_px[sym, stp], bid_px[sym, stp])
    qty = _trade_sizes(cfg, mean_trade_size, sym, rng)
    if halts:  # drop the continuous trades printed inside a halt (after every draw)
        t_abs = open_ns + np.floor((stp + frac) * step_ns).astype(np.int64)
        live = ~_halted(halts, sym, t_abs)
        sym, stp, frac, aggr, px, qty = (a[live] for a in (sym, stp, frac, aggr, px, qty))

    # auctions (aggressor 0): open at the open, close at the close
    cont_exp = trades_per_min * vmult * (n * dt_s / 60.0) * mean_trade_size
    auc = 1.0 - m.open_auction_share - m.close_auction_share
    q = m.trade_qty_step
    open_qty = np.maximum(np.rint(cont_exp * m.open_auction_share / auc / q), 1) * q
    close_qty = np.maximum(np.rint(cont_exp * m.close_auction_share / auc / q), 1) * q
    open_px = np.round(np.maximum(np.rint(np.exp(log_open) / tick), 1) * tick, dec)
    close_px = np.round(np.maximum(np.rint(np.exp(log_close) / tick), 1) * tick, dec)

    # daily bar of each active symbol (continuous trades are symbol-major here)
    hi, lo = np.maximum(open_px, close_px), np.minimum(open_px, close_px)
    np.maximum.at(hi, sym, px)
    np.minimum.at(lo, sym, px)
    volume = open_qty + close_qty + np.bincount(sym, weights=qty, minlength=na)

    # order every trade by time (auctions first / last), then quotes step-major
    tkey = np.concatenate([np.full(na, -1.0), stp + frac, np.full(na, float(n))])
    order = np.argsort(tkey, kind="stable")
    t_ts = np.concatenate([np.full(na, open_ns, dtype=np.int64),
                           open_ns + np.floor((stp + frac) * step_ns).astype(np.int64),
                           np.full(na, close_ns, dtype=np.int64)])[order]
    t_sym = np.concatenate([active, active[sym], active])[order]
    q_ts = np.repeat(open_ns + k.astype(np.int64) * step_ns, na)
    q = {"q_sym": np.tile(active, n), "bid_px": bid_px.T.ravel(), "bid_sz": bid_sz.T.ravel(),
         "ask_px": ask_px.T.ravel(), "ask_sz": ask_sz.T.ravel()}
    if halts:  # quotes are step-major: symbol position = row % na
        live = ~_halted(halts, np.tile(np.arange(na), n), q_ts)
        q_ts, q = q_ts[live], {c: v[live] for c, v in q.items()}
    return SessionOut(
        q_ts=q_ts, **q,
        t_ts=t_ts, t_sym=t_sym,
        t_px=np.concatenate([open_px, px, close_px])[order],
        t_qty=np.concatenate([open_qty, qty, close_qty])[order],
        t_aggr=np.concatenate([np.zeros(na, np.int64), aggr, np.zeros(na, np.int64)])[order],
        bar_open=open_px, bar_high=hi, bar_low=lo, bar_close=close_px, bar_volume=volume,
        log_close=log_close,
    )
