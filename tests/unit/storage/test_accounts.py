"""Storage accounts are explicit: read from the settings in one place, and each storage handle
opens the account it is given (so one process can hold several)."""

from __future__ import annotations

from typing import Any

from shared.settings import Settings
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients


class Credential:
    """A token credential that is never asked for a token here; it records whether it was closed."""

    closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("no request is made")

    async def close(self) -> None:
        self.closed = True


def test_the_account_of_the_settings_is_their_connection_string_or_their_endpoints() -> None:
    keyed = StorageAccount.from_settings(Settings.from_env({
        "REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", "REGISTRY_STORAGE_PREFIX": "abc"}))
    assert (keyed.prefix, keyed.connection_string, keyed.is_emulator) == ("abc", "UseDevelopmentStorage=true", True)
    managed = StorageAccount.from_settings(Settings.from_env({
        "REGISTRY_BLOB_ENDPOINT": "https://acct.blob.core.windows.net",
        "REGISTRY_TABLE_ENDPOINT": "https://acct.table.core.windows.net", "REGISTRY_TOKEN_SIGNING_KEY": "k" * 32}))
    assert (managed.prefix, managed.connection_string, managed.is_emulator) == ("registry", "", False)
    assert managed.queue_url == "https://acct.queue.core.windows.net"
    assert StorageAccount("p", queue_endpoint="https://q.example").queue_url == "https://q.example"
    assert "UseDevelopmentStorage" not in repr(keyed)  # a connection string may hold an account key


async def test_clients_of_two_accounts_use_their_own_endpoints_and_the_callers_credential() -> None:
    credential = Credential()
    accounts = [StorageAccount(prefix, blob_endpoint=f"https://{name}.blob.core.windows.net",
                               table_endpoint=f"https://{name}.table.core.windows.net", credential=credential)
                for prefix, name in (("primary", "westacct"), ("replica", "eastacct"))]
    west, east = (StorageClients(account) for account in accounts)
    try:
        assert west.container.url == "https://westacct.blob.core.windows.net/primary"
        assert east.repos.url.startswith("https://eastacct.table.core.windows.net")
        assert east.repos.table_name == "replicarepos"
        assert west.deliveries.url == "https://westacct.queue.core.windows.net/primary-webhooks"
        assert west.blob_service.credential is credential is east.table_service.credential
    finally:
        await west.close()
        await east.close()
    assert not credential.closed  # the caller's to close
