"""Leave one real book out (issue 13): the table's construction on small hand-made books."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.cost_models import CostModelParams
from models.cost_training import TrainingConfig, fit_bundle
from validation._stress_lobo import LOBO_COLUMNS, leave_one_book_out

FEATURES = ["pct_adv", "implied_participation", "sigma_daily", "arrival_spread_bps",
            "timing_risk_bps"]
PARAMS = CostModelParams(num_boost_round=12, max_depth=2, learning_rate=0.3, nthread=1)


def _rows(n: int, seed: int, k: float, step: float = 0.0) -> pd.DataFrame:
    """Orders whose expected cost is half the spread + k * sigma * sqrt(pct_adv) * 1e4; the
    market-adjusted cost adds a little execution noise, the realized one the market's move
    (sd = timing risk), drawn again on 50 resampled paths."""
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({"pct_adv": rng.uniform(1e-4, 1e-2, n), "sigma_daily": rng.uniform(0.01, 0.03, n),
                      "arrival_spread_bps": rng.uniform(2, 10, n), "timing_risk_bps": rng.uniform(5, 15, n)})
    cost = f["arrival_spread_bps"] / 2 + k * f["sigma_daily"] * np.sqrt(f["pct_adv"]) * 1e4
    cost = cost + step * (f["arrival_spread_bps"] > 6)  # a shape the square-root law lacks
    f["adjusted_bps"] = cost + rng.normal(0, 0.2, n)
    f["is_bps"] = f["adjusted_bps"] + rng.normal(0, 1, n) * f["timing_risk_bps"]
    paths = rng.normal(0, 1, (n, 50)) * f["timing_risk_bps"].to_numpy()[:, None]
    f[[f"path_drift_{k:03d}" for k in range(50)]] = paths
    f["implied_participation"] = f["pct_adv"] * 10
    f["qty"], f["adv"], f["duration_days"] = f["pct_adv"] * 1e6, 1e6, 0.1
    return f


def test_the_table_has_both_variants_per_book_and_a_pooled_row():
    synth = _rows(800, 0, 0.7)
    real = {"a": _rows(150, 1, 1.0), "b": _rows(150, 2, 1.0), "c": _rows(150, 3, 1.0)}
    t = leave_one_book_out(synth, real, params=PARAMS, features=FEATURES,
                           config=TrainingConfig(seed=0, real_share=0.25))
    assert list(t.columns) == list(LOBO_COLUMNS)
    assert t[["book", "variant"]].values.tolist() == [
        ["a", "synthetic"], ["a", "synthetic+real"], ["b", "synthetic"], ["b", "synthetic+real"],
        ["c", "synthetic"], ["c", "synthetic+real"], ["pooled", "synthetic"],
        ["pooled", "synthetic+real"]]
    books = t[t["book"] != "pooled"]
    assert (books["n"] == 150).all()
    # the pooled MAE is the mean over every held-out order: books of equal size -> the mean
    for v in ("synthetic", "synthetic+real"):
        g = books[books["variant"] == v]
        pooled = t[(t["book"] == "pooled") & (t["variant"] == v)].iloc[0]
        assert pooled["mae_bps"] == pytest.approx(g["mae_bps"].mean())
        assert pooled["n"] == 450
    # real books cost more (k = 1.0 against 0.7): the synthetic-only model under-predicts them,
    # the one that saw the other books less so
    syn, both = books[books["variant"] == "synthetic"], books[books["variant"] == "synthetic+real"]
    assert (syn["bias_bps"].to_numpy() > both["bias_bps"].to_numpy()).all()
    # the mean model learns the other books' market-adjusted costs: its error against them is
    # well under the timing noise; the band covers ~80 % of the costs over resampled paths
    assert (both["mae_bps"] < 0.3 * both["noise_sd_bps"]).all()
    assert both["coverage80_paths"].between(0.7, 0.9).all()


def test_fit_bundle_weights_and_band():
    rows = _rows(1200, 5, 0.7)
    b = fit_bundle(rows, PARAMS, FEATURES, TrainingConfig(seed=1))
    _, lo, hi = b.predict(rows)
    y = rows["is_bps"].to_numpy()
    inside = np.mean((y >= lo) & (y <= hi))
    # the split-conformal 80 % band, in sample: its margin comes from ~240 calibration rows,
    # a coverage sd of sqrt(0.8 * 0.2 / 240) = 0.026; three of them either side
    assert 0.72 <= inside <= 0.88
    with pytest.raises(ValueError, match="two real books"):
        leave_one_book_out(rows, {"a": rows}, params=PARAMS, features=FEATURES)


def test_a_venue_law_replaces_the_model_only_where_it_prices_the_venue_better():
    """Venue A follows the synthetic physics (a square-root law plus a step the law lacks: the
    trees price it better); venue B costs twice the impact with the same features, which the
    trees (no venue feature) average away and B's own law fits better."""
    synth, a, b = _rows(800, 7, 0.7, 8.0), _rows(300, 8, 0.7, 8.0), _rows(300, 9, 1.6, 8.0)
    for f in (a, b):
        f["sigma_seen"] = f["sigma_daily"]
    a["venue"], b["venue"] = "A", "B"
    train = pd.concat([synth, a, b], ignore_index=True)
    train["mean_label_bps"] = train["adjusted_bps"]
    strong = CostModelParams(num_boost_round=150, max_depth=3, learning_rate=0.1, nthread=1)
    bundle = fit_bundle(train, strong, FEATURES, TrainingConfig(seed=0))
    laws = bundle.venue_calibrations
    assert laws["B"]["used"]
    assert laws["B"]["mae_law_bps"] < laws["B"]["mae_model_bps"]
    assert not laws["A"]["used"]
