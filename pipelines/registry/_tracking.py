"""Tracking: experiments, runs, datasets, the cost model logged whole as a pyfunc, and loading it
back (mixin of :class:`pipelines.registry.ModelRegistry`)."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import xgboost
from mlflow.data import from_pandas
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from models.cost_bundle import SERVING_INPUTS, CostModelBundle, check_serving_rows

_PYFUNC_FILE = Path(__file__).with_name("cost_model_pyfunc.py")
_PROJECT = Path(__file__).resolve().parents[2]
_CODE_PATHS = [str(_PROJECT / "models"), str(_PROJECT / "validation")]
MODEL_ARTIFACT = "cost_model"
"""Name of the logged pyfunc model in the training run."""


def _quiet_env() -> None:
    os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # creating or migrating the SQLite store logs INFO lines on stderr: not the user's business
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)


def serving_signature() -> ModelSignature:
    """The pyfunc's input schema (:data:`models.cost_bundle.SERVING_INPUTS`) and its outputs."""
    inputs = Schema([ColSpec(c.type, c.name, required=c.required) for c in SERVING_INPUTS])
    outputs = Schema([ColSpec("double", n) for n in ("mean_bps", "p10_bps", "p90_bps",
                                                     "noise_sd_bps")]
                     + [ColSpec("boolean", "in_domain"), ColSpec("string", "domain_reason"),
                        ColSpec("string", "fallback")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def serving_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` restricted to the serving columns, timestamps as ISO 8601 UTC strings (the
    schema's type) and numbers as float64: the form the pyfunc and the HTTP server accept."""
    given = dict(rows.items())
    out: dict[str, Any] = {}
    for c in SERVING_INPUTS:
        v = given.get(c.name)
        if v is None:
            continue
        if c.name.endswith("_ts") and pd.api.types.is_datetime64_any_dtype(v):
            ns = pd.DatetimeIndex(pd.to_datetime(v, utc=True)).tz_localize(None).as_unit("ns")
            out[c.name] = np.datetime_as_string(ns.to_numpy(), unit="auto", timezone="UTC")
        elif c.type == "long":
            out[c.name] = v.to_numpy(np.int64)
        elif c.type == "double":
            out[c.name] = v.to_numpy(np.float64, na_value=np.nan)
        else:
            out[c.name] = np.where(v.notna().to_numpy(), v.to_numpy(object), None)
    return pd.DataFrame(out, index=rows.index)


@dataclass
class Run:
    """An active MLflow run: what the project logs to it (nothing else touches ``mlflow``)."""

    run_id: str

    def log_params(self, params: Mapping[str, Any]) -> None:
        mlflow.log_params(dict(params))

    def log_metrics(self, metrics: Mapping[str, float | None]) -> None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()
                            if v is not None and np.isfinite(v)})

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_dict(self, obj: Any, path: str) -> None:
        mlflow.log_dict(obj, path)

    def log_text(self, text: str, path: str) -> None:
        mlflow.log_text(text, path)

    def log_table(self, df: pd.DataFrame, path: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / Path(path).name
            df.to_csv(f, index=False)
            mlflow.log_artifact(str(f), artifact_path=str(Path(path).parent) or None)

    def log_dataset(self, df: pd.DataFrame, *, name: str, context: str,
                    time_col: str | None = None, digest: str | None = None) -> None:
        """``df`` as a run input with its digest and, with ``time_col``, its time range."""
        tags = {}
        if time_col and time_col in df.columns and len(df):
            tags = {"time_min": str(df[time_col].min()), "time_max": str(df[time_col].max())}
        with warnings.catch_warnings():  # the schema is a record of the data, not a contract
            warnings.filterwarnings("ignore", message=".*Inferred schema contains integer")
            ds = from_pandas(df, name=name, digest=digest)
            mlflow.log_input(ds, context=context, tags=tags)

    def log_cost_model(self, bundle: CostModelBundle, *, example_rows: pd.DataFrame) -> str:
        """Log ``bundle`` whole as the pyfunc ``cost_model`` (bundle folder as its artifact,
        the serving signature, ``example_rows`` as input example); returns the model URI."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = bundle.save(Path(tmp) / "bundle")
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*pip.*")
                info = mlflow.pyfunc.log_model(
                    name=MODEL_ARTIFACT, python_model=str(_PYFUNC_FILE),
                    artifacts={"bundle": str(folder)}, code_paths=_CODE_PATHS,
                    signature=serving_signature(),
                    input_example=serving_frame(example_rows),
                    # what the serving path imports (not pandera: it never loads the contracts)
                    pip_requirements=[f"xgboost-cpu=={xgboost.__version__}",
                                      f"mlflow=={mlflow.__version__}", "pandas", "numpy",
                                      "pydantic", "exchange_calendars", "scipy"])
        return info.model_uri


class _Tracking:
    """Tracking half of the registry resource (``tracking_uri``, ``artifact_root``, ``name``
    and ``client`` come from :class:`pipelines.registry.ModelRegistry`)."""

    def _mlflow(self) -> Any:
        _quiet_env()
        Path(self.root).mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow

    def experiment_id(self, name: str) -> str:
        """Get or create experiment ``name`` with its artifacts under ``artifact_root``."""
        ml = self._mlflow()
        exp = ml.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = (self.artifact_root / name).resolve().as_uri()
        return ml.create_experiment(name, artifact_location=location)

    @contextlib.contextmanager
    def start_run(self, *, experiment: str, run_name: str,
                  tags: Mapping[str, str] | None = None) -> Iterator[Run]:
        """Start a run in ``experiment``; yields a :class:`Run` to log to."""
        ml = self._mlflow()
        exp_id = self.experiment_id(experiment)
        with ml.start_run(experiment_id=exp_id, run_name=run_name, tags=dict(tags or {})) as r:
            yield Run(r.info.run_id)

    @contextlib.contextmanager
    def resume_run(self, run_id: str) -> Iterator[Run]:
        """Reopen run ``run_id`` (to attach a validation stage's report to the model's run)."""
        ml = self._mlflow()
        with ml.start_run(run_id=run_id):
            yield Run(run_id)

    def attach(self, run_id: str, stage: str, files: Sequence[str | Path],
               metrics: Mapping[str, float | None] | None = None) -> None:
        """A validation stage's report and plots under ``validation/<stage>`` of the run."""
        with self.resume_run(run_id) as run:
            for f in files:
                run.log_artifact(f, artifact_path=f"validation/{stage}")
            if metrics:
                run.log_metrics(metrics)

    def trial_runs(self, *, experiment: str, parent_run_id: str,
                   trials: list[dict[str, Any]]) -> None:
        """One nested run per tuning trial (params, CV loss, state) for comparison in the UI."""
        exp_id = self.experiment_id(experiment)
        for t in trials:
            run = self.client.create_run(exp_id, run_name=f"trial-{t['number']}",
                                         tags={"mlflow.parentRunId": parent_run_id,
                                               "trial_state": str(t.get("state", ""))})
            for k, v in t.get("params", {}).items():
                self.client.log_param(run.info.run_id, k, v)
            if t.get("value") is not None:
                self.client.log_metric(run.info.run_id, "cv_loss", float(t["value"]))
            self.client.set_terminated(run.info.run_id)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)

    def run_params(self, run_id: str) -> dict[str, str]:
        """The parameters logged on run ``run_id`` (MLflow keeps them as text)."""
        return dict(self.client.get_run(run_id).data.params)

    def stage_report(self, run_id: str, stage: str) -> str | None:
        """The ``validation/<stage>/report.md`` logged on run ``run_id`` (None if absent)."""
        self._mlflow()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=f"validation/{stage}/report.md", dst_path=tmp)
                return Path(path).read_text()
        except (OSError, MlflowException):
            return None

    # ---------------------------------------------------------------- the model, whole

    def model_uri(self, ref: str | int = "champion") -> str:
        """``models:/<name>@alias`` for an alias, ``models:/<name>/<v>`` for a version number,
        or ``ref`` itself when it is already a URI."""
        ref = str(ref).strip()
        if ref.startswith(("models:/", "runs:/")):
            return ref
        if ref.isdigit():
            self.version(ref)  # UnknownVersion naming the versions there are
            return f"models:/{self.name}/{ref}"
        if ref not in self._aliases():
            raise LookupError(f"model {self.name} has no alias {ref!r}; aliases: "
                              f"{', '.join(sorted(self._aliases())) or '(none)'}")
        return f"models:/{self.name}@{ref}"

    def load_pyfunc(self, ref: str | int = "champion") -> Any:
        """The registered model as MLflow loads it for any consumer (``predict(raw rows)``)."""
        self._mlflow()
        return mlflow.pyfunc.load_model(self.model_uri(ref))

    def load_bundle(self, ref: str | int = "champion") -> CostModelBundle:
        """The :class:`CostModelBundle` inside a registered version or alias (or a model URI)."""
        self._mlflow()
        with tempfile.TemporaryDirectory() as tmp:
            # the whole model folder: a sub-path of a models:/m-<id> URI is not resolvable
            folder = mlflow.artifacts.download_artifacts(artifact_uri=self.model_uri(ref),
                                                         dst_path=tmp)
            return CostModelBundle.load(Path(folder) / "artifacts" / "bundle")

    def predict(self, rows: pd.DataFrame, ref: str | int = "champion", *,
                model: Any = None) -> pd.DataFrame:
        """Serving outputs of raw ``rows`` from the registered model ``ref`` (or an already
        loaded pyfunc ``model``); the rows are checked first, so a missing or mistyped column is
        a :class:`models.cost_bundle.ServingInputError` naming it."""
        model = model if model is not None else self.load_pyfunc(ref)
        out = pd.DataFrame(model.predict(serving_frame(check_serving_rows(rows))))
        out.index = rows.index
        return out
