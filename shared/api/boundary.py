"""The one place where errors become HTTP answers, and headers every answer carries."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import ErrorCode, RegistryError

log = logging.getLogger("registry.api")
API_VERSION_HEADER = (b"docker-distribution-api-version", b"registry/2.0")


class ErrorBoundary:
    """ASGI middleware: turns :class:`RegistryError` into the spec's JSON errors and anything
    unexpected into UNKNOWN/500 with a request id (details go to the log, not the client)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})
        scope["state"]["request_id"] = request_id
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.append(API_VERSION_HEADER)
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except RegistryError as error:
            if started:
                raise
            await _send_error(send_with_headers, scope, error)
        except Exception:
            log.exception("unhandled error (request %s)", request_id)
            if started:
                raise
            unknown = RegistryError(ErrorCode.UNKNOWN, detail={"requestId": request_id})
            await _send_error(send_with_headers, scope, unknown)


def error_response(error: RegistryError, method: str) -> Response:
    """The spec's JSON error answer (headers only for HEAD)."""
    body = json.dumps(error.body()).encode()
    headers = {"Content-Length": str(len(body)), **error.headers}
    content = b"" if method == "HEAD" else body
    return Response(content, status_code=error.code.status, headers=headers, media_type="application/json")


async def _send_error(send: Any, scope: Scope, error: RegistryError) -> None:
    response = error_response(error, scope["method"])
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
