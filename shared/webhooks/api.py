"""Webhook management (ARM's operations on ``registries/webhooks``), under ``/acr/admin/webhooks``
(routes in :mod:`shared.webhooks.capability`).

``PUT`` creates (or replaces), ``PATCH`` updates, ``GET``/``DELETE`` as usual; ``ping``,
``listEvents`` and ``getCallbackConfig`` are POST actions as in ARM. Beyond ARM: ``deadLetters``
lists the deliveries that failed every attempt, and ``redeliver`` (all of them) or
``deadLetters/<event id>/redeliver`` (one) delivers them again from the first attempt. Bodies are ARM's
``{"properties": {"serviceUri", "customHeaders", "status", "scope", "actions"}}``.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.api.http import container_of, read_json, service
from shared.kernel.container import Container
from shared.webhooks.errors import WebhookCode, WebhookInvalid, WebhookUnknown
from shared.webhooks.fanout import WebhookService
from shared.webhooks.model import Webhook, validate_name, webhook_from_body
from shared.webhooks.settings import WebhookSettings
from shared.webhooks.targets import check_service_uri

_BODY_LIMIT = 64 * 1024
_EVENT_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


async def _body(request: Request) -> Any:
    return await read_json(request, _BODY_LIMIT, WebhookCode.WEBHOOK_INVALID, WebhookCode.WEBHOOK_INVALID)


def _resource(container: Container, webhook: Webhook) -> dict[str, Any]:
    return webhook.resource(container.settings.registry.resource_id, container.settings.registry.location)


async def _webhooks(request: Request) -> tuple[Container, WebhookService]:
    container = await container_of(request)
    return container, await container.get(WebhookService)


async def list_webhooks(request: Request) -> Response:
    """All webhooks: ``{"value": [...]}``."""
    container, webhooks = await _webhooks(request)
    return JSONResponse({"value": [_resource(container, w) for w in await webhooks.store.all()]})


async def get_webhook(request: Request) -> Response:
    """One webhook (without its URI and headers: see getCallbackConfig)."""
    container, webhooks = await _webhooks(request)
    return JSONResponse(_resource(container, await webhooks.store.get(request.path_params["webhook"])))


def _check_location(container: Container, body: Any) -> None:
    """A webhook belongs to the region whose endpoint created it (ACR's webhook ``location``): it
    fires for what arrives in that region, pushed there or replicated there. Another region's
    webhook is created through that region's own endpoint."""
    location = body.get("location") if isinstance(body, dict) else None
    here = container.settings.registry.location
    if location is not None and (not isinstance(location, str) or location.replace(" ", "").lower() != here.lower()):
        raise WebhookInvalid(f"this endpoint serves location {here!r}: create a webhook of another replica "
                             "through that region's own endpoint")


async def create_webhook(request: Request) -> Response:
    """Create a webhook (201), or replace the one of that name (200)."""
    name = validate_name(request.path_params["webhook"])
    body = await _body(request)
    webhook = webhook_from_body(name, body, None)
    container, webhooks = await _webhooks(request)
    _check_location(container, body)
    await check_service_uri(webhook.service_uri, container.settings.group(WebhookSettings).allow_private)
    created = await webhooks.store.create(webhook)
    return JSONResponse(_resource(container, webhook), status_code=201 if created else 200)


async def update_webhook(request: Request) -> Response:
    """Change some properties of a webhook."""
    container, webhooks = await _webhooks(request)
    current = await webhooks.store.get(request.path_params["webhook"])
    webhook = webhook_from_body(current.name, await _body(request), current)
    if webhook.service_uri != current.service_uri:
        await check_service_uri(webhook.service_uri, container.settings.group(WebhookSettings).allow_private)
    await webhooks.store.update(webhook)
    return JSONResponse(_resource(container, webhook))


async def delete_webhook(request: Request) -> Response:
    """Delete a webhook, its delivery log and its pending deliveries."""
    webhooks = await service(request, WebhookService)
    await webhooks.delete(request.path_params["webhook"])
    return Response(status_code=204)


async def ping_webhook(request: Request) -> Response:
    """Send a ping now; ``{"id": <event id>}``. The outcome is in listEvents."""
    webhooks = await service(request, WebhookService)
    event_id, _ = await webhooks.ping(request.path_params["webhook"])
    return JSONResponse({"id": event_id})


async def list_events(request: Request) -> Response:
    """Recent deliveries, newest first, each with its request and response."""
    webhooks = await service(request, WebhookService)
    name = validate_name(request.path_params["webhook"])
    await webhooks.store.get(name)
    return JSONResponse({"value": await webhooks.store.deliveries(name)})


async def dead_letters(request: Request) -> Response:
    """The webhook's dead-lettered deliveries: ``{"value": [{eventId, action, attempts, lastError, ...}]}``."""
    webhooks = await service(request, WebhookService)
    return JSONResponse({"value": await webhooks.dead_letters(request.path_params["webhook"])})


async def redeliver(request: Request) -> Response:
    """Re-deliver every dead letter of the webhook, or the one of ``{event}``; 202 with the event ids."""
    webhooks = await service(request, WebhookService)
    event_id = request.path_params.get("event")
    if event_id is not None and not _EVENT_ID.fullmatch(event_id):
        raise WebhookUnknown("no dead letter of this event")
    event_ids = await webhooks.redeliver(request.path_params["webhook"], event_id)
    return JSONResponse({"value": event_ids}, status_code=202)


async def callback_config(request: Request) -> Response:
    """``{"serviceUri", "customHeaders"}`` of a webhook."""
    webhooks = await service(request, WebhookService)
    webhook = await webhooks.store.get(request.path_params["webhook"])
    return JSONResponse(webhook.callback_config())
