"""Shared fixtures: every test runs with a temporary BESTEX_HOME."""

import pytest


@pytest.fixture(autouse=True)
def _bestex_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("bestex_home")
    monkeypatch.setenv("BESTEX_HOME", str(home))
    monkeypatch.setenv("MLFLOW_UV_AUTO_DETECT", "false")
    return home
