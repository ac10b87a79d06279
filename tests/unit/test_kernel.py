"""The kernel's mechanism: what the Configurator accepts and freezes, and how the Container builds
services (once, collaborators first, cycles refused, failures retried) and closes them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shared.kernel.configurator import Application, ConfigurationError, Configurator
from shared.kernel.container import Container, ServiceNotRegistered
from shared.kernel.jobs import EventConsumer, QueueJob, Subscription, Timer
from shared.kernel.operations import Operation
from shared.kernel.policy import Call
from shared.kernel.routes import Access, RouteSpec
from shared.settings import Settings
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients


class Clock:
    """A service without collaborators."""


class Journal:
    """A service that needs a Clock, and that records being closed."""

    def __init__(self, clock: Clock, closed: list[str]) -> None:
        self.clock = clock
        self.closed = closed

    async def close(self) -> None:
        self.closed.append("journal")


class Ledger:
    """A service that needs a Journal, and that records being closed."""

    def __init__(self, journal: Journal, closed: list[str]) -> None:
        self.journal = journal
        self.closed = closed

    async def close(self) -> None:
        self.closed.append("ledger")


async def _nothing(container: Container, *args: object) -> None:
    return None


async def _handler(request: object) -> object:
    return None


SETTINGS = Settings.from_env({"REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"})


@pytest.fixture
async def storage() -> AsyncIterator[StorageClients]:
    """Clients of the emulator's account (no call is made through them here)."""
    clients = StorageClients(StorageAccount.from_settings(SETTINGS))
    yield clients
    await clients.close()


def _container(storage: StorageClients, config: Configurator) -> Container:
    application = config.freeze()
    return Container(SETTINGS, storage, application.services, {Application: application})


async def test_each_service_is_built_once_and_after_its_collaborators(storage: StorageClients) -> None:
    built: list[str] = []
    closed: list[str] = []
    config = Configurator()

    async def clock(container: Container) -> Clock:
        built.append("clock")
        await asyncio.sleep(0.01)  # concurrent askers wait for this one build
        return Clock()

    async def journal(container: Container) -> Journal:
        built.append("journal")
        return Journal(await container.get(Clock), closed)

    async def ledger(container: Container) -> Ledger:
        built.append("ledger")
        return Ledger(await container.get(Journal), closed)

    config.add_service(Ledger, ledger)
    config.add_service(Journal, journal)
    config.add_service(Clock, clock)
    container = _container(storage, config)
    ledgers = await asyncio.gather(*(container.get(Ledger) for _ in range(5)))
    assert built == ["ledger", "journal", "clock"]
    assert all(each is ledgers[0] for each in ledgers)
    assert ledgers[0].journal is await container.get(Journal)
    assert await container.get(Application) is not None
    await container.close()
    assert closed == ["ledger", "journal"]  # the newest first: a service outlives those that use it
    assert container.closed


async def test_services_that_need_each_other_are_refused(storage: StorageClients) -> None:
    config = Configurator()

    async def clock(container: Container) -> Clock:
        await container.get(Journal)
        return Clock()

    async def journal(container: Container) -> Journal:
        return Journal(await container.get(Clock), [])

    config.add_service(Clock, clock)
    config.add_service(Journal, journal)
    with pytest.raises(RuntimeError, match="cycle: Journal -> Clock -> Journal"):
        await _container(storage, config).get(Journal)


async def test_a_failed_build_is_tried_again_and_an_unregistered_type_is_named(storage: StorageClients) -> None:
    attempts: list[int] = []
    config = Configurator()

    async def clock(container: Container) -> Clock:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("storage is down")
        return Clock()

    config.add_service(Clock, clock)
    container = _container(storage, config)
    with pytest.raises(ConnectionError):
        await container.get(Clock)
    assert isinstance(await container.get(Clock), Clock)
    assert len(attempts) == 2
    with pytest.raises(ServiceNotRegistered, match="Journal"):
        await container.get(Journal)


def test_two_capabilities_cannot_declare_the_same_thing() -> None:
    config = Configurator()
    config.add_service(Clock, lambda container: asyncio.sleep(0, Clock()))
    with pytest.raises(ConfigurationError):
        config.add_service(Clock, lambda container: asyncio.sleep(0, Clock()))
    config.add_routes(RouteSpec("/x", ("GET",), _handler, Operation.ADMIN, Access.public()))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        config.add_routes(RouteSpec("/x", ("POST", "GET"), _handler, Operation.ADMIN, Access.public()))  # type: ignore[arg-type]
    config.add_timer(Timer("tidy", "0 * * * * *", _nothing))
    with pytest.raises(ConfigurationError):
        config.add_queue_job(QueueJob("tidy", lambda prefix: prefix, _nothing))
    config.add_consumer(EventConsumer(Subscription("hooks", "fan_out", ("T",)), _nothing))
    with pytest.raises(ConfigurationError):
        config.add_consumer(EventConsumer(Subscription("hooks", "other", ("T",)), _nothing))
    with pytest.raises(ConfigurationError):
        config.add_policy(_policy)


async def _policy(call: Call) -> None:
    return None


def test_policies_attach_to_operations_in_the_order_added() -> None:
    async def second(call: Call) -> None:
        return None

    config = Configurator()
    config.add_policy(_policy, *Operation)
    config.add_policy(second, Operation.WRITE_MANIFEST)
    application = config.freeze()
    assert application.policies_of(Operation.WRITE_MANIFEST) == (_policy, second)
    assert application.policies_of(Operation.READ_MANIFEST) == (_policy,)
