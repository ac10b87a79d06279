"""Unit tests of the settings module and the storage key layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.composition import SETTINGS
from shared.settings import Settings, SettingsError
from shared.storage import layout

ROOT = Path(__file__).resolve().parents[2]


def test_settings_read_and_validate() -> None:
    settings = Settings.from_env({"REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
                                  "REGISTRY_BLOB_REDIRECT": "False", "REGISTRY_UPLOAD_BLOCK_MIB": "4"})
    assert settings.registry.blob_redirect is False
    assert settings.registry.upload_block_bytes == 4 * 1024 * 1024


@pytest.mark.parametrize("env,needle", [
    ({}, "REGISTRY_STORAGE_CONNECTION_STRING"),
    ({"REGISTRY_STORAGE_CONNECTION_STRING": "x", "REGISTRY_BLOB_REDIRECT": "maybe"}, "REGISTRY_BLOB_REDIRECT"),
    ({"REGISTRY_STORAGE_CONNECTION_STRING": "x", "REGISTRY_SAS_TTL_SECONDS": "ten"}, "REGISTRY_SAS_TTL_SECONDS"),
    ({"REGISTRY_STORAGE_CONNECTION_STRING": "x", "REGISTRY_STORAGE_PREFIX": "Bad-Prefix"}, "REGISTRY_STORAGE_PREFIX"),
    ({"REGISTRY_BLOB_ENDPOINT": "https://a.blob.core.windows.net"}, "REGISTRY_TABLE_ENDPOINT"),
])
def test_bad_settings_name_the_setting(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        Settings.from_env(env)


@pytest.mark.parametrize("name", ["REGISTRY_ADMIN_PASSWORD", "REGISTRY_TOKEN_SIGNING_KEY", "REGISTRY_NAME"])
def test_unresolved_key_vault_reference_refuses_to_start(name: str) -> None:
    env = {"REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", "REGISTRY_ADMIN_ENABLED": "true",
           "REGISTRY_ADMIN_PASSWORD": "s3cret", name: "@Microsoft.KeyVault(VaultName=kv-x;SecretName=admin-password)"}
    with pytest.raises(SettingsError, match=f"{name} is a Key Vault reference"):
        Settings.from_env(env)


def test_local_settings_example_lists_every_setting() -> None:
    values = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    assert {k for k in values if k.startswith("REGISTRY_")} == set(SETTINGS)


def test_repository_keys_sort_like_names_and_round_trip() -> None:
    names = ["a", "a-b", "a.b", "a/b", "a/b/c", "a0", "a9/x", "a_b", "ab", "library/ubuntu22"]
    keys = [layout.encode_repository(n) for n in names]
    assert sorted(keys) == keys == [layout.encode_repository(n) for n in sorted(names)]
    assert [layout.decode_repository(k) for k in keys] == names
    assert all(not set(k) & set("/\\#?") for k in keys)
