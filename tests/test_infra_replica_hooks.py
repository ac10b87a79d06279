"""The azd hooks with replica regions (infra/hooks/): postdeploy publishes the package azd built to
every replica region's app, and postprovision restarts every region's app when it created a
secret. Run with sh against stand-in ``az`` and ``azd`` commands that log their calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra import INFRA
from tests.test_infra_hooks import Hook

POSTDEPLOY_SH = INFRA / "hooks" / "postdeploy.sh"

#: Stands in for az and azd: logs each call (with the content of a --src file) and makes packages.
FAKE_CLI = """#!{python}
import json, os, pathlib, sys
args = sys.argv[1:]
entry = {{"tool": pathlib.Path(sys.argv[0]).name, "args": args}}
if "--src" in args:
    entry["src"] = pathlib.Path(args[args.index("--src") + 1]).read_text()
if entry["tool"] == "azd" and args[:1] == ["package"]:
    pathlib.Path(args[args.index("--output-path") + 1]).write_text("package of " + args[1])
with open(os.environ["FAKE_CLI_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\\n")
"""


class Deploy:
    """Runs the postdeploy hook with fake az and azd."""

    def __init__(self, tmp_path: Path) -> None:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for tool in ("az", "azd"):
            path = bin_dir / tool
            path.write_text(FAKE_CLI.format(python=sys.executable))
            path.chmod(0o755)
        self.log = tmp_path / "calls"
        self.env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_CLI_LOG": str(self.log),
                    "AZURE_RESOURCE_GROUP": "rg-test"}

    def run(self, **env: str) -> list[dict[str, Any]]:
        result = subprocess.run(["sh", str(POSTDEPLOY_SH)], env={**self.env, **env}, capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def deploy(tmp_path: Path) -> Deploy:
    return Deploy(tmp_path)


def test_postdeploy_without_replicas_only_enables_the_event_subscriptions(deploy: Deploy) -> None:
    assert deploy.run() == [{"tool": "azd", "args": ["env", "set", "EVENT_SUBSCRIPTIONS_ENABLED", "true"]}]


def test_postdeploy_publishes_one_package_to_every_replica_app(deploy: Deploy) -> None:
    calls = deploy.run(REPLICA_FUNCTION_APP_NAMES="myregistry-eastus myregistry-southeastasia",
                       AZURE_SUBSCRIPTION_ID="0000-sub")
    assert calls[0] == {"tool": "azd", "args": ["env", "set", "EVENT_SUBSCRIPTIONS_ENABLED", "true"]}
    packaging = [c for c in calls if c["tool"] == "azd" and c["args"][0] == "package"]
    assert len(packaging) == 1 and packaging[0]["args"][1] == "registry"
    published = [c for c in calls if c["tool"] == "az"]
    assert [c["args"][c["args"].index("--name") + 1] for c in published] == [
        "myregistry-eastus", "myregistry-southeastasia"]
    for call in published:
        args = call["args"]
        assert args[:4] == ["functionapp", "deployment", "source", "config-zip"]
        assert ["--subscription", "0000-sub"] == args[4:6]
        assert "--build-remote" in args and "rg-test" in args
        assert call["src"] == "package of registry"  # the package azd built, still there when published


def test_postprovision_restarts_every_region_app_after_creating_a_secret(tmp_path: Path) -> None:
    hook = Hook(tmp_path)
    result = hook.run(REPLICA_FUNCTION_APP_NAMES="myregistry-eastus myregistry-southeastasia")
    assert result.returncode == 0, result.stderr
    restarted = [call[call.index("--name") + 1] for call in hook.calls() if call[:2] == ["functionapp", "restart"]]
    assert restarted == ["myregistry", "myregistry-eastus", "myregistry-southeastasia"]


def test_azure_yaml_runs_the_postdeploy_hooks() -> None:
    text = (INFRA.parent / "azure.yaml").read_text()
    block = text.split("\n  postdeploy:\n", 1)[1]
    assert "run: infra/hooks/postdeploy.sh" in block
    assert "run: infra/hooks/postdeploy.ps1" in block
    assert os.access(POSTDEPLOY_SH, os.X_OK)
    # the Bicep output the hooks read
    assert "output REPLICA_FUNCTION_APP_NAMES string" in (INFRA / "main.bicep").read_text()
