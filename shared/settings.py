"""Every app setting of the registry, read from the environment in one place.

The same names appear in ``local.settings.json.example`` and in the Bicep app settings; a
parity test keeps the three in step. Booleans are strict (``true``/``false``/``1``/``0``) and
a required setting that is missing or malformed raises :class:`SettingsError` naming it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
    "REGISTRY_QUEUE_ENDPOINT": "Queue service URL used with the managed identity (webhook deliveries), e.g. "
    "`https://acct.queue.core.windows.net`. Empty: REGISTRY_BLOB_ENDPOINT's account.",
    "REGISTRY_STORAGE_PREFIX": "Prefix of the blob container and table names (lowercase letters and digits).",
    "REGISTRY_BLOB_REDIRECT": "`true`: blob GETs answer 307 to a short-lived read-only SAS URL; "
    "`false`: the registry streams blobs itself.",
    "REGISTRY_SAS_TTL_SECONDS": "Lifetime of the SAS URLs that blob GETs redirect to.",
    "REGISTRY_UPLOAD_BLOCK_MIB": "Size of the blocks an upload is staged in (MiB); bounds the memory of one upload.",
    "REGISTRY_CHUNK_MIN_BYTES": "Smallest chunk clients are asked to PATCH (`OCI-Chunk-Min-Length`).",
    "REGISTRY_UPLOAD_TTL_HOURS": "Uploads untouched for this long are purged by the timer function.",
    # Events (shared/events, shared/webhooks)
    "REGISTRY_LOCATION": "Azure region reported as `location` in event data, e.g. `westus`.",
    "REGISTRY_RESOURCE_ID": "Resource id of the registry: `topic` of Event Grid events and `source` of CloudEvents. "
    "Empty: a placeholder id built from REGISTRY_NAME.",
    "REGISTRY_EVENTGRID_ENDPOINT": "Event Grid topic endpoint events are published to. "
    "Empty: the local Event Grid delivers them (make run, func start, tests).",
    "REGISTRY_EVENTGRID_KEY": "Access key of the topic (`aeg-sas-key`); empty: `DefaultAzureCredential`.",
    "REGISTRY_EVENTS_SCHEMA": "`EventGridSchema` or `CloudEventSchemaV1_0`: the schema events are published in.",
    "REGISTRY_EVENTS_FUNCTIONS_URL": "Local Event Grid only: base URL of a `func start` host; its functions are "
    "called through `/runtime/webhooks/eventgrid?functionName=`. Empty: called in-process.",
    "REGISTRY_EVENTS_SUBSCRIBER_URLS": "Local Event Grid only: comma-separated external subscriber URLs, "
    "validated with Event Grid's handshake and sent every event.",
    "REGISTRY_EVENTS_MAX_ATTEMPTS": "Local Event Grid only: delivery attempts per subscription before dead-lettering.",
    "REGISTRY_EVENTS_RETRY_MS": "Local Event Grid only: first retry delay (ms); doubles per attempt, at most 60 s.",
    "REGISTRY_OUTBOX_GRACE_SECONDS": "The republisher leaves outbox rows younger than this to the request "
    "that wrote them.",
    "REGISTRY_OUTBOX_SWEEP_SECONDS": "Republish the outbox from the web process every N seconds (make run); "
    "0: only the timer function does.",
    "REGISTRY_WEBHOOK_MAX_ATTEMPTS": "Attempts per webhook delivery (the first plus retries); after the last the "
    "delivery is dead-lettered, listed and re-deliverable (admin API, CLI).",
    "REGISTRY_WEBHOOK_RETRY_MS": "Delay before the first webhook retry (ms, whole seconds: it is a queue message's "
    "visibility timeout); doubles per attempt up to REGISTRY_WEBHOOK_RETRY_MAX_SECONDS.",
    "REGISTRY_WEBHOOK_RETRY_MAX_SECONDS": "Longest delay between two webhook attempts. With the defaults (30 attempts, "
    "30 s doubling to 1 h) a delivery is retried for about 23 hours.",
    "REGISTRY_WEBHOOK_TIMEOUT_SECONDS": "Timeout of one webhook call (connect to last byte).",
    "REGISTRY_WEBHOOK_ALLOW_PRIVATE": "`true`: webhooks may call loopback, link-local and private addresses "
    "(tests, local networks). Never in production.",
    "REGISTRY_BACKGROUND_JOBS": "`true`: the web process also runs the timer functions and the webhook queue "
    "consumer on their schedules (make run, uvicorn); `false` where the Functions host runs them.",
    "REGISTRY_TEST_KILL_AFTER_COMMIT": "Tests only: the process kills itself (SIGKILL) right after a manifest "
    "commit, before publishing its event, to prove the outbox loses nothing.",
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
    "REGISTRY_OWNER_PRINCIPALS": "Comma-separated Entra ID object ids (users, groups, service principals) holding "
    "the Owner role by configuration, so a new registry can be administered before any role is assigned.",
    "REGISTRY_ENTRA_AUDIENCES": "Comma-separated audiences accepted in Entra ID tokens.",
}

#: How an unresolved Key Vault reference reads (lowercase), e.g. ``@Microsoft.KeyVault(VaultName=…)``.
_KEY_VAULT_REFERENCE = "@microsoft.keyvault("

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


EVENT_SCHEMAS = ("EventGridSchema", "CloudEventSchemaV1_0")


def _event_settings(get: Callable[..., str]) -> dict[str, Any]:
    """The event and webhook settings (kept apart so ``from_env`` stays readable)."""
    schema = get("REGISTRY_EVENTS_SCHEMA", "EventGridSchema")
    if schema not in EVENT_SCHEMAS:
        raise SettingsError(f"setting REGISTRY_EVENTS_SCHEMA must be one of {', '.join(EVENT_SCHEMAS)}, not {schema!r}")
    return {
        "location": get("REGISTRY_LOCATION", "local"),
        "resource_id": get("REGISTRY_RESOURCE_ID"),
        "eventgrid_endpoint": get("REGISTRY_EVENTGRID_ENDPOINT"),
        "eventgrid_key": get("REGISTRY_EVENTGRID_KEY"),
        "events_schema": schema,
        "events_functions_url": get("REGISTRY_EVENTS_FUNCTIONS_URL").rstrip("/"),
        "events_subscriber_urls": tuple(
            u.strip() for u in get("REGISTRY_EVENTS_SUBSCRIBER_URLS").split(",") if u.strip()
        ),
        "events_max_attempts": _int("REGISTRY_EVENTS_MAX_ATTEMPTS", get("REGISTRY_EVENTS_MAX_ATTEMPTS", "8"), 1),
        "events_retry_ms": _int("REGISTRY_EVENTS_RETRY_MS", get("REGISTRY_EVENTS_RETRY_MS", "1000"), 0),
        "outbox_grace_seconds": _int("REGISTRY_OUTBOX_GRACE_SECONDS", get("REGISTRY_OUTBOX_GRACE_SECONDS", "60"), 0),
        "outbox_sweep_seconds": _int("REGISTRY_OUTBOX_SWEEP_SECONDS", get("REGISTRY_OUTBOX_SWEEP_SECONDS", "0"), 0),
        "webhook_max_attempts": _int("REGISTRY_WEBHOOK_MAX_ATTEMPTS", get("REGISTRY_WEBHOOK_MAX_ATTEMPTS", "30"), 1),
        "webhook_retry_ms": _int("REGISTRY_WEBHOOK_RETRY_MS", get("REGISTRY_WEBHOOK_RETRY_MS", "30000"), 0),
        "webhook_retry_max_seconds": _int(
            "REGISTRY_WEBHOOK_RETRY_MAX_SECONDS", get("REGISTRY_WEBHOOK_RETRY_MAX_SECONDS", "3600"), 1
        ),
        "webhook_timeout_seconds": _int(
            "REGISTRY_WEBHOOK_TIMEOUT_SECONDS", get("REGISTRY_WEBHOOK_TIMEOUT_SECONDS", "10"), 1
        ),
        "webhook_allow_private": _bool(
            "REGISTRY_WEBHOOK_ALLOW_PRIVATE", get("REGISTRY_WEBHOOK_ALLOW_PRIVATE", "false")
        ),
        "background_jobs": _bool("REGISTRY_BACKGROUND_JOBS", get("REGISTRY_BACKGROUND_JOBS", "false")),
        "test_kill_after_commit": _bool(
            "REGISTRY_TEST_KILL_AFTER_COMMIT", get("REGISTRY_TEST_KILL_AFTER_COMMIT", "false")
        ),
    }


@dataclass(frozen=True)
class Settings:
    """The registry's configuration, typed."""

    registry_name: str = "localregistry"
    storage_connection_string: str = field(default="", repr=False)
    blob_endpoint: str = ""
    table_endpoint: str = ""
    queue_endpoint: str = ""
    storage_prefix: str = "registry"
    blob_redirect: bool = True
    sas_ttl_seconds: int = 600
    upload_block_bytes: int = 8 * MiB
    chunk_min_bytes: int = 0
    upload_ttl_hours: int = 24
    location: str = "local"
    resource_id: str = ""
    eventgrid_endpoint: str = ""
    eventgrid_key: str = ""
    events_schema: str = "EventGridSchema"
    events_functions_url: str = ""
    events_subscriber_urls: tuple[str, ...] = ()
    events_max_attempts: int = 8
    events_retry_ms: int = 1000
    outbox_grace_seconds: int = 60
    outbox_sweep_seconds: int = 0
    webhook_max_attempts: int = 30
    webhook_retry_ms: int = 30_000
    webhook_retry_max_seconds: int = 3600
    webhook_timeout_seconds: int = 10
    webhook_allow_private: bool = False
    background_jobs: bool = False
    test_kill_after_commit: bool = False

    @property
    def queue_service_url(self) -> str:
        """The queue service of the registry's account (managed identity): the setting, or the blob account's."""
        return self.queue_endpoint or self.blob_endpoint.replace(".blob.", ".queue.", 1)

    @property
    def registry_resource_id(self) -> str:
        """The registry's resource id (a placeholder outside Azure)."""
        return self.resource_id or (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
            f"/providers/Microsoft.ContainerRegistry/registries/{self.registry_name}"
        )
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
    owner_principals: tuple[str, ...] = ()
    entra_audiences: tuple[str, ...] = _csv(_DEFAULT_AUDIENCES)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ

        def get(name: str, default: str = "") -> str:
            value = env.get(name, "").strip()
            if value.lower().startswith(_KEY_VAULT_REFERENCE):
                # App Service passes a reference it could not resolve on as its own text; as a
                # password that text would be a guessable credential, so refuse to start instead.
                raise SettingsError(
                    f"setting {name} is a Key Vault reference App Service could not resolve: check that "
                    "the secret exists and that the app's identity may read it (docs/deploy.md)"
                )
            return value or default

        settings = cls(
            registry_name=get("REGISTRY_NAME", cls.registry_name),
            storage_connection_string=get("REGISTRY_STORAGE_CONNECTION_STRING"),
            blob_endpoint=get("REGISTRY_BLOB_ENDPOINT"),
            table_endpoint=get("REGISTRY_TABLE_ENDPOINT"),
            queue_endpoint=get("REGISTRY_QUEUE_ENDPOINT"),
            storage_prefix=get("REGISTRY_STORAGE_PREFIX", cls.storage_prefix),
            blob_redirect=_bool("REGISTRY_BLOB_REDIRECT", get("REGISTRY_BLOB_REDIRECT", "true")),
            sas_ttl_seconds=_int("REGISTRY_SAS_TTL_SECONDS", get("REGISTRY_SAS_TTL_SECONDS", "600"), 60),
            upload_block_bytes=MiB * _int("REGISTRY_UPLOAD_BLOCK_MIB", get("REGISTRY_UPLOAD_BLOCK_MIB", "8"), 1),
            chunk_min_bytes=_int("REGISTRY_CHUNK_MIN_BYTES", get("REGISTRY_CHUNK_MIN_BYTES", "0"), 0),
            upload_ttl_hours=_int("REGISTRY_UPLOAD_TTL_HOURS", get("REGISTRY_UPLOAD_TTL_HOURS", "24"), 1),
            **_event_settings(get),
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
            owner_principals=_csv(get("REGISTRY_OWNER_PRINCIPALS")),
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
