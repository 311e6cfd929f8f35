"""Resources: the Parquet lake IO manager and the MLflow tracking resource.

Both keep their state under ``BESTEX_HOME`` (see ``bestex.settings``), with explicit paths, so
nothing lands in a temporary directory or in ``./mlruns``.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bestex import settings


class ParquetLakeIOManager(dg.ConfigurableIOManager):
    """Stores DataFrame outputs as Parquet at ``<base_path>/<asset/key/path>[/<partition>].parquet``.

    Dict outputs are stored as JSON beside them. Partitioned upstreams loaded as one input are
    concatenated in partition order.
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
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pandas(obj, preserve_index=False), path)
        elif isinstance(obj, dict):
            path = self._path(context.asset_key, partition, ".json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(obj, indent=2, default=str))
        else:
            raise TypeError(
                f"{context.asset_key.to_user_string()}: the lake stores DataFrames and dicts, "
                f"got {type(obj).__name__}"
            )
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def _read(self, key: dg.AssetKey, partition: str | None) -> Any:
        pq_path = self._path(key, partition, ".parquet")
        if pq_path.exists():
            return pq.read_table(pq_path).to_pandas()
        js_path = self._path(key, partition, ".json")
        if js_path.exists():
            return json.loads(js_path.read_text())
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


class MLflowResource(dg.ConfigurableResource):
    """MLflow tracking with its SQLite database and artifacts under ``BESTEX_HOME/mlflow``.

    The only place the project imports ``mlflow``; later issues log runs and register models
    through it.
    """

    root: str

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{Path(self.root) / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return Path(self.root) / "artifacts"

    def _mlflow(self) -> Any:
        os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        import mlflow

        Path(self.root).mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self.tracking_uri)
        return mlflow

    def experiment_id(self, name: str) -> str:
        """Get or create experiment ``name`` with its artifacts under ``artifact_root``."""
        mlflow = self._mlflow()
        exp = mlflow.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = (self.artifact_root / name).resolve().as_uri()
        return mlflow.create_experiment(name, artifact_location=location)

    @contextlib.contextmanager
    def start_run(
        self, *, experiment: str, run_name: str, tags: dict[str, str] | None = None
    ) -> Iterator[Any]:
        """Start a run in ``experiment``; yields the ``mlflow`` module with the run active."""
        mlflow = self._mlflow()
        exp_id = self.experiment_id(experiment)
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=tags or {}):
            yield mlflow

    @contextlib.contextmanager
    def resume_run(self, run_id: str) -> Iterator[Any]:
        """Reopen run ``run_id`` (e.g. to attach a validation stage's report to the model's run)."""
        mlflow = self._mlflow()
        with mlflow.start_run(run_id=run_id):
            yield mlflow

    def log_dataset(self, mlflow: Any, df: Any, *, name: str, context: str,
                    time_col: str | None = None, digest: str | None = None) -> None:
        """Log ``df`` as a run input with its digest and, when ``time_col`` is given, time range."""
        from mlflow.data import from_pandas

        tags = {}
        if time_col and time_col in df.columns and len(df):
            tags = {"time_min": str(df[time_col].min()), "time_max": str(df[time_col].max())}
        with warnings.catch_warnings():  # the schema is a record of the data, not a contract
            warnings.filterwarnings("ignore", message=".*Inferred schema contains integer")
            ds = from_pandas(df, name=name, digest=digest)
            mlflow.log_input(ds, context=context, tags=tags)  # the schema is inferred here

    def log_xgboost(self, mlflow: Any, booster: Any, *, name: str, input_example: Any,
                    predictions: Any) -> str:
        """Log an XGBoost booster with signature, input example and explicit pip requirements."""
        import xgboost
        from mlflow.models import infer_signature

        info = mlflow.xgboost.log_model(
            booster, name=name,
            signature=infer_signature(input_example, predictions),
            input_example=input_example,
            pip_requirements=[f"xgboost-cpu=={xgboost.__version__}", "pandas", "numpy"],
        )
        return info.model_uri

    def trial_runs(self, *, experiment: str, parent_run_id: str,
                   trials: list[dict[str, Any]]) -> None:
        """One nested run per tuning trial (params, CV loss, state) for comparison in the UI."""
        mlflow = self._mlflow()
        exp_id = self.experiment_id(experiment)
        client = mlflow.MlflowClient()
        for t in trials:
            run = client.create_run(exp_id, run_name=f"trial-{t['number']}",
                                    tags={"mlflow.parentRunId": parent_run_id,
                                          "trial_state": str(t.get("state", ""))})
            for k, v in t.get("params", {}).items():
                client.log_param(run.info.run_id, k, v)
            if t.get("value") is not None:
                client.log_metric(run.info.run_id, "cv_loss", float(t["value"]))
            client.set_terminated(run.info.run_id)


def local_resources() -> dict[str, Any]:
    """Resources for a single machine: everything under ``BESTEX_HOME``."""
    home = settings.home()
    return {
        "io_manager": ParquetLakeIOManager(base_path=str(home / "lake")),
        "mlflow": MLflowResource(root=str(home / "mlflow")),
    }
