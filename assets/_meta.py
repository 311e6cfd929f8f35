"""Materialization metadata shared by every asset: counts, time range, preview, content hash."""


import hashlib

import dagster as dg
import pandas as pd

from validation.quarantine import CleanseResult

_TIME_COLS = ("ts", "fill_ts", "decision_ts", "date", "start_date")


def content_hash(df: pd.DataFrame) -> str:
    """A stable digest of a frame's values and columns (first 16 hex chars of sha256)."""
    h = hashlib.sha256(",".join(map(str, df.columns)).encode())
    if len(df):
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def frame_metadata(df: pd.DataFrame, *, preview_rows: int = 5) -> dict[str, dg.MetadataValue]:
    """Row count, time range, symbols, a markdown preview and a content hash."""
    meta: dict[str, dg.MetadataValue] = {
        "dagster/row_count": dg.MetadataValue.int(len(df)),
        "content_hash": dg.MetadataValue.text(content_hash(df)),
    }
    for col in _TIME_COLS:
        if col in df.columns and len(df):
            meta["time_min"] = dg.MetadataValue.text(str(df[col].min()))
            meta["time_max"] = dg.MetadataValue.text(str(df[col].max()))
            break
    if "symbol" in df.columns:
        meta["symbols"] = dg.MetadataValue.int(int(df["symbol"].nunique()))
    if len(df):
        meta["preview"] = dg.MetadataValue.md(df.head(preview_rows).to_markdown(index=False))
    return meta


def cleanse_metadata(result: CleanseResult) -> dict[str, dg.MetadataValue]:
    """Frame metadata of the clean table plus input/clean/quarantined counts by rule."""
    meta = frame_metadata(result.clean)
    meta.update(
        {
            "rows_in": dg.MetadataValue.int(result.rows_in),
            "rows_clean": dg.MetadataValue.int(len(result.clean)),
            "rows_quarantined": dg.MetadataValue.int(len(result.quarantine)),
            "quarantine_by_rule": dg.MetadataValue.json(result.counts_by_rule),
            "outages": dg.MetadataValue.int(len(result.outages)),
            "source": dg.MetadataValue.text(result.source),
        }
    )
    return meta
