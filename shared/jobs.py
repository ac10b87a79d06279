"""The background functions, declared once: timers with their NCRONTAB schedules and queue consumers.

``functions/`` binds each to its Azure Functions trigger (the schedule and queue come from here);
under ``make run`` (uvicorn, REGISTRY_BACKGROUND_JOBS=true) :mod:`shared.local_jobs` runs the same
plain functions on the same schedules and consumes the same queues with the host's retry rules
(``host.json``'s ``extensions.queues`` holds :data:`QUEUE_HOST_SETTINGS`; a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared.events.outbox import republish_outbox
from shared.maintenance import purge_stale_uploads
from shared.settings import Settings
from shared.storage import layout
from shared.webhooks.fanout import dead_letter_poisoned, deliver_webhook

#: Binding expression of the storage prefix: the Functions host fills it in from the app setting.
PREFIX_SETTING = "%REGISTRY_STORAGE_PREFIX%"
#: The connection (app setting, or ``<name>__queueServiceUri`` with a managed identity) of the
#: registry's queues in the Functions host.
QUEUE_CONNECTION = "RegistryStorage"


@dataclass(frozen=True)
class Timer:
    """A timer function: ``run(settings)`` on an NCRONTAB schedule (six fields, seconds first, UTC)."""

    name: str
    schedule: str
    run: Callable[[Settings], Awaitable[Any]]


@dataclass(frozen=True)
class QueueJob:
    """A queue-triggered function: ``run(settings, message text)`` for each message of a queue."""

    name: str
    queue: Callable[[str], str]  # storage prefix -> queue name
    run: Callable[[Settings, str], Awaitable[Any]]

    def binding(self) -> str:
        """The queue name as the trigger binding gives it (with the prefix setting)."""
        return self.queue(PREFIX_SETTING)


PURGE_STALE_UPLOADS = Timer("purge_stale_uploads", "0 17 * * * *", purge_stale_uploads)  # hourly
REPUBLISH_OUTBOX = Timer("republish_outbox", "0 * * * * *", republish_outbox)  # every minute
TIMERS = (PURGE_STALE_UPLOADS, REPUBLISH_OUTBOX)

WEBHOOK_DELIVERY = QueueJob("webhook_delivery", layout.delivery_queue, deliver_webhook)
WEBHOOK_DELIVERY_POISON = QueueJob("webhook_delivery_poison",
                                   lambda prefix: layout.poison_queue(layout.delivery_queue(prefix)),
                                   dead_letter_poisoned)
QUEUES = (WEBHOOK_DELIVERY, WEBHOOK_DELIVERY_POISON)

#: How the host runs queue triggers (host.json ``extensions.queues``), mimicked locally: a message
#: whose function raised is retried after ``visibilityTimeout``, and after ``maxDequeueCount``
#: failures moved to ``<queue>-poison``; an empty queue is polled at least every
#: ``maxPollingInterval``. Messages are base64 text.
QUEUE_HOST_SETTINGS: dict[str, Any] = {
    "batchSize": 16,
    "maxDequeueCount": 5,
    "visibilityTimeout": "00:00:30",
    "maxPollingInterval": "00:00:02",
    "messageEncoding": "base64",
}


def seconds(timespan: str) -> float:
    """Seconds of a host.json ``hh:mm:ss`` timespan."""
    hours, minutes, secs = timespan.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)
