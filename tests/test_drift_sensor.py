"""The drift sensor launches the retraining job when the monitor raises an alarm (issue 16).

Dagster's sensor test API: materializations of ``monitoring/drift`` reported to an ephemeral
instance, the sensor evaluated tick by tick with its cursor.
"""

from __future__ import annotations

import dagster as dg

from pipelines.sensors import DRIFT_ASSET, RETRAIN_JOB, build_drift_sensor


def test_an_alarm_launches_one_retraining_run_tagged_with_why():
    sensor = build_drift_sensor()
    instance = dg.DagsterInstance.ephemeral()
    # a calm day: no run
    instance.report_runless_asset_event(dg.AssetMaterialization(
        DRIFT_ASSET, metadata={"alarm": False, "reasons": "", "window_end": "2025-01-10",
                               "model_version": "3"}))
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert not data.run_requests
    assert "no alarm" in (data.skip_message or "")
    # the calibration CUSUM fires: one run of the retraining job, the reason in its tags
    instance.report_runless_asset_event(dg.AssetMaterialization(
        DRIFT_ASSET, metadata={"alarm": True, "reasons": "calibration CUSUM 5.2 > h=4.0",
                               "window_end": "2025-01-13", "model_version": "3"}))
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=data.cursor))
    [req] = data.run_requests
    assert req.job_name in (None, RETRAIN_JOB)
    assert sensor.job_name == RETRAIN_JOB
    assert req.tags["bestex/trigger"] == "drift"
    assert req.tags["bestex/drift_reasons"] == "calibration CUSUM 5.2 > h=4.0"
    assert req.tags["bestex/monitored_version"] == "3"
    # the same result never launches twice
    again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=data.cursor))
    assert not again.run_requests


def test_the_sensor_is_in_the_definitions_and_targets_the_retraining_job():
    from pipelines.definitions import build_definitions

    defs = build_definitions()
    sensor = defs.get_sensor_def("drift_retrain")
    assert sensor.job_name == RETRAIN_JOB
    assert defs.get_job_def(RETRAIN_JOB) is not None
