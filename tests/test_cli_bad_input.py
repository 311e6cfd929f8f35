"""Issue 12: every way in refuses bad input — the reproductions of the CLI defects, each a test
that failed before its fix (timestamps, validate = ingest rules, extremes, ``--out``, blank
reasons, empty landing folders, the daily-bars command)."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from bestex.cli import MANIFEST, main

QUOTES_HEADER = "ts,available_at,symbol,bid_px,bid_sz,ask_px,ask_sz\n"
ORDERS_HEADER = "order_id,symbol,side,qty,decision_ts,end_ts,strategy\n"


def _quotes(n: int = 5, t0: str = "2024-04-11T14:00:00Z") -> str:
    start = pd.Timestamp(t0)
    return QUOTES_HEADER + "".join(
        f"{(start + pd.Timedelta(seconds=i)).isoformat()},"
        f"{(start + pd.Timedelta(seconds=i, milliseconds=1)).isoformat()},"
        f"AMZN,{100 + i * 0.01:.2f},100,{100.05 + i * 0.01:.2f},200\n" for i in range(n))


def user_visible_warnings_fail() -> None:
    """Every warning a user of the command line would see becomes an error: all of them but
    deprecation warnings, which Python shows only for ``__main__`` (its default filters)."""
    warnings.simplefilter("error")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    with warnings.catch_warnings():
        user_visible_warnings_fail()
        rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


# --------------------------------------------------------------------------- defect 3: timestamps
def test_month_first_text_is_refused_not_guessed(tmp_path, capsys):
    f = tmp_path / "parent_orders.csv"
    f.write_text(ORDERS_HEADER + "O1,AMZN,1,100,04/11/2024 14:01,2024-04-11T15:00:00Z,twap\n"
                 "O2,AMZN,1,100,2024-04-11T14:01:00Z,2024-04-11T15:00:00Z,twap\n")
    rc, out, err = _run(["validate", "parent_orders", str(f)], capsys)
    assert rc == 2
    assert (f"{f} row 0 (line 2) (order_id=O1): type: decision_ts must be an ISO 8601 timestamp "
            "(e.g. 2024-04-11T14:01:00Z) (got '04/11/2024 14:01')") in out
    assert "1 of 2 rows would be quarantined" in err


def test_parquet_epoch_seconds_need_a_declared_unit(tmp_path, capsys):
    t = pd.Timestamp("2024-04-11T14:01:00Z")
    f = tmp_path / "parent_orders.parquet"
    pd.DataFrame({"order_id": ["O1"], "symbol": ["AMZN"], "side": [1], "qty": [100.0],
                  "decision_ts": [t.value // 10**9], "end_ts": [t.value // 10**9 + 3600],
                  "strategy": ["twap"]}).to_parquet(f)
    rc, out, _ = _run(["validate", "parent_orders", str(f)], capsys)
    assert rc == 2
    assert "decision_ts is a number: an epoch needs its unit declared" in out
    rc, out, _ = _run(["validate", "parent_orders", str(f), "--epoch-unit", "s"], capsys)
    assert rc == 0
    assert "1 rows meet the parent_orders contract" in out
    # and the same epochs read as nanoseconds would be 1970: refused as implausible
    rc, out, _ = _run(["validate", "parent_orders", str(f), "--epoch-unit", "ns"], capsys)
    assert rc == 2
    assert "decision_ts must lie within 1990-01-01 .." in out


def test_a_bool_size_is_not_a_number(tmp_path, capsys):
    f = tmp_path / "quotes.parquet"
    raw = pd.read_csv(pd.io.common.StringIO(_quotes(3)), dtype=str)
    raw["bid_sz"] = [True, True, True]
    raw.to_parquet(f)
    rc, out, _ = _run(["validate", "quotes", str(f), "--calendar", "none"], capsys)
    assert rc == 2
    assert out.count("type: bid_sz=True is not a number") == 3


def test_naive_timestamps_are_utc_and_counted(tmp_path, capsys):
    f = tmp_path / "quotes.csv"
    f.write_text(_quotes(4).replace("Z,", ",").replace("+00:00,", ","))
    rc, out, _ = _run(["validate", "quotes", str(f)], capsys)
    assert rc == 0
    assert "naive timestamps taken as UTC: ts 4" in out
    out_dir = tmp_path / "out"
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "quotes.csv").write_text(f.read_text())
    rc, out, _ = _run(["ingest", "landing", str(landing), "--out", str(out_dir)], capsys)
    assert rc == 0
    assert json.loads(out)["tables"]["quotes"]["naive_timestamps_taken_as_utc"]["ts"] == 4


# --------------------------------------------------------------------------- defect 9: validate = ingest
def test_validate_applies_the_rules_ingest_applies(tmp_path, capsys):
    """validate passed files that ingest then quarantined (duplicates, out-of-order rows)."""
    body = _quotes(4)
    lines = body.splitlines(keepends=True)
    f = tmp_path / "quotes.csv"
    f.write_text("".join([*lines, lines[2], lines[1]]))  # a repeat, and a step back in time
    rc, out, _err = _run(["validate", "quotes", str(f)], capsys)
    assert rc == 2
    assert f"{f} row 4 (line 6) (symbol=AMZN): duplicate: repeats row 1" in out
    assert f"{f} row 5 (line 7) (symbol=AMZN): duplicate: repeats row 0" in out
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "quotes.csv").write_text(f.read_text())
    rc, out, _ = _run(["ingest", "landing", str(landing), "--out", str(tmp_path / "o")], capsys)
    assert json.loads(out)["tables"]["quotes"]["quarantined"] == 2  # the same two rows


# --------------------------------------------------------------------------- defect 10: lines
def test_validate_reports_the_file_line_after_blank_lines(tmp_path, capsys):
    f = tmp_path / "parent_orders.csv"
    f.write_text(ORDERS_HEADER + "O1,AMZN,1,100,2024-04-11T14:00:00Z,2024-04-11T15:00:00Z,twap\n"
                 "\n\n" + "O2,AMZN,1,-5,2024-04-11T14:00:00Z,2024-04-11T15:00:00Z,twap\n")
    rc, out, _ = _run(["validate", "parent_orders", str(f)], capsys)
    assert rc == 2
    assert f"{f} row 1 (line 5) (order_id=O2)" in out


# --------------------------------------------------------------------------- defect 11: extremes
def test_a_price_of_1e308_never_reaches_the_clean_table(tmp_path, capsys):
    landing = tmp_path / "landing"
    landing.mkdir()
    body = _quotes(8).splitlines(keepends=True)
    cells = body[3].split(",")
    cells[5] = "1e308"  # ask_px
    body[3] = ",".join(cells)
    (landing / "quotes.csv").write_text("".join(body))
    out_dir = tmp_path / "out"
    rc, out, _ = _run(["ingest", "landing", str(landing), "--out", str(out_dir)], capsys)
    assert rc == 0
    summary = json.loads(out)["tables"]["quotes"]
    assert summary["by_rule"] == {"extreme_value": 1}
    clean = pd.read_parquet(out_dir / "quotes.parquet")
    assert len(clean) == 7
    assert clean["ask_px"].max() < 1e9


# --------------------------------------------------------------------------- defect 12: --out
def test_out_is_replaced_whole_with_a_manifest(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "quotes.csv").write_text(_quotes(3))
    (a / "parent_orders.csv").write_text(
        ORDERS_HEADER + "O1,AMZN,1,100,2024-04-11T14:00:00Z,2024-04-11T15:00:00Z,twap\n")
    (b / "quotes.csv").write_text(_quotes(2))
    out = tmp_path / "out"
    assert _run(["ingest", "landing", str(a), "--out", str(out)], capsys)[0] == 0
    assert (out / "parent_orders.parquet").exists()
    assert _run(["ingest", "landing", str(b), "--out", str(out)], capsys)[0] == 0
    assert not (out / "parent_orders.parquet").exists()  # the earlier run's table is gone
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest["files"]) == {p.name for p in out.iterdir()} - {MANIFEST}
    assert manifest["report"]["input"] == str(b)
    assert not list(tmp_path.glob(".out.*"))  # no temporary folder left behind


def test_out_that_is_not_ours_is_refused(tmp_path, capsys):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "quotes.csv").write_text(_quotes(3))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("precious")
    rc, _, err = _run(["ingest", "landing", str(landing), "--out", str(out)], capsys)
    assert rc == 2
    assert "did not write" in err
    assert (out / "thesis.docx").read_text() == "precious"


def test_a_failed_ingest_leaves_the_earlier_output_untouched(tmp_path, capsys):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "quotes.csv").write_text(_quotes(3))
    out = tmp_path / "out"
    assert _run(["ingest", "landing", str(landing), "--out", str(out)], capsys)[0] == 0
    before = sorted(p.name for p in out.iterdir())
    (landing / "quotes.csv").write_text("ts,symbol\n1,2\n")  # missing columns
    rc, _, err = _run(["ingest", "landing", str(landing), "--out", str(out)], capsys)
    assert rc == 2
    assert "missing columns" in err
    assert sorted(p.name for p in out.iterdir()) == before


# --------------------------------------------------------------------------- defect 13
def test_empty_landing_folder_is_bad_input(tmp_path, capsys):
    rc, _, err = _run(["ingest", "landing", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2
    assert "holds no table files" in err


@pytest.mark.parametrize("argv", [
    ["promote", "1", "--reason", "   "],
    ["promote", "1", "--reason", "ok", "--override", " "],
    ["rollback", "--reason", ""],
])
def test_a_blank_reason_is_bad_input(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BESTEX_HOME", str(tmp_path))
    rc, _, err = _run(argv, capsys)
    assert rc == 2
    assert "is blank" in err


# --------------------------------------------------------------------------- defect 1
@pytest.mark.realdata
def test_ingest_daily_bars_cli_on_the_shipped_tarball(tmp_path, capsys):
    from bestex.settings import require_data_dir

    tar = require_data_dir() / "daily_bars" / "teddykoker_survivorship_free_sp500_daily_csv.tar.xz"
    rc, out, _ = _run(["ingest", "daily-bars", str(tar), "--out", str(tmp_path / "o")], capsys)
    assert rc == 0
    t = json.loads(out)["tables"]["daily_bars"]
    assert (t["input"], t["clean"], t["quarantined"]) == (619_626, 619_583, 43)
    assert pd.read_parquet(tmp_path / "o" / "daily_bars.parquet").shape[0] == 619_583


def test_every_documented_error_of_the_commands_exits_2(tmp_path, monkeypatch, capsys):
    """One line per command: the errors the help text documents are exit status 2."""
    monkeypatch.setenv("BESTEX_HOME", str(tmp_path / "home"))
    f = tmp_path / "x.txt"
    f.write_text("a")
    cases = [
        ["validate", "quotes", str(tmp_path / "missing.csv")],
        ["validate", "nope", str(f)],
        ["validate", "quotes", str(f)],
        ["ingest", "landing", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
        ["ingest", "daily-bars", str(f), "--out", str(tmp_path / "o")],
        ["ingest", "index", str(f), "--out", str(tmp_path / "o")],
        ["ingest", "lobster", str(f), "--out", str(tmp_path / "o")],
        ["ingest", "bitmex", str(f), "--out", str(tmp_path / "o")],
        ["ingest", "daily-bars", str(f), "--out", str(tmp_path / "o"), "--epoch-unit", "s"],
        ["calibrate-impact", str(tmp_path / "missing.csv")],
        ["predict", str(tmp_path / "missing.csv")],
        ["synth", "--symbols", "0", "--out", str(tmp_path / "s")],
        ["lineage", "champion"],
        ["validate", "quotes", str(f), "--epoch-unit", "s"],
    ]
    for argv in cases:
        rc, _, err = _run(argv, capsys)
        assert rc == 2, (argv, err)
        assert err.startswith("bestex: error: "), (argv, err)
        assert err.count("\n") == 1, (argv, err)


def test_a_nul_byte_in_a_symbol_is_quarantined_not_blanked(tmp_path, capsys):
    """Found by the property suite: '\\x00AMZN' reached the clean table as '' (numpy's
    fixed-width strings end at a NUL)."""
    f = tmp_path / "quotes.csv"
    f.write_bytes(_quotes(3).replace(",AMZN,", ",\x00AMZN,", 1).encode())
    rc, out, _ = _run(["validate", "quotes", str(f)], capsys)
    assert rc == 2
    assert "type: symbol='\\x00AMZN' holds a control character" in out
