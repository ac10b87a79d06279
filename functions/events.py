"""Event-driven functions: the webhook fan-out (Event Grid trigger) and the outbox republisher (timer).

The fan-out's name is the ``function_name`` of ``shared.events.subscriptions``, which Bicep
subscribes to the topic and the local Event Grid calls; the timer's schedule is ``shared.jobs``'.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

from shared.capabilities import load_settings
from shared.events.subscriptions import WEBHOOK_FANOUT
from shared.jobs import REPUBLISH_OUTBOX
from shared.webhooks.fanout import fan_out_event

bp = func.Blueprint()  # type: ignore[no-untyped-call]


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


@bp.function_name(WEBHOOK_FANOUT)
@bp.event_grid_trigger(arg_name="event")
async def webhook_fanout(event: func.EventGridEvent) -> None:
    """Enqueue the event's delivery to every matching webhook (raises if it cannot: Event Grid retries)."""
    await fan_out_event(load_settings(), envelope_of(event))


@bp.function_name(REPUBLISH_OUTBOX.name)
@bp.timer_trigger(schedule=REPUBLISH_OUTBOX.schedule, arg_name="timer", run_on_startup=False, use_monitor=True)
async def republish_outbox_timer(timer: func.TimerRequest) -> None:
    """Every minute: publish the events a crash or a failed publish left in the outbox."""
    await REPUBLISH_OUTBOX.run(load_settings())
