"""Learning assets: point-in-time features, the training set, and the tuned cost models.

Leakage guards are blocking asset checks; the cost-model materialization links its MLflow run.
"""

import subprocess

import dagster as dg
import pandas as pd
from pydantic import BaseModel, create_model

from assets import _cost_model_report as report
from assets._meta import frame_metadata
from assets._plots import md_images, reports_dir
from assets.execution import PARENT_CONTRACT_COLUMNS as _PARENT
from assets.records import CostModelRecord
from bestex import settings
from models.cost_training import TrainingConfig, train_cost_model
from models.desk_history import PLAN_COLUMNS
from models.features import build_features, calibration_rows, point_in_time_features
from validation.leakage import (
    knowledge_after_decision,
    labels_end_after_decisions,
    truncation_test,
)

_FEATURE_KEY = dg.AssetKey(["features", "synth"])
_TRAINING_KEY = dg.AssetKey(["training_set", "synth"])


def _dagster_config(model: type[BaseModel], name: str) -> type[dg.Config]:
    """A Dagster run-config class with the fields and defaults of a pure config model (the
    defaults are written once, in the model)."""
    fields = {k: (f.annotation, f.default) for k, f in model.model_fields.items()}
    return create_model(name, __base__=dg.Config, __doc__=model.__doc__, **fields)


TrainingParams = _dagster_config(TrainingConfig, "TrainingParams")


@dg.asset(
    key=_FEATURE_KEY,
    group_name="learning",
    ins={"parent_orders": dg.AssetIn(["execution", "synth", "parent_orders"]),
         "labels": dg.AssetIn(["labels", "synth"]),
         "quotes": dg.AssetIn(["cleansed", "synth", "quotes"]),
         "trades": dg.AssetIn(["cleansed", "synth", "trades"]),
         "daily_bars": dg.AssetIn(["cleansed", "synth", "daily_bars"])},
    description="Decision-time features: one row per parent order, each with the latest "
    "knowledge time it used (as-of joins on available_at); parametric cost estimates refit each "
    "day on labels known by then.",
    check_specs=[
        dg.AssetCheckSpec("knowledge_before_decision", asset=_FEATURE_KEY, blocking=True,
                          description="every row's knowledge_ts <= decision_ts"),
        dg.AssetCheckSpec("truncation_test", asset=_FEATURE_KEY, blocking=True,
                          description="features recomputed from sources cut at each decision "
                          "time are identical (a random sample of orders)"),
    ],
)
def synth_features(parent_orders, labels, quotes, trades, daily_bars):
    orders = parent_orders[_PARENT + [c for c in PLAN_COLUMNS if c in parent_orders.columns]]
    feats = point_in_time_features(orders, quotes=quotes, trades=trades,
                                   daily_bars=daily_bars, labels=labels)
    history = calibration_rows(feats, labels)
    yield dg.Output(feats, metadata=frame_metadata(feats))
    late = knowledge_after_decision(feats)
    yield dg.AssetCheckResult(
        check_name="knowledge_before_decision", asset_key=_FEATURE_KEY, passed=late.empty,
        metadata={"violations": len(late),
                  "failure_cases": dg.MetadataValue.json(
                      late.head(20).astype(str).to_dict(orient="records"))})

    def _build(o, *, quotes, trades, daily_bars, labels_history):
        return build_features(o, quotes=quotes, trades=trades, daily_bars=daily_bars,
                              labels_history=labels_history)

    history = history.assign(available_at=history["t1"])
    diffs = truncation_test(orders, _build, {"quotes": quotes, "trades": trades,
                                             "daily_bars": daily_bars,
                                             "labels_history": history},
                            n_sample=8, seed=0)
    yield dg.AssetCheckResult(
        check_name="truncation_test", asset_key=_FEATURE_KEY, passed=diffs.empty,
        metadata={"differences": len(diffs), "orders_sampled": 8,
                  "failure_cases": dg.MetadataValue.json(
                      diffs.head(20).astype(str).to_dict(orient="records"))})


@dg.asset(
    key=_TRAINING_KEY,
    group_name="learning",
    ins={"features": dg.AssetIn(_FEATURE_KEY),
         "labels": dg.AssetIn(["labels", "synth"]),
         "outcomes": dg.AssetIn(["execution", "synth", "outcomes"])},
    description="Training set: one row per parent order, features + realized cost (is_bps) + "
    "label end time t1 + the true expected cost (synthetic only, for scoring), in decision order.",
    check_specs=[dg.AssetCheckSpec("labels_end_after_decisions", asset=_TRAINING_KEY,
                                   blocking=True)],
)
def synth_training_set(features, labels, outcomes):
    ds = (features.merge(labels[["order_id", "is_bps", "t1"]], on="order_id", validate="1:1")
          .merge(outcomes[["order_id", "truth_bps"]], on="order_id", validate="1:1")
          .sort_values("decision_ts", kind="stable").reset_index(drop=True))
    yield dg.Output(ds, metadata=frame_metadata(ds))
    bad = labels_end_after_decisions(ds)
    yield dg.AssetCheckResult(check_name="labels_end_after_decisions", asset_key=_TRAINING_KEY,
                              passed=bad.empty, metadata={"violations": len(bad)})


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=settings.PROJECT_ROOT, timeout=5).stdout.strip()
    except OSError:
        return "unknown"


HOLDOUT_KEY = dg.AssetKey(["validation", "holdout_predictions", "synth"])
COST_MODEL_KEY = dg.AssetKey(["cost_model", "synth"])
SOURCE_PARTITIONS = ["raw/synth/quotes", "raw/synth/trades", "raw/synth/daily_bars",
                     "raw/synth/membership", "raw/synth/ground_truth",
                     "execution/synth/parent_orders", "execution/synth/child_fills",
                     "labels/synth", "features/synth", "training_set/synth",
                     "training_set/real"]


@dg.multi_asset(
    name="synth_cost_model",
    ins={"training_set": dg.AssetIn(_TRAINING_KEY),
         "real": dg.AssetIn(dg.AssetKey(["training_set", "real"]))},
    outs={"cost_model": dg.AssetOut(
              key=COST_MODEL_KEY, group_name="learning", description="XGBoost mean and quantile cost models tuned "
              "with Optuna on purged K-fold (stage 1), with their training and holdout windows, "
              "dataset digests and the linked MLflow run."),
          "holdout": dg.AssetOut(
              key=HOLDOUT_KEY, group_name="validation", description="Predictions on the later "
              "holdout, fixed before any tuning (stage 2 input): mean, band, baselines, truth.")},
    required_resource_keys={"registry"},
)
def synth_cost_model(context: dg.AssetExecutionContext, config: TrainingParams,
                     training_set: pd.DataFrame, real: pd.DataFrame):
    registry = context.resources.registry
    cfg = TrainingConfig(**config.model_dump())
    if cfg.shuffle_labels:
        context.log.warning("training on SHUFFLED labels: this model must fail its gates")
    # a journal file under BESTEX_HOME/optuna, or the services' database (BESTEX_PROFILE); one
    # study per run and its re-executions: a re-execution resumes the trials its killed worker
    # left and runs only the missing ones (models.tuning.tune, Notes)
    root = context.run.root_run_id or context.run.run_id
    trained = train_cost_model(training_set, cfg, storage_path=settings.optuna_storage(),
                               study_name=f"cost_model_synth_{root[:8]}",
                               progress=context.log.info,
                               extra=real if len(real) else None)
    plots, cv_md = report.stage1_report(trained, cfg, reports_dir() / "cost_model_synth")
    tags = {"dagster_run_id": context.run.run_id, "dagster_root_run_id": root,
            "code_version": _git_sha(),
            "cv_scheme": cfg.cv_scheme, "dataset": "synth desk history",
            "shuffled_labels": str(cfg.shuffle_labels).lower(), **trained.split.windows(),
            **report.digests(trained)}
    run_id, model_uri = report.log_training_run(registry, trained, tags=tags, files=plots,
                                                cv_md_path=reports_dir() / "cost_model_synth"
                                                / "stage1_cv.md")
    record = CostModelRecord.of(trained, run_id=run_id, model_uri=model_uri, tags=tags,
                                source_partitions=SOURCE_PARTITIONS)
    m = trained.metrics
    yield dg.Output(record, output_name="cost_model", metadata={
        "mlflow_run_id": run_id, "mlflow_tracking_uri": registry.tracking_uri,
        "mlflow_model_uri": model_uri, "holdout": dg.MetadataValue.json(record.holdout),
        "pbo": record.pbo, "best_cv_loss_bps": m["best_cv_loss"],
        "tuning_s": round(m["tuning_s"], 2), "stage1_report": dg.MetadataValue.md(cv_md),
        "plots": dg.MetadataValue.md(md_images(plots))})
    preds = trained.holdout_predictions
    yield dg.Output(preds, output_name="holdout", metadata=frame_metadata(preds))


def learning_assets() -> list[dg.AssetsDefinition]:
    """Features, training set and cost models on the synthetic desk history."""
    return [synth_features, synth_training_set, synth_cost_model]
