"""The cost model's training run as reports and as an MLflow run: plots of the holdout, the
band's calibration, importance and SHAP; the stage-1 CV report; and the run itself (params,
metrics, datasets, trial runs, the model logged whole). Renders a
:class:`models.cost_training.TrainedCostModel`; trains nothing."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assets._meta import content_hash
from assets._plots import plt
from models.cost_training import TrainedCostModel

EXPERIMENT = "cost_model_xgboost"


def holdout_plots(hold: pd.DataFrame, pred: np.ndarray, band: np.ndarray, importance: dict[str, float],
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


def cv_report(cvres: Any, cv_scheme: str, out: Any) -> tuple[str, str]:
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




def stage1_report(trained: TrainedCostModel, cfg: Any, out: Path) -> tuple[list[str], str]:
    """The holdout plots and the stage-1 CV report (``out/stage1_cv.md``) of a trained model:
    (plot paths, CV markdown)."""
    out.mkdir(parents=True, exist_ok=True)
    preds = trained.holdout_predictions
    band = preds[["lo80_bps", "hi80_bps"]].to_numpy()
    plots = holdout_plots(trained.split.holdout, preds["pred_bps"].to_numpy(), band,
                          trained.importance, trained.shap_mean, out)
    cv_md, cv_plot = cv_report(trained.cv, cfg.cv_scheme, out)
    (out / "stage1_cv.md").write_text(cv_md)
    return [*sorted(plots.values()), cv_plot], cv_md


def digests(trained: TrainedCostModel) -> dict[str, str]:
    return {"dataset_digest_train": content_hash(trained.split.train),
            "dataset_digest_holdout": content_hash(trained.split.holdout)}


def log_training_run(registry: Any, trained: TrainedCostModel, *, tags: dict[str, str],
                     files: list[str], cv_md_path: Path) -> tuple[str, str]:
    """One MLflow run of ``trained`` through the registry resource: ``(run_id, model_uri)``."""
    cfg, feats = trained.config, trained.feature_names
    train, hold = trained.split.train, trained.split.holdout
    m = trained.metrics
    with registry.start_run(experiment=EXPERIMENT, run_name="synth_mean_quantile",
                            tags=tags) as run:
        run.log_params({**trained.params.model_dump(), "features": ",".join(feats),
                        "n_train": len(train), "n_holdout": len(hold),
                        "holdout_start": str(trained.split.holdout_start),
                        "n_trials": cfg.n_trials, "seed": cfg.seed,
                        "sample_weight": "1 / (timing_risk_bps^2 + noise_floor_bps^2)",
                        "noise_floor_bps": cfg.noise_floor_bps,
                        "conformal": "OOF purged-CV quantiles, scores / timing-noise sd",
                        "conformal_margin_sd": trained.bundle.margin})
        run.log_metrics({f"holdout_{k}": v for k, v in m["holdout"].items()})
        run.log_metrics({f"cv_{k}": v for k, v in m["cv"].items()})
        run.log_metrics({"cv_wrmse": m["cv_wrmse"],
                         "pbo": m["pbo"] if m["pbo"] is not None else float("nan"),
                         "tuning_s": m["tuning_s"],
                         "tuning_overhead_pct": m["tuning_overhead_pct"]})
        cols = ["order_id", "decision_ts", "t1", *feats, "is_bps"]
        run.log_dataset(train[cols], name="synth_train", context="training",
                        time_col="decision_ts", digest=tags["dataset_digest_train"])
        run.log_dataset(hold[cols], name="synth_holdout", context="evaluation",
                        time_col="decision_ts", digest=tags["dataset_digest_holdout"])
        for path in files:
            run.log_artifact(path, artifact_path="plots")
        run.log_artifact(str(cv_md_path), artifact_path="reports")
        run.log_table(trained.features, "features/feature_dictionary.csv")
        run.log_dict(trained.tuning.loss_matrix.to_dict(), "tuning/loss_matrix.json")
        model_uri = run.log_cost_model(trained.bundle, example_rows=hold.head(5))
        run_id = run.run_id
    registry.trial_runs(experiment=EXPERIMENT, parent_run_id=run_id, trials=[
        {"number": t.number, "params": t.params, "value": t.value, "state": t.state.name}
        for t in trained.tuning.study.trials])
    return run_id, model_uri
