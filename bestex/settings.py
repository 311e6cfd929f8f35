"""Where bestex keeps its state and finds its data.

* ``BESTEX_HOME`` (default ``./.bestex``): Dagster home, MLflow database and artifacts, the Parquet
  lake, Optuna storage.
* ``BESTEX_DATA`` (default ``../shared/data`` relative to the project root): the real data sets.
"""

from __future__ import annotations

import os
from pathlib import Path

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
