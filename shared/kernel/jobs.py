"""The declarations behind the background functions: Event Grid consumers, timers and queue jobs.

Each is a plain function of the process's :class:`~shared.kernel.container.Container` plus what
the trigger delivers. ``functions/`` binds one Azure Functions trigger to each (names, schedules,
queues and subscriptions come from here), the local Event Grid calls the consumers in-process, and
``make run``'s loop runs the timers and consumes the queues.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.kernel.container import Container

#: Binding expression of the storage prefix: the Functions host fills it in from the app setting.
PREFIX_SETTING = "%REGISTRY_STORAGE_PREFIX%"
#: The connection (app setting, or ``<name>__queueServiceUri`` with a managed identity) of the
#: registry's queues in the Functions host.
QUEUE_CONNECTION = "RegistryStorage"


@dataclass(frozen=True)
class Subscription:
    """An Event Grid event subscription whose endpoint is an Azure Function of this app."""

    name: str  # the event subscription's name (3-64 letters, digits, hyphens)
    function_name: str  # the Event Grid-triggered function it delivers to
    included_event_types: tuple[str, ...]
    subject_begins_with: str = ""
    subject_ends_with: str = ""
    max_delivery_attempts: int = 30
    event_time_to_live_minutes: int = 1440
    dead_letter: bool = True  # dead-letter to the registry's container, under deadletter/

    def matches(self, event_type: str, subject: str) -> bool:
        """Whether Event Grid would deliver an event of this type and subject here."""
        return (
            event_type in self.included_event_types
            and subject.startswith(self.subject_begins_with)
            and subject.endswith(self.subject_ends_with)
        )


@dataclass(frozen=True)
class EventConsumer:
    """An Event Grid subscription and the plain function its triggered function calls."""

    subscription: Subscription
    handle: Callable[[Container, Mapping[str, Any]], Awaitable[object]]

    @property
    def function_name(self) -> str:
        """The Event Grid-triggered function's name."""
        return self.subscription.function_name


@dataclass(frozen=True)
class Timer:
    """A timer function: ``run(container)`` on an NCRONTAB schedule (six fields, seconds first, UTC)."""

    name: str
    schedule: str
    run: Callable[[Container], Awaitable[object]]


@dataclass(frozen=True)
class QueueJob:
    """A queue-triggered function: ``run(container, message text)`` for each message of a queue."""

    name: str
    queue: Callable[[str], str]  # storage prefix -> queue name
    run: Callable[[Container, str], Awaitable[object]]

    def binding(self) -> str:
        """The queue name as the trigger binding gives it (with the prefix setting)."""
        return self.queue(PREFIX_SETTING)
