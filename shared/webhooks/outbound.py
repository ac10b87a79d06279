"""Outbound webhook calls: no refused targets, no redirects, a timeout, a bounded answer.

Which addresses are refused is :mod:`shared.webhooks.targets`' policy. Unless
REGISTRY_WEBHOOK_ALLOW_PRIVATE is true, every socket the client opens goes through
:func:`~shared.webhooks.targets.guarded_socket`, which checks the address actually connected to
(after IDNA normalisation, literal parsing and DNS), so no encoding of a host and no DNS answer
can lead a call to a refused address. Redirects are not followed and proxies are not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver

from shared.settings import Settings
from shared.webhooks.errors import WebhookInvalid
from shared.webhooks.settings import WebhookSettings
from shared.webhooks.targets import RefusedAddress, forbidden, guarded_socket, host_problem, parse_service_uri

__all__ = ["Delivery", "RefusedAddress", "WebhookSender", "forbidden", "header_problem"]

_MAX_ANSWER = 64 * 1024
_LOGGED_CONTENT = 16_000  # characters of a body kept in the delivery log (a table property holds 32K)
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
#: Prefix of the error of a call that was not made because the webhook's definition forbids it;
#: retrying cannot help until the webhook is changed.
NOT_SENT = "not sent: "


def header_problem(name: str, value: str) -> str:
    """Why ``name: value`` is not a header a webhook may send (empty when it is)."""
    if not name or not set(name) <= _TOKEN:
        return f"header name {name[:64]!r} is not an HTTP token"
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        return f"header {name} holds a control character (CR, LF, NUL, ...)"
    if value != value.strip(" \t"):
        return f"header {name} has leading or trailing whitespace"
    return ""


@dataclass(frozen=True)
class Delivery:
    """One call: ACR's ``eventRequestMessage`` and ``eventResponseMessage`` (None when no answer)."""

    request: dict[str, Any]
    response: dict[str, Any] | None
    error: str = ""

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.response is not None and 200 <= int(self.response["statusCode"]) < 300

    @property
    def permanent(self) -> bool:
        """The call was refused before sending (refused address, invalid header): a retry cannot help."""
        return self.error.startswith(NOT_SENT)


class WebhookSender:
    """POSTs to webhook URLs with the guards above; one session for every webhook."""

    def __init__(self, settings: Settings, resolver: AbstractResolver | None = None) -> None:
        self.config = settings.group(WebhookSettings)
        self._resolver = resolver  # DNS (default: the system's); tests give one that answers what they need
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            factory = None if self.config.allow_private else guarded_socket
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=8, socket_factory=factory,
                                               resolver=self._resolver),
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds),
                trust_env=False,
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Delivery:
        """POST ``body`` to ``url``; never raises for the endpoint's faults, they are in the result."""
        request = {"content": body.decode()[:_LOGGED_CONTENT], "headers": dict(headers), "method": "POST",
                   "requestUri": url, "version": "1.1"}
        problem = self._problem(url, headers)
        if problem:
            return Delivery(request, None, f"{NOT_SENT}{problem}")
        try:
            async with self._client().post(url, data=body, headers=dict(headers), allow_redirects=False) as answer:
                content = await answer.content.read(_MAX_ANSWER)
                response = {
                    "statusCode": answer.status,
                    "reasonPhrase": answer.reason or "",
                    "headers": dict(answer.headers),
                    "content": content.decode(errors="replace")[:_LOGGED_CONTENT],
                    "version": "1.1",
                }
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as failure:
            return Delivery(request, None, _describe(failure))
        return Delivery(request, response)

    def _problem(self, url: str, headers: Mapping[str, str]) -> str:
        """Why the call is not made at all: an invalid header or URL, or (unless private targets are
        allowed) a host refused without DNS. Names are checked on connect (:func:`guarded_socket`)."""
        problems = [p for p in (header_problem(k, v) for k, v in headers.items()) if p]
        if problems:
            return f"invalid webhook definition: {problems[0]}"
        try:
            parsed = parse_service_uri(url)
        except WebhookInvalid as invalid:
            return f"invalid webhook definition: {invalid.message}"
        return "" if self.config.allow_private else host_problem(parsed)

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _describe(failure: BaseException) -> str:
    cause = getattr(failure, "os_error", None) or failure.__cause__ or failure
    if isinstance(cause, RefusedAddress) or "webhooks may not call" in str(cause):
        return f"{NOT_SENT}RefusedAddress: {cause}"
    if isinstance(failure, aiohttp.InvalidURL):
        return f"{NOT_SENT}invalid serviceUri: {failure}"
    return f"{type(failure).__name__}: {failure}"
