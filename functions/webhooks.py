"""Queue-triggered webhook functions: one delivery attempt per message, and the poison queue.

The queues are ``shared.jobs``' (names from ``shared.storage.layout`` with the storage prefix
setting); their connection is ``RegistryStorage``: a connection string locally,
``RegistryStorage__queueServiceUri`` with the managed identity in Azure.
"""

from __future__ import annotations

import azure.functions as func

from shared.capabilities import load_settings
from shared.jobs import QUEUE_CONNECTION, WEBHOOK_DELIVERY, WEBHOOK_DELIVERY_POISON

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name(WEBHOOK_DELIVERY.name)
@bp.queue_trigger(arg_name="message", queue_name=WEBHOOK_DELIVERY.binding(), connection=QUEUE_CONNECTION)
async def webhook_delivery(message: func.QueueMessage) -> None:
    """One attempt of one delivery; a failed attempt enqueues the next (raises only if storage fails)."""
    await WEBHOOK_DELIVERY.run(load_settings(), message.get_body().decode())


@bp.function_name(WEBHOOK_DELIVERY_POISON.name)
@bp.queue_trigger(arg_name="message", queue_name=WEBHOOK_DELIVERY_POISON.binding(), connection=QUEUE_CONNECTION)
async def webhook_delivery_poison(message: func.QueueMessage) -> None:
    """A message the delivery function failed on five times: dead-letter its delivery, visibly."""
    await WEBHOOK_DELIVERY_POISON.run(load_settings(), message.get_body().decode())
