"""The model registry workflow: versions of ``bestex-cost-model``, aliases, gates and an audit trail.

Every trained cost model becomes a version of the registered model ``bestex-cost-model`` in the
MLflow registry (the project's SQLite tracking database under ``BESTEX_HOME/mlflow``). Versions
move through three aliases, never stages:

* ``challenger``: the newest registered version, set by :meth:`Registry.register`;
* ``champion``: the version in use, set only by :meth:`Registry.promote` (or a rollback);
* ``previous-champion``: the champion that the last promotion replaced, the target of
  :meth:`Registry.rollback`.

Promotion is refused (:class:`PromotionRefused`, audit action ``refused``) when the version's
promotion gates failed, unless an override reason is given; the override is recorded (version
tag ``audit.override_reason``, audit action ``override``). Rollback is one step and needs a
reason: the previous champion becomes champion again, the rolled-back version loses ``champion``
and the ``previous-champion`` alias is *removed*, so a second rollback is refused instead of
flipping between two versions; to go back again, promote that version explicitly (with a
reason). Every action is kept twice: as ``audit.*`` version tags and as a row of the audit table
(a Parquet file, rewritten atomically on every append) with the columns :data:`AUDIT_COLUMNS`.

Tag contract
------------
The training code passes these version tags to :meth:`Registry.register` (all values strings;
timestamps ISO 8601, read as UTC when they carry no offset):

``train_start``, ``train_end``
    first and last ``decision_ts`` of the training set.
``train_max_t1``
    the largest label end time ``t1`` of the training set (after purging).
``holdout_start``, ``holdout_end``
    first and last ``decision_ts`` of the holdout set.
``embargo_s``
    the embargo between training labels and the holdout, in seconds as a float string
    (``"10800.0"`` for three hours); ``"0"`` when there is none.
``holdout_purged_orders`` (optional)
    orders before the holdout left out of training because their label window reached the
    embargo before ``holdout_start`` (the purge at the train/holdout boundary).
``dataset_digest_train``, ``dataset_digest_holdout``
    content digests of the two data sets (the digests logged as the run's MLflow inputs).
``source_partitions``
    JSON list of the source asset keys / partitions the training set was built from, e.g.
    ``["raw/synth/quotes", "raw/synth/orders/2025-01-02"]``.
``code_version``
    the git SHA of the training code.
``dagster_run_id``
    the Dagster run that trained the model.
``cv_scheme``
    the cross-validation scheme, e.g. ``PurgedKFold(n_splits=5, embargo_pct=0.01)``.
``mlflow_run_id``
    the MLflow run that logged the model (set from ``run_id`` when absent).

The registry itself sets ``gates_passed`` (``"true"``/``"false"``), ``gate_failures`` (one line per
failed gate, each ending in a newline: a gate's detail may itself contain ``;``), ``audit.registered_by``/``audit.registered_at``, and on later actions
``audit.promoted_by``/``_at``, ``audit.promotion_reason``, ``audit.override_reason``,
``audit.rolled_back_by``/``_at``/``_reason`` and ``audit.restored_by``/``_at``/``_reason``.

:meth:`Registry.lineage` reads the contract back and proves that the holdout starts after the
last training label plus the embargo: ``holdout_start > train_max_t1 + embargo``.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bestex import settings

MODEL_NAME = "bestex-cost-model"
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous-champion"

ACTIONS = ("register", "promote", "override", "rollback", "refused")

AUDIT_SCHEMA = pa.schema([
    ("ts", pa.timestamp("us", tz="UTC")),
    ("action", pa.string()),
    ("version", pa.string()),
    ("previous_champion", pa.string()),
    ("user", pa.string()),
    ("reason", pa.string()),
    ("override_reason", pa.string()),
    ("gates_passed", pa.bool_()),
    ("gate_failures", pa.string()),
    ("run_id", pa.string()),
])
AUDIT_COLUMNS = tuple(AUDIT_SCHEMA.names)

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


class Registry:
    """The registry workflow for one registered model over an ``MlflowClient``.

    ``tracking_uri`` is used as both tracking and registry URI (the project uses one SQLite
    database); ``audit_path`` is the Parquet audit table.
    """

    def __init__(self, tracking_uri: str, audit_path: Path, *, model_name: str = MODEL_NAME):
        os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        from mlflow import MlflowClient

        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.tracking_uri = tracking_uri
        self.audit_path = Path(audit_path)
        self.name = model_name
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    # ---------------------------------------------------------------- reading

    def _aliases(self) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            rm = self.client.get_registered_model(self.name)
        except MlflowException as e:
            if e.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise
        return {alias: str(v) for alias, v in rm.aliases.items()}

    def _version_numbers(self) -> list[str]:
        mvs = self.client.search_model_versions(f"name = '{self.name}'")
        return sorted((str(mv.version) for mv in mvs), key=int)

    def _info(self, mv: Any, aliases: dict[str, str] | None = None) -> VersionInfo:
        v = str(mv.version)
        if aliases is None:
            names = tuple(mv.aliases or ())
        else:
            names = tuple(a for a, ver in sorted(aliases.items()) if ver == v)
        return VersionInfo(
            version=v,
            run_id=mv.run_id or "",
            aliases=names,
            tags={k: str(val) for k, val in (mv.tags or {}).items()},
            created=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC),
        )

    def version(self, v: str | int) -> VersionInfo:
        """Version ``v``; :class:`UnknownVersion` naming the existing versions when there is none."""
        from mlflow.exceptions import MlflowException

        v = str(v).strip()
        if v.isdigit():
            try:
                mv = self.client.get_model_version(self.name, v)
            except MlflowException as e:
                if e.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    raise
            else:
                return self._info(mv, self._aliases())
        existing = ", ".join(self._version_numbers()) or "(none registered)"
        raise UnknownVersion(f"model {self.name} has no version {v}; versions: {existing}")

    def _by_alias(self, alias: str) -> VersionInfo | None:
        v = self._aliases().get(alias)
        return None if v is None else self.version(v)

    def champion(self) -> VersionInfo | None:
        return self._by_alias(CHAMPION)

    def challenger(self) -> VersionInfo | None:
        return self._by_alias(CHALLENGER)

    def previous(self) -> VersionInfo | None:
        return self._by_alias(PREVIOUS)

    def versions(self) -> pd.DataFrame:
        """One row per version, oldest first, with its aliases, gates and provenance tags."""
        cols = ["version", "created", "run_id", "aliases", "gates_passed", "gate_failures",
                "code_version", "dagster_run_id", "promoted_by", "promoted_at"]
        aliases = self._aliases()
        rows = []
        for mv in self.client.search_model_versions(f"name = '{self.name}'"):
            info = self._info(mv, aliases)
            rows.append({
                "version": info.version, "created": info.created, "run_id": info.run_id,
                "aliases": ",".join(info.aliases), "gates_passed": info.gates_passed,
                "gate_failures": info.tags.get("gate_failures", ""),
                "code_version": info.tags.get("code_version", ""),
                "dagster_run_id": info.tags.get("dagster_run_id", ""),
                "promoted_by": info.tags.get("audit.promoted_by", ""),
                "promoted_at": info.tags.get("audit.promoted_at", ""),
            })
        if not rows:
            return pd.DataFrame(columns=cols)
        df = pd.DataFrame(rows, columns=cols)
        return df.sort_values("version", key=lambda s: s.astype(int)).reset_index(drop=True)

    def audit(self) -> pd.DataFrame:
        """The audit table, oldest first (an empty frame with the columns when there is none)."""
        if not self.audit_path.exists():
            return AUDIT_SCHEMA.empty_table().to_pandas()
        return pq.read_table(self.audit_path, schema=AUDIT_SCHEMA).to_pandas()

    # ---------------------------------------------------------------- writing

    def _audit(self, *, action: str, version: str, user: str, reason: str | None = None,
               previous_champion: str | None = None, override_reason: str | None = None,
               gates_passed: bool, gate_failures: str = "", run_id: str = "",
               ts: datetime | None = None) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}; one of {', '.join(ACTIONS)}")
        row = pa.Table.from_pylist([{
            "ts": ts or _now(), "action": action, "version": version,
            "previous_champion": previous_champion, "user": user, "reason": reason,
            "override_reason": override_reason, "gates_passed": gates_passed,
            "gate_failures": gate_failures, "run_id": run_id,
        }], schema=AUDIT_SCHEMA)
        self.audit_path.parent.mkdir(parents=True, exist_ok=True)
        table = row
        if self.audit_path.exists():
            table = pa.concat_tables([pq.read_table(self.audit_path, schema=AUDIT_SCHEMA), row])
        tmp = self.audit_path.with_name(self.audit_path.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, self.audit_path)

    def _tag(self, version: str, tags: dict[str, str]) -> None:
        for k, val in tags.items():
            self.client.set_model_version_tag(self.name, version, k, str(val))

    def _resolve_source(self, run_id: str, artifact_path: str,
                        model_uri: str | None) -> tuple[str, str | None]:
        """``(source, model_id)`` of the model logged in ``run_id``.

        MLflow 3 stores a model logged with ``log_model(name=...)`` as a *logged model*
        (``models:/m-...``), not under the run's artifacts. Its artifact location is used as the
        version's source, so that registering never depends on the process-wide tracking URI.
        """
        if model_uri and model_uri.startswith("models:/m-"):
            model_id = model_uri.removeprefix("models:/").split("/")[0]
            lm = self.client.get_logged_model(model_id)
            if lm.source_run_id and lm.source_run_id != run_id:
                raise ValueError(f"{model_uri} was logged by run {lm.source_run_id}, not {run_id}")
            return lm.artifact_location, model_id
        if model_uri and not model_uri.startswith("runs:/"):
            return model_uri, None
        run = self.client.get_run(run_id)
        outputs = run.outputs.model_outputs if run.outputs else []
        found = []
        for out in sorted(outputs, key=lambda o: o.step):
            lm = self.client.get_logged_model(out.model_id)
            if lm.name == artifact_path:
                found.append(lm)
        if found:
            return found[-1].artifact_location, found[-1].model_id
        listed = {a.path for a in self.client.list_artifacts(run_id, artifact_path)}
        if f"{artifact_path}/MLmodel" in listed:  # MLflow 2 layout: the model in run artifacts
            return f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}", None
        raise LookupError(f"run {run_id} logged no model named {artifact_path!r}")

    def register(self, run_id: str, artifact_path: str, *, tags: dict[str, str],
                 gates_passed: bool, gate_failures: list[str], user: str | None = None,
                 model_uri: str | None = None) -> VersionInfo:
        """Register the model logged in ``run_id`` as a new version; it becomes ``challenger``.

        ``model_uri`` (what ``log_model`` returned, ``models:/m-...``) is preferred; without it
        the model named ``artifact_path`` in the run is used. ``tags`` follow the module's tag
        contract; the gate results and the registration audit tags are added.
        """
        from mlflow.exceptions import MlflowException

        user = current_user(user)
        source, model_id = self._resolve_source(run_id, artifact_path, model_uri)
        try:
            self.client.create_registered_model(
                self.name, description="bestex pre-trade cost model (mean + quantile band)")
        except MlflowException as e:
            if e.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        # one line per gate, each ending in a newline (which also marks the format: tags
        # written before it joined the gates with "; ")
        failures = "".join(str(f).replace("\n", " ") + "\n" for f in gate_failures)
        now = _now()
        all_tags = {str(k): str(v) for k, v in tags.items()}
        all_tags.setdefault("mlflow_run_id", run_id)
        all_tags.update({
            "gates_passed": "true" if gates_passed else "false",
            "gate_failures": failures,
            "audit.registered_by": user,
            "audit.registered_at": now.isoformat(),
        })
        mv = self.client.create_model_version(self.name, source, run_id=run_id, tags=all_tags,
                                              model_id=model_id)
        v = str(mv.version)
        self.client.set_registered_model_alias(self.name, CHALLENGER, v)
        self._audit(action="register", version=v, user=user, reason="registered as challenger",
                    gates_passed=bool(gates_passed), gate_failures=failures, run_id=run_id,
                    ts=now)
        return self.version(v)

    def promote(self, version: str, *, reason: str, user: str | None = None,
                override: str | None = None) -> VersionInfo:
        """Make ``version`` the champion; the current champion becomes ``previous-champion``.

        Refused (:class:`PromotionRefused`, audited as ``refused``) when the version's gates did
        not pass, unless ``override`` gives a reason to force it (audited as ``override``).
        """
        reason = _require_reason(reason, "promotion")
        if override is not None:
            override = _require_reason(override, "an override")
        user = current_user(user)
        info = self.version(version)
        v = info.version
        champ = self.champion()
        if champ is not None and champ.version == v:
            raise ValueError(f"version {v} of {self.name} is already the champion")
        failures = info.tags.get("gate_failures", "")
        if not info.gates_passed and override is None:
            self._audit(action="refused", version=v, user=user, reason=reason,
                        previous_champion=champ.version if champ else None,
                        gates_passed=False, gate_failures=failures, run_id=info.run_id)
            reasons = info.gate_failures or [
                f"gates_passed is {info.tags.get('gates_passed', '(not recorded)')!r}"]
            raise PromotionRefused(v, reasons)

        now = _now()
        if champ is not None:
            self.client.set_registered_model_alias(self.name, PREVIOUS, champ.version)
        self.client.set_registered_model_alias(self.name, CHAMPION, v)
        aliases = self._aliases()
        if aliases.get(CHALLENGER) == v:
            self.client.delete_registered_model_alias(self.name, CHALLENGER)
        if aliases.get(PREVIOUS) == v:  # only possible when there was no champion to demote
            self.client.delete_registered_model_alias(self.name, PREVIOUS)
        tags = {"audit.promoted_by": user, "audit.promoted_at": now.isoformat(),
                "audit.promotion_reason": reason}
        if override is not None:
            tags["audit.override_reason"] = override
        self._tag(v, tags)
        overrode = override is not None and not info.gates_passed
        self._audit(action="override" if overrode else "promote", version=v, user=user,
                    reason=reason, previous_champion=champ.version if champ else None,
                    override_reason=override, gates_passed=info.gates_passed,
                    gate_failures=failures, run_id=info.run_id, ts=now)
        return self.version(v)

    def rollback(self, *, reason: str, user: str | None = None) -> VersionInfo:
        """Restore ``previous-champion`` as champion; returns the restored version.

        The rolled-back version loses ``champion`` and is tagged ``audit.rolled_back_*``; the
        ``previous-champion`` alias is removed, so rollback is one step: a second one is refused
        rather than flipping back. In the audit row, ``version`` is the restored champion and
        ``previous_champion`` the rolled-back one.
        """
        reason = _require_reason(reason, "rollback")
        user = current_user(user)
        prev = self.previous()
        if prev is None:
            raise ValueError(
                f"nothing to roll back to: {self.name} has no {PREVIOUS!r} alias (rollback is "
                "one step and removes it; promote a version explicitly instead)"
            )
        champ = self.champion()
        now = _now()
        self.client.set_registered_model_alias(self.name, CHAMPION, prev.version)
        self.client.delete_registered_model_alias(self.name, PREVIOUS)
        if champ is not None and champ.version != prev.version:
            self._tag(champ.version, {"audit.rolled_back_by": user,
                                      "audit.rolled_back_at": now.isoformat(),
                                      "audit.rolled_back_reason": reason})
        self._tag(prev.version, {"audit.restored_by": user, "audit.restored_at": now.isoformat(),
                                 "audit.restored_reason": reason})
        self._audit(action="rollback", version=prev.version, user=user, reason=reason,
                    previous_champion=champ.version if champ else None,
                    gates_passed=prev.gates_passed,
                    gate_failures=prev.tags.get("gate_failures", ""), run_id=prev.run_id, ts=now)
        return self.version(prev.version)

    # ---------------------------------------------------------------- lineage

    def lineage(self, version: str | int) -> dict[str, Any]:
        """The chain from a version back to its source partitions, with the embargo proof.

        Keys: ``model``, ``mlflow_run``, ``dagster_run_id``, ``code_version``, ``cv_scheme``,
        ``datasets`` (train / holdout: digest and windows), ``logged_datasets`` (the run's MLflow
        inputs), ``source_partitions``, ``embargo_s`` and ``proof`` (see :func:`embargo_proof`).
        """
        from mlflow.exceptions import MlflowException

        info = self.version(version)
        tags = dict(info.tags)
        run_id = tags.get("mlflow_run_id") or info.run_id
        mlflow_run: dict[str, Any] = {"run_id": run_id}
        logged: list[dict[str, str]] = []
        if run_id:
            try:
                run = self.client.get_run(run_id)
            except MlflowException:
                mlflow_run["missing"] = True
            else:
                mlflow_run.update({
                    "experiment_id": run.info.experiment_id, "run_name": run.info.run_name,
                    "status": run.info.status,
                    "start_time": datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC),
                })
                for k in _RUN_TAG_FALLBACK:
                    if not tags.get(k) and run.data.tags.get(k):
                        tags[k] = run.data.tags[k]
                for di in (run.inputs.dataset_inputs if run.inputs else []):
                    itags = {t.key: t.value for t in di.tags}
                    logged.append({"name": di.dataset.name, "digest": di.dataset.digest,
                                   "context": itags.get("mlflow.data.context", ""),
                                   "time_min": itags.get("time_min", ""),
                                   "time_max": itags.get("time_max", "")})
        return {
            "model": {"name": self.name, "version": info.version, "aliases": list(info.aliases),
                      "created": info.created, "gates_passed": info.gates_passed,
                      "gate_failures": info.gate_failures,
                      "uri": f"models:/{self.name}/{info.version}"},
            "mlflow_run": mlflow_run,
            "dagster_run_id": tags.get("dagster_run_id", ""),
            "code_version": tags.get("code_version", ""),
            "cv_scheme": tags.get("cv_scheme", ""),
            "datasets": {
                "train": {"digest": tags.get("dataset_digest_train", ""),
                          "start": tags.get("train_start", ""), "end": tags.get("train_end", ""),
                          "max_t1": tags.get("train_max_t1", ""),
                          "purged": tags.get("holdout_purged_orders", "")},
                "holdout": {"digest": tags.get("dataset_digest_holdout", ""),
                            "start": tags.get("holdout_start", ""),
                            "end": tags.get("holdout_end", "")},
            },
            "logged_datasets": logged,
            "source_partitions": _partitions(tags.get("source_partitions", "")),
            "embargo_s": tags.get("embargo_s", ""),
            "proof": embargo_proof(tags),
        }


def _partitions(raw: str) -> list[str]:
    if not raw:
        return []
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return [p.strip() for p in raw.split(",") if p.strip()]
    return [str(p) for p in parsed] if isinstance(parsed, list) else [str(parsed)]


def _ts(raw: str) -> pd.Timestamp:
    ts = pd.Timestamp(raw)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def embargo_proof(tags: dict[str, str]) -> dict[str, Any]:
    """``holdout_start > train_max_t1 + embargo`` from the tag contract.

    Returns ``holds`` (the inequality), ``holdout_after_train_end`` (``holdout_start >
    train_end``), the timestamps, the ``bound`` (``train_max_t1 + embargo``), the ``margin``
    (``holdout_start - bound``, a ``Timedelta``) and ``margin_s``; ``missing`` lists absent or
    unreadable tags, in which case ``holds`` is False and the margin is None.
    """
    need = ("holdout_start", "train_max_t1", "embargo_s")
    missing = [k for k in need if not tags.get(k)]
    out: dict[str, Any] = {"holds": False, "holdout_after_train_end": None, "holdout_start": None,
                           "train_max_t1": None, "embargo": None, "bound": None, "margin": None,
                           "margin_s": None, "missing": missing}
    if missing:
        return out
    try:
        hs, t1 = _ts(tags["holdout_start"]), _ts(tags["train_max_t1"])
        emb = pd.Timedelta(seconds=float(tags["embargo_s"]))
    except (ValueError, TypeError) as e:
        out["missing"] = [f"unreadable window tags: {e}"]
        return out
    bound = t1 + emb
    margin = hs - bound
    out.update({"holds": bool(hs > bound), "holdout_start": hs, "train_max_t1": t1,
                "embargo": emb, "bound": bound, "margin": margin,
                "margin_s": margin.total_seconds()})
    if tags.get("train_end"):
        try:
            out["holdout_after_train_end"] = bool(hs > _ts(tags["train_end"]))
        except ValueError:
            pass
    return out


def _fmt_ts(ts: Any) -> str:
    if not ts:
        return "?"
    try:
        t = _ts(str(ts))
    except ValueError:
        return str(ts)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_lineage(info: dict[str, Any]) -> str:
    """The chain printed by ``bestex lineage VERSION``, ending with the ``PROOF`` line."""
    m, run, ds = info["model"], info["mlflow_run"], info["datasets"]
    aliases = f" [{', '.join(m['aliases'])}]" if m["aliases"] else ""
    gates = "passed" if m["gates_passed"] else f"FAILED ({' | '.join(m['gate_failures']) or '?'})"
    lines = [f"model          {m['name']} v{m['version']}{aliases}  {m['uri']}  "
             f"created {_fmt_ts(str(m['created']))}  gates {gates}"]
    run_bits = f"{run.get('run_id') or '?'}"
    if run.get("missing"):
        run_bits += " (run not found)"
    elif "experiment_id" in run:
        run_bits += (f"  experiment {run['experiment_id']}  run '{run['run_name']}'  "
                     f"{run['status']}")
    lines.append(f"  <- MLflow run {run_bits}")
    lines.append(f"  <- Dagster run {info['dagster_run_id'] or '?'}  code {info['code_version'] or '?'}"
                 f"  cv {info['cv_scheme'] or '?'}")
    lines.append("  <- datasets")
    tr, ho = ds["train"], ds["holdout"]
    lines.append(f"       train    digest {tr['digest'] or '?'}  decision_ts "
                 f"{_fmt_ts(tr['start'])} .. {_fmt_ts(tr['end'])}  max t1 {_fmt_ts(tr['max_t1'])}")
    if tr.get("purged"):
        lines.append(f"       purged   {tr['purged']} orders before the holdout whose label "
                     "(decision .. t1) ended within the embargo of holdout_start: in neither set")
    lines.append(f"       holdout  digest {ho['digest'] or '?'}  decision_ts "
                 f"{_fmt_ts(ho['start'])} .. {_fmt_ts(ho['end'])}")
    for d in info.get("logged_datasets", []):
        lines.append(f"       logged   {d['name']} ({d['context'] or '?'}) digest {d['digest']}"
                     f"  {d['time_min'] or '?'} .. {d['time_max'] or '?'}")
    lines.append("  <- source partitions")
    lines.extend(f"       {p}" for p in info["source_partitions"] or ["?"])
    p = info["proof"]
    if p["missing"]:
        lines.append(f"PROOF holdout_start > train max t1 + embargo: UNPROVEN, missing "
                     f"{', '.join(p['missing'])}")
    else:
        verdict = "OK" if p["holds"] else "FAIL"
        lines.append(f"PROOF holdout_start {_fmt_ts(p['holdout_start'])} > train max t1 "
                     f"{_fmt_ts(p['train_max_t1'])} + embargo {p['embargo']} = "
                     f"{_fmt_ts(p['bound'])} : {verdict} (margin {p['margin']})")
    return "\n".join(lines)


def default_registry() -> Registry:
    """The registry under ``BESTEX_HOME``: the same SQLite database as ``MLflowResource``."""
    home = settings.home()
    root = home / "mlflow"
    return Registry(f"sqlite:///{root / 'mlflow.db'}", home / "registry" / "audit.parquet")
