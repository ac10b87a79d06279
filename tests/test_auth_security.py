"""Each way in that must stay shut, through the whole app: the status, the code, and nothing written."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from shared.auth.tokens import ACCESS, REFRESH, TokenSigner
from shared.settings import Settings
from tests.auth_helpers import TestIssuer, basic, bearer, push_image
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, SIGNING_KEY
from tests.storage import StorageProbe

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
EMPTY_MANIFEST = b'{"schemaVersion":2,"mediaType":"' + MANIFEST_TYPE.encode() + b'","config":{"mediaType":' \
    b'"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c06' \
    b'0f61caaff8a","size":2},"layers":[]}'


@pytest.fixture
def settings(settings: Settings, issuer: TestIssuer) -> Settings:
    """The default test settings, trusting the test issuer's tenant."""
    return settings.with_env(REGISTRY_ENTRA_AUTHORITY=issuer.authority, REGISTRY_ENTRA_TENANTS=issuer.tenant)


async def _token_user(client: httpx.AsyncClient, name: str, actions: list[str], expiry: str | None = None) -> str:
    """Create a scope map and a token; returns the token's password1."""
    response = await client.put(f"/acr/admin/scopemaps/{name}-map", json={"actions": actions})
    assert response.status_code == 200, response.text
    response = await client.put(f"/acr/admin/tokens/{name}", json={"scopeMap": f"{name}-map"})
    assert response.status_code == 200, response.text
    response = await client.post(f"/acr/admin/tokens/{name}/passwords", json={"name": "password1", "expiry": expiry})
    assert response.status_code == 200, response.text
    return str(response.json()["value"])


async def _access_token(client: httpx.AsyncClient, scope: str, **kwargs: object) -> str:
    response = await client.get("/oauth2/token", params={"service": "registry.test", "scope": scope}, **kwargs)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _signer(app: Starlette):  # type: ignore[no-untyped-def]
    return app.state.registry.auth.signer


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["code"] == code


async def _refused_push(anon: httpx.AsyncClient, storage: StorageProbe, status: int, code: str,
                        headers: dict[str, str], repository: str = "secure/app") -> httpx.Response:
    """A manifest PUT and a blob upload with ``headers`` are refused and store nothing."""
    before = await storage.snapshot()
    response = await anon.put(f"/v2/{repository}/manifests/v1", content=EMPTY_MANIFEST,
                              headers={"Content-Type": MANIFEST_TYPE, **headers})
    _error(response, status, code)
    upload = await anon.post(f"/v2/{repository}/blobs/uploads/", headers=headers)
    _error(upload, status, code)
    assert await storage.snapshot() == before
    return response


async def test_no_credentials_gets_bearer_challenge(anon: httpx.AsyncClient, storage: StorageProbe) -> None:
    response = await _refused_push(anon, storage, 401, "UNAUTHORIZED", {})
    challenge = response.headers["www-authenticate"]
    assert challenge == ('Bearer realm="http://registry.test/oauth2/token",service="registry.test",'
                         'scope="repository:secure/app:pull,push"')
    assert response.json()["errors"][0]["detail"] == [{"Type": "repository", "Name": "secure/app", "Action": "push"}]
    assert (await anon.get("/v2/")).status_code == 401
    assert (await anon.get("/v2/_catalog")).status_code == 401


async def test_wrong_password_is_unauthorized(anon: httpx.AsyncClient, storage: StorageProbe) -> None:
    await _refused_push(anon, storage, 401, "UNAUTHORIZED", basic(ADMIN_USER, "wrong"))
    _error(await anon.get("/oauth2/token", headers=basic(ADMIN_USER, "wrong")), 401, "UNAUTHORIZED")
    _error(await anon.get("/oauth2/token", headers=basic("nosuchtoken", "x")), 401, "UNAUTHORIZED")


async def test_expired_and_not_yet_valid_tokens_are_refused(
        client: httpx.AsyncClient, anon: httpx.AsyncClient, app: Starlette, storage: StorageProbe) -> None:
    await client.get("/v2/")
    access = [{"type": "repository", "name": "secure/app", "actions": ["pull", "push"]}]
    signer = _signer(app)
    expired = signer.issue(ACCESS, "registry.test", "x", -60, kind="admin", access=access)
    future = signer.issue(ACCESS, "registry.test", "x", 3600, kind="admin", access=access,
                          nbf=int(time.time()) + 600)
    for token in (expired, future):
        response = await _refused_push(anon, storage, 401, "UNAUTHORIZED", bearer(token))
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_token_for_another_repository_is_refused(
        client: httpx.AsyncClient, anon: httpx.AsyncClient, storage: StorageProbe) -> None:
    token = await _access_token(client, "repository:other/app:pull,push")
    response = await _refused_push(anon, storage, 401, "UNAUTHORIZED", bearer(token))
    assert response.headers["www-authenticate"].endswith(
        'scope="repository:secure/app:pull,push",error="insufficient_scope"')
    assert (await anon.get("/v2/other/app/tags/list", headers=bearer(token))).status_code == 404


async def test_token_for_another_registry_is_refused(
        client: httpx.AsyncClient, anon: httpx.AsyncClient, app: Starlette, storage: StorageProbe) -> None:
    await client.get("/v2/")
    access = [{"type": "repository", "name": "secure/app", "actions": ["pull", "push"]}]
    token = _signer(app).issue(ACCESS, "other.azurecr.io", "x", 600, kind="admin", access=access)
    await _refused_push(anon, storage, 401, "UNAUTHORIZED", bearer(token))
    other_issuer = TokenSigner(SIGNING_KEY, "registry:otherregistry")  # same key, another registry
    token = other_issuer.issue(ACCESS, "registry.test", "x", 600, kind="admin", access=access)
    await _refused_push(anon, storage, 401, "UNAUTHORIZED", bearer(token))


async def test_tampered_signature_and_alg_none_are_refused(
        client: httpx.AsyncClient, anon: httpx.AsyncClient, storage: StorageProbe) -> None:
    token = await _access_token(client, "repository:secure/app:pull,push")
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    claims = jwt.decode(token, options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    other_key_claims = {**claims, "access": [{"type": "repository", "name": "secure/app", "actions": ["push"]}]}
    forged = f"{header}.{jwt.encode(other_key_claims, 'k' * 32, algorithm='HS256').split('.')[1]}.{signature}"
    for bad in (tampered, unsigned, forged):
        await _refused_push(anon, storage, 401, "UNAUTHORIZED", bearer(bad))


async def test_refresh_token_is_not_an_access_token(
        client: httpx.AsyncClient, anon: httpx.AsyncClient, app: Starlette, storage: StorageProbe) -> None:
    await client.get("/v2/")
    refresh = _signer(app).issue(REFRESH, "registry.test", ADMIN_USER, 600, kind="admin")
    await _refused_push(anon, storage, 401, "UNAUTHORIZED", bearer(refresh))


async def test_disabled_token_is_refused(client: httpx.AsyncClient, anon: httpx.AsyncClient,
                                         storage: StorageProbe) -> None:
    password = await _token_user(client, "pusher", ["repositories/secure/app/content/write",
                                                    "repositories/secure/app/content/read"])
    assert (await anon.get("/oauth2/token", headers=basic("pusher", password))).status_code == 200
    response = await client.patch("/acr/admin/tokens/pusher", json={"status": "disabled"})
    assert response.json()["status"] == "disabled"
    await _refused_push(anon, storage, 401, "UNAUTHORIZED", basic("pusher", password))
    _error(await anon.get("/oauth2/token", headers=basic("pusher", password)), 401, "UNAUTHORIZED")


async def test_expired_password_is_refused(client: httpx.AsyncClient, anon: httpx.AsyncClient,
                                           storage: StorageProbe) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    password = await _token_user(client, "stale", ["repositories/secure/app/content/write"], expiry=past)
    await _refused_push(anon, storage, 401, "UNAUTHORIZED", basic("stale", password))
    response = await client.post("/acr/admin/tokens/stale/passwords", json={"name": "password2"})
    fresh = response.json()["value"]
    assert (await anon.get("/oauth2/token", headers=basic("stale", fresh))).status_code == 200
    await _refused_push(anon, storage, 401, "UNAUTHORIZED", basic("stale", password))


async def test_anonymous_pull_allows_reads_but_no_writes(
        client: httpx.AsyncClient, anon: httpx.AsyncClient, storage: StorageProbe) -> None:
    digest = await push_image(client, "public/app", "v1")
    assert (await anon.get("/v2/public/app/manifests/v1")).status_code == 401
    response = await client.patch("/acr/admin/options", json={"anonymousPullEnabled": True})
    assert response.json()["anonymousPullEnabled"] is True
    assert (await anon.get("/v2/public/app/manifests/v1")).headers["docker-content-digest"] == digest
    assert (await anon.get("/v2/_catalog")).json() == {"repositories": ["public/app"]}
    token = await _access_token(anon, "repository:public/app:pull,push,delete")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": "public/app", "actions": ["pull"]}]
    await _refused_push(anon, storage, 401, "UNAUTHORIZED", {}, "public/app")
    await _refused_push(anon, storage, 401, "UNAUTHORIZED", bearer(token), "public/app")
    before = await storage.snapshot()
    _error(await anon.delete(f"/v2/public/app/manifests/{digest}"), 401, "UNAUTHORIZED")
    _error(await anon.delete("/acr/v1/public/app"), 401, "UNAUTHORIZED")
    assert await storage.snapshot() == before


async def test_locked_tag_cannot_be_overwritten_or_deleted(client: httpx.AsyncClient, storage: StorageProbe) -> None:
    digest = await push_image(client, "locked/app", "v1")
    response = await client.patch("/acr/v1/locked/app/_tags/v1", json={"writeEnabled": False, "deleteEnabled": False})
    assert response.json()["tag"]["changeableAttributes"] == {
        "deleteEnabled": False, "writeEnabled": False, "readEnabled": True, "listEnabled": True}
    before = await storage.snapshot()
    response = await client.put("/v2/locked/app/manifests/v1", content=EMPTY_MANIFEST,
                                headers={"Content-Type": MANIFEST_TYPE})
    _error(response, 403, "DENIED")
    assert response.json()["errors"][0]["message"] == \
        "The operation is disallowed on this registry, repository or image."
    _error(await client.delete("/v2/locked/app/manifests/v1"), 403, "DENIED")
    _error(await client.delete(f"/v2/locked/app/manifests/{digest}"), 403, "DENIED")
    _error(await client.delete("/acr/v1/locked/app/_tags/v1"), 403, "DENIED")
    assert await storage.snapshot() == before
    assert (await client.get("/v2/locked/app/manifests/v1")).status_code == 200


async def test_scope_map_token_cannot_reach_the_admin_api(
        client: httpx.AsyncClient, anon: httpx.AsyncClient, storage: StorageProbe) -> None:
    password = await _token_user(client, "repoadmin", ["repositories/*/content/read",
                                                       "repositories/*/content/write",
                                                       "repositories/*/content/delete"])
    before = await storage.rows("auth")
    _error(await anon.get("/acr/admin/tokens", headers=basic("repoadmin", password)), 403, "DENIED")
    response = await anon.put("/acr/admin/tokens/repoadmin", json={"scopeMap": "_repositories_admin"},
                              headers=basic("repoadmin", password))
    _error(response, 403, "DENIED")
    response = await anon.patch("/acr/admin/options", json={"anonymousPullEnabled": True},
                                headers=basic("repoadmin", password))
    _error(response, 403, "DENIED")
    token = await _access_token(anon, "registry:admin:*", headers=basic("repoadmin", password))
    _error(await anon.get("/acr/admin/tokens", headers=bearer(token)), 401, "UNAUTHORIZED")
    _error(await anon.get("/acr/admin/tokens"), 401, "UNAUTHORIZED")
    assert await storage.rows("auth") == before


async def test_logs_hold_no_secrets(client: httpx.AsyncClient, anon: httpx.AsyncClient, issuer: TestIssuer,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    password = await _token_user(client, "logged", ["repositories/x/content/read"])
    token = await _access_token(anon, "repository:x:pull", headers=basic("logged", password))
    entra = issuer.token("11111111-2222-3333-4444-555555555555")
    response = await anon.post("/oauth2/exchange", data={"grant_type": "access_token", "service": "registry.test",
                                                          "access_token": entra})
    refresh = response.json()["refresh_token"]
    await anon.get("/v2/x/tags/list", headers=bearer(token[:-3] + "abc"))
    await anon.get("/v2/x/tags/list", headers=basic("logged", password + "x"))
    await anon.get("/v2/x/tags/list", headers=basic(ADMIN_USER, ADMIN_PASSWORD[:-1]))
    await anon.post("/oauth2/exchange", data={"grant_type": "access_token", "access_token": entra[:-2]})
    await anon.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": refresh[:-2],
                                           "scope": "repository:x:pull"})
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "refused" in logged  # the refusals were logged ...
    for secret in (password, token, entra, refresh, ADMIN_PASSWORD, token.split(".")[2], entra.split(".")[2]):
        assert secret not in logged  # ... without the secrets


async def test_guard_sees_the_path_the_router_sees(app: Starlette) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, root_path="/api"),
                                 base_url="http://registry.test") as http:
        _error(await http.get("/api/v2/_catalog"), 401, "UNAUTHORIZED")
        response = await http.get("/api/v2/_catalog", auth=(ADMIN_USER, ADMIN_PASSWORD))
        assert response.status_code == 200
