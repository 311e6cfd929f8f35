"""Execution assets: desk history, TCA labels, impact calibration, counterfactual impact, TCA report.

Each asset is a thin adapter over one pure call in ``models/``.
"""

import json
from types import SimpleNamespace
from typing import Any

import dagster as dg
import pandas as pd

import sources
from assets._meta import frame_metadata
from assets._plots import reports_dir
from models.desk_history import DeskHistoryConfig, RecordedBook, replay_desk_history
from models.tca import compute_tca

PARENT_CONTRACT_COLUMNS = ["order_id", "symbol", "side", "qty", "decision_ts", "end_ts", "strategy"]


class DeskHistoryParams(dg.Config):
    """Run config of the synthetic desk; fields map onto ``DeskHistoryConfig``."""

    n_orders: int = 45_000  # ~100 parents per symbol and session (8 x 60 sessions)
    seed: int = DeskHistoryConfig.model_fields["seed"].default
    workers: int = 0
    """Dask worker processes for the executions, in independent chunks of parents
    (``bestex.distributed``); 0: in this process, unless ``BESTEX_DASK_SCHEDULER`` names a
    cluster. The same history either way (BENCHMARKS: little gain on 2 cores)."""


def _market(quotes: pd.DataFrame, trades: pd.DataFrame, daily_bars: pd.DataFrame,
            membership: pd.DataFrame, truth: dict[str, Any]) -> SimpleNamespace:
    """The synthetic market rebuilt from the lake (what ``generate_market`` returned)."""
    from models.synthetic_market import GroundTruth

    return SimpleNamespace(quotes=quotes, trades=trades, daily_bars=daily_bars,
                           membership=membership, truth=GroundTruth.model_validate(truth))


_SYNTH_INS = {
    "quotes": dg.AssetIn(["cleansed", "synth", "quotes"]),
    "trades": dg.AssetIn(["cleansed", "synth", "trades"]),
    "daily_bars": dg.AssetIn(["cleansed", "synth", "daily_bars"]),
    "membership": dg.AssetIn(["cleansed", "synth", "membership"]),
    "truth": dg.AssetIn(["raw", "synth", "ground_truth"]),
}


@dg.multi_asset(
    name="synth_desk_history",
    group_name="execution",
    ins=_SYNTH_INS,
    outs={
        "parent_orders": dg.AssetOut(key=["execution", "synth", "parent_orders"],
                                     description="Synthetic desk parent orders: one row per order, "
                                     "with decision-time features and the truth kept aside."),
        "child_fills": dg.AssetOut(key=["execution", "synth", "child_fills"],
                                   description="Child fills from the simulator: one row per fill."),
        "outcomes": dg.AssetOut(key=["execution", "synth", "outcomes"],
                                description="Per order: realized shortfall and the true expected "
                                "cost (the oracle every cost model is scored against)."),
        "rejections": dg.AssetOut(key=["execution", "synth", "rejections"],
                                  description="Risk-control rejections: one row per rejected child."),
        "child_orders": dg.AssetOut(key=["execution", "synth", "child_orders"],
                                    description="Child orders sent (marketable or passive): one "
                                    "row per child; the counterfactual re-runs them."),
    },
)
def synth_desk_history(config: DeskHistoryParams, quotes, trades, daily_bars, membership, truth):
    """Parent orders drawn on the synthetic market and executed through the simulator."""
    from bestex.distributed import fanout  # (Dask is imported only when it is used)
    from models.desk_history import simulate_desk_history

    market = _market(quotes, trades, daily_bars, membership, truth)
    with fanout(config.workers) as mapper:
        hist = simulate_desk_history(market, DeskHistoryConfig(n_orders=config.n_orders,
                                                               seed=config.seed),
                                     mapper=mapper, n_chunks=getattr(mapper, "n_workers", 1))
    o = hist.outcomes
    gap = (o["shortfall_bps"] - o["truth_bps"]).dropna()
    yield dg.Output(hist.parent_orders, "parent_orders", metadata=frame_metadata(hist.parent_orders)
                    | {"strategies": dg.MetadataValue.json(
                        hist.parent_orders["strategy"].value_counts().to_dict())})
    yield dg.Output(hist.child_fills, "child_fills", metadata=frame_metadata(hist.child_fills))
    yield dg.Output(o, "outcomes", metadata=frame_metadata(o) | {
        "mean_shortfall_bps": float(o["shortfall_bps"].mean()),
        "mean_truth_bps": float(o["truth_bps"].mean()),
        "mean_gap_bps": float(gap.mean()),
        "gap_se_bps": float(gap.std(ddof=1) / max(len(gap), 1) ** 0.5),
    })
    yield dg.Output(hist.rejections, "rejections", metadata=frame_metadata(hist.rejections))
    yield dg.Output(hist.child_orders, "child_orders", metadata=frame_metadata(hist.child_orders))


@dg.multi_asset(
    name="synth_labels",
    group_name="execution",
    ins={
        "parent_orders": dg.AssetIn(["execution", "synth", "parent_orders"]),
        "child_fills": dg.AssetIn(["execution", "synth", "child_fills"]),
        "quotes": dg.AssetIn(["cleansed", "synth", "quotes"]),
        "trades": dg.AssetIn(["cleansed", "synth", "trades"]),
    },
    outs={
        "labels": dg.AssetOut(key=["labels", "synth"], description="TCA labels: one row per "
                              "parent order (implementation shortfall, decomposition, t1)."),
        "benchmarks": dg.AssetOut(key=["labels", "synth_benchmarks"], description="Per order: "
                                  "interval VWAP, TWAP, markouts at 1/5/30 min, participation."),
    },
    check_specs=[dg.AssetCheckSpec("meets_contract", asset=["labels", "synth"], blocking=True),
                 dg.AssetCheckSpec("labels_end_after_decisions", asset=["labels", "synth"],
                                   blocking=True)],
)
def synth_labels(parent_orders, child_fills, quotes, trades):
    """Implementation shortfall of every parent order and its decomposition."""
    from validation.contracts import split_valid

    tables = compute_tca(parent_orders[PARENT_CONTRACT_COLUMNS], child_fills, quotes, trades=trades)
    labels = tables.labels
    parts = ["delay_bps", "spread_bps", "impact_bps", "timing_bps", "opportunity_bps", "fees_bps"]
    meta = frame_metadata(labels) | {
        "mean_is_bps": float(labels["is_bps"].mean()),
        "mean_components_bps": dg.MetadataValue.json(
            {c: round(float(labels[c].mean()), 3) for c in parts}),
    }
    yield dg.Output(labels, "labels", metadata=meta)
    yield dg.Output(tables.benchmarks, "benchmarks", metadata=frame_metadata(tables.benchmarks))
    _, failures = split_valid("labels", labels)
    yield dg.AssetCheckResult(check_name="meets_contract", asset_key=["labels", "synth"],
                              passed=not failures, metadata={"failures": len(failures)})
    early = labels[labels["t1"] < labels["decision_ts"]]
    yield dg.AssetCheckResult(check_name="labels_end_after_decisions",
                              asset_key=["labels", "synth"], passed=early.empty,
                              metadata={"violations": len(early)})


@dg.asset(
    key=["execution", "synth", "impact_calibration"],
    group_name="execution",
    ins={"parent_orders": dg.AssetIn(["execution", "synth", "parent_orders"]),
         "outcomes": dg.AssetIn(["execution", "synth", "outcomes"]),
         "child_fills": dg.AssetIn(["execution", "synth", "child_fills"]),
         "truth": dg.AssetIn(["raw", "synth", "ground_truth"])},
    description="Impact models calibrated on the desk history (pooled and per symbol), with "
    "standard errors, beside the ground truth.",
)
def synth_impact_calibration(parent_orders, outcomes, child_fills, truth) -> dg.Output[dict]:
    from models.desk_history import DeskHistory, calibration_frame
    from models.impact_calibration import calibrate

    hist = DeskHistory(parent_orders=parent_orders, child_fills=child_fills, outcomes=outcomes,
                       rejections=pd.DataFrame())
    # sqrt: on what a desk observes (realized shortfall less spread and fees), per symbol.
    # ATHL: its permanent term is not identified from noisy shortfalls of ~10k orders (sigma*sqrt(T)
    # diffusion); the simulation observes the counterfactual difference (same orders, same market
    # path, with minus without our impact), in which the market noise cancels.
    sqrt_fit = calibrate("sqrt", calibration_frame(hist), by="symbol", robust=True)
    athl_fit = calibrate("athl", calibration_frame(hist, label="impact_bps"), robust=True)
    athl_raw = calibrate("athl", calibration_frame(hist), robust=True)
    true = truth["impact"]
    result = {"sqrt": json.loads(sqrt_fit.to_json()), "athl": json.loads(athl_fit.to_json()),
              "athl_on_shortfall": json.loads(athl_raw.to_json()),
              "truth": {"y": true["sqrt_law_y"], "gamma": true["athl_gamma"],
                        "eta": true["athl_eta"], "beta": true["athl_beta"]}}
    rows = [{"model": "sqrt (shortfall)", "param": "y", "estimate": sqrt_fit.params["y"],
             "std_error": sqrt_fit.std_errors.get("y"), "truth": true["sqrt_law_y"]}]
    for name, fit in (("athl (counterfactual)", athl_fit), ("athl (shortfall)", athl_raw)):
        rows += [{"model": name, "param": p, "estimate": fit.params[p],
                  "std_error": fit.std_errors.get(p), "truth": true[f"athl_{p}"]}
                 for p in ("gamma", "eta", "beta")]
    table = pd.DataFrame(rows)
    per_symbol = pd.DataFrame([
        {"symbol": g, "y": r.params["y"], "std_error": r.std_errors.get("y"), "n": r.n}
        for g, r in (sqrt_fit.groups or {}).items()
    ])
    return dg.Output(result, metadata={
        "fit": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".4f")),
        "sqrt_per_symbol": dg.MetadataValue.md(per_symbol.to_markdown(index=False,
                                                                      floatfmt=".4f")),
        "n_orders": int(sqrt_fit.n),
    })


@dg.asset(
    key=["execution", "synth", "counterfactual_impact"],
    group_name="execution",
    ins={**_SYNTH_INS,
         "parent_orders": dg.AssetIn(["execution", "synth", "parent_orders"]),
         "outcomes": dg.AssetIn(["execution", "synth", "outcomes"]),
         "child_fills": dg.AssetIn(["execution", "synth", "child_fills"]),
         "child_orders": dg.AssetIn(["execution", "synth", "child_orders"])},
    description="Impact by participation: the same market seed with and without our orders, "
    "beside the square-root law. One row per participation bucket.",
)
def synth_counterfactual_impact(quotes, trades, daily_bars, membership, truth, parent_orders,
                                outcomes, child_fills, child_orders) -> dg.Output[pd.DataFrame]:
    from models.counterfactual import counterfactual_impact
    from models.desk_history import DeskHistory

    market = _market(quotes, trades, daily_bars, membership, truth)
    hist = DeskHistory(parent_orders=parent_orders, child_fills=child_fills, outcomes=outcomes,
                       rejections=pd.DataFrame(), child_orders=child_orders)
    curve = counterfactual_impact(market, hist)
    return dg.Output(curve, metadata=frame_metadata(curve, preview_rows=12))


@dg.asset(
    key=["reports", "synth_tca"],
    group_name="execution",
    ins={"labels": dg.AssetIn(["labels", "synth"]),
         "parent_orders": dg.AssetIn(["execution", "synth", "parent_orders"]),
         "calibration": dg.AssetIn(["execution", "synth", "impact_calibration"])},
    description="TCA report (markdown + PNG plots): cost against %ADV with the fitted "
    "square-root curve, by schedule, by regime, with bootstrap confidence intervals.",
)
def synth_tca_report(labels, parent_orders, calibration) -> dg.MaterializeResult:
    from models.tca_report import tca_report

    out_dir = reports_dir() / "tca_synth"
    path = tca_report(labels, parent_orders, order_features=parent_orders,
                      fitted_sqrt=calibration["sqrt"]["params"]["y"], out_dir=out_dir)
    pngs = sorted(p.name for p in out_dir.glob("*.png"))
    return dg.MaterializeResult(metadata={
        "report": dg.MetadataValue.path(str(path)),
        "plots": dg.MetadataValue.json(pngs),
        "preview": dg.MetadataValue.md(path.read_text()[:4000]),
    })


def execution_assets() -> list[dg.AssetsDefinition]:
    """Every execution asset on the synthetic market."""
    return [synth_desk_history, synth_labels, synth_impact_calibration,
            synth_counterfactual_impact, synth_tca_report]


def replay_assets(lobster_file, partition_key: str) -> list[dg.AssetsDefinition]:
    """The AMZN desk history replayed on the real level-1 book, and its TCA labels."""

    @dg.multi_asset(
        name="amzn_replay_history",
        group_name="execution",
        outs={
            "parent_orders": dg.AssetOut(key=["execution", "amzn_replay", "parent_orders"],
                                         description="1,000 TWAP parent orders on the AMZN "
                                         "2012-06-21 day: one row per order."),
            "child_fills": dg.AssetOut(key=["execution", "amzn_replay", "child_fills"],
                                       description="Fills against the real L1 book: one row "
                                       "per fill."),
            "outcomes": dg.AssetOut(key=["execution", "amzn_replay", "outcomes"],
                                    description="Per order: realized shortfall, ATHL model "
                                    "estimate, footprint (with minus without our impact)."),
            "labels": dg.AssetOut(key=["labels", "amzn_replay"],
                                  description="TCA labels of the replayed orders on the real "
                                  "book: one row per order."),
        },
    )
    def amzn_replay_history():
        got = sources.ingest("lobster", lobster_file, part=partition_key)
        book = RecordedBook.of(got.clean("quotes"), got.clean("trades"), got.meta["symbol"],
                              got.meta["source"])
        hist = replay_desk_history(book, n_orders=1000)
        quotes = book.quotes
        labels = compute_tca(hist.parent_orders[PARENT_CONTRACT_COLUMNS], hist.child_fills, quotes).labels
        o = hist.outcomes
        yield dg.Output(hist.parent_orders, "parent_orders",
                        metadata=frame_metadata(hist.parent_orders))
        yield dg.Output(hist.child_fills, "child_fills", metadata=frame_metadata(hist.child_fills))
        yield dg.Output(o, "outcomes", metadata=frame_metadata(o) | {
            "mean_shortfall_bps": float(o["shortfall_bps"].mean()),
            "mean_model_bps": float(o["model_bps"].mean()),
        })
        yield dg.Output(labels, "labels", metadata=frame_metadata(labels) | {
            "mean_is_bps": float(labels["is_bps"].mean())})

    return [amzn_replay_history]
