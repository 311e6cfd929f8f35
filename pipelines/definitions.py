"""The Dagster code location: ``dagster-webserver -m pipelines.definitions``.

Real data sets are added when ``bestex.settings.data_dir()`` finds them; the synthetic market is
always there.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

import sources
from assets.cleansed import cleansed_table
from assets.execution import execution_assets, replay_assets
from assets.learning import learning_assets
from assets.monitoring import monitoring_assets
from assets.sources import (
    bitmex_assets,
    landing_assets,
    lobster_assets,
    sp500_assets,
    synthetic_market,
)
from assets.universe import universe_assets
from assets.validation import validation_assets
from bestex import settings
from pipelines.jobs import build_jobs, build_schedules
from pipelines.promotion import (
    build_promotion_sensor,
    promote,
    promotion_report_job,
    rollback,
)
from pipelines.resources import local_resources
from pipelines.sensors import build_drift_sensor, build_sensors


def _cleanser(source: str):
    """The cleansing of ``source``'s raw tables (:func:`sources.cleanse`) for ``cleansed_table``."""
    return lambda table, raw, origin: sources.cleanse(source, table, raw, origin=origin)


_market = _contract = _cleanser("synth")  # the synthetic market: XNYS market rules, contracts


def lobster_files(data: Path) -> dict[str, Path]:
    """Partition key (``SYMBOL_DATE_LEVELS``) -> LOBSTER zip or message file under ``data/lobster``."""
    return sources.discover_lobster(data / "lobster")


def build_definitions() -> dg.Definitions:
    """Assemble assets, checks, jobs and resources for this machine's data."""
    assets: list = [
        synthetic_market,
        cleansed_table("synth", "quotes", _market),
        cleansed_table("synth", "trades", _market),
        cleansed_table("synth", "daily_bars", _contract),
        cleansed_table("synth", "membership", _contract),
        *universe_assets("synth"),
        *execution_assets(),
        *learning_assets(),
        *validation_assets(),
        *monitoring_assets(),
    ]
    data = settings.data_dir()
    if data is not None:
        files = lobster_files(data)
        if files:
            lob = lobster_assets(files)
            assets += [lob] + [
                cleansed_table("lobster", t, _cleanser("lobster"), partitions_def=lob.partitions_def)
                for t in ("quotes", "trades", "depth")
            ]
            amzn = next((k for k in files if k.startswith("AMZN_") and k.endswith("_1")), None)
            if amzn is not None:
                assets += replay_assets(files[amzn], amzn)
        assets += sp500_assets(data)
        assets += [
            cleansed_table("sp500", "membership", _contract),
            *universe_assets("sp500"),
        ]
        assets += [bitmex_assets(data)] + [
            cleansed_table("bitmex", t, _cleanser("bitmex")) for t in ("quotes", "depth", "trades")
        ]
    landing = settings.landing_dir()
    if landing.is_dir() and any(landing.iterdir()):
        assets += landing_assets(landing)
    return dg.Definitions(
        assets=assets,
        executor=build_executor(),
        jobs=[*build_jobs(), promote, rollback, promotion_report_job],
        schedules=build_schedules(),
        sensors=[*build_sensors(), build_promotion_sensor(), build_drift_sensor()],
        resources=local_resources(),
    )


def build_executor() -> dg.ExecutorDefinition:
    """The executor of runs launched from the UI, schedules and sensors: in process on the
    local profile (one machine, small runs: a process per step costs more than the step), the
    multiprocess executor on the services profile (a step per process, ``BESTEX_WORKERS`` at a
    time, default the cores; the instance and the IO manager are shared, so any worker can run
    any step). A cluster swaps it for ``dagster_celery.celery_executor`` or
    ``dagster_k8s.k8s_job_executor`` (docs/distributed.md); the assets do not change."""
    if settings.profile() == "services":
        workers = int(os.environ.get("BESTEX_WORKERS", os.cpu_count() or 2))
        return dg.multiprocess_executor.configured({"max_concurrent": workers},
                                                   name="bestex_multiprocess")
    return dg.in_process_executor


defs = build_definitions()
