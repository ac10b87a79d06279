"""The API's side of events: the request facts an event carries, and the web process's own
background loops (the outbox sweeper, and under ``make run`` the timer and queue functions)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request

from shared.api.http import open_registry
from shared.capabilities import load_settings
from shared.events.model import RequestInfo
from shared.local_jobs import run_background_jobs
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


def start_background(app: Starlette) -> asyncio.Task[None] | None:
    """Start this process's background loops, if the settings ask for any; the task runs them all.

    With REGISTRY_OUTBOX_SWEEP_SECONDS > 0 the outbox is republished from this process (its first
    sweep at once, so events a killed process left behind go out as soon as it restarts). With
    REGISTRY_BACKGROUND_JOBS the timer functions and queue consumers of ``shared.jobs`` run here on
    their schedules (``make run``). Under Azure Functions both stay off: the host runs the functions.
    """
    try:
        settings = app.state.settings or load_settings()
    except SettingsError:
        return None  # the first request reports the settings error
    loops: list[Coroutine[Any, Any, None]] = []
    if settings.events.outbox_sweep_seconds > 0:
        loops.append(_sweep(app, settings))
    if settings.jobs.enabled:
        loops.append(run_background_jobs(settings))
    if not loops:
        return None
    app.state.settings = settings

    async def run_all() -> None:
        await asyncio.gather(*loops)

    return asyncio.get_running_loop().create_task(run_all())


async def _sweep(app: Starlette, settings: Settings) -> None:
    registry = await open_registry(app.state)
    await registry.outbox.sweep_forever(settings.events.outbox_sweep_seconds)
