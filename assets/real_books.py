"""Desk history on every real book, and leave one real book out (issue 13).

``training_set/real``: the stage-4 desk replayed on each real book a desk history can be built
on (:func:`sources.books.real_books`: the LOBSTER days and BitMEX symbols of the data folder, and
any LOBSTER zip in the landing folder) with the simulator's fills and footprint; its orders are
training rows tagged by book, venue, symbol and day (:func:`validation._stress_lobo.real_book_rows`),
joining the cost model's final fits (:func:`models.cost_training.train_cost_model` ``extra``).

``validation/real_books/synth``: each real book held out in turn, the model refit with the
champion candidate's hyperparameters on the synthetic desk plus the other books, scored on the
held-out one (:func:`validation._stress_lobo.leave_one_book_out`); judged by ``[real_books]`` of
``validation/gates.toml``.
"""

import json

import dagster as dg
import pandas as pd

import sources
from assets._meta import frame_metadata
from assets._plots import reports_dir
from assets.learning import _TRAINING_KEY, COST_MODEL_KEY
from assets.records import CostModelRecord
from bestex import settings
from models.cost_models import CostModelParams
from models.cost_training import TrainingConfig, holdout_split, real_rows_for
from validation._stress_lobo import PATH_PREFIX, leave_one_book_out, real_book_rows
from validation.stress import book_spec, replay_book

REAL_ROWS_KEY = dg.AssetKey(["training_set", "real"])
REAL_BOOKS_KEY = dg.AssetKey(["validation", "real_books", "synth"])


class RealBooksParams(dg.Config):
    """Run config of the real-book desk histories."""

    n_orders: int = 500
    seed: int = 0


@dg.asset(key=REAL_ROWS_KEY, group_name="learning",
          description="The desk replayed on every real book of the data and landing folders "
          "(LOBSTER days, BitMEX symbols): one training row per parent order, tagged by book, "
          "venue, symbol and day, with its realized and market-adjusted cost.")
def real_training_rows(context: dg.AssetExecutionContext, config: RealBooksParams):
    books = sources.real_books(settings.data_dir(), settings.landing_dir(), warn=context.log.warning)
    reps, venues, left = {}, {}, {}
    for book, kind in books:
        spec, name = book_spec(book, kind)
        try:
            reps[name] = replay_book(book, spec, n_orders=config.n_orders, seed=config.seed,
                                     name=name)
        except ValueError as exc:  # a book too short for a desk: said, not used
            left[name] = str(exc)
            context.log.warning(f"{name}: left out: {exc}")
            continue
        venues[name] = "LOBSTER" if kind == "equity" else "BitMEX"
    rows = real_book_rows(reps, venues=venues, seed=config.seed)
    frame = (pd.concat(list(rows.values()), ignore_index=True) if rows
             else pd.DataFrame({"book": pd.Series(dtype=str)}))
    per_book = {b: int(n) for b, n in frame["book"].value_counts().items()}
    yield dg.Output(frame, metadata={**frame_metadata(frame.drop(columns=[
        c for c in frame.columns if str(c).startswith(PATH_PREFIX)])),
        "orders_per_book": dg.MetadataValue.json(per_book),
        "left_out": dg.MetadataValue.json(left)})


def _md(table: pd.DataFrame) -> str:
    show = ["book", "variant", "n", "bias_bps", "noise_sd_bps", "bias_over_sd", "coverage80",
            "coverage80_paths", "mae_bps", "mae_sqrt_law_bps", "mae_ratio", "bias_realized_bps",
            "mae_realized_bps", "share_in_domain", "fallback_share"]
    return table[[c for c in show if c in table.columns]].to_markdown(index=False,
                                                                      floatfmt=".3f")


@dg.asset(required_resource_keys={"registry"}, key=REAL_BOOKS_KEY, group_name="validation",
          ins={"model": dg.AssetIn(COST_MODEL_KEY), "training_set": dg.AssetIn(_TRAINING_KEY),
               "real": dg.AssetIn(REAL_ROWS_KEY)},
          description="Stage 4, real books: leave one real book out — refit on the synthetic "
          "desk plus the other real books, scored on the held-out one (bias and MAE against the "
          "market-adjusted cost, band coverage over resampled paths); gated by [real_books].")
def synth_real_books(context: dg.AssetExecutionContext, config: RealBooksParams,
                     model: CostModelRecord, training_set: pd.DataFrame,
                     real: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    registry = context.resources.registry
    books = list(dict.fromkeys(real["book"].astype(str))) if len(real) else []
    if len(books) < 2:
        context.log.warning(f"leave-one-book-out needs two real books, found {books}")
        return dg.Output(pd.DataFrame(), metadata={"books": dg.MetadataValue.json(books),
                                                   "note": "fewer than two real books"})
    bundle = registry.load_bundle(model.model_uri)
    cfg = TrainingConfig(seed=model.seed, noise_floor_bps=model.noise_floor_bps)  # as trained
    train = holdout_split(training_set, cfg).train
    filled = real_rows_for(real, model.features, bundle.calibrations)
    per_book = {b: g.reset_index(drop=True) for b, g in filled.groupby("book", sort=False)}
    context.log.info(f"leave one real book out: {len(books)} books, "
                     f"{len(train)} synthetic training rows, {2 * len(books) + 1} fits")
    table = leave_one_book_out(train, per_book, params=CostModelParams(**model.params),
                               features=model.features, config=cfg)
    out = reports_dir() / "validation" / "real_books"
    out.mkdir(parents=True, exist_ok=True)
    md = ("# Stage 4 — leave one real book out\n\nEach real book held out in turn; the model "
          "refit with this run's hyperparameters on the synthetic desk alone (`synthetic`) or "
          "with the other real books (`synthetic+real`, the model as trained). Bias and MAE "
          "against the market-adjusted cost (the realized cost less the recorded mid's move to "
          "each fill's slot start); coverage of the realized cost on the recorded path "
          "(`coverage80`) and over resampled paths of the book (`coverage80_paths`).\n\n"
          + _md(table))
    (out / "report.md").write_text(md)
    table.to_csv(out / "lobo.csv", index=False)
    both = table[table["variant"] == "synthetic+real"]
    pooled = both[both["book"] == "pooled"]
    metrics = {"lobo_pooled_mae_ratio": float(pooled["mae_ratio"].iloc[0])} if len(pooled) else {}
    for _, r in both[both["book"] != "pooled"].iterrows():
        metrics[f"lobo_{r['book']}_bias_bps"] = float(r["bias_bps"])
        metrics[f"lobo_{r['book']}_coverage80_paths"] = float(r["coverage80_paths"])
    registry.attach(model.mlflow_run_id, "real_books", [out / "report.md", out / "lobo.csv"],
                    metrics)
    return dg.Output(table, metadata={
        "report": dg.MetadataValue.md(md),
        "metrics": dg.MetadataValue.json(json.loads(json.dumps(metrics)))})


def real_book_assets() -> list[dg.AssetsDefinition]:
    """The real books' training rows and the leave-one-real-book-out stage."""
    return [real_training_rows, synth_real_books]
