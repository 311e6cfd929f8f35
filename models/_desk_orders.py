"""The desk's parent orders: sizes heavy-tailed in %ADV, decision times across the session,
durations, strategies, and the point-in-time ADV / volatility a desk knows at the decision (the
true physics kept aside). Re-exported by :mod:`models.desk_history`."""

from __future__ import annotations

import warnings
from typing import Final, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

STRATEGIES: Final = ("twap", "vwap", "pov", "almgren_chriss", "is_urgency")
_NS_PER_MIN: Final = 60_000_000_000


class DeskHistoryConfig(BaseModel):
    """How the synthetic desk sends its parent orders."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_orders: int = Field(12_000, ge=1)
    seed: int = 11
    min_pct_adv: float = Field(0.001, gt=0)  # 0.1 % of ADV
    max_pct_adv: float = Field(0.20, gt=0)  # 20 % of ADV
    size_tail_alpha: float = Field(0.5, gt=0)  # truncated Pareto P(X > x) ~ x^-alpha
    min_duration_min: float = Field(5.0, gt=0)
    adv_window_sessions: int = Field(20, ge=2)
    min_history_sessions: int = Field(5, ge=2)
    turnover: float = Field(200.0, gt=0)  # shares outstanding / ADV (ATHL's Theta/V)
    strategy_weights: tuple[float, ...] = (0.3, 0.25, 0.15, 0.15, 0.15)  # in STRATEGIES order
    impact_sigma: Literal["seen", "latent"] = "seen"
    seen_vol_blend_min: float = Field(60.0, gt=0)  # weight of today's RV: m / (m + this)


def _truncated_pareto(rng: np.random.Generator, n: int, lo: float, hi: float, alpha: float):
    """Inverse-CDF draw from a Pareto(alpha) truncated to [lo, hi]."""
    u = rng.random(n)
    lo_a, hi_a = lo ** -alpha, hi ** -alpha
    return (lo_a - u * (lo_a - hi_a)) ** (-1.0 / alpha)


def point_in_time_stats(daily_bars: pd.DataFrame, window: int) -> pd.DataFrame:
    """Per (symbol, date): ADV and daily vol from the ``window`` sessions **before** that date.

    Returns columns ``symbol, date, adv_est, sigma_est, n_hist`` (``n_hist`` sessions used).
    A bar of date d is known at its session close, so it never serves a decision on d.
    """
    bars = daily_bars.sort_values(["symbol", "date"]).reset_index(drop=True)
    g = bars.groupby("symbol", sort=False)
    logret = np.log(bars["close"]).groupby(bars["symbol"]).diff()
    prev_vol = g["volume"].shift(1)
    prev_ret = logret.groupby(bars["symbol"]).shift(1)
    roll = dict(window=window, min_periods=1)
    out = bars[["symbol", "date"]].copy()
    out["adv_est"] = prev_vol.groupby(bars["symbol"]).rolling(**roll).mean().to_numpy()
    out["sigma_est"] = prev_ret.groupby(bars["symbol"]).rolling(window=window, min_periods=2).std() \
        .to_numpy()
    out["n_hist"] = prev_vol.notna().groupby(bars["symbol"]).cumsum().to_numpy()
    return out


def generate_parent_orders(market, config: DeskHistoryConfig | None = None) -> pd.DataFrame:
    """Draw parent orders on ``market`` (a ``models.synthetic_market.SyntheticMarket``).

    Returns
    -------
    pandas.DataFrame
        The ``parent_orders`` contract columns (``order_id, symbol, side, qty, decision_ts,
        end_ts, strategy``) plus decision-time features (``adv_est, sigma_est, pct_adv,
        duration_days, shares_outstanding, regime``) and the truth (``true_sigma, true_adv,
        spread_bps_true, price_true``). One row per order, sorted by decision time.
    """
    cfg = config or DeskHistoryConfig()
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xDE5C]))
    truth = market.truth
    sessions = pd.DatetimeIndex(pd.to_datetime(list(truth.sessions)))
    stats = point_in_time_stats(market.daily_bars, cfg.adv_window_sessions)
    stats = stats[(stats["n_hist"] >= cfg.min_history_sessions) & stats["sigma_est"].gt(0)]
    if stats.empty:
        raise ValueError(
            f"no symbol-session has {cfg.min_history_sessions} earlier sessions of bars; "
            "generate more sessions or lower min_history_sessions"
        )
    pick = stats.iloc[rng.integers(0, len(stats), cfg.n_orders)].reset_index(drop=True)

    import exchange_calendars as xc

    with warnings.catch_warnings():  # exchange_calendars calls Series.values on tz-aware data
        warnings.simplefilter("ignore")
        cal = xc.get_calendar("XNYS", start=sessions[0], end=sessions[-1])
    opens = cal.schedule.loc[pick["date"], "open"].dt.tz_convert("UTC").to_numpy()
    closes = cal.schedule.loc[pick["date"], "close"].dt.tz_convert("UTC").to_numpy()
    open_ns = pd.DatetimeIndex(opens).asi8
    close_ns = pd.DatetimeIndex(closes).asi8
    min_dur = int(cfg.min_duration_min * _NS_PER_MIN)
    latest = close_ns - min_dur
    decision = open_ns + (rng.random(cfg.n_orders) * (latest - open_ns)).astype(np.int64)
    room = (close_ns - decision).astype(float)
    dur = np.exp(rng.uniform(np.log(min_dur), np.log(room)))  # log-uniform: minutes .. close
    end = decision + dur.astype(np.int64)

    pct = _truncated_pareto(rng, cfg.n_orders, cfg.min_pct_adv, cfg.max_pct_adv,
                            cfg.size_tail_alpha)
    qty = np.maximum(np.round(pct * pick["adv_est"].to_numpy()), 1.0)
    w = np.asarray(cfg.strategy_weights, dtype=float)
    strategy = np.asarray(STRATEGIES)[rng.choice(len(STRATEGIES), cfg.n_orders, p=w / w.sum())]

    sym = {s.symbol: s for s in truth.symbols}
    first = {s.symbol: pd.Timestamp(s.first_session) for s in truth.symbols}
    sess_pos = sessions.get_indexer(pick["date"])
    true_sigma = np.array([
        sym[s].daily_vol_path[sessions.get_loc(d) - sessions.get_loc(first[s])]
        for s, d in zip(pick["symbol"], pick["date"], strict=True)
    ])
    session_minutes = ((close_ns - open_ns) / _NS_PER_MIN).astype(float)
    out = pd.DataFrame({
        "order_id": [f"S{cfg.seed}-{i:06d}" for i in range(cfg.n_orders)],
        "symbol": pick["symbol"].astype(str).to_numpy(),
        "side": rng.choice(np.array([-1, 1]), cfg.n_orders),
        "qty": qty,
        "decision_ts": pd.to_datetime(decision, utc=True),
        "end_ts": pd.to_datetime(end, utc=True),
        "strategy": strategy,
        "adv_est": pick["adv_est"].to_numpy(),
        "sigma_est": pick["sigma_est"].to_numpy(),
        "pct_adv": qty / pick["adv_est"].to_numpy(),
        "duration_days": dur / _NS_PER_MIN / session_minutes,
        "shares_outstanding": cfg.turnover * np.array([sym[s].adv_shares for s in pick["symbol"]]),
        "regime": np.asarray(truth.regime_path)[sess_pos],
        "session_open": pd.to_datetime(open_ns, utc=True),
        "true_sigma": true_sigma,
        "true_adv": np.array([sym[s].adv_shares for s in pick["symbol"]]),
        "spread_bps_true": np.array([sym[s].spread_bps for s in pick["symbol"]]),
    })
    return out.sort_values("decision_ts", kind="stable").reset_index(drop=True)
