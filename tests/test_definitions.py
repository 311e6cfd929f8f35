"""The Dagster code location loads, with and without the real data sets."""

import dagster as dg
import pytest

from pipelines.definitions import build_definitions


def _keys(defs: dg.Definitions) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}


def test_definitions_load_with_real_data():
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    keys = _keys(defs)
    for key in ("raw/synth/quotes", "cleansed/synth/quotes", "quarantine/synth/quotes",
                "universe/synth", "cleansed/sp500/daily_bars", "universe/sp500",
                "cleansed/lobster/quotes", "cleansed/bitmex/depth"):
        assert key in keys, key
    assert {"data_layer", "lobster_day"} <= {j.name for j in defs.resolve_all_job_defs()}


def test_definitions_load_without_real_data(monkeypatch):
    monkeypatch.setenv("BESTEX_DATA", "/nonexistent")
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    keys = _keys(defs)
    assert "universe/synth" in keys
    assert not any(k.startswith(("cleansed/sp500", "raw/lobster")) for k in keys)


@pytest.mark.parametrize("group", ["sources", "cleansed", "universe"])
def test_asset_groups_are_populated(group):
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert group in groups


def test_blocking_checks_guard_every_cleansed_table():
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    cleansed = [k for k in graph.get_all_asset_keys() if k.path[0] == "cleansed"]
    checks = {(c.asset_key, c.name) for c in graph.asset_check_keys}
    for key in cleansed:
        assert (key, "rows_reconcile") in checks, key
        assert (key, "meets_contract") in checks, key


def test_mlflow_resource_keeps_state_under_bestex_home(tmp_path):
    from pipelines.resources import MLflowResource

    res = MLflowResource(root=str(tmp_path / "mlflow"))
    with res.start_run(experiment="smoke", run_name="t") as mlflow:
        mlflow.log_metric("x", 1.0)
    assert (tmp_path / "mlflow" / "mlflow.db").exists()
    assert not (tmp_path / "mlruns").exists()
