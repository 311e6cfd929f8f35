"""Where bestex keeps its state and finds its data.

* ``BESTEX_HOME`` (default ``./.bestex``): Dagster home, MLflow database and artifacts, the Parquet
  lake, Optuna storage.
* ``BESTEX_DATA`` (default ``../shared/data`` relative to the project root): the real data sets.
* ``BESTEX_PROFILE`` (``local``, the default, or ``services``): where the Dagster instance, the
  MLflow tracking store and the Optuna studies live — files under ``BESTEX_HOME``, or the
  PostgreSQL server of ``bestex services up`` (``BESTEX_HOME/services``). Nothing else changes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """The state directory (created on first use)."""
    path = Path(os.environ.get("BESTEX_HOME", PROJECT_ROOT / ".bestex")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def lake() -> Path:
    """The Parquet lake under ``BESTEX_HOME``."""
    path = home() / "lake"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path | None:
    """The real-data folder, or ``None`` when it is not there.

    ``BESTEX_DATA`` wins; otherwise ``../shared/data`` beside the project root.
    """
    env = os.environ.get("BESTEX_DATA")
    path = Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"
    return path.resolve() if path.is_dir() else None


def require_data_dir() -> Path:
    """The real-data folder; raise ``FileNotFoundError`` with the fix when it is missing."""
    path = data_dir()
    if path is None:
        raise FileNotFoundError(
            "real data not found: set BESTEX_DATA or place the shared data at "
            f"{PROJECT_ROOT.parent / 'shared' / 'data'}"
        )
    return path


def landing_dir() -> Path:
    """The landing folder for a user's own Parquet/CSV tables.

    ``BESTEX_LANDING`` wins; otherwise ``BESTEX_HOME/landing``. It may not exist.
    """
    env = os.environ.get("BESTEX_LANDING")
    return Path(env).resolve() if env else home() / "landing"


PROFILE_ENV = "BESTEX_PROFILE"
PROFILES = ("local", "services")


def profile() -> Literal["local", "services"]:
    """The backend profile from ``BESTEX_PROFILE``: ``local`` (default) or ``services``."""
    value = os.environ.get(PROFILE_ENV, "local").strip() or "local"
    if value not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={value!r} is not a profile; choose one of "
                         f"{', '.join(PROFILES)}")
    return value  # type: ignore[return-value]


def service_credentials(root: Path | None = None) -> dict:
    """The services' credentials (``BESTEX_HOME/services/credentials.json``: user, password,
    host, port); ``FileNotFoundError`` with the fix before the first ``bestex services up``."""
    path = (root if root is not None else home()) / "services" / "credentials.json"
    if not path.is_file():
        raise FileNotFoundError(f"no services credentials at {path}: run `bestex services up` "
                                f"(or `make services`) first, or unset {PROFILE_ENV}")
    return json.loads(path.read_text())


def service_url(db: str, root: Path | None = None) -> str:
    """SQLAlchemy URL of the services' database ``db``
    (``postgresql+psycopg2://user:password@127.0.0.1:port/db``)."""
    c = service_credentials(root)
    return f"postgresql+psycopg2://{c['user']}:{c['password']}@{c['host']}:{c['port']}/{db}"


def optuna_storage() -> str | Path:
    """Where Optuna keeps its studies: a journal file under ``BESTEX_HOME/optuna`` (local), or
    the services' ``bestex_optuna`` database (services)."""
    if profile() == "services":
        return service_url("bestex_optuna")
    path = home() / "optuna"
    path.mkdir(parents=True, exist_ok=True)
    return path / "journal.log"
