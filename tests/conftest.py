"""Shared fixtures: every test runs with a temporary BESTEX_HOME."""

import pytest


@pytest.fixture(autouse=True)
def _bestex_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("bestex_home")
    monkeypatch.setenv("BESTEX_HOME", str(home))
    monkeypatch.setenv("MLFLOW_UV_AUTO_DETECT", "false")
    return home


def serving_rows(n: int = 200, seed: int = 0):
    """Raw rows of order + market state in the serving schema (plausible, NYSE session times)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    day = pd.Timestamp("2025-01-13 14:30", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 5, n) * 86400, unit="s")
    start = day + pd.to_timedelta(rng.uniform(10, 300, n), unit="min")
    adv = rng.uniform(2e5, 3e6, n)
    return pd.DataFrame({
        "order_id": [f"o{i}" for i in range(n)],
        "symbol": rng.choice(["AAA", "BBB", "CCC"], n),
        "side": rng.choice([-1, 1], n),
        "qty": np.round(adv * rng.uniform(0.001, 0.05, n)),
        "decision_ts": start, "end_ts": start + pd.to_timedelta(rng.uniform(5, 60, n), "min"),
        "arrival_mid": rng.uniform(20, 300, n), "arrival_spread_bps": rng.uniform(1, 20, n),
        "adv": adv, "sigma_daily": rng.uniform(0.01, 0.04, n),
        "l1_imbalance": rng.uniform(-1, 1, n), "quote_age_s": rng.uniform(0, 5, n),
        "rv_intraday": rng.uniform(0.01, 0.05, n), "rv_prev_session": rng.uniform(0.01, 0.04, n),
        "rv_open": rng.uniform(0.01, 0.05, n), "sigma_seen": rng.uniform(0.01, 0.04, n),
        "trade_intensity": rng.uniform(1, 30, n), "trade_imbalance": rng.uniform(-1, 1, n),
        "expected_volume": adv * rng.uniform(0.02, 0.2, n), "vol_ratio": rng.uniform(0.5, 3, n),
        "regime_known": rng.choice(["calm", "volatile", "crisis"], n),
        "strategy": rng.choice(["twap", "vwap", "pov"], n),
        "plan_n_children": rng.integers(5, 30, n).astype(float),
        "plan_passive_share": rng.uniform(0, 0.5, n), "plan_front_load": rng.uniform(0.3, 0.6, n),
        "plan_timing_var_days": rng.uniform(0.005, 0.05, n),
        "plan_rate_shape": rng.uniform(0.1, 1.0, n),
        "sqrt_pred_bps": rng.uniform(2, 30, n), "athl_pred_bps": rng.uniform(2, 30, n),
    })


def tiny_bundle(rows):
    """A real CostModelBundle (small boosters) trained on the features of ``rows``."""
    import numpy as np
    import xgboost as xgb

    from models.cost_bundle import CostModelBundle
    from models.cost_training import model_features
    from models.features import features_from_state

    feats = features_from_state(rows)
    names = model_features(feats)
    y = feats["spread_cost_bps"].fillna(0) + 0.5 * feats["sqrt_pred_bps"]
    d = xgb.DMatrix(feats[names].to_numpy(np.float32), label=y.to_numpy(),
                    feature_names=names)
    mean = xgb.train({"max_depth": 3, "seed": 0}, d, 20)
    quant = xgb.train({"objective": "reg:quantileerror", "quantile_alpha": [0.1, 0.5, 0.9],
                       "max_depth": 2, "seed": 0}, d, 10)
    return CostModelBundle(mean, quant, names, 0.3, 5.0, quantile_scaled=False,
                           domain=CostModelBundle.fit_domain(feats[names]),
                           risk_fill_bps=10.0)


def register_tiny_champion(home, experiment: str):
    """Log, register and promote a :func:`tiny_bundle` as the champion of ``home``'s registry
    (``BESTEX_HOME`` set for the call only). Returns ``(bundle, model_uri, training_rows)``."""
    import os

    from pipelines.registry import default_registry

    before = os.environ.get("BESTEX_HOME")
    os.environ["BESTEX_HOME"] = str(home)
    try:
        train = serving_rows(300, seed=1)
        bundle = tiny_bundle(train)
        reg = default_registry()
        with reg.start_run(experiment=experiment, run_name="tiny") as run:
            uri = run.log_cost_model(bundle, example_rows=train.head(5))
        v = reg.register(run.run_id, reg.model_artifact, tags={}, gates_passed=True,
                         gate_failures=[], model_uri=uri)
        reg.promote(v.version, reason=f"{experiment}: tiny model")
    finally:
        if before is None:
            os.environ.pop("BESTEX_HOME", None)
        else:
            os.environ["BESTEX_HOME"] = before
    return bundle, uri, train
