"""Every app setting of the registry, read from the environment in one place.

The same names appear in ``local.settings.json.example`` and in the Bicep app settings; a
parity test keeps the three in step. Booleans are strict (``true``/``false``/``1``/``0``) and
a required setting that is missing or malformed raises :class:`SettingsError` naming it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

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
    "REGISTRY_AUTH_ENABLED": "`false` turns authentication off; refused unless storage is the local emulator (tests).",
    "REGISTRY_LOGIN_SERVER": "Host name clients use (token audience and `service`); empty: the request's Host.",
    "REGISTRY_TOKEN_SIGNING_KEY": "PEM private key (RSA or EC P-256) signing registry tokens; a Key Vault reference "
    "in Azure. Empty only with the local emulator (a key is generated per process).",
    "REGISTRY_TOKEN_PREVIOUS_KEY": "PEM of the previous signing key, accepted while its tokens live (rotation).",
    "REGISTRY_ACCESS_TOKEN_TTL_SECONDS": "Lifetime of registry access tokens.",
    "REGISTRY_REFRESH_TOKEN_TTL_SECONDS": "Lifetime of registry refresh tokens (exchange flow).",
    "REGISTRY_ADMIN_ENABLED": "`true` enables the admin user (username REGISTRY_NAME).",
    "REGISTRY_ADMIN_PASSWORD": "First password of the admin user (a Key Vault reference in Azure).",
    "REGISTRY_ADMIN_PASSWORD2": "Second password of the admin user, for rotation; may be empty.",
    "REGISTRY_ENTRA_AUTHORITY": "Entra ID authority whose `<authority>/<tenant>/discovery/v2.0/keys` signs tokens.",
    "REGISTRY_ENTRA_TENANTS": "Comma-separated tenant ids whose Entra ID tokens are accepted; empty disables exchange.",
    "REGISTRY_ENTRA_AUDIENCES": "Comma-separated audiences accepted in Entra ID tokens.",
}

_DEFAULT_AUDIENCES = "https://management.core.windows.net/,https://management.azure.com/,https://containerregistry.azure.net"


def is_emulator(connection_string: str) -> bool:
    """True when ``connection_string`` points at the local storage emulator (Azurite)."""
    lowered = connection_string.lower()
    return "usedevelopmentstorage=true" in lowered or "accountname=devstoreaccount1" in lowered


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


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
    storage_connection_string: str = field(default="", repr=False)
    blob_endpoint: str = ""
    table_endpoint: str = ""
    storage_prefix: str = "registry"
    blob_redirect: bool = True
    sas_ttl_seconds: int = 600
    upload_block_bytes: int = 8 * MiB
    chunk_min_bytes: int = 0
    upload_ttl_hours: int = 24
    auth_enabled: bool = True
    login_server: str = ""
    token_signing_key: str = field(default="", repr=False)
    token_previous_key: str = field(default="", repr=False)
    access_token_ttl_seconds: int = 600
    refresh_token_ttl_seconds: int = 10800
    admin_enabled: bool = False
    admin_password: str = field(default="", repr=False)
    admin_password2: str = field(default="", repr=False)
    entra_authority: str = "https://login.microsoftonline.com"
    entra_tenants: tuple[str, ...] = ()
    entra_audiences: tuple[str, ...] = _csv(_DEFAULT_AUDIENCES)

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
            auth_enabled=_bool("REGISTRY_AUTH_ENABLED", get("REGISTRY_AUTH_ENABLED", "true")),
            login_server=get("REGISTRY_LOGIN_SERVER"),
            token_signing_key=get("REGISTRY_TOKEN_SIGNING_KEY"),
            token_previous_key=get("REGISTRY_TOKEN_PREVIOUS_KEY"),
            access_token_ttl_seconds=_int(
                "REGISTRY_ACCESS_TOKEN_TTL_SECONDS", get("REGISTRY_ACCESS_TOKEN_TTL_SECONDS", "600"), 30),
            refresh_token_ttl_seconds=_int(
                "REGISTRY_REFRESH_TOKEN_TTL_SECONDS", get("REGISTRY_REFRESH_TOKEN_TTL_SECONDS", "10800"), 60),
            admin_enabled=_bool("REGISTRY_ADMIN_ENABLED", get("REGISTRY_ADMIN_ENABLED", "false")),
            admin_password=get("REGISTRY_ADMIN_PASSWORD"),
            admin_password2=get("REGISTRY_ADMIN_PASSWORD2"),
            entra_authority=get("REGISTRY_ENTRA_AUTHORITY", cls.entra_authority).rstrip("/"),
            entra_tenants=_csv(get("REGISTRY_ENTRA_TENANTS")),
            entra_audiences=_csv(get("REGISTRY_ENTRA_AUDIENCES", _DEFAULT_AUDIENCES)),
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
        emulator = is_emulator(self.storage_connection_string)
        if not self.auth_enabled and not emulator:
            raise SettingsError("setting REGISTRY_AUTH_ENABLED may be false only with the local storage emulator")
        if self.auth_enabled and not self.token_signing_key and not emulator:
            raise SettingsError("setting REGISTRY_TOKEN_SIGNING_KEY is required")
        if self.admin_enabled and not (self.admin_password or self.admin_password2):
            raise SettingsError("setting REGISTRY_ADMIN_PASSWORD is required when REGISTRY_ADMIN_ENABLED is true")
