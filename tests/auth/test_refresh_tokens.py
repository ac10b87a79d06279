"""Refresh tokens are bound to the credential generation they came from: the admin password or
the scoped token password they were issued for. Rotating that password, deleting the token (even
when a token of the same name is created again) or disabling it ends them, and renewing one
never extends its life beyond the original's."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette

from shared.auth.service import NULL_GUID
from shared.composition import create_app
from shared.settings import Settings
from tests.auth.helpers import SERVICE, offline_login, payload, refresh, scoped_token
from tests.auth_helpers import basic, bearer, push_image
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.storage import StorageProbe

SECOND = "second-admin-password-" + "x" * 20
THIRD = "third-admin-password-" + "y" * 20


async def _serve(settings: Settings) -> tuple[Starlette, httpx.AsyncClient]:
    app = create_app(settings)
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{SERVICE}")


async def _close(app: Starlette, http: httpx.AsyncClient) -> None:
    await http.aclose()
    if app.state.registry is not None:
        await app.state.registry.close()


async def test_admin_refresh_token_dies_with_the_password_it_was_issued_for(settings: Settings) -> None:
    before = settings.with_env(REGISTRY_ADMIN_PASSWORD2=SECOND)
    app, http = await _serve(before)
    try:
        second_login = await offline_login(http, ADMIN_USER, SECOND, "repository:a/b:pull")
        from_second, second_access = second_login["refresh_token"], second_login["access_token"]
        first_login = await offline_login(http, ADMIN_USER, ADMIN_PASSWORD, "repository:a/b:pull")
        from_first, first_access = first_login["refresh_token"], first_login["access_token"]
        assert (await refresh(http, from_second, "repository:a/b:pull")).status_code == 200
    finally:
        await _close(app, http)
    # password2 is rotated (password1 stays): the registry restarts with the new settings
    after = settings.with_env(REGISTRY_ADMIN_PASSWORD2=THIRD)
    app, http = await _serve(after)
    try:
        refused = await refresh(http, from_second, "repository:a/b:pull")
        assert refused.status_code == 401, refused.text
        assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert (await http.get("/v2/", headers=basic(NULL_GUID, from_second))).status_code == 401
        kept = await refresh(http, from_first, "repository:a/b:pull")
        assert kept.status_code == 200, kept.text
        assert payload(kept.json()["access_token"])["access"] == [
            {"type": "repository", "name": "a/b", "actions": ["pull"]}]
        assert (await http.get("/v2/", headers=basic(NULL_GUID, from_first))).status_code == 200
        # access tokens too: the one from the rotated password is refused, the other one serves
        assert (await http.get("/v2/a/b/tags/list", headers=bearer(second_access))).status_code == 401
        assert (await http.get("/v2/a/b/tags/list", headers=bearer(first_access))).status_code == 404
    finally:
        await _close(app, http)


async def test_renewed_refresh_token_never_outlives_the_original(anon: httpx.AsyncClient) -> None:
    original = (await offline_login(anon, ADMIN_USER, ADMIN_PASSWORD))["refresh_token"]
    expiry = payload(original)["exp"]
    await asyncio.sleep(1.1)  # a renewal a second later would otherwise end a second later
    renewed = await refresh(anon, original, offline=True)
    assert renewed.status_code == 200, renewed.text
    first = renewed.json()["refresh_token"]
    assert payload(first)["exp"] == expiry
    # renewing the renewal, also through the password grant with the null GUID, changes nothing
    again = await refresh(anon, first, offline=True)
    second = again.json()["refresh_token"]
    assert payload(second)["exp"] == expiry
    by_guid = await offline_login(anon, NULL_GUID, second)
    assert payload(by_guid["refresh_token"])["exp"] == expiry


async def test_refresh_token_of_a_deleted_token_stays_dead_when_the_name_is_reused(
        client: httpx.AsyncClient, anon: httpx.AsyncClient, storage: StorageProbe) -> None:
    await push_image(client, "team/app", "v1")
    actions = ["repositories/team/app/content/read"]
    [password] = await scoped_token(client, "cibot", actions)
    old = (await offline_login(anon, "cibot", password))["refresh_token"]
    assert (await anon.get("/v2/team/app/tags/list", headers=basic(NULL_GUID, old))).status_code == 200
    assert (await client.delete("/acr/admin/tokens/cibot")).status_code == 204
    assert (await refresh(anon, old, "repository:team/app:pull")).status_code == 401
    [fresh] = await scoped_token(client, "cibot", actions)  # same name, same scope map: a new token
    rows = [r for r in await storage.rows("auth") if r["PartitionKey"] == "token"]
    assert [r["RowKey"] for r in rows] == ["cibot"] and rows[0]["password1"]
    refused = await refresh(anon, old, "repository:team/app:pull")
    assert refused.status_code == 401, refused.text
    assert (await anon.get("/v2/team/app/tags/list", headers=basic(NULL_GUID, old))).status_code == 401
    new = (await offline_login(anon, "cibot", fresh))["refresh_token"]
    assert (await anon.get("/v2/team/app/tags/list", headers=basic(NULL_GUID, new))).status_code == 200


async def test_refresh_token_dies_with_the_token_password_it_came_from(
        client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    await push_image(client, "team/app", "v1")
    first, second = await scoped_token(client, "rotator", ["repositories/team/app/content/read"],
                                       "password1", "password2")
    from_first = (await offline_login(anon, "rotator", first))["refresh_token"]
    from_second = (await offline_login(anon, "rotator", second))["refresh_token"]
    response = await client.post("/acr/admin/tokens/rotator/passwords", json={"name": "password1"})
    assert response.status_code == 200
    assert (await refresh(anon, from_first, "repository:team/app:pull")).status_code == 401
    assert (await anon.get("/v2/team/app/tags/list", headers=basic(NULL_GUID, from_first))).status_code == 401
    kept = await refresh(anon, from_second, "repository:team/app:pull")
    assert kept.status_code == 200
    assert payload(kept.json()["access_token"])["access"] == [
        {"type": "repository", "name": "team/app", "actions": ["pull"]}]


async def test_disabled_token_gets_nothing_through_its_refresh_token(
        client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    await push_image(client, "team/app", "v1")
    [password] = await scoped_token(client, "sleeper", ["repositories/team/app/content/read"])
    token = (await offline_login(anon, "sleeper", password))["refresh_token"]
    assert (await client.patch("/acr/admin/tokens/sleeper", json={"status": "disabled"})).status_code == 200
    refused = await refresh(anon, token, "repository:team/app:pull")
    assert refused.status_code == 401, refused.text
    assert "access_token" not in refused.json()
    answer = await anon.get("/v2/team/app/manifests/v1", headers=basic(NULL_GUID, token))
    assert answer.status_code == 401, answer.text
    assert (await refresh(anon, token, offline=True)).status_code == 401  # no renewal either
    assert (await client.patch("/acr/admin/tokens/sleeper", json={"status": "enabled"})).status_code == 200
    assert (await anon.get("/v2/team/app/manifests/v1", headers=basic(NULL_GUID, token))).status_code == 200
