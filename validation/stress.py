"""Stress tests: a scenario library from REFERENCES.md §5, scored on the synthetic and real markets.

Each :class:`StressScenario` is a small synthetic market (``generate_market``, 4 symbols x 12
sessions by default) whose **last** sessions carry the stress, so a desk history on it has calm
days first. :func:`run_stress_suite` builds the desk on every scenario and scores

* the cost model's **calibration** on the stressed orders: bias (realized minus predicted),
  coverage of the 80% band, MAE, against the realized ``shortfall_bps`` of the desk; the cost
  model is not trained here, callers pass ``predict(features) -> (mean, lo, hi)``;
* the **schedules** against TWAP: mean cost of each strategy minus the TWAP mean, with its
  standard error (Welch), on the stressed and on the calm sessions;
* the **risk controls**: the same desk's children run again with
  :class:`models.risk_controls.RiskLimits` (resolved by :class:`StressLimits` from the calm
  sessions: no look-ahead), rejections by reason in the stressed and the calm sessions and inside
  the stress windows (flash crash, opening event, halts); mode ``all`` runs every limit together
  (a child is charged to the first control that fires: kill switch, size, participation, collar,
  order loss, daily loss, so an early control hides the later ones), mode ``alone`` each control
  by itself (where it would fire were it the only one).

and, when their cleansed books are given (``books``, ingested by the ``assets`` layer), the real episodes: a TWAP
desk replayed on the BitMEX XBTUSD book of 2020-03-10 and on the LOBSTER AMZN book of 2012-06-21
(costs, spread, controls, and calibration where the predictor returns finite values on the real
features), and the S&P 500 days with ``|return| >= 5%`` (:func:`index_stress_days`), whose median
volatility multiplier parameterizes a synthetic scenario, ``index_stress_days``.

The scenarios (multipliers are REFERENCES.md §5's suggested design defaults, not facts)
--------------------------------------------------------------------------------------
============================  =================================================================
``crisis_2008``               last 5 sessions in the crisis regime: vol x4, spread x2, volume x3
``flash_crash_2010``          last session 14:32-14:52 NY: vol x15, spread x20, depth x0.05,
                              trade rate x5, mid -7% at 14:45 then 80% rebound
``gap_open_2015_08_24``       last session: overnight gap -5%, 09:30-09:45 vol x5, spread x5,
                              depth x0.2, volume x6, a further -2.7% by 09:35 (half recovered);
                              5-minute LULD halts 09:35, 09:42, 09:50 (clustered, by symbol);
                              the whole day vol x2, spread x1.5, volume x2
``covid_2020``                last 5 sessions crisis: vol x4, spread x2, volume x2.5; last
                              session: gap -5%, a further -2.1% by 09:34 (-7% from the close),
                              then a 15-minute market-wide halt 09:34-09:49
``index_stress_days``         (with data) last 3 sessions crisis with vol x the median of
                              ``|r| / sigma_20`` over the S&P days with ``|r| >= 5%``
============================  =================================================================

The gap and the halts use :class:`models.synthetic_market.ScenarioConfig` ``gap_at``,
``gap_return`` and ``halts``; intraday windows reuse its flash-crash mechanism.

Simulator caveats (read the numbers with them)
----------------------------------------------
On the synthetic desk (engine ``simulator``, :func:`models.desk_history.simulate_desk_history`)
a child's price collar sees the spread quoted at its parent's decision and the loss limits see the
deterministic fill prices (the market path is laid on afterwards), so only orders decided inside a
window see it. Engine ``book_replay`` replays the same children on the scenario's own L1 quotes
(:func:`models.simulator.replay_l1`): the collar sees the live spread and the loss limits the live
prices (the crash itself). Neither engine knows about halts: children sent into a halt are counted
by the ``venue / halted_market`` row (not enforced), and the replay fills them on the last quote.
Loss limits are in currency (one scalar for every order, as :class:`RiskLimits` has them), so the
order-loss limit speaks for the largest orders: a 7% crash on a small order does not reach it.
Participation is measured against the symbol's true calm ADV in both engines, so it does not see
the crisis volume.

Examples
--------
>>> from validation.stress import SCENARIOS, stress_desk
>>> m, hist, feats = stress_desk(SCENARIOS["flash_crash_2010"], n_orders=300)  # doctest: +SKIP
>>> feats.groupby("stressed")["arrival_spread_bps"].mean()  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Final, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.desk_history import (
    AMZN_2012,
    DESK_FEES,
    PLAN_COLUMNS,
    DeskHistory,
    DeskHistoryConfig,
    RecordedBook,
    execute_on_market,
    plan_summary,
    replay_desk_history,
    simulate_desk_history,
)
from models.features import FeatureConfig, impact_shapes, point_in_time_features
from models.risk_controls import REASONS, RiskLimits
from models.simulator import Children, FeeSchedule, Parents, SimulatorConfig, replay_l1
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

__all__ = [
    "CALM",
    "EPISODE_SYMBOLS",
    "SCENARIOS",
    "EpisodeBook",
    "StressEvent",
    "StressHalt",
    "StressLimits",
    "StressResult",
    "StressScenario",
    "desk_features",
    "index_stress_days",
    "index_stress_scenario",
    "market_config",
    "plot",
    "run_stress_suite",
    "score_calibration",
    "stress_desk",
    "stress_market",
    "stress_windows",
    "stressed_sessions",
]

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


# =========================================================================== scoring
def score_calibration(pred_mean, band_lo, band_hi, realized, noise_sd) -> dict[str, float]:
    """Calibration of cost predictions against realized costs (bps).

    Rows where the prediction, the band or the realized cost is not finite are left out.

    Returns
    -------
    dict
        ``n``; ``bias_bps`` = mean(realized - predicted) (> 0: costs under-predicted) and its
        standard error ``bias_se_bps``; ``noise_sd_bps`` = mean of ``noise_sd`` (the irreducible
        timing noise: a bias is large only against it); ``coverage_80`` = share of realized costs
        inside ``[band_lo, band_hi]``; ``mae`` = mean |realized - predicted|.
    """
    p, lo, hi, y, sd = (np.asarray(a, np.float64).ravel() for a in
                        (pred_mean, band_lo, band_hi, realized, noise_sd))
    ok = np.isfinite(p) & np.isfinite(lo) & np.isfinite(hi) & np.isfinite(y)
    n = int(ok.sum())
    if n == 0:
        return {"n": 0, "bias_bps": np.nan, "bias_se_bps": np.nan, "noise_sd_bps": np.nan,
                "coverage_80": np.nan, "mae": np.nan}
    e = y[ok] - p[ok]
    s = sd[ok][np.isfinite(sd[ok])]
    return {"n": n, "bias_bps": float(e.mean()),
            "bias_se_bps": float(e.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan,
            "noise_sd_bps": float(s.mean()) if s.size else np.nan,
            "coverage_80": float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok]))),
            "mae": float(np.abs(e).mean())}


def _predict(predict: Predict, feats: pd.DataFrame) -> tuple[np.ndarray, ...]:
    mean, lo, hi = predict(feats)
    out = tuple(np.asarray(a, np.float64).ravel() for a in (mean, lo, hi))
    if any(len(a) != len(feats) for a in out):
        raise ValueError(f"predict returned arrays of lengths {[len(a) for a in out]} for "
                         f"{len(feats)} feature rows")
    return out


def _calibration_row(name: str, kind: str, feats: pd.DataFrame, realized: np.ndarray,
                     pred: tuple[np.ndarray, ...], note: str = "",
                     domain: Domain | None = None) -> dict:
    st = feats["stressed"].to_numpy(bool)
    sd = feats["timing_risk_bps"].to_numpy(np.float64)
    s = score_calibration(*(a[st] for a in pred), realized[st], sd[st])
    c = score_calibration(*(a[~st] for a in pred), realized[~st], sd[~st])
    if not note and s["n"] == 0:
        note = "not scored: no finite prediction on the stressed orders"
    return {"scenario": name, "kind": kind, **s, "n_normal": c["n"],
            "bias_normal_bps": c["bias_bps"], "coverage_80_normal": c["coverage_80"],
            **_domain_summary(domain, feats[st]), "note": note}


def _domain_summary(domain: Domain | None, feats: pd.DataFrame) -> dict:
    """Share of ``feats`` rows with a feature outside the training domain, and the features
    most often outside (``adv 100%, time_of_day 98%``); NaN / '' without ``domain``."""
    if domain is None or not len(feats):
        return {"outside_domain": np.nan, "outside_features": ""}
    flags = [str(f) for f in domain(feats)]
    counts: dict[str, int] = {}
    for f in flags:
        for name in filter(None, f.split(",")):
            counts[name] = counts.get(name, 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return {"outside_domain": float(np.mean([bool(f) for f in flags])),
            "outside_features": ", ".join(f"{k} {v / len(flags):.0%}" for k, v in top)}


def _not_scored(name: str, kind: str, reason: str) -> dict:
    return {"scenario": name, "kind": kind, "n": 0, "bias_bps": np.nan, "bias_se_bps": np.nan,
            "noise_sd_bps": np.nan, "coverage_80": np.nan, "mae": np.nan, "n_normal": 0,
            "bias_normal_bps": np.nan, "coverage_80_normal": np.nan, "outside_domain": np.nan,
            "outside_features": "", "note": f"not scored: {reason}"}


def _schedule_rows(name: str, strategy: np.ndarray, cost: np.ndarray, truth: np.ndarray,
                   stressed: np.ndarray) -> list[dict]:
    rows = []
    for label, mask in (("stressed", stressed), ("normal", ~stressed)):
        ok = mask & np.isfinite(cost)
        if not ok.any():
            continue
        tw = ok & (strategy == "twap")
        tw_mean = cost[tw].mean() if tw.any() else np.nan
        tw_var = cost[tw].var(ddof=1) / tw.sum() if tw.sum() > 1 else np.nan
        tw_truth = np.nanmean(truth[tw]) if tw.any() and np.isfinite(truth[tw]).any() else np.nan
        for s in sorted(set(strategy[ok])):
            k = ok & (strategy == s)
            n = int(k.sum())
            m = float(cost[k].mean())
            var = cost[k].var(ddof=1) / n if n > 1 else np.nan
            tr = truth[k]
            rows.append({
                "scenario": name, "sessions": label, "strategy": s, "n": n, "mean_cost_bps": m,
                "minus_twap_bps": 0.0 if s == "twap" else m - tw_mean,
                "se_bps": float(np.sqrt(var)) if s == "twap" else float(np.sqrt(var + tw_var)),
                "truth_minus_twap_bps": (float(np.nanmean(tr) - tw_truth)
                                         if np.isfinite(tr).any() else np.nan)})
    return rows


# =========================================================================== risk controls
class StressLimits(_Frozen):
    """Risk limits in units that carry across markets; :meth:`resolve` gives the RiskLimits.

    Loss limits are set the way a desk sets them, from its calm history (the sessions before the
    stress, so no look-ahead): ``order_loss_limit`` is the ``order_loss_quantile`` of the calm
    orders' realized loss (currency: ``shortfall_bps * arrival_mid * filled_qty``) and
    ``daily_loss_limit`` ``daily_loss_mult`` times the worst calm session's total. Without a
    calm history (the real episodes) the loss limits are off.

    Parameters
    ----------
    max_participation : float or None, default=1.0
        Child over its slot's market volume.
    price_collar_bps : float or None, default=50
        About 8x a calm half-spread (6-8 bps quoted): crossed only by a spread blown out
        (x5-50 at the worst instants, §5) or a child walking far beyond the touch.
    order_loss_quantile : float or None, default=0.99
    daily_loss_mult : float or None, default=1.5
    """

    max_participation: float | None = Field(default=1.0, gt=0.0)
    price_collar_bps: float | None = Field(default=50.0, gt=0.0)
    order_loss_quantile: float | None = Field(default=0.99, gt=0.0, lt=1.0)
    daily_loss_mult: float | None = Field(default=1.5, gt=0.0)

    def resolve(self, history: DeskHistory | None = None,
                calm: np.ndarray | None = None) -> RiskLimits:
        """The :class:`RiskLimits`; loss limits from ``history``'s orders where ``calm``."""
        kw: dict[str, float | None] = {"max_participation": self.max_participation,
                                       "price_collar_bps": self.price_collar_bps}
        if history is not None and calm is not None and np.any(calm):
            o = history.outcomes.set_index(history.outcomes["order_id"].astype(str))
            po = history.parent_orders
            o = o.loc[po["order_id"].astype(str)]
            loss = np.nan_to_num(o["shortfall_bps"].to_numpy() * 1e-4
                                 * o["arrival_mid"].to_numpy() * o["filled_qty"].to_numpy())
            calm = np.asarray(calm, bool)
            if self.order_loss_quantile is not None:
                kw["order_loss_limit"] = float(max(np.quantile(loss[calm],
                                                               self.order_loss_quantile), 0.0))
            if self.daily_loss_mult is not None:
                day = pd.Series(loss[calm]).groupby(_session(po["decision_ts"])[calm]).sum()
                worst = float(day.max())
                kw["daily_loss_limit"] = self.daily_loss_mult * worst if worst > 0 else None
        return RiskLimits(**kw)


_LIMIT_FIELD: Final = {"kill_switch": "kill_switch", "max_child_size": "max_child_qty",
                       "max_participation": "max_participation",
                       "price_collar": "price_collar_bps", "order_loss_limit": "order_loss_limit",
                       "daily_loss_limit": "daily_loss_limit"}


def _limit_value(limits: RiskLimits, reason: str) -> float:
    v = getattr(limits, _LIMIT_FIELD[reason])
    return np.nan if v is None or v is False else float(v)


def _children(child_orders: pd.DataFrame, orders: pd.DataFrame) -> Children:
    pi = pd.Index(orders["order_id"].astype(str)).get_indexer(child_orders["order_id"].astype(str))
    return Children(parent_idx=pi, decision_ns=child_orders["decision_ts"].dt.as_unit("ns")
                    .array.asi8, qty=child_orders["qty"].to_numpy(),
                    side=child_orders["side"].to_numpy(), kind=child_orders["kind"].to_numpy(),
                    limit_offset_bps=np.full(len(child_orders), np.nan))


def _replay_rejections(quotes: pd.DataFrame, orders: pd.DataFrame, child_orders: pd.DataFrame,
                       sim: SimulatorConfig, limits: RiskLimits, *, sigma: str,
                       adv: str) -> pd.DataFrame:
    """Replay the children on the L1 ``quotes`` with ``limits``; the rejections frame."""
    codes, names = pd.factorize(orders["symbol"].astype(str), sort=True)
    par = Parents(symbol_idx=codes, arrival_mid=orders["arrival_mid"].to_numpy(),
                  sigma_daily=orders[sigma].to_numpy(), adv=orders[adv].to_numpy(),
                  spread_bps=orders["arrival_spread_bps"].to_numpy(),
                  shares_outstanding=orders["shares_outstanding"].to_numpy(),
                  start_ns=orders["decision_ts"].dt.as_unit("ns").array.asi8,
                  end_ns=orders["end_ts"].dt.as_unit("ns").array.asi8,
                  order_id=orders["order_id"].to_numpy())
    book = quotes[[*QUOTE_COLUMNS]][quotes["symbol"].astype(str).isin(list(names))]
    res = replay_l1(book, par, _children(child_orders, orders), sim, limits=limits,
                    symbols=[str(s) for s in names])
    return res.rejections()


def _alone(limits: RiskLimits) -> list[tuple[str, RiskLimits]]:
    """One RiskLimits per active control, with only that control on."""
    return [(r, RiskLimits(**{_LIMIT_FIELD[r]: getattr(limits, _LIMIT_FIELD[r])}))
            for r in REASONS[1:] if np.isfinite(_limit_value(limits, r))]


def _control_rows(name: str, engines: Mapping[str, Callable[[RiskLimits], pd.DataFrame]],
                  limits: RiskLimits, child_orders: pd.DataFrame, order_stressed: pd.Series,
                  windows: pd.DataFrame, order_symbol: pd.Series,
                  kind: Literal["synthetic", "real"] = "synthetic",
                  episode_stressed: bool = True) -> list[dict]:
    """Every engine run with all ``limits`` together (mode ``all``) and with each control
    alone (mode ``alone``: where it would fire were it the only one; in ``all`` an earlier
    control may take the child first: kill switch, size, participation, collar, order loss,
    daily loss)."""
    rows = []
    kw = {"child_orders": child_orders, "order_stressed": order_stressed, "windows": windows,
          "order_symbol": order_symbol, "kind": kind, "episode_stressed": episode_stressed}
    for engine, run in engines.items():
        rows += _risk_rows(name, engine, run(limits), limits, mode="all", **kw)
        for reason, one in _alone(limits):
            rows += [r for r in _risk_rows(name, engine, run(one), one, mode="alone", **kw)
                     if r["reason"] == reason]
    return rows


def _risk_rows(name: str, engine: str, rejections: pd.DataFrame, limits: RiskLimits, *,
               mode: str, child_orders: pd.DataFrame, order_stressed: pd.Series,
               windows: pd.DataFrame, order_symbol: pd.Series,
               kind: Literal["synthetic", "real"] = "synthetic",
               episode_stressed: bool = True) -> list[dict]:
    """Rejections by reason in the stressed / normal sessions and inside the stress windows."""
    cid = child_orders["order_id"].astype(str)
    c_st = order_stressed.reindex(cid).to_numpy(bool)
    c_ev = _in_windows(windows, order_symbol.reindex(cid).to_numpy(), child_orders["decision_ts"])
    rid = rejections["order_id"].astype(str)
    r_st = order_stressed.reindex(rid).to_numpy(bool)
    r_ev = _in_windows(windows, order_symbol.reindex(rid).to_numpy(), rejections["ts"])
    reason = rejections["reason"].astype(str).to_numpy()
    rows = []
    for r in REASONS[1:]:
        lim = _limit_value(limits, r)
        if np.isnan(lim):
            continue
        k = reason == r
        row = {"scenario": name, "engine": engine, "mode": mode, "reason": r, "limit": lim,
               "fired_stressed": int((k & r_st).sum()), "fired_normal": int((k & ~r_st).sum()),
               "fired_event": int((k & r_ev).sum()), "children_stressed": int(c_st.sum()),
               "children_normal": int((~c_st).sum()), "children_event": int(c_ev.sum())}
        if kind == "real":  # one episode: all of it is stressed, or all of it is normal
            tot, n = int(k.sum()), len(cid)
            row |= {"fired_stressed": tot if episode_stressed else np.nan,
                    "fired_normal": np.nan if episode_stressed else tot,
                    "children_stressed": n if episode_stressed else 0,
                    "children_normal": 0 if episode_stressed else n}
        rows.append(row)
    return rows


def _halt_rows(name: str, child_orders: pd.DataFrame, order_stressed: pd.Series,
               order_symbol: pd.Series, windows: pd.DataFrame) -> list[dict]:
    """Children sent while their symbol is halted (a venue state; the simulators fill them)."""
    if not (windows["kind"] == "halt").any():
        return []
    cid = child_orders["order_id"].astype(str)
    c_st = order_stressed.reindex(cid).to_numpy(bool)
    hit = _in_windows(windows, order_symbol.reindex(cid).to_numpy(), child_orders["decision_ts"],
                      kind="halt")
    return [{"scenario": name, "engine": "venue", "mode": "all", "reason": "halted_market",
             "limit": np.nan,
             "fired_stressed": int((hit & c_st).sum()), "fired_normal": int((hit & ~c_st).sum()),
             "fired_event": int(hit.sum()), "children_stressed": int(c_st.sum()),
             "children_normal": int((~c_st).sum()),
             "children_event": int(_in_windows(windows, order_symbol.reindex(cid).to_numpy(),
                                               child_orders["decision_ts"]).sum())}]


# =========================================================================== real data
BITMEX_2020: Final = {"adv": 3.0e9, "sigma_daily": 0.05, "shares_outstanding": 1.4e11}
"""Desk estimates for XBTUSD before 2020-03-10, per 24 hours (contracts of 1 USD): ADV about
$3 bn, daily volatility 5%, 'shares outstanding' = the market value of all bitcoin (about
$140 bn), ATHL's Theta. Assumptions, not measured from the files."""



EpisodeBook = RecordedBook
"""A recorded episode's cleansed book (:class:`models.desk_history.RecordedBook`)."""

EPISODE_SYMBOLS: Final = {"bitmex_2020_03_10": "XBTUSD", "amzn_2012_06_21": "AMZN"}
"""The instrument of each recorded episode."""


BITMEX_FEES: Final = FeeSchedule(taker_fee_bps=7.5, maker_rebate_bps=2.5)
"""BitMEX XBTUSD in 2020: takers paid 0.075%, makers earned 0.025% (assumed, not in the files)."""

_EPISODES: Final = {
    # name: (desk estimates, fees, calendar, sim session, child interval min, max duration min,
    #        %ADV range, a stress episode?, note)
    "bitmex_2020_03_10": (BITMEX_2020, BITMEX_FEES, "24/7", 86_400_000_000_000, 1.0, 15.0,
                          (1e-5, 1e-3), True,
                          "BitMEX XBTUSD L1, 2020-03-10 18:25-18:43 UTC (March 2020 crash)"),
    "amzn_2012_06_21": (AMZN_2012, DESK_FEES, "XNYS", 23_400_000_000_000, 5.0, 120.0,
                        (1e-4, 1e-2), False,
                        "LOBSTER AMZN L1, 2012-06-21 (a reference day, no stress episode)"),
}


def _with_desk_estimates(feats: pd.DataFrame, est: Mapping[str, float]) -> pd.DataFrame:
    """Fill the daily-history features of a one-day book from the desk's static estimates.

    The recorded files hold one day and no daily bars, so ``adv, sigma_daily, pct_adv,
    shares_outstanding`` are unknown to :func:`build_features`; a desk holds estimates of them
    (the same ones the replay's physics uses). They are filled in, and the two impact shapes
    that need ``pct_adv`` recomputed with the formulas of :mod:`models.features`;
    ``implied_participation`` (an intraday volume profile of earlier sessions) stays NaN.
    """
    f = feats.copy()
    f["adv"] = f["adv"].fillna(est["adv"])
    f["sigma_daily"] = f["sigma_daily"].fillna(est["sigma_daily"])
    f["pct_adv"] = f["pct_adv"].fillna(f["qty"] / est["adv"])
    f["shares_outstanding"] = f["shares_outstanding"].fillna(est["shares_outstanding"])
    temp, perm = impact_shapes(f["sigma_seen"], f["pct_adv"], f["plan_rate_shape"],
                               FeatureConfig().impact_beta)
    f["temp_impact_shape_bps"] = f["temp_impact_shape_bps"].fillna(temp)
    f["perm_impact_shape_bps"] = f["perm_impact_shape_bps"].fillna(perm)
    return f


def _real_episode(name: str, book: EpisodeBook, predict: Predict, limits: StressLimits,
                  n_orders: int, seed: int, domain: Domain | None = None
                  ) -> tuple[dict, list[dict], list[dict], dict]:
    (est, fees, calendar, session_ns, child_min, max_min, (lo, hi), is_stress,
     note) = _EPISODES[name]
    quotes, trades, symbol = book.quotes, book.trades, book.symbol
    sim = SimulatorConfig(venue="REPLAY", session_ns=session_ns, fees=fees)
    hist = replay_desk_history(book, n_orders=n_orders, seed=seed, sim=sim, adv=est["adv"],
                               sigma_daily=est["sigma_daily"],
                               shares_outstanding=est["shares_outstanding"], min_pct_adv=lo,
                               max_pct_adv=hi, child_interval_min=child_min,
                               max_duration_min=max_min)
    po = hist.parent_orders.copy()
    plan = plan_summary(hist.child_orders, po)  # the plan in 6.5-hour days, as the features
    for c in PLAN_COLUMNS:
        po[c] = plan[c].to_numpy()
    hist = DeskHistory(parent_orders=po, child_fills=hist.child_fills, outcomes=hist.outcomes,
                       rejections=hist.rejections, child_orders=hist.child_orders)
    market = SimpleNamespace(quotes=quotes, trades=trades, daily_bars=None)
    feats = desk_features(market, hist, config=FeatureConfig(calendar=calendar), parametric=False)
    feats = _with_desk_estimates(feats, est)
    feats["stressed"] = is_stress
    feats["scenario"] = name
    realized = hist.outcomes.set_index("order_id")["shortfall_bps"].reindex(
        po["order_id"]).to_numpy(np.float64)
    kind = "real"
    try:
        pred = _predict(predict, feats)
        cal = _calibration_row(name, kind, feats, realized, pred, domain=domain)
        if not is_stress:  # a calm reference day: score it as the 'stressed' columns too
            cal_all = _calibration_row(name, kind, feats.assign(stressed=True), realized, pred,
                                       domain=domain)
            cal |= {k: cal_all[k] for k in ("n", "bias_bps", "bias_se_bps", "noise_sd_bps",
                                            "coverage_80", "mae", "outside_domain",
                                            "outside_features", "note")}
        if cal["n"] == 0:
            cal["note"] = "not scored: the predictor returned no finite value on the real features"
        else:
            cal["note"] = ("adv, sigma_daily, pct_adv from the desk's estimates (no daily "
                           "history in the file)")
    except Exception as exc:  # the caller's model may reject a real book's features
        cal = _not_scored(name, kind, f"predict failed on the real features: {exc}")
    cal["note"] = f"{cal['note']}; {note}".lstrip("; ")
    st = pd.Series(is_stress, index=po["order_id"].astype(str))
    sym = pd.Series(symbol, index=po["order_id"].astype(str))
    rl = limits.resolve()
    engines = {"book_replay": lambda lim: _replay_rejections(
        quotes, po, hist.child_orders, sim, lim, sigma="sigma_est", adv="adv_est")}
    no_windows = pd.DataFrame(columns=["kind", "symbol", "start", "end"])
    risk = _control_rows(name, engines, rl, hist.child_orders, st, no_windows, sym,
                         kind="real", episode_stressed=is_stress)
    strat = po["strategy"].astype(str).to_numpy()
    sched = _schedule_rows(name, strat, realized, np.full(len(po), np.nan),
                           np.full(len(po), is_stress))
    c = realized[np.isfinite(realized)]
    spread = po["arrival_spread_bps"].to_numpy(np.float64)
    summary = {"scenario": name, "kind": kind,
               "n_stressed": len(c) if is_stress else 0, "n_normal": 0 if is_stress else len(c),
               "cost_stressed_bps": float(c.mean()) if is_stress else np.nan,
               "cost_stressed_se_bps": float(c.std(ddof=1) / np.sqrt(len(c))) if is_stress
               else np.nan,
               "cost_normal_bps": np.nan if is_stress else float(c.mean()),
               "spread_stressed_bps": float(np.nanmean(spread)) if is_stress else np.nan,
               "spread_normal_bps": np.nan if is_stress else float(np.nanmean(spread)),
               "note": f"{note}; TWAP desk of {len(po)} orders replayed on the recorded book"}
    return cal, sched, risk, summary


def index_stress_days(bars: pd.DataFrame, *, threshold: float = 0.05, window: int = 20,
                      symbol: str = "SPX") -> pd.DataFrame:
    """Index days with ``|simple return| >= threshold`` and their volatility multiplier.

    ``vol_mult = |log return| / sigma_20``, with ``sigma_20`` the standard deviation of the
    ``window`` daily log returns **before** the day. One day's return is one draw of that day's
    volatility, so a single multiplier is noisy; the median over the days is the stable number.
    ``bars`` are cleansed daily bars (``sources.ingest("index", data_dir)``), of ``symbol``.

    Returns
    -------
    pandas.DataFrame
        ``date, close, ret, log_ret, sigma_20, vol_mult`` sorted by date (days without a full
        trailing window are dropped).
    """
    if "symbol" in bars.columns:
        bars = bars[bars["symbol"].astype(str) == symbol]
    bars = bars.sort_values("date").reset_index(drop=True)
    close = bars["close"].astype(float)
    lr = np.log(close).diff()
    sig = lr.shift(1).rolling(window, min_periods=window).std()
    out = pd.DataFrame({"date": bars["date"], "close": close, "ret": close.pct_change(),
                        "log_ret": lr, "sigma_20": sig, "vol_mult": lr.abs() / sig})
    keep = (out["ret"].abs() >= threshold) & out["sigma_20"].notna()
    return out[keep].reset_index(drop=True)


def index_stress_scenario(days: pd.DataFrame, *, sessions: int = 3) -> StressScenario:
    """The ``index_stress_days`` scenario: ``sessions`` crisis sessions whose volatility
    multiplier is the median ``vol_mult`` of ``days`` (:func:`index_stress_days`; at least 1),
    spreads x2 and volume x3 as ``crisis_2008``."""
    med = float(np.median(days["vol_mult"])) if len(days) else 1.0
    first, last = (days["date"].min(), days["date"].max()) if len(days) else (None, None)
    span = f"{pd.Timestamp(first).date()}..{pd.Timestamp(last).date()}" if len(days) else "none"
    return StressScenario(
        name="index_stress_days",
        description=f"{sessions} crisis sessions at vol x{max(med, 1.0):.2f} (the median "
        f"|r|/sigma_20 of {len(days)} S&P 500 days with |r| >= 5%), spreads x2, volume x3.",
        source=f"S&P 500 daily closes (index_daily/arch_sp500.csv.gz), {len(days)} days "
        f"with |r| >= 5% ({span}); REFERENCES §5 spread x2, volume x2-4",
        crisis_sessions=sessions, vol_mult=max(med, 1.0), spread_mult=2.0, volume_mult=3.0)


# =========================================================================== the suite
@dataclass
class StressResult:
    """The stress suite's tables.

    Attributes
    ----------
    calibration : pandas.DataFrame
        One row per scenario: ``scenario, kind`` (synthetic | real), ``n, bias_bps,
        bias_se_bps, noise_sd_bps, coverage_80, mae`` on the stressed orders (the whole episode
        for a real one), the same ``n_normal, bias_normal_bps, coverage_80_normal`` on the calm
        sessions, and ``note`` ("not scored: <reason>" where nothing was scored).
    schedules : pandas.DataFrame
        ``scenario, sessions`` (stressed | normal), ``strategy, n, mean_cost_bps,
        minus_twap_bps, se_bps`` (Welch standard error of the difference; of the mean for
        TWAP), ``truth_minus_twap_bps`` (the true expected cost's difference; synthetic only).
    risk_controls : pandas.DataFrame
        ``scenario, engine`` (simulator | book_replay | venue), ``mode`` (all | alone),
        ``reason, limit``, rejected children ``fired_stressed, fired_normal, fired_event``,
        children sent ``children_stressed, children_normal, children_event`` and the rates
        ``rate_stressed, rate_normal``. A real episode is all stressed (BitMEX) or all normal
        (AMZN); the other column is NaN.
    summary : pandas.DataFrame
        Per scenario: orders, mean realized cost and arrival spread, stressed vs normal.
    index_days : pandas.DataFrame
        :func:`index_stress_days` (empty without data).
    scenarios : dict
        Every scenario run (``index_stress_days`` included when built).
    limits : dict
        The resolved :class:`RiskLimits` of each scenario (``model_dump``).
    timings_s : dict
        Seconds per scenario.
    """

    calibration: pd.DataFrame
    schedules: pd.DataFrame
    risk_controls: pd.DataFrame
    summary: pd.DataFrame
    index_days: pd.DataFrame = field(default_factory=pd.DataFrame)
    scenarios: dict[str, StressScenario] = field(default_factory=dict)
    limits: dict[str, dict] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_markdown(self) -> str:
        """A markdown report: the four tables, the index stress days and the scenarios."""
        def table(df: pd.DataFrame) -> str:
            return df.to_markdown(index=False, floatfmt=".3g") if len(df) else "(none)"

        parts = ["# Stress suite", "",
                 "## Calibration of the cost model on the stressed orders",
                 "bias = mean(realized - predicted), bps; coverage_80 = share inside the 80% "
                 "band; noise_sd = mean timing risk (the irreducible noise); outside_domain = "
                 "share of those orders with a feature outside the model's training domain "
                 "(the model extrapolates there), outside_features = the most frequent ones.",
                 "",
                 table(self.calibration), "", "## Schedules against TWAP",
                 "mean realized cost minus the TWAP mean (bps), with its standard error; "
                 "truth_minus_twap: the same on the true expected cost (synthetic only).", "",
                 table(self.schedules), "", "## Risk controls",
                 "rejected children by reason; rates are per child sent in those sessions; "
                 "`event` = inside a stress window (flash crash, opening event, halts).", "",
                 table(self.risk_controls), "", "## Costs and spreads", "",
                 table(self.summary), ""]
        if len(self.index_days):
            d = self.index_days.copy()
            d["date"] = pd.to_datetime(d["date"]).dt.date
            parts += ["## S&P 500 days with |r| >= 5%", "", table(d), ""]
        parts += ["## Scenarios", ""]
        parts += [f"* **{s.name}**: {s.description} Source: {s.source}"
                  for s in self.scenarios.values()]
        return "\n".join(parts) + "\n"


def _synthetic(name: str, scenario: StressScenario, predict: Predict, limits: StressLimits,
               n_orders: int, seed: int, n_symbols: int, n_sessions: int,
               domain: Domain | None = None) -> tuple[dict, list[dict], list[dict], dict, dict]:
    market, hist, feats = stress_desk(scenario, n_orders=n_orders, seed=seed,
                                      n_symbols=n_symbols, n_sessions=n_sessions)
    po = hist.parent_orders
    oid = po["order_id"].astype(str)
    out = hist.outcomes.set_index(hist.outcomes["order_id"].astype(str)).reindex(oid)
    realized = out["shortfall_bps"].to_numpy(np.float64)
    feats["scenario"] = name
    cal = _calibration_row(name, "synthetic", feats, realized, _predict(predict, feats),
                           domain=domain)
    stressed = feats["stressed"].to_numpy(bool)
    sched = _schedule_rows(name, po["strategy"].astype(str).to_numpy(), realized,
                           out["truth_bps"].to_numpy(np.float64), stressed)
    rl = limits.resolve(hist, ~stressed)
    st = pd.Series(stressed, index=oid.to_numpy())
    sym = pd.Series(po["symbol"].astype(str).to_numpy(), index=oid.to_numpy())
    win = stress_windows(scenario, market)
    sim = SimulatorConfig.from_truth(market.truth.impact, fees=DESK_FEES)
    replay = sim.model_copy(update={"venue": "REPLAY"})
    engines = {
        # the desk's own run (simulate_desk_history's execute_on_market, same orders/children)
        "simulator": lambda lim: execute_on_market(market, po, hist.child_orders, sim,
                                                   seed=seed, limits=lim)[0].rejections(),
        "book_replay": lambda lim: _replay_rejections(market.quotes, po, hist.child_orders,
                                                      replay, lim, sigma="true_sigma",
                                                      adv="true_adv")}
    risk = _control_rows(name, engines, rl, hist.child_orders, st, win, sym)
    risk += _halt_rows(name, hist.child_orders, st, sym, win)
    spread = feats["arrival_spread_bps"].to_numpy(np.float64)
    ok = np.isfinite(realized)
    cs = realized[ok & stressed]
    summary = {"scenario": name, "kind": "synthetic", "n_stressed": int(stressed.sum()),
               "n_normal": int((~stressed).sum()),
               "cost_stressed_bps": float(cs.mean()) if cs.size else np.nan,
               "cost_stressed_se_bps": float(cs.std(ddof=1) / np.sqrt(cs.size))
               if cs.size > 1 else np.nan,
               "cost_normal_bps": float(np.mean(realized[ok & ~stressed])),
               "spread_stressed_bps": float(np.nanmean(spread[stressed])),
               "spread_normal_bps": float(np.nanmean(spread[~stressed])),
               "note": f"{n_symbols} symbols x {n_sessions} sessions, last "
                       f"{scenario.n_stressed} stressed"}
    return cal, sched, risk, summary, rl.model_dump()


def run_stress_suite(predict: Predict, *, scenarios: Mapping[str, StressScenario] = SCENARIOS,
                     n_orders: int = 2000, seed: int = 0,
                     books: Mapping[str, EpisodeBook | str] | None = None,
                     index_bars: pd.DataFrame | str | None = None,
                     limits: StressLimits | None = None,
                     progress: Callable[[str], object] | None = print, n_symbols: int = 4,
                     n_sessions: int = 12, real_orders: int = 500,
                     domain: Domain | None = None) -> StressResult:
    """Run every scenario (and the real episodes when their ``books`` are given) and score them.

    Parameters
    ----------
    predict : callable
        ``predict(features) -> (mean, lo, hi)``: the cost model's prediction (bps) and its 80%
        band for each row of a :func:`desk_features` frame (the model is trained elsewhere).
    scenarios : mapping of str to StressScenario, default=SCENARIOS
    n_orders : int, default=2000
        Parent orders of each synthetic desk.
    seed : int, default=0
        Market and desk seed.
    books : mapping of str to EpisodeBook or str, optional
        The recorded episodes' cleansed books by episode name (``bitmex_2020_03_10``,
        ``amzn_2012_06_21``; the ``assets`` layer ingests them with :func:`sources.ingest`); a
        string says why an episode's book is not there. Without one the real row says "not
        scored".
    index_bars : pandas.DataFrame or str, optional
        Cleansed S&P 500 index daily bars (:func:`index_stress_days`), or why they are missing.
    limits : StressLimits, optional
        Default ``StressLimits()``.
    progress : callable, optional
        Called with one line per step (``None``: silent).
    n_symbols, n_sessions : int
        Size of each synthetic market.
    real_orders : int, default=500
        Parent orders of each real replay.
    domain : callable, optional
        ``domain(features)`` names, per row, the features outside the model's training domain
        (:meth:`models.cost_models.CostModelBundle.outside_domain`); each calibration row then
        says which share of its scored orders the model extrapolates to (``outside_domain``)
        and on which features (``outside_features``).

    Returns
    -------
    StressResult

    Notes
    -----
    ``predict`` is called once per scenario on all its orders (stressed and calm) with the
    :func:`desk_features` columns plus ``scenario``; synthetic order ids repeat across scenarios
    (same desk seed), ``(scenario, order_id)`` is unique. The real books hold one day and no
    daily bars: ``adv, sigma_daily, pct_adv, shares_outstanding`` come from the desk's estimates
    (:data:`BITMEX_2020`, :data:`AMZN_2012`), the parametric estimates and
    ``implied_participation`` are NaN, and ``timing_risk_bps`` is NaN for decisions in the
    first 5 minutes of the book. Rows whose prediction, band or realized cost is not finite are
    not scored; a predictor that raises on the real features is reported as not scored.
    """
    import time

    say = progress or (lambda _msg: None)
    lim = limits or StressLimits()
    cal, sched, risk, summ = [], [], [], []
    used: dict[str, StressScenario] = dict(scenarios)
    limits_used: dict[str, dict] = {}
    timings: dict[str, float] = {}
    index_days = pd.DataFrame()
    if isinstance(index_bars, pd.DataFrame):
        try:
            index_days = index_stress_days(index_bars)
            used["index_stress_days"] = index_stress_scenario(index_days)
        except ValueError as exc:
            cal.append(_not_scored("index_stress_days", "synthetic", f"S&P index bars: {exc}"))
    elif isinstance(index_bars, str):
        cal.append(_not_scored("index_stress_days", "synthetic", f"S&P index file: {index_bars}"))
    for name, sc in used.items():
        t0 = time.perf_counter()
        c, s, r, m, rl = _synthetic(name, sc, predict, lim, n_orders, seed, n_symbols,
                                    n_sessions, domain)
        cal.append(c)
        sched += s
        risk += r
        summ.append(m)
        limits_used[name] = rl
        timings[name] = time.perf_counter() - t0
        say(f"stress {name}: n={c['n']} bias={c['bias_bps']:.1f} bps "
            f"coverage_80={c['coverage_80']:.2f} ({timings[name]:.1f} s)")
    if index_bars is None:
        cal.append(_not_scored("index_stress_days", "synthetic",
                               "no index bars (the S&P index file parameterizes it)"))
    for name in _EPISODES:
        t0 = time.perf_counter()
        book = (books or {}).get(name)
        if book is None or isinstance(book, str):
            cal.append(_not_scored(name, "real", "no book" if book is None
                                   else f"data missing or unreadable: {book}"))
            continue
        c, s, r, m = _real_episode(name, book, predict, lim, real_orders, seed, domain)
        cal.append(c)
        sched += s
        risk += r
        summ.append(m)
        limits_used[name] = lim.resolve().model_dump()
        timings[name] = time.perf_counter() - t0
        cost = m["cost_stressed_bps"] if m["n_stressed"] else m["cost_normal_bps"]
        say(f"stress {name}: n={c['n']} cost={cost:.1f} bps ({timings[name]:.1f} s)")
    return StressResult(
        calibration=pd.DataFrame(cal, columns=list(CALIBRATION_COLUMNS)),
        schedules=pd.DataFrame(sched, columns=list(SCHEDULE_COLUMNS)),
        risk_controls=pd.DataFrame(risk, columns=list(RISK_COLUMNS)).assign(
            rate_stressed=lambda d: d["fired_stressed"] / d["children_stressed"].replace(0, np.nan),
            rate_normal=lambda d: d["fired_normal"] / d["children_normal"].replace(0, np.nan)),
        summary=pd.DataFrame(summ, columns=list(SUMMARY_COLUMNS)),
        index_days=index_days, scenarios=used, limits=limits_used, timings_s=timings)


# =========================================================================== plots
def plot(result: StressResult, out_dir: str | Path) -> list[Path]:
    """PNG plots of ``result`` in ``out_dir``: calibration (coverage and bias) by scenario,
    schedule cost minus TWAP on the stressed sessions, risk-control firing rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    cal = result.calibration[result.calibration["n"] > 0]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(cal))
    ax[0].bar(x, cal["coverage_80"], color="tab:blue")
    ax[0].axhline(0.8, color="k", ls="--", lw=1)
    ax[0].set_ylim(0, 1)
    ax[0].set_title("80% band coverage (stressed orders)")
    ax[1].bar(x, cal["bias_bps"], yerr=1.96 * cal["bias_se_bps"].fillna(0), color="tab:red",
              capsize=3)
    ax[1].axhline(0, color="k", lw=1)
    ax[1].set_title("bias = realized - predicted (bps, 95% CI)")
    for a in ax:
        a.set_xticks(x, cal["scenario"], rotation=30, ha="right", fontsize=8)
    fig.tight_layout()
    paths.append(out / "stress_calibration.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    sc = result.schedules[(result.schedules["sessions"] == "stressed")
                          & (result.schedules["strategy"] != "twap")]
    fig, ax = plt.subplots(figsize=(11, 4))
    names = list(dict.fromkeys(sc["scenario"]))
    strategies = sorted(set(sc["strategy"]))
    w = 0.8 / max(len(strategies), 1)
    for j, s in enumerate(strategies):
        d = sc[sc["strategy"] == s].set_index("scenario").reindex(names)
        ax.bar(np.arange(len(names)) + j * w, d["minus_twap_bps"], w,
               yerr=1.96 * d["se_bps"].fillna(0), label=s, capsize=2)
    ax.axhline(0, color="k", lw=1)
    ax.set_xticks(np.arange(len(names)) + w * (len(strategies) - 1) / 2, names, rotation=30,
                  ha="right", fontsize=8)
    ax.set_title("stressed sessions: mean cost minus TWAP (bps, 95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "stress_schedules.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    rc = result.risk_controls
    rc = rc[(rc["mode"] == "alone") | (rc["engine"] == "venue")]
    engines = [e for e in ("simulator", "book_replay", "venue") if (rc["engine"] == e).any()]
    reasons = list(dict.fromkeys(rc["reason"]))
    names = list(dict.fromkeys(rc["scenario"]))
    fig, axes = plt.subplots(len(engines), max(len(reasons), 1), squeeze=False,
                             figsize=(3.2 * max(len(reasons), 1), 2.8 * len(engines)))
    x = np.arange(len(names))
    for i, e in enumerate(engines):
        for j, r in enumerate(reasons):
            a = axes[i][j]
            d = rc[(rc["engine"] == e) & (rc["reason"] == r)].set_index("scenario").reindex(names)
            if d["rate_stressed"].notna().any() or d["rate_normal"].notna().any():
                a.bar(x - 0.2, d["rate_stressed"].fillna(0), 0.4, color="tab:red",
                      label="stressed")
                a.bar(x + 0.2, d["rate_normal"].fillna(0), 0.4, color="tab:gray", label="normal")
                a.set_yscale("symlog", linthresh=1e-3)
            else:
                a.set_visible(False)
                continue
            a.set_title(f"{e}: {r}", fontsize=8)
            a.set_xticks(x, names, rotation=60, ha="right", fontsize=6)
            a.tick_params(axis="y", labelsize=7)
    axes[0][0].legend(fontsize=7)
    axes[0][0].set_ylabel("rejected / children sent", fontsize=7)
    fig.suptitle("risk controls, each alone: firing rate in stressed vs normal sessions",
                 fontsize=10)
    fig.tight_layout()
    paths.append(out / "stress_risk_controls.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
