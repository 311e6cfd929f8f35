"""Leave one real book out (issue 13): is the cost model right on a market it did not train on?

Each real book (a LOBSTER day, a BitMEX symbol) is replayed with its desk
(:func:`validation._stress_real.replay_book`); its orders, tagged by venue, symbol and day, are
training rows like the synthetic desk's. For each book in turn the model is refit with fixed
hyperparameters (:func:`models.cost_training.fit_bundle`) on

* ``synthetic``: the synthetic desk's training rows only (what the champion saw), and
* ``synthetic+real``: those plus every *other* real book (each book's orders weighed so that
  the real books together carry ``real_share`` of the mean model's weight, by default the
  training config's),

and scored on the held-out book: bias against the noise sd, 80 % band coverage, MAE against
the square-root law fitted on the same training rows, and the share of orders inside the training
domain. The pooled row compares the errors over every held-out book.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import pandas as pd

from models.cost_models import CostModelParams, SquareRootBaseline
from models.cost_training import (
    BAND_LABEL,
    MEAN_LABEL,
    TrainingConfig,
    fit_bundle,
    share_weights,
)
from validation._stress_paths import path_coverage, path_drifts
from validation._stress_real import Replayed
from validation._stress_scoring import score_real_book

__all__ = ["LOBO_COLUMNS", "PATH_PREFIX", "leave_one_book_out", "path_matrix", "real_book_rows"]

PATH_PREFIX: Final = "path_drift_"
"""Columns of a real book's rows holding the market's move on each resampled path, bps."""


def path_matrix(rows: pd.DataFrame) -> np.ndarray:
    """``(n_rows, n_paths)`` of the :data:`PATH_PREFIX` columns (NaN column when none)."""
    cols = [c for c in rows.columns if str(c).startswith(PATH_PREFIX)]
    if not cols:
        return np.full((len(rows), 1), np.nan)
    return rows[cols].to_numpy(np.float64)

LOBO_COLUMNS: Final = ("book", "variant", "n", "bias_bps", "bias_se_bps", "bias_realized_bps",
                       "noise_sd_bps", "bias_over_sd", "coverage80", "coverage80_paths", "mae_bps",
                       "mae_sqrt_law_bps", "mae_ratio", "mae_realized_bps",
                       "mae_sqrt_law_realized_bps", "share_in_domain", "fallback_share")
"""One row per held-out book and training variant, plus the pooled rows."""


def real_book_rows(replays: Mapping[str, Replayed], *, venues: Mapping[str, str],
                   n_paths: int = 200, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Training rows of each replayed book: its features, ``is_bps`` (the realized shortfall,
    the label), ``band_label_bps`` (the band's label,
    :data:`models.cost_training.BAND_LABEL`: the adjusted cost plus the move of the order's own
    resampled path), ``adjusted_bps`` (the same less the market's own move: the mean model's label,
    :data:`models.cost_training.MEAN_LABEL`, and the scoring target), ``path_drift_000`` ... (the
    market's move on each of ``n_paths`` resampled paths of the book,
    :func:`validation._stress_paths.path_drifts`: the band's coverage over paths) and the tags
    ``book``, ``venue``, ``symbol`` and ``day``."""
    out = {}
    for name, r in replays.items():
        f = r.features.copy()
        f["is_bps"] = r.realized
        f["adjusted_bps"] = r.adjusted
        d = path_drifts(r.history, r.quotes, n_paths=n_paths, seed=seed)
        f = pd.concat([f, pd.DataFrame(d, columns=[f"{PATH_PREFIX}{k:03d}" for k in
                                                   range(n_paths)], index=f.index)], axis=1)
        # the band's label: each order on its own resampled path (BAND_LABEL)
        f[BAND_LABEL] = r.adjusted + d[np.arange(len(d)), np.arange(len(d)) % n_paths]
        f["book"] = name
        f["venue"] = venues.get(name) or (f["venue"] if "venue" in f else "")
        f["symbol"] = r.history.parent_orders["symbol"].astype(str).to_numpy()
        f["day"] = pd.to_datetime(f["decision_ts"], utc=True).dt.strftime("%Y-%m-%d")
        ok = np.isfinite(f["is_bps"].to_numpy(np.float64)) & np.isfinite(r.adjusted)
        out[name] = f[ok].reset_index(drop=True)
    return out


def _row(book: str, variant: str, test: pd.DataFrame, bundle, sqrt: np.ndarray) -> dict:
    mean, lo, hi = bundle.predict(test)
    y, adj = (test[c].to_numpy(np.float64) for c in ("is_bps", "adjusted_bps"))
    res = score_real_book(mean, lo, hi, y, adj, bundle.scale(test), sqrt)
    res["coverage80_paths"] = path_coverage(adj, path_matrix(test), lo, hi)
    ok = np.isfinite(sqrt) & np.isfinite(adj) & np.isfinite(mean)
    inside = float(np.mean([not f for f in bundle.outside_domain(test)])) if len(test) else np.nan
    fb = (float((bundle.predict_frame(test)["fallback"] != "").mean())
          if len(test) and hasattr(bundle, "predict_frame") else np.nan)
    return {"book": book, "variant": variant, **res, "fallback_share": fb,
            "bias_over_sd": abs(res["bias_bps"]) / res["noise_sd_bps"],
            "mae_ratio": res["mae_bps"] / res["mae_sqrt_law_bps"],
            "share_in_domain": inside, "_err": np.abs(adj[ok] - mean[ok]),
            "_err_sqrt": np.abs(adj[ok] - sqrt[ok]),
            "_err_r": np.abs(y[ok] - mean[ok]), "_err_sqrt_r": np.abs(y[ok] - sqrt[ok])}


def leave_one_book_out(synthetic: pd.DataFrame, real: Mapping[str, pd.DataFrame], *,
                       params: CostModelParams, features: list[str],
                       config: TrainingConfig | None = None,
                       real_share: float | None = None,
                       mean_label: str | None = "adjusted_bps"
                       ) -> pd.DataFrame:
    """The table of the module docstring (:data:`LOBO_COLUMNS`).

    ``synthetic``: the synthetic desk's training rows (features, ``is_bps``,
    ``timing_risk_bps``); ``real``: :func:`real_book_rows`. Needs at least two real books.
    """
    if len(real) < 2:
        raise ValueError(f"leave-one-book-out needs two real books or more, got {list(real)}")
    cfg = config or TrainingConfig()
    share = cfg.real_share if real_share is None else real_share
    rows = []
    synth_only = fit_bundle(synthetic, params, features, cfg)
    sqrt_synth = SquareRootBaseline().fit(synthetic, synthetic["is_bps"].to_numpy(np.float64))
    for held, test in real.items():
        rows.append(_row(held, "synthetic", test, synth_only, sqrt_synth.predict(test)))
        others = [real[b] for b in real if b != held]
        w = share_weights(len(synthetic), sum(len(o) for o in others), share)
        train = pd.concat([synthetic, *others], ignore_index=True)
        if mean_label is not None:
            train[MEAN_LABEL] = np.concatenate(
                [np.full(len(synthetic), np.nan)] + [o[mean_label].to_numpy(np.float64)
                                                     for o in others])
        bundle = fit_bundle(train, params, features, cfg, weight=w)
        sqrt = SquareRootBaseline().fit(train, train["is_bps"].to_numpy(np.float64))
        rows.append(_row(held, "synthetic+real", test, bundle, sqrt.predict(test)))
    table = pd.DataFrame(rows)
    pooled = []
    for variant, g in table.groupby("variant", sort=False):
        err, err_sqrt, err_r, err_sqrt_r = (np.concatenate(list(g[c])) for c in
                                            ("_err", "_err_sqrt", "_err_r", "_err_sqrt_r"))
        pooled.append({"book": "pooled", "variant": variant, "n": int(g["n"].sum()),
                       "mae_bps": float(err.mean()), "mae_sqrt_law_bps": float(err_sqrt.mean()),
                       "mae_ratio": float(err.mean() / err_sqrt.mean()),
                       "mae_realized_bps": float(err_r.mean()),
                       "mae_sqrt_law_realized_bps": float(err_sqrt_r.mean())})
    table = pd.concat([table, pd.DataFrame(pooled)], ignore_index=True)
    return table[list(LOBO_COLUMNS)]
