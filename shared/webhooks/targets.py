"""Which addresses a webhook may call: the one policy, applied at creation and on every connection.

Webhook URLs come from registry users, so a call must not reach the registry's own network:
loopback, private, link-local, CGNAT (100.64.0.0/10), unique-local (fc00::/7), documentation,
multicast, reserved and unspecified addresses, the cloud metadata endpoints, and IPv6 forms that
embed one of those IPv4 addresses (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) are refused
unless REGISTRY_WEBHOOK_ALLOW_PRIVATE is true.

Two checks use the policy. :func:`check_service_uri` refuses such a URL when a webhook is created
or updated: the host is read as the HTTP client reads it (yarl's IDNA and Unicode normalisation,
so ``127.0.0.1`` written with fullwidth digits or ideographic full stops is ``127.0.0.1``),
numeric IPv4 forms as the C resolver reads them (``2130706433``, ``0x7f.1``, ``0177.0.0.1``,
``0``), and names are resolved. The outbound sender then checks the address of every socket it
connects (:func:`guarded_socket`), after normalisation and DNS, so neither a name re-pointed later
nor an encoding this module did not foresee reaches a refused address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket

import yarl

from shared.webhooks.errors import WebhookInvalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_BLOCKED = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/96", "::1/128", "64:ff9b:1::/48", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10",
    "fec0::/10", "ff00::/8",
))
#: Metadata and platform endpoints that are not in a private range (Azure's WireServer); the
#: others (169.254.169.254, 100.100.100.200, fd00:ec2::254) are in blocked ranges already.
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "168.63.129.16", "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254",
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")
_RESOLVE_TIMEOUT = 5.0


class RefusedAddress(OSError):
    """A webhook URL leads to an address the registry does not call."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found += list(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def refused(ip: IPAddress) -> str:
    """Why ``ip`` may not be called (empty when it may)."""
    if ip in METADATA:
        return "a metadata endpoint"
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(ip):
            if reason := refused(inner):
                return f"{reason} (embedded in {ip})"
    if ip.is_loopback:
        return "loopback"
    if any(ip in net for net in _BLOCKED) or not ip.is_global:
        return "not a public address"
    return ""


def forbidden(address: str) -> bool:
    """Whether the IP address ``address`` (as a socket reports it, maybe with a ``%zone``) is refused."""
    return bool(refused(ipaddress.ip_address(address.split("%", 1)[0])))


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` names without DNS, as an HTTP client or the C resolver reads it.

    Besides dotted quads and IPv6 this takes the legacy IPv4 forms ``inet_aton`` accepts
    (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``, ``0``) and a trailing dot.
    """
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _invalid(message: str) -> WebhookInvalid:
    return WebhookInvalid(message)


def parse_service_uri(value: str) -> yarl.URL:
    """``value`` as the HTTP client will read it; WEBHOOK_INVALID unless an absolute http(s) URL."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in value) or len(value) > 2048:
        raise _invalid("serviceUri may not contain spaces, control characters or backslashes")
    try:
        url = yarl.URL(value)
    except ValueError:
        raise _invalid("serviceUri is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise _invalid("serviceUri must be an absolute http or https URL")
    if "%" in url.host:
        raise _invalid("serviceUri's host may not be percent-encoded")
    return url


def host_problem(url: yarl.URL) -> str:
    """Why the host of ``url`` may not be called, as far as it can be told without DNS (empty: no reason)."""
    host = str(url.host)
    address = literal_address(host)
    if address is not None:
        reason = refused(address)
        return f"serviceUri's host {address} is {reason}; webhooks may not call it" if reason else ""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "serviceUri's host is loopback; webhooks may not call it"
    return ""


async def _resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), _RESOLVE_TIMEOUT)
    except (OSError, TimeoutError, UnicodeError):
        return []  # not resolvable now: every connection is checked anyway
    return [str(info[4][0]) for info in infos]


async def check_service_uri(value: str, allow_private: bool) -> None:
    """WEBHOOK_INVALID unless ``value`` is an http(s) URL whose host is an address webhooks may call."""
    url = parse_service_uri(value)
    if allow_private:
        return
    if problem := host_problem(url):
        raise _invalid(problem)
    if literal_address(str(url.host)) is not None:
        return
    for resolved in await _resolve(str(url.host), url.port or 443):
        if reason := refused(ipaddress.ip_address(resolved.split("%", 1)[0])):
            raise _invalid(f"serviceUri's host resolves to {resolved}, {reason}; webhooks may not call it")


def guarded_socket(addr_info: tuple[int, int, int, str, tuple[object, ...]]) -> socket.socket:
    """The socket factory of the outbound client: refuse to connect to a refused address.

    It sees the address each connection attempt actually goes to, after IDNA, literal parsing and
    DNS, for every hop (aiohttp's ``socket_factory``).
    """
    family, kind, proto, _, sockaddr = addr_info
    address = str(sockaddr[0])
    reason = refused(ipaddress.ip_address(address.split("%", 1)[0]))
    if reason:
        raise RefusedAddress(f"{address} is {reason}: webhooks may not call it")
    return socket.socket(family, kind, proto)
