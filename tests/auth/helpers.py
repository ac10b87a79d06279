"""Helpers of the identity tests: clients from chosen addresses, scoped tokens, JWT payloads read
by hand (not by the code under test) and the scrypt computations a request costs."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

SERVICE = "registry.test"


def client_from(app: Starlette, address: str, **kwargs: Any) -> httpx.AsyncClient:
    """A client of ``app`` whose requests come from ``address`` (the ASGI ``client``)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)),
                             base_url=f"http://{SERVICE}", **kwargs)


def payload(token: str) -> dict[str, Any]:
    """The claims of a JWT, decoded by hand (no signature check)."""
    part = token.split(".")[1]
    loaded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return loaded


async def scoped_token(admin: httpx.AsyncClient, name: str, actions: list[str], *passwords: str) -> list[str]:
    """Create (or update) scope map ``<name>-map`` and token ``name``; generate ``passwords``
    (default: password1) and return their values."""
    response = await admin.put(f"/acr/admin/scopemaps/{name}-map", json={"actions": actions})
    assert response.status_code == 200, response.text
    response = await admin.put(f"/acr/admin/tokens/{name}", json={"scopeMap": f"{name}-map"})
    assert response.status_code == 200, response.text
    values = []
    for which in passwords or ("password1",):
        response = await admin.post(f"/acr/admin/tokens/{name}/passwords", json={"name": which})
        assert response.status_code == 200, response.text
        values.append(str(response.json()["value"]))
    return values


async def offline_login(http: httpx.AsyncClient, username: str, password: str,
                        scope: str = "") -> dict[str, Any]:
    """``POST /oauth2/token`` with the password grant and ``access_type=offline``: the JSON answer."""
    response = await http.post("/oauth2/token", data={
        "grant_type": "password", "service": SERVICE, "username": username, "password": password,
        "access_type": "offline", "scope": scope})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "refresh_token" in body
    return body


async def refresh(http: httpx.AsyncClient, token: str, scope: str = "", offline: bool = False) -> httpx.Response:
    """``POST /oauth2/token`` with the refresh-token grant."""
    data = {"grant_type": "refresh_token", "service": SERVICE, "refresh_token": token, "scope": scope}
    if offline:
        data["access_type"] = "offline"
    return await http.post("/oauth2/token", data=data)


class ScryptCalls:
    """Counts the scrypt computations made while it is installed, the most at once and the
    threads they ran on."""

    def __init__(self) -> None:
        self.count = 0
        self.running = 0
        self.most_at_once = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def wrap(self, real: Callable[..., bytes]) -> Callable[..., bytes]:
        """``hashlib.scrypt`` that counts its calls."""
        def scrypt(*args: Any, **kwargs: Any) -> bytes:
            with self._lock:
                self.count += 1
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
                self.threads.add(threading.current_thread().name)
            try:
                return real(*args, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1
        return scrypt


@contextmanager
def counting_scrypt(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScryptCalls]:
    """Count every ``hashlib.scrypt`` call made inside the block (from any thread)."""
    calls = ScryptCalls()
    with monkeypatch.context() as patch:
        patch.setattr(hashlib, "scrypt", calls.wrap(hashlib.scrypt))
        yield calls
