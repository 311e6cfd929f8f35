"""Quarantine: where rejected rows go, with the rule that caught them.

The invariant every cleansing step keeps: ``rows_in == len(clean) + len(quarantine)``. A rejected
source row appears exactly once in the quarantine table, under the first rule that caught it;
``detail`` lists every rule it failed. Nothing is dropped silently.

Quarantine tables can be most of a file, so they are built without a Python loop over rows:
``record`` (the source row as ``json.dumps(record, default=str)`` writes it) is assembled column by
column with pyarrow string kernels, formatting each distinct value and each distinct row once
(``validation._cleansing_text``). The text columns have the ``str`` dtype of
``validation.contracts.empty("quarantine")``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

from validation._cleansing_text import as_text, json_records, repeat
from validation.contracts import RowFailure, empty, split_valid

_STR: Final = pd.StringDtype("pyarrow", na_value=np.nan)


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
    naive_utc : mapping of str to int
        Per timestamp column, how many values had no UTC offset and were taken as UTC
        (:func:`validation.values.parse_timestamps`); empty when every value had one.
    """

    table: str
    source: str
    rows_in: int
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    outages: pd.DataFrame = field(default_factory=lambda: empty("outages"))
    naive_utc: Mapping[str, int] = field(default_factory=dict)

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
            "naive_timestamps_taken_as_utc": dict(self.naive_utc),
            "reconciles": self.reconciles,
        }


def _text_column(values: object) -> pd.api.extensions.ExtensionArray:
    return pd.array(as_text(values), dtype=_STR)


def quarantine_frame(
    table: str,
    source: str,
    raw: pd.DataFrame,
    rows: np.ndarray,
    rules: list[str] | np.ndarray | pa.Array,
    details: list[str] | np.ndarray | pa.Array,
    *,
    row_ids: np.ndarray | None = None,
    exclude: Sequence[str] = (),
) -> pd.DataFrame:
    """Build quarantine rows for positions ``rows`` of ``raw`` (one rule and detail per row).

    Parameters
    ----------
    table, source : str
        Written into every row.
    raw : pandas.DataFrame
        The rows as read; ``record`` is the JSON of ``raw.iloc[rows]``
        (``json.dumps(record, default=str)`` format, built without a Python loop over rows).
    rows : numpy.ndarray
        0-based positions in ``raw``.
    rules, details : sequence of str
        One per position (lists, numpy arrays or pyarrow string arrays).
    row_ids : numpy.ndarray or None, default=None
        The source row number of every row of ``raw`` (length ``len(raw)``); ``row`` is then
        ``row_ids[rows]`` instead of ``rows``. For tables derived from a file (one row per
        execution message, several rows per book event) this points ``row`` into the file.
    exclude : sequence of str, default=()
        Columns of ``raw`` left out of ``record`` (bookkeeping columns such as the row ids).
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return empty("quarantine")
    ids = rows if row_ids is None else np.asarray(row_ids, dtype=np.int64)[rows]
    return pd.DataFrame(
        {
            "table": _text_column(repeat(table, len(rows))),
            "source": _text_column(repeat(source, len(rows))),
            "row": ids,
            "rule": _text_column(rules),
            "detail": _text_column(details),
            "record": _text_column(json_records(raw, rows, exclude)),
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


def cleanse_contract(table: str, raw: pd.DataFrame, *, source: str,
                     epoch_unit: str | None = None) -> CleanseResult:
    """Check ``raw`` against the contract of ``table`` and quarantine every failing row.

    Raises
    ------
    validation.contracts.ContractError
        When columns are missing or unknown (the table cannot be checked row by row).
    """
    raw = raw.reset_index(drop=True)
    clean, failures = split_valid(table, raw, source=source, epoch_unit=epoch_unit)
    q = failures_to_quarantine(table, source, raw, failures)
    return CleanseResult(table=table, source=source, rows_in=len(raw), clean=clean, quarantine=q,
                         naive_utc=dict(clean.attrs.get("naive_utc", {})))


def concat_quarantine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate quarantine frames (empty list -> empty quarantine)."""
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else empty("quarantine")
