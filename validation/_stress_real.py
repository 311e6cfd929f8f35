"""The real stress episodes: BitMEX 2020-03-10 and the AMZN 2012-06-21 replay on cleansed
recorded books (desk estimates where the book has no history), and the S&P index stress days
turned into a scenario. Used by :mod:`validation.stress`."""

from __future__ import annotations

from collections.abc import Mapping
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
from models.features import FeatureConfig, impact_shapes
from models.simulator import FeeSchedule, SimulatorConfig
from validation._stress_scenarios import Domain, Predict, StressScenario, desk_features
from validation._stress_scoring import (
    StressLimits,
    _calibration_row,
    _control_rows,
    _not_scored,
    _predict,
    _replay_rejections,
    _schedule_rows,
)

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
