"""Validation assets: stages 2-4 of the cost model, the gates, and its registry version.

Stage 1 (in-sample purged CV) is reported by ``cost_model/synth``. Every stage writes a markdown
report and plots under ``BESTEX_HOME/reports/validation``, shows the report in its Dagster
metadata and logs both to the cost model's MLflow run (artifacts under ``validation/``).
"""

import json

import dagster as dg
import numpy as np
import pandas as pd

from assets import _stage_reports as reports
from assets._episodes import episode_books, index_bars
from assets._plots import md_images, reports_dir
from assets.learning import COST_MODEL_KEY, HOLDOUT_KEY
from assets.paper import PAPER_KEY, paper_assets
from assets.policy import POLICY_KEY, policy_assets
from assets.real_books import REAL_BOOKS_KEY, real_book_assets
from assets.records import CostModelRecord
from bestex import settings
from models.cost_models import ATHLBaseline, CostModelParams, SquareRootBaseline
from models.cost_training import TrainingConfig, fit_mean_predictor
from validation.gates import evaluate_gates, load_gates
from validation.leakage import embargo_proof
from validation.stress import fit_stress_regime_model, plot, run_stress_suite
from validation.walk_forward_stage import stability, walk_forward

OOS_KEY = dg.AssetKey(["validation", "out_of_sample", "synth"])
WF_KEY = dg.AssetKey(["validation", "walk_forward", "synth"])
STRESS_KEY = dg.AssetKey(["validation", "stress", "synth"])
GATES_KEY = dg.AssetKey(["validation", "gates", "synth"])
VERSION_KEY = dg.AssetKey(["registry", "cost_model_version"])


def _out(stage: str):
    out = reports_dir() / "validation" / stage
    out.mkdir(parents=True, exist_ok=True)
    return out


class WalkForwardParams(dg.Config):
    """Run config of the walk-forward stage."""

    n_windows: int = 6
    embargo_hours: float = 24.0


@dg.asset(required_resource_keys={"registry"}, key=OOS_KEY, group_name="validation",
          ins={"model": dg.AssetIn(COST_MODEL_KEY), "holdout": dg.AssetIn(HOLDOUT_KEY)},
          description="Stage 2: the later holdout, never used to train or tune — degradation "
          "against purged CV, metrics against the baselines and the oracle, by day.")
def synth_out_of_sample(context: dg.AssetExecutionContext, model: CostModelRecord,
                        holdout: pd.DataFrame) -> dg.Output[dict]:
    h = model.holdout
    cv, oos = float(model.cv_wrmse), float(h["wrmse"])
    degradation = (oos - cv) / cv * 100
    proof = embargo_proof(model.model_dump())["holds"]
    out = _out("out_of_sample")
    md, plot_path = reports.out_of_sample(model, holdout, cv, oos, degradation, proof, out)
    context.resources.registry.attach(model.mlflow_run_id, "out_of_sample",
                                      [out / "report.md", plot_path],
                                      {"oos_degradation_pct": degradation})
    return dg.Output(
        {"cv_wrmse": cv, "oos_wrmse": oos, "degradation_pct": degradation,
         "holdout_after_train": bool(proof), **{f"holdout_{k}": v for k, v in h.items()}},
        metadata={"report": dg.MetadataValue.md(md), "degradation_pct": round(degradation, 2),
                  "holdout_after_train": bool(proof),
                  "plot": dg.MetadataValue.path(str(plot_path)),
                  "plots": dg.MetadataValue.md(md_images([plot_path]))})


@dg.asset(required_resource_keys={"registry"}, key=WF_KEY, group_name="validation",
          ins={"model": dg.AssetIn(COST_MODEL_KEY),
               "training_set": dg.AssetIn(["training_set", "synth"])},
          description="Stage 3: walk-forward — retrained in every window (expanding and "
          "rolling), scored against the square-root and ATHL baselines; stability.")
def synth_walk_forward(context: dg.AssetExecutionContext, config: WalkForwardParams,
                       model: CostModelRecord, training_set: pd.DataFrame
                       ) -> dg.Output[pd.DataFrame]:
    # retrained the way the model was trained (labels, weights, the drill's shuffle seed)
    fit_predict = fit_mean_predictor(
        CostModelParams(**model.params), model.features,
        TrainingConfig(noise_floor_bps=model.noise_floor_bps,
                       shuffle_labels=model.shuffled_labels, seed=model.seed))

    def _baseline(cls):
        def fit_predict_baseline(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
            try:
                return cls().fit(train, train["is_bps"]).predict(test)
            except ValueError as e:  # too few orders in a window for the law's fit
                context.log.warning(f"{cls.__name__} not fitted in a window: {e}")
                return np.full(len(test), np.nan)
        return fit_predict_baseline

    sqrt, athl = _baseline(SquareRootBaseline), _baseline(ATHLBaseline)

    # the holdout stays untouched: the walk-forward runs on the training period only
    ds = training_set[training_set["decision_ts"] < pd.Timestamp(model.holdout_start)]
    windows = walk_forward(ds, fit_predict, baselines={"sqrt": sqrt, "athl": athl},
                           n_windows=config.n_windows,
                           embargo=pd.Timedelta(hours=config.embargo_hours),
                           progress=context.log.info)
    stab = stability(windows)
    out = _out("walk_forward")
    md, plot_path = reports.walk_forward(windows, stab, config.n_windows, config.embargo_hours,
                                         out)
    context.resources.registry.attach(
        model.mlflow_run_id, "walk_forward",
        [out / "report.md", plot_path, out / "windows.csv"],
        {f"wf_{r['scheme']}_share_beats_sqrt": r["share_beats_sqrt"] for _, r in stab.iterrows()})
    return dg.Output(windows, metadata={
        "report": dg.MetadataValue.md(md),
        "stability": dg.MetadataValue.json(json.loads(stab.to_json(orient="records"))),
        "plot": dg.MetadataValue.path(str(plot_path)),
        "plots": dg.MetadataValue.md(md_images([plot_path]))})


# --------------------------------------------------------------------------- stage 4: stress
class StressParams(dg.Config):
    """Run config of the stress stage."""

    n_orders: int = 1500
    seed: int = 0
    workers: int = 0
    """Dask worker processes for the scenarios (``bestex.distributed``); 0: in this process,
    unless ``BESTEX_DASK_SCHEDULER`` names a cluster. The result is the same either way."""


@dg.asset(required_resource_keys={"registry"}, key=STRESS_KEY, group_name="validation",
          ins={"model": dg.AssetIn(COST_MODEL_KEY),
               "daily_bars": dg.AssetIn(["cleansed", "synth", "daily_bars"]),
               "quotes": dg.AssetIn(["cleansed", "synth", "quotes"])},
          description="Stage 4: stress — the REFERENCES §5 scenario library on the synthetic "
          "market, the real BitMEX 2020-03-10 book, the AMZN replay and the S&P index stress "
          "days; the cost model's bias and coverage, schedules against TWAP, risk controls.")
def synth_stress(context: dg.AssetExecutionContext, config: StressParams,
                 model: CostModelRecord, daily_bars: pd.DataFrame,
                 quotes: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    from bestex.distributed import fanout  # (Dask is imported only when it is used)

    bundle = context.resources.registry.load_bundle(model.model_uri)
    data = settings.data_dir()
    # the regime HMM of the training market, read on every stress session (shown, not gated)
    regime_model = fit_stress_regime_model(daily_bars, quotes, seed=config.seed)
    with fanout(config.workers) as mapper:  # one scenario per task
        result = run_stress_suite(bundle.predict, n_orders=config.n_orders, seed=config.seed,
                                  books=episode_books(data), index_bars=index_bars(data),
                                  progress=context.log.info,
                                  domain=bundle.outside_domain,
                                  calibrations=bundle.calibrations,
                                  regime_model=regime_model, mapper=mapper)
    out = _out("stress")
    plots = [str(p) for p in plot(result, out)]
    md = "# Stage 4 — stress\n\n" + result.to_markdown()
    (out / "report.md").write_text(md)
    result.calibration.to_csv(out / "calibration.csv", index=False)
    result.regimes.to_csv(out / "regimes.csv", index=False)
    context.resources.registry.attach(model.mlflow_run_id, "stress",
                                      [out / "report.md", out / "calibration.csv",
                                       out / "regimes.csv", *plots])
    return dg.Output(result.calibration, metadata={
        "report": dg.MetadataValue.md(md),
        "plots": dg.MetadataValue.md(md_images(plots))})


# --------------------------------------------------------------------------- gates + registry
def _champion_errors(registry, holdout: pd.DataFrame) -> tuple[np.ndarray | None, str | None]:
    """Absolute errors of the current champion on this holdout (None without a champion)."""
    champ = registry.champion()
    if champ is None:
        return None, None
    pred, _, _ = registry.load_bundle(champ.version).predict(holdout)
    return np.abs(pred - holdout["is_bps"].to_numpy()), champ.version


@dg.asset(required_resource_keys={"registry"}, key=GATES_KEY, group_name="validation",
          ins={"model": dg.AssetIn(COST_MODEL_KEY), "holdout": dg.AssetIn(HOLDOUT_KEY),
               "oos": dg.AssetIn(OOS_KEY), "walk_forward": dg.AssetIn(WF_KEY),
               "stress": dg.AssetIn(STRESS_KEY), "real_books": dg.AssetIn(REAL_BOOKS_KEY),
               "policy": dg.AssetIn(POLICY_KEY), "paper": dg.AssetIn(PAPER_KEY)},
          description="Promotion gates (validation/gates.toml, shown in the report): OOS "
          "degradation, walk-forward vs baseline and stability, stress bias and coverage, "
          "leave one real book out, the execution policy's backtest, stage 5's paper trading "
          "against its backtest, and challenger vs champion on the same holdout (paired block "
          "bootstrap).")
def synth_gates(context: dg.AssetExecutionContext, model: CostModelRecord,
                holdout: pd.DataFrame, oos: dict, walk_forward: pd.DataFrame,
                stress: pd.DataFrame, real_books: pd.DataFrame,
                policy: pd.DataFrame, paper: dict) -> dg.Output[dict]:
    registry = context.resources.registry
    cfg = load_gates()
    if real_books.empty and settings.data_dir() is None:
        context.log.warning("no data folder: the real-book gate is not judged")
        real_books = None
    champ_err, champ_v = _champion_errors(registry, holdout)
    err = np.abs(holdout["pred_bps"].to_numpy() - holdout["is_bps"].to_numpy())
    report = evaluate_gates(cfg=cfg, cv_loss=oos["cv_wrmse"], oos_loss=oos["oos_wrmse"],
                            walk_forward=walk_forward, stress=stress, real_books=real_books,
                            policy=policy, paper=paper or None,
                            challenger_err=err if champ_err is not None else None,
                            champion_err=champ_err)
    md = (f"# Promotion gates\n\nModel run `{model.mlflow_run_id}`; champion compared: "
          f"{'version ' + champ_v if champ_v else 'none yet'}.\n\n"
          + report.to_markdown(cfg.render()))
    out = _out("gates")
    (out / "report.md").write_text(md)
    registry.attach(model.mlflow_run_id, "gates", [out / "report.md"],
                    {"gates_passed": float(report.passed)})
    value = {"passed": report.passed, "failures": report.failures,
             "champion_compared": champ_v, "results": report.to_dict()}
    return dg.Output(value, metadata={"report": dg.MetadataValue.md(md),
                                      "passed": report.passed,
                                      "failures": dg.MetadataValue.json(report.failures)})


@dg.asset(required_resource_keys={"registry"}, key=VERSION_KEY, group_name="registry",
          ins={"model": dg.AssetIn(COST_MODEL_KEY), "gates": dg.AssetIn(GATES_KEY)},
          description="The trained model as a version of bestex-cost-model (alias challenger), "
          "tagged with its data windows, digests, code version, Dagster run id and gate results.")
def cost_model_version(context: dg.AssetExecutionContext, model: CostModelRecord,
                       gates: dict) -> dg.Output[dict]:
    registry = context.resources.registry
    tags = model.lineage_tags(registry.lineage_tags)
    tags["shuffled_labels"] = str(model.shuffled_labels).lower()
    info = registry.register(model.mlflow_run_id, registry.model_artifact, tags=tags,
                             gates_passed=bool(gates["passed"]),
                             gate_failures=list(gates["failures"]), model_uri=model.model_uri)
    value = {"version": info.version, "gates_passed": bool(gates["passed"]),
             "failures": list(gates["failures"]), "mlflow_run_id": model.mlflow_run_id}
    return dg.Output(value, metadata={"version": info.version,
                                      "gates_passed": bool(gates["passed"]),
                                      "aliases": ", ".join(info.aliases)})


def validation_assets() -> list[dg.AssetsDefinition]:
    """Stages 2-4, the gates and the registry version of the synthetic cost model."""
    return [synth_out_of_sample, synth_walk_forward, synth_stress, *real_book_assets(),
            *policy_assets(), *paper_assets(), synth_gates, cost_model_version]
