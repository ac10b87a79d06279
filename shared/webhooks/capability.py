"""The webhooks capability, declared in one place: its service, its admin routes, the Event Grid
consumer that fans events out to webhooks, and the queue functions that deliver them."""

from __future__ import annotations

from shared.api.routes import ADMIN_ACCESS
from shared.events.envelope import CHART_DELETED, CHART_PUSHED, IMAGE_DELETED, IMAGE_PUSHED, IMAGE_QUARANTINED
from shared.kernel.configurator import Configurator
from shared.kernel.container import Container
from shared.kernel.jobs import EventConsumer, QueueJob, Subscription
from shared.kernel.operations import Operation
from shared.kernel.routes import RouteSpec
from shared.storage import layout
from shared.webhooks import api
from shared.webhooks.errors import WEBHOOK_ERRORS
from shared.webhooks.fanout import WebhookService, dead_letter_poisoned, deliver_webhook, fan_out_event
from shared.webhooks.settings import WebhookSettings

#: The Event Grid subscription "webhooks" and its triggered function: enqueue each event's
#: deliveries to the webhooks whose actions and scope match it.
WEBHOOK_FANOUT = EventConsumer(
    Subscription(name="webhooks", function_name="webhook_fanout",
                 included_event_types=(IMAGE_PUSHED, IMAGE_DELETED, CHART_PUSHED, CHART_DELETED, IMAGE_QUARANTINED)),
    fan_out_event,
)
#: One attempt of one delivery per message; a failed attempt enqueues the next.
WEBHOOK_DELIVERY = QueueJob("webhook_delivery", layout.delivery_queue, deliver_webhook)
#: A message the delivery function failed on five times: dead-letter its delivery, visibly.
WEBHOOK_DELIVERY_POISON = QueueJob("webhook_delivery_poison",
                                   lambda prefix: layout.poison_queue(layout.delivery_queue(prefix)),
                                   dead_letter_poisoned)

_ALL = "/acr/admin/webhooks"
_ONE = _ALL + "/{webhook}"
ROUTES = tuple(RouteSpec(path, methods, handler, Operation.ADMIN, ADMIN_ACCESS) for path, methods, handler in (
    (_ALL, ("GET",), api.list_webhooks),
    (_ONE, ("GET",), api.get_webhook),
    (_ONE, ("PUT",), api.create_webhook),
    (_ONE, ("PATCH",), api.update_webhook),
    (_ONE, ("DELETE",), api.delete_webhook),
    (_ONE + "/ping", ("POST",), api.ping_webhook),
    (_ONE + "/listEvents", ("POST", "GET"), api.list_events),
    (_ONE + "/getCallbackConfig", ("POST",), api.callback_config),
    (_ONE + "/deadLetters", ("GET", "POST"), api.dead_letters),
    (_ONE + "/redeliver", ("POST",), api.redeliver),
    (_ONE + "/deadLetters/{event}/redeliver", ("POST",), api.redeliver),
))


def register(config: Configurator) -> None:
    """Add webhooks: their settings and errors, the service, the admin routes, the fan-out
    consumer and the delivery queue jobs."""
    config.add_settings(WebhookSettings)
    if not config.enabled(WebhookSettings):
        return
    config.add_tables(layout.WEBHOOKS)
    config.add_errors(WEBHOOK_ERRORS)
    config.add_service(WebhookService, _service)
    config.add_routes(*ROUTES)
    config.add_consumer(WEBHOOK_FANOUT)
    config.add_queue_job(WEBHOOK_DELIVERY)
    config.add_queue_job(WEBHOOK_DELIVERY_POISON)


async def _service(container: Container) -> WebhookService:
    return WebhookService(container.storage, container.settings)
