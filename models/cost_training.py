"""The training core: from a training set to a deployable cost model, in one pure call.

:func:`train_cost_model` ``(training_set, config) -> TrainedCostModel`` does, in order:

1. the **holdout** cut by time, fixed before any tuning (:func:`holdout_split`): the last
   ``holdout_fraction`` of orders; training keeps only orders whose label ended an embargo
   before the holdout's first decision;
2. the labels (shuffled with the config's seed for a deliberately degraded drill model) and the
   weights ``1 / (timing_risk^2 + floor^2)`` (:func:`models.cost_models.inverse_noise_weights`);
3. Optuna tuning of the mean model on purged K-fold (:func:`models.tuning.tune`, stage 1), and
   the purged-CV scores of the tuned parameters;
4. the fit: mean model, standardized quantile model, conformal margin from the out-of-fold
   quantiles, training domain, parametric calibrations, and the out-of-domain pieces
   (:func:`models._domain.fit_domain_extras`: the out-of-domain margin and the per-regime
   margins from the same out-of-fold quantiles, the square-root law of each venue tagged in
   the rows): a :class:`CostModelBundle`;
5. the holdout predictions, the baselines (square-root law, ATHL) and the metrics; gain
   importance and mean |SHAP| as data.

Every random choice takes ``config.seed``. Walk-forward retraining (stage 3) refits with
:func:`fit_mean_predictor`, the same labels and weights. Nothing here logs, plots or writes:
the Dagster asset records what this returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import xgboost as xgb
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field

from models._domain import fit_domain_extras, fit_venue_physics, physics_cost_bps, venue_names
from models.cost_bundle import CostModelBundle
from models.cost_models import (
    ATHLBaseline,
    ConformalInterval,
    CostModelParams,
    CVResult,
    MeanCostModel,
    QuantileCostModel,
    SquareRootBaseline,
    cross_validate_cost_model,
    evaluate,
    fold_loss,
    inverse_noise_weights,
    noise_sd_bps,
)
from models.features import (
    MODEL_FEATURES,
    FeatureConfig,
    ParametricCalibrations,
    apply_parametric,
    feature_table,
    fit_parametric,
)
from models.tuning import TuningResult, tune
from validation.splitters import PurgedKFold

__all__ = ["BAND_LABEL", "MEAN_LABEL", "HoldoutSplit", "TrainedCostModel", "TrainingConfig", "fit_bundle",
           "fit_mean_predictor", "holdout_split", "mean_fitter", "model_features", "real_rows_for",
           "share_weights", "train_cost_model"]

_BASELINE_COLUMNS = ("qty", "adv", "sigma_seen", "sigma_daily", "duration_days",
                     "shares_outstanding", "arrival_spread_bps")
"""Inputs of the parametric baselines (square-root law, ATHL): raw sizes and volumes, which are
not model inputs (they do not transfer across venues and price levels)."""


class TrainingConfig(BaseModel):
    """Everything :func:`train_cost_model` decides (frozen); ``seed`` drives every random draw."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_trials: int = Field(8, ge=1)
    n_splits: int = Field(5, ge=2)
    embargo_pct: float = Field(0.01, ge=0)
    holdout_fraction: float = Field(0.2, gt=0, lt=1)
    holdout_embargo_hours: float = Field(24.0, ge=0)
    noise_floor_bps: float = Field(5.0, gt=0)
    shuffle_labels: bool = False
    max_depth: int = Field(6, ge=1)  # cost surfaces are smooth, low-order interactions
    max_rounds: int = Field(400, ge=100)
    coverage: float = Field(0.8, gt=0, lt=1)
    # weight of the real books' rows (``extra``) in the mean model: 0.10 keeps the synthetic
    # holdout's MAE ratio at 0.39 (0.41 at 0.25; benchmarks/bench_lobo.py, BENCHMARKS.md)
    real_share: float = Field(0.10, gt=0, lt=1)
    # Mondrian conformal: one band margin per value of this feature (None: one pooled margin).
    # The intraday vol-ratio regime: grouped by the regime HMM's session regime instead
    # ("regime_hmm_code", known from the previous close) the demo's holdout coverage was 0.868,
    # outside [0.77, 0.83] (0.817 here); the HMM's probabilities enter both boosters as inputs
    band_group_feature: str | None = "regime_code"
    seed: int = 0

    @property
    def cv_scheme(self) -> str:
        return f"PurgedKFold(n_splits={self.n_splits}, embargo_pct={self.embargo_pct})"


@dataclass(frozen=True)
class HoldoutSplit:
    """The time cut: training rows (embargoed before the holdout) and the later holdout."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_start: pd.Timestamp
    embargo: pd.Timedelta
    purged: int  # orders before the cut left out because their label ran into the embargo

    def windows(self) -> dict[str, str]:
        """The lineage windows as ISO strings (the registry's tags)."""
        t, h = self.train, self.holdout
        return {"train_start": _iso(t["decision_ts"].min()),
                "train_end": _iso(t["decision_ts"].max()),
                "train_max_t1": _iso(t["t1"].max()), "holdout_start": _iso(self.holdout_start),
                "holdout_end": _iso(h["decision_ts"].max()),
                "embargo_s": str(self.embargo.total_seconds()),
                "holdout_purged_orders": str(self.purged)}


@dataclass(frozen=True)
class TrainedCostModel:
    """What one training run produced, as data (nothing here refers to a tracking server).

    Attributes
    ----------
    bundle : CostModelBundle
        The deployable model: mean and quantile boosters, conformal margin, domain, calibrations.
    params : CostModelParams
        The tuned hyperparameters.
    features : pandas.DataFrame
        The model's inputs, in order: ``name, group, unit, sources, lookback, description``.
    config : TrainingConfig
    split : HoldoutSplit
    metrics : dict
        ``holdout`` (:func:`evaluate` on the holdout, plus ``wrmse``), ``cv`` (pooled
        out-of-fold), ``cv_wrmse``, ``pbo``, ``best_cv_loss``, ``tuning_s``,
        ``tuning_overhead_pct``.
    holdout_predictions : pandas.DataFrame
        Per holdout order: ids, times, label, truth (when known), inputs, ``pred_bps``,
        ``lo80_bps``, ``hi80_bps``, ``noise_sd_bps`` and one ``<baseline>_bps`` per baseline.
    importance : dict
        Gain importance of the mean model per feature.
    shap_mean : pandas.Series
        Mean |SHAP| (bps) of the mean model per feature on the holdout.
    cv : CVResult
    tuning : TuningResult
    """

    bundle: CostModelBundle
    params: CostModelParams
    features: pd.DataFrame
    config: TrainingConfig
    split: HoldoutSplit
    metrics: dict[str, Any]
    holdout_predictions: pd.DataFrame
    importance: dict[str, float]
    shap_mean: pd.Series
    cv: CVResult
    tuning: TuningResult

    @property
    def feature_names(self) -> list[str]:
        return list(self.features["name"])


def _iso(t: Any) -> str:
    return pd.Timestamp(t).isoformat()


def _groups(frame: pd.DataFrame, feature: str | None) -> np.ndarray | None:
    """The band's conformal group of each row (NaN: the pooled margin), None without one."""
    if feature is None:
        return None
    if feature not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[feature], errors="coerce").to_numpy(np.float64)


def model_features(training_set: pd.DataFrame) -> list[str]:
    """The registry's model inputs present in ``training_set`` (dimensionless or in named units:
    no raw share, currency or per-minute figure)."""
    return [c for c in MODEL_FEATURES if c in training_set.columns]


def holdout_split(ds: pd.DataFrame, config: TrainingConfig) -> HoldoutSplit:
    """Cut ``ds`` (sorted by ``decision_ts``) into training rows and the later holdout."""
    if not ds["decision_ts"].is_monotonic_increasing:
        raise ValueError("training set: rows must be sorted by decision_ts")
    cut = int(len(ds) * (1 - config.holdout_fraction))
    if cut <= 0 or cut >= len(ds):
        raise ValueError(f"training set: {len(ds)} rows leave no training or no holdout rows "
                         f"at holdout_fraction {config.holdout_fraction}")
    start = ds["decision_ts"].iloc[cut]
    embargo = pd.Timedelta(hours=config.holdout_embargo_hours)
    train = ds.iloc[:cut]
    train = train[train["t1"] + embargo < start].reset_index(drop=True)
    return HoldoutSplit(train, ds.iloc[cut:].reset_index(drop=True), start, embargo,
                        cut - len(train))


def _labels(train: pd.DataFrame, config: TrainingConfig) -> np.ndarray:
    y = train["is_bps"].to_numpy(np.float64)
    if config.shuffle_labels:  # a deliberately degraded model, for gate drills
        y = np.random.default_rng(config.seed).permutation(y)
    return y


MEAN_LABEL: Final = "mean_label_bps"
"""Optional column: the label of the mean model where it differs from ``is_bps`` (NaN: the
same). A replayed real book's rows carry their market-adjusted cost there
(:func:`models.desk_history.market_drift_bps`): the same expectation as the realized cost
without the one price path that all orders of a recorded day share, which a mean model would
otherwise learn as a property of the venue. The band has its own label (:data:`BAND_LABEL`)."""


BAND_LABEL: Final = "band_label_bps"
"""Optional column: the label of the band (quantile model and conformal margin) where it
differs from ``is_bps`` (NaN: the same). A replayed real book's rows carry their market-adjusted
cost plus the market's move on a resampled path of the book, a different path for each order
(:func:`validation._stress_lobo.real_book_rows`): every order of a recorded day shares one
price path, so the realized costs of a day are one draw of its market; the band learns the
spread of costs of that market's volatility instead of one path's luck."""


def _band_labels(train: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    if BAND_LABEL not in train.columns:
        return y
    b = train[BAND_LABEL].to_numpy(np.float64)
    return np.where(np.isfinite(b), b, y)


def _mean_labels(train: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    if MEAN_LABEL not in train.columns:
        return y
    m = train[MEAN_LABEL].to_numpy(np.float64)
    return np.where(np.isfinite(m), m, y)


def _space(config: TrainingConfig) -> Callable[[Any], dict[str, Any]]:
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
    return space


def real_rows_for(extra: pd.DataFrame, features: list[str],
                  calibrations: ParametricCalibrations | None) -> pd.DataFrame:
    """``extra`` (replayed real books' rows) ready to join a fit: their market-adjusted cost as
    :data:`MEAN_LABEL`, the model's own square-root and ATHL estimates where a one-day book has
    none (as serving fills them), and NaN for a feature the rows lack."""
    out = extra.copy()
    if "adjusted_bps" in out.columns and MEAN_LABEL not in out.columns:
        out[MEAN_LABEL] = out["adjusted_bps"]  # the mean model learns the market-adjusted cost
    for c in features:
        if c not in out.columns:
            out[c] = np.nan
    if calibrations is not None:
        par = apply_parametric(out, calibrations, update_knowledge=False)
        for c in ("sqrt_pred_bps", "athl_pred_bps"):
            if c in out.columns:
                out[c] = out[c].fillna(par[c])
    return out


def share_weights(n_main: int, n_extra: int, share: float) -> np.ndarray:
    """Multipliers giving ``n_extra`` appended rows ``share`` of the total (unit) weight."""
    if n_extra == 0:
        return np.ones(n_main)
    if not 0 < share < 1:
        raise ValueError(f"the extra rows' share must be in (0, 1), got {share}")
    return np.concatenate([np.ones(n_main),
                           np.full(n_extra, share / (1 - share) * n_main / n_extra)])


def mean_fitter(params: CostModelParams, features: Sequence[str], *,
                noise_floor_bps: float = 5.0,
                labels: Callable[[pd.DataFrame], np.ndarray] | None = None
                ) -> Callable[..., Callable[[pd.DataFrame], np.ndarray]]:
    """``fit(train, sample_weight=None, extra=()) -> predict(frame)``: the mean model refitted
    as :func:`train_cost_model` fits it (label ``is_bps``, or ``labels(train)``; weights
    ``1 / (timing_risk^2 + floor^2)``, times ``sample_weight`` when given) on ``features`` and
    the ``extra`` columns of ``train`` (the frames to predict carry them too)."""
    def fit(train: pd.DataFrame, sample_weight: ArrayLike | None = None,
            extra: Sequence[str] = ()) -> Callable[[pd.DataFrame], np.ndarray]:
        cols = [*features, *extra]
        w = inverse_noise_weights(train["timing_risk_bps"], noise_floor_bps)
        if sample_weight is not None:
            w = w * np.asarray(sample_weight, dtype=np.float64)
        y = labels(train) if labels is not None else train["is_bps"].to_numpy(np.float64)
        model = MeanCostModel(params).fit(train[cols], y, sample_weight=w)
        return lambda frame: model.predict(frame[cols])
    return fit


def fit_mean_predictor(params: CostModelParams, features: list[str], config: TrainingConfig
                       ) -> Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]:
    """``fit_predict(train, test)`` that refits the mean model as :func:`train_cost_model` does
    (same labels, shuffled with the same seed for a drill model, same weights)."""
    fit = mean_fitter(params, features, noise_floor_bps=config.noise_floor_bps,
                      labels=lambda train: _labels(train, config))
    return lambda train, test: fit(train)(test)


def _venue_laws(rows: pd.DataFrame, y: np.ndarray, y_mean: np.ndarray, scale: np.ndarray,
                config: TrainingConfig) -> dict[str, dict[str, Any]]:
    """The square-root law of each venue tagged in ``rows`` (the bundle's physics fallback):
    fitted on the mean label, its band on the realized cost; none without a ``venue``."""
    if "venue" not in rows.columns:
        return {}
    return fit_venue_physics(rows, y, scale, venue_names(rows["venue"]).astype(object),
                             coverage=config.coverage, y_mean=y_mean)


def _trust_laws(laws: dict[str, dict[str, Any]], mean: MeanCostModel, X: pd.DataFrame,
                rows: pd.DataFrame, y_mean: np.ndarray) -> dict[str, dict[str, Any]]:
    """Mark each venue law ``used`` only where it prices its venue's own training rows better
    than the learned mean does (MAE against the mean label, both kept as ``mae_law_bps`` /
    ``mae_model_bps``). Trees fit their own rows closely, so this keeps the fallback for a venue
    whose labels the learned model gets systematically wrong."""
    if not laws or "venue" not in rows.columns:
        return laws
    venue = venue_names(rows["venue"])
    pred = mean.predict(X)
    out = {}
    for name, cal in laws.items():
        m = venue == name
        law = physics_cost_bps(cal, rows[m])
        ok = np.isfinite(law) & np.isfinite(y_mean[m])
        mae_law = float(np.abs(law[ok] - y_mean[m][ok]).mean()) if ok.any() else np.inf
        mae_model = float(np.abs(pred[m][ok] - y_mean[m][ok]).mean()) if ok.any() else np.inf
        out[name] = {**cal, "mae_law_bps": mae_law, "mae_model_bps": mae_model,
                     "used": bool(mae_law < mae_model)}
    return out


def fit_bundle(train: pd.DataFrame, params: CostModelParams, features: list[str],
               config: TrainingConfig, *, weight: np.ndarray | None = None,
               calibration_fraction: float = 0.2, feature_config: FeatureConfig | None = None,
               calibrations: Any = None) -> CostModelBundle:
    """A deployable bundle refit on ``train`` with fixed ``params`` (no tuning): the mean and
    standardized-quantile boosters as :func:`train_cost_model` fits them, and the conformal
    margin from a random ``calibration_fraction`` of the rows left out of a first fit (split
    conformal, seeded by ``config.seed``). ``weight`` multiplies the inverse-noise weights
    (e.g. to give a venue with few orders its share). For the leave-one-book-out stage and the
    policy's retraining loop; ``feature_config`` and ``calibrations`` (what serving on raw rows
    needs) are carried into the bundle as they are given."""
    y = _labels(train, config)
    y_mean, y = _mean_labels(train, y), _band_labels(train, y)
    w = inverse_noise_weights(train["timing_risk_bps"], config.noise_floor_bps)
    if weight is not None:
        w = w * np.asarray(weight, np.float64)
    scale = noise_sd_bps(train["timing_risk_bps"], config.noise_floor_bps)
    rng = np.random.default_rng(config.seed)
    cal = rng.random(len(train)) < calibration_fraction
    X = train[features]
    q_fit = QuantileCostModel(params).fit(X[~cal], y[~cal], scale=scale[~cal])
    q_cal = q_fit.predict(X[cal], scale=scale[cal])
    conformal = ConformalInterval(config.coverage).fit(q_cal, y[cal], scale[cal])
    q = np.full((len(train), q_cal.shape[1]), np.nan)
    q[cal] = q_cal  # the calibration rows, predicted by a model fitted on the others
    extras = fit_domain_extras(X, y, scale, q, coverage=config.coverage,
                               group_feature=config.band_group_feature,
                               groups=_groups(train, config.band_group_feature))
    extras["venue_calibrations"] = _venue_laws(train, y, y_mean, scale, config)
    mean = MeanCostModel(params).fit(X, y_mean, sample_weight=w)
    extras["venue_calibrations"] = _trust_laws(extras["venue_calibrations"], mean, X, train,
                                               y_mean)
    quant = QuantileCostModel(params).fit(X, y, scale=scale)
    return CostModelBundle(mean.booster_, quant.booster_, features, conformal.margin_,
                           config.noise_floor_bps, quantile_scaled=True,
                           domain=CostModelBundle.fit_domain(X),
                           risk_fill_bps=float(np.nanmedian(train["timing_risk_bps"])),
                           feature_config=feature_config, calibrations=calibrations, **extras)


def _truth(frame: pd.DataFrame) -> np.ndarray | None:
    return frame["truth_bps"].to_numpy(np.float64) if "truth_bps" in frame else None


def _feature_frame(names: list[str], config: FeatureConfig) -> pd.DataFrame:
    reg = feature_table(config).set_index("name")
    rows = []
    for n in names:
        r = reg.loc[n] if n in reg.index else None
        rows.append({"name": n, "group": r["group"] if r is not None else "",
                     "unit": r["unit"] if r is not None else "",
                     "sources": r["sources"] if r is not None else "",
                     "lookback": r["lookback"] if r is not None else "",
                     "description": r["description"] if r is not None else ""})
    return pd.DataFrame(rows)


def train_cost_model(training_set: pd.DataFrame, config: TrainingConfig | None = None, *,
                     feature_config: FeatureConfig | None = None,
                     storage_path: str | Path | None = None, study_name: str = "cost_model",
                     progress: Callable[[str], None] | None = None,
                     extra: pd.DataFrame | None = None) -> TrainedCostModel:
    """Train, calibrate and score the cost model on ``training_set`` (see the module doc).

    ``training_set``: one row per parent order sorted by ``decision_ts`` with the feature
    columns, ``is_bps``, ``t1``, ``timing_risk_bps`` and, for synthetic data, ``truth_bps``.
    ``feature_config`` is the configuration the features were built with (kept in the bundle
    so serving derives them the same way). ``storage_path``: the Optuna journal (None: memory).

    ``extra``: rows of replayed real books (:func:`validation._stress_lobo.real_book_rows`:
    features, ``is_bps``, ``adjusted_bps``, tags). They join the final fits of the mean model
    (label: their market-adjusted cost, :data:`MEAN_LABEL`), of the quantile model (label:
    the realized cost) and the training domain, weighing ``config.real_share`` of the total; the
    hyperparameter search, the purged CV, the conformal margin and the holdout stay on
    ``training_set`` alone, so the holdout measures what the real rows cost the synthetic desk.
    """
    cfg = config or TrainingConfig()
    fcfg = feature_config or FeatureConfig()
    say = progress or (lambda _m: None)
    split = holdout_split(training_set, cfg)
    train, hold = split.train, split.holdout
    feats = model_features(training_set)
    X, y = train[feats], _labels(train, cfg)
    w = inverse_noise_weights(train["timing_risk_bps"], cfg.noise_floor_bps)
    scale = noise_sd_bps(train["timing_risk_bps"], cfg.noise_floor_bps)
    cv = PurgedKFold(cfg.n_splits, t1=pd.Series(train["t1"].to_numpy(),
                                                index=train["decision_ts"]),
                     embargo_pct=cfg.embargo_pct)

    say(f"tuning {cfg.n_trials} trials on {len(train)} orders, {cfg.cv_scheme}")
    t0 = time.perf_counter()
    tuned = tune(X, y, cv, n_trials=cfg.n_trials, seed=cfg.seed, storage_path=storage_path,
                 search_space=_space(cfg), study_name=study_name, sample_weight=w)
    tune_s = time.perf_counter() - t0
    say(f"tuned in {tune_s:.1f} s; purged CV of the best parameters")
    cvres = cross_validate_cost_model(X, y, cv, tuned.best_params, truth=_truth(train),
                                      sample_weight=w, interval_scale=scale,
                                      coverage=cfg.coverage,
                                      baseline_X=train[[c for c in _BASELINE_COLUMNS
                                                        if c in train.columns]])

    calibrations = fit_parametric(train.assign(is_bps=y), config=fcfg)
    X_fit, y_fit, y_mean, w_fit, s_fit = X, y, y, w, scale
    tagged = train  # rows with their tags (``venue``), aligned with X_fit
    n_extra = 0 if extra is None else len(extra)
    if n_extra:
        ex = real_rows_for(extra, feats, calibrations)
        y_ex = _band_labels(ex, ex["is_bps"].to_numpy(np.float64))
        X_fit = pd.concat([X, ex[feats]], ignore_index=True)
        tagged = pd.concat([train, ex], ignore_index=True)
        y_fit = np.concatenate([y, y_ex])
        y_mean = np.concatenate([y, _mean_labels(ex, ex["is_bps"].to_numpy(np.float64))])
        w_fit = np.concatenate([w, inverse_noise_weights(ex["timing_risk_bps"],
                                                         cfg.noise_floor_bps)])
        w_fit = w_fit * share_weights(len(X), n_extra, cfg.real_share)
        s_fit = np.concatenate([scale, noise_sd_bps(ex["timing_risk_bps"],
                                                    cfg.noise_floor_bps)])
        say(f"final fits with {n_extra} rows of {ex['book'].nunique() if 'book' in ex else '?'}"
            f" real book(s) at {cfg.real_share:.0%} of the weight")
    mean = MeanCostModel(tuned.best_params).fit(X_fit, y_mean, sample_weight=w_fit)
    # the band in units of each order's noise sd: quantiles of the standardized cost, so it
    # stretches with the timing risk of regimes the training data never reached
    qmodel = QuantileCostModel(tuned.best_params).fit(X_fit, y_fit, scale=s_fit)
    # the band's margin from the purged out-of-fold quantiles of every training regime
    q_oof = cvres.oof[["p10", "p50", "p90"]].to_numpy()
    conformal = ConformalInterval(cfg.coverage).fit(q_oof, y, scale)
    # out of domain: the excess margin of rows at the edge of their fold's training rows and
    # one margin per regime (the same out-of-fold quantiles), each venue's square-root law
    extras = fit_domain_extras(X, y, scale, q_oof, coverage=cfg.coverage,
                               folds=cvres.oof["fold"].to_numpy(np.intp),
                               group_feature=cfg.band_group_feature,
                               groups=_groups(train, cfg.band_group_feature))
    extras["venue_calibrations"] = _trust_laws(
        _venue_laws(tagged, y_fit, y_mean, s_fit, cfg), mean, X_fit, tagged, y_mean)
    bundle = CostModelBundle(mean.booster_, qmodel.booster_, feats, conformal.margin_,
                             cfg.noise_floor_bps, quantile_scaled=True,
                             domain=CostModelBundle.fit_domain(X_fit),
                             risk_fill_bps=float(np.nanmedian(train["timing_risk_bps"])),
                             feature_config=fcfg, calibrations=calibrations, **extras)

    pred, lo, hi = bundle.predict(hold)
    baselines = {"sqrt": SquareRootBaseline().fit(train, y).predict(hold),
                 "athl": ATHLBaseline().fit(train, y).predict(hold)}
    yh = hold["is_bps"].to_numpy(np.float64)
    holdout = evaluate(yh, pred, truth=_truth(hold), q_lo=lo, q_hi=hi, baseline_pred=baselines)
    holdout["wrmse"] = fold_loss(yh, pred, "rmse",
                                 inverse_noise_weights(hold["timing_risk_bps"],
                                                       cfg.noise_floor_bps))
    dmat = xgb.DMatrix(hold[feats].to_numpy(np.float32), feature_names=feats)
    contribs = mean.booster_.predict(dmat, pred_contribs=True)[:, :-1]
    shap_mean = pd.Series(np.abs(contribs).mean(axis=0), index=feats)

    keep = ["order_id", "decision_ts", "t1", "is_bps", "truth_bps", "timing_risk_bps", *feats]
    preds = hold[[c for c in dict.fromkeys(keep) if c in hold.columns]].copy()
    preds["pred_bps"], preds["lo80_bps"], preds["hi80_bps"] = pred, lo, hi
    preds["noise_sd_bps"] = bundle.scale(hold)
    for k, v in baselines.items():
        preds[f"{k}_bps"] = v
    metrics = {"holdout": {k: float(v) for k, v in holdout.items()},
               "cv": {k: float(v) for k, v in cvres.metrics.items()},
               "cv_wrmse": float(np.mean(cvres.fold_losses)),
               "pbo": None if tuned.pbo is None else float(tuned.pbo),
               "best_cv_loss": float(tuned.best_value), "tuning_s": tune_s,
               "tuning_overhead_pct": float(tuned.overhead_pct)}
    return TrainedCostModel(
        bundle=bundle, params=tuned.best_params, features=_feature_frame(feats, fcfg),
        config=cfg, split=split, metrics=metrics, holdout_predictions=preds,
        importance=dict(mean.booster_.get_score(importance_type="gain")), shap_mean=shap_mean,
        cv=cvres, tuning=tuned)
