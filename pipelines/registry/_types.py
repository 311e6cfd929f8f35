"""Names, errors and records of the registry workflow (no MLflow here)."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import UTC, datetime

MODEL_NAME = "bestex-cost-model"
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous-champion"
ROOT_RUN_TAG = "dagster_root_run_id"
"""Version tag: the root of the Dagster run chain that registered it (re-executions share it)."""

LINEAGE_TAGS = (
    "train_start", "train_end", "train_max_t1", "holdout_start", "holdout_end", "embargo_s",
    "holdout_purged_orders", "dataset_digest_train", "dataset_digest_holdout", "source_partitions", "code_version",
    "dagster_run_id", "cv_scheme", "mlflow_run_id",
)
# run tags the training code already sets on the MLflow run; used when a version tag is missing
_RUN_TAG_FALLBACK = ("code_version", "dagster_run_id", "cv_scheme")


class UnknownVersion(LookupError, ValueError):
    """No such version of the registered model (the message lists the versions there are)."""


class PromotionRefused(Exception):
    """A promotion refused because the version's gates failed and no override was given."""

    def __init__(self, version: str, reasons: list[str]):
        self.version = version
        self.reasons = list(reasons)
        listed = " | ".join(self.reasons) or "no gate results recorded"
        super().__init__(
            f"promotion of {MODEL_NAME} version {version} refused, gates failed: {listed} "
            "(promote with an override reason to force it; the override is recorded)"
        )


@dataclass(frozen=True)
class VersionInfo:
    """One registered version: its MLflow run, aliases, tags and creation time (UTC)."""

    version: str
    run_id: str
    aliases: tuple[str, ...]
    tags: dict[str, str]
    created: datetime

    @property
    def gates_passed(self) -> bool:
        return self.tags.get("gates_passed", "").lower() == "true"

    @property
    def gate_failures(self) -> list[str]:
        raw = self.tags.get("gate_failures", "")
        if "\n" not in raw and "; " in raw:  # written before one-per-line (best effort)
            return [s.strip() for s in raw.split("; ") if s.strip()]
        return [s.strip() for s in raw.splitlines() if s.strip()]


def current_user(user: str | None = None) -> str:
    """``user``, else ``$BESTEX_USER``, else the login name (``"unknown"`` when there is none)."""
    if user:
        return user
    env = os.environ.get("BESTEX_USER")
    if env:
        return env
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _now() -> datetime:
    return datetime.now(UTC)


def _require_reason(reason: str | None, what: str) -> str:
    if reason is None or not str(reason).strip():
        raise ValueError(f"{what} needs a non-empty reason (who, when and why are audited)")
    return str(reason).strip()
