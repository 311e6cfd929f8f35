"""The model registry: the one place the project talks to MLflow.

:class:`ModelRegistry`, a Dagster ``ConfigurableResource`` also used directly by the CLI, owns
tracking (experiments, runs, datasets, trial runs), the cost model logged **whole** as an MLflow
pyfunc (:mod:`pipelines.registry.cost_model_pyfunc`: the bundle folder as its artifact, the
serving signature of :data:`models.cost_bundle.SERVING_INPUTS`), loading it back by alias or
version, and the registry workflow below. Nothing outside this package imports ``mlflow``
(``tests/test_layering.py``).

Registry workflow: versions of ``bestex-cost-model``, aliases, gates and an audit trail.

Every trained cost model becomes a version of the registered model ``bestex-cost-model`` in the
MLflow registry (the project's SQLite tracking database under ``BESTEX_HOME/mlflow``). Versions
move through three aliases, never stages:

* ``challenger``: the newest registered version, set by :meth:`ModelRegistry.register`;
* ``champion``: the version in use, set only by :meth:`ModelRegistry.promote` (or a rollback);
* ``previous-champion``: the champion that the last promotion replaced, the target of
  :meth:`ModelRegistry.rollback`.

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
The training code passes these version tags to :meth:`ModelRegistry.register` (all values strings;
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
``audit.rolled_back_by``/``_at``/``_reason`` and ``audit.restored_by``/``_at``/``_reason``; a
version registered inside a Dagster run also gets ``dagster_root_run_id`` (the root of the run's
chain of re-executions), which makes registering again from the same chain, MLflow run and model
return that version instead of a duplicate (:meth:`ModelRegistry.register`).

:meth:`ModelRegistry.lineage` reads the contract back and proves that the holdout starts after the
last training label plus the embargo: ``holdout_start > train_max_t1 + embargo``.
"""

from __future__ import annotations

from pipelines.registry._audit import ACTIONS, AUDIT_COLUMNS, AUDIT_SCHEMA
from pipelines.registry._resource import ModelRegistry, default_registry
from pipelines.registry._tracking import MODEL_ARTIFACT, Run, serving_frame, serving_signature
from pipelines.registry._types import (
    CHALLENGER,
    CHAMPION,
    LINEAGE_TAGS,
    MODEL_NAME,
    PREVIOUS,
    ROOT_RUN_TAG,
    PromotionRefused,
    UnknownVersion,
    VersionInfo,
    current_user,
)

__all__ = [
    "ACTIONS",
    "AUDIT_COLUMNS",
    "AUDIT_SCHEMA",
    "CHALLENGER",
    "CHAMPION",
    "LINEAGE_TAGS",
    "MODEL_ARTIFACT",
    "MODEL_NAME",
    "PREVIOUS",
    "ROOT_RUN_TAG",
    "ModelRegistry",
    "PromotionRefused",
    "Run",
    "UnknownVersion",
    "VersionInfo",
    "current_user",
    "default_registry",
    "serving_frame",
    "serving_signature",
]
