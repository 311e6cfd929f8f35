"""The stress scenarios (REFERENCES.md §5 templates as FlashEvent windows, halts, gaps and crisis
sessions), the synthetic markets they generate and their stress windows, and the desk that
trades them (:func:`stress_desk`, :func:`desk_features`). Re-exported by :mod:`validation.stress`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.desk_history import (
    PLAN_COLUMNS,
    DeskHistory,
    DeskHistoryConfig,
    simulate_desk_history,
)
from models.features import FeatureConfig, point_in_time_features
from models.risk_controls import RiskLimits
from models.synthetic_market import (
    FlashEvent,
    HaltConfig,
    RegimeConfig,
    ScenarioConfig,
    SyntheticMarket,
    SyntheticMarketConfig,
    generate_market,
)
from models.tca import compute_tca
from validation.contracts import empty

NY: Final = "America/New_York"
Z80: Final = 1.2815515655446004  # the 90% normal quantile: +-Z80 sd holds 80%
MIN_HISTORY_SESSIONS: Final = 3  # the desk trades from the 4th session on
ORDER_COLUMNS: Final = ("order_id", "symbol", "side", "qty", "decision_ts", "end_ts", "strategy")
QUOTE_COLUMNS: Final = ("ts", "available_at", "symbol", "bid_px", "bid_sz", "ask_px", "ask_sz")
TRADE_COLUMNS: Final = ("ts", "available_at", "symbol", "px", "qty", "aggressor")
CALIBRATION_COLUMNS: Final = ("scenario", "kind", "n", "bias_bps", "bias_se_bps", "noise_sd_bps",
                              "coverage_80", "mae", "n_normal", "bias_normal_bps",
                              "coverage_80_normal", "outside_domain", "outside_features",
                              "note")
SCHEDULE_COLUMNS: Final = ("scenario", "sessions", "strategy", "n", "mean_cost_bps",
                           "minus_twap_bps", "se_bps", "truth_minus_twap_bps")
RISK_COLUMNS: Final = ("scenario", "engine", "mode", "reason", "limit", "fired_stressed", "fired_normal",
                       "fired_event", "children_stressed", "children_normal", "children_event",
                       "rate_stressed", "rate_normal")
SUMMARY_COLUMNS: Final = ("scenario", "kind", "n_stressed", "n_normal", "cost_stressed_bps",
                          "cost_stressed_se_bps", "cost_normal_bps", "spread_stressed_bps",
                          "spread_normal_bps", "note")
Predict = Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray, np.ndarray]]
Domain = Callable[[pd.DataFrame], Sequence[str]]
"""``domain(features) -> one str per row``: the comma-separated features outside the model's
training domain ('' inside), e.g. :meth:`models.cost_models.CostModelBundle.outside_domain`."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# =========================================================================== scenarios
StressEvent = FlashEvent
"""A scenario's intraday window: the generator's flash-crash mechanism itself
(:class:`models.synthetic_market.FlashEvent`, neutral defaults), passed through unchanged."""


class StressHalt(_Frozen):
    """A halt in the last session: no quote or trade prints for ``minutes`` from ``start`` (New
    York time) for ``symbols`` (indices; ``None`` = market-wide)."""

    start: dt.time
    minutes: float = Field(gt=0.0, le=390.0)
    symbols: tuple[int, ...] | None = None


class StressScenario(_Frozen):
    """One stress scenario: where it comes from and how it overrides the calm synthetic market.

    Parameters
    ----------
    name, description : str
    source : str
        The REFERENCES.md §5 row (or data) it derives from.
    crisis_sessions : int, default=0
        The last ``crisis_sessions`` sessions are forced into the crisis regime, whose daily
        volatility, quoted spread and trade rate are ``vol_mult, spread_mult, volume_mult``
        times the calm ones. The other sessions are calm (the regime chain is switched off).
    event : StressEvent, optional
        An intraday window in the last session.
    gap_return : float, optional
        Market-wide overnight gap at the last session's open (simple return).
    halts : tuple of StressHalt
        Halts in the last session.

    The **stressed sessions** are the last ``max(crisis_sessions, 1)`` sessions.
    """

    name: str = Field(min_length=1)
    description: str
    source: str
    crisis_sessions: int = Field(default=0, ge=0)
    vol_mult: float = Field(default=1.0, gt=0.0)
    spread_mult: float = Field(default=1.0, gt=0.0)
    volume_mult: float = Field(default=1.0, gt=0.0)
    event: StressEvent | None = None
    gap_return: float | None = Field(default=None, gt=-0.9, lt=1.0)
    halts: tuple[StressHalt, ...] = ()

    @property
    def n_stressed(self) -> int:
        """Number of stressed sessions at the end of the sample."""
        return max(self.crisis_sessions, 1)


_T = dt.time
SCENARIOS: Final[dict[str, StressScenario]] = {
    "crisis_2008": StressScenario(
        name="crisis_2008",
        description="Crisis weeks of Oct 2008: five sessions at 4x volatility, 2x spreads, "
        "3x volume.",
        source="REFERENCES §5 '2008 Lehman / Oct 2008' (1-month realized vol 70-80% vs 15-20%; "
        "suggested multipliers: vol x3-5, spread x2, volume x2-4)",
        crisis_sessions=5, vol_mult=4.0, spread_mult=2.0, volume_mult=3.0),
    "flash_crash_2010": StressScenario(
        name="flash_crash_2010",
        description="Flash crash in the last session: 20 minutes from 14:32 at 15x 1-minute "
        "volatility, 20x spreads, 5% of the depth, 5x trades; -7% by 14:45, 80% recovered.",
        source="REFERENCES §5 '2010-05-06 Flash Crash' (sale from 2:32 over ~20 min, DJIA "
        "about -9% intraday then a rebound, E-mini depth <1%; flash events x10-20 vol for "
        "5-20 min, spreads x5-50, depth x0.01-0.2)",
        event=StressEvent(start=_T(14, 32), minutes=20.0, vol_mult=15.0, spread_mult=20.0,
                          depth_mult=0.05, volume_mult=5.0, drop=0.07, trough_at=0.65,
                          rebound=0.8)),
    "gap_open_2015_08_24": StressScenario(
        name="gap_open_2015_08_24",
        description="Gap open: -5% overnight; 09:30-09:45 at 5x volatility, 5x spreads, 20% "
        "of the depth, 6x volume, a further -2.7% by 09:35 (half recovered); clustered 5-minute "
        "LULD halts; the day at 2x vol, 1.5x spreads, 2x volume.",
        source="REFERENCES §5 '2015-08-24' (E-mini limit-down 5% pre-open, SPY open -5.2% and "
        "low -7.8% by 9:35, 1,278 LULD halts, first-15-min volume +400%, wider spreads and "
        "less depth; gaps -5%, opening volume x5-8, 5-min LULD pauses)",
        crisis_sessions=1, vol_mult=2.0, spread_mult=1.5, volume_mult=2.0,
        event=StressEvent(start=_T(9, 30), minutes=15.0, vol_mult=5.0, spread_mult=5.0,
                          depth_mult=0.2, volume_mult=6.0, drop=0.027, trough_at=1 / 3,
                          rebound=0.5),
        gap_return=-0.05,
        halts=(StressHalt(start=_T(9, 35), minutes=5.0, symbols=(1, 3)),
               StressHalt(start=_T(9, 42), minutes=5.0, symbols=(0, 2)),
               StressHalt(start=_T(9, 50), minutes=5.0, symbols=(1,)))),
    "covid_2020": StressScenario(
        name="covid_2020",
        description="COVID March 2020: five crisis sessions (4x vol, 2x spreads, 2.5x volume); "
        "the last opens -5%, falls to -7% by 09:34 and halts market-wide for 15 minutes.",
        source="REFERENCES §5 '2020-03 COVID' (Level-1 -7% halts on Mar 9 at 9:34, Mar 12, 16, "
        "18; volumes 2-3x, spreads about doubled; 15-min market-wide halt at -7%)",
        crisis_sessions=5, vol_mult=4.0, spread_mult=2.0, volume_mult=2.5,
        event=StressEvent(start=_T(9, 30), minutes=5.0, vol_mult=3.0, spread_mult=5.0,
                          depth_mult=0.2, volume_mult=3.0, drop=0.021, trough_at=0.8,
                          rebound=0.0),
        gap_return=-0.05,
        halts=(StressHalt(start=_T(9, 34), minutes=15.0),)),
}
"""The scenario library (REFERENCES.md §5)."""

CALM: Final = StressScenario(
    name="calm", description="No stress: the placebo (its 'stressed' session is a calm one).",
    source="none (control)")
"""A control scenario: the same market without stress."""


def market_config(scenario: StressScenario, *, n_symbols: int = 4, n_sessions: int = 12,
                  seed: int = 0, quote_interval_s: float = 5.0) -> SyntheticMarketConfig:
    """The :class:`SyntheticMarketConfig` of ``scenario``: calm sessions, then the stress.

    No listings or delistings (every symbol trades every session); the regime chain stays calm
    except in the forced crisis sessions.

    Raises
    ------
    ValueError
        When ``n_sessions`` leaves fewer than two calm sessions with history for the desk.
    """
    k = scenario.n_stressed
    if n_sessions < k + MIN_HISTORY_SESSIONS + 2:
        raise ValueError(f"scenario {scenario.name!r} stresses the last {k} sessions; "
                         f"`n_sessions={n_sessions}` must be >= {k + MIN_HISTORY_SESSIONS + 2} "
                         f"({MIN_HISTORY_SESSIONS} history sessions and 2 calm trading ones)")
    last = (n_sessions - 0.5) / n_sessions  # floor(last * n) == n - 1
    eye = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    calm = RegimeConfig()
    regimes = RegimeConfig(
        transition=eye,
        vol_mult=(*calm.vol_mult[:2], scenario.vol_mult),
        spread_mult=(*calm.spread_mult[:2], scenario.spread_mult),
        volume_mult=(*calm.volume_mult[:2], scenario.volume_mult))
    sc: dict[str, object] = {"flash_crash_at": None, "crisis_week_at": None}
    if scenario.crisis_sessions:
        c = scenario.crisis_sessions
        sc |= {"crisis_week_at": (n_sessions - c + 0.5) / n_sessions, "crisis_week_sessions": c}
    e = scenario.event
    if e is not None:
        sc |= {"flash_crash_at": last, "flash": e}
    if scenario.gap_return is not None:
        sc |= {"gap_at": last, "gap_return": scenario.gap_return}
    sc["halts"] = tuple(HaltConfig(at=last, start=h.start, minutes=h.minutes, symbols=h.symbols)
                        for h in scenario.halts)
    return SyntheticMarketConfig(
        n_symbols=n_symbols, n_sessions=n_sessions, seed=seed,
        micro={"quote_interval_s": quote_interval_s}, regimes=regimes,
        membership={"n_listings": 0, "n_delistings": 0}, scenarios=ScenarioConfig(**sc))


def stress_market(scenario: StressScenario, *, n_symbols: int = 4, n_sessions: int = 12,
                  seed: int = 0, quote_interval_s: float = 5.0) -> SyntheticMarket:
    """``generate_market(market_config(scenario, ...))``: calm sessions, then the stress."""
    return generate_market(market_config(scenario, n_symbols=n_symbols, n_sessions=n_sessions,
                                         seed=seed, quote_interval_s=quote_interval_s))


def stressed_sessions(scenario: StressScenario, market: SyntheticMarket) -> list[dt.date]:
    """The dates of the stressed sessions (the last ``scenario.n_stressed``)."""
    return list(market.truth.sessions[-scenario.n_stressed:])


def stress_windows(scenario: StressScenario, market: SyntheticMarket) -> pd.DataFrame:
    """The intraday stress windows: ``kind`` (``event`` / ``halt``), ``symbol`` (``*`` = all),
    ``start``, ``end`` (UTC, end exclusive)."""
    rows = []
    fc = market.truth.flash_crash
    if scenario.event is not None and fc is not None:
        rows.append({"kind": "event", "symbol": "*", "start": pd.Timestamp(fc.start),
                     "end": pd.Timestamp(fc.end)})
    names = [s.symbol for s in market.truth.symbols]
    day = market.truth.sessions[-1]
    for h in scenario.halts:
        start = pd.Timestamp(dt.datetime.combine(day, h.start), tz=NY).tz_convert("UTC")
        end = start + pd.Timedelta(minutes=h.minutes)
        syms = ["*"] if h.symbols is None else [names[i] for i in h.symbols if i < len(names)]
        rows += [{"kind": "halt", "symbol": s, "start": start, "end": end} for s in syms]
    out = pd.DataFrame(rows, columns=["kind", "symbol", "start", "end"])
    for c in ("start", "end"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return out


def _in_windows(windows: pd.DataFrame, symbol: np.ndarray, ts: pd.Series,
                kind: str | None = None) -> np.ndarray:
    t = pd.to_datetime(ts, utc=True).dt.as_unit("ns").array.asi8
    sym = np.asarray(symbol).astype(str)
    out = np.zeros(len(t), bool)
    for w in windows.itertuples():
        if kind is not None and w.kind != kind:
            continue
        hit = (t >= w.start.value) & (t < w.end.value)
        out |= hit if w.symbol == "*" else hit & (sym == w.symbol)
    return out


# =========================================================================== desk
def _desk_config(n_orders: int, seed: int) -> DeskHistoryConfig:
    return DeskHistoryConfig(n_orders=n_orders, seed=seed,
                             min_history_sessions=MIN_HISTORY_SESSIONS)


def _session(ts: pd.Series) -> np.ndarray:
    """New York session date of each timestamp (``datetime.date``)."""
    return pd.to_datetime(ts, utc=True).dt.tz_convert(NY).dt.date.to_numpy()


def desk_features(market, history: DeskHistory, stressed: list[dt.date] | None = None,
                  *, config: FeatureConfig | None = None,
                  parametric: bool = True) -> pd.DataFrame:
    """Features of the desk's orders as the training pipeline builds them, plus ``strategy``,
    ``session`` (New York date) and ``stressed`` (session in ``stressed``).

    :func:`models.features.build_features` of ``parent_orders[[order_id, symbol, side, qty,
    decision_ts, end_ts, strategy, *PLAN_COLUMNS]]`` on the market's quotes, trades and daily
    bars (``market.daily_bars`` may be None: no daily history). With ``parametric`` the
    square-root and ATHL estimates are refit each day on the TCA labels
    (:func:`models.tca.compute_tca`) known by then, as ``assets.learning.synth_features`` does:
    two passes, point in time, so a stressed day's estimates come from the days before it.
    """
    po = history.parent_orders
    daily = getattr(market, "daily_bars", None)
    if daily is None:
        daily = empty("daily_bars")
    orders = po[[*ORDER_COLUMNS, *PLAN_COLUMNS]]
    labels = None
    if parametric and len(history.child_fills):
        labels = compute_tca(po[[*ORDER_COLUMNS]], history.child_fills, market.quotes,
                             trades=market.trades).labels
    feats = point_in_time_features(orders, quotes=market.quotes, trades=market.trades,
                                   daily_bars=daily, labels=labels, config=config)
    feats["strategy"] = po["strategy"].astype(str).to_numpy()
    feats["session"] = _session(po["decision_ts"])
    feats["stressed"] = np.isin(feats["session"], np.asarray(stressed or [], dtype=object))
    return feats


def stress_desk(scenario: StressScenario, *, n_orders: int = 2000, seed: int = 0,
                limits: RiskLimits | None = None, market: SyntheticMarket | None = None,
                n_symbols: int = 4, n_sessions: int = 12
                ) -> tuple[SyntheticMarket, DeskHistory, pd.DataFrame]:
    """The synthetic desk on the scenario's market: ``(market, history, features)``.

    ``n_orders`` parent orders (:class:`models.desk_history.DeskHistoryConfig`, seed ``seed``,
    trading from the 4th session) executed with ``limits``; the features
    (:func:`desk_features`) are flagged ``stressed`` on the scenario's stressed sessions.
    ``market`` reuses a market built by :func:`stress_market` (else one is built with ``seed``).
    """
    m = market if market is not None else stress_market(
        scenario, n_symbols=n_symbols, n_sessions=n_sessions, seed=seed)
    hist = simulate_desk_history(m, _desk_config(n_orders, seed), limits=limits)
    return m, hist, desk_features(m, hist, stressed_sessions(scenario, m))
