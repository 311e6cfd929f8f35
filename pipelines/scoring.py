"""Score a registered cost model on a book it has not seen (``bestex score BOOK``).

The book comes in through the one way in (:func:`sources.ingest`: a LOBSTER zip, folder or CSV
pair, or a BitMEX snapshot file with its trades), each symbol-day becomes a
:class:`models.desk_history.RecordedBook`, the desk of :func:`validation.stress.book_spec`
(a recorded episode's own desk, or estimates taken from the book) is replayed on it with the
simulator's fills and footprint, and the model's predictions are scored against the realized
costs by :func:`validation.stress.score_book`, beside the square-root law the model was
calibrated with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

import sources
from models.cost_bundle import CostModelBundle
from models.features import apply_parametric
from pipelines.registry import ModelRegistry, default_registry
from validation.contracts import ContractError
from validation.stress import book_spec, score_book

__all__ = ["SCORE_COLUMNS", "score_book_file"]

SCORE_COLUMNS: Final = ("name", "n", "bias_bps", "noise_sd_bps", "coverage80",
                        "coverage80_paths", "mae_bps", "mae_sqrt_law_bps", "bias_realized_bps",
                        "mae_realized_bps", "share_in_domain", "fallback_share")
"""What ``bestex score`` prints per symbol-day: bias and MAE against the market-adjusted cost
(the realized cost less the book's own move), coverage of the realized cost on the recorded
path and over resampled paths (:func:`validation.stress.score_book`)."""


def _sqrt_law(bundle: CostModelBundle) -> Callable[[pd.DataFrame], np.ndarray] | None:
    """The square-root law of the model's own training run, in bps of the whole cost."""
    cal = bundle.calibrations
    if cal is None or cal.sqrt is None:
        return None

    def predict(feats: pd.DataFrame) -> np.ndarray:
        sq = apply_parametric(feats, cal, update_knowledge=False)["sqrt_pred_bps"]
        sq = sq.to_numpy(np.float64)
        if cal.net_of_half_spread:  # fitted net of the half spread: add it back
            sq = sq + feats["arrival_spread_bps"].to_numpy(np.float64) / 2
        return sq

    return predict


def score_book_file(path: str | Path, *, model: str | int = "champion", orders: int = 500,
                    seed: int = 0, trades: str | Path | None = None,
                    registry: ModelRegistry | None = None) -> list[dict[str, Any]]:
    """One row per symbol-day of the book at ``path``: :data:`SCORE_COLUMNS` (and ``book``,
    ``symbol``) for the registered ``model`` (alias, version or URI)."""
    if orders < 10:
        raise ContractError(f"--orders {orders}: score at least 10 orders")
    books = sources.recorded_books(path, trades=trades)
    bundle = (registry or default_registry()).load_bundle(model)
    rows = []
    for book, kind in books:
        spec, name = book_spec(book, kind)
        try:
            row = score_book(book, spec, bundle.predict, n_orders=orders, seed=seed,
                             domain=bundle.outside_domain, sqrt_law=_sqrt_law(bundle),
                             calibrations=bundle.calibrations,
                             fallback=lambda f: bundle.predict_frame(f)["fallback"])
            row["note"] = spec.note
        except ValueError as exc:  # a book too short to replay a desk on: said, not scored
            row = {"book": book.source, "symbol": book.symbol, "n": 0,
                   **{c: np.nan for c in SCORE_COLUMNS[2:]}, "note": f"not scored: {exc}"}
        rows.append({"name": name, **row})
    return rows
