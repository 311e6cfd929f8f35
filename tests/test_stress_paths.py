"""Coverage over resampled paths (issue 13): the paths keep a book's volatility, not its trend."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from validation._stress_paths import path_coverage, path_drifts

T0 = pd.Timestamp("2020-03-10 12:00", tz="UTC")


def _book_and_desk(drift_bp_per_s: float, sd_bp_per_s: float, seed: int = 0):
    """A 1-second mid with a steady trend and Gaussian steps, and 40 one-fill orders
    (alternately buy and sell) each decided at minute k and filled at minute k + 10."""
    rng = np.random.default_rng(seed)
    n = 1800
    logmid = np.log(100.0) + np.cumsum(drift_bp_per_s * 1e-4 + sd_bp_per_s * 1e-4
                                       * rng.standard_normal(n))
    mid = np.exp(logmid)
    ts = T0 + pd.to_timedelta(np.arange(n), unit="s")
    quotes = pd.DataFrame({"ts": ts, "bid_px": mid - 0.005, "ask_px": mid + 0.005})
    k = np.arange(40)
    dec = T0 + pd.to_timedelta(30 * k + 60, unit="s")
    ids = [f"o{i}" for i in k]
    po = pd.DataFrame({"order_id": ids, "side": np.where(k % 2 == 0, 1, -1),
                       "decision_ts": dec})
    fill = dec + pd.Timedelta(minutes=10)
    child = pd.DataFrame({"order_id": ids, "decision_ts": fill})
    fills = pd.DataFrame({"order_id": ids, "fill_ts": fill, "qty": 100.0})
    return quotes, SimpleNamespace(parent_orders=po, child_orders=child, child_fills=fills)


def test_centered_paths_carry_no_trend_and_the_books_volatility():
    # +0.05 bp a second is +30 bps over each order's 10 minutes: on the recorded path every
    # buy loses about 30 bps and every sell gains it
    quotes, desk = _book_and_desk(drift_bp_per_s=0.05, sd_bp_per_s=1.0)
    side = desk.parent_orders["side"].to_numpy()
    raw = path_drifts(desk, quotes, n_paths=400, center=False)
    cen = path_drifts(desk, quotes, n_paths=400)
    assert raw.shape == cen.shape == (40, 400)
    # uncentered, the block bootstrap keeps the day's mean step (trend + the noise's own mean,
    # about 30 +- 14 bps over 600 s) by side on every path
    lm = np.log((quotes["bid_px"] + quotes["ask_px"]).to_numpy() / 2)
    trend = (lm[-1] - lm[0]) / (len(lm) - 1) * 600 * 1e4
    assert trend > 10
    assert abs(np.mean(raw[side > 0]) - trend) < 3
    assert abs(np.mean(raw[side < 0]) + trend) < 3
    # centered, no trend (sd of the mean over 16,000 draws of sd ~25 bps: ~0.2, paths correlated)
    assert abs(np.mean(cen[side > 0])) < 3
    assert abs(np.mean(cen[side < 0])) < 3
    # the volatility is the book's: 1 bp a second over 600 s is sqrt(600) = 24.5 bps
    assert 21 < np.median(np.std(cen, axis=1)) < 28


def test_path_coverage_of_a_band_of_plus_minus_1_28_sd_is_80_percent():
    quotes, desk = _book_and_desk(drift_bp_per_s=0.0, sd_bp_per_s=1.0, seed=1)
    d = path_drifts(desk, quotes, n_paths=400)
    sd = np.sqrt(600.0)
    cov = path_coverage(np.zeros(40), d, np.full(40, -1.2816 * sd), np.full(40, 1.2816 * sd))
    assert 0.74 < cov < 0.86
    # a band of half the width covers far less
    half = path_coverage(np.zeros(40), d, np.full(40, -0.64 * sd), np.full(40, 0.64 * sd))
    assert half < 0.6
