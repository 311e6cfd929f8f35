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
            selection=dg.AssetSelection.groups("execution", "learning")
            .required_multi_asset_neighbors(),
            description="Desk history through the simulator, TCA labels, impact calibration, "
            "counterfactual impact, the TCA report, features and the cost models.",
        ),
        dg.define_asset_job(
            "validation",
            selection=dg.AssetSelection.groups("learning", "validation", "registry")
            .required_multi_asset_neighbors(),
            description="Retrain the cost model, run validation stages 1-4 and the gates, and "
            "register the version as challenger (the weekly walk-forward retraining).",
        ),
        dg.define_asset_job(
            "monitoring",
            selection=dg.AssetSelection.groups("monitoring"),
            description="Feature, prediction and calibration drift of the model under "
            "validation; an alarm launches retraining (sensor drift_retrain).",
        ),
        dg.define_asset_job(
            "studies",
            selection=dg.AssetSelection.groups("studies"),
            description="The break scenario: detection delay, false alarms and recovery of the "
            "scheduled, drift-triggered and online paths (on demand).",
        ),
        dg.define_asset_job(
            "lobster_day",
            selection=_LOBSTER,
            description="One LOBSTER symbol-day: raw tables, cleansing, quarantine, outages.",
        ),
    ]


def build_schedules() -> list[dg.ScheduleDefinition]:
    """Nightly data (02:00 New York, weekdays), the drift monitor after it (04:00) and the
    weekly retraining (Sunday 03:00)."""
    return [
        dg.ScheduleDefinition(name="nightly_data", job_name="data_layer",
                              cron_schedule="0 2 * * 1-5", execution_timezone="America/New_York",
                              description="Ingest and cleanse the day's data every weekday night."),
        dg.ScheduleDefinition(name="nightly_drift", job_name="monitoring",
                              cron_schedule="0 4 * * 1-5", execution_timezone="America/New_York",
                              description="Drift of the model after the night's data; an alarm "
                              "launches retraining through the drift_retrain sensor."),
        dg.ScheduleDefinition(name="weekly_walk_forward", job_name="validation",
                              cron_schedule="0 3 * * 0", execution_timezone="America/New_York",
                              description="Retrain, walk forward, stress, gate and register a "
                              "challenger every week."),
    ]
