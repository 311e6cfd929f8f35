"""The real stress episodes: BitMEX 2020-03-10 and the AMZN 2012-06-21 replay on cleansed
recorded books (desk estimates where the book has no history), and the S&P index stress days
turned into a scenario. Used by :mod:`validation.stress`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Final

import numpy as np
import pandas as pd

from models.desk_history import (
    AMZN_2012,
    DESK_FEES,
    PLAN_COLUMNS,
    DeskHistory,
    RecordedBook,
    plan_summary,
    replay_desk_history,
)
from models.features import (
    FeatureConfig,
    ParametricCalibrations,
    apply_parametric,
    impact_shapes,
)
from models.simulator import FeeSchedule, SimulatorConfig
from validation._stress_paths import path_coverage, path_drifts
from validation._stress_scenarios import Domain, Predict, StressScenario, desk_features
from validation._stress_scoring import (
    StressLimits,
    _calibration_row,
    _control_rows,
    _not_scored,
    _predict,
    _replay_rejections,
    _schedule_rows,
    score_real_book,
)

# =========================================================================== real data
BITMEX_2020: Final = {"adv": 3.0e9, "sigma_daily": 0.05, "shares_outstanding": 1.4e11}
"""Desk estimates for XBTUSD before 2020-03-10, per 24 hours (contracts of 1 USD): ADV about
$3 bn, daily volatility 5%, 'shares outstanding' = the market value of all bitcoin (about
$140 bn), ATHL's Theta. Assumptions, not measured from the files."""



Predict1 = Callable[[pd.DataFrame], np.ndarray]
"""One prediction per row of features (a baseline such as the square-root law), bps."""

EpisodeBook = RecordedBook
"""A recorded episode's cleansed book (:class:`models.desk_history.RecordedBook`)."""

EPISODE_SYMBOLS: Final = {"bitmex_2020_03_10": "XBTUSD", "amzn_2012_06_21": "AMZN"}
"""The instrument of each recorded episode."""


BITMEX_FEES: Final = FeeSchedule(taker_fee_bps=7.5, maker_rebate_bps=2.5)
"""BitMEX XBTUSD in 2020: takers paid 0.075%, makers earned 0.025% (assumed, not in the files)."""

@dataclass(frozen=True)
class BookSpec:
    """How a desk trades a recorded book: its estimates of the instrument (``adv``,
    ``sigma_daily``, ``shares_outstanding``: a one-day file has no history), fees, session
    calendar and length, child interval and longest order (minutes), the %ADV range of its
    orders, whether the day is a stress episode, and a note."""

    estimates: Mapping[str, float]
    fees: FeeSchedule
    calendar: str
    session_ns: int
    child_interval_min: float
    max_duration_min: float
    pct_adv: tuple[float, float]
    stressed: bool
    note: str
    venue: str = ""


def equity_spec(estimates: Mapping[str, float], note: str) -> BookSpec:
    """A US equity day on the XNYS calendar (the AMZN replay's desk)."""
    return BookSpec(estimates, DESK_FEES, "XNYS", 23_400_000_000_000, 5.0, 120.0, (1e-4, 1e-2),
                    False, note, "LOBSTER")


def crypto_spec(estimates: Mapping[str, float], note: str, *, stressed: bool = False) -> BookSpec:
    """A 24-hour crypto venue (the BitMEX replay's desk: BitMEX 2020 fees)."""
    return BookSpec(estimates, BITMEX_FEES, "24/7", 86_400_000_000_000, 1.0, 15.0, (1e-5, 1e-3),
                    stressed, note, "BitMEX")


_EPISODES: Final = {
    "bitmex_2020_03_10": crypto_spec(
        BITMEX_2020, "BitMEX XBTUSD L1, 2020-03-10 18:25-18:43 UTC (March 2020 crash)",
        stressed=True),
    "amzn_2012_06_21": equity_spec(
        AMZN_2012, "LOBSTER AMZN L1, 2012-06-21 (a reference day, no stress episode)"),
}


def book_spec(book: RecordedBook, kind: str) -> tuple[BookSpec, str]:
    """The desk for ``book`` (``kind`` ``equity`` or ``crypto``) and the name it is known by:
    a recorded episode's own desk (``amzn_2012_06_21``, ``bitmex_2020_03_10``) when the book is
    that day's, else a desk whose estimates come from the book (:func:`estimates_from_book`)."""
    day = pd.Timestamp(book.quotes["ts"].iloc[0]).date().isoformat() if len(book.quotes) else ""
    for name, symbol in EPISODE_SYMBOLS.items():
        if symbol == book.symbol and day.replace("-", "_") in name:
            return _EPISODES[name], name
    if kind == "crypto":
        est = estimates_from_book(book, 86_400_000_000_000)
        return crypto_spec(est, f"{book.symbol} {day}: desk estimates from the book"), \
            f"{book.symbol}_{day}"
    est = estimates_from_book(book, 23_400_000_000_000)
    return equity_spec(est, f"{book.symbol} {day}: desk estimates from the book"), \
        f"{book.symbol}_{day}"


def estimates_from_book(book: RecordedBook, spec_session_ns: int) -> dict[str, float]:
    """A desk's estimates of a book it has no history of, from the book itself: ``adv`` the
    traded volume of the recorded span scaled to a whole session, ``sigma_daily`` the
    1-minute realized volatility of the mid scaled to a session, ``shares_outstanding``
    200 x adv (the serving default). One day is a poor estimate of either; it is what there is."""
    q, t = book.quotes, book.trades
    ts = pd.DatetimeIndex(q["ts"]).as_unit("ns").asi8
    span = max(float(ts.max() - ts.min()), 60e9) if len(ts) else 60e9
    vol = float(t["qty"].sum()) if len(t) else 0.0
    adv = max(vol * spec_session_ns / span, 1.0)
    mid = ((q["bid_px"] + q["ask_px"]) / 2).to_numpy(np.float64)
    minute = (ts - ts.min()) // 60_000_000_000 if len(ts) else ts
    last = pd.Series(mid).groupby(minute).last().to_numpy()
    r = np.diff(np.log(last[np.isfinite(last) & (last > 0)]))
    per_session = spec_session_ns / 60e9
    sigma = float(np.sqrt(np.sum(r ** 2) / max(len(r), 1) * per_session)) if len(r) else 0.02
    return {"adv": adv, "sigma_daily": max(sigma, 1e-4), "shares_outstanding": 200.0 * adv}


def _with_desk_estimates(feats: pd.DataFrame, est: Mapping[str, float],
                         calibrations: ParametricCalibrations | None = None, *,
                         session_min: float = 390.0) -> pd.DataFrame:
    """Fill what a one-day book cannot know from the desk's static estimates.

    The recorded files hold one day and no daily bars, so ``adv, mdv, sigma_daily, pct_adv,
    pct_mdv, adv_turnover, shares_outstanding`` are unknown to :func:`build_features`, and so is the volatility the
    market has seen before the day (``rv_prev_session``, then ``sigma_seen`` and ``rv_open``
    until the session has a few minutes of its own): a desk holds estimates of them (the same
    ones the replay's physics uses). They are filled in, and what is computed from them
    (``sigma_horizon_bps``, ``timing_risk_bps`` and the two impact shapes) recomputed with the formulas of
    :mod:`models.features`. With ``calibrations`` (the model's own square-root and ATHL fits)
    the missing ``sqrt_pred_bps`` / ``athl_pred_bps`` are the model's own estimates, as its
    serving path computes them. ``implied_participation`` (an intraday volume profile of
    earlier sessions) stays NaN.

    Before this (issue 13), missing values the training data never had went down arbitrary
    branches of the trees: the BitMEX replay's bias was -147 bps, 59 % of its orders having no
    ``sigma_seen``.
    """
    f = feats.copy()
    # the features' volatility is per 390 minutes of trading (1-minute realized variance x
    # 390, the plan's timing variance in 6.5-hour days); a 24-hour venue's estimate is per 24
    # hours: taken as it is, the timing risk of a crypto order was sqrt(1440/390) = 1.9x too big
    sig = est["sigma_daily"] * np.sqrt(390.0 / session_min)
    f["adv"] = f["adv"].fillna(est["adv"])
    f["sigma_daily"] = f["sigma_daily"].fillna(sig)
    f["pct_adv"] = f["pct_adv"].fillna(f["qty"] / est["adv"])
    f["shares_outstanding"] = f["shares_outstanding"].fillna(est["shares_outstanding"])
    # the desk's one volume estimate is its normal volume too (mdv), as features.py does
    # without a year of bars
    f["mdv"] = f["mdv"].fillna(est["adv"])
    f["pct_mdv"] = f["pct_mdv"].fillna(f["qty"] / f["mdv"])
    f["adv_turnover"] = f["adv_turnover"].fillna(f["adv"] / f["shares_outstanding"])
    for c in ("rv_prev_session", "sigma_seen", "rv_open"):
        f[c] = f[c].fillna(sig)
    f["sigma_horizon_bps"] = f["sigma_horizon_bps"].fillna(
        f["sigma_seen"] * np.sqrt(f["duration_days"]) * 1e4)
    f["timing_risk_bps"] = f["timing_risk_bps"].fillna(
        f["sigma_seen"] * np.sqrt(f["plan_timing_var_days"]) * 1e4)
    temp, perm = impact_shapes(f["sigma_seen"], f["pct_mdv"], f["plan_rate_shape"],
                               FeatureConfig().impact_beta)
    f["temp_impact_shape_bps"] = f["temp_impact_shape_bps"].fillna(temp)
    f["perm_impact_shape_bps"] = f["perm_impact_shape_bps"].fillna(perm)
    if calibrations is not None:
        par = apply_parametric(f, calibrations, update_knowledge=False)
        for c in ("sqrt_pred_bps", "athl_pred_bps"):
            f[c] = f[c].fillna(par[c]) if c in f else par[c]
    return f


@dataclass(frozen=True)
class Replayed:
    """A TWAP-mix desk replayed on a recorded book: its history, features, realized costs and
    the same less the recorded market's own move (``adjusted``:
    :func:`models.desk_history.market_drift_bps`)."""

    history: DeskHistory
    features: pd.DataFrame
    realized: np.ndarray
    sim: SimulatorConfig
    adjusted: np.ndarray
    quotes: pd.DataFrame


def replay_book(book: RecordedBook, spec: BookSpec, *, n_orders: int, seed: int,
                name: str, calibrations: ParametricCalibrations | None = None) -> Replayed:
    """The desk of ``spec`` replayed on ``book``: parent orders executed on the recorded quotes
    with the simulator's fills and footprint, their point-in-time features (daily-history
    features from the desk's estimates) and their realized shortfall (bps)."""
    est = spec.estimates
    sim = SimulatorConfig(venue="REPLAY", session_ns=spec.session_ns, fees=spec.fees)
    lo, hi = spec.pct_adv
    hist = replay_desk_history(book, n_orders=n_orders, seed=seed, sim=sim, adv=est["adv"],
                               sigma_daily=est["sigma_daily"],
                               shares_outstanding=est["shares_outstanding"], min_pct_adv=lo,
                               max_pct_adv=hi, child_interval_min=spec.child_interval_min,
                               max_duration_min=spec.max_duration_min)
    po = hist.parent_orders.copy()
    plan = plan_summary(hist.child_orders, po)  # the plan in 6.5-hour days, as the features
    for c in PLAN_COLUMNS:
        po[c] = plan[c].to_numpy()
    hist = DeskHistory(parent_orders=po, child_fills=hist.child_fills, outcomes=hist.outcomes,
                       rejections=hist.rejections, child_orders=hist.child_orders)
    market = SimpleNamespace(quotes=book.quotes, trades=book.trades, daily_bars=None)
    feats = desk_features(market, hist, config=FeatureConfig(calendar=spec.calendar),
                          parametric=False)
    feats = _with_desk_estimates(feats, est, calibrations,
                                 session_min=spec.session_ns / 60e9)
    feats["stressed"] = spec.stressed
    feats["scenario"] = name
    feats["venue"] = spec.venue
    out = hist.outcomes.set_index("order_id").reindex(po["order_id"])
    return Replayed(hist, feats, out["shortfall_bps"].to_numpy(np.float64), sim,
                    out["adjusted_bps"].to_numpy(np.float64), book.quotes)


def score_book(book: RecordedBook, spec: BookSpec, predict: Predict, *, n_orders: int = 500,
               seed: int = 0, domain: Domain | None = None,
               sqrt_law: Predict1 | None = None,
               calibrations: ParametricCalibrations | None = None,
               fallback: Callable[[pd.DataFrame], Sequence[str]] | None = None
               ) -> dict[str, float | int | str]:
    """How a cost model does on a book it has not seen: the desk of ``spec`` replayed on
    ``book`` and ``predict`` scored against the realized costs.

    Returns ``book``, ``symbol`` and :func:`validation._stress_scoring.score_real_book`'s
    figures (bias and MAE against the cost less the market's own move, coverage of the
    realized cost; ``sqrt_law``'s errors, NaN without one), ``coverage80_paths`` (over
    resampled paths of the book: :mod:`validation._stress_paths`), ``share_in_domain`` (orders with
    every feature inside the training domain; NaN without ``domain``) and ``fallback_share``
    (orders priced by the venue's physics law instead of the learned model: ``fallback``
    gives each row's fallback, '' for none; NaN without it).
    """
    r = replay_book(book, spec, n_orders=n_orders, seed=seed, name=book.symbol,
                    calibrations=calibrations)
    mean, lo, hi = _predict(predict, r.features)
    sq = None if sqrt_law is None else sqrt_law(r.features)
    res = score_real_book(mean, lo, hi, r.realized, r.adjusted, r.features["timing_risk_bps"],
                          sq)
    res["coverage80_paths"] = path_coverage(r.adjusted, path_drifts(r.history, r.quotes,
                                                                    seed=seed), lo, hi)
    share_in = np.nan
    if domain is not None and len(r.features):
        share_in = float(np.mean([not f for f in domain(r.features)]))
    fb = (np.nan if fallback is None or not len(r.features)
          else float(np.mean([bool(x) for x in fallback(r.features)])))
    return {"book": book.source, "symbol": book.symbol, **res, "share_in_domain": share_in,
            "fallback_share": fb}


def _real_episode(name: str, book: EpisodeBook, predict: Predict, limits: StressLimits,
                  n_orders: int, seed: int, domain: Domain | None = None,
                  calibrations: ParametricCalibrations | None = None
                  ) -> tuple[dict, list[dict], list[dict], dict]:
    spec = _EPISODES[name]
    is_stress, note = spec.stressed, spec.note
    quotes, symbol = book.quotes, book.symbol
    r = replay_book(book, spec, n_orders=n_orders, seed=seed, name=name,
                    calibrations=calibrations)
    hist, feats, realized, sim = r.history, r.features, r.realized, r.sim
    po = hist.parent_orders
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
