"""The core settings groups: the registry itself, its storage, authentication, events, background jobs."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings.groups import MiB, SettingsError, SettingsGroup, setting

_DEFAULT_AUDIENCES = ("https://management.core.windows.net/", "https://management.azure.com/",
                      "https://containerregistry.azure.net")
EVENT_SCHEMAS = ("EventGridSchema", "CloudEventSchemaV1_0")


def is_emulator(connection_string: str) -> bool:
    """True when ``connection_string`` points at the local storage emulator (Azurite)."""
    lowered = connection_string.lower()
    return "usedevelopmentstorage=true" in lowered or "accountname=devstoreaccount1" in lowered


@dataclass(frozen=True)
class RegistrySettings(SettingsGroup):
    """The registry: its name and identity, and how the distribution API stores and serves blobs."""

    title = "Registry"

    name: str = setting(
        "REGISTRY_NAME", "localregistry",
        "Registry name; the login server in events is `<name>.azurecr.io`-style host of requests.",
        pattern=r"[a-z0-9][a-z0-9-]{1,48}[a-z0-9]", pattern_text="3-50 lowercase letters, digits and hyphens")
    location: str = setting("REGISTRY_LOCATION", "local",
                            "Azure region reported as `location` in event data, e.g. `westus`.")
    configured_resource_id: str = setting(
        "REGISTRY_RESOURCE_ID", "", "Resource id of the registry: `topic` of Event Grid events and `source` of "
        "CloudEvents. Empty: a placeholder id built from REGISTRY_NAME.")
    blob_redirect: bool = setting("REGISTRY_BLOB_REDIRECT", True, "`true`: blob GETs answer 307 to a short-lived "
                                  "read-only SAS URL; `false`: the registry streams blobs itself.")
    sas_ttl_seconds: int = setting("REGISTRY_SAS_TTL_SECONDS", 600,
                                   "Lifetime of the SAS URLs that blob GETs redirect to.", minimum=60)
    upload_block_bytes: int = setting(
        "REGISTRY_UPLOAD_BLOCK_MIB", 8 * MiB,
        "Size of the blocks an upload is staged in (MiB); bounds the memory of one upload.", minimum=1, scale=MiB)
    chunk_min_bytes: int = setting("REGISTRY_CHUNK_MIN_BYTES", 0,
                                   "Smallest chunk clients are asked to PATCH (`OCI-Chunk-Min-Length`).", minimum=0)
    upload_ttl_hours: int = setting("REGISTRY_UPLOAD_TTL_HOURS", 24,
                                    "Uploads untouched for this long are purged by the timer function.", minimum=1)

    @property
    def resource_id(self) -> str:
        """The registry's resource id (a placeholder outside Azure)."""
        return self.configured_resource_id or (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
            f"/providers/Microsoft.ContainerRegistry/registries/{self.name}"
        )


@dataclass(frozen=True)
class StorageSettings(SettingsGroup):
    """The storage account holding the registry's blobs, tables and queues."""

    title = "Storage"

    connection_string: str = setting(
        "REGISTRY_STORAGE_CONNECTION_STRING", "", "Storage connection string (`UseDevelopmentStorage=true` for "
        "Azurite). Leave empty in Azure to use the managed identity with the two endpoints below.", secret=True)
    blob_endpoint: str = setting(
        "REGISTRY_BLOB_ENDPOINT", "",
        "Blob service URL used with the managed identity, e.g. `https://acct.blob.core.windows.net`.")
    table_endpoint: str = setting(
        "REGISTRY_TABLE_ENDPOINT", "",
        "Table service URL used with the managed identity, e.g. `https://acct.table.core.windows.net`.")
    queue_endpoint: str = setting(
        "REGISTRY_QUEUE_ENDPOINT", "", "Queue service URL used with the managed identity (webhook deliveries), "
        "e.g. `https://acct.queue.core.windows.net`. Empty: REGISTRY_BLOB_ENDPOINT's account.")
    prefix: str = setting(
        "REGISTRY_STORAGE_PREFIX", "registry",
        "Prefix of the blob container and table names.",
        pattern=r"[a-z][a-z0-9]{2,30}", pattern_text="3-31 lowercase letters and digits, starting with a letter")

    @property
    def emulator(self) -> bool:
        """True when the account is the local storage emulator (Azurite)."""
        return is_emulator(self.connection_string)

    def check(self) -> None:
        """A connection string, or the blob and table endpoints of the managed identity."""
        if not self.connection_string and not (self.blob_endpoint and self.table_endpoint):
            raise SettingsError(
                "set REGISTRY_STORAGE_CONNECTION_STRING, or both REGISTRY_BLOB_ENDPOINT and REGISTRY_TABLE_ENDPOINT"
            )


@dataclass(frozen=True)
class AuthSettings(SettingsGroup):
    """Authentication: registry tokens, the admin user, Entra ID."""

    title = "Authentication"

    enabled: bool = setting("REGISTRY_AUTH_ENABLED", True, "`false` turns authentication off; refused unless "
                            "storage is the local emulator (tests).")
    login_server: str = setting("REGISTRY_LOGIN_SERVER", "", "Host name clients use (token audience and "
                                "`service`); empty: the request's Host.")
    token_signing_key: str = setting(
        "REGISTRY_TOKEN_SIGNING_KEY", "", "PEM private key (RSA or EC P-256) signing registry tokens; a Key Vault "
        "reference in Azure. Empty only with the local emulator (a key is generated per process).", secret=True)
    token_previous_key: str = setting(
        "REGISTRY_TOKEN_PREVIOUS_KEY", "",
        "PEM of the previous signing key, accepted while its tokens live (rotation).", secret=True)
    access_token_ttl_seconds: int = setting("REGISTRY_ACCESS_TOKEN_TTL_SECONDS", 600,
                                            "Lifetime of registry access tokens.", minimum=30)
    refresh_token_ttl_seconds: int = setting("REGISTRY_REFRESH_TOKEN_TTL_SECONDS", 10800,
                                             "Lifetime of registry refresh tokens (exchange flow).", minimum=60)
    admin_enabled: bool = setting("REGISTRY_ADMIN_ENABLED", False,
                                  "`true` enables the admin user (username REGISTRY_NAME).")
    admin_password: str = setting("REGISTRY_ADMIN_PASSWORD", "",
                                  "First password of the admin user (a Key Vault reference in Azure).", secret=True)
    admin_password2: str = setting("REGISTRY_ADMIN_PASSWORD2", "",
                                   "Second password of the admin user, for rotation; may be empty.", secret=True)
    entra_authority: str = setting(
        "REGISTRY_ENTRA_AUTHORITY", "https://login.microsoftonline.com",
        "Entra ID authority whose `<authority>/<tenant>/discovery/v2.0/keys` signs tokens.", strip="/")
    entra_tenants: tuple[str, ...] = setting(
        "REGISTRY_ENTRA_TENANTS", (),
        "Comma-separated tenant ids whose Entra ID tokens are accepted; empty disables exchange.")
    owner_principals: tuple[str, ...] = setting(
        "REGISTRY_OWNER_PRINCIPALS", (), "Comma-separated Entra ID object ids (users, groups, service principals) "
        "holding the Owner role by configuration, so a new registry can be administered before any role is assigned.")
    entra_audiences: tuple[str, ...] = setting("REGISTRY_ENTRA_AUDIENCES", _DEFAULT_AUDIENCES,
                                               "Comma-separated audiences accepted in Entra ID tokens.")

    def check(self) -> None:
        """The admin user needs a password."""
        if self.admin_enabled and not (self.admin_password or self.admin_password2):
            raise SettingsError("setting REGISTRY_ADMIN_PASSWORD is required when REGISTRY_ADMIN_ENABLED is true")


@dataclass(frozen=True)
class EventSettings(SettingsGroup):
    """Events: where they are published, the outbox, and the local Event Grid's delivery."""

    title = "Events"

    eventgrid_endpoint: str = setting(
        "REGISTRY_EVENTGRID_ENDPOINT", "", "Event Grid topic endpoint events are published to. "
        "Empty: the local Event Grid delivers them (make run, func start, tests).")
    eventgrid_key: str = setting("REGISTRY_EVENTGRID_KEY", "", "Access key of the topic (`aeg-sas-key`); empty: "
                                 "`DefaultAzureCredential`.", secret=True)
    schema: str = setting("REGISTRY_EVENTS_SCHEMA", "EventGridSchema",
                          "The schema events are published in.",
                          choices=EVENT_SCHEMAS)
    functions_url: str = setting(
        "REGISTRY_EVENTS_FUNCTIONS_URL", "", "Local Event Grid only: base URL of a `func start` host; its functions "
        "are called through `/runtime/webhooks/eventgrid?functionName=`. Empty: called in-process.", strip="/")
    subscriber_urls: tuple[str, ...] = setting(
        "REGISTRY_EVENTS_SUBSCRIBER_URLS", (), "Local Event Grid only: comma-separated external subscriber URLs, "
        "validated with Event Grid's handshake and sent every event.")
    max_attempts: int = setting(
        "REGISTRY_EVENTS_MAX_ATTEMPTS", 8,
        "Local Event Grid only: delivery attempts per subscription before dead-lettering.", minimum=1)
    retry_ms: int = setting(
        "REGISTRY_EVENTS_RETRY_MS", 1000,
        "Local Event Grid only: first retry delay (ms); doubles per attempt, at most 60 s.", minimum=0)
    outbox_grace_seconds: int = setting(
        "REGISTRY_OUTBOX_GRACE_SECONDS", 60,
        "The republisher leaves outbox rows younger than this to the request that wrote them.", minimum=0)
    outbox_sweep_seconds: int = setting(
        "REGISTRY_OUTBOX_SWEEP_SECONDS", 0, "Republish the outbox from the web process every N seconds (make run); "
        "0: only the timer function does.", minimum=0)


@dataclass(frozen=True)
class JobSettings(SettingsGroup):
    """Background jobs: whether the web process runs the timer and queue functions itself."""

    title = "Background jobs"

    enabled: bool = setting(
        "REGISTRY_BACKGROUND_JOBS", False, "`true`: the web process also runs the timer functions and the webhook "
        "queue consumer on their schedules (make run, uvicorn); `false` where the Functions host runs them.")
