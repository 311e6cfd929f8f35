"""Validation stage 3: walk-forward retraining, rolled forward, scored window by window.

The holdout (stage 2) says the model generalizes once; the walk-forward says it keeps doing so
when it is retrained periodically, the way it will live in production. The orders in time order
are cut into ``n_windows + 1`` equal blocks of decisions (:meth:`PurgedWalkForward.blocks
<validation.splitters.PurgedWalkForward.blocks>`, at least 2 orders each); window ``j`` tests
block ``j + 1`` and trains on

* ``expanding``: every order before the test block, or
* ``rolling``: the orders of the block just before it (a fixed-length window),

with every training order whose label ends at or after the test's first decision (``t1 >= t0``)
purged, and those ending within ``embargo`` before it too (the same rule as the holdout).
The model is refitted in every window (``fit_predict``) and scored on the test block with the
metrics of :func:`models.cost_models.evaluate`, next to each baseline refitted on the same
training orders. :func:`stability` summarizes the windows.

Pure: callables in, a table out; nothing here knows Dagster or MLflow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from models.cost_models import evaluate
from validation.splitters import PurgedWalkForward

Predictor = Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]
"""``fit_predict(train, test) -> predictions for test`` (bps), refitted on ``train``."""

Scheme = Literal["expanding", "rolling"]

__all__ = ["Predictor", "stability", "walk_forward"]


def walk_forward(ds: pd.DataFrame, fit_predict: Predictor, *,
                 baselines: Mapping[str, Predictor] | None = None, n_windows: int = 6,
                 schemes: Sequence[Scheme] = ("expanding", "rolling"),
                 embargo: pd.Timedelta | None = None, label: str = "is_bps",
                 truth: str | None = "truth_bps",
                 progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Retrain and score the cost model window by window.

    Parameters
    ----------
    ds : pandas.DataFrame
        One row per order with ``decision_ts``, ``t1`` and ``label`` (and ``truth`` when known),
        plus whatever ``fit_predict`` reads; sorted here by ``decision_ts``.
    fit_predict : callable
        ``fit_predict(train, test) -> array`` of predicted cost for ``test``.
    baselines : mapping of str to callable, optional
        Named baselines with the same signature, refitted in every window.
    n_windows : int, default=6
        Test windows per scheme.
    schemes : sequence of {"expanding", "rolling"}
    embargo : pandas.Timedelta, optional (default 0)
        A training order is kept only when ``t1 + embargo < t0`` of the test block.
    label, truth : str
        Realized-cost column, and the true expected cost (None or absent: not scored).
    progress : callable, optional
        Called with one line per window.

    Returns
    -------
    pandas.DataFrame
        One row per (scheme, window): ``scheme, window, train_start, train_end, train_max_t1,
        test_start, test_end, n_train, n_test``, then ``model_<metric>`` and
        ``<baseline>_<metric>`` for ``mae, rmse, r2, bias`` (and ``truth_mae, r2_over_oracle``
        when the truth is known), and ``beats_<baseline>`` (the model's truth MAE, else MAE,
        below the baseline's).
    """
    need = {"decision_ts", "t1", label}
    missing = sorted(need - set(ds.columns))
    if missing:
        raise ValueError(f"walk_forward: ds lacks column(s) {missing}")
    embargo = pd.Timedelta(0) if embargo is None else pd.Timedelta(embargo)
    ds = ds.sort_values("decision_ts", kind="stable").reset_index(drop=True)
    has_truth = truth is not None and truth in ds.columns
    blocks = PurgedWalkForward.blocks(len(ds), n_windows, min_rows=2)
    dec = ds["decision_ts"]
    t1 = ds["t1"]
    rows = []
    for scheme in schemes:
        if scheme not in ("expanding", "rolling"):
            raise ValueError(f"unknown scheme {scheme!r}; use 'expanding' or 'rolling'")
        for j in range(n_windows):
            a, b = blocks[j + 1]
            lo = 0 if scheme == "expanding" else blocks[j][0]
            t0 = dec.iloc[a]
            keep = np.arange(lo, a)
            keep = keep[(t1.iloc[keep] + embargo < t0).to_numpy()]
            train, test = ds.iloc[keep], ds.iloc[a:b]
            if len(train) < 2:
                raise ValueError(f"walk_forward {scheme} window {j}: {len(train)} training "
                                 "orders left after purging; use fewer windows or a shorter "
                                 "embargo")
            y = test[label].to_numpy(np.float64)
            tv = test[truth].to_numpy(np.float64) if has_truth else None
            preds = {"model": np.asarray(fit_predict(train, test), dtype=np.float64)}
            for name, fn in (baselines or {}).items():
                preds[name] = np.asarray(fn(train, test), dtype=np.float64)
            row = {"scheme": scheme, "window": j, "train_start": dec.iloc[keep[0]],
                   "train_end": dec.iloc[keep[-1]], "train_max_t1": t1.iloc[keep].max(),
                   "test_start": t0, "test_end": dec.iloc[b - 1], "n_train": len(train),
                   "n_test": len(test)}
            for name, p in preds.items():
                m = evaluate(y, p, truth=tv)
                row[f"{name}_bias"] = float(np.mean(y - p))
                for k in ("mae", "rmse", "r2", "truth_mae", "r2_over_oracle"):
                    if k in m:
                        row[f"{name}_{k}"] = float(m[k])
            key = "truth_mae" if has_truth else "mae"
            for name in (baselines or {}):
                row[f"beats_{name}"] = bool(row[f"model_{key}"] < row[f"{name}_{key}"])
            rows.append(row)
            if progress is not None:
                progress(f"walk-forward {scheme} {j + 1}/{n_windows}: train {len(train)}, "
                         f"test {len(test)}, model {key} {row[f'model_{key}']:.2f}")
    return pd.DataFrame(rows)


def stability(windows: pd.DataFrame, metric: str = "truth_mae") -> pd.DataFrame:
    """Per scheme: mean, sd and coefficient of variation of ``model_<metric>`` over the windows,
    its worst window, and the share of windows beating each baseline."""
    col = f"model_{metric}"
    if col not in windows.columns:
        raise ValueError(f"stability: no column {col!r} in the walk-forward table")
    out = []
    for scheme, g in windows.groupby("scheme", sort=False):
        v = g[col].to_numpy(np.float64)
        row = {"scheme": scheme, "windows": len(g), f"mean_{metric}": float(v.mean()),
               f"sd_{metric}": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
               f"worst_{metric}": float(v.max())}
        row["cv"] = row[f"sd_{metric}"] / row[f"mean_{metric}"] if row[f"mean_{metric}"] else np.nan
        for c in g.columns:
            if c.startswith("beats_"):
                row[f"share_{c}"] = float(g[c].mean())
        out.append(row)
    return pd.DataFrame(out)
