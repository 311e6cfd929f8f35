"""The synthetic part of the asset graph materializes end to end with every check passing."""

import dagster as dg
import pandas as pd

from assets.cleansed import cleansed_table
from assets.sources import synthetic_market
from assets.universe import universe_assets
from pipelines.definitions import _contract, _market
from pipelines.resources import ParquetLakeIOManager
from validation.quarantine import cleanse_contract


def test_synthetic_graph_materializes_with_passing_checks(tmp_path):
    assets = [
        synthetic_market,
        cleansed_table("synth", "quotes", _market),
        cleansed_table("synth", "trades", _market),
        cleansed_table("synth", "daily_bars", _contract),
        cleansed_table("synth", "membership", _contract),
        *universe_assets("synth"),
    ]
    run_config = {"ops": {"synthetic_market": {"config": {"n_symbols": 4, "n_sessions": 6,
                                                          "seed": 3}}}}
    result = dg.materialize(
        assets,
        resources={"io_manager": ParquetLakeIOManager(base_path=str(tmp_path / "lake"))},
        run_config=run_config,
    )

    assert result.success
    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed
              for c in result.get_asset_check_evaluations()}
    assert len(checks) == 10
    assert all(checks.values()), checks
    # the lake holds the tables, and counts reconcile in the metadata
    clean = pd.read_parquet(tmp_path / "lake" / "cleansed" / "synth" / "quotes.parquet")
    raw = pd.read_parquet(tmp_path / "lake" / "raw" / "synth" / "quotes.parquet")
    q = pd.read_parquet(tmp_path / "lake" / "quarantine" / "synth" / "quotes.parquet")
    assert len(raw) == len(clean) + len(q)
    mats = {m.asset_key.to_user_string(): m.metadata
            for m in (e.materialization for e in result.get_asset_materialization_events())}
    meta = mats["cleansed/synth/quotes"]
    assert meta["rows_in"].value == len(raw)
    assert {"dagster/row_count", "time_min", "time_max", "preview", "quarantine_by_rule",
            "content_hash"} <= set(meta)
    universe = pd.read_parquet(tmp_path / "lake" / "universe" / "synth.parquet")
    assert set(universe["symbol"]) <= {f"SYN{i:02d}" for i in range(4)}


def test_blocking_check_failure_stops_downstream(tmp_path):
    def _loses_a_row(table, raw, source):
        res = cleanse_contract(table, raw, source=source)
        return type(res)(table=res.table, source=res.source, rows_in=res.rows_in + 1,
                         clean=res.clean, quarantine=res.quarantine)

    assets = [
        synthetic_market,
        cleansed_table("synth", "daily_bars", _loses_a_row),
        cleansed_table("synth", "membership", _contract),
        *universe_assets("synth"),
    ]
    run_config = {"ops": {"synthetic_market": {"config": {"n_symbols": 3, "n_sessions": 4,
                                                          "seed": 1}}}}
    result = dg.materialize(
        assets,
        resources={"io_manager": ParquetLakeIOManager(base_path=str(tmp_path / "lake"))},
        run_config=run_config, raise_on_error=False,
    )
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()
              if c.asset_key.to_user_string() == "cleansed/synth/daily_bars"}
    assert checks["rows_reconcile"] is False
    assert not (tmp_path / "lake" / "universe" / "synth.parquet").exists()


def test_md_images_embeds_the_png_bytes(tmp_path):
    import base64
    import re

    from assets._plots import md_images, plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    path = tmp_path / "line.png"
    fig.savefig(path)
    plt.close(fig)
    md = md_images([path, path])
    uris = re.findall(r"!\[line\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", md)
    assert len(uris) == 2  # one image per path, shown inline by the Dagster UI
    assert base64.b64decode(uris[0]) == path.read_bytes()
    assert md.startswith("**line.png**")
