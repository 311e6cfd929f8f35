"""Calibration of the synthetic market against LOBSTER AMZN 2012-06-21, and stylized-fact statistics.

``calibration_table(lobster_zip)`` gives the side-by-side table of ``docs/synthetic_market.md``;
the statistics helpers are also used by ``tests/test_stylized_facts.py``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from models._synth_config import SyntheticMarketConfig

__all__ = [
    "amzn_stats",
    "autocorr",
    "calibration_table",
    "hill_tail_index",
    "intraday_profiles",
    "lobster_profiles",
    "mid_returns",
    "synthetic_stats",
]

_NY_OPEN_S = 34_200.0


def hill_tail_index(x: np.ndarray, tail_frac: float) -> float:
    """Hill estimator of the tail index of ``|x|`` on its top ``tail_frac`` share.

    ``alpha = 1 / mean(log(|x|_(i) / |x|_(k+1)))``, ``i = 1..k``, ``k = floor(tail_frac * n)``.
    """
    a = np.sort(np.abs(np.asarray(x, dtype=float)))[::-1]
    k = int(np.floor(tail_frac * len(a)))
    if k < 2:
        raise ValueError(f"`tail_frac={tail_frac}` leaves k={k} < 2 order statistics of n={len(a)}")
    return float(1.0 / np.mean(np.log(a[:k] / a[k])))


def autocorr(x: np.ndarray, lags: np.ndarray | list[int]) -> np.ndarray:
    """Sample autocorrelation of ``x`` at ``lags`` (mean removed once, biased denominator)."""
    x = np.asarray(x, dtype=float) - np.mean(x)
    den = float(np.dot(x, x))
    return np.array([np.dot(x[: len(x) - k], x[k:]) / den for k in lags])


def mid_returns(quotes: pd.DataFrame, minutes: float) -> pd.DataFrame:
    """Log mid returns on a ``minutes`` grid within each (symbol, session); no overnight returns.

    Returns a frame with ``symbol``, ``session`` (UTC date), ``bin`` (index of the bin since the
    open) and ``ret``.
    """
    q = quotes[["ts", "symbol"]].copy()
    q["mid"] = np.log((quotes["bid_px"].to_numpy() + quotes["ask_px"].to_numpy()) / 2)
    q["session"] = q["ts"].dt.floor("D")
    first = q.groupby(["symbol", "session"])["ts"].transform("min")
    q["bin"] = ((q["ts"] - first).dt.total_seconds() // (minutes * 60)).astype(np.int64)
    last = q.groupby(["symbol", "session", "bin"], sort=True)["mid"].last().reset_index()
    last["ret"] = last.groupby(["symbol", "session"])["mid"].diff()
    return last.dropna(subset=["ret"])[["symbol", "session", "bin", "ret"]]


def intraday_profiles(quotes: pd.DataFrame, trades: pd.DataFrame, *, volume_bin_min: float = 30,
                      spread_bin_min: float = 10, full_sessions_only: bool = True
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Volume per 30-min bin and spread (bps) per 10-min bin, each divided by its mean.

    Volume is pooled over symbols after dividing each symbol-session by its mean bin; the spread
    is each symbol's relative spread divided by that symbol's mean, averaged over symbols.
    Sessions shorter than 6.5 h are left out when ``full_sessions_only``.
    """
    def since_open(ts: pd.Series) -> pd.Series:
        local = ts.dt.tz_convert("America/New_York")
        return (local - local.dt.normalize()).dt.total_seconds() - _NY_OPEN_S

    def full(ts: pd.Series) -> np.ndarray:
        day = ts.dt.tz_convert("America/New_York").dt.normalize()
        last = ts.groupby(day).transform("max")
        return (since_open(last) >= 23_400 - 60).to_numpy() if full_sessions_only else \
            np.ones(len(ts), bool)

    t = trades[full(trades["ts"])]
    vb = np.minimum(since_open(t["ts"]) // (volume_bin_min * 60), 23_400 // (volume_bin_min * 60) - 1)
    day = t["ts"].dt.tz_convert("America/New_York").dt.normalize()
    vol = t["qty"].groupby([t["symbol"], day, vb]).sum().unstack(fill_value=0.0)
    vol = vol.div(vol.mean(axis=1), axis=0).mean(axis=0).to_numpy()
    q = quotes[full(quotes["ts"])]
    mid = (q["bid_px"] + q["ask_px"]) / 2
    sp = (q["ask_px"] - q["bid_px"]) / mid * 1e4
    sb = since_open(q["ts"]) // (spread_bin_min * 60)
    prof = sp.groupby([q["symbol"], sb]).mean().unstack()
    prof = prof.div(prof.mean(axis=1), axis=0).mean(axis=0).to_numpy()
    return vol / vol.mean(), prof / prof.mean()


def amzn_stats(lobster_zip: str | Path) -> dict[str, float]:
    """Median spread (bps), 1-min mid vol (bps), trades/min, mean trade size of the LOBSTER day.

    Reads the level-1 AMZN sample zip (message and order-book members); executions are message
    types 4 and 5; the trading day is 09:30-16:00 (390 minutes).
    """
    with zipfile.ZipFile(lobster_zip) as z:
        names = z.namelist()
        msg = next(n for n in names if "_message_" in n)
        book = next(n for n in names if "_orderbook_" in n)
        m = np.loadtxt(z.open(msg), delimiter=",", usecols=(0, 1, 3))
        o = np.loadtxt(z.open(book), delimiter=",", usecols=(0, 2))
    t, typ, size = m[:, 0], m[:, 1], m[:, 2]
    ask, bid = o[:, 0] / 1e4, o[:, 1] / 1e4
    mid = (ask + bid) / 2
    minute = ((t - _NY_OPEN_S) // 60).astype(int)
    last = pd.Series(np.log(mid)).groupby(minute).last()
    ex = np.isin(typ, (4, 5))
    return {
        "price": float(np.median(mid)),
        "spread_bps": float(np.median((ask - bid) / mid) * 1e4),
        "vol_1min_bps": float(np.std(np.diff(last.to_numpy()), ddof=1) * 1e4),
        "trades_per_min": float(ex.sum() / 390.0),
        "mean_trade_size": float(size[ex].mean()),
    }


def synthetic_stats(quotes: pd.DataFrame, trades: pd.DataFrame, symbol: str) -> dict[str, float]:
    """The :func:`amzn_stats` numbers for one synthetic symbol (continuous trading only).

    Spread: median over all its quotes; 1-min vol: median over sessions of the per-session std of
    1-min mid log returns; trades/min and mean size: auction prints (aggressor 0) left out.
    """
    q = quotes[quotes["symbol"] == symbol]
    tr = trades[(trades["symbol"] == symbol) & (trades["aggressor"] != 0)]
    mid = (q["bid_px"] + q["ask_px"]) / 2
    r = mid_returns(q, 1.0)
    minutes = len(q) * quotes_interval(q) / 60.0  # quotes lie on a regular grid
    return {
        "price": float(mid.median()),
        "spread_bps": float(((q["ask_px"] - q["bid_px"]) / mid).median() * 1e4),
        "vol_1min_bps": float(r.groupby("session")["ret"].std().median() * 1e4),
        "trades_per_min": float(len(tr) / minutes),
        "mean_trade_size": float(tr["qty"].mean()),
    }


def quotes_interval(q: pd.DataFrame) -> float:
    """The quote grid step in seconds (smallest positive ts difference of one symbol)."""
    d = np.diff(pd.DatetimeIndex(q["ts"]).asi8)
    return float(d[d > 0].min() / 1e9) if (d > 0).any() else 0.0


def calibration_table(lobster_zip: str | Path, config: SyntheticMarketConfig | None = None,
                      seeds: tuple[int, ...] = (1, 2, 3, 4, 5)) -> pd.DataFrame:
    """AMZN 2012-06-21 against the synthetic reference symbol, one row per statistic.

    Parameters
    ----------
    lobster_zip : str or Path
        ``LOBSTER_SampleFile_AMZN_2012-06-21_1.zip``.
    config : SyntheticMarketConfig, optional
        Defaults to the demo config (8 symbols x 30 sessions) with the scenarios switched off, so
        that the reference symbol is measured on ordinary sessions.
    seeds : tuple of int, default=(1, 2, 3, 4, 5)
        The synthetic column is the median over these seeds (the slow volatility components make
        one 30-session sample sit above or below the median level); min-max in the last column.
    """
    from models.synthetic_market import generate_market

    if config is None:
        config = SyntheticMarketConfig(scenarios={"flash_crash_at": None, "crisis_week_at": None})
    per_seed = []
    for seed in seeds:
        mkt = generate_market(config.model_copy(update={"seed": seed}))
        ref = mkt.truth.symbols[0].symbol
        per_seed.append(synthetic_stats(mkt.quotes, mkt.trades, ref))
    a = amzn_stats(lobster_zip)
    rows = [("price ($)", "price"), ("median spread (bps)", "spread_bps"),
            ("1-min mid volatility (bps)", "vol_1min_bps"), ("trades per minute", "trades_per_min"),
            ("mean trade size (shares)", "mean_trade_size")]
    syn = {k: np.array([s[k] for s in per_seed]) for _, k in rows}
    return pd.DataFrame({
        "statistic": [r[0] for r in rows],
        "AMZN 2012-06-21": [round(a[k], 2) for _, k in rows],
        f"synthetic {ref} (median of {len(seeds)} seeds)": [round(float(np.median(syn[k])), 2)
                                                             for _, k in rows],
        "synthetic min-max": [f"{syn[k].min():.2f}-{syn[k].max():.2f}" for _, k in rows],
    })


def lobster_profiles(lobster_zip: str | Path, *, volume_bin_min: float = 30,
                     spread_bin_min: float = 10) -> tuple[np.ndarray, np.ndarray]:
    """AMZN's executed volume per 30-min bin and mean relative spread per 10-min bin, each / mean."""
    with zipfile.ZipFile(lobster_zip) as z:
        names = z.namelist()
        m = np.loadtxt(z.open(next(n for n in names if "_message_" in n)), delimiter=",",
                       usecols=(0, 1, 3))
        o = np.loadtxt(z.open(next(n for n in names if "_orderbook_" in n)), delimiter=",",
                       usecols=(0, 2))
    since = m[:, 0] - _NY_OPEN_S
    ex = np.isin(m[:, 1], (4, 5))
    nv = int(23_400 // (volume_bin_min * 60))
    vb = np.minimum(since[ex] // (volume_bin_min * 60), nv - 1).astype(int)
    vol = np.bincount(vb, weights=m[ex, 2], minlength=nv)
    sp = (o[:, 0] - o[:, 1]) / ((o[:, 0] + o[:, 1]) / 2)
    ns = int(23_400 // (spread_bin_min * 60))
    sb = np.minimum(since // (spread_bin_min * 60), ns - 1).astype(int)
    spread = np.bincount(sb, weights=sp, minlength=ns) / np.maximum(np.bincount(sb, minlength=ns), 1)
    return vol / vol.mean(), spread / spread.mean()
