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


def test_registry_resource_keeps_state_under_bestex_home(tmp_path):
    from pipelines.registry import ModelRegistry

    res = ModelRegistry(root=str(tmp_path / "mlflow"), audit_path=str(tmp_path / "audit.pq"))
    with res.start_run(experiment="smoke", run_name="t") as run:
        run.log_metrics({"x": 1.0})
    assert res.run_metrics(run.run_id) == {"x": 1.0}
    assert (tmp_path / "mlflow" / "mlflow.db").exists()
    assert not (tmp_path / "mlruns").exists()


def test_landing_folder_tables_become_assets(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "quotes.csv").write_text(
        "ts,available_at,symbol,bid_px,bid_sz,ask_px,ask_sz\n"
        "2012-06-21T13:30:00Z,2012-06-21T13:30:00Z,AMZN,220.0,100,220.1,100\n"
        "2012-06-21T13:30:01Z,2012-06-21T13:30:01Z,AMZN,-1,100,220.1,100\n"
    )
    monkeypatch.setenv("BESTEX_LANDING", str(landing))
    monkeypatch.setenv("BESTEX_DATA", "/nonexistent")
    defs = build_definitions()
    assert "cleansed/landing/quotes" in _keys(defs)
    asset = next(a for a in defs.assets if "read_cleanse_landing_quotes" in str(a.op.name))
    result = dg.materialize([asset], resources=defs.resources)
    assert result.success
    q = result.output_for_node(asset.op.name, "quarantine")
    assert list(q["row"]) == [1]
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"rows_reconcile": True, "meets_contract": True}
