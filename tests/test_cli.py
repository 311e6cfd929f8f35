"""The ``bestex`` CLI: exit 0 on good input, 2 with a report naming file, row and rule on bad input."""

import json

import pandas as pd
import pytest

from bestex.cli import main

GOOD = """ts,available_at,symbol,bid_px,bid_sz,ask_px,ask_sz
2012-06-21T13:30:00Z,2012-06-21T13:30:00.001Z,AMZN,220.00,100,220.10,200
2012-06-21T13:30:01Z,2012-06-21T13:30:01.001Z,AMZN,220.01,100,220.11,200
"""

BAD = GOOD + """2012-06-21T13:30:02Z,2012-06-21T13:30:02.001Z,AMZN,221.00,100,220.10,200
2012-06-21T13:30:03Z,2012-06-21T13:30:03.001Z,AMZN,220.00,100,abc,200
"""


def test_validate_good_file_exits_0(tmp_path, capsys):
    f = tmp_path / "quotes.csv"
    f.write_text(GOOD)
    assert main(["validate", "quotes", str(f)]) == 0
    assert "2 rows meet the quotes contract" in capsys.readouterr().out


def test_validate_bad_file_names_each_row_and_rule(tmp_path, capsys):
    f = tmp_path / "quotes.csv"
    f.write_text(BAD)
    assert main(["validate", "quotes", str(f)]) == 2
    out, err = capsys.readouterr()
    assert f"{f} row 2 (line 4) (symbol=AMZN): crossed_quote: bid_px=221.0 > ask_px=220.1" in out
    assert f"{f} row 3 (line 5) (symbol=AMZN): type: ask_px='abc' is not a number" in out
    assert ("2 of 4 rows would be quarantined by the contract and the market rules of ingest "
            "(crossed_quote 1, type 1); 2 rows pass") in err


def test_validate_missing_columns_is_one_clear_line(tmp_path, capsys):
    f = tmp_path / "quotes.csv"
    f.write_text("ts,symbol,bid_px\n2012-06-21T13:30:00Z,AMZN,1.0\n")
    assert main(["validate", "quotes", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "missing columns ['available_at', 'bid_sz', 'ask_px', 'ask_sz']" in err


def test_validate_unreadable_file_is_one_clear_line(tmp_path, capsys):
    f = tmp_path / "quotes.parquet"
    f.write_bytes(b"not a parquet file at all")
    assert main(["validate", "quotes", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bestex: error: {f}: cannot read Parquet")
    assert err.count("\n") == 0


def test_validate_unknown_table(tmp_path, capsys):
    f = tmp_path / "x.csv"
    f.write_text(GOOD)
    assert main(["validate", "orders", str(f)]) == 2
    assert "unknown table 'orders'" in capsys.readouterr().err


@pytest.mark.realdata
def test_ingest_lobster_writes_tables_and_a_reconciling_summary(tmp_path, capsys):
    from bestex.settings import require_data_dir

    zip_path = require_data_dir() / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip"
    out = tmp_path / "out"
    assert main(["ingest", "lobster", str(zip_path), "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    tables = report["days"][0]["tables"]
    assert tables["quotes"]["input"] == 57_515
    assert tables["trades"]["input"] == 11_419
    for t in tables.values():
        assert t["input"] == t["clean"] + t["quarantined"]
    clean = pd.read_parquet(out / "AMZN_2012-06-21_1_quotes.parquet")
    assert (clean["bid_px"] <= clean["ask_px"]).all()
    assert (out / "AMZN_2012-06-21_1_quotes_quarantine.parquet").exists()


def test_ingest_missing_path_exits_2(tmp_path, capsys):
    assert main(["ingest", "lobster", str(tmp_path / "nope.zip"), "--out", str(tmp_path)]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_synth_writes_the_market_and_truth(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", "--symbols", "3", "--days", "3", "--seed", "11", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tables"]["quotes"] > 0
    assert (out / "ground_truth.json").exists()
    assert pd.read_parquet(out / "daily_bars.parquet")["symbol"].nunique() <= 3


def _orders(n, y=0.7, seed=5):
    import numpy as np

    rng = np.random.default_rng(seed)
    adv = rng.uniform(1e5, 1e6, n)
    qty = adv * np.exp(rng.uniform(np.log(1e-3), np.log(0.2), n))
    sigma = rng.uniform(0.01, 0.03, n)
    is_bps = y * sigma * np.sqrt(qty / adv) * 1e4 + rng.normal(0, 1.0, n)
    return pd.DataFrame({"is_bps": is_bps, "qty": qty, "adv": adv, "sigma": sigma,
                         "duration_days": rng.uniform(0.05, 1, n)})


def test_calibrate_impact_prints_parameters_with_standard_errors(tmp_path, capsys):
    f = tmp_path / "orders.csv"
    _orders(2000).to_csv(f, index=False)
    assert main(["calibrate-impact", str(f), "--model", "sqrt"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert abs(fit["params"]["y"] - 0.7) < 0.07
    assert 0 < fit["std_errors"]["y"] < 0.05


def test_calibrate_impact_refuses_missing_columns_and_too_few_rows(tmp_path, capsys):
    f = tmp_path / "orders.csv"
    _orders(50).drop(columns=["sigma"]).to_csv(f, index=False)
    assert main(["calibrate-impact", str(f), "--model", "sqrt"]) == 2
    assert "sigma" in capsys.readouterr().err
    g = tmp_path / "few.parquet"
    _orders(5).to_parquet(g)
    assert main(["calibrate-impact", str(g), "--model", "sqrt"]) == 2
    assert "too few rows" in capsys.readouterr().err
