"""The registered model, whole: one pyfunc from raw rows to cost, band and domain flag.

A real (small) bundle is logged through the registry resource, registered and promoted to
``champion`` once per module; every way a consumer reaches it — the in-process bundle, the
registry, ``mlflow.pyfunc.load_model`` by alias in a fresh Python process, ``mlflow models serve``
over HTTP on 127.0.0.1, and ``bestex predict`` — must give the same numbers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import register_tiny_champion, serving_rows

from bestex.cli import main
from models.cost_bundle import (
    SERVING_INPUTS,
    SERVING_OUTPUTS,
    ServingInputError,
    check_serving_rows,
)
from pipelines.registry import CHAMPION, MODEL_NAME, default_registry, serving_frame

_NUMERIC = ("mean_bps", "p10_bps", "p90_bps", "noise_sd_bps")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(BESTEX_HOME, raw rows, the bundle, its in-process predictions, the logged model's URI)
    with the bundle as the
    champion of ``bestex-cost-model`` under that home."""
    home = tmp_path_factory.mktemp("serving_home")
    bundle, uri, _ = register_tiny_champion(home, "serving_test")
    rows = serving_rows(40, seed=2)
    rows.loc[rows.index[:3], ["rv_intraday", "trade_imbalance"]] = np.nan  # optional gaps
    return home, rows, bundle, bundle.predict_raw(rows), uri


@pytest.fixture
def home(served, monkeypatch):
    monkeypatch.setenv("BESTEX_HOME", str(served[0]))
    return served[0]


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = got.reset_index(drop=True)
    want = want.reset_index(drop=True)
    assert list(got.columns[: len(SERVING_OUTPUTS)]) == list(SERVING_OUTPUTS) or \
        set(SERVING_OUTPUTS) <= set(got.columns)
    for c in _NUMERIC:
        np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float),
                                   rtol=1e-12, atol=1e-12, err_msg=c)
    assert got["in_domain"].astype(bool).tolist() == want["in_domain"].tolist()
    assert got["domain_reason"].fillna("").tolist() == want["domain_reason"].tolist()


def _tracking_env(home: Path) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # uvicorn
    return {**os.environ, "PATH": path, "BESTEX_HOME": str(home),
            "MLFLOW_UV_AUTO_DETECT": "false",
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"}


def test_outputs_are_a_band_around_the_mean(served):
    _, rows, _, want, _ = served
    assert list(want.columns) == list(SERVING_OUTPUTS)
    assert len(want) == len(rows)
    assert (want["p10_bps"] < want["p90_bps"]).all()
    assert (want["noise_sd_bps"] >= 5.0 - 1e-9).all()  # the bundle's noise floor
    assert want["domain_reason"].map(lambda r: r == "").tolist() == want["in_domain"].tolist()


def test_the_registered_champion_predicts_like_the_bundle(home, served):
    _, rows, _, want, _ = served
    reg = default_registry()
    assert reg.champion().version == "1"
    _same(reg.predict(rows, CHAMPION), want)
    assert reg.load_bundle(CHAMPION).features == served[2].features
    logged = served[4]  # models:/m-<id>: the URI the training run's record carries
    assert logged.startswith("models:/m-")
    np.testing.assert_array_equal(reg.load_bundle(logged).predict_raw(rows)["mean_bps"],
                                  want["mean_bps"])


def test_the_signature_documents_every_input_column(home):
    model = default_registry().load_pyfunc(CHAMPION)
    schema = model.metadata.get_input_schema()
    assert schema.input_names() == [c.name for c in SERVING_INPUTS]
    required = {c.name for c in SERVING_INPUTS if c.required}
    assert {s.name for s in schema.inputs if s.required} == required
    assert [s.name for s in model.metadata.get_output_schema().inputs] == list(SERVING_OUTPUTS)
    assert model.metadata.saved_input_example_info is not None


def test_fresh_process_loads_the_champion_by_alias(home, served, tmp_path):
    _, rows, _, want, _ = served
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    serving_frame(rows).to_parquet(src)
    code = ("import sys, time, mlflow, pandas as pd\n"
            "t = time.perf_counter()\n"
            f"m = mlflow.pyfunc.load_model('models:/{MODEL_NAME}@{CHAMPION}')\n"
            "print(round(time.perf_counter() - t, 3))\n"
            "m.predict(pd.read_parquet(sys.argv[1])).to_parquet(sys.argv[2])\n")
    proc = subprocess.run([sys.executable, "-c", code, str(src), str(dst)], cwd=tmp_path,
                          env=_tracking_env(home), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _same(pd.read_parquet(dst), want)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_over_http_gives_the_same_numbers(home, served, tmp_path):
    _, rows, _, want, _ = served
    port = _free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [str(mlflow_cli), "models", "serve", "-m", f"models:/{MODEL_NAME}@{CHAMPION}",
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        cwd=tmp_path, env=_tracking_env(home), stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "w"), start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow models serve did not come up in 90 s"
            time.sleep(0.5)
        frame = serving_frame(rows)  # (pandas' to_json would round floats to 10 digits)
        split = {"columns": list(frame.columns),
                 "data": [[None if isinstance(v, float) and np.isnan(v) else v for v in r]
                          for r in frame.astype(object).to_numpy().tolist()]}
        body = json.dumps({"dataframe_split": split}).encode()
        req = urllib.request.Request(f"{base}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            got = pd.DataFrame(json.loads(r.read())["predictions"])
        _same(got, want)

        # a required column missing: refused, naming it
        bad = {"dataframe_split": {**split, "columns": [c for c in split["columns"]
                                                        if c != "qty"],
                                   "data": [[v for c, v in zip(split["columns"], row, strict=True)
                                             if c != "qty"] for row in split["data"]]}}
        req = urllib.request.Request(f"{base}/invocations", data=json.dumps(bad).encode(),
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        assert err.value.code in (400, 422)
        assert "qty" in err.value.read().decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_bestex_predict_writes_the_same_numbers(home, served, tmp_path, suffix, capsys):
    _, rows, _, want, _ = served
    src, dst = tmp_path / f"orders{suffix}", tmp_path / "costs.parquet"
    if suffix == ".csv":
        serving_frame(rows).assign(order_id=rows["order_id"]).to_csv(src, index=False)
    else:
        rows.to_parquet(src)
    assert main(["predict", str(src), "--out", str(dst)]) == 0
    got = pd.read_parquet(dst)
    assert got["order_id"].tolist() == rows["order_id"].tolist()  # the input's columns kept
    assert list(got.columns[-len(SERVING_OUTPUTS):]) == list(SERVING_OUTPUTS)
    _same(got[list(SERVING_OUTPUTS)], want)
    assert "40 rows" in capsys.readouterr().err


def test_bestex_predict_refuses_a_missing_or_mistyped_column(home, served, tmp_path, capsys):
    _, rows, _, _, _ = served
    src = tmp_path / "orders.csv"
    serving_frame(rows).drop(columns=["adv"]).to_csv(src, index=False)
    assert main(["predict", str(src)]) == 2
    err = capsys.readouterr().err
    assert str(src) in err
    assert "'adv'" in err

    bad = serving_frame(rows)
    bad["sigma_daily"] = bad["sigma_daily"].astype(object)
    bad.loc[bad.index[4], "sigma_daily"] = "high"
    bad.to_csv(src, index=False)
    assert main(["predict", str(src)]) == 2
    err = capsys.readouterr().err
    assert "'sigma_daily'" in err
    assert "row 4" in err
    assert "'high'" in err


def test_bestex_predict_without_a_champion_is_bad_input(tmp_path, capsys):
    src = tmp_path / "orders.parquet"
    serving_rows(3).to_parquet(src)
    assert main(["predict", str(src)]) == 2
    assert "no alias 'champion'" in capsys.readouterr().err


@pytest.mark.parametrize(("column", "value", "needle"), [
    ("side", 2, r"'side' must be \+1 or -1"),
    ("decision_ts", "yesterday", "'decision_ts' must be ISO 8601"),
    ("qty", True, "'qty' is boolean"),
])
def test_check_serving_rows_names_the_column(column, value, needle):
    rows = serving_rows(5)
    rows[column] = value
    with pytest.raises(ServingInputError, match=needle):
        check_serving_rows(rows)


def test_a_column_given_twice_is_refused_by_name():
    rows = serving_rows(3)
    twice = pd.concat([rows, rows[["qty"]]], axis=1)
    with pytest.raises(ServingInputError, match=r"\['qty'\] appear more than once"):
        check_serving_rows(twice)


def test_a_required_float_gap_names_the_row():
    rows = serving_rows(4)
    rows["adv"] = rows["adv"].astype(float)
    rows.loc[rows.index[2], "adv"] = np.nan
    with pytest.raises(ServingInputError, match=r"'adv' is missing at row 2"):
        check_serving_rows(rows)


def test_readme_documents_the_serving_schema():
    """The README's input table lists every SERVING_INPUTS column with its type and whether it
    is required, in order (it cannot drift from the model signature)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text.split("## Serving the cost model", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
    documented = [(r[0].strip("| `"), r[1], r[2] == "yes") for r in rows]
    assert documented == [(c.name, c.type, c.required) for c in SERVING_INPUTS]
    for name in SERVING_OUTPUTS:
        assert f"`{name}`" in section
