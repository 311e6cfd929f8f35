"""The registry's audit table: one row per action, a Parquet file rewritten atomically."""

from __future__ import annotations

import fcntl
import os
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ACTIONS = ("register", "promote", "override", "rollback", "refused")

AUDIT_SCHEMA = pa.schema([
    ("ts", pa.timestamp("us", tz="UTC")),
    ("action", pa.string()),
    ("version", pa.string()),
    ("previous_champion", pa.string()),
    ("user", pa.string()),
    ("reason", pa.string()),
    ("override_reason", pa.string()),
    ("gates_passed", pa.bool_()),
    ("gate_failures", pa.string()),
    ("run_id", pa.string()),
])
AUDIT_COLUMNS = tuple(AUDIT_SCHEMA.names)


def read_audit(path: Path) -> pd.DataFrame:
    """The audit table, oldest first (an empty frame with the columns when there is none)."""
    if not path.exists():
        return AUDIT_SCHEMA.empty_table().to_pandas()
    return pq.read_table(path, schema=AUDIT_SCHEMA).to_pandas()


def append_audit(path: Path, *, ts: datetime, action: str, version: str, user: str,
                 reason: str | None = None, previous_champion: str | None = None,
                 override_reason: str | None = None, gates_passed: bool,
                 gate_failures: str = "", run_id: str = "") -> None:
    """Append one row (the whole table is rewritten to a temporary file, then renamed, under a
    lock: concurrent appends keep every row)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; one of {', '.join(ACTIONS)}")
    row = pa.Table.from_pylist([{
        "ts": ts, "action": action, "version": version,
        "previous_champion": previous_champion, "user": user, "reason": reason,
        "override_reason": override_reason, "gates_passed": gates_passed,
        "gate_failures": gate_failures, "run_id": run_id,
    }], schema=AUDIT_SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    # read, append, rewrite under an exclusive lock: two writers (a promote job and a sensor's
    # registration, two workers) would otherwise each rewrite the table without the other's
    # row. flock is advisory and per host (POSIX); on shared storage across machines the
    # registry's database, not this file, is the record of truth.
    with open(path.with_name(path.name + ".lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        table = row
        if path.exists():
            table = pa.concat_tables([pq.read_table(path, schema=AUDIT_SCHEMA), row])
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
