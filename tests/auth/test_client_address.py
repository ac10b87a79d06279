"""The client address failed logins are counted by: the ASGI peer, or behind the Functions host
(no peer) the last X-Forwarded-For entry; IPv6 per /64."""

from __future__ import annotations

from starlette.requests import Request

from shared.api.guard import client_address


def _request(client: tuple[str, int] | None, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return Request({"type": "http", "method": "GET", "path": "/v2/", "headers": headers, "client": client})


def test_the_peer_address_wins_over_forwarded_headers() -> None:
    assert client_address(_request(("203.0.113.5", 5000), "198.51.100.1")) == "203.0.113.5"


def test_without_a_peer_the_last_forwarded_entry_counts() -> None:
    cases = {
        "198.51.100.1": "198.51.100.1",
        "198.51.100.1:51234": "198.51.100.1",
        "10.0.0.1, 198.51.100.1:443": "198.51.100.1",  # a client may prepend entries, not append
        "[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
        "2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
        "::ffff:198.51.100.4": "198.51.100.4",
        "unknown": "",
        "": "",
        "198.51.100.1, ": "",
    }
    for forwarded, expected in cases.items():
        assert client_address(_request(None, forwarded)) == expected, forwarded
    assert client_address(_request(None)) == ""
    assert client_address(_request(("2001:db8::9", 1))) == "2001:db8::/64"
