"""Capability registration: each capability package's ``register(config)`` adds its services,
routes, request policies, event consumers, timers, queue jobs, tables, settings group and error
group to a :class:`Configurator` (warehouse's ``includeme``); :meth:`Configurator.freeze` turns
what was added into the :class:`Application`, the frozen tables every entry point derives from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from shared.errors import ErrorGroup
from shared.kernel.container import Container, Factory
from shared.kernel.jobs import EventConsumer, QueueJob, Timer
from shared.kernel.operations import Operation
from shared.kernel.policy import Policy
from shared.kernel.routes import RouteSpec
from shared.settings import SettingsError, SettingsGroup
from shared.storage.layout import TableSpec

T = TypeVar("T")


class ConfigurationError(ValueError):
    """Two capabilities declared the same thing, or one declared something incomplete."""


@dataclass(frozen=True)
class Application:
    """What the capabilities registered, frozen: the one source of the HTTP routes and their
    policies, the services, the Event Grid consumers (and so the subscriptions), the timers and
    queue jobs (and so ``functions/`` and the ``make run`` loop), tables, settings groups and
    error groups."""

    routes: tuple[RouteSpec, ...]
    policies: Mapping[Operation, tuple[Policy, ...]]
    services: Mapping[type, Factory]
    consumers: tuple[EventConsumer, ...]
    timers: tuple[Timer, ...]
    queue_jobs: tuple[QueueJob, ...]
    tables: tuple[TableSpec, ...] = ()
    settings_groups: tuple[type[SettingsGroup], ...] = ()
    error_groups: tuple[ErrorGroup, ...] = ()

    def policies_of(self, operation: Operation) -> tuple[Policy, ...]:
        """The policies attached to ``operation``, in the order they were added."""
        return self.policies.get(operation, ())


class Configurator:
    """Collects what capabilities register (see the module docstring)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._routes: list[RouteSpec] = []
        self._policies: dict[Operation, list[Policy]] = {}
        self._services: dict[type, Factory] = {}
        self._consumers: list[EventConsumer] = []
        self._timers: list[Timer] = []
        self._queue_jobs: list[QueueJob] = []
        self._tables: list[TableSpec] = []
        self._settings_groups: list[type[SettingsGroup]] = []
        self._error_groups: list[ErrorGroup] = []

    def add_settings(self, group: type[SettingsGroup]) -> None:
        """Declare the capability's settings group."""
        if group not in self._settings_groups:
            self._settings_groups.append(group)

    def enabled(self, group: type[SettingsGroup]) -> bool:
        """The ``enabled`` flag of a capability's settings ``group``, read from the environment the
        tables are built for (a capability switched off registers nothing but its settings)."""
        try:
            read = group.from_env(self._environ)
        except SettingsError:
            return True  # the same error is reported when the process reads its settings
        return bool(getattr(read, "enabled", True))

    def add_service(self, key: type[T], factory: Callable[[Container], Awaitable[T]]) -> None:
        """Build the service ``key`` with ``factory`` (once per process, when first asked for)."""
        if key in self._services:
            raise ConfigurationError(f"two capabilities register a service of type {key.__name__}")
        self._services[key] = factory

    def decorate_service(self, key: type[T], decorate: Callable[[Container, T], Awaitable[T]]) -> None:
        """Wrap the service ``key`` another capability registered: ``decorate(container, service)``
        returns what the container hands out instead (the same type, a subclass or a wrapper)."""
        base = self._services.get(key)
        if base is None:
            raise ConfigurationError(f"no service of type {key.__name__} to decorate: register it first")

        async def factory(container: Container) -> T:
            return await decorate(container, await base(container))

        self._services[key] = factory

    def add_routes(self, *routes: RouteSpec) -> None:
        """Serve ``routes`` (matched in the order they were added, across capabilities)."""
        taken = {(r.path, m) for r in self._routes for m in r.methods}
        for route in routes:
            clash = taken & {(route.path, m) for m in route.methods}
            if clash:
                raise ConfigurationError(f"two routes serve {sorted(clash)[0]}")
            taken |= {(route.path, m) for m in route.methods}
            self._routes.append(route)

    def add_policy(self, policy: Policy, *operations: Operation) -> None:
        """Run ``policy`` before the handler of every route doing one of ``operations``."""
        if not operations:
            raise ConfigurationError("a policy is attached to at least one operation")
        for operation in operations:
            self._policies.setdefault(operation, []).append(policy)

    def add_consumer(self, consumer: EventConsumer) -> None:
        """An Event Grid subscription and the plain function its triggered function calls."""
        if consumer.subscription.name in {c.subscription.name for c in self._consumers}:
            raise ConfigurationError(f"two consumers subscribe as {consumer.subscription.name}")
        self._check_name(consumer.function_name)
        self._consumers.append(consumer)

    def add_timer(self, timer: Timer) -> None:
        """A timer function (NCRONTAB schedule and plain function)."""
        self._check_name(timer.name)
        self._timers.append(timer)

    def add_queue_job(self, job: QueueJob) -> None:
        """A queue-triggered function."""
        self._check_name(job.name)
        self._queue_jobs.append(job)

    def add_tables(self, *tables: TableSpec) -> None:
        """Tables the capability keeps rows in, drawn in ``shared/storage/layout.py`` (the container
        creates them with the core ones)."""
        self._tables.extend(t for t in tables if t not in self._tables)

    def add_errors(self, group: ErrorGroup) -> None:
        """The capability's group of wire errors."""
        if group not in self._error_groups:
            self._error_groups.append(group)

    def _check_name(self, name: str) -> None:
        """Every function of the app has a name of its own (the Functions host indexes them by name)."""
        names = [c.function_name for c in self._consumers] + [t.name for t in self._timers]
        if name in names + [j.name for j in self._queue_jobs]:
            raise ConfigurationError(f"two background functions are named {name}")

    def freeze(self) -> Application:
        """The tables registered so far, frozen."""
        return Application(
            routes=tuple(self._routes),
            policies=MappingProxyType({op: tuple(ps) for op, ps in self._policies.items()}),
            services=MappingProxyType(dict(self._services)),
            consumers=tuple(self._consumers),
            timers=tuple(self._timers),
            queue_jobs=tuple(self._queue_jobs),
            tables=tuple(self._tables),
            settings_groups=tuple(self._settings_groups),
            error_groups=tuple(self._error_groups),
        )
