"""Quarantine: where rejected rows go, with the rule that caught them.

The invariant every cleansing step keeps: ``rows_in == len(clean) + len(quarantine)``. A rejected
source row appears exactly once in the quarantine table, under the first rule that caught it;
``detail`` lists every rule it failed. Nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from validation.contracts import RowFailure, empty, split_valid


@dataclass(frozen=True)
class CleanseResult:
    """The outcome of cleansing one source table.

    Attributes
    ----------
    table : str
        Contract name of the table.
    source : str
        Where the rows came from (a path or a generator name).
    rows_in : int
        Rows read from the source.
    clean : pandas.DataFrame
        Rows that passed every rule, in the table's contract.
    quarantine : pandas.DataFrame
        One row per rejected source row (``QuarantineSchema``).
    outages : pandas.DataFrame
        Feed gaps found while cleansing (``OutagesSchema``); informative, nothing is deleted.
    """

    table: str
    source: str
    rows_in: int
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    outages: pd.DataFrame = field(default_factory=lambda: empty("outages"))

    @property
    def counts_by_rule(self) -> dict[str, int]:
        """Quarantined rows per rule, most frequent first."""
        return dict(Counter(self.quarantine["rule"]).most_common())

    @property
    def reconciles(self) -> bool:
        """``rows_in == clean + quarantined``."""
        return self.rows_in == len(self.clean) + len(self.quarantine)

    def summary(self) -> dict[str, object]:
        """A JSON-ready summary: input, clean and quarantined counts, by rule."""
        return {
            "table": self.table,
            "source": self.source,
            "rows_in": self.rows_in,
            "clean": len(self.clean),
            "quarantined": len(self.quarantine),
            "by_rule": self.counts_by_rule,
            "outages": len(self.outages),
            "reconciles": self.reconciles,
        }


def _records(df: pd.DataFrame, rows: np.ndarray) -> list[str]:
    sub = df.iloc[rows]
    return [json.dumps(r, default=str) for r in sub.to_dict(orient="records")]


def quarantine_frame(
    table: str,
    source: str,
    raw: pd.DataFrame,
    rows: np.ndarray,
    rules: list[str] | np.ndarray,
    details: list[str] | np.ndarray,
) -> pd.DataFrame:
    """Build quarantine rows for positions ``rows`` of ``raw`` (one rule and detail per row)."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return empty("quarantine")
    return pd.DataFrame(
        {
            "table": table,
            "source": source,
            "row": rows,
            "rule": np.asarray(rules, dtype=object),
            "detail": np.asarray(details, dtype=object),
            "record": _records(raw, rows),
        }
    )


def failures_to_quarantine(
    table: str, source: str, raw: pd.DataFrame, failures: list[RowFailure]
) -> pd.DataFrame:
    """Collapse row failures (possibly several per row) into one quarantine row per source row."""
    by_row: dict[int, list[RowFailure]] = {}
    for f in failures:
        by_row.setdefault(f.row, []).append(f)
    rows = np.array(sorted(by_row), dtype=np.int64)
    rules = [by_row[r][0].rule for r in rows]
    details = [
        "; ".join(f"{f.rule}" + (f" (got {f.value})" if f.value else "") for f in by_row[r])
        for r in rows
    ]
    return quarantine_frame(table, source, raw, rows, rules, details)


def cleanse_contract(table: str, raw: pd.DataFrame, *, source: str) -> CleanseResult:
    """Check ``raw`` against the contract of ``table`` and quarantine every failing row.

    Raises
    ------
    validation.contracts.ContractError
        When columns are missing or unknown (the table cannot be checked row by row).
    """
    raw = raw.reset_index(drop=True)
    clean, failures = split_valid(table, raw, source=source)
    q = failures_to_quarantine(table, source, raw, failures)
    return CleanseResult(table=table, source=source, rows_in=len(raw), clean=clean, quarantine=q)


def concat_quarantine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate quarantine frames (empty list -> empty quarantine)."""
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else empty("quarantine")
