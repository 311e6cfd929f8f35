"""Sensors: new or changed files in the landing folder trigger a run of the landing assets."""

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
