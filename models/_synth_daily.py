"""Daily layer of the synthetic market: calendar, symbol parameters, membership, regimes, vol paths.

Everything here works on ``(n_symbols, n_sessions)`` arrays; no intraday detail.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

import exchange_calendars as xcals
import numpy as np
import pandas as pd
from scipy.signal import lfilter

from models._synth_config import SyntheticMarketConfig

FULL_SESSION_S = 23_400.0  # 09:30-16:00 New York


@dataclass(frozen=True)
class Sessions:
    """XNYS sessions of the sample: dates (naive midnight) and open/close instants (int ns UTC)."""

    dates: pd.DatetimeIndex
    open_ns: np.ndarray
    close_ns: np.ndarray

    @property
    def seconds(self) -> np.ndarray:
        """Session lengths in seconds (23,400 for a full session, 12,600 for a 13:00 close)."""
        return (self.close_ns - self.open_ns) / 1e9


def xnys_sessions(start: dt.date, n_sessions: int) -> Sessions:
    """The first ``n_sessions`` XNYS sessions on or after ``start`` (holidays/early closes included).

    Raises
    ------
    ValueError
        When the calendar cannot supply that many sessions from ``start``.
    """
    first = pd.Timestamp(start)
    end = first + pd.Timedelta(days=int(n_sessions * 7 / 5 * 1.05) + 30)
    with warnings.catch_warnings():  # exchange_calendars 4.13 uses Series.values on tz data
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        cal = xcals.get_calendar("XNYS", start=first - pd.Timedelta(days=7), end=end)
    sched = cal.schedule.loc[first:]
    if len(sched) < n_sessions:
        raise ValueError(f"XNYS has only {len(sched)} sessions from {start} to {end.date()}; "
                         f"`n_sessions={n_sessions}` needs a later end date")
    sched = sched.iloc[:n_sessions]
    dates = pd.DatetimeIndex(sched.index).tz_localize(None).as_unit("ns")
    return Sessions(
        dates=dates,
        open_ns=pd.DatetimeIndex(sched["open"]).as_unit("ns").asi8.copy(),
        close_ns=pd.DatetimeIndex(sched["close"]).as_unit("ns").asi8.copy(),
    )


@dataclass(frozen=True)
class SymbolParams:
    """Per-symbol parameters (arrays of length ``n_symbols``)."""

    names: np.ndarray  # str
    price: np.ndarray
    daily_vol: np.ndarray
    spread_bps: np.ndarray
    trades_per_min: np.ndarray
    mean_trade_size: np.ndarray
    depth_lots: np.ndarray


def _lognormal(rng: np.random.Generator, n: int, median: float, log_sd: float,
               clip: tuple[float, float]) -> np.ndarray:
    return np.clip(median * np.exp(log_sd * rng.standard_normal(n)), *clip)


def draw_symbol_params(cfg: SyntheticMarketConfig, rng: np.random.Generator) -> SymbolParams:
    """Draw each symbol's price level, daily vol, spread, trade rate, trade size and depth.

    Symbol 0 takes the calibrated ``cfg.reference`` values.
    """
    n, d = cfg.n_symbols, cfg.symbols
    out: dict[str, np.ndarray] = {}
    for field in ("price", "daily_vol", "spread_bps", "trades_per_min", "mean_trade_size",
                  "depth_lots"):
        med, sd, clip = (getattr(d, f"{field}_median"), getattr(d, f"{field}_log_sd"),
                         getattr(d, f"{field}_clip"))
        vals = _lognormal(rng, n, med, sd, clip)
        vals[0] = getattr(cfg.reference, field)
        out[field] = vals
    names = np.array([f"{cfg.symbol_prefix}{i:02d}" for i in range(n)])
    return SymbolParams(names=names, **out)


def draw_membership(cfg: SyntheticMarketConfig, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """First and last active session index per symbol, and exit reasons (None = still a member).

    Late listings start in the first half of the sample, delistings end in the second half, so
    that both lie strictly inside it.
    """
    n, n_sess, m = cfg.n_symbols, cfg.n_sessions, cfg.membership
    first = np.zeros(n, dtype=np.int64)
    last = np.full(n, n_sess - 1, dtype=np.int64)
    reasons: list[str | None] = [None] * n
    if n_sess < 3 or n < 2:
        return first, last, reasons
    n_list = min(m.n_listings, n - 1)
    n_del = min(m.n_delistings, n - 1 - n_list)
    picked = rng.permutation(np.arange(1, n))[: n_list + n_del]
    half = n_sess // 2
    for i in picked[:n_list]:
        first[i] = rng.integers(1, max(half, 1) + 1)
    for i in picked[n_list:]:
        last[i] = rng.integers(min(half, n_sess - 2), n_sess - 1)
        reasons[i] = str(m.exit_reasons[rng.integers(len(m.exit_reasons))])
    return first, last, reasons


def scenario_sessions(cfg: SyntheticMarketConfig) -> tuple[int | None, np.ndarray]:
    """Index of the flash-crash session and the indices of the crisis-week sessions."""
    s, n = cfg.scenarios, cfg.n_sessions
    flash = None if s.flash_crash_at is None else int(np.floor(s.flash_crash_at * n))
    if s.crisis_week_at is None:
        crisis = np.zeros(0, dtype=np.int64)
    else:
        c0 = int(np.floor(s.crisis_week_at * n))
        crisis = np.arange(c0, min(c0 + s.crisis_week_sessions, n), dtype=np.int64)
    return flash, crisis


def gap_session(cfg: SyntheticMarketConfig) -> int | None:
    """Index of the session opening with the scenario's market-wide gap (None: no gap)."""
    at = cfg.scenarios.gap_at
    return None if at is None else int(np.floor(at * cfg.n_sessions))


def regime_path(cfg: SyntheticMarketConfig, rng: np.random.Generator,
                crisis: np.ndarray) -> np.ndarray:
    """Daily Markov chain of regime states; the crisis-week sessions are forced to the last state."""
    P = np.asarray(cfg.regimes.transition, dtype=float)
    cum = np.cumsum(P, axis=1)
    u = rng.random(cfg.n_sessions)
    forced = np.full(cfg.n_sessions, -1, dtype=np.int64)
    forced[crisis] = len(P) - 1
    states = np.empty(cfg.n_sessions, dtype=np.int64)
    s = cfg.regimes.initial_state
    for t in range(cfg.n_sessions):
        if t > 0:
            s = int(np.searchsorted(cum[s], u[t], side="right"))
            s = min(s, len(P) - 1)
        if forced[t] >= 0:
            s = int(forced[t])
        states[t] = s
    return states


def _ar1_sum(rng: np.random.Generator, shape: tuple[int, int], timescales: tuple[float, ...],
             weights: tuple[float, ...], total_sd: float) -> np.ndarray:
    """Sum of stationary AR(1) processes (one per time scale, variance share ``weights``)."""
    out = np.zeros(shape)
    if total_sd == 0 or not timescales:
        return out
    w = np.asarray(weights, dtype=float) / np.sum(weights)
    for tau, wk in zip(timescales, w, strict=True):
        sd = total_sd * np.sqrt(wk)
        phi = float(np.exp(-1.0 / tau))
        eps = rng.standard_normal(shape)
        eps[:, 0] /= np.sqrt(1.0 - phi * phi)  # start in the stationary distribution
        out += lfilter([sd * np.sqrt(1.0 - phi * phi)], [1.0, -phi], eps, axis=-1)
    return out


def daily_sigma(cfg: SyntheticMarketConfig, params: SymbolParams, states: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Daily volatility ``sigma[i, t]`` and the long-memory factor ``exp(h)``.

    ``sigma = daily_vol_i * vol_mult[R_t] * exp(h_it)`` with
    ``h = sqrt(w) * H_market + sqrt(1 - w) * H_i``, each ``H`` a sum of stationary AR(1)
    log-vol components; ``daily_vol_i`` is the median calm-regime daily volatility.
    """
    v = cfg.volatility
    n, d = cfg.n_symbols, cfg.n_sessions
    s = v.memory_log_sd
    h_mkt = _ar1_sum(rng, (1, d), v.memory_timescales_days, v.memory_weights, s)
    h_idio = _ar1_sum(rng, (n, d), v.memory_timescales_days, v.memory_weights, s)
    h = np.sqrt(v.market_vol_share) * h_mkt + np.sqrt(1.0 - v.market_vol_share) * h_idio
    factor = np.exp(h)
    mult = np.asarray(cfg.regimes.vol_mult)[states]
    return params.daily_vol[:, None] * mult[None, :] * factor, factor


def student_t(rng: np.random.Generator, dof: float, size: int | tuple[int, ...]) -> np.ndarray:
    """Unit-variance Student-t draws."""
    return rng.standard_t(dof, size) / np.sqrt(dof / (dof - 2.0))


def volume_multiplier(cfg: SyntheticMarketConfig, states: np.ndarray,
                      factor: np.ndarray) -> np.ndarray:
    """Trade-rate multiplier per (symbol, session): regime volume times vol^elasticity."""
    reg = np.asarray(cfg.regimes.volume_mult)[states]
    return reg[None, :] * factor ** cfg.volatility.volume_vol_elasticity


def daily_only_bars(cfg: SyntheticMarketConfig, sessions: Sessions, params: SymbolParams,
                    first: np.ndarray, last: np.ndarray, sigma: np.ndarray, vmult: np.ndarray,
                    flash: int | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Daily OHLCV drawn directly from the daily model (``intraday=False``).

    ``log C_t = log C_{t-1} + sqrt(f_on) sigma_t e1 + sqrt(1 - f_on) sigma_t e2`` (market factor
    mixed in as intraday), Student-t ``e``; high/low extend the body by an exponential excursion of
    scale 0.6 intraday sd; the flash-crash session's low reaches the configured drop; the gap
    session's open carries ``scenarios.gap_return`` (halts have no daily effect).
    """
    v, m = cfg.volatility, cfg.micro
    n, d = sigma.shape
    nu, rho, f_on = v.student_t_dof, v.market_return_share, v.overnight_var_share
    mkt = student_t(rng, nu, (2, d))
    e_gap = np.sqrt(rho) * mkt[0] + np.sqrt(1 - rho) * student_t(rng, nu, (n, d))
    e_day = np.sqrt(rho) * mkt[1] + np.sqrt(1 - rho) * student_t(rng, nu, (n, d))
    frac = sessions.seconds / FULL_SESSION_S
    sd_day = sigma * np.sqrt((1 - f_on) * frac)[None, :]
    gap = sigma * np.sqrt(f_on) * e_gap
    g_idx = gap_session(cfg)
    if g_idx is not None:
        gap[:, g_idx] += np.log1p(cfg.scenarios.gap_return)
    intra = sd_day * e_day
    t_idx = np.arange(d)[None, :]
    active = (t_idx >= first[:, None]) & (t_idx <= last[:, None])
    gap = np.where(t_idx == first[:, None], 0.0, gap)
    step = np.where(active, gap + intra, 0.0)
    log_close = np.log(params.price)[:, None] + np.cumsum(step, axis=1)
    log_open = log_close - np.where(active, intra, 0.0)
    o, c = np.exp(log_open), np.exp(log_close)
    hi = np.maximum(o, c) * np.exp(0.6 * sd_day * rng.exponential(size=(n, d)))
    lo = np.minimum(o, c) * np.exp(-0.6 * sd_day * rng.exponential(size=(n, d)))
    if flash is not None:
        lo[:, flash] = np.minimum(lo[:, flash], o[:, flash] * (1 - cfg.scenarios.flash.drop))
    tick = m.tick_size
    o_r, c_r = np.maximum(np.rint(o / tick), 1) * tick, np.maximum(np.rint(c / tick), 1) * tick
    hi_r = np.maximum(np.ceil(hi / tick - 1e-9) * tick, np.maximum(o_r, c_r))
    lo_r = np.minimum(np.maximum(np.floor(lo / tick + 1e-9), 1) * tick, np.minimum(o_r, c_r))
    exp_vol = expected_daily_volume(cfg, params)[:, None] * frac[None, :] * vmult
    vol = exp_vol * np.exp(0.3 * rng.standard_normal((n, d)) - 0.045)
    vol = np.maximum(np.rint(vol / m.trade_qty_step), 1) * m.trade_qty_step
    ii, tt = np.nonzero(active.T)  # session-major order
    return {"t": ii, "i": tt, "open": o_r.T[ii, tt], "high": hi_r.T[ii, tt],
            "low": lo_r.T[ii, tt], "close": c_r.T[ii, tt], "volume": vol.T[ii, tt]}


def expected_daily_volume(cfg: SyntheticMarketConfig, params: SymbolParams) -> np.ndarray:
    """Expected volume of a full calm session (continuous trading plus both auctions), shares."""
    m = cfg.micro
    cont = params.trades_per_min * (FULL_SESSION_S / 60.0) * params.mean_trade_size
    return cont / (1.0 - m.open_auction_share - m.close_auction_share)


