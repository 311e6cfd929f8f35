"""Monitoring (issue 16): drift of the model under validation on the days after its training
window, and the break scenario that measures how fast the platform notices and recovers.

* ``monitoring/drift``: feature drift (PSI and KS of every model feature, per day, against the
  training window), prediction drift (the same on the model's predicted mean) and calibration
  drift on realized costs (daily bias, CUSUM and Page–Hinkley on the standardized bias,
  rolling 80 %-band coverage) over the holdout days, thresholds from ``validation/drift.toml``.
  Its materialization carries ``alarm`` and ``reasons``: the ``drift_retrain`` sensor
  (:mod:`pipelines.sensors`) launches the retraining job on an alarm. Two asset checks (WARN:
  a drifting market is news, not a broken pipeline) and an alerts file
  (``BESTEX_HOME/monitoring/alerts.parquet``) for the dashboard.
* ``studies/break_scenario``: :func:`validation.drift_break.run_break_study` on the synthetic
  training set (group ``studies``: materialized on demand, not by ``make demo``).
"""


import json
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from assets._plots import md_images, plt, reports_dir
from assets.learning import _TRAINING_KEY, COST_MODEL_KEY
from assets.records import CostModelRecord
from bestex import settings
from models.cost_models import CostModelParams
from models.cost_training import TrainingConfig, holdout_split, mean_fitter
from validation.drift import load_thresholds
from validation.drift_break import BreakConfig, run_break_study
from validation.drift_monitor import monitor

DRIFT_KEY = dg.AssetKey(["monitoring", "drift"])
BREAK_KEY = dg.AssetKey(["studies", "break_scenario"])


def alerts_path() -> Path:
    """Where the monitor writes its alerts (read by the dashboard)."""
    return settings.home() / "monitoring" / "alerts.parquet"


def _plot(feat: pd.DataFrame, cal: pd.DataFrame, out: Path) -> list[str]:
    fig, ax = plt.subplots(1, 2, figsize=(12, 4))
    top = feat.groupby("feature")["psi"].max().sort_values(ascending=False).head(8).index
    for f in top:
        g = feat[feat["feature"] == f]
        ax[0].plot(pd.to_datetime(g["day"]), g["psi"], marker=".", label=f)
    ax[0].axhline(0.25, color="r", ls="--", lw=1, label="PSI 0.25 (major)")
    ax[0].set_title("feature drift: PSI per day (the 8 largest)")
    ax[0].legend(fontsize=7)
    d = pd.to_datetime(cal["day"])
    ax[1].bar(d, cal["bias"], color="#888", label="daily bias, bps")
    ax[1].plot(d, cal["cusum_hi"], "r-", label="CUSUM (upper)")
    ax[1].plot(d, cal["cusum_lo"], "b-", label="CUSUM (lower)")
    ax[1].set_title("calibration: realized - predicted")
    ax[1].legend(fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    p = out / "drift.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    return [str(p)]


@dg.asset(
    key=DRIFT_KEY, group_name="monitoring", required_resource_keys={"registry"},
    ins={"model": dg.AssetIn(COST_MODEL_KEY), "training_set": dg.AssetIn(_TRAINING_KEY)},
    check_specs=[
        dg.AssetCheckSpec("features_stable", asset=DRIFT_KEY,
                          description="no model feature drifted (PSI > psi_alarm and KS "
                          "rejects, on enough values) on the last monitored day"),
        dg.AssetCheckSpec("calibration_in_control", asset=DRIFT_KEY,
                          description="no CUSUM / Page-Hinkley alarm on the daily standardized "
                          "bias and the rolling band coverage above coverage_min"),
    ],
    description="Feature, prediction and calibration drift of the model under validation on "
    "the days after its training window (thresholds: validation/drift.toml); an alarm launches "
    "retraining through the drift_retrain sensor.")
def drift_monitor(context: dg.AssetExecutionContext, model: CostModelRecord,
                  training_set: pd.DataFrame):
    bundle = context.resources.registry.load_bundle(model.model_uri)
    split = holdout_split(training_set, TrainingConfig(seed=model.seed,
                                                       noise_floor_bps=model.noise_floor_bps))
    rep = monitor(bundle, split.train, split.holdout, thresholds=load_thresholds())
    version = model.model_uri.rsplit("/", 1)[-1]
    out = reports_dir() / "monitoring"
    out.mkdir(parents=True, exist_ok=True)
    rep.features.to_csv(out / "feature_drift.csv", index=False)
    rep.calibration.to_csv(out / "calibration_drift.csv", index=False)
    plots = _plot(rep.features, rep.calibration, out)
    alerts = pd.DataFrame({"ts": pd.Timestamp.now(tz="UTC"), "source": "monitoring/drift",
                           "severity": ["alarm"] * len(rep.reasons) + ["warn"] * len(rep.warnings),
                           "message": rep.reasons + rep.warnings},
                          columns=["ts", "source", "severity", "message"])
    alerts_path().parent.mkdir(parents=True, exist_ok=True)
    alerts.to_parquet(alerts_path(), index=False)
    md = rep.to_markdown(f"v{version}")
    (out / "report.md").write_text(md)
    yield dg.Output(
        {"alarm": rep.alarm, "reasons": rep.reasons, "warnings": rep.warnings,
         "last_day": rep.last_day},
        metadata={"alarm": rep.alarm, "reasons": "; ".join(rep.reasons),
                  "warnings": "; ".join(rep.warnings), "window_end": rep.last_day,
                  "model_version": version, "daily_sd": rep.daily_sd,
                  "report": dg.MetadataValue.md(md),
                  "plots": dg.MetadataValue.md(md_images(plots))})
    warn = dg.AssetCheckSeverity.WARN
    yield dg.AssetCheckResult(check_name="features_stable", asset_key=DRIFT_KEY,
                              passed=not rep.drifted and not rep.prediction_drift, severity=warn,
                              metadata={"drifted": ", ".join(rep.drifted) or "none",
                                        "prediction_drift": rep.prediction_drift})
    alarm_days = rep.calibration.loc[rep.calibration["alarm"], "day"]
    yield dg.AssetCheckResult(check_name="calibration_in_control", asset_key=DRIFT_KEY,
                              passed=alarm_days.empty, severity=warn,
                              metadata={"alarm_days": ", ".join(alarm_days) or "none"})


class BreakStudyConfig(dg.Config):
    """Run config of the break scenario (see :class:`validation.drift_break.BreakConfig`)."""

    break_day: int = 45
    factor: float = float(np.sqrt(2.0))
    train_days: int = 20
    num_boost_round: int = 120


@dg.asset(
    key=BREAK_KEY, group_name="studies",
    ins={"model": dg.AssetIn(COST_MODEL_KEY), "training_set": dg.AssetIn(_TRAINING_KEY),
         "truth": dg.AssetIn(["raw", "synth", "ground_truth"])},
    description="A break with a known date on the synthetic market (every order's cost x "
    "sqrt 2 from one session on): detection delay, false alarms on calm sessions, and the "
    "recovery of the scheduled, drift-triggered and online paths.")
def break_scenario(context: dg.AssetExecutionContext, config: BreakStudyConfig,
                   model: CostModelRecord, training_set: pd.DataFrame, truth: dict):
    t0 = time.perf_counter()
    st = run_break_ground(training_set, truth, model.features, dict(model.params),
                          model.noise_floor_bps, config)
    out = reports_dir() / "studies" / "break_scenario"
    out.mkdir(parents=True, exist_ok=True)
    md = st.to_markdown()
    (out / "report.md").write_text(md)
    st.days.to_csv(out / "days.csv")
    plots = plot_break(st, out)
    context.log.info(f"break scenario in {time.perf_counter() - t0:.0f} s")
    return dg.Output(json.loads(json.dumps({**st.detection, **st.false_alarms}, default=str)),
                     metadata={"report": dg.MetadataValue.md(md),
                               "plots": dg.MetadataValue.md(md_images(plots))})


def calm_sessions(truth: dict) -> list[str]:
    """The ground truth's calm-regime sessions without the flash crash or the crisis week."""
    stress = {truth["flash_crash"]["session"], *truth.get("crisis_week", [])} \
        if truth.get("flash_crash") else set(truth.get("crisis_week", []))
    return [d for d, r in zip(truth["sessions"], truth["regime_path"], strict=True)
            if r == "calm" and d not in stress]


def run_break_ground(training_set: pd.DataFrame, truth: dict, features: list[str],
                     params: dict, noise_floor_bps: float, config: BreakStudyConfig):
    """The study with the champion's hyperparameters (fewer rounds: the clock is the retrain)."""
    p = CostModelParams(**{**params, "num_boost_round": config.num_boost_round})
    cfg = BreakConfig(break_day=config.break_day, factor=config.factor,
                      train_days=config.train_days, thresholds=load_thresholds())
    return run_break_study(training_set,
                           mean_fitter(p, features, noise_floor_bps=noise_floor_bps),
                           calm_dates=calm_sessions(truth), config=cfg)


def plot_break(st, out: Path) -> list[str]:
    d = st.days
    x = pd.to_datetime(d.index)
    brk = pd.Timestamp(st.detection["break_date"])
    fig, ax = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for p, c in (("scheduled", "#888"), ("drift_triggered", "tab:orange"), ("online", "tab:blue")):
        ax[0].plot(x, d[f"{p}_rel"], marker=".", color=c, label=p)
    ax[0].axvline(brk, color="r", ls="--", lw=1, label="break")
    ax[0].set_ylabel("MAE / mean true cost")
    ax[0].legend(fontsize=8)
    ax[0].set_title("error against the truth, per session")
    ax[1].bar(x, d["daily_bias_z"], color="#888", label="standardized daily bias")
    ax[1].plot(x, d["cusum"], "r-", label="CUSUM")
    ax[1].axvline(brk, color="r", ls="--", lw=1)
    ax[1].legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    p = out / "break_scenario.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    return [str(p)]


def monitoring_assets() -> list[dg.AssetsDefinition]:
    """The drift monitor and the break scenario study."""
    return [drift_monitor, break_scenario]


__all__ = ["BREAK_KEY", "DRIFT_KEY", "alerts_path", "calm_sessions", "monitoring_assets",
           "run_break_ground"]
