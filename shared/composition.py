"""The composition root: the capabilities, in order, and what the entry points derive from them.

Each capability registers itself (``register(config)``); :func:`configure` freezes what they
registered into an :class:`~shared.kernel.configurator.Application`, the tables of routes,
policies, services, Event Grid consumers (and so :data:`SUBSCRIPTIONS`), timers and queue jobs
that the HTTP app, ``functions/``, the local Event Grid and ``make run``'s loop are built from.

A process builds its container once (:func:`container`, per settings and event loop) and the HTTP
app, every trigger and the local loop share it. ``python -m shared.composition subscriptions``
prints the Event Grid subscriptions (Bicep's ``eventSubscriptions`` mirror them).
"""

from __future__ import annotations

import asyncio
import json
import sys
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from shared.api import capability as core
from shared.api.app import assemble
from shared.auth.service import AuthService
from shared.auth.store import IdentityStore
from shared.events import capability as events
from shared.events.outbox import Outbox
from shared.events.subscriptions import document, subscriptions_of
from shared.kernel.configurator import Application, Configurator
from shared.kernel.container import Container
from shared.local_jobs import run_background_jobs
from shared.registry.blobs import BlobService
from shared.registry.discovery import DiscoveryService
from shared.registry.locks import LockService
from shared.registry.manifests import ManifestService
from shared.registry.metadata import MetadataService
from shared.registry.uploads import UploadService
from shared.replication import capability as replication
from shared.settings import CORE_GROUPS, Declaration, Settings, SettingsError, env_names
from shared.storage.interfaces import Storage
from shared.webhooks import capability as webhooks

Capability = Callable[[Configurator], None]
#: The capabilities of the registry, in the order they register (their routes match in this order).
CAPABILITIES: tuple[Capability, ...] = (core.register, events.register, webhooks.register, replication.register)


def configure(capabilities: Sequence[Capability] = CAPABILITIES,
              environ: Mapping[str, str] | None = None) -> Application:
    """The frozen tables of ``capabilities``, switched on or off by ``environ`` (default: the
    process environment, which the Functions host's indexing sees too)."""
    config = Configurator(environ)
    for register in capabilities:
        register(config)
    return config.freeze()


APPLICATION = configure()
#: The capabilities' settings groups, in the order of the settings table.
SETTINGS_GROUPS = APPLICATION.settings_groups
#: The capabilities' error groups, consulted before the API's own.
ERROR_GROUPS = APPLICATION.error_groups
#: Every setting (environment variable -> declaration): core groups first, then the capabilities'.
SETTINGS: dict[str, Declaration] = env_names((*CORE_GROUPS, *SETTINGS_GROUPS))
CONSUMERS = APPLICATION.consumers
TIMERS = APPLICATION.timers
QUEUE_JOBS = APPLICATION.queue_jobs
#: The Event Grid subscriptions of the registry's topic: one per consumer.
SUBSCRIPTIONS = subscriptions_of(CONSUMERS)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of a process running every capability, from ``environ`` (default: the
    environment): every process reads and checks the same groups at start."""
    return Settings.from_env(environ, SETTINGS_GROUPS)


_APPLICATIONS: dict[tuple[object, ...], Application] = {}


def application_for(settings: Settings) -> Application:
    """The capabilities as ``settings`` switch them on or off (the process's :data:`APPLICATION`
    when they were read from the same environment): tests and tools build registries whose
    settings differ from the process's."""
    key = tuple(settings.capabilities)  # the capabilities' groups decide what is switched on
    found = _APPLICATIONS.get(key)
    if found is None:
        found = _APPLICATIONS[key] = configure(environ=settings.source)
    return found


async def open_container(settings: Settings, application: Application | None = None) -> Container:
    """A new container of ``application``'s services (default: those ``settings`` switch on) over
    the storage of ``settings`` (the caller closes it)."""
    application = application or application_for(settings)
    return await Container.open(settings, application.services, {Application: application}, application.tables)


_Cache = dict[tuple[Settings, int], "asyncio.Task[Container]"]
_process: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Cache] = weakref.WeakKeyDictionary()


async def container(settings: Settings | None = None, application: Application = APPLICATION) -> Container:
    """The process's container for ``settings`` (default: the environment's), built on first use in
    the running event loop and shared by everyone who asks, until it is closed."""
    settings = settings if settings is not None else load_settings()
    loop = asyncio.get_running_loop()
    cache = _process.setdefault(loop, {})
    key = (settings, id(application))
    task = cache.get(key)
    if task is not None and task.done() and (task.cancelled() or task.exception() or task.result().closed):
        task = None
    if task is None:
        task = loop.create_task(open_container(settings, application))
        cache[key] = task
        task.add_done_callback(lambda done: _forget_on_close(cache, key, done))
    return await asyncio.shield(task)


async def close_containers() -> None:
    """Close the process's containers of the running event loop (tests; a host process never ends them)."""
    cache = _process.get(asyncio.get_running_loop(), {})
    for task in list(cache.values()):
        if task.done() and not task.cancelled() and task.exception() is None:
            await task.result().close()


def _forget_on_close(cache: _Cache, key: tuple[Settings, int], task: asyncio.Task[Container]) -> None:
    def forget() -> None:
        if cache.get(key) is task:
            del cache[key]

    if task.cancelled() or task.exception() is not None:
        forget()  # the next caller tries again
    else:
        task.result().on_close(forget)


def create_app(settings: Settings | None = None, application: Application | None = None) -> Starlette:
    """The registry's ASGI app (uvicorn's ``--factory`` and the HTTP function call this).

    Without ``settings`` it reads them from the environment on its first request and serves from
    the process's container, which the triggers and the local loop share. With ``settings`` (tests
    and tools: each app is one instance of the registry) it builds a container of its own.
    """
    shared = settings is None
    if application is None:
        application = APPLICATION if settings is None else application_for(settings)

    async def opener(resolved: Settings) -> Container:
        opened = await (container(resolved, application) if shared else open_container(resolved, application))
        app.state.registry = await Registry.of(opened)
        return opened

    app = assemble(application, opener, settings, start_background)
    app.state.registry = None
    return app


def start_background(app: Starlette) -> asyncio.Task[None] | None:
    """Start this process's background loops with the app's container, if the settings ask for any.

    With REGISTRY_OUTBOX_SWEEP_SECONDS > 0 the outbox is republished from this process (its first
    sweep at once, so events a killed process left behind go out as soon as it restarts). With
    REGISTRY_BACKGROUND_JOBS the registered timers and queue jobs run here on their schedules
    (``make run``). Under Azure Functions both stay off: the host runs the functions.
    """
    try:
        settings = app.state.settings or load_settings()
    except SettingsError:
        return None  # the first request reports the settings error
    if settings.events.outbox_sweep_seconds <= 0 and not settings.jobs.enabled:
        return None
    app.state.settings = settings

    async def run_all() -> None:
        opened: Container = await app.state.open_container()
        loops = []
        if settings.events.outbox_sweep_seconds > 0:
            loops.append((await opened.get(Outbox)).sweep_forever(settings.events.outbox_sweep_seconds))
        if settings.jobs.enabled:
            loops.append(run_background_jobs(opened))
        await asyncio.gather(*loops)

    return asyncio.get_running_loop().create_task(run_all())


@dataclass
class Registry:
    """A typed view of a container's core services (tests and tools); closing it closes the container."""

    container: Container
    settings: Settings
    storage: Storage
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    discovery: DiscoveryService
    outbox: Outbox
    identities: IdentityStore
    auth: AuthService
    locks: LockService
    metadata: MetadataService

    @classmethod
    async def of(cls, container: Container) -> Registry:
        """The view of ``container`` (its core services are built now)."""
        get = container.get
        return cls(container, container.settings, container.storage, await get(BlobService), await get(UploadService),
                   await get(ManifestService), await get(DiscoveryService), await get(Outbox),
                   await get(IdentityStore), await get(AuthService), await get(LockService),
                   await get(MetadataService))

    @classmethod
    async def open(cls, settings: Settings) -> Registry:
        """A registry instance of its own over the storage of ``settings``."""
        return await cls.of(await open_container(settings))

    async def close(self) -> None:
        """Close the container (its services, then its storage clients)."""
        await self.container.close()


async def open_registry(state: Any) -> Registry:
    """The :class:`Registry` of an app's ``state``, its container opened if it is not yet."""
    await state.open_container()
    registry: Registry = state.registry
    return registry


def main(argv: Sequence[str] = ()) -> int:
    """``subscriptions``: print the Event Grid subscriptions as JSON (for Bicep and reviewers)."""
    if list(argv) != ["subscriptions"]:
        print("usage: python -m shared.composition subscriptions", file=sys.stderr)
        return 2
    print(json.dumps(document(SUBSCRIPTIONS), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
