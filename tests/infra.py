"""Reading the Bicep under ``infra/`` from tests: the tools venv, the parsed trees, and helpers to
find declarations in pycep-parser's JSON.

pycep-parser and checkov live in ``.venv-tools`` (``make setup``), not in the app's venv, so the
trees come from ``scripts/parse_bicep.py`` run there. pycep writes a Bicep identifier and a string
literal alike as a plain string; the helpers only rely on names, keys and literal values.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
TOOLS_BIN = ROOT / ".venv-tools" / "bin"


def tool(name: str) -> Path:
    """Path of an executable of the tools venv; fails (never skips) when it is not installed."""
    path = TOOLS_BIN / name
    assert path.exists(), f"{path} is missing: run `make setup` (it installs requirements-tools.txt)"
    return path


def bicep_files() -> list[Path]:
    """Every Bicep file of the deployment."""
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parse_all() -> tuple[dict[str, Any], int, str]:
    """``({relative path: tree}, exit status, stderr)`` of parsing every Bicep file with pycep."""
    paths = [str(path.relative_to(ROOT)) for path in bicep_files()]
    result = subprocess.run(
        [str(tool("python")), "-m", "scripts.parse_bicep", *paths],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    return json.loads(result.stdout or "{}"), result.returncode, result.stderr


def tree(relative_path: str) -> dict[str, Any]:
    """The parsed tree of one Bicep file, e.g. ``infra/main.bicep``."""
    trees, _, stderr = parse_all()
    assert relative_path in trees, f"{relative_path} did not parse: {stderr}"
    parsed: dict[str, Any] = trees[relative_path]
    return parsed


def variable(relative_path: str, name: str) -> Any:
    """The value of a ``var`` declared in a Bicep file."""
    variables = tree(relative_path)["variables"]
    assert name in variables, f"{relative_path} declares no variable {name}"
    return variables[name]["value"]


def resource(relative_path: str, name: str) -> dict[str, Any]:
    """A ``resource`` declaration (its type, api_version and config) by symbolic name."""
    resources = tree(relative_path)["resources"]
    assert name in resources, f"{relative_path} declares no resource {name}"
    declaration: dict[str, Any] = resources[name]
    return declaration


def module_params(relative_path: str, name: str) -> dict[str, Any]:
    """The ``params`` a file passes to one of its ``module`` declarations (looped or not)."""
    config = tree(relative_path)["modules"][name]["config"]
    params: dict[str, Any] = config.get("config", config)["params"]
    return params


def body(declaration: dict[str, Any]) -> dict[str, Any]:
    """The body of a resource, looking through a ``[for ...: ...]`` or ``if (...)`` wrapper."""
    config: dict[str, Any] = declaration["config"]
    if "config" in config and ("loop_type" in config or "condition" in config):
        inner: dict[str, Any] = config["config"]
        return inner
    return config
