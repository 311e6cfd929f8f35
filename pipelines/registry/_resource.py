"""The registry resource: tracking + the registry workflow over one MLflow database."""

from __future__ import annotations

import functools
from pathlib import Path

import dagster as dg
from mlflow import MlflowClient
from pydantic import PrivateAttr

from bestex import settings
from pipelines.registry._tracking import MODEL_ARTIFACT, _quiet_env, _Tracking
from pipelines.registry._types import LINEAGE_TAGS, MODEL_NAME
from pipelines.registry._versions import _Versions


@functools.lru_cache(maxsize=8)
def _client(uri: str) -> MlflowClient:
    _quiet_env()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


class ModelRegistry(dg.ConfigurableResource, _Tracking, _Versions):
    """MLflow tracking and registry with the SQLite database and artifacts under ``root``, and
    the audit table at ``audit_path`` (defaults: ``BESTEX_HOME/mlflow``,
    ``BESTEX_HOME/registry/audit.parquet``; see :func:`default_registry`)."""

    root: str
    audit_path: str
    model_name: str = MODEL_NAME
    database_url: str = ""  # the services profile's PostgreSQL (else SQLite under root)
    _root_run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Inside a Dagster run, remember the run's root (the first run of a chain of
        re-executions, or the run itself): :meth:`register` keys a version on it."""
        run = context.run
        self._root_run_id = None if run is None else (run.root_run_id or run.run_id)

    @property
    def dagster_root_run_id(self) -> str | None:
        """The root run id of the Dagster run using the resource (None outside a run)."""
        return self._root_run_id

    @property
    def tracking_uri(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.root) / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return Path(self.root) / "artifacts"

    @property
    def audit_file(self) -> Path:
        return Path(self.audit_path)

    @property
    def name(self) -> str:
        return self.model_name

    @property
    def lineage_tags(self) -> tuple[str, ...]:
        """The version tags of the lineage contract (see :mod:`pipelines.registry`)."""
        return LINEAGE_TAGS

    @property
    def model_artifact(self) -> str:
        """Name of the pyfunc model logged in a training run."""
        return MODEL_ARTIFACT

    @property
    def client(self) -> MlflowClient:
        Path(self.root).mkdir(parents=True, exist_ok=True)
        return _client(self.tracking_uri)


def default_registry() -> ModelRegistry:
    """The registry under ``BESTEX_HOME``: tracking and registry in ``mlflow/mlflow.db``, or
    with ``BESTEX_PROFILE=services`` in the services' ``bestex_mlflow`` database (artifacts
    stay in ``BESTEX_HOME/mlflow/artifacts``)."""
    home = settings.home()
    url = settings.service_url("bestex_mlflow") if settings.profile() == "services" else ""
    return ModelRegistry(root=str(home / "mlflow"),
                         audit_path=str(home / "registry" / "audit.parquet"), database_url=url)
