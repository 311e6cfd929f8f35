"""Impact calibration refuses bad rows before fitting (issue 12, defects 5 and 6).

Contract under test: every input a model reads is a finite number in a plausible domain for its
unit, and what the model derives from it (participation, trade rate, inverse turnover, its
prediction and squared residual) is finite; otherwise the call fails with one ``ValueError`` line
that names the source, the row (0-based), the column and the rule, and counts the refused rows.
The CLI turns it into exit status 2 with no traceback.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bestex.cli import main
from models.impact_calibration import calibrate
from sources.desk import calibrate_file

N_ROWS = 60
Y_TRUE = 0.7
COLUMNS = ("is_bps", "qty", "adv", "sigma", "duration_days", "shares_outstanding")
READS = {"sqrt": ("is_bps", "qty", "adv", "sigma"),
         "athl": COLUMNS,
         "istar": ("is_bps", "qty", "adv", "sigma", "duration_days")}


def _sqrt_law_orders(n: int = N_ROWS, seed: int = 0) -> pd.DataFrame:
    """``n`` parent orders whose shortfall follows ``0.7 sigma sqrt(qty/adv)`` bps, noise 0.5 bps."""
    rng = np.random.default_rng(seed)
    adv = rng.uniform(2e5, 5e6, n)
    df = pd.DataFrame({
        "qty": adv * np.exp(rng.uniform(np.log(1e-3), np.log(0.2), n)),
        "adv": adv,
        "sigma": rng.uniform(0.01, 0.04, n),
        "duration_days": np.exp(rng.uniform(np.log(0.02), np.log(1.0), n)),
        "shares_outstanding": adv * np.exp(rng.uniform(np.log(30), np.log(1000), n)),
    })
    df["is_bps"] = Y_TRUE * df["sigma"] * np.sqrt(df["qty"] / df["adv"]) * 1e4 \
        + rng.normal(0.0, 0.5, n)
    return df


def _with(df: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    out = df.copy()
    if not isinstance(value, float):  # a float64 column refuses a str or a bool: hold objects
        out[column] = out[column].astype(object)
    out.at[row, column] = value
    return out


def _names_row_and_column(msg: str, row: int, column: str) -> bool:
    return f"'{column}'" in msg and re.search(rf"\brow {row}\b", msg) is not None


# ------------------------------------------------------------------ defect 5: KeyError 'y'
@pytest.mark.parametrize("model", ["sqrt", "athl", "istar"])
def test_defect5_huge_shortfall_is_refused_by_row_not_a_key_error(model):
    df = _with(_sqrt_law_orders(), 7, "is_bps", 1e308)
    with pytest.raises(ValueError, match=r"^input: 1 of 60 rows refused before fitting model "
                                         rf"'{model}'.*row 7, column 'is_bps': 1e\+308 violates "
                                         r"'is_bps <= 100000'"):
        calibrate(model, df)


@pytest.mark.parametrize("model", ["sqrt", "athl", "istar"])
def test_defect5_subnormal_sigma_is_refused_by_row(model):
    df = _with(_sqrt_law_orders(), 11, "sigma", 1e-320)
    with pytest.raises(ValueError, match=r"1 of 60 rows refused .*row 11, column 'sigma': "
                                         r"1e-320 violates 'sigma >= 1e-08'"):
        calibrate(model, df)


# --------------------------------------------- defect 6: silent nonsense fit / no row, no file
@pytest.mark.parametrize("model", ["sqrt", "athl", "istar"])
def test_defect6_huge_qty_is_refused_by_row_not_fitted(model):
    df = _with(_sqrt_law_orders(), 3, "qty", 1e308)
    with pytest.raises(ValueError, match=r"row 3, column 'qty': 1e\+308 violates "
                                         r"'qty <= 1e\+18'"):
        calibrate(model, df)


def test_participation_outside_its_domain_names_both_columns():
    # each size is plausible alone; together the order is 1e4 days of volume (adv in thousands?)
    df = _with(_sqrt_law_orders(), 5, "adv", 10.0)
    with pytest.raises(ValueError, match=r"row 5, columns 'qty', 'adv': qty/adv=[0-9.e+]+ "
                                         r"violates 'qty/adv <= 100'"):
        calibrate("sqrt", df)


def test_inverse_turnover_outside_its_domain_is_refused_for_athl_only():
    df = _sqrt_law_orders()
    df.loc[9, "shares_outstanding"] = df.loc[9, "adv"] * 1e-6  # millions, not shares
    with pytest.raises(ValueError, match=r"row 9, columns 'shares_outstanding', 'adv': "
                                         r"shares_outstanding/adv=1e-06 violates "
                                         r"'shares_outstanding/adv >= 0\.001'"):
        calibrate("athl", df)
    assert calibrate("sqrt", df).n == N_ROWS  # sqrt does not read shares_outstanding


def test_many_bad_rows_show_the_first_five_and_count_the_rest():
    df = _sqrt_law_orders()
    df.loc[[2, 4, 8, 16, 32, 40, 50, 59], "sigma"] = np.nan
    with pytest.raises(ValueError, match="8 of 60 rows") as err:
        calibrate("sqrt", df, source="orders.parquet")
    msg = str(err.value)
    assert msg.startswith("orders.parquet: 8 of 60 rows refused before fitting model 'sqrt'")
    assert "row 2, column 'sigma': nan violates 'finite'" in msg
    assert "row 32, column 'sigma'" in msg
    assert "row 40, column 'sigma'" not in msg
    assert msg.endswith("... and 3 more failures (rows [40, 50, 59])")
    assert "\n" not in msg


def test_every_failure_of_a_row_is_named():
    df = _with(_with(_sqrt_law_orders(), 4, "qty", -1.0), 4, "sigma", "abc")
    with pytest.raises(ValueError, match=r"1 of 60 rows refused .*row 4, column 'qty': -1\.0 "
                                         r"violates 'qty > 0'; row 4, column 'sigma': 'abc' "
                                         r"violates 'a number'"):
        calibrate("sqrt", df)


def test_a_boolean_column_is_refused_by_name():
    df = _sqrt_law_orders().assign(sigma=True)
    with pytest.raises(ValueError, match=r"^input: column 'sigma' holds booleans \(dtype bool\), "
                                         r"not numbers"):
        calibrate("sqrt", df)


def test_a_boolean_cell_is_not_a_number():
    df = _with(_sqrt_law_orders(), 6, "adv", True)  # pd.to_numeric would read it as 1.0
    with pytest.raises(ValueError, match=r"row 6, column 'adv': True violates 'a number' "
                                         r"\(a boolean\)"):
        calibrate("sqrt", df)


def test_an_empty_table_says_so():
    with pytest.raises(ValueError, match=r"^orders\.csv: no rows to fit: model 'sqrt' fits 1 "
                                         r"parameter\(s\) and needs at least 10 rows"):
        calibrate("sqrt", _sqrt_law_orders().head(0), source="orders.csv")


def test_rows_are_positions_and_labels_are_shown_when_they_differ():
    df = _with(_sqrt_law_orders(), 3, "qty", np.inf).set_index(np.arange(100, 100 + N_ROWS))
    with pytest.raises(ValueError, match=r"row 3 \(index 103\), column 'qty': inf violates "
                                         r"'finite'"):
        calibrate("sqrt", df)


def test_a_row_that_overflows_the_model_is_refused():
    # every cell and ratio is plausible, but a fixed alpha=200 raises qty/adv=50 to 1e340 (inf)
    df = _sqrt_law_orders()
    df.loc[5, "qty"] = 50 * df.loc[5, "adv"]
    with pytest.raises(ValueError, match=r"1 of 60 rows refused .*: row 5, columns 'is_bps', "
                                         r"'qty', 'adv', 'sigma', 'duration_days', "
                                         r"'shares_outstanding': overflows model 'athl'"):
        calibrate("athl", df, fixed={"alpha": 200.0})
    assert math.isfinite(calibrate("athl", df, fixed={"alpha": 2.0}).rmse_bps)


# ----------------------------------------------------------------------------- the CLI
def _write(df: pd.DataFrame, path: Path) -> Path:
    df.to_parquet(path) if path.suffix == ".parquet" else df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(("model", "column", "row", "value", "rule"), [
    ("sqrt", "is_bps", 7, 1e308, "is_bps <= 100000"),       # defect 5
    ("sqrt", "sigma", 11, 1e-320, "sigma >= 1e-08"),       # defect 5
    ("sqrt", "qty", 3, 1e308, "qty <= 1e+18"),             # defect 6
    ("athl", "qty", 3, 1e308, "qty <= 1e+18"),             # defect 6, ATHL
    ("istar", "duration_days", 0, -1.0, "duration_days > 0"),
])
def test_cli_exit_2_names_file_row_column_and_rule(tmp_path, capsys, suffix, model, column, row,
                                                   value, rule):
    path = _write(_with(_sqrt_law_orders(), row, column, value), tmp_path / f"orders{suffix}")
    assert main(["calibrate-impact", str(path), "--model", model]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = f"row {row}" + (f" (line {row + 2})" if suffix == ".csv" else "")
    assert err.startswith(f"bestex: error: {path}: 1 of 60 rows refused before fitting model "
                          f"'{model}'")
    assert f"{line}, column '{column}'" in err
    assert f"violates '{rule}'" in err
    assert "Traceback" not in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_refuses_an_empty_file(tmp_path, capsys, suffix):
    path = _write(_sqrt_law_orders().head(0), tmp_path / f"orders{suffix}")
    assert main(["calibrate-impact", str(path)]) == 2
    assert f"{path}: no rows to fit" in capsys.readouterr().err


def test_cli_refuses_a_boolean_parquet_column(tmp_path, capsys):
    path = _write(_sqrt_law_orders().assign(adv=True), tmp_path / "orders.parquet")
    assert main(["calibrate-impact", str(path)]) == 2
    assert f"{path}: column 'adv' holds booleans" in capsys.readouterr().err


def test_calibrate_file_names_the_path(tmp_path):
    path = _write(_with(_sqrt_law_orders(), 3, "qty", 1e308), tmp_path / "orders.csv")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: 1 of 60 rows refused .*"
                                         r"row 3 \(line 5\), column 'qty'"):
        calibrate_file(path, "athl")


# ------------------------------------------------------------------- one corrupted cell
BAD = (math.nan, math.inf, -math.inf, 1e308, -1e308, 1e-320, 0.0, -1.0, "abc", True)


def _must_refuse(model: str, column: str, value: object) -> bool:
    """Our own oracle: which corruptions are invalid for sure (the rest must fit)."""
    if column not in READS[model]:
        return False
    if isinstance(value, str | bool) or not math.isfinite(value) or abs(value) >= 1e308:
        return True
    return column != "is_bps" and value <= 1e-300  # a size, sigma or duration: positive, normal


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=st.sampled_from(["sqrt", "athl", "istar"]), column=st.sampled_from(COLUMNS),
       row=st.integers(0, N_ROWS - 1), value=st.sampled_from(BAD), via_csv=st.booleans())
def test_one_corrupted_cell_is_refused_by_row_and_column_or_fits(model, column, row, value,
                                                                 via_csv):
    df = _with(_sqrt_law_orders(), row, column, value)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if via_csv:
                res = calibrate_file(_write(df, Path(tmp) / "orders.csv"), model)  # type: ignore[arg-type]
            else:
                res = calibrate(model, df)  # type: ignore[arg-type]
        except ValueError as exc:
            msg = str(exc)
            assert _must_refuse(model, column, value), f"{column}={value!r} refused: {msg}"
            assert _names_row_and_column(msg, row, column), msg
            assert "1 of 60 rows refused" in msg, msg
            assert "\n" not in msg
            return
    assert not _must_refuse(model, column, value), f"{column}={value!r} was fitted: {res}"
    assert res.n == N_ROWS
    assert all(math.isfinite(v) for v in (*res.params.values(), *res.std_errors.values(),
                                          res.rmse_bps, res.r2))
    if model == "sqrt" and column != "is_bps":  # the cell was not read: the law is recovered
        assert res.params["y"] == pytest.approx(Y_TRUE, rel=0.05)
