"""The leak canary at the Dagster level: a feature built from the future fails the run.

The synthetic chain (market -> cleansed tables -> desk history -> labels -> features ->
training set) runs twice on a small market: as written it is green; with a canary feature that
reads the quote at the order's ``end_ts`` (the future) without declaring it, the blocking
``truncation_test`` check on ``features/synth`` fails and the training set is never built.
"""

import dagster as dg
import numpy as np
import pandas as pd
import pytest

import assets.learning
import models.features
from assets.cleansed import cleansed_table
from assets.execution import execution_assets
from assets.learning import synth_features, synth_training_set
from assets.sources import synthetic_market
from pipelines.definitions import _contract, _market
from pipelines.resources import ParquetLakeIOManager

_RUN_CONFIG = {"ops": {"synthetic_market": {"config": {"n_symbols": 3, "n_sessions": 8,
                                                       "seed": 1}},
                       "synth_desk_history": {"config": {"n_orders": 300, "seed": 3}}}}
_ASSETS = [synthetic_market,
           *(cleansed_table("synth", t, _market) for t in ("quotes", "trades")),
           *(cleansed_table("synth", t, _contract) for t in ("daily_bars", "membership")),
           *(a for a in execution_assets() if a.node_def.name in ("synth_desk_history",
                                                                   "synth_labels")),
           synth_features, synth_training_set]


def _run(tmp_path):
    return dg.materialize(
        _ASSETS, run_config=_RUN_CONFIG, raise_on_error=False,
        resources={"io_manager": ParquetLakeIOManager(base_path=str(tmp_path / "lake"))})


def _checks(result) -> dict[str, bool]:
    return {c.check_name: c.passed for c in result.get_asset_check_evaluations()
            if c.asset_key.to_user_string() == "features/synth"}


@pytest.fixture
def canary(monkeypatch):
    real = models.features.build_features

    def with_canary(orders, *, quotes, **kw):
        out = real(orders, quotes=quotes, **kw)
        # the mid at the order's end: a perfect predictor of the timing move, from the future
        q = quotes.sort_values("ts")[["ts", "symbol", "bid_px", "ask_px"]].astype(
            {"symbol": object, "ts": "datetime64[ns, UTC]"})
        o = orders[["order_id", "symbol", "end_ts"]].astype(
            {"symbol": object, "end_ts": "datetime64[ns, UTC]"}).sort_values("end_ts")
        m = pd.merge_asof(o, q, left_on="end_ts", right_on="ts", by="symbol")
        mid = ((m["bid_px"] + m["ask_px"]) / 2).to_numpy()
        out["leak_end_mid"] = pd.Series(mid, index=m["order_id"]).reindex(out["order_id"]) \
            .to_numpy()
        return out

    # planted in the feature code, wherever the graph calls it
    monkeypatch.setattr(models.features, "build_features", with_canary)
    monkeypatch.setattr(assets.learning, "build_features", with_canary)


def test_without_the_canary_the_run_is_green(tmp_path):
    result = _run(tmp_path)
    assert result.success
    assert _checks(result) == {"knowledge_before_decision": True, "truncation_test": True}
    ds = pd.read_parquet(tmp_path / "lake" / "training_set" / "synth.parquet")
    assert len(ds) == 300
    assert np.isfinite(ds["is_bps"]).all()


def test_the_canary_fails_the_run(tmp_path, canary):
    result = _run(tmp_path)
    assert not result.success
    assert _checks(result)["truncation_test"] is False
    # the blocking check stopped the graph: the training set was never written
    assert (tmp_path / "lake" / "features" / "synth.parquet").exists()
    assert not (tmp_path / "lake" / "training_set" / "synth.parquet").exists()
