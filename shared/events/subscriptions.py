"""The Event Grid subscriptions of the registry's topic, derived from the event consumers.

Each consumer a capability registers (``Configurator.add_consumer``) is one subscription: Bicep
(``infra/main.bicep``'s ``eventSubscriptions``, which a parity test compares with these) creates
exactly these on the Event Grid topic, each delivering to the consumer's Event Grid-triggered
function, and the local Event Grid (:mod:`shared.events.local`) delivers by the same filters, so
they behave the same with and without Azure. ``python -m shared.composition subscriptions``
prints them as JSON for the infrastructure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from shared.kernel.jobs import EventConsumer, Subscription


def subscriptions_of(consumers: Iterable[EventConsumer]) -> tuple[Subscription, ...]:
    """The subscription of each consumer, in the order they were registered."""
    return tuple(consumer.subscription for consumer in consumers)


def document(subscriptions: Iterable[Subscription]) -> list[dict[str, Any]]:
    """The subscriptions as JSON-ready objects (their dataclass fields)."""
    return [asdict(s) for s in subscriptions]


__all__ = ["Subscription", "document", "subscriptions_of"]
