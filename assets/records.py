"""Typed records that travel between assets (stored by the lake IO manager as JSON with their
type, and validated when read back)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from models.cost_training import TrainedCostModel

HOLDOUT_KEEP = ("truth_mae", "sqrt_truth_mae", "truth_r2", "oracle_r2", "r2_over_oracle",
                "coverage_80", "mae", "rmse", "r2", "improvement_sqrt_pct", "wrmse")
"""The holdout metrics a record carries."""


class CostModelRecord(BaseModel):
    """A trained cost model as the rest of the graph sees it: where it is logged (the MLflow run
    and the pyfunc model URI), how it was trained, and its lineage windows and digests (the
    registry's tag contract, :mod:`pipelines.registry`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mlflow_run_id: str
    model_uri: str
    features: list[str]
    params: dict[str, Any]
    seed: int
    noise_floor_bps: float
    conformal_margin: float
    cv_scheme: str
    cv_wrmse: float
    cv_metrics: dict[str, float]
    holdout: dict[str, float]
    pbo: float | None
    shuffled_labels: bool
    source_partitions: list[str]
    dagster_run_id: str
    code_version: str
    train_start: str
    train_end: str
    train_max_t1: str
    holdout_start: str
    holdout_end: str
    embargo_s: str
    holdout_purged_orders: str
    dataset_digest_train: str
    dataset_digest_holdout: str

    @classmethod
    def of(cls, trained: TrainedCostModel, *, run_id: str, model_uri: str,
           tags: dict[str, str], source_partitions: list[str]) -> CostModelRecord:
        """The record of ``trained``, logged as run ``run_id`` / ``model_uri``, with the lineage
        ``tags`` of its run (windows, digests, code version)."""
        cfg, m = trained.config, trained.metrics
        fields = dict(
            mlflow_run_id=run_id, model_uri=model_uri, features=trained.feature_names,
            params=trained.params.model_dump(), seed=cfg.seed,
            noise_floor_bps=cfg.noise_floor_bps, conformal_margin=trained.bundle.margin,
            cv_scheme=cfg.cv_scheme, cv_wrmse=m["cv_wrmse"], cv_metrics=m["cv"],
            holdout={k: m["holdout"][k] for k in HOLDOUT_KEEP if k in m["holdout"]},
            pbo=m["pbo"], shuffled_labels=cfg.shuffle_labels,
            source_partitions=source_partitions)
        return cls(**fields, **{k: v for k, v in tags.items()
                                if k in cls.model_fields and k not in fields})

    def lineage_tags(self, names: tuple[str, ...]) -> dict[str, str]:
        """The registry version tags ``names`` (lists as JSON, everything else as text)."""
        data = self.model_dump()
        return {k: (json.dumps(data[k]) if isinstance(data[k], list) else str(data[k]))
                for k in names if k in data}
