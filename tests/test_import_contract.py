"""The import contract (``.importlinter``): the layers of the design, and no import cycles. It holds
for the code as it is, and breaks when one upward import or one cycle is added to a copy of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
PACKAGES = ("shared", "functions", "scripts", "bench")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINT_IMPORTS, "--no-cache", "--config", str(root / ".importlinter")], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=120)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The project's packages and contract, copied."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "results"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def _append(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n\n" + code + "\n")


def test_the_code_keeps_the_import_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_layers(copy: Path) -> None:
    assert _lint(copy).returncode == 0
    # Storage reaching up into the HTTP layer, hidden inside a function.
    _append(copy / "shared/storage/layout.py", "def _upward() -> None:\n    from shared.api import routes  # noqa\n")
    result = _lint(copy)
    assert result.returncode == 1
    assert "Layers: each imports only what lies below it BROKEN" in result.stdout
    assert "shared.storage.layout -> shared.api.routes" in result.stdout


def test_a_domain_package_importing_a_capability_breaks_the_layers(copy: Path) -> None:
    _append(copy / "shared/registry/manifests.py", "from shared.webhooks import capability  # noqa: E402,F401")
    result = _lint(copy)
    assert result.returncode == 1
    assert "shared.registry.manifests -> shared.webhooks.capability" in result.stdout


def test_a_cycle_within_a_layer_breaks_the_contract(copy: Path) -> None:
    # The local Event Grid imports the envelopes; an envelope module importing it back is a cycle.
    _append(copy / "shared/events/envelope.py", "def _cycle() -> None:\n    from shared.events import local  # noqa\n")
    result = _lint(copy)
    assert result.returncode == 1
    assert "No import cycles among the modules and packages of any package BROKEN" in result.stdout
    assert "No cycles are allowed in shared.events." in result.stdout
    assert "- .local -> .envelope (1 import)" in result.stdout
