"""Storage accounts: where a registry's container, tables and queues live.

A :class:`StorageAccount` names one account (its blob, table and queue endpoints and how to
authenticate to it) and the prefix of the registry's names in it. Everything that opens storage
clients is given an account, never the settings: a process may hold several accounts (a
geo-replica is another account with the same layout). :meth:`StorageAccount.from_settings` is
the one place an account is read from the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.settings import Settings, is_emulator


@dataclass(frozen=True)
class StorageAccount:
    """One storage account and the prefix of the registry's container, tables and queues in it.

    Authentication is either a connection string (an account key: Azurite, or a key from Key
    Vault) or a token credential with the three endpoints (a managed identity in Azure). With
    neither ``connection_string`` nor ``credential`` the clients use ``DefaultAzureCredential``.
    """

    prefix: str
    connection_string: str = field(default="", repr=False)
    blob_endpoint: str = ""
    table_endpoint: str = ""
    queue_endpoint: str = ""
    #: an async ``TokenCredential`` shared by the clients of this account (the caller closes it)
    credential: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageAccount:
        """The registry's own (primary) account, as the settings describe it."""
        return cls(
            prefix=settings.storage.prefix,
            connection_string=settings.storage.connection_string,
            blob_endpoint=settings.storage.blob_endpoint,
            table_endpoint=settings.storage.table_endpoint,
            queue_endpoint=settings.storage.queue_endpoint,
        )

    @property
    def queue_url(self) -> str:
        """The queue service of the account: the endpoint given, or the blob endpoint's account."""
        return self.queue_endpoint or self.blob_endpoint.replace(".blob.", ".queue.", 1)

    @property
    def is_emulator(self) -> bool:
        """True when the account is the local storage emulator (Azurite)."""
        return is_emulator(self.connection_string)
