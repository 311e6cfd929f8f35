"""The strict stack of docs/architecture.md, checked on every import, function-level included.

Layers, bottom to top (a module may import its own layer and the layers below, never above)::

    0 leaf        validation.contracts, validation.values, validation.errors, bestex.settings,
                  bestex.distributed (the Dask engine: it imports nothing of the project)
    1 validation  the pure checks: cleansing, quarantine, splitters, leakage, overfitting, gates
    2 models      pure ML and market models
    3 validation  stages over the models (stress, walk-forward)
    4 sources     readers, above the cleansing rules
    5 assets      Dagster assets: thin adapters
    6 pipelines   definitions, jobs, resources, the registry
    7 cli         bestex.cli, bestex.lineage

and four rules beside the ranks: only ``pipelines/registry/`` imports ``mlflow``; only
``assets/`` and ``pipelines/`` import ``dagster``; only ``bestex.distributed`` imports ``dask``
or ``distributed`` (the pure layers take a ``mapper``); outside ``sources/`` only the ``sources``
package itself (its ``ingest`` API) is imported, never a reader module; and the CLI uses the
public API of ``pipelines`` (no underscore names or modules).
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("validation", "models", "sources", "assets", "pipelines", "bestex")
LEAF = {"validation.contracts", "validation.values", "validation.errors", "bestex.settings",
        "bestex", "bestex.distributed"}
VALIDATION_STAGES = ("validation.stress", "validation._stress", "validation.walk_forward_stage",
                     "validation.policy_", "validation.paper_", "validation.drift_",
                     "validation.ensemble_")
RANK = {"leaf": 0, "validation": 1, "models": 2, "validation stage": 3, "sources": 4,
        "assets": 5, "pipelines": 6, "cli": 7}


def layer(module: str) -> str:
    """The layer of a project module (``models.features`` -> ``models``)."""
    if module in LEAF:
        return "leaf"
    top = module.split(".")[0]
    if top == "validation":
        return "validation stage" if module.startswith(VALIDATION_STAGES) else "validation"
    if top == "bestex":
        return "cli"
    return top


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """Every ``(line, module, names)`` imported anywhere in ``source`` (functions included)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, ()) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module, tuple(a.name for a in node.names)))
    return out


def violations(module: str, source: str) -> list[str]:
    """The stack rules ``module`` (with text ``source``) breaks, one line each."""
    me = layer(module)
    bad = []
    for line, target, names in imports(source):
        top = target.split(".")[0]
        where = f"{module}:{line} imports {target}"
        if top == "mlflow" and not module.startswith("pipelines.registry"):
            bad.append(f"{where}: only pipelines.registry imports mlflow")
        if top == "dagster" and me not in ("assets", "pipelines"):
            bad.append(f"{where}: only assets and pipelines import dagster")
        if top in ("dask", "distributed") and module != "bestex.distributed":
            bad.append(f"{where}: only bestex.distributed imports the Dask engine")
        if top not in PROJECT:
            continue
        them = layer(target)
        if RANK[them] > RANK[me]:
            bad.append(f"{where}: layer '{me}' may not import layer '{them}' above it")
        if top == "sources" and me != "sources" and target != "sources":
            bad.append(f"{where}: use the sources API (sources.ingest), not a reader module")
        if me == "cli" and top == "pipelines" and (
                any(p.startswith("_") for p in target.split("."))
                or any(n.startswith("_") for n in names)):
            bad.append(f"{where}: the CLI uses the public API of pipelines")
    return bad


def _project_files() -> list[Path]:
    return sorted(p for pkg in PROJECT for p in (ROOT / pkg).rglob("*.py"))


def test_every_project_module_has_a_layer():
    for p in _project_files():
        assert layer(_module(p)) in RANK, p


def test_the_stack_holds_on_every_import():
    found = [v for p in _project_files() for v in violations(_module(p), p.read_text())]
    assert found == [], "\n".join(found)


def test_contracts_module_is_a_leaf():
    """The contracts import only the value rules, and those nothing of the project."""
    used = {t for _, t, _ in imports((ROOT / "validation" / "contracts.py").read_text())
            if t.split(".")[0] in PROJECT}
    assert used <= {"validation.values"}, f"validation/contracts.py imports {used}"
    used = {t for _, t, _ in imports((ROOT / "validation" / "values.py").read_text())
            if t.split(".")[0] in PROJECT}
    assert used == set(), f"validation/values.py must import nothing of the project: {used}"


@pytest.mark.parametrize(("module", "planted", "rule"), [
    # a function-level import from a pure layer up into orchestration
    ("models.features", "def f():\n    from pipelines.registry import default_registry\n",
     "layer 'models' may not import layer 'pipelines'"),
    ("validation.gates", "def f():\n    import sources\n",
     "layer 'validation' may not import layer 'sources'"),
    ("validation.stress", "def f():\n    from sources.lobster import read_lobster\n",
     "not a reader module"),
    ("assets.learning", "def f():\n    from pipelines.demo import run_demo\n",
     "layer 'assets' may not import layer 'pipelines'"),
    ("models.cost_bundle", "def f():\n    import mlflow\n", "only pipelines.registry"),
    ("validation.leakage", "def f():\n    import dagster as dg\n", "only assets and pipelines"),
    ("validation.stress", "def f():\n    from distributed import Client\n",
     "only bestex.distributed"),
    ("bestex.cli", "def f():\n    from pipelines.demo import _instance\n", "public API"),
    ("sources.lobster", "def f():\n    from assets.sources import lobster_assets\n",
     "layer 'sources' may not import layer 'assets'"),
])
def test_a_planted_import_across_layers_fails(module, planted, rule):
    path = ROOT / (module.replace(".", "/") + ".py")
    text = path.read_text() + "\n\n" + textwrap.dedent(planted)
    found = violations(module, text)
    assert any(rule in v for v in found), found
    assert violations(module, path.read_text()) == []  # the module as it is passes
