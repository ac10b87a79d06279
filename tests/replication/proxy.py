"""A round-robin HTTP proxy for end-to-end tests: each request goes to the next upstream in turn,
as DNS that answers with a different region each time would send it. Bodies stream both ways;
headers pass unchanged (``Host``, ``Authorization``, ``Location`` included) except the hop-by-hop
ones, and redirects go back to the client."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web

_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                  "transfer-encoding", "upgrade", "content-length"})
_PIECE = 256 * 1024


@dataclass(frozen=True)
class Forwarded:
    """One request as the proxy passed it on: which upstream got it, and what it answered."""

    method: str
    path: str
    upstream: int
    status: int
    location: str


class RoundRobinProxy:
    """Listens on a loopback port (in a thread of its own) and alternates requests between ``upstreams``."""

    def __init__(self, upstreams: Sequence[str]) -> None:
        self.upstreams = [u.rstrip("/") for u in upstreams]
        self.forwarded: list[Forwarded] = []
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.host = ""

    def __enter__(self) -> RoundRobinProxy:
        self._thread.start()
        self.host = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _start(self) -> str:
        self._session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=600))
        app = web.Application(client_max_size=0)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        index = next(self._turn) % len(self.upstreams)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        if request.content_length is not None:
            headers["Content-Length"] = str(request.content_length)
        body = _pieces(request) if request.body_exists else None
        async with self._session.request(request.method, self.upstreams[index] + request.raw_path, headers=headers,
                                         data=body, allow_redirects=False,
                                         skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type")) as up:
            response = web.StreamResponse(status=up.status, reason=up.reason,
                                          headers={k: v for k, v in up.headers.items() if k.lower() not in _HOP})
            if up.content_length is not None:
                response.content_length = up.content_length
            self.forwarded.append(Forwarded(request.method, request.path, index, up.status,
                                            up.headers.get("Location", "")))
            try:
                await response.prepare(request)
                if request.method != "HEAD":
                    async for chunk in up.content.iter_chunked(_PIECE):
                        await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:
                pass  # the client hung up (it had what it needed, e.g. an error's status)
            return response


async def _pieces(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(_PIECE):
        yield chunk
