"""Resources: the Parquet lake IO manager and the model registry (:mod:`pipelines.registry`).

Both keep their state under ``BESTEX_HOME`` (see ``bestex.settings``), with explicit paths, so
nothing lands in a temporary directory or in ``./mlruns``.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from bestex import settings
from models.faults import fault_point
from pipelines.registry import default_registry

_RECORD = "__record__"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write(tmp)`` and one ``os.replace``: readers see the old file or
    the new one, never a torn one, whenever the writer dies.

    The temporary file, ``.<name>.<host>.<pid>.tmp`` beside ``path``, is removed when the write
    fails; a writer killed outright (``SIGKILL``) leaves it behind, and the next write of
    ``path`` deletes the ones whose process on this host is gone.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    tmp = path.with_name(f".{path.name}.{host}.{os.getpid()}.tmp")
    try:
        write(tmp)
        fault_point("lake.replace")  # the re-execution drill (models.faults)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    prefix = f".{path.name}.{host}."
    for left in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = left.name[len(prefix):-len(".tmp")] if left.name.startswith(prefix) else ""
        if pid.isdigit() and not _alive(int(pid)):
            left.unlink(missing_ok=True)


class ParquetLakeIOManager(dg.ConfigurableIOManager):
    """Stores DataFrame outputs as Parquet at ``<base_path>/<asset/key/path>[/<partition>].parquet``.

    Dict outputs are stored as JSON beside them. Partitioned upstreams loaded as one input are
    concatenated in partition order. Every file is written aside and moved into place
    (:func:`_write_atomically`), so a step killed mid-write and re-executed leaves one whole
    file per asset and partition.
    """

    base_path: str

    def _path(self, key: dg.AssetKey, partition: str | None, suffix: str) -> Path:
        root = Path(self.base_path).joinpath(*key.path)
        return (root / f"{partition}{suffix}") if partition else root.with_suffix(suffix)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        partition = context.partition_key if context.has_partition_key else None
        if isinstance(obj, pd.DataFrame):
            path = self._path(context.asset_key, partition, ".parquet")
            table = pa.Table.from_pandas(obj, preserve_index=False)
            _write_atomically(path, lambda tmp: pq.write_table(table, tmp))
        elif isinstance(obj, dict):
            path = self._path(context.asset_key, partition, ".json")
            text = json.dumps(obj, indent=2, default=str)
            _write_atomically(path, lambda tmp: tmp.write_text(text))
        elif isinstance(obj, BaseModel):  # a typed record: its type travels with it
            path = self._path(context.asset_key, partition, ".json")
            kind = f"{type(obj).__module__}:{type(obj).__qualname__}"
            text = json.dumps({_RECORD: kind, **json.loads(obj.model_dump_json())}, indent=2)
            _write_atomically(path, lambda tmp: tmp.write_text(text))
        else:
            raise TypeError(
                f"{context.asset_key.to_user_string()}: the lake stores DataFrames, dicts and "
                "pydantic records, "
                f"got {type(obj).__name__}"
            )
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def _read(self, key: dg.AssetKey, partition: str | None) -> Any:
        pq_path = self._path(key, partition, ".parquet")
        if pq_path.exists():
            return pq.read_table(pq_path).to_pandas()
        js_path = self._path(key, partition, ".json")
        if js_path.exists():
            data = json.loads(js_path.read_text())
            if isinstance(data, dict) and _RECORD in data:
                module, _, name = data.pop(_RECORD).partition(":")
                return getattr(importlib.import_module(module), name).model_validate(data)
            return data
        raise FileNotFoundError(
            f"{key.to_user_string()} (partition {partition}) is not materialized: "
            f"no {pq_path} — materialize it first"
        )

    def load_input(self, context: dg.InputContext) -> Any:
        key = context.asset_key
        if context.has_asset_partitions:
            parts = list(context.asset_partition_keys)
            if len(parts) == 1:
                return self._read(key, parts[0])
            frames = [self._read(key, p) for p in parts]
            return pd.concat(frames, ignore_index=True)
        return self._read(key, None)


def local_resources() -> dict[str, Any]:
    """Resources for a single machine: everything under ``BESTEX_HOME``."""
    home = settings.home()
    return {
        "io_manager": ParquetLakeIOManager(base_path=str(home / "lake")),
        "registry": default_registry(),
    }
