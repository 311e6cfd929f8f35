"""Dependencies point one way: pure layers never import dagster or mlflow; contracts are a leaf."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = ("validation", "models", "sources")
FORBIDDEN = ("dagster", "mlflow")
PROJECT = ("validation", "models", "sources", "assets", "pipelines", "bestex")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PURE)
def test_pure_layers_do_not_import_orchestration(package):
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & set(FORBIDDEN))
        for p in (ROOT / package).rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"pure layer imports orchestration: {offenders}"


def test_contracts_module_is_a_leaf():
    used = _imports(ROOT / "validation" / "contracts.py") & set(PROJECT)
    assert used == set(), f"validation/contracts.py must import nothing of the project, got {used}"
