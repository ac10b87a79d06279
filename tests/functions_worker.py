"""Calls the indexed HTTP function as the Python worker does with HTTP streams, in-process.

Under HTTP streams the host forwards each request to the worker's own HTTP server: the
extension's ``WebApp`` (a FastAPI app with one catch-all route). The route hands the request, a
Starlette ``Request`` on the server's ``receive``, to the function's invocation (another task)
and returns the ``Response`` the function returned, which the server then sends. :class:`Worker`
builds that same ``WebApp`` around the indexed function and drives it with ASGI messages as
uvicorn would: the body arrives in pieces from a ``receive`` that reads an iterator, so a body
of any size is generated on the fly, and the answer's body can be consumed as it streams.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import azure.functions as func
from azurefunctions.extensions.http.fastapi import WebApp
from starlette.datastructures import Headers
from starlette.requests import Request

#: Where the host sees the registry (the client's Host), and where the worker's server listens.
PUBLIC_HOST = "registry.example.test"
WORKER_ADDRESS = ("127.0.0.1", 53017)
HOST_ADDRESS = ("127.0.0.1", 41000)


@dataclass
class Answer:
    """What the worker's server sent back."""

    status: int
    headers: Headers
    body: bytes


async def pieces_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """``data`` in pieces of ``size`` bytes, as a server receives a body."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


class Worker:
    """The worker's HTTP server around the HTTP function of ``function_app``."""

    def __init__(self, function_app: func.FunctionApp, name: str = "http_app_func") -> None:
        functions = {f.get_function_name(): f for f in function_app.get_functions()}
        self.user_function: Callable[..., Awaitable[Any]] = functions[name].get_user_function()
        self.trigger_arg = functions[name].get_trigger().name
        web = WebApp()

        async def catch_all(request: Request) -> Any:
            # The worker runs the function in its invocation's own task, handing it the request.
            return await asyncio.ensure_future(self.user_function(**{self.trigger_arg: request}))

        web.route(catch_all)
        self.server_app = web.get_app()

    async def request(self, method: str, url: str, body: bytes | AsyncIterator[bytes] = b"",
                      headers: dict[str, str] | None = None,
                      on_body: Callable[[bytes], None] | None = None) -> Answer:
        """Send one request; with ``on_body`` the answer's body goes there piece by piece
        instead of into :attr:`Answer.body`."""
        parts = urlsplit(url)
        sent: dict[str, str] = {"host": f"{WORKER_ADDRESS[0]}:{WORKER_ADDRESS[1]}",
                                "x-forwarded-host": PUBLIC_HOST, "x-forwarded-proto": "https",
                                "x-forwarded-for": "203.0.113.7", "x-ms-invocation-id": str(uuid.uuid4())}
        if isinstance(body, bytes):
            sent["content-length"] = str(len(body))
            stream = pieces_of(body)
        else:
            stream = body
        sent |= {k.lower(): v for k, v in (headers or {}).items()}
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": unquote(parts.path), "raw_path": parts.path.encode(),
            "root_path": "", "query_string": parts.query.encode(),
            "headers": [(k.encode(), v.encode()) for k, v in sent.items()],
            "client": HOST_ADDRESS, "server": WORKER_ADDRESS, "state": {},
        }
        done = asyncio.Event()
        body_done = False

        async def receive() -> dict[str, Any]:
            nonlocal body_done
            if not body_done:
                try:
                    return {"type": "http.request", "body": await anext(stream), "more_body": True}
                except StopAsyncIteration:
                    body_done = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()  # like uvicorn: nothing more until the answer is sent
            return {"type": "http.disconnect"}

        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                if on_body is None:
                    chunks.append(message.get("body", b""))
                else:
                    on_body(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        await self.server_app(scope, receive, send)
        done.set()
        return Answer(start["status"], Headers(raw=start["headers"]), b"".join(chunks))
