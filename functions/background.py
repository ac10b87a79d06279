"""The background functions, one trigger per declaration the capabilities registered
(``shared.composition``): an Event Grid trigger per consumer (Bicep subscribes each to the topic,
by its function name), a timer trigger per timer, a queue trigger per queue job.

Each trigger turns its input into plain values and calls the declared plain function with the
process's container (built on the first call, then reused). The queues' connection is
``RegistryStorage``: a connection string locally, ``RegistryStorage__queueServiceUri`` with the
managed identity in Azure; their names are the storage prefix setting's.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

from shared.composition import APPLICATION, container
from shared.kernel.configurator import Application
from shared.kernel.jobs import QUEUE_CONNECTION, EventConsumer, QueueJob, Timer


def envelope_of(event: func.EventGridEvent) -> dict[str, Any]:
    """The delivered event as the plain functions take it (Event Grid schema)."""
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


def blueprint(application: Application = APPLICATION) -> func.Blueprint:
    """A blueprint with the triggers of ``application``'s consumers, timers and queue jobs."""
    bp = func.Blueprint()  # type: ignore[no-untyped-call]
    for consumer in application.consumers:
        _event_trigger(bp, consumer)
    for timer in application.timers:
        _timer_trigger(bp, timer)
    for job in application.queue_jobs:
        _queue_trigger(bp, job)
    return bp


def _named(function: Any, name: str) -> Any:
    """``function`` under the name of the function it implements (each trigger has its own)."""
    function.__name__ = function.__qualname__ = name
    return function


def _event_trigger(bp: func.Blueprint, consumer: EventConsumer) -> None:
    async def trigger(event: func.EventGridEvent) -> None:
        # Raises if the event cannot be handled: Event Grid delivers it again.
        await consumer.handle(await container(), envelope_of(event))

    bp.function_name(consumer.function_name)(
        bp.event_grid_trigger(arg_name="event")(_named(trigger, consumer.function_name)))


def _timer_trigger(bp: func.Blueprint, declared: Timer) -> None:
    async def trigger(timer: func.TimerRequest) -> None:
        await declared.run(await container())

    bp.function_name(declared.name)(
        bp.timer_trigger(schedule=declared.schedule, arg_name="timer", run_on_startup=False, use_monitor=True)(
            _named(trigger, declared.name)))


def _queue_trigger(bp: func.Blueprint, job: QueueJob) -> None:
    async def trigger(message: func.QueueMessage) -> None:
        # Raises only if storage fails: the host retries the message, then moves it to the poison queue.
        await job.run(await container(), message.get_body().decode())

    bp.function_name(job.name)(
        bp.queue_trigger(arg_name="message", queue_name=job.binding(), connection=QUEUE_CONNECTION)(
            _named(trigger, job.name)))
