"""The synthetic market: the project's embedded default data set, with its ground truth beside it.

N symbols x D XNYS sessions of L1 quotes, trades, daily bars and index membership (listings and
delistings inside the sample), generated from a seeded model with Markov-switching volatility
regimes, Student-t innovations, long-memory volatility, intraday U-shaped volume and reverse-J
spreads, a flash-crash session and a crisis week (REFERENCES.md §4-§5), and optionally a
market-wide overnight gap and trading halts (``ScenarioConfig.gap_at``, ``halts``). Every table meets its
contract in :mod:`validation.contracts`. The model and its calibration to LOBSTER AMZN 2012-06-21
are described in ``docs/synthetic_market.md``.

Examples
--------
>>> from models.synthetic_market import SyntheticMarketConfig, generate_market
>>> m = generate_market(SyntheticMarketConfig(n_symbols=2, n_sessions=3, seed=1,
...                                           micro={"quote_interval_s": 60.0}))
>>> sorted(m.quotes.columns) == sorted(["ts", "available_at", "symbol", "bid_px", "bid_sz",
...                                     "ask_px", "ask_sz"])
True
>>> bool((m.quotes["bid_px"] < m.quotes["ask_px"]).all())
True
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from models._synth_config import (
    FLASH_2010,
    FlashEvent,
    HaltConfig,
    ImpactConfig,
    MembershipConfig,
    MicrostructureConfig,
    ProfileConfig,
    ReferenceSymbol,
    RegimeConfig,
    ScenarioConfig,
    SymbolDistribution,
    SyntheticMarketConfig,
    VolatilityConfig,
)
from models._synth_daily import (
    daily_only_bars,
    daily_sigma,
    draw_membership,
    draw_symbol_params,
    expected_daily_volume,
    gap_session,
    regime_path,
    scenario_sessions,
    student_t,
    volume_multiplier,
    xnys_sessions,
)
from models._synth_intraday import FlashWindow, flash_window, halt_windows, simulate_session
from validation.contracts import empty

__all__ = [
    "FLASH_2010",
    "FlashCrashTruth",
    "FlashEvent",
    "GroundTruth",
    "HaltConfig",
    "ImpactConfig",
    "MembershipConfig",
    "MicrostructureConfig",
    "ProfileConfig",
    "ReferenceSymbol",
    "RegimeConfig",
    "ScenarioConfig",
    "SymbolDistribution",
    "SymbolTruth",
    "SyntheticMarket",
    "SyntheticMarketConfig",
    "VolatilityConfig",
    "generate_market",
    "write_market",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SymbolTruth(_Frozen):
    """True parameters of one symbol; ``daily_vol_path`` covers ``first_session..last_session``."""

    symbol: str
    is_reference: bool
    price: float
    daily_vol: float
    spread_bps: float
    trades_per_min: float
    mean_trade_size: float
    depth_lots: float
    adv_shares: float
    first_session: dt.date
    last_session: dt.date
    exit_reason: str | None
    daily_vol_path: tuple[float, ...]


class FlashCrashTruth(_Frozen):
    """Where the flash crash happened (UTC instants) and the event that was configured."""

    session: dt.date
    start: dt.datetime
    trough: dt.datetime
    end: dt.datetime
    event: FlashEvent


class GroundTruth(_Frozen):
    """Everything the generator used: config, sessions, regime path, symbols, scenarios, impact.

    Serialize with :meth:`to_json`; read back with :meth:`from_json` (an exact round trip).
    """

    config: SyntheticMarketConfig
    sessions: tuple[dt.date, ...]
    regime_path: tuple[str, ...]
    symbols: tuple[SymbolTruth, ...]
    flash_crash: FlashCrashTruth | None
    crisis_week: tuple[dt.date, ...]
    impact: ImpactConfig

    def to_json(self) -> str:
        """JSON text of the whole truth (indent 1)."""
        return self.model_dump_json(indent=1)

    @classmethod
    def from_json(cls, text: str) -> GroundTruth:
        """Parse :meth:`to_json` output."""
        return cls.model_validate_json(text)

    def symbol_table(self) -> pd.DataFrame:
        """One row per symbol with its scalar parameters (no vol path)."""
        rows = [s.model_dump(exclude={"daily_vol_path"}) for s in self.symbols]
        return pd.DataFrame(rows)


@dataclass(frozen=True, eq=False)
class SyntheticMarket:
    """Generated tables (each meets its contract) and the ground truth that produced them.

    Row order: quotes and trades by ``ts`` (then symbol), daily bars by ``(date, symbol)``.
    """

    quotes: pd.DataFrame
    trades: pd.DataFrame
    daily_bars: pd.DataFrame
    membership: pd.DataFrame
    truth: GroundTruth


def _symbols(codes: np.ndarray, names: np.ndarray) -> pd.Series:
    arr = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(names))
    return pd.Series(pd.arrays.ArrowStringArray(arr.cast(pa.string())))


def _utc(ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("M8[ns]")).tz_localize("UTC"))


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def generate_market(config: SyntheticMarketConfig | None = None) -> SyntheticMarket:
    """Generate the synthetic market described by ``config``.

    Parameters
    ----------
    config : SyntheticMarketConfig, optional
        Defaults to ``SyntheticMarketConfig()`` (8 symbols x 30 sessions from 2024-11-01,
        5-second quotes, seed 7: about 1.1 M quotes and 1.4 M trades).

    Returns
    -------
    SyntheticMarket
        ``quotes``, ``trades``, ``daily_bars``, ``membership`` and ``truth``. With
        ``config.intraday=False`` quotes and trades are empty and the daily bars are drawn from
        the daily model directly.

    Notes
    -----
    Random streams are children of ``numpy.random.SeedSequence(config.seed)`` (symbol parameters,
    membership, regimes, volatility paths, daily draws, one stream per session), so the output is
    a pure function of the config.
    """
    cfg = config if config is not None else SyntheticMarketConfig()
    seeds = np.random.SeedSequence(cfg.seed).spawn(6)
    rngs = [np.random.default_rng(s) for s in seeds[:5]]
    sessions = xnys_sessions(cfg.start_date, cfg.n_sessions)
    params = draw_symbol_params(cfg, rngs[0])
    first, last, reasons = draw_membership(cfg, rngs[1])
    flash_idx, crisis = scenario_sessions(cfg)
    states = regime_path(cfg, rngs[2], crisis)
    sigma, factor = daily_sigma(cfg, params, states, rngs[3])
    vmult = volume_multiplier(cfg, states, factor)
    names = params.names

    fw: FlashWindow | None = None
    if cfg.intraday:
        quotes, trades, bars, fw = _intraday(cfg, sessions, params, first, last, states, sigma,
                                             vmult, flash_idx, seeds[5])
    else:
        b = daily_only_bars(cfg, sessions, params, first, last, sigma, vmult, flash_idx, rngs[4])
        quotes, trades = empty("quotes"), empty("trades")
        bars = {k: b[k] for k in ("open", "high", "low", "close", "volume")}
        bars["t"], bars["i"] = b["t"], b["i"]
    daily_bars = pd.DataFrame({
        "date": sessions.dates[bars["t"]],
        "symbol": _symbols(bars["i"], names),
        **{k: bars[k].astype(float) for k in ("open", "high", "low", "close", "volume")},
        "available_at": _utc(sessions.close_ns[bars["t"]]),
    })
    # end_date is exclusive (the first session the symbol is no longer a member), as in the
    # membership contract; a delisted symbol's last session with data is the one before it.
    after_last = np.minimum(np.asarray(last) + 1, len(sessions.dates) - 1)
    end = pd.Series(sessions.dates[after_last]).where([r is not None for r in reasons])
    membership = pd.DataFrame({
        "symbol": _symbols(np.arange(cfg.n_symbols), names),
        "start_date": sessions.dates[first],
        "end_date": end.astype("datetime64[ns]"),
        "exit_reason": pd.array(reasons, dtype="string[pyarrow]"),
    })
    truth = _truth(cfg, sessions, params, first, last, reasons, states, sigma, flash_idx, crisis, fw)
    return SyntheticMarket(quotes, trades, daily_bars, membership, truth)


def _intraday(cfg: SyntheticMarketConfig, sessions, params, first, last, states, sigma, vmult,
              flash_idx: int | None, seed: np.random.SeedSequence):
    v = cfg.volatility
    rho, nu, f_on = v.market_return_share, v.student_t_dof, v.overnight_var_share
    log_close = np.log(params.price).astype(float)
    cols: dict[str, list[np.ndarray]] = {}
    bars: dict[str, list[np.ndarray]] = {}
    fw: FlashWindow | None = None
    gap_idx = gap_session(cfg)
    for d, ss in enumerate(seed.spawn(cfg.n_sessions)):
        rng = np.random.default_rng(ss)
        act = np.nonzero((first <= d) & (d <= last))[0]
        z = np.sqrt(rho) * student_t(rng, nu, 1) + np.sqrt(1 - rho) * student_t(rng, nu, len(act))
        gap = np.where(first[act] == d, 0.0, sigma[act, d] * np.sqrt(f_on) * z)
        if d == gap_idx:  # the scenario's market-wide gap (not on a listing's first session)
            gap = np.where(first[act] == d, 0.0, gap + np.log1p(cfg.scenarios.gap_return))
        open_ns, close_ns = int(sessions.open_ns[d]), int(sessions.close_ns[d])
        win = None
        if d == flash_idx:
            win = fw = flash_window(cfg, sessions.dates[d], open_ns, close_ns)
        out = simulate_session(
            cfg, open_ns=open_ns, close_ns=close_ns, active=act, state=int(states[d]),
            sigma=sigma[act, d], vmult=vmult[act, d], log_open=log_close[act] + gap,
            spread_bps=params.spread_bps[act], trades_per_min=params.trades_per_min[act],
            mean_trade_size=params.mean_trade_size[act], depth_lots=params.depth_lots[act],
            flash=win, rng=rng, halts=halt_windows(cfg, d, sessions.dates[d], act))
        log_close[act] = out.log_close
        for name in ("q_ts", "q_sym", "bid_px", "bid_sz", "ask_px", "ask_sz", "t_ts", "t_sym",
                     "t_px", "t_qty", "t_aggr"):
            cols.setdefault(name, []).append(getattr(out, name))
        for name in ("open", "high", "low", "close", "volume"):
            bars.setdefault(name, []).append(getattr(out, f"bar_{name}"))
        bars.setdefault("t", []).append(np.full(len(act), d))
        bars.setdefault("i", []).append(act)
    lat = cfg.micro.latency_ns
    q_ts, t_ts = _concat(cols["q_ts"], np.int64), _concat(cols["t_ts"], np.int64)
    names = params.names
    quotes = pd.DataFrame({
        "ts": _utc(q_ts), "available_at": _utc(q_ts + lat),
        "symbol": _symbols(_concat(cols["q_sym"], np.int64), names),
        **{c: _concat(cols[c], np.float64) for c in ("bid_px", "bid_sz", "ask_px", "ask_sz")},
    })
    trades = pd.DataFrame({
        "ts": _utc(t_ts), "available_at": _utc(t_ts + lat),
        "symbol": _symbols(_concat(cols["t_sym"], np.int64), names),
        "px": _concat(cols["t_px"], np.float64), "qty": _concat(cols["t_qty"], np.float64),
        "aggressor": _concat(cols["t_aggr"], np.int64),
    })
    flat = {k: np.concatenate(b) for k, b in bars.items()}
    return quotes, trades, flat, fw


def _truth(cfg, sessions, params, first, last, reasons, states, sigma, flash_idx, crisis,
           fw: FlashWindow | None) -> GroundTruth:
    dates = [d.date() for d in sessions.dates]
    adv = expected_daily_volume(cfg, params)
    symbols = tuple(
        SymbolTruth(
            symbol=str(params.names[i]), is_reference=(i == 0), price=float(params.price[i]),
            daily_vol=float(params.daily_vol[i]), spread_bps=float(params.spread_bps[i]),
            trades_per_min=float(params.trades_per_min[i]),
            mean_trade_size=float(params.mean_trade_size[i]), depth_lots=float(params.depth_lots[i]),
            adv_shares=float(adv[i]), first_session=dates[first[i]], last_session=dates[last[i]],
            exit_reason=reasons[i],
            daily_vol_path=tuple(float(x) for x in sigma[i, first[i]: last[i] + 1]))
        for i in range(cfg.n_symbols))
    flash = None
    if flash_idx is not None:
        s = cfg.scenarios
        if fw is None:  # daily-only: nominal window at the configured time
            start = pd.Timestamp(dt.datetime.combine(dates[flash_idx], s.flash.start),
                                 tz="America/New_York").tz_convert("UTC")
            win_ns = int(s.flash.minutes * 60e9)
            fw = FlashWindow(0, 0, start.value, start.value + int(s.flash.trough_at * win_ns),
                             start.value + win_ns)
        inst = [pd.Timestamp(x, tz="UTC").to_pydatetime() for x in (fw.start_ns, fw.trough_ns, fw.end_ns)]
        flash = FlashCrashTruth(
            session=dates[flash_idx], start=inst[0], trough=inst[1], end=inst[2], event=s.flash)
    return GroundTruth(
        config=cfg, sessions=tuple(dates),
        regime_path=tuple(cfg.regimes.names[s] for s in states),
        symbols=symbols, flash_crash=flash, crisis_week=tuple(dates[i] for i in crisis),
        impact=cfg.impact)


def write_market(market: SyntheticMarket, out_dir: str | Path) -> dict[str, Path]:
    """Write each table as ``<name>.parquet`` and the truth as ``ground_truth.json`` in ``out_dir``.

    Returns
    -------
    dict of str to Path
        The written files, by table name (and ``"ground_truth"``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in ("quotes", "trades", "daily_bars", "membership"):
        paths[name] = out / f"{name}.parquet"
        getattr(market, name).to_parquet(paths[name], index=False)
    paths["ground_truth"] = out / "ground_truth.json"
    paths["ground_truth"].write_text(market.truth.to_json())
    json.loads(paths["ground_truth"].read_text())  # fail here, not downstream, if it is not JSON
    return paths
