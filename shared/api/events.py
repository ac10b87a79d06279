"""The API's side of events: the request facts an event carries, and the outbox sweeper."""

from __future__ import annotations

import asyncio
import logging
import uuid

from starlette.applications import Starlette
from starlette.requests import Request

from shared.api.http import open_registry
from shared.events.model import RequestInfo
from shared.settings import Settings, SettingsError

log = logging.getLogger("registry.api.events")


def request_info(request: Request) -> RequestInfo:
    """ACR's ``request`` object of an event: request id, host, method and user agent."""
    raw_id = getattr(request.state, "request_id", "") or uuid.uuid4().hex
    try:
        request_id = str(uuid.UUID(raw_id))
    except ValueError:
        request_id = raw_id
    return RequestInfo(request_id, request.headers.get("host", ""), request.method,
                       request.headers.get("user-agent", ""))


def start_outbox_sweeper(app: Starlette) -> asyncio.Task[None] | None:
    """With REGISTRY_OUTBOX_SWEEP_SECONDS > 0, republish the outbox from this process (``make run``).

    Under Azure Functions the timer function does it instead (the setting stays 0). The first
    sweep runs at once, so events a killed process left behind go out as soon as it restarts.
    """
    try:
        settings = app.state.settings or Settings.from_env()
    except SettingsError:
        return None  # the first request reports the settings error
    if settings.outbox_sweep_seconds <= 0:
        return None
    app.state.settings = settings

    async def sweep() -> None:
        registry = await open_registry(app.state)
        await registry.outbox.sweep_forever(settings.outbox_sweep_seconds)

    return asyncio.get_running_loop().create_task(sweep())
