"""Universe assets: the point-in-time tradable universe of each date, with survivorship checks."""


from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from assets._meta import frame_metadata
from assets._plots import survivorship_plot
from validation.errors import SurvivorshipError
from validation.universe import (
    UniverseParams,
    check_membership_spans,
    check_survivorship,
    point_in_time_universe,
    survivorship_report,
)


def universe_assets(dataset: str, params: UniverseParams | None = None) -> list[dg.AssetsDefinition]:
    """``universe/<dataset>`` and ``universe/<dataset>_survivorship`` from cleansed bars and spans."""
    params = params or UniverseParams()
    key = dg.AssetKey(["universe", dataset])

    @dg.multi_asset(
        name=f"universe_{dataset}",
        group_name="universe",
        ins={
            "bars": dg.AssetIn(["cleansed", dataset, "daily_bars"]),
            "membership": dg.AssetIn(["cleansed", dataset, "membership"]),
        },
        outs={
            "universe": dg.AssetOut(
                key=key,
                description=f"Point-in-time {dataset} universe: one row per (date, symbol) tradable "
                "that date — a member that day, data up to the previous session, ADV from earlier "
                "sessions above the threshold.",
            ),
            "report": dg.AssetOut(
                key=["universe", f"{dataset}_survivorship"],
                description="Survivorship report: one row per date — members, and how many of them "
                "later left the index.",
            ),
        },
        check_specs=[
            dg.AssetCheckSpec("within_membership_spans", asset=key, blocking=True,
                              description="no (date, symbol) outside the symbol's membership span"),
            dg.AssetCheckSpec("not_survivors_only", asset=key, blocking=True,
                              description="the universe keeps names that later left"),
        ],
    )
    def _universe(bars: pd.DataFrame, membership: pd.DataFrame) -> Iterator[Any]:
        universe = point_in_time_universe(membership, bars, **params.model_dump())
        report = survivorship_report(universe, membership)
        meta = frame_metadata(universe)
        meta["dates"] = dg.MetadataValue.int(int(universe["date"].nunique()))
        if len(universe):
            meta["mean_size"] = dg.MetadataValue.float(
                float(universe.groupby("date").size().mean()))
        yield dg.Output(universe, "universe", metadata=meta)
        rmeta = frame_metadata(report)
        rmeta["plot"] = dg.MetadataValue.path(str(survivorship_plot(report, dataset)))
        if len(report):
            rmeta["later_left_total"] = dg.MetadataValue.int(int(report["later_leavers"].sum()))
        yield dg.Output(report, "report", metadata=rmeta)

        outside = check_membership_spans(universe, membership)
        yield dg.AssetCheckResult(
            check_name="within_membership_spans", asset_key=key, passed=outside.empty,
            metadata={"violations": len(outside),
                      "failure_cases": dg.MetadataValue.json(
                          outside.head(20).astype(str).to_dict(orient="records"))},
        )
        try:
            check_survivorship(report)
            passed, why = True, "later leavers present"
        except SurvivorshipError as exc:
            passed, why = False, str(exc)
        yield dg.AssetCheckResult(
            check_name="not_survivors_only", asset_key=key, passed=passed,
            metadata={"detail": why,
                      "later_left_total": int(report["later_leavers"].sum()) if len(report) else 0},
        )

    return [_universe]
