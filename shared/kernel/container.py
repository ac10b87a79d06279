"""The container: the settings, the storage account and every service, built once per process.

Services are built lazily, each once, by the factory a capability registered for its type
(:meth:`~shared.kernel.configurator.Configurator.add_service`); a factory asks the container for
the collaborators it needs, so every collaborator is mandatory and built before what uses it.
Closing the container closes the services that have an async ``close`` in the reverse of the
order they were built, then the storage clients.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from shared.settings import Settings
from shared.storage import layout
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from shared.storage.interfaces import Storage
from shared.storage.layout import TableSpec

log = logging.getLogger("registry.kernel")

T = TypeVar("T")
#: Builds one service from the container (its collaborators come from the container too).
Factory = Callable[["Container"], Awaitable[Any]]

# The services whose factories are running in this chain of calls: asking for one of them again
# is a dependency cycle, which would otherwise wait forever.
_building: ContextVar[tuple[type, ...]] = ContextVar("registry_building", default=())


@runtime_checkable
class Closeable(Protocol):
    """A service holding connections or background work, closed with the container."""

    async def close(self) -> None:
        """Finish (boundedly) and release what the service holds."""
        ...


class ServiceNotRegistered(LookupError):
    """No capability registered a factory for the type asked for."""


class Container:
    """The services of one registry over one storage account, built once per process."""

    def __init__(self, settings: Settings, storage: Storage, factories: Mapping[type, Factory],
                 instances: Mapping[type, object] | None = None) -> None:
        self.settings = settings
        self.storage = storage
        self._factories = dict(factories)
        self._built: dict[type, Any] = dict(instances or {})
        self._pending: dict[type, asyncio.Future[Any]] = {}
        self._order: list[Any] = []
        self._on_close: list[Callable[[], object]] = []
        self.closed = False

    @classmethod
    async def open(cls, settings: Settings, factories: Mapping[type, Factory],
                   instances: Mapping[type, object] | None = None, tables: Sequence[TableSpec] = ()) -> Container:
        """Connect to the storage account of ``settings`` and create its container, its tables
        (the core ones and ``tables``, which capabilities registered) and queues if they do not
        exist yet."""
        every = (*layout.TABLES, *(t for t in dict.fromkeys(tables) if t not in layout.TABLES))
        storage = StorageClients(StorageAccount.from_settings(settings), every)
        try:
            await storage.ensure()
        except BaseException:
            await storage.close()
            raise
        return cls(settings, storage, factories, instances)

    async def get(self, key: type[T]) -> T:
        """The service registered for ``key``, built on first use (once, however many ask at once)."""
        try:
            return cast(T, self._built[key])
        except KeyError:
            pass
        if key in _building.get():
            chain = " -> ".join(k.__name__ for k in (*_building.get(), key))
            raise RuntimeError(f"services depend on each other in a cycle: {chain}")
        pending = self._pending.get(key)
        if pending is None:
            factory = self._factories.get(key)
            if factory is None:
                raise ServiceNotRegistered(f"no capability registered a service of type {key.__name__}")
            pending = asyncio.ensure_future(self._build(key, factory))
            self._pending[key] = pending
        return cast(T, await asyncio.shield(pending))

    async def _build(self, key: type, factory: Factory) -> Any:
        _building.set((*_building.get(), key))
        try:
            service = await factory(self)
        except BaseException:
            self._pending.pop(key, None)  # the next caller tries again
            raise
        self._built[key] = service
        self._order.append(service)
        self._pending.pop(key, None)
        return service

    def on_close(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once the container is closed."""
        self._on_close.append(callback)

    async def close(self) -> None:
        """Close the services (newest first), then the storage clients; a second call does nothing."""
        if self.closed:
            return
        self.closed = True
        for service in reversed(self._order):
            if isinstance(service, Closeable):
                try:
                    await service.close()
                except Exception:
                    log.warning("closing %s failed", type(service).__name__, exc_info=True)
        await self.storage.close()
        for callback in self._on_close:
            callback()
