"""Sensors: new or changed files in the landing folder trigger a run of the landing assets; a
drift alarm on the monitored model triggers a retraining run (issue 16)."""

import hashlib

import dagster as dg

from bestex import settings


def _fingerprint() -> str:
    folder = settings.landing_dir()
    if not folder.is_dir():
        return ""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def build_sensors() -> list[dg.SensorDefinition]:
    """``landing_folder_sensor``: one run of the landing assets per change of the folder."""

    @dg.sensor(
        name="landing_folder_sensor",
        target=dg.AssetSelection.key_prefixes(["cleansed", "landing"]),
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Runs the landing-folder assets when files appear or change "
        "(BESTEX_LANDING or BESTEX_HOME/landing).",
    )
    def landing_folder_sensor(context: dg.SensorEvaluationContext):
        fp = _fingerprint()
        if not fp or fp == context.cursor:
            return dg.SkipReason("landing folder unchanged")
        context.update_cursor(fp)
        return dg.RunRequest(run_key=fp)

    return [landing_folder_sensor]


DRIFT_ASSET = dg.AssetKey(["monitoring", "drift"])
"""The monitoring asset whose materializations carry the detectors' verdict (``alarm``,
``reasons``, ``window_end``, ``model_version`` metadata)."""
RETRAIN_JOB = "validation"
"""Retrain, walk forward, stress, gate and register a challenger: the weekly job. Promotion
stays a decision (``bestex promote``): a drift-triggered challenger is not the champion."""


def build_drift_sensor() -> dg.SensorDefinition:
    """``drift_retrain``: one retraining run per monitoring result that raised an alarm.

    The run is tagged with why it was launched (``bestex/trigger=drift``, the detectors that
    fired and the monitored window), so the run list answers "why did this retrain happen".
    A result without an alarm is a skip; the same result never launches twice (the sensor's cursor,
    and a run key from the materialization's run and time)."""

    @dg.asset_sensor(asset_key=DRIFT_ASSET, job_name=RETRAIN_JOB, name="drift_retrain",
                     minimum_interval_seconds=60,
                     default_status=dg.DefaultSensorStatus.RUNNING,
                     description="Launches the retraining job (validation: retrain, gates, "
                     "challenger) when the drift monitor raises an alarm; records why.")
    def drift_retrain(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
        mat = asset_event.asset_materialization
        meta = mat.metadata if mat is not None else {}
        alarm = meta.get("alarm")
        if not (alarm is not None and alarm.value):
            return dg.SkipReason("the drift monitor raised no alarm")
        reasons = str(meta["reasons"].value) if "reasons" in meta else "unspecified"
        window = str(meta["window_end"].value) if "window_end" in meta else ""
        version = str(meta["model_version"].value) if "model_version" in meta else ""
        context.log.info(f"drift alarm on model v{version} (window to {window}): {reasons}; "
                         f"launching {RETRAIN_JOB}")
        return dg.RunRequest(
            run_key=f"drift-{asset_event.run_id or 'runless'}-{asset_event.timestamp:.6f}",
            tags={"bestex/trigger": "drift", "bestex/drift_reasons": reasons[:1000],
                  "bestex/drift_window_end": window, "bestex/monitored_version": version})

    return drift_retrain
