"""The settings mechanism: one declaration per setting, frozen groups per capability, read from the
environment with the bounds declared, and capability groups that shared.settings never imports."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.composition import SETTINGS, SETTINGS_GROUPS, load_settings
from shared.settings import CORE_GROUPS, RegistrySettings, Settings, SettingsError, SettingsGroup, env_names, setting
from shared.webhooks.settings import WebhookSettings

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = {"REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}


@dataclass(frozen=True)
class ExampleSettings(SettingsGroup):
    """A capability's group, as a capability package declares it."""

    title = "Example"

    enabled: bool = setting("EXAMPLE_ENABLED", True, "Whether the example runs.")
    per_minute: int = setting("EXAMPLE_PER_MINUTE", 60, "Calls a minute.", minimum=1, maximum=600)
    block_bytes: int = setting("EXAMPLE_BLOCK_MIB", 2 * 1024 * 1024, "Block size.", minimum=1, scale=1024 * 1024)
    mode: str = setting("EXAMPLE_MODE", "fast", "How.", choices=("fast", "safe"))
    hosts: tuple[str, ...] = setting("EXAMPLE_HOSTS", ("a", "b"), "Hosts.")
    key: str = setting("EXAMPLE_KEY", "", "A secret.", secret=True)


def test_a_group_reads_its_declared_settings_typed_with_their_defaults() -> None:
    assert ExampleSettings.from_env({}) == ExampleSettings(True, 60, 2 * 1024 * 1024, "fast", ("a", "b"), "")
    read = ExampleSettings.from_env({"EXAMPLE_ENABLED": "0", "EXAMPLE_PER_MINUTE": " 600 ", "EXAMPLE_BLOCK_MIB": "3",
                                     "EXAMPLE_MODE": "safe", "EXAMPLE_HOSTS": " x, ,y ", "EXAMPLE_KEY": "s3cret"})
    assert read == ExampleSettings(False, 600, 3 * 1024 * 1024, "safe", ("x", "y"), "s3cret")
    assert "s3cret" not in repr(read)
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.per_minute = 1  # type: ignore[misc]


@pytest.mark.parametrize(("env", "message"), [
    ({"EXAMPLE_ENABLED": "maybe"}, "setting EXAMPLE_ENABLED must be true or false, not 'maybe'"),
    ({"EXAMPLE_PER_MINUTE": "many"}, "setting EXAMPLE_PER_MINUTE must be an integer, not 'many'"),
    ({"EXAMPLE_PER_MINUTE": "0"}, "setting EXAMPLE_PER_MINUTE must be at least 1, not 0"),
    ({"EXAMPLE_PER_MINUTE": "601"}, "setting EXAMPLE_PER_MINUTE must be at most 600, not 601"),
    ({"EXAMPLE_BLOCK_MIB": "0"}, "setting EXAMPLE_BLOCK_MIB must be at least 1, not 0"),
    ({"EXAMPLE_MODE": "slow"}, "setting EXAMPLE_MODE must be one of fast, safe, not 'slow'"),
    ({"EXAMPLE_KEY": "@Microsoft.KeyVault(SecretUri=x)"}, "setting EXAMPLE_KEY is a Key Vault reference"),
])
def test_a_value_out_of_its_declared_bounds_is_refused_naming_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        ExampleSettings.from_env(env)
    assert str(refused.value).startswith(message)


def test_the_declarations_give_the_docs_their_default_text_and_bounds() -> None:
    declared = {d.env: d for d in ExampleSettings.declarations().values()}
    assert [(name, d.text_default, d.bounds) for name, d in declared.items()] == [
        ("EXAMPLE_ENABLED", "true", ""), ("EXAMPLE_PER_MINUTE", "60", "at least 1, at most 600"),
        ("EXAMPLE_BLOCK_MIB", "2", "at least 1"), ("EXAMPLE_MODE", "fast", "one of `fast`, `safe`"),
        ("EXAMPLE_HOSTS", "a,b", ""), ("EXAMPLE_KEY", "", ""),
    ]


def test_capability_groups_are_read_when_passed_and_only_then() -> None:
    settings = Settings.from_env({**EMULATOR, "EXAMPLE_PER_MINUTE": "5"}, [ExampleSettings])
    assert settings.group(ExampleSettings).per_minute == 5
    assert settings.group(RegistrySettings) is settings.registry
    assert settings.source == {**EMULATOR, "EXAMPLE_PER_MINUTE": "5"}
    with pytest.raises(LookupError, match="WebhookSettings"):
        settings.group(WebhookSettings)
    with pytest.raises(SettingsError, match="EXAMPLE_MODE"):
        Settings.from_env({**EMULATOR, "EXAMPLE_MODE": "x"}, [ExampleSettings])


def test_with_env_rereads_the_groups_it_changes_and_keeps_the_others() -> None:
    settings = load_settings({**EMULATOR, "REGISTRY_WEBHOOK_RETRY_MS": "10"})
    changed = settings.with_env(REGISTRY_WEBHOOK_ALLOW_PRIVATE="true", REGISTRY_ADMIN_ENABLED="true",
                                REGISTRY_ADMIN_PASSWORD="p")
    webhooks = changed.group(WebhookSettings)
    assert (webhooks.allow_private, webhooks.retry_ms) == (True, 10)
    assert changed.auth.admin_enabled and not settings.auth.admin_enabled
    assert changed.storage is settings.storage and changed.registry is settings.registry
    with pytest.raises(SettingsError, match="REGISTRY_NO_SUCH"):
        settings.with_env(REGISTRY_NO_SUCH="1")
    with pytest.raises(SettingsError, match="REGISTRY_ADMIN_PASSWORD is required"):
        settings.with_env(REGISTRY_ADMIN_ENABLED="true")


def test_a_setting_declared_in_two_groups_is_refused() -> None:
    @dataclass(frozen=True)
    class Clashing(SettingsGroup):
        retry: int = setting("REGISTRY_WEBHOOK_RETRY_MS", 1, "The same name as a webhook setting.")

    with pytest.raises(SettingsError, match="REGISTRY_WEBHOOK_RETRY_MS is declared twice"):
        env_names([WebhookSettings, Clashing])


def test_groups_switched_off_have_an_enabled_flag() -> None:
    settings = load_settings({**EMULATOR, "REGISTRY_BACKGROUND_JOBS": "true"})
    assert settings.jobs.enabled is True and settings.auth.enabled is True
    assert {g.__name__ for g in (*CORE_GROUPS, *SETTINGS_GROUPS) if "enabled" in g.declarations()} >= {
        "AuthSettings", "JobSettings"}


def test_the_settings_package_imports_no_capability() -> None:
    loaded = subprocess.run([sys.executable, "-c", "import json, sys, shared.settings; "
                             "print(json.dumps(sorted(m for m in sys.modules if m.startswith('shared.'))))"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert json.loads(loaded) == ["shared.settings", "shared.settings.core", "shared.settings.groups"]


def test_the_kill_after_commit_fault_is_no_setting_of_the_registry() -> None:
    assert "REGISTRY_TEST_KILL_AFTER_COMMIT" not in SETTINGS
    sources = [p for p in (ROOT / "shared").rglob("*.py") if "KILL_AFTER_COMMIT" in p.read_text()]
    assert sources == []
    assert "SIGKILL" not in (ROOT / "shared" / "events" / "outbox.py").read_text()
