"""An in-memory storage account behind the interfaces of :mod:`shared.storage.interfaces`, for
fast unit tests of policy logic. It passes the same contract suite as Azurite
(``tests/contract/``); end-to-end tests use Azurite and the real clients."""

from shared.storage.memory.service import MemoryService
from shared.storage.memory.storage import MemoryStorage

__all__ = ["MemoryService", "MemoryStorage"]
