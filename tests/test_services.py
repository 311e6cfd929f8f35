"""`bestex services`: a real PostgreSQL on 127.0.0.1 under a temporary BESTEX_HOME.

The module fixture starts the server itself (installing Debian's postgresql through
scripts/ensure_postgres.sh when initdb is missing) and always stops it at teardown; when the
server cannot be had the tests fail with the reason instead of skipping.
"""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import psycopg2
import pytest

from bestex import services
from bestex.cli import main

ROOT = Path(__file__).resolve().parent.parent


def ensure_postgres() -> None:
    """Install the server binaries when missing; fail (never skip) when that is impossible."""
    try:
        services.ensure_binaries()
    except services.ServicesError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def pg_home():
    ensure_postgres()
    with services.ephemeral() as home:
        yield home


def _refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_status_running_on_loopback_only(pg_home):
    st = services.status(pg_home)

    assert st["running"]
    assert st["pid"] > 0
    assert st["host"] == "127.0.0.1"
    assert st["listen_addresses"] == "127.0.0.1"
    creds = services.ServicesConfig(pg_home).credentials_file
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert not creds.resolve().is_relative_to(ROOT), "credentials must live outside the repo"
    assert not _refused(st["port"])


def test_the_three_databases_exist(pg_home):
    st = services.status(pg_home)

    assert set(st["databases"]) == set(services.DATABASES)
    assert all(info["size_bytes"] > 0 for info in st["databases"].values())
    assert services.url(pg_home, "bestex_optuna").startswith("postgresql+psycopg2://bestex:")


def test_a_wrong_password_is_refused(pg_home):
    c = services.credentials(pg_home)

    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host="127.0.0.1", port=c["port"], user=c["user"], dbname="postgres",
                         password=c["password"] + "x", connect_timeout=5)


def test_up_is_idempotent(pg_home):
    before = services.status(pg_home)

    again = services.up(pg_home)

    assert again["running"]
    assert again["pid"] == before["pid"]
    assert again["port"] == before["port"]


def test_cli_status_json(pg_home, monkeypatch, capsys):
    monkeypatch.setenv("BESTEX_HOME", str(pg_home))

    rc = main(["services", "status", "--json"])

    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["running"]
    assert out["port"] == services.credentials(pg_home)["port"]


def test_profile_reads_bestex_profile(monkeypatch):
    monkeypatch.delenv("BESTEX_PROFILE", raising=False)
    assert services.profile() == "local"
    monkeypatch.setenv("BESTEX_PROFILE", "services")
    assert services.profile() == "services"
    monkeypatch.setenv("BESTEX_PROFILE", "cloud")
    with pytest.raises(ValueError, match="BESTEX_PROFILE='cloud' is not a profile; choose one of "
                                         "local, services"):
        services.profile()


def test_url_before_up_says_how_to_fix(tmp_path):
    with pytest.raises(services.ServicesError, match="run `bestex services up`"):
        services.url(tmp_path, "bestex_optuna")


def test_down_stops_it_and_is_idempotent():
    # its own server: the module's one stays up for the other tests
    ensure_postgres()
    with services.ephemeral() as home:
        port = services.credentials(home)["port"]
        assert not _refused(port)

        st = services.down(home)

        assert not st["running"]
        assert _refused(port)
        assert not services.down(home)["running"]
