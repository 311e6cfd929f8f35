"""Issue 12: the bad-input suite. Property-based: valid tables of every user contract are
corrupted (types, encodings, timestamps, duplicates across parts, extremes, truncation) and fed
through every way in — ``sources.ingest("landing")``, ``bestex ingest landing``, ``bestex
validate``, the Dagster landing assets and the landing sensor. Each must give either

* a refusal: exit status 2 (or a ``ContractError``) with one line naming the file, or
* rows quarantined with their rule, ``rows in == clean + quarantined``, and nothing wrong in the
  clean table (it meets the contract; a corrupted row is never in it),

with no traceback and no warning reaching the user.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli_bad_input import user_visible_warnings_fail

import sources
from bestex.cli import main
from validation.cleansing import CleanseConfig
from validation.contracts import USER_TABLES, ContractError, columns, split_valid
from validation.values import MAX_PRICE, MAX_SIZE

N = 6
T0 = pd.Timestamp("2024-04-11T14:00:00Z")  # a Thursday, inside the XNYS session


def _ts(i: int, ms: int = 0) -> str:
    return (T0 + pd.Timedelta(seconds=i, milliseconds=ms)).isoformat()


def valid_rows(table: str) -> list[dict[str, object]]:
    """``N`` distinct rows that meet ``table``'s contract and every ingest rule."""
    rows = []
    for i in range(N):
        r: dict[str, object] = {
            "quotes": {"ts": _ts(i), "available_at": _ts(i, 1), "symbol": "AMZN",
                       "bid_px": 220.0 + i / 100, "bid_sz": 100 + i, "ask_px": 220.1 + i / 100,
                       "ask_sz": 200},
            "depth": {"ts": _ts(i), "available_at": _ts(i, 1), "symbol": "AAPL", "level": 1 + i,
                      "bid_px": 580.0 - i, "bid_sz": 10 + i, "ask_px": 580.5 + i, "ask_sz": 5},
            "trades": {"ts": _ts(i), "available_at": _ts(i, 1), "symbol": "AMZN",
                       "px": 220.05 + i / 100, "qty": 100 + i, "aggressor": 1},
            "daily_bars": {"date": (pd.Timestamp("2024-04-08") + pd.Timedelta(days=i % 5))
                           .strftime("%Y-%m-%d"), "symbol": f"S{i}", "open": 13.0,
                           "high": 13.5, "low": 12.9, "close": 13.2, "volume": 1e6 + i,
                           "available_at": "2024-04-12T21:00:00Z"},
            "membership": {"symbol": f"S{i}", "start_date": "1996-01-02",
                           "end_date": "2013-10-29"},
            "parent_orders": {"order_id": f"P{i}", "symbol": "AMZN", "side": -1,
                              "qty": 5000 + i, "decision_ts": _ts(i), "end_ts": _ts(3600 + i),
                              "strategy": "twap"},
            "child_fills": {"order_id": f"P{i}", "fill_ts": _ts(i, 5), "px": 220.0,
                            "qty": 100 + i, "fee": -0.2, "liquidity": "maker", "venue": "XNAS"},
            "labels": {"order_id": f"P{i}", "decision_ts": _ts(i), "t1": _ts(3600 + i),
                       "arrival_mid": 220.05, "avg_px": 220.1, "filled_qty": 5000 + i,
                       "is_bps": 2.27, "delay_bps": 0.1, "spread_bps": 2.0, "impact_bps": 0.5,
                       "timing_bps": -0.3, "opportunity_bps": 0.0, "fees_bps": -0.03},
            "news": {"ts": _ts(i), "available_at": _ts(i, 500), "symbol": "AMZN",
                     "headline": f"AMZN posts strong quarterly profit growth, item {i}",
                     "event_type": "earnings"},
        }[table]
        rows.append(r)
    return rows


# ----------------------------------------------------------------------------- corruptions
TIME_COLS = {t: [c for c, (d, _) in columns(t).items() if d.startswith("datetime")]
             for t in USER_TABLES}
NUM_COLS = {t: [c for c, (d, req) in columns(t).items() if d in ("float64", "int64") and req]
            for t in USER_TABLES}

BAD_TIMES = ["04/11/2024 14:01", "11.04.2024", "1712844060", "1970-01-01T00:00:00Z",
             "2999-01-01T00:00:00Z", "yesterday", "2024-13-01", "  "]
BAD_NUMBERS = ["abc", "1,5", "True", "inf", "-inf", "1e308", "-1e308", "1e400", "0x10", "--1"]


@st.composite
def cell_corruption(draw, table: str):
    """(column, value, definitely_bad): one cell of one row replaced by something wrong."""
    kind = draw(st.sampled_from(["time", "number"] if TIME_COLS[table] and NUM_COLS[table]
                                else ["time"] if TIME_COLS[table] else ["number"]))
    if kind == "time":
        return draw(st.sampled_from(TIME_COLS[table])), draw(st.sampled_from(BAD_TIMES))
    col = draw(st.sampled_from(NUM_COLS[table]))
    value = draw(st.sampled_from(BAD_NUMBERS))
    if value in ("1e308", "-1e308") and not (col.endswith(("px", "sz", "qty", "volume", "mid",
                                                           "_bps", "open", "high", "low",
                                                           "close"))):
        value = "abc"  # 1e308 is a legal fee; the bound is on prices, sizes and costs
    return col, value


def _csv(rows: list[dict[str, object]]) -> str:
    return pd.DataFrame(rows).to_csv(index=False)


# ----------------------------------------------------------------------------- the ways in
@contextlib.contextmanager
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        user_visible_warnings_fail()
        yield


def cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with no_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    o, e = out.getvalue(), err.getvalue()
    assert "Traceback" not in o + e
    return rc, o, e


def check_clean(table: str, clean: pd.DataFrame) -> None:
    """Nothing wrong in a clean table: it meets the contract, within the plausible bounds."""
    _, failures = split_valid(table, clean, source="clean")
    assert failures == [], failures[:3]
    for c in clean.columns:
        if c.endswith(("px", "mid")) or c in ("open", "high", "low", "close"):
            assert (clean[c].dropna() <= MAX_PRICE).all(), c
        if c.endswith(("_sz", "qty", "volume")):
            assert (clean[c].dropna() <= MAX_SIZE).all(), c


def through_every_way(folder: Path, table: str, bad_rows: set[tuple[str, int]],
                      must_refuse: bool = False) -> None:
    """Run the landing ``folder`` through the library, ``bestex ingest`` and ``bestex validate``
    (each file); check the oracle of the module docstring. ``bad_rows`` are (file name, row)
    that must not be clean."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    # 1. the library
    try:
        with no_warnings():
            res = sources.ingest("landing", folder, config=CleanseConfig())[table]
        refused = None
    except ContractError as exc:
        refused = str(exc)
        assert "\n" not in refused, refused
        assert any(str(f) in refused for f in files), refused
    if refused is None:
        assert not must_refuse
        assert res.reconciles
        check_clean(table, res.clean)
        assert res.quarantine["rule"].str.len().min() > 0 if len(res.quarantine) else True
        quarantined = {(Path(s).name, int(r)) for s, r in
                       zip(res.quarantine["source"], res.quarantine["row"], strict=True)}
        assert bad_rows <= quarantined, (bad_rows, quarantined)
    # 2. bestex ingest landing: the same verdict, as files
    with tempfile.TemporaryDirectory() as out:
        rc, o, e = cli(["ingest", "landing", str(folder), "--out", f"{out}/o"])
        if refused is not None:
            assert rc == 2, e
            assert e.startswith("bestex: error: "), e
            assert e.count("\n") == 1, e
        else:
            assert rc == 0, e
            summary = json.loads(o)["tables"][table]
            assert summary["input"] == summary["clean"] + summary["quarantined"]
            assert (summary["clean"], summary["quarantined"]) == (len(res.clean),
                                                                  len(res.quarantine))
            check_clean(table, pd.read_parquet(f"{out}/o/{table}.parquet"))
    # 3. bestex validate, file by file: exit 2 naming the file, or 0 on a clean file
    for f in files:
        rc, o, e = cli(["validate", table, str(f)])
        assert rc in (0, 2), (rc, e)
        if rc == 2:
            assert str(f) in o + e
        if any(name == f.name for name, _ in bad_rows):
            assert rc == 2


def _landing(tmp: Path, parts: dict[str, str | bytes]) -> Path:
    folder = tmp / "landing"
    folder.mkdir()
    for name, body in parts.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body if isinstance(body, bytes) else body.encode())
    return folder


SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- the properties
@pytest.mark.parametrize("table", USER_TABLES)
def test_valid_tables_pass_every_way_in(table):
    with tempfile.TemporaryDirectory() as tmp:
        folder = _landing(Path(tmp), {f"{table}.csv": _csv(valid_rows(table))})
        through_every_way(folder, table, set())
        res = sources.ingest("landing", folder)[table]
        assert len(res.clean) == N
        assert res.quarantine.empty


@pytest.mark.parametrize("table", USER_TABLES)
@SETTINGS
@given(data=st.data())
def test_a_corrupted_cell_is_quarantined_or_refused(table, data):
    rows = valid_rows(table)
    col, value = data.draw(cell_corruption(table), label="cell")
    i = data.draw(st.integers(0, N - 1), label="row")
    rows[i][col] = value
    with tempfile.TemporaryDirectory() as tmp:
        folder = _landing(Path(tmp), {f"{table}.csv": _csv(rows)})
        through_every_way(folder, table, {(f"{table}.csv", i)})


@pytest.mark.parametrize("table", USER_TABLES)
@SETTINGS
@given(data=st.data())
def test_rows_repeated_across_parts_are_clean_once(table, data):
    rows = valid_rows(table)
    repeat = sorted(data.draw(st.sets(st.integers(0, N - 1), min_size=1, max_size=N),
                              label="repeated"))
    form = data.draw(st.sampled_from(["suffix", "folder", "parquet"]), label="form")
    second = [rows[k] for k in repeat]
    if form == "suffix":
        parts = {f"{table}.csv": _csv(rows), f"{table}_copy.csv": _csv(second)}
        copy = f"{table}_copy.csv"
    elif form == "folder":
        parts = {f"{table}/a.csv": _csv(rows), f"{table}/b.csv": _csv(second)}
        copy = "b.csv"
    else:
        buf = io.BytesIO()
        pd.read_csv(io.StringIO(_csv(second)), dtype=str).to_parquet(buf)
        parts = {f"{table}.csv": _csv(rows), f"{table}_z.parquet": buf.getvalue()}
        copy = f"{table}_z.parquet"
    with tempfile.TemporaryDirectory() as tmp:
        folder = _landing(Path(tmp), parts)
        bad = {(copy, j) for j in range(len(second))}
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        with no_warnings():
            res = sources.ingest("landing", folder)[table]
        assert res.reconciles
        assert len(res.clean) == N
        assert not res.clean.duplicated().any()
        got = {(Path(s).name, int(r)) for s, r in zip(res.quarantine["source"],
                                                      res.quarantine["row"], strict=True)}
        # the repeats are quarantined in the later part, each pointing at its first occurrence
        assert got == bad, (got, bad, files)
        rc, o, _e = cli(["ingest", "landing", str(folder), "--out", f"{tmp}/o"])
        assert rc == 0
        assert json.loads(o)["tables"][table]["quarantined"] == len(second)


@pytest.mark.parametrize("table", USER_TABLES)
@SETTINGS
@given(data=st.data())
def test_truncated_or_mis_encoded_files_are_refused_or_quarantined(table, data):
    body = _csv(valid_rows(table)).encode()
    how = data.draw(st.sampled_from(["truncate", "bad_byte", "latin1", "bom", "nul"]),
                    label="how")
    if how == "truncate":
        body = body[: data.draw(st.integers(0, len(body) - 1), label="cut")]
    elif how == "bad_byte":
        at = data.draw(st.integers(0, len(body) - 1), label="at")
        body = body[:at] + b"\xff\xfe" + body[at:]
    elif how == "latin1":
        body = body.replace(b"AMZN", "AMZÑ".encode("latin-1")).replace(b"P1", "P\xe91".encode(
            "latin-1")).replace(b"S1", "S\xe91".encode("latin-1"))
    elif how == "bom":
        body = b"\xef\xbb\xbf" + body
    else:
        at = data.draw(st.integers(0, len(body) - 1), label="at")
        body = body[:at] + b"\x00" + body[at:]
    try:
        body.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:
        utf8 = False
    with tempfile.TemporaryDirectory() as tmp:
        folder = _landing(Path(tmp), {f"{table}.csv": body})
        through_every_way(folder, table, set(), must_refuse=not utf8)
        if not utf8:
            rc, _, e = cli(["validate", table, str(folder / f"{table}.csv")])
            assert rc == 2, e
            assert "not UTF-8: byte 0x" in e, e
            assert " at line " in e, e


def test_the_dagster_landing_assets_and_sensor_agree(tmp_path, monkeypatch):
    """The Dagster way in: the landing sensor asks for a run when the folder changes, and the
    landing assets quarantine what the library quarantines (checks pass), or the run fails
    with the file named."""
    import dagster as dg

    from assets.sources import landing_assets
    from pipelines.sensors import build_sensors

    folder = tmp_path / "landing"
    monkeypatch.setenv("BESTEX_LANDING", str(folder))
    rows = valid_rows("quotes")
    rows[2]["ask_px"] = "1e308"
    rows.append(dict(rows[4]))  # an exact repeat
    _landing(tmp_path, {"quotes.csv": _csv(rows[:4]), "quotes_2.csv": _csv(rows[4:])})
    sensor = build_sensors()[0]
    request = sensor.evaluate_tick(dg.build_sensor_context(cursor=None)).run_requests
    assert len(request) == 1
    lib = sources.ingest("landing", folder)["quotes"]
    with no_warnings():
        result = dg.materialize(landing_assets(folder), raise_on_error=False,
                                resources={"io_manager": dg.mem_io_manager})
    assert result.success
    clean = result.output_for_node("read_cleanse_landing_quotes", "clean")
    assert len(clean) == len(lib.clean) == N - 1
    q = result.output_for_node("read_cleanse_landing_quotes", "quarantine")
    assert sorted(q["rule"]) == ["duplicate", "extreme_value"]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"rows_reconcile": True, "meets_contract": True}

    (folder / "quotes_2.csv").write_text("ts,symbol\n1,2\n")  # a part with missing columns
    result = dg.materialize(landing_assets(folder), raise_on_error=False,
                            resources={"io_manager": dg.mem_io_manager})
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    err = failure.event_specific_data.error
    while err.cause is not None:  # Dagster wraps the op's exception: its root names the file
        err = err.cause
    message = err.message
    assert err.cls_name == "ContractError"
    assert str(folder / "quotes_2.csv") in message
    assert "missing columns" in message

