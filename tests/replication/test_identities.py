"""Identities are the home region's: a token created through any region's endpoint logs in to
every region, and is stored once, in the home region's auth table."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from scripts.azurite import Azurite
from shared.composition import create_app
from shared.settings import Settings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.replication.regions import region_settings
from tests.storage import StorageProbe


@pytest.fixture
def regions(azurite: Azurite) -> dict[str, Settings]:
    """Two regions, home first."""
    return region_settings(azurite, ("home", "away"))


@pytest.fixture
async def admins(regions: dict[str, Settings]) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """An admin client of each region's app."""
    apps = {name: create_app(s) for name, s in regions.items()}
    clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test",
                                       auth=(ADMIN_USER, ADMIN_PASSWORD)) for name, app in apps.items()}
    yield clients
    for name, client in clients.items():
        await client.aclose()
        if apps[name].state.registry is not None:
            await apps[name].state.registry.close()


async def _token(admin: httpx.AsyncClient, name: str) -> str:
    actions = ["repositories/team/*/content/read"]
    assert (await admin.put(f"/acr/admin/scopemaps/{name}-map", json={"actions": actions})).status_code == 200
    assert (await admin.put(f"/acr/admin/tokens/{name}", json={"scopeMap": f"{name}-map"})).status_code == 200
    answer = await admin.post(f"/acr/admin/tokens/{name}/passwords", json={"name": "password1"})
    return str(answer.json()["value"])


async def test_a_token_created_in_any_region_logs_in_to_every_region(
    regions: dict[str, Settings], admins: dict[str, httpx.AsyncClient]
) -> None:
    password = await _token(admins["away"], "awaytoken")  # created through the replica's endpoint
    for name, admin in admins.items():
        def login(user: str, secret: str, repository: str) -> object:
            return admin.get("/oauth2/token", params={"service": "registry.test", "scope": f"repository:{repository}:pull"},
                             auth=(user, secret))
        granted = await login("awaytoken", password, "team/app")  # type: ignore[misc]
        assert granted.status_code == 200, (name, granted.text)
        bearer = {"Authorization": f"Bearer {granted.json()['access_token']}"}
        answer = await admin.get("/v2/team/app/tags/list", headers=bearer, auth=None)
        assert answer.status_code == 404, (name, answer.text)  # authenticated and authorized: unknown repository
        assert (await login("awaytoken", "wrong", "team/app")).status_code == 401  # type: ignore[misc]
    for name, settings in regions.items():
        probe = StorageProbe(settings)
        try:
            tokens = [r for r in await probe.rows("auth") if r["PartitionKey"] == "token"]
        finally:
            await probe.close()
        assert [r["RowKey"] for r in tokens] == (["awaytoken"] if name == "home" else [])
