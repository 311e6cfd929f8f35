"""A desk's own files: parent orders and child fills into their contracts, and the parent
orders' impact calibration (``bestex calibrate-impact``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.impact_calibration import CalibrationResult, ModelName, calibrate
from sources._io import read_table_file
from validation.contracts import RowFailure, check_columns, split_valid
from validation.quarantine import CleanseResult, cleanse_contract, failures_to_quarantine

__all__ = ["calibrate_file", "load_desk_history"]


def load_desk_history(parent_orders_path: str | Path,
                      child_fills_path: str | Path) -> tuple[CleanseResult, CleanseResult]:
    """Read a desk's parent orders and child fills (Parquet or CSV) into their contracts.

    Rows failing a contract rule are quarantined (``validation.quarantine``), never dropped.
    Beyond the ``child_fills`` contract, a fill is quarantined when its ``order_id`` is not a
    clean parent order (rule ``orphan_fill``) or when it precedes its parent's ``decision_ts``
    (rule ``fill_before_decision``).

    Raises
    ------
    validation.contracts.ContractError
        A file cannot be read, or lacks (or has unknown) columns; the message names the file.
    """
    src_p, src_f = str(parent_orders_path), str(child_fills_path)
    parents = cleanse_contract("parent_orders", read_table_file(parent_orders_path),
                               source=src_p)
    raw = read_table_file(child_fills_path).reset_index(drop=True)
    check_columns("child_fills", raw, source=src_f)
    clean, fails = split_valid("child_fills", raw, source=src_f)
    # positions of the clean rows in `raw`
    bad = {f.row for f in fails}
    pos = np.array([i for i in range(len(raw)) if i not in bad], np.int64)
    decision = parents.clean.set_index(parents.clean["order_id"].astype(str))["decision_ts"]
    oid = clean["order_id"].astype(str)
    orphan = ~oid.isin(decision.index).to_numpy()
    early = np.zeros(len(clean), bool)
    known = ~orphan
    early[known] = (clean["fill_ts"].to_numpy()[known]
                    < decision.reindex(oid[known]).to_numpy())
    extra = [RowFailure(int(pos[i]), "order_id", "orphan_fill", repr(oid.iloc[i]))
             for i in np.flatnonzero(orphan)]
    extra += [RowFailure(int(pos[i]), "fill_ts", "fill_before_decision",
                         str(clean["fill_ts"].iloc[i])) for i in np.flatnonzero(early)]
    keep = ~(orphan | early)
    fills = CleanseResult(table="child_fills", source=src_f, rows_in=len(raw),
                          clean=clean[keep].reset_index(drop=True),
                          quarantine=failures_to_quarantine("child_fills", src_f, raw,
                                                            fails + extra))
    return parents, fills


def calibrate_file(path: str | Path, model: ModelName, *, by: str | None = None,
                   robust: bool = False) -> CalibrationResult:
    """Read a Parquet or CSV file of parent orders and
    :func:`models.impact_calibration.calibrate` it.

    Raises
    ------
    validation.contracts.ContractError
        The file cannot be read (a ``ValueError``).
    ValueError
        As :func:`models.impact_calibration.calibrate`, with the path in the message.
    """
    return calibrate(model, read_table_file(path), by=by, robust=robust, source=str(path))
