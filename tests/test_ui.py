"""``make ui``: the Dagster UI serves the asset graph and the MLflow UI the registered model."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, data: bytes | None = None) -> dict:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _wait(fn, timeout: float = 150.0):
    t0, last = time.monotonic(), None
    while time.monotonic() - t0 < timeout:
        try:
            return fn()
        except OSError as exc:  # not listening yet
            last = exc
            time.sleep(1.0)
    raise TimeoutError(f"not served after {timeout} s: {last}")


@pytest.fixture
def registered_home(tmp_path, monkeypatch):
    """A BESTEX_HOME with one registered cost-model version (a tiny real booster)."""
    monkeypatch.setenv("BESTEX_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_UV_AUTO_DETECT", "false")
    from conftest import serving_rows, tiny_bundle

    from pipelines.registry import default_registry

    reg = default_registry()
    rows = serving_rows(50)
    with reg.start_run(experiment="cost_model_xgboost", run_name="ui") as run:
        uri = run.log_cost_model(tiny_bundle(rows), example_rows=rows.head(3))
    reg.register(run.run_id, reg.model_artifact, tags={}, gates_passed=True,
                 gate_failures=[], model_uri=uri)
    return tmp_path


def test_ui_serves_asset_graph_and_registered_model(registered_home):
    dport, mport, bport = _free_port(), _free_port(), _free_port()
    env = dict(os.environ, BESTEX_DATA="/nonexistent")
    proc = subprocess.Popen([sys.executable, "-m", "bestex.cli", "ui", "--dagster-port",
                             str(dport), "--mlflow-port", str(mport), "--dashboard-port",
                             str(bport)], cwd=ROOT, env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
        graph = _wait(lambda: _get(f"http://127.0.0.1:{dport}/graphql", query))
        keys = {"/".join(n["assetKey"]["path"]) for n in graph["data"]["assetNodes"]}
        assert {"cost_model/synth", "validation/gates/synth", "registry/cost_model_version",
                "features/synth"} <= keys
        model = _wait(lambda: _get(f"http://127.0.0.1:{mport}/api/2.0/mlflow/registered-models/"
                                   "get?name=bestex-cost-model"))
        assert model["registered_model"]["name"] == "bestex-cost-model"
        assert model["registered_model"]["aliases"][0]["alias"] == "challenger"
        # the paper-trading dashboard (no session yet: it says it waits for a journal)
        page = _wait(lambda: urllib.request.urlopen(f"http://127.0.0.1:{bport}/",
                                                    timeout=5).read().decode())
        assert "<html" in page.lower()
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=30)
    assert proc.returncode is not None
    # the three servers are gone: the ports refuse connections
    for port in (dport, mport, bport):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
