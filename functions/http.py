"""The HTTP trigger: every request, streamed both ways, served by the registry's one ASGI app.

With HTTP streams the Functions host forwards each request to the Python worker's own HTTP
server instead of buffering it (a buffered body is capped by FUNCTIONS_REQUEST_BODY_SIZE_LIMIT
and held in memory whole). The worker hands this function a Starlette ``Request`` whose body
has not been read yet (``azurefunctions-extensions-http-fastapi``'s Request is Starlette's). The
function runs the ASGI app on that request's own ``receive``, so a PATCH flows into storage block
by block, and answers with a :class:`RelayedResponse` that forwards the app's messages as the app
sends them, so a proxied blob download streams back too.
"""

from __future__ import annotations

import asyncio
import ipaddress
from contextlib import suppress
from typing import Any

import azure.functions as func

# Importing the extension registers its Request and Response types with the worker, which then
# starts its HTTP server and passes HTTP functions their requests through it (HTTP streams).
import azurefunctions.extensions.http.fastapi  # noqa: F401
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.composition import create_app

#: The one ASGI app; uvicorn serves the same app locally (`make run`).
asgi_app = create_app()

#: The HTTP function's name, as the host lists it.
FUNCTION_NAME = "http_app_func"

# Headers that concern only the hop from the host to the worker.
_WORKER_HEADERS = {b"x-ms-invocation-id"}


def function_app(app: ASGIApp | None = None) -> func.FunctionApp:
    """A function app whose HTTP function (route ``{*route}``, every method, anonymous) serves
    each request with ``app`` (default: :data:`asgi_app`), streaming bodies both ways.

    The registry authenticates requests itself, so the function key is not used.
    """
    target = app or asgi_app
    functions = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    # The worker checks these annotations: Request and Response are the extension's types.
    @functions.function_name(FUNCTION_NAME)
    @functions.route(route="/{*route}", methods=list(func.HttpMethod), auth_level=func.AuthLevel.ANONYMOUS)
    async def http_app_func(req: Request) -> Response:
        return await serve(target, req)

    return functions


async def serve(app: ASGIApp, request: Request) -> Response:
    """Run ``app`` on ``request`` until its answer begins; the rest of the answer (its body)
    goes out through the returned response, as the app produces it."""
    relay = _Relay()
    task = asyncio.ensure_future(app(app_scope(request.scope), request.receive, relay.send))
    either: set[asyncio.Future[Any]] = {task, relay.started}
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if not relay.started.done():
        task.result()  # the app failed before answering: the worker reports the error
        raise RuntimeError("the ASGI app ended without answering")
    return RelayedResponse(relay.started.result(), relay, task)


def app_scope(outer: Scope) -> Scope:
    """The scope the app sees for a request the worker's server received from the host.

    The host reaches the worker on loopback and passes the client's ``Host`` and scheme in
    ``X-Forwarded-Host`` and ``X-Forwarded-Proto``, appending its own value to any the client
    sent; the last value is the host's. They are restored, so that the token service's realm and
    audience are the registry's public name, as when the host buffered requests.
    """
    headers = [(k, v) for k, v in outer["headers"] if k not in _WORKER_HEADERS]
    scheme = outer.get("scheme", "http")
    if _is_loopback(outer.get("client")):
        host = _last_value(headers, b"x-forwarded-host")
        if host:
            headers = [(k, v) for k, v in headers if k != b"host"] + [(b"host", host)]
        proto = _last_value(headers, b"x-forwarded-proto")
        if proto in (b"http", b"https"):
            scheme = proto.decode()
            headers = [(k, v) for k, v in headers if k != b"x-forwarded-proto"] + [(b"x-forwarded-proto", proto)]
    return {
        "type": "http",
        "asgi": dict(outer.get("asgi", {"version": "3.0"})),
        "http_version": outer.get("http_version", "1.1"),
        "method": outer["method"],
        "scheme": scheme,
        "path": outer["path"],
        "raw_path": outer.get("raw_path"),
        "root_path": "",
        "query_string": outer.get("query_string", b""),
        "headers": headers,
        "client": outer.get("client"),
        "server": outer.get("server"),
        "state": {},
    }


def _is_loopback(client: Any) -> bool:
    try:
        return bool(client) and ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


def _last_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    values = [v for k, v in headers if k == name]
    return values[-1].rsplit(b",", 1)[-1].strip() if values else b""


class _Relay:
    """The app's side of the answer: its start message, then its body messages one at a time
    (the app waits while one is still on its way, so a download holds about one chunk)."""

    def __init__(self) -> None:
        self.started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._body: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)

    async def send(self, message: Message) -> None:
        """The ``send`` the app is given."""
        if message["type"] == "http.response.start":
            self.started.set_result(message)
        elif message["type"] == "http.response.body":
            await self._body.put(message)

    async def next_body(self, task: asyncio.Future[None]) -> Message:
        """The app's next body message; the app's error if it failed first."""
        if self._body.empty() and not task.done():
            getter = asyncio.ensure_future(self._body.get())
            either: set[asyncio.Future[Any]] = {getter, task}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                return getter.result()
            getter.cancel()  # a cancelled get takes nothing off the queue
        if not self._body.empty():
            return self._body.get_nowait()
        task.result()
        return {"type": "http.response.body", "body": b"", "more_body": False}


class RelayedResponse(Response):
    """A response whose status and headers the app has sent, and whose body it is still sending."""

    def __init__(self, start: Message, relay: _Relay, task: asyncio.Future[None]) -> None:
        self.status_code = start["status"]
        self.raw_headers = list(start.get("headers", []))
        self.background = None
        self._start = start
        self._relay = relay
        self._task = task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(self._start)
            while True:
                message = await self._relay.next_body(self._task)
                await send(message)
                if not message.get("more_body", False):
                    break
            await self._task
        finally:
            if not self._task.done():  # the client went away: stop the app
                self._task.cancel()
                with suppress(asyncio.CancelledError):
                    await self._task
