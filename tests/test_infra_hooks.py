"""The azd postprovision hook (infra/hooks/) that creates the Key Vault secrets the app settings
reference: run with sh against a stand-in ``az`` that keeps a vault in a folder. It must create
exactly the absent secrets, in a form the app loads, and never replace one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.auth.tokens import TokenSigner
from tests.infra import INFRA
from tests.test_infra import SECRET_SETTINGS

HOOK_SH = INFRA / "hooks" / "postprovision.sh"
HOOK_PS1 = INFRA / "hooks" / "postprovision.ps1"

#: Stands in for the Azure CLI: the vault is a folder of files, each call is logged as JSON.
FAKE_AZ = """#!{python}
import json, os, pathlib, sys
state = pathlib.Path(os.environ["FAKE_AZ_STATE"])
args = sys.argv[1:]
with open(state / "calls", "a") as log:
    log.write(json.dumps(args) + "\\n")
def option(name):
    return args[args.index(name) + 1]
if args[:3] == ["keyvault", "secret", "list"]:
    denials = state / "denials"
    if denials.exists() and int(denials.read_text()) > 0:
        denials.write_text(str(int(denials.read_text()) - 1))
        sys.exit("ERROR: (Forbidden) Caller is not authorized")
    for secret in sorted((state / "vault").iterdir()):
        print(secret.name)
elif args[:3] == ["keyvault", "secret", "set"]:
    (state / "vault" / option("--name")).write_bytes(pathlib.Path(option("--file")).read_bytes())
elif args[:2] != ["functionapp", "restart"]:
    sys.exit(f"unexpected az call: {{args}}")
"""


class Hook:
    """One run of the sh hook against a fresh fake vault."""

    def __init__(self, tmp_path: Path) -> None:
        self.state = tmp_path
        self.vault = tmp_path / "vault"
        self.vault.mkdir()
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        az = bin_dir / "az"
        az.write_text(FAKE_AZ.format(python=sys.executable))
        az.chmod(0o755)
        self.env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_AZ_STATE": str(tmp_path),
            "KEY_VAULT_NAME": "kv-test",
            "AZURE_RESOURCE_GROUP": "rg-test",
            "AZURE_FUNCTION_APP_NAME": "myregistry",
            "KEY_VAULT_RETRY_SECONDS": "0",
        }

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(HOOK_SH)], env={**self.env, **env}, capture_output=True, text=True,
                              timeout=60, check=False)

    def calls(self) -> list[list[str]]:
        log = self.state / "calls"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def secrets(self) -> dict[str, str]:
        return {path.name: path.read_text() for path in self.vault.iterdir()}


@pytest.fixture
def hook(tmp_path: Path) -> Hook:
    return Hook(tmp_path)


def test_creates_a_signing_key_the_app_loads_and_restarts_the_app(hook: Hook) -> None:
    result = hook.run()
    assert result.returncode == 0, result.stderr
    secrets = hook.secrets()
    assert set(secrets) == {"token-signing-key"}  # no admin password while the admin user is off
    assert TokenSigner(secrets["token-signing-key"], "registry:test").current.algorithm == "ES256"
    restart = ["functionapp", "restart", "--resource-group", "rg-test", "--name", "myregistry", "--output", "none"]
    assert restart in hook.calls()
    # the secret goes through a file, never on a command line
    assert not any("BEGIN PRIVATE KEY" in arg for call in hook.calls() for arg in call)


def test_restarts_the_app_in_azds_subscription(hook: Hook) -> None:
    result = hook.run(AZURE_SUBSCRIPTION_ID="0000-sub")
    assert result.returncode == 0, result.stderr
    assert ["functionapp", "restart", "--subscription", "0000-sub", "--resource-group", "rg-test", "--name",
            "myregistry", "--output", "none"] in hook.calls()


def test_never_replaces_an_existing_secret(hook: Hook) -> None:
    (hook.vault / "token-signing-key").write_text("the key in use")
    (hook.vault / "admin-password").write_text("the password in use")
    result = hook.run(ADMIN_USER_ENABLED="true")
    assert result.returncode == 0, result.stderr
    assert hook.secrets() == {"token-signing-key": "the key in use", "admin-password": "the password in use"}
    assert [call[:3] for call in hook.calls()] == [["keyvault", "secret", "list"]]  # no set, no restart


def test_admin_passwords_are_created_only_with_the_admin_user(hook: Hook) -> None:
    assert hook.run(ADMIN_PASSWORD2_ENABLED="true").returncode == 0
    assert set(hook.secrets()) == {"token-signing-key"}
    result = hook.run(ADMIN_USER_ENABLED="True", ADMIN_PASSWORD2_ENABLED="true")
    assert result.returncode == 0, result.stderr
    secrets = hook.secrets()
    assert set(secrets) == {"token-signing-key", "admin-password", "admin-password2"}
    for name in ("admin-password", "admin-password2"):
        assert re.fullmatch(r"[A-Za-z0-9+/]{44}", secrets[name]), name  # 33 random bytes, no newline
    assert secrets["admin-password"] != secrets["admin-password2"]


def test_waits_for_the_role_assignment_to_reach_key_vault(hook: Hook) -> None:
    (hook.state / "denials").write_text("2")
    result = hook.run()
    assert result.returncode == 0, result.stderr
    assert "retrying" in result.stderr
    assert set(hook.secrets()) == {"token-signing-key"}


def test_gives_up_without_writing_when_the_vault_stays_closed(hook: Hook) -> None:
    (hook.state / "denials").write_text("99")
    result = hook.run(KEY_VAULT_ATTEMPTS="3")
    assert result.returncode == 1
    assert "Key Vault Secrets Officer" in result.stderr
    assert [call[:3] for call in hook.calls()] == [["keyvault", "secret", "list"]] * 3
    assert hook.secrets() == {}


def test_fails_without_a_vault_name(hook: Hook) -> None:
    result = hook.run(KEY_VAULT_NAME="")
    assert result.returncode != 0
    assert "KEY_VAULT_NAME" in result.stderr
    assert hook.calls() == []


def test_hooks_create_every_referenced_secret_but_the_previous_key() -> None:
    """The previous signing key is a copy an operator makes while rotating (docs/deploy.md)."""
    # SECRET_SETTINGS is what test_infra.py checks the Bicep references against
    expected = {secret for secret, _ in SECRET_SETTINGS.values()} - {"token-signing-key-previous"}
    sh = set(re.findall(r"^\s*create ([a-z0-9-]+) ", HOOK_SH.read_text(), re.MULTILINE))
    ps1 = set(re.findall(r"New-SecretIfAbsent '([a-z0-9-]+)'", HOOK_PS1.read_text()))
    assert sh == expected
    assert ps1 == expected


def test_azure_yaml_runs_the_hooks_after_provisioning() -> None:
    text = (INFRA.parent / "azure.yaml").read_text()
    block = text.split("\n  postprovision:\n", 1)[1].split("\n  postdeploy:", 1)[0]
    assert "run: infra/hooks/postprovision.sh" in block
    assert "run: infra/hooks/postprovision.ps1" in block
    assert os.access(HOOK_SH, os.X_OK)
