"""The app's import rules: the import-linter contracts hold, and state has no widgets."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", ["state", "common", "workers", "services"])
def test_state_and_workers_import_no_widgets(package: str) -> None:
    offenders = {str(p.relative_to(ROOT)): sorted(n for n in _imports(p) if "QtWidgets" in n)
                 for p in (ROOT / "app" / package).rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_feature_imports_the_main_window_or_another_feature() -> None:
    features = ROOT / "app" / "features"
    for path in features.rglob("*.py"):
        own = path.relative_to(features).parts[0]
        for name in _imports(path):
            assert not name.startswith("app.shell"), f"{path} imports {name}"
            if name.startswith("app.features.") and name != "app.features.host":
                assert name.split(".")[2] == own, f"{path} imports {name}"


def test_the_import_linter_contracts_hold() -> None:
    pytest.importorskip("importlinter")
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("lint-imports is not installed next to this Python")
    run = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
