"""The events capability: the outbox (the event sink of every commit) with its publisher, and the
timer that republishes what a crash or a failed publish left in the outbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.events.local import LocalEventGrid
from shared.events.model import RegistryEvent
from shared.events.outbox import Outbox, republish_outbox
from shared.events.publisher import EventGridPublisher
from shared.events.subscriptions import subscriptions_of
from shared.kernel.configurator import Application, Configurator
from shared.kernel.container import Container
from shared.kernel.interfaces import EventHandler, EventPublisher
from shared.kernel.jobs import EventConsumer, Timer

#: Every minute: publish the events a crash or a failed publish left in the outbox.
REPUBLISH_OUTBOX = Timer("republish_outbox", "0 * * * * *", republish_outbox)


def register(config: Configurator) -> None:
    """Add the outbox and the republishing timer."""
    config.add_service(Outbox, _outbox)
    config.add_timer(REPUBLISH_OUTBOX)


async def publisher(container: Container) -> EventPublisher[RegistryEvent]:
    """Event Grid when a topic endpoint is set, else the local Event Grid delivering to the
    registered consumers (their plain functions, called with ``container``)."""
    settings = container.settings
    if settings.events.eventgrid_endpoint:
        return EventGridPublisher(settings)
    consumers = (await container.get(Application)).consumers
    handlers = {c.function_name: _bound(c, container) for c in consumers}
    return LocalEventGrid(settings, container.storage, handlers, subscriptions_of(consumers))


async def _outbox(container: Container) -> Outbox:
    return Outbox(container.storage, container.settings, await publisher(container))


def _bound(consumer: EventConsumer, container: Container) -> EventHandler:
    """The consumer's plain function with the container given: what the local Event Grid calls."""
    async def handle(envelope: Mapping[str, Any], /) -> object:
        return await consumer.handle(container, envelope)

    return handle
