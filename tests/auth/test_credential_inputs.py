"""Credentials that cannot name anything (names no table key may hold, non-UTF-8, huge) are a
plain 401 on every endpoint, never a 500, and read or write nothing; the admin API answers such
names with 404 or 400 likewise."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from shared.errors import ResourceNotFound
from tests.auth.helpers import SERVICE, client_from
from tests.auth_helpers import basic
from tests.storage import StorageProbe

#: characters Azure Table keys refuse (/ \ # ?, controls), and names too long for a key
UNKEYABLE = ["team/ci", "team\\ci", "team#ci", "team?ci", "team\x00ci", "team\x1fci", "team\x7fci",
             "team\x85ci", "x" * 1100, "t" * 10_000]


async def test_basic_usernames_no_table_key_can_hold_are_unauthorized(app: Starlette, storage: StorageProbe) -> None:
    before = await storage.rows("auth")
    for number, name in enumerate(UNKEYABLE):
        # each from its own address, so the failed-login throttle stays out of the way
        async with client_from(app, f"192.0.2.{number + 1}") as caller:
            header = basic(name, "password")
            for method, path in (("GET", "/v2/team/app/manifests/v1"), ("GET", "/acr/admin/tokens")):
                response = await caller.request(method, path, headers=header)
                assert response.status_code == 401, (repr(name[:12]), path, response.text)
                assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
            response = await caller.get("/oauth2/token", params={"service": SERVICE}, headers=header)
            assert response.status_code == 401, (repr(name[:12]), response.text)
            response = await caller.post("/oauth2/token", data={"grant_type": "password", "service": SERVICE,
                                                                "username": name, "password": "password"})
            assert response.status_code == 401, (repr(name[:12]), response.text)
    assert await storage.rows("auth") == before


async def test_basic_credentials_that_are_not_utf8_are_unauthorized(anon: httpx.AsyncClient) -> None:
    for raw in (b"\xff\xfe:password", b"team:\xc3\x28", b"no-colon-at-all", b""):
        header = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        response = await anon.get("/v2/team/app/tags/list", headers=header)
        assert response.status_code == 401, (raw, response.text)
    for header in ({"Authorization": "Basic !!!"}, {"Authorization": "Basic"}, {"Authorization": "Bearer"}):
        assert (await anon.get("/v2/", headers=header)).status_code == 401


async def test_admin_api_answers_unkeyable_names_with_404_or_400(client: httpx.AsyncClient,
                                                                 storage: StorageProbe) -> None:
    before = await storage.rows("auth")
    for raw in ("a%23bcdef", "a%3Fbcdef", "a%5Cbcdef", "a%01bcdef", "a%7Fbcdef", "x" * 1100):
        for path in (f"/acr/admin/tokens/{raw}", f"/acr/admin/scopemaps/{raw}"):
            assert (await client.get(path)).status_code == 404, path
            assert (await client.delete(path)).status_code == 404, path
        assert (await client.patch(f"/acr/admin/tokens/{raw}", json={"status": "disabled"})).status_code == 404
        assert (await client.post(f"/acr/admin/tokens/{raw}/passwords", json={})).status_code == 404
        assert (await client.delete(f"/acr/admin/roleassignments/{raw}")).status_code == 404
        put = await client.put(f"/acr/admin/tokens/{raw}", json={"scopeMap": "_repositories_pull"})
        assert put.status_code == 400, put.text
    assert await storage.rows("auth") == before


class _CountingTable:
    """The auth table client, counting the requests made through it."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.requests = 0

    def __getattr__(self, attribute: str) -> Any:
        method = getattr(self.real, attribute)
        if not callable(method):
            return method

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.requests += 1
            return method(*args, **kwargs)
        return counted


async def test_names_no_key_can_hold_never_reach_storage(app: Starlette, client: httpx.AsyncClient) -> None:
    await client.get("/v2/")
    identities = app.state.registry.identities
    counting = _CountingTable(identities.table)
    identities.table = counting
    try:
        for name in ("team/ci", "team#ci", "team?ci", "team\\ci", "team\x01ci", "x" * 1100):
            assert await identities.token(name) is None
            assert await identities.scope_map(name) is None
            for delete in (identities.delete_token, identities.delete_scope_map, identities.remove_role):
                with pytest.raises(ResourceNotFound):
                    await delete(name)
    finally:
        identities.table = counting.real
    assert counting.requests == 0
    # names a key could hold but no token can have (too short, too long, other characters)
    identities.table = counting
    try:
        for name in ("abc", "team_ci", "team.ci", "-team", "x" * 51):
            assert await identities.token(name) is None
    finally:
        identities.table = counting.real
    assert counting.requests == 0
