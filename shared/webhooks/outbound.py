"""Outbound webhook calls: no private targets, no redirects, a timeout, a bounded answer.

Webhook URLs come from registry users, so a call must not reach the registry's own network:
addresses that are loopback, link-local (the cloud metadata endpoint), private, reserved,
multicast or unspecified are refused unless REGISTRY_WEBHOOK_ALLOW_PRIVATE is true. The check
runs on the addresses the connection actually uses (a resolver that filters), so a DNS name
cannot be re-pointed between the check and the connect.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from shared.settings import Settings

_MAX_ANSWER = 64 * 1024
_LOGGED_CONTENT = 16_000  # characters of a body kept in the delivery log (a table property holds 32K)


class RefusedAddress(OSError):
    """The webhook URL resolves to an address the registry does not call."""


def forbidden(address: str) -> bool:
    """Whether ``address`` is loopback, link-local, private, reserved, multicast or unspecified."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_reserved
                or ip.is_multicast or ip.is_unspecified or not ip.is_global)


class _GuardedResolver(ThreadedResolver):
    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        if any(forbidden(r["host"]) for r in results):
            raise RefusedAddress(f"{host} resolves to an address webhooks may not call")
        return results


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


class WebhookSender:
    """POSTs to webhook URLs with the guards above; one session for every webhook."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = None if self.settings.webhook_allow_private else _GuardedResolver()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver, limit=0, limit_per_host=8),
                timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout_seconds),
                trust_env=False,
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Delivery:
        """POST ``body`` to ``url``; never raises for the endpoint's faults, they are in the result."""
        request = {"content": body.decode()[:_LOGGED_CONTENT], "headers": headers, "method": "POST",
                   "requestUri": url, "version": "1.1"}
        host = urlsplit(url).hostname or ""
        try:
            if not self.settings.webhook_allow_private:
                try:
                    literal = forbidden(host)
                except ValueError:
                    literal = False  # a name: the resolver checks it
                if literal:
                    raise RefusedAddress(f"{host} is an address webhooks may not call")
            async with self._client().post(url, data=body, headers=headers, allow_redirects=False) as answer:
                content = await answer.content.read(_MAX_ANSWER)
                response = {
                    "statusCode": answer.status,
                    "reasonPhrase": answer.reason or "",
                    "headers": dict(answer.headers),
                    "content": content.decode(errors="replace")[:_LOGGED_CONTENT],
                    "version": "1.1",
                }
        except (aiohttp.ClientError, TimeoutError, OSError) as failure:
            cause = failure.__cause__ if isinstance(failure.__cause__, RefusedAddress) else failure
            return Delivery(request, None, f"{type(cause).__name__}: {cause}")
        return Delivery(request, response)

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
