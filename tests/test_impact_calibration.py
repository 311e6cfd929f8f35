"""Impact calibration: known parameters are recovered, standard errors match the sampling spread,
bad input fails with a message that names the column, the rows and the file (more bad input, the
overflow defects of issue 12 and a property test: ``test_bad_input_calibration.py``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.impact import ATHLImpact, ImpactModel, IStarImpact, SquareRootImpact
from models.impact_calibration import CalibrationResult, calibrate
from sources.desk import calibrate_file


def _orders(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Parent orders: 0.1%-20% ADV (log-uniform), 0.02-1 day, 1-4% daily vol, 30-1000x turnover."""
    adv = rng.uniform(2e5, 5e6, n)
    return pd.DataFrame({
        "qty": adv * np.exp(rng.uniform(np.log(1e-3), np.log(0.2), n)),
        "adv": adv,
        "sigma": rng.uniform(0.01, 0.04, n),
        "duration_days": np.exp(rng.uniform(np.log(0.02), np.log(1.0), n)),
        "shares_outstanding": adv * np.exp(rng.uniform(np.log(30), np.log(1000), n)),
        "symbol": rng.choice(["AAA", "BBB", "CCC"], n),
    })


def _desk(model: ImpactModel, rng: np.random.Generator, n: int, noise_bps: float) -> pd.DataFrame:
    df = _orders(rng, n)
    mu = model.expected_cost_bps(qty=df["qty"], adv=df["adv"], sigma_daily=df["sigma"],
                                 duration_days=df["duration_days"],
                                 shares_outstanding=df["shares_outstanding"])
    return df.assign(is_bps=mu + rng.normal(0.0, noise_bps, n))


CASES = [
    ("sqrt", SquareRootImpact(y=0.65), 10.0),
    ("sqrt", SquareRootImpact(y=1.2), 10.0),
    ("athl", ATHLImpact(), 5.0),
    ("athl", ATHLImpact(gamma=0.5, eta=0.09, beta=0.55), 5.0),
    ("athl", ATHLImpact(gamma=0.2, eta=0.25, beta=0.7), 5.0),
    ("istar", IStarImpact(), 5.0),
    ("istar", IStarImpact(a1=450.0, a2=0.7, a3=0.6, a4=0.4, b1=0.95), 2.0),
]


@pytest.mark.parametrize(("name", "truth", "noise_bps"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_recovers_known_parameters_within_10_percent(name, truth, noise_bps):
    df = _desk(truth, np.random.default_rng(11), 4000, noise_bps)
    res = calibrate(name, df)
    for p, se in res.std_errors.items():
        want = getattr(truth, p)
        assert res.params[p] == pytest.approx(want, rel=0.10), f"{p}: {res.params[p]} vs {want}"
        assert 0 < se < 0.1 * want, f"{p}: standard error {se} missing or too large"
    assert res.n == 4000
    assert res.r2 > 0.5
    assert res.rmse_bps == pytest.approx(noise_bps, rel=0.1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "truth", "n", "robust"),
    [("sqrt", SquareRootImpact(y=0.65), 1000, False),
     ("athl", ATHLImpact(gamma=0.5, eta=0.09, beta=0.55), 2000, False),
     ("athl", ATHLImpact(gamma=0.5, eta=0.09, beta=0.55), 2000, True),
     ("istar", IStarImpact(), 1500, False)],
)
def test_standard_errors_match_the_spread_over_repeated_samples(name, truth, n, robust):
    rng = np.random.default_rng(5)
    fits = [calibrate(name, _desk(truth, rng, n, 5.0), robust=robust) for _ in range(50)]
    est = pd.DataFrame([f.params for f in fits])[list(fits[0].std_errors)]
    mean_se = pd.DataFrame([f.std_errors for f in fits]).mean()
    ratio = est.std() / mean_se
    assert ratio.between(1 / 1.5, 1.5).all(), f"empirical sd / reported SE:\n{ratio}"


def test_robust_errors_under_heteroscedastic_noise():
    # Shortfall noise grows with sigma * sqrt(duration) (timing risk); HC1 errors track it.
    truth, rng = ATHLImpact(gamma=0.5, eta=0.09, beta=0.55), np.random.default_rng(2)
    est, se = [], []
    for _ in range(30):
        df = _desk(truth, rng, 2000, 0.0)
        df["is_bps"] += rng.normal(0, 1, len(df)) * df["sigma"] * np.sqrt(df["duration_days"]) * 1e3
        r = calibrate("athl", df, robust=True)
        est.append(r.params["gamma"])
        se.append(r.std_errors["gamma"])
    assert 1 / 1.5 < np.std(est, ddof=1) / np.mean(se) < 1.5


def test_athl_delta_can_be_fitted():
    truth = ATHLImpact(gamma=0.3, eta=0.12, beta=0.6, delta=0.4)
    res = calibrate("athl", _desk(truth, np.random.default_rng(3), 4000, 3.0),
                    fit=("gamma", "eta", "beta", "delta"))
    assert res.params["delta"] == pytest.approx(0.4, rel=0.1)
    assert res.fixed == {"alpha": 1.0}
    assert set(res.std_errors) == {"gamma", "eta", "beta", "delta"}


def test_fixed_parameters_are_held():
    res = calibrate("athl", _desk(ATHLImpact(), np.random.default_rng(4), 1000, 5.0),
                    fixed={"delta": 0.3})
    assert res.params["delta"] == 0.3
    assert res.fixed == {"delta": 0.3, "alpha": 1.0}


def test_per_symbol_and_pooled():
    rng = np.random.default_rng(6)
    ys = {"AAA": 0.5, "BBB": 0.8, "CCC": 1.1}
    parts = [_desk(SquareRootImpact(y=y), rng, 600, 5.0).assign(symbol=s) for s, y in ys.items()]
    res = calibrate("sqrt", pd.concat(parts, ignore_index=True), by="symbol")
    assert res.by == "symbol"
    assert sorted(res.groups) == ["AAA", "BBB", "CCC"]
    for s, y in ys.items():
        assert res.groups[s].params["y"] == pytest.approx(y, rel=0.1)
        assert res.groups[s].n == 600
    assert res.n == 1800
    assert 0.5 < res.params["y"] < 1.1


def test_istar_uses_a_pov_column_when_present():
    truth, rng = IStarImpact(), np.random.default_rng(7)
    df = _orders(rng, 1000).assign(pov=lambda d: rng.uniform(0.02, 0.5, len(d)))
    df["is_bps"] = truth.expected_cost_bps(qty=df["qty"], adv=df["adv"], sigma_daily=df["sigma"],
                                           duration_days=1.0, pov=df["pov"])
    res = calibrate("istar", df.drop(columns="duration_days"))
    assert res.params["a4"] == pytest.approx(0.5, rel=1e-3)


def test_result_json_and_fitted_model():
    df = _desk(SquareRootImpact(y=0.65), np.random.default_rng(8), 200, 1.0)
    res = calibrate("sqrt", df, by="symbol")
    doc = json.loads(res.to_json())
    assert doc["model"] == "sqrt"
    assert set(doc["params"]) == {"y", "exponent"}
    assert set(doc["std_errors"]) == {"y"}
    assert set(doc["groups"]) == {"AAA", "BBB", "CCC"}
    assert CalibrationResult.model_validate_json(res.to_json()) == res
    fitted = res.impact_model()
    assert isinstance(fitted, SquareRootImpact)
    assert float(fitted.expected_cost_bps(qty=1e4, adv=1e6, sigma_daily=0.02, duration_days=1)) \
        == pytest.approx(0.65 * 20, rel=0.02)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_calibrate_file_reads_parquet_and_csv(tmp_path, suffix):
    df = _desk(ATHLImpact(), np.random.default_rng(9), 300, 2.0)
    path = tmp_path / f"orders{suffix}"
    df.to_parquet(path) if suffix == ".parquet" else df.to_csv(path, index=False)
    res = calibrate_file(path, "athl")
    assert res.params == pytest.approx(calibrate("athl", df).params, rel=1e-6)


# ------------------------------------------------------------------------ errors
@pytest.fixture
def desk() -> pd.DataFrame:
    return _desk(ATHLImpact(), np.random.default_rng(10), 40, 5.0)


def test_missing_columns_are_named_with_the_file(tmp_path, desk):
    path = tmp_path / "orders.csv"
    desk.drop(columns=["shares_outstanding", "is_bps"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"orders\.csv: missing column\(s\) 'is_bps', "
                                         r"'shares_outstanding' needed by model 'athl'"):
        calibrate_file(path, "athl")


def test_too_few_rows_says_how_many_are_needed(desk):
    with pytest.raises(ValueError, match=r"too few rows: 20, but model 'athl' fits 3 parameter\(s\) "
                                         r"and needs at least 30"):
        calibrate("athl", desk.head(20))


def test_too_few_rows_in_a_group(desk):
    with pytest.raises(ValueError, match=r"too few rows in group symbol='[A-C]{3}': \d+, .* at least "
                                         r"30; drop the group or calibrate pooled"):
        calibrate("athl", desk, by="symbol")


def test_non_finite_values_name_the_rows(desk):
    desk.loc[[3, 17], "sigma"] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"^input: 2 of 40 rows refused before fitting model "
                                         r"'athl' \(rows 0-based; fix or drop them\): row 3, "
                                         r"column 'sigma': nan violates 'finite' \(missing or "
                                         r"NaN\); row 17, column 'sigma': inf violates 'finite'$"):
        calibrate("athl", desk)


def test_non_numeric_csv_cells_name_the_rows(tmp_path, desk):
    path = tmp_path / "orders.csv"
    desk.astype({"qty": str}).assign(qty=lambda d: d["qty"].where(d.index != 5, "12k")).to_csv(
        path, index=False)
    with pytest.raises(ValueError, match=r"orders\.csv: 1 of 40 rows refused .* row 5 \(line 7\), "
                                         r"column 'qty': '12k' violates 'a number'$"):
        calibrate_file(path, "athl")


def test_non_positive_values_name_the_rows(desk):
    desk.loc[7, "adv"] = 0.0
    with pytest.raises(ValueError, match=r"row 7, column 'adv': 0\.0 violates 'adv > 0'$"):
        calibrate("athl", desk)


def test_pov_above_one_is_rejected(desk):
    with pytest.raises(ValueError, match=r"row 0, column 'pov': 1\.5 violates 'pov <= 1' "
                                         r"\(participation, decimal\)$"):
        calibrate("istar", desk.assign(pov=np.r_[1.5, np.full(39, 0.1)]), fit=("a1",))


def test_missing_group_keys_name_the_rows(desk):
    desk.loc[[2, 9], "symbol"] = None
    with pytest.raises(ValueError, match=r"column 'symbol' \(the grouping\) is missing at rows "
                                         r"\(0-based\) \[2, 9\]"):
        calibrate("sqrt", desk, by="symbol")


def test_unknown_model_and_parameter(desk):
    with pytest.raises(ValueError, match="unknown impact model 'linear'; use one of sqrt, athl, istar"):
        calibrate("linear", desk)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"model 'sqrt' has parameters y, exponent; got fit=\['Y'\]"):
        calibrate("sqrt", desk, fit=("Y",))
