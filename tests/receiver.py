"""A local HTTP receiver for webhooks and Event Grid deliveries: records every request it gets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from scripts.azurite import free_port


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class Receiver:
    """Answers 200 to everything, except paths told to fail a number of times first.

    It also speaks Event Grid's validation handshakes: it echoes a validation code, and answers
    the CloudEvents ``OPTIONS`` with ``WebHook-Allowed-Origin``.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.failures: dict[str, int] = {}  # path -> how many more times to answer 500
        self.statuses: dict[str, int] = {}  # path -> status to answer every time
        self.delays: dict[str, float] = {}  # path -> seconds to wait before answering
        self._runner: web.AppRunner | None = None
        self.port = free_port()

    @property
    def url(self) -> str:
        """Base URL of the receiver."""
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(request.method, request.path, dict(request.query),
                                      dict(request.headers), body))
        if request.method == "OPTIONS":
            origin = request.headers.get("WebHook-Request-Origin", "")
            return web.Response(status=200, headers={"WebHook-Allowed-Origin": origin})
        if request.headers.get("aeg-event-type") == "SubscriptionValidation":
            code = json.loads(body)[0]["data"]["validationCode"]
            return web.json_response({"validationResponse": code})
        if request.path in self.delays:
            await asyncio.sleep(self.delays[request.path])
        if self.failures.get(request.path, 0) > 0:
            self.failures[request.path] -= 1
            return web.Response(status=500, text="failing on purpose")
        status = self.statuses.get(request.path, 200)
        if status in (301, 302, 307):
            return web.Response(status=status, headers={"Location": "/redirected"})
        return web.Response(status=status, text="ok")

    async def start(self) -> Receiver:
        """Listen on loopback."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    def at(self, path: str, method: str = "POST") -> list[Received]:
        """The requests received on ``path``."""
        return [r for r in self.received if r.path == path and r.method == method]

    async def wait_for(self, condition: Callable[[], bool], within: float = 20.0) -> None:
        """Wait until ``condition()`` holds; fail after ``within`` seconds."""
        deadline = asyncio.get_running_loop().time() + within
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out; received: {[(r.method, r.path) for r in self.received]}")
            await asyncio.sleep(0.05)
