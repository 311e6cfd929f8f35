"""Learning assets: point-in-time features, the training set, and the tuned cost models.

Leakage guards are blocking asset checks; the cost-model materialization links its MLflow run.
"""

import subprocess
import time
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import xgboost as xgb

from assets._meta import content_hash, frame_metadata
from assets._plots import md_images, plt, reports_dir
from assets.execution import PARENT_CONTRACT_COLUMNS as _PARENT
from bestex import settings
from pipelines.resources import MLflowResource

_FEATURE_KEY = dg.AssetKey(["features", "synth"])
_TRAINING_KEY = dg.AssetKey(["training_set", "synth"])


class TrainingParams(dg.Config):
    """Run config of the cost-model training."""

    n_trials: int = 8
    n_splits: int = 5
    embargo_pct: float = 0.01
    holdout_fraction: float = 0.2
    holdout_embargo_hours: float = 24.0
    noise_floor_bps: float = 5.0
    shuffle_labels: bool = False
    max_depth: int = 6  # cost surfaces are smooth, low-order interactions: shallow trees
    max_rounds: int = 400
    seed: int = 0


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
    from models.desk_history import PLAN_COLUMNS
    from models.features import build_features, calibration_rows
    from validation.leakage import knowledge_after_decision, truncation_test

    orders = parent_orders[_PARENT + [c for c in PLAN_COLUMNS if c in parent_orders.columns]]
    first = build_features(orders, quotes=quotes, trades=trades, daily_bars=daily_bars)
    history = calibration_rows(first, labels)
    feats = build_features(orders, quotes=quotes, trades=trades, daily_bars=daily_bars,
                           labels_history=history)
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
    from validation.leakage import labels_end_after_decisions

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


def _plots(hold: pd.DataFrame, pred: np.ndarray, band: np.ndarray, importance: dict[str, float],
           shap_mean: pd.Series, out: Any) -> dict[str, str]:
    paths = {}
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(pred, hold["is_bps"], s=3, alpha=0.3, label="realized")
    ax.scatter(pred, hold["truth_bps"], s=3, alpha=0.3, label="true expected")
    lim = [float(np.nanmin(pred)), float(np.nanpercentile(pred, 99.5))]
    ax.plot(lim, lim, color="black", lw=1)
    ax.set_xlabel("predicted cost (bps)")
    ax.set_ylabel("cost (bps)")
    ax.legend()
    ax.set_title("Holdout: predicted against realized")
    paths["predicted_vs_realized.png"] = out / "predicted_vs_realized.png"
    fig.tight_layout()
    fig.savefig(paths["predicted_vs_realized.png"], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    y = hold["is_bps"].to_numpy()
    inside = (y >= band[:, 0]) & (y <= band[:, -1])
    bins = pd.qcut(pred, 8, duplicates="drop")
    by = pd.Series(inside).groupby(bins, observed=True).mean()
    ax.plot(range(len(by)), by.to_numpy(), marker="o")
    ax.axhline(0.8, color="grey", ls=":")
    ax.set_ylim(0, 1)
    ax.set_xlabel("bucket of predicted cost")
    ax.set_ylabel("80% interval coverage")
    ax.set_title(f"Calibration of the 80% band (overall {inside.mean():.2f})")
    paths["calibration.png"] = out / "calibration.png"
    fig.tight_layout()
    fig.savefig(paths["calibration.png"], dpi=90)
    plt.close(fig)

    for name, series in (("feature_importance.png", pd.Series(importance)),
                         ("shap_summary.png", shap_mean)):
        s = series.sort_values().tail(15)
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(s) + 1))
        ax.barh(s.index, s.to_numpy())
        ax.set_title("gain importance" if name.startswith("feature") else "mean |SHAP| (bps)")
        fig.tight_layout()
        paths[name] = out / name
        fig.savefig(paths[name], dpi=90)
        plt.close(fig)
    return {k: str(v) for k, v in paths.items()}


HOLDOUT_KEY = dg.AssetKey(["validation", "holdout_predictions", "synth"])
COST_MODEL_KEY = dg.AssetKey(["cost_model", "synth"])
SOURCE_PARTITIONS = ["raw/synth/quotes", "raw/synth/trades", "raw/synth/daily_bars",
                     "raw/synth/membership", "raw/synth/ground_truth",
                     "execution/synth/parent_orders", "execution/synth/child_fills",
                     "labels/synth", "features/synth", "training_set/synth"]


def _iso(t: Any) -> str:
    return pd.Timestamp(t).isoformat()


def _cv_report(cvres: Any, cv_scheme: str, out: Any) -> tuple[str, str]:
    """Stage 1 report: per-fold purged-CV metrics (markdown) and a plot of them."""
    cols = [c for c in ("fold", "n_train", "n_test", "mae", "rmse", "r2", "truth_mae",
                        "sqrt_truth_mae", "r2_over_oracle", "coverage_80")
            if c in cvres.folds.columns]
    table = cvres.folds[cols]
    md = (f"# Stage 1 — in-sample purged CV\n\nScheme: `{cv_scheme}`; each fold trains on the "
          "rest minus purged and embargoed orders.\n\n" + table.round(3).to_markdown(index=False)
          + "\n\nPooled out-of-fold: " + ", ".join(
              f"{k} {v:.3f}" for k, v in cvres.metrics.items()
              if k in ("mae", "rmse", "truth_mae", "r2_over_oracle", "coverage_80")))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for c in ("truth_mae", "sqrt_truth_mae", "mae"):
        if c in table:
            ax.plot(table["fold"], table[c], marker="o", label=c)
    ax.set_xlabel("fold")
    ax.set_ylabel("bps")
    ax.set_title("Purged CV by fold")
    ax.legend()
    fig.tight_layout()
    path = out / "cv_folds.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return md, str(path)


@dg.multi_asset(
    name="synth_cost_model",
    ins={"training_set": dg.AssetIn(_TRAINING_KEY)},
    outs={"cost_model": dg.AssetOut(
              key=COST_MODEL_KEY, group_name="learning", description="XGBoost mean and quantile cost models tuned "
              "with Optuna on purged K-fold (stage 1), with their training and holdout windows, "
              "dataset digests and the linked MLflow run."),
          "holdout": dg.AssetOut(
              key=HOLDOUT_KEY, group_name="validation", description="Predictions on the later "
              "holdout, fixed before any tuning (stage 2 input): mean, band, baselines, truth.")},
)
def synth_cost_model(context: dg.AssetExecutionContext, config: TrainingParams,
                     training_set: pd.DataFrame, mlflow: MLflowResource):
    from models.cost_models import (
        ATHLBaseline,
        ConformalInterval,
        CostModelBundle,
        MeanCostModel,
        QuantileCostModel,
        SquareRootBaseline,
        cross_validate_cost_model,
        evaluate,
        fold_loss,
        inverse_noise_weights,
        noise_sd_bps,
    )
    from models.features import MODEL_FEATURES
    from models.tuning import tune
    from validation.splitters import PurgedKFold

    ds = training_set
    feats = [c for c in MODEL_FEATURES if c in ds.columns] + ["qty", "shares_outstanding"]
    # the holdout is fixed first, by time, before any tuning: the last orders; training keeps
    # only orders whose label ended an embargo before the holdout's first decision
    cut = int(len(ds) * (1 - config.holdout_fraction))
    hold_start = ds["decision_ts"].iloc[cut]
    embargo = pd.Timedelta(hours=config.holdout_embargo_hours)
    train = ds.iloc[:cut]
    train = train[train["t1"] + embargo < hold_start].reset_index(drop=True)
    hold = ds.iloc[cut:].reset_index(drop=True)
    y = train["is_bps"].to_numpy()
    if config.shuffle_labels:  # a deliberately degraded model, for gate drills
        y = np.random.default_rng(config.seed).permutation(y)
        context.log.warning("training on SHUFFLED labels: this model must fail its gates")
    X = train[feats]
    # WLS: each order weighs by the inverse of its timing-noise variance, known pre-trade
    w = inverse_noise_weights(train["timing_risk_bps"], config.noise_floor_bps)

    scale = noise_sd_bps(train["timing_risk_bps"], config.noise_floor_bps)

    cv = PurgedKFold(config.n_splits, t1=pd.Series(train["t1"].to_numpy(),
                                                   index=train["decision_ts"]),
                     embargo_pct=config.embargo_pct)
    cv_scheme = f"PurgedKFold(n_splits={config.n_splits}, embargo_pct={config.embargo_pct})"

    optuna_dir = settings.home() / "optuna"
    optuna_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    def space(trial: Any) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, config.max_depth),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 100.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 100.0, log=True),
            "num_boost_round": trial.suggest_int("num_boost_round", 100, config.max_rounds,
                                                 step=50)}

    tuned = tune(X, y, cv, n_trials=config.n_trials, seed=config.seed,
                 storage_path=optuna_dir / "journal.log", search_space=space,
                 study_name=f"cost_model_synth_{context.run.run_id[:8]}", sample_weight=w)
    tune_s = time.perf_counter() - t0
    cvres = cross_validate_cost_model(X, y, cv, tuned.best_params,
                                      truth=train["truth_bps"].to_numpy(), sample_weight=w,
                                      interval_scale=scale)

    mean = MeanCostModel(tuned.best_params).fit(X, y, sample_weight=w)
    # the band in units of each order's noise sd: quantiles of the standardized cost, so it
    # stretches with the timing risk of regimes the training data never reached
    qmodel = QuantileCostModel(tuned.best_params).fit(X, y, scale=scale)
    # the band's margin from the purged out-of-fold quantiles of every training regime
    conformal = ConformalInterval(0.8).fit(cvres.oof[["p10", "p50", "p90"]].to_numpy(), y, scale)
    bundle = CostModelBundle(mean.booster_, qmodel.booster_, feats, conformal.margin_,
                             config.noise_floor_bps, quantile_scaled=True,
                             domain=CostModelBundle.fit_domain(X),
                             risk_fill_bps=float(np.nanmedian(train["timing_risk_bps"])))
    pred, lo, hi = bundle.predict(hold)
    band = np.column_stack([lo, hi])
    baselines = {"sqrt": SquareRootBaseline().fit(train, y).predict(hold),
                 "athl": ATHLBaseline().fit(train, y).predict(hold)}
    yh = hold["is_bps"].to_numpy()
    holdout = evaluate(yh, pred, truth=hold["truth_bps"].to_numpy(), q_lo=lo, q_hi=hi,
                       baseline_pred=baselines)
    w_hold = inverse_noise_weights(hold["timing_risk_bps"], config.noise_floor_bps)
    holdout["wrmse"] = fold_loss(yh, pred, "rmse", w_hold)
    cv_wrmse = float(np.mean(cvres.fold_losses))

    booster = mean.booster_
    dmat = xgb.DMatrix(hold[feats].to_numpy(np.float32), feature_names=feats)
    contribs = booster.predict(dmat, pred_contribs=True)[:, :-1]
    shap_mean = pd.Series(np.abs(contribs).mean(axis=0), index=feats)
    out = reports_dir() / "cost_model_synth"
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(hold, pred, band, booster.get_score(importance_type="gain"), shap_mean, out)
    cv_md, cv_plot = _cv_report(cvres, cv_scheme, out)
    (out / "stage1_cv.md").write_text(cv_md)

    windows = {"train_start": _iso(train["decision_ts"].min()),
               "train_end": _iso(train["decision_ts"].max()),
               "train_max_t1": _iso(train["t1"].max()), "holdout_start": _iso(hold_start),
               "holdout_end": _iso(hold["decision_ts"].max()),
               "embargo_s": str(embargo.total_seconds()),
               "holdout_purged_orders": str(cut - len(train))}
    digests = {"dataset_digest_train": content_hash(train),
               "dataset_digest_holdout": content_hash(hold)}
    tags = {"dagster_run_id": context.run.run_id, "code_version": _git_sha(),
            "cv_scheme": cv_scheme, "dataset": "synth desk history",
            "shuffled_labels": str(config.shuffle_labels).lower(), **windows, **digests}
    with mlflow.start_run(experiment="cost_model_xgboost", run_name="synth_mean_quantile",
                          tags=tags) as ml:
        run_id = ml.active_run().info.run_id
        ml.log_params({**tuned.best_params.model_dump(), "features": ",".join(feats),
                       "n_train": len(train), "n_holdout": len(hold),
                       "holdout_start": str(hold_start), "n_trials": config.n_trials,
                       "sample_weight": "1 / (timing_risk_bps^2 + noise_floor_bps^2)",
                       "noise_floor_bps": config.noise_floor_bps,
                       "conformal": "OOF purged-CV quantiles, scores / timing-noise sd",
                       "conformal_margin_sd": conformal.margin_})
        ml.log_metrics({f"holdout_{k}": float(v) for k, v in holdout.items()
                        if np.isfinite(v)})
        ml.log_metrics({f"cv_{k}": float(v) for k, v in cvres.metrics.items() if np.isfinite(v)})
        ml.log_metrics({"cv_wrmse": cv_wrmse,
                        "pbo": float(tuned.pbo) if tuned.pbo is not None else float("nan"),
                        "tuning_s": tune_s, "tuning_overhead_pct": float(tuned.overhead_pct)})
        mlflow.log_dataset(ml, train[["order_id", "decision_ts", "t1", *feats, "is_bps"]],
                           name="synth_train", context="training", time_col="decision_ts",
                           digest=digests["dataset_digest_train"])
        mlflow.log_dataset(ml, hold[["order_id", "decision_ts", "t1", *feats, "is_bps"]],
                           name="synth_holdout", context="evaluation", time_col="decision_ts",
                           digest=digests["dataset_digest_holdout"])
        for path in [*plots.values(), cv_plot]:
            ml.log_artifact(path, artifact_path="plots")
        ml.log_artifact(str(out / "stage1_cv.md"), artifact_path="reports")
        model_uri = mlflow.log_xgboost(ml, booster, name="mean_model",
                                       input_example=hold[feats].head(5).astype("float64"),
                                       predictions=pred[:5])
        bundle_dir = bundle.save(settings.home() / "models" / run_id)
        ml.log_artifacts(str(bundle_dir), artifact_path="bundle")
        ml.log_dict(tuned.loss_matrix.to_dict(), "tuning/loss_matrix.json")
    mlflow.trial_runs(experiment="cost_model_xgboost", parent_run_id=run_id, trials=[
        {"number": t.number, "params": t.params, "value": t.value, "state": t.state.name}
        for t in tuned.study.trials])

    keep = ("truth_mae", "sqrt_truth_mae", "truth_r2", "oracle_r2", "r2_over_oracle",
            "coverage_80", "mae", "rmse", "r2", "improvement_sqrt_pct", "wrmse")
    summary = {
        "mlflow_run_id": run_id, "model_uri": model_uri, "bundle_dir": str(bundle_dir),
        "features": feats, "params": tuned.best_params.model_dump(),
        "noise_floor_bps": config.noise_floor_bps, "conformal_margin": conformal.margin_,
        "cv_scheme": cv_scheme, "cv_wrmse": cv_wrmse, "cv_metrics": cvres.metrics,
        "holdout": {k: float(holdout[k]) for k in keep if k in holdout},
        "pbo": float(tuned.pbo) if tuned.pbo is not None else None,
        "shuffled_labels": config.shuffle_labels, "source_partitions": SOURCE_PARTITIONS,
        "dagster_run_id": context.run.run_id, "code_version": tags["code_version"],
        **windows, **digests}
    preds = hold[list(dict.fromkeys(["order_id", "decision_ts", "t1", "is_bps", "truth_bps",
                                     "timing_risk_bps", *feats]))].copy()
    preds["pred_bps"], preds["lo80_bps"], preds["hi80_bps"] = pred, lo, hi
    preds["noise_sd_bps"] = bundle.scale(hold)
    for k, v in baselines.items():
        preds[f"{k}_bps"] = v
    yield dg.Output(summary, output_name="cost_model", metadata={
        "mlflow_run_id": run_id, "mlflow_tracking_uri": mlflow.tracking_uri,
        "mlflow_model_uri": model_uri,
        "holdout": dg.MetadataValue.json(summary["holdout"]),
        "pbo": summary["pbo"], "best_cv_loss_bps": float(tuned.best_value),
        "tuning_s": round(tune_s, 2), "stage1_report": dg.MetadataValue.md(cv_md),
        "plots": dg.MetadataValue.md(md_images([*sorted(plots.values()), cv_plot])),
    })
    yield dg.Output(preds, output_name="holdout", metadata=frame_metadata(preds))


def learning_assets() -> list[dg.AssetsDefinition]:
    """Features, training set and cost models on the synthetic desk history."""
    return [synth_features, synth_training_set, synth_cost_model]
