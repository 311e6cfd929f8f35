"""The registry workflow: register, promote (gated), override, rollback, lineage (see the
package docstring of :mod:`pipelines.registry` for the aliases and the tag contract)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException

from models.faults import fault_point
from pipelines.registry._audit import append_audit, read_audit
from pipelines.registry._types import (
    _RUN_TAG_FALLBACK,
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    ROOT_RUN_TAG,
    PromotionRefused,
    UnknownVersion,
    VersionInfo,
    _now,
    _require_reason,
    current_user,
)
from validation.leakage import embargo_proof


class _Versions:
    """Versions, aliases, promotion, rollback and lineage of one registered model (mixin of
    :class:`pipelines.registry.ModelRegistry`, which provides ``client``, ``name``,
    ``audit_file`` and ``dagster_root_run_id``)."""

    # ---------------------------------------------------------------- reading

    def _aliases(self) -> dict[str, str]:
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
        return read_audit(self.audit_file)

    # ---------------------------------------------------------------- writing

    def _audit(self, **row: Any) -> None:
        row.setdefault("ts", _now())
        append_audit(self.audit_file, **row)

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
                 model_uri: str | None = None, root_run_id: str | None = None) -> VersionInfo:
        """Register the model logged in ``run_id`` as a new version; it becomes ``challenger``.

        ``model_uri`` (what ``log_model`` returned, ``models:/m-...``) is preferred; without it
        the model named ``artifact_path`` in the run is used. ``tags`` follow the module's tag
        contract; the gate results and the registration audit tags are added.

        Idempotent within a Dagster run and its re-executions: ``root_run_id`` (default: the
        root run of the Dagster run using the resource, None outside one) is kept as the tag
        ``dagster_root_run_id``, and when a version of the same root run, MLflow run and model
        exists already (a step killed after registering and re-executed), that version is
        returned, its registration completed (the ``challenger`` alias, the audit row) where
        the kill cut it short, instead of a duplicate.
        """
        user = current_user(user)
        root = root_run_id if root_run_id is not None else self.dagster_root_run_id
        source, model_id = self._resolve_source(run_id, artifact_path, model_uri)
        try:
            self.client.create_registered_model(
                self.name, description="bestex pre-trade cost model (mean + quantile band)")
        except MlflowException as e:
            if e.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        if root:
            done = self._registered(root, run_id, source)
            if done is not None:
                return self._complete_registration(done)
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
        if root:
            all_tags[ROOT_RUN_TAG] = root
        mv = self.client.create_model_version(self.name, source, run_id=run_id, tags=all_tags,
                                              model_id=model_id)
        v = str(mv.version)
        fault_point("registry.registered")  # the re-execution drill (models.faults)
        self.client.set_registered_model_alias(self.name, CHALLENGER, v)
        self._audit(action="register", version=v, user=user, reason="registered as challenger",
                    gates_passed=bool(gates_passed), gate_failures=failures, run_id=run_id,
                    ts=now)
        return self.version(v)

    def _registered(self, root: str, run_id: str, source: str) -> VersionInfo | None:
        """The version registered by the Dagster run chain ``root`` from ``run_id``'s model
        ``source``, if any (the oldest, should there be several)."""
        found = [mv for mv in self.client.search_model_versions(
                     f"name = '{self.name}' and run_id = '{run_id}'")
                 if (mv.tags or {}).get(ROOT_RUN_TAG) == root and mv.source == source]
        if not found:
            return None
        return self.version(min(found, key=lambda mv: int(mv.version)).version)

    def _complete_registration(self, info: VersionInfo) -> VersionInfo:
        """Finish a registration that a killed step cut short after the version was created:
        the ``challenger`` alias (unless a later version or the champion alias moved on) and
        the audit row, as the first attempt recorded them in the version's tags."""
        v, aliases = info.version, self._aliases()
        challenger = aliases.get(CHALLENGER)
        if (CHAMPION not in info.aliases and PREVIOUS not in info.aliases
                and (challenger is None or int(challenger) < int(v))):
            self.client.set_registered_model_alias(self.name, CHALLENGER, v)
        audit = self.audit()
        if not ((audit["action"] == "register") & (audit["version"] == v)).any():
            at = info.tags.get("audit.registered_at")
            user = info.tags.get("audit.registered_by") or current_user()
            self._audit(action="register", version=v, user=user,
                        reason="registered as challenger", gates_passed=info.gates_passed,
                        gate_failures=info.tags.get("gate_failures", ""), run_id=info.run_id,
                        ts=datetime.fromisoformat(at) if at else _now())
        return self.version(v)

    def promote(self, version: str, *, reason: str, user: str | None = None,
                override: str | None = None, run_key: str | None = None) -> VersionInfo:
        """Make ``version`` the champion; the current champion becomes ``previous-champion``.

        Refused (:class:`PromotionRefused`, audited as ``refused``) when the version's gates did
        not pass, unless ``override`` gives a reason to force it (audited as ``override``).

        ``run_key`` (the Dagster root run of the promote job) makes a re-execution of a
        promotion whose worker died half-way finish it instead of failing: the version is
        tagged with the key before the aliases move, so a call with the same key that finds
        the version already champion writes only what the dead worker had not (the promotion
        tags, the audit row) and returns it. Any other call on the champion is refused.
        """
        reason = _require_reason(reason, "promotion")
        if override is not None:
            override = _require_reason(override, "an override")
        user = current_user(user)
        info = self.version(version)
        v = info.version
        champ = self.champion()
        if champ is not None and champ.version == v:
            if run_key is not None and info.tags.get("audit.promotion_run") == run_key:
                return self._finish_promotion(info, reason=reason, user=user, override=override)
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
        if run_key is not None:  # before any alias moves: a re-execution knows it was ours
            self._tag(v, {"audit.promotion_run": run_key,
                          "audit.promotion_started_at": now.isoformat(),
                          "audit.promotion_previous": champ.version if champ else ""})
        if champ is not None:
            self.client.set_registered_model_alias(self.name, PREVIOUS, champ.version)
        self.client.set_registered_model_alias(self.name, CHAMPION, v)
        fault_point("registry.promoted")  # the re-execution drill (models.faults)
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

    def _finish_promotion(self, info: VersionInfo, *, reason: str, user: str,
                          override: str | None) -> VersionInfo:
        """The rest of a promotion its worker left half done (see :meth:`promote`)."""
        v = info.version
        aliases = self._aliases()
        if aliases.get(CHALLENGER) == v:
            self.client.delete_registered_model_alias(self.name, CHALLENGER)
        if aliases.get(PREVIOUS) == v:
            self.client.delete_registered_model_alias(self.name, PREVIOUS)
        started = info.tags.get("audit.promotion_started_at", "")
        tags = {"audit.promoted_by": user, "audit.promoted_at": started,
                "audit.promotion_reason": reason}
        if override is not None:
            tags["audit.override_reason"] = override
        self._tag(v, {k: val for k, val in tags.items() if k not in info.tags})
        audit = self.audit()
        since = pd.Timestamp(started) if started else pd.Timestamp.min.tz_localize("UTC")
        ts = pd.to_datetime(audit["ts"], utc=True) if len(audit) else audit["ts"]
        done = (audit["action"].isin(["promote", "override"]) & (audit["version"] == v)
                & (ts >= since)).any()
        if not done:
            overrode = override is not None and not info.gates_passed
            prev = info.tags.get("audit.promotion_previous") or None
            self._audit(action="override" if overrode else "promote", version=v, user=user,
                        reason=reason, previous_champion=prev, override_reason=override,
                        gates_passed=info.gates_passed,
                        gate_failures=info.tags.get("gate_failures", ""), run_id=info.run_id,
                        ts=since if started else _now())
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
