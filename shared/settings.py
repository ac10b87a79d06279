"""Every app setting of the registry, read from the environment in one place.

The same names appear in ``local.settings.json.example`` and in the Bicep app settings; a
parity test keeps the three in step. Booleans are strict (``true``/``false``/``1``/``0``) and
a required setting that is missing or malformed raises :class:`SettingsError` naming it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

MiB = 1024 * 1024


class SettingsError(ValueError):
    """A setting is missing or malformed."""


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}

#: setting name -> one-line description; the README's settings table is built from the same text.
SETTINGS: dict[str, str] = {
    "REGISTRY_NAME": "Registry name; the login server in events is `<name>.azurecr.io`-style host of requests.",
    "REGISTRY_STORAGE_CONNECTION_STRING": "Storage connection string (`UseDevelopmentStorage=true` for Azurite). "
    "Leave empty in Azure to use the managed identity with the two endpoints below.",
    "REGISTRY_BLOB_ENDPOINT": "Blob service URL used with the managed identity, e.g. `https://acct.blob.core.windows.net`.",
    "REGISTRY_TABLE_ENDPOINT": "Table service URL used with the managed identity, e.g. `https://acct.table.core.windows.net`.",
    "REGISTRY_STORAGE_PREFIX": "Prefix of the blob container and table names (lowercase letters and digits).",
    "REGISTRY_BLOB_REDIRECT": "`true`: blob GETs answer 307 to a short-lived read-only SAS URL; "
    "`false`: the registry streams blobs itself.",
    "REGISTRY_SAS_TTL_SECONDS": "Lifetime of the SAS URLs that blob GETs redirect to.",
    "REGISTRY_UPLOAD_BLOCK_MIB": "Size of the blocks an upload is staged in (MiB); bounds the memory of one upload.",
    "REGISTRY_CHUNK_MIN_BYTES": "Smallest chunk clients are asked to PATCH (`OCI-Chunk-Min-Length`).",
    "REGISTRY_UPLOAD_TTL_HOURS": "Uploads untouched for this long are purged by the timer function.",
}


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"setting {name} must be true or false, not {raw!r}")


def _int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"setting {name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"setting {name} must be at least {minimum}, not {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """The registry's configuration, typed."""

    registry_name: str = "localregistry"
    storage_connection_string: str = ""
    blob_endpoint: str = ""
    table_endpoint: str = ""
    storage_prefix: str = "registry"
    blob_redirect: bool = True
    sas_ttl_seconds: int = 600
    upload_block_bytes: int = 8 * MiB
    chunk_min_bytes: int = 0
    upload_ttl_hours: int = 24

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ

        def get(name: str, default: str = "") -> str:
            return env.get(name, "").strip() or default

        settings = cls(
            registry_name=get("REGISTRY_NAME", cls.registry_name),
            storage_connection_string=get("REGISTRY_STORAGE_CONNECTION_STRING"),
            blob_endpoint=get("REGISTRY_BLOB_ENDPOINT"),
            table_endpoint=get("REGISTRY_TABLE_ENDPOINT"),
            storage_prefix=get("REGISTRY_STORAGE_PREFIX", cls.storage_prefix),
            blob_redirect=_bool("REGISTRY_BLOB_REDIRECT", get("REGISTRY_BLOB_REDIRECT", "true")),
            sas_ttl_seconds=_int("REGISTRY_SAS_TTL_SECONDS", get("REGISTRY_SAS_TTL_SECONDS", "600"), 60),
            upload_block_bytes=MiB * _int("REGISTRY_UPLOAD_BLOCK_MIB", get("REGISTRY_UPLOAD_BLOCK_MIB", "8"), 1),
            chunk_min_bytes=_int("REGISTRY_CHUNK_MIN_BYTES", get("REGISTRY_CHUNK_MIN_BYTES", "0"), 0),
            upload_ttl_hours=_int("REGISTRY_UPLOAD_TTL_HOURS", get("REGISTRY_UPLOAD_TTL_HOURS", "24"), 1),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise :class:`SettingsError` for a combination that cannot work."""
        if not re.fullmatch(r"[a-z][a-z0-9]{2,30}", self.storage_prefix):
            raise SettingsError(
                "setting REGISTRY_STORAGE_PREFIX must be 3-31 lowercase letters and digits, starting with a letter"
            )
        if not self.storage_connection_string and not (self.blob_endpoint and self.table_endpoint):
            raise SettingsError(
                "set REGISTRY_STORAGE_CONNECTION_STRING, or both REGISTRY_BLOB_ENDPOINT and REGISTRY_TABLE_ENDPOINT"
            )
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,48}[a-z0-9]", self.registry_name):
            raise SettingsError("setting REGISTRY_NAME must be 3-50 lowercase letters, digits and hyphens")
