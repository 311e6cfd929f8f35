"""Jobs: named selections of the asset graph."""

from __future__ import annotations

import dagster as dg

_LOBSTER = dg.AssetSelection.key_prefixes(
    ["raw", "lobster"], ["cleansed", "lobster"], ["quarantine", "lobster"], ["outages", "lobster"]
)


def build_jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    """``data_layer`` (every unpartitioned source, cleansing, universe) and ``lobster_day``."""
    return [
        dg.define_asset_job(
            "data_layer",
            selection=dg.AssetSelection.groups("sources", "cleansed", "universe") - _LOBSTER,
            description="Sources, cleansing and universes of every unpartitioned data set.",
        ),
        dg.define_asset_job(
            "execution",
            selection=dg.AssetSelection.groups("execution", "learning"),
            description="Desk history through the simulator, TCA labels, impact calibration, "
            "counterfactual impact, the TCA report, features and the cost models.",
        ),
        dg.define_asset_job(
            "lobster_day",
            selection=_LOBSTER,
            description="One LOBSTER symbol-day: raw tables, cleansing, quarantine, outages.",
        ),
    ]
