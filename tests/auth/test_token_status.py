"""Access tokens of a scoped token stop working soon after the token is disabled, deleted or its
password rotated: at once through the instance that made the change, within the token status
cache's lifetime (documented, a few seconds) through any other instance."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from shared.composition import create_app
from shared.settings import Settings
from tests.auth.helpers import SERVICE, scoped_token
from tests.auth_helpers import basic, bearer, push_image
from tests.storage import StorageProbe

#: what docs/identity-and-access.md promises: another instance notices within this many seconds
STATUS_CACHE_SECONDS = 5


async def _pull_token(http: httpx.AsyncClient, name: str, password: str) -> str:
    response = await http.get("/oauth2/token", params={"service": SERVICE, "scope": "repository:team/app:pull"},
                              headers=basic(name, password))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_access_token_of_a_disabled_or_deleted_token_stops_working_at_once(
        client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    await push_image(client, "team/app", "v1")
    [password] = await scoped_token(client, "puller", ["repositories/team/app/content/read"])
    token = await _pull_token(anon, "puller", password)
    assert (await anon.get("/v2/team/app/manifests/v1", headers=bearer(token))).status_code == 200
    assert (await client.patch("/acr/admin/tokens/puller", json={"status": "disabled"})).status_code == 200
    refused = await anon.get("/v2/team/app/manifests/v1", headers=bearer(token))
    assert refused.status_code == 401, refused.text
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert (await client.patch("/acr/admin/tokens/puller", json={"status": "enabled"})).status_code == 200
    assert (await anon.get("/v2/team/app/manifests/v1", headers=bearer(token))).status_code == 200
    assert (await client.delete("/acr/admin/tokens/puller")).status_code == 204
    assert (await anon.get("/v2/team/app/manifests/v1", headers=bearer(token))).status_code == 401
    # a new token of the same name is another token: the old one's access tokens stay refused
    [fresh] = await scoped_token(client, "puller", ["repositories/team/app/content/read"])
    assert (await anon.get("/v2/team/app/manifests/v1", headers=bearer(token))).status_code == 401
    new_token = await _pull_token(anon, "puller", fresh)
    assert (await anon.get("/v2/team/app/manifests/v1", headers=bearer(new_token))).status_code == 200
    # rotating the password it was issued for ends it too
    assert (await client.post("/acr/admin/tokens/puller/passwords", json={"name": "password1"})).status_code == 200
    assert (await anon.get("/v2/team/app/manifests/v1", headers=bearer(new_token))).status_code == 401


@pytest.mark.slow
async def test_another_instance_notices_a_disabled_token_within_the_status_cache_lifetime(
        settings: Settings, client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    await push_image(client, "team/app", "v1")
    [password] = await scoped_token(client, "roamer", ["repositories/team/app/content/read"])
    token = await _pull_token(anon, "roamer", password)
    other: Starlette = create_app(settings)  # a second instance over the same storage
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url=f"http://{SERVICE}") as http:
        try:
            assert (await http.get("/v2/team/app/manifests/v1", headers=bearer(token))).status_code == 200
            assert (await client.patch("/acr/admin/tokens/roamer", json={"status": "disabled"})).status_code == 200
            disabled_at = time.monotonic()
            while (await http.get("/v2/team/app/manifests/v1", headers=bearer(token))).status_code == 200:
                assert time.monotonic() - disabled_at < STATUS_CACHE_SECONDS + 1, "still served"
                await asyncio.sleep(0.25)
            assert (await http.get("/v2/team/app/tags/list", headers=bearer(token))).status_code == 401
        finally:
            await other.state.registry.close()


class _DisableDuringRead:
    """The auth table, except that the first token read it serves is overtaken by a write: the
    token is disabled after the read fetched the row and before the reader gets it back."""

    def __init__(self, app: Starlette, name: str) -> None:
        self.identities = app.state.registry.identities
        self.real = self.identities.table
        self.name = name
        self.fired = False

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.real, attribute)

    async def get_entity(self, partition: str, key: str, **kwargs: Any) -> Any:
        row = await self.real.get_entity(partition, key, **kwargs)
        if not self.fired and key == self.name:
            self.fired = True
            self.identities.table = self.real
            await self.identities.put_token(self.name, f"{self.name}-map", "disabled")
        return row


async def test_a_read_overtaken_by_a_write_is_not_remembered(app: Starlette, client: httpx.AsyncClient,
                                                            anon: httpx.AsyncClient, storage: StorageProbe) -> None:
    await push_image(client, "team/app", "v1")
    [password] = await scoped_token(client, "racer", ["repositories/team/app/content/read"])
    token = await _pull_token(anon, "racer", password)
    app.state.registry.identities._tokens.clear()  # nothing remembered: the next check reads the row
    app.state.registry.identities.table = _DisableDuringRead(app, "racer")
    # this check read the row while the token was enabled, so it may still pass ...
    assert (await anon.get("/v2/team/app/manifests/v1", headers=bearer(token))).status_code == 200
    assert [r["status"] for r in await storage.rows("auth") if r["RowKey"] == "racer"] == ["disabled"]
    # ... but what it read is not served to the next request from memory
    assert (await anon.get("/v2/team/app/manifests/v1", headers=bearer(token))).status_code == 401
