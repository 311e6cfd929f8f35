"""The optional shared services: one PostgreSQL server under ``BESTEX_HOME/services/``.

Layout::

    BESTEX_HOME/services/
        pg/                 the cluster (initdb), owned by the user the server runs as
        postgres.log        the server's log (pg_ctl -l)
        credentials.json    mode 0600: user, generated password, host 127.0.0.1, port

The server listens on 127.0.0.1 only (no Unix socket), with scram-sha-256 password
authentication for the ``bestex`` role; the password is generated on first ``up`` with
:func:`secrets.token_urlsafe` and never leaves ``credentials.json``. It holds one database per
consumer (:data:`DATABASES`). Postgres refuses to run as root: when we are root, every server
binary runs as the ``postgres`` system user (``runuser``) and the cluster is chowned to it.

``BESTEX_PROFILE`` picks the backends: ``local`` (default: files and SQLite under
``BESTEX_HOME``) or ``services`` (this server). No dagster or mlflow import here.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bestex import settings

__all__ = ["DATABASES", "DEFAULT_PORT", "PROFILES", "ServicesConfig", "ServicesError", "down",
           "ensure_binaries", "ephemeral", "optuna_storage_url", "profile", "status", "up", "url"]

DATABASES = ("bestex_mlflow", "bestex_dagster", "bestex_optuna")
DEFAULT_PORT = 55432
HOST = "127.0.0.1"
USER = "bestex"
PROFILES = settings.PROFILES
PROFILE_ENV = settings.PROFILE_ENV
ENSURE_SCRIPT = "scripts/ensure_postgres.sh"
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
# A few tables per database whose row counts `status` reports when they exist.
COUNTED_TABLES = {"bestex_optuna": ("studies", "trials"),
                  "bestex_mlflow": ("experiments", "runs", "registered_models"),
                  "bestex_dagster": ("runs", "event_logs")}


class ServicesError(RuntimeError):
    """A service cannot be brought up, reached or stopped; the message says how to fix it."""


@dataclass(frozen=True)
class ServicesConfig:
    """Paths of the services under one ``BESTEX_HOME``."""

    home: Path

    @property
    def root(self) -> Path:
        return self.home / "services"

    @property
    def data_dir(self) -> Path:
        return self.root / "pg"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials.json"


def _log(msg: str) -> None:
    print(f"services: {msg}", file=sys.stderr, flush=True)


# -- binaries and the user they run as -------------------------------------------------------

def _bindir() -> Path:
    """The folder holding initdb/pg_ctl/postgres (PATH first, then Debian's newest version)."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                      else 0)
    for d in reversed(versions):
        if all((Path(d) / b).is_file() for b in SERVER_BINARIES):
            return Path(d)
    raise ServicesError(f"PostgreSQL server binaries ({', '.join(SERVER_BINARIES)}) not found on "
                        f"PATH or under /usr/lib/postgresql/*/bin: run `sh {ENSURE_SCRIPT}` "
                        "(installs Debian's postgresql) or `make services`")


def ensure_binaries(project_root: Path | None = None) -> Path:
    """The server binaries' folder, running ``scripts/ensure_postgres.sh`` when they are missing.

    Raises :class:`ServicesError` with the script's reason when they cannot be installed.
    """
    try:
        return _bindir()
    except ServicesError:
        root = project_root or Path(__file__).resolve().parent.parent
        res = subprocess.run(["sh", str(root / ENSURE_SCRIPT)], capture_output=True,
                             text=True, check=False)
        if res.returncode != 0:
            raise ServicesError(f"PostgreSQL is missing and {ENSURE_SCRIPT} could not install "
                                f"it: {res.stderr.strip()}") from None
        return _bindir()


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _pg_cmd(binary: str, *args: str) -> list[str]:
    cmd = [str(_bindir() / binary), *args]
    if _as_root():
        if shutil.which("runuser") is None:
            raise ServicesError("running as root, and Postgres refuses root: `runuser` is needed "
                                "to run it as the `postgres` user")
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise ServicesError(f"{what} failed (exit {res.returncode}): "
                            f"{(res.stderr or res.stdout).strip()[-2000:]}")
    return res


def _give_to_postgres(path: Path) -> None:
    """As root, hand ``path`` to the ``postgres`` user; it must be reachable by that user."""
    if not _as_root():
        return
    shutil.chown(path, user="postgres", group="postgres")
    probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(path)],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        raise ServicesError(f"{path}: the `postgres` user cannot reach it (a parent folder lacks "
                            "the x bit for others); put BESTEX_HOME somewhere it can, or "
                            "`chmod o+x` the parents")


# -- credentials and ports --------------------------------------------------------------------

def _port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` (with SO_REUSEADDR, as PostgreSQL does: the
    TIME_WAIT sockets of clients of a server just stopped do not make its port "taken", and a
    restarted server keeps the port its clients know)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _write_credentials(cfg: ServicesConfig, creds: dict[str, Any]) -> None:
    fd = os.open(cfg.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f, indent=2)
    os.chmod(cfg.credentials_file, 0o600)


def credentials(home: Path) -> dict[str, Any]:
    """The stored credentials (user, password, host, port); ServicesError before the first up."""
    try:
        return settings.service_credentials(Path(home))
    except FileNotFoundError as exc:
        raise ServicesError(str(exc)) from None


def url(home: Path, db: str) -> str:
    """SQLAlchemy URL of database ``db`` (``postgresql+psycopg2://user:pass@127.0.0.1:PORT/db``)."""
    if db not in DATABASES and db != "postgres":
        raise ValueError(f"db={db!r} is not a services database; choose one of "
                         f"{', '.join(DATABASES)}")
    credentials(home)  # the ServicesError with the fix
    return settings.service_url(db, Path(home))


def profile() -> Literal["local", "services"]:
    """The backend profile from ``BESTEX_PROFILE`` (:func:`bestex.settings.profile`)."""
    return settings.profile()


def optuna_storage_url(home: Path) -> str:
    """The Optuna RDB storage URL on the services' ``bestex_optuna`` database."""
    return url(home, "bestex_optuna")


def _connect(home: Path, db: str, password: str | None = None):  # -> psycopg2 connection
    import psycopg2

    c = credentials(home)
    try:
        return psycopg2.connect(host=c["host"], port=c["port"], user=c["user"], dbname=db,
                                password=c["password"] if password is None else password,
                                connect_timeout=5)
    except psycopg2.OperationalError as exc:
        raise ServicesError(f"cannot connect to {db} on {c['host']}:{c['port']} as "
                            f"{c['user']}: {str(exc).strip()}") from exc


# -- lifecycle ----------------------------------------------------------------------------------

def _pid(cfg: ServicesConfig) -> int | None:
    """The postmaster's pid when it is alive, else None."""
    pidfile = cfg.data_dir / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        return pid
    return pid


def _initdb(cfg: ServicesConfig, password: str) -> None:
    _log(f"initialising a PostgreSQL cluster in {cfg.data_dir}")
    cfg.data_dir.mkdir(mode=0o700)
    _give_to_postgres(cfg.data_dir)
    pwfile = cfg.root / ".initdb-pwfile"  # 0600, postgres-owned; removed right after initdb
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    _give_to_postgres(pwfile)
    try:
        _run(_pg_cmd("initdb", "-D", str(cfg.data_dir), "-U", USER, f"--pwfile={pwfile}",
                     "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"), "initdb")
    finally:
        pwfile.unlink(missing_ok=True)
    with open(cfg.data_dir / "postgresql.conf", "a") as f:
        f.write("\n# bestex services\nlisten_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\npassword_encryption = 'scram-sha-256'\n")


def up(home: Path) -> dict[str, Any]:
    """Start (initialising on first use) the PostgreSQL server under ``home``; idempotent.

    Returns :func:`status`. Raises :class:`ServicesError` with the fix when it cannot.
    """
    cfg = ServicesConfig(Path(home).resolve())
    bindir = _bindir()
    cfg.root.mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.root, 0o711)  # postgres may pass through, not list
    if cfg.credentials_file.is_file():
        creds = credentials(cfg.home)
    else:
        creds = {"user": USER, "password": secrets.token_urlsafe(24), "host": HOST,
                 "port": DEFAULT_PORT}
    if not (cfg.data_dir / "PG_VERSION").is_file():
        if cfg.data_dir.exists():
            raise ServicesError(f"{cfg.data_dir} exists but is no PostgreSQL cluster; move it "
                                "away and run up again")
        _initdb(cfg, creds["password"])
    if _pid(cfg) is None:
        if not _port_free(int(creds["port"])):
            port = free_port()
            _log(f"port {creds['port']} is taken; using {port}")
            creds["port"] = port
        _write_credentials(cfg, creds)
        cfg.log_file.touch()
        _give_to_postgres(cfg.log_file)
        _log(f"starting PostgreSQL ({bindir}) on {HOST}:{creds['port']}")
        _run(_pg_cmd("pg_ctl", "-D", str(cfg.data_dir), "-l", str(cfg.log_file), "-w",
                     "-t", "60", "-o", f"-p {int(creds['port'])}", "start"), "pg_ctl start")
    else:
        _write_credentials(cfg, creds)
        _log(f"PostgreSQL already running (pid {_pid(cfg)}) on {HOST}:{creds['port']}")
    _ensure_databases(cfg.home)
    return status(cfg.home)


def _ensure_databases(home: Path) -> None:
    conn = _connect(home, "postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database")
            have = {r[0] for r in cur.fetchall()}
            for db in DATABASES:
                if db not in have:
                    _log(f"creating database {db}")
                    cur.execute(f'CREATE DATABASE "{db}"')
    finally:
        conn.close()


def down(home: Path) -> dict[str, Any]:
    """Stop the server (fast shutdown); idempotent. Returns :func:`status`."""
    cfg = ServicesConfig(Path(home).resolve())
    pid = _pid(cfg)
    if pid is None:
        _log("PostgreSQL is not running")
    else:
        _log(f"stopping PostgreSQL (pid {pid})")
        _run(_pg_cmd("pg_ctl", "-D", str(cfg.data_dir), "-m", "fast", "-w", "-t", "60",
                     "stop"), "pg_ctl stop")
    return status(cfg.home)


def status(home: Path) -> dict[str, Any]:
    """Running or not, pid, host, port, data dir and, when running, each database's size in
    bytes and the row counts of a few known tables (:data:`COUNTED_TABLES`)."""
    cfg = ServicesConfig(Path(home).resolve())
    creds = credentials(cfg.home) if cfg.credentials_file.is_file() else {}
    pid = _pid(cfg)
    out: dict[str, Any] = {"running": pid is not None, "pid": pid, "host": creds.get("host"),
                           "port": creds.get("port"), "user": creds.get("user"),
                           "data_dir": str(cfg.data_dir), "log": str(cfg.log_file),
                           "credentials": str(cfg.credentials_file),
                           "initialised": (cfg.data_dir / "PG_VERSION").is_file(),
                           "databases": {}}
    if pid is None:
        return out
    conn = _connect(cfg.home, "postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname, pg_database_size(datname) FROM pg_database "
                        "WHERE datname = ANY(%s)", (list(DATABASES),))
            for name, size in cur.fetchall():
                out["databases"][name] = {"size_bytes": int(size), "rows": {}}
            cur.execute("SHOW listen_addresses")
            out["listen_addresses"] = cur.fetchone()[0]
            cur.execute("SHOW server_version")
            out["server_version"] = cur.fetchone()[0]
    finally:
        conn.close()
    for db, info in out["databases"].items():
        info["rows"] = _row_counts(cfg.home, db)
    return out


def _row_counts(home: Path, db: str) -> dict[str, int]:
    from psycopg2 import sql

    counts: dict[str, int] = {}
    conn = _connect(home, db)
    try:
        with conn.cursor() as cur:
            for table in COUNTED_TABLES.get(db, ()):
                cur.execute("SELECT to_regclass(%s)", (f"public.{table}",))
                if cur.fetchone()[0] is not None:
                    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
                    counts[table] = int(cur.fetchone()[0])
    finally:
        conn.close()
    return counts


@contextlib.contextmanager
def ephemeral(port: int | None = None) -> Iterator[Path]:
    """A throw-away services home for tests: ``up`` on a free port, always ``down`` and delete.

    The home is a fresh folder in the system temp dir (mode 0711, so the ``postgres`` user can
    reach the cluster when we are root; pytest's own tmp dirs are 0700).
    """
    home = Path(tempfile.mkdtemp(prefix="bestex-services-"))
    os.chmod(home, 0o711)
    try:
        cfg = ServicesConfig(home)
        cfg.root.mkdir()
        _write_credentials(cfg, {"user": USER, "password": secrets.token_urlsafe(24),
                                 "host": HOST, "port": port or free_port()})
        up(home)
        yield home
    finally:
        try:
            if _pid(ServicesConfig(home)) is not None:
                down(home)
        finally:
            shutil.rmtree(home, ignore_errors=True)
