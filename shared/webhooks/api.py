"""Webhook management (ARM's operations on ``registries/webhooks``), under ``/acr/admin/webhooks``.

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
from starlette.routing import Route

from shared.api.http import read_json, registry_of
from shared.errors import ErrorCode, RegistryError
from shared.registry.registry import Registry
from shared.webhooks.model import Webhook, validate_name, webhook_from_body
from shared.webhooks.targets import check_service_uri

_BODY_LIMIT = 64 * 1024
_EVENT_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


async def _body(request: Request) -> Any:
    return await read_json(request, _BODY_LIMIT, ErrorCode.WEBHOOK_INVALID, ErrorCode.WEBHOOK_INVALID)


def _resource(registry: Registry, webhook: Webhook) -> dict[str, Any]:
    return webhook.resource(registry.settings.registry_resource_id, registry.settings.location)


async def list_webhooks(request: Request) -> Response:
    """All webhooks: ``{"value": [...]}``."""
    registry = await registry_of(request)
    return JSONResponse({"value": [_resource(registry, w) for w in await registry.webhooks.store.all()]})


async def get_webhook(request: Request) -> Response:
    """One webhook (without its URI and headers: see getCallbackConfig)."""
    registry = await registry_of(request)
    return JSONResponse(_resource(registry, await registry.webhooks.store.get(request.path_params["webhook"])))


async def create_webhook(request: Request) -> Response:
    """Create a webhook (201), or replace the one of that name (200)."""
    name = validate_name(request.path_params["webhook"])
    webhook = webhook_from_body(name, await _body(request), None)
    registry = await registry_of(request)
    await check_service_uri(webhook.service_uri, registry.settings.webhook_allow_private)
    created = await registry.webhooks.store.create(webhook)
    return JSONResponse(_resource(registry, webhook), status_code=201 if created else 200)


async def update_webhook(request: Request) -> Response:
    """Change some properties of a webhook."""
    registry = await registry_of(request)
    current = await registry.webhooks.store.get(request.path_params["webhook"])
    webhook = webhook_from_body(current.name, await _body(request), current)
    if webhook.service_uri != current.service_uri:
        await check_service_uri(webhook.service_uri, registry.settings.webhook_allow_private)
    await registry.webhooks.store.update(webhook)
    return JSONResponse(_resource(registry, webhook))


async def delete_webhook(request: Request) -> Response:
    """Delete a webhook, its delivery log and its pending deliveries."""
    registry = await registry_of(request)
    await registry.webhooks.delete(request.path_params["webhook"])
    return Response(status_code=204)


async def ping_webhook(request: Request) -> Response:
    """Send a ping now; ``{"id": <event id>}``. The outcome is in listEvents."""
    registry = await registry_of(request)
    event_id, _ = await registry.webhooks.ping(request.path_params["webhook"])
    return JSONResponse({"id": event_id})


async def list_events(request: Request) -> Response:
    """Recent deliveries, newest first, each with its request and response."""
    registry = await registry_of(request)
    name = validate_name(request.path_params["webhook"])
    await registry.webhooks.store.get(name)
    return JSONResponse({"value": await registry.webhooks.store.deliveries(name)})


async def dead_letters(request: Request) -> Response:
    """The webhook's dead-lettered deliveries: ``{"value": [{eventId, action, attempts, lastError, ...}]}``."""
    registry = await registry_of(request)
    return JSONResponse({"value": await registry.webhooks.dead_letters(request.path_params["webhook"])})


async def redeliver(request: Request) -> Response:
    """Re-deliver every dead letter of the webhook, or the one of ``{event}``; 202 with the event ids."""
    registry = await registry_of(request)
    event_id = request.path_params.get("event")
    if event_id is not None and not _EVENT_ID.fullmatch(event_id):
        raise RegistryError(ErrorCode.WEBHOOK_UNKNOWN, "no dead letter of this event")
    event_ids = await registry.webhooks.redeliver(request.path_params["webhook"], event_id)
    return JSONResponse({"value": event_ids}, status_code=202)


async def callback_config(request: Request) -> Response:
    """``{"serviceUri", "customHeaders"}`` of a webhook."""
    registry = await registry_of(request)
    webhook = await registry.webhooks.store.get(request.path_params["webhook"])
    return JSONResponse(webhook.callback_config())


_ONE = "/acr/admin/webhooks/{webhook}"
ROUTES = [
    Route("/acr/admin/webhooks", list_webhooks, methods=["GET"]),
    Route(_ONE, get_webhook, methods=["GET"]),
    Route(_ONE, create_webhook, methods=["PUT"]),
    Route(_ONE, update_webhook, methods=["PATCH"]),
    Route(_ONE, delete_webhook, methods=["DELETE"]),
    Route(_ONE + "/ping", ping_webhook, methods=["POST"]),
    Route(_ONE + "/listEvents", list_events, methods=["POST", "GET"]),
    Route(_ONE + "/getCallbackConfig", callback_config, methods=["POST"]),
    Route(_ONE + "/deadLetters", dead_letters, methods=["GET", "POST"]),
    Route(_ONE + "/redeliver", redeliver, methods=["POST"]),
    Route(_ONE + "/deadLetters/{event}/redeliver", redeliver, methods=["POST"]),
]
