"""The token service and permissions through the app: Basic, refresh, exchange, null-GUID login,
Entra ID validation, roles (incl. ABAC), scope maps, key rotation and cross-repository mounts."""

from __future__ import annotations

import base64
import json

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth.service import NULL_GUID
from shared.auth.tokens import ACCESS, TokenSigner, generate_signing_key
from shared.composition import create_app
from shared.settings import Settings
from tests.auth_helpers import TestIssuer, basic, bearer, push_blob, push_image
from tests.conftest import SIGNING_KEY
from tests.storage import StorageProbe

OID = "6f1d3c1e-0000-4000-8000-00000000a001"


@pytest.fixture
def settings(settings: Settings, issuer: TestIssuer) -> Settings:
    """The default test settings, trusting the test issuer's tenant."""
    return settings.with_env(REGISTRY_ENTRA_AUTHORITY=issuer.authority, REGISTRY_ENTRA_TENANTS=issuer.tenant)


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    assert "-" not in payload and "_" not in payload  # the Azure SDK decodes it with plain base64
    loaded: dict[str, object] = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    return loaded


async def _exchange(anon: httpx.AsyncClient, entra: str, **extra: str) -> httpx.Response:
    return await anon.post("/oauth2/exchange", data={"grant_type": "access_token", "service": "registry.test",
                                                     "access_token": entra, **extra})


async def _refresh(anon: httpx.AsyncClient, refresh: str, scope: str) -> httpx.Response:
    return await anon.post("/oauth2/token", data={"grant_type": "refresh_token", "service": "registry.test",
                                                  "refresh_token": refresh, "scope": scope})


async def test_basic_login_gets_an_access_token_with_the_requested_access(client: httpx.AsyncClient) -> None:
    response = await client.get("/oauth2/token", params=[("service", "registry.test"),
                                                         ("scope", "repository:a/b:pull,push"),
                                                         ("scope", "registry:catalog:*")])
    body = response.json()
    assert body["access_token"] == body["token"]
    claims = _claims(body["access_token"])
    assert claims["aud"] == "registry.test" and claims["typ"] == "access"
    assert claims["access"] == [{"type": "repository", "name": "a/b", "actions": ["pull", "push"]},
                                {"type": "registry", "name": "catalog", "actions": ["*"]}]
    assert (await client.get("/v2/")).status_code == 200  # Basic on /v2/ itself


async def test_admin_user_has_two_passwords_and_can_be_off(settings: Settings) -> None:
    both = settings.with_env(REGISTRY_ADMIN_PASSWORD2="second-admin-password")
    off = settings.with_env(REGISTRY_ADMIN_ENABLED="false")
    for config, expected in ((both, (200, 200, 401)), (off, (401, 401, 401))):
        app = create_app(config)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r.test") as http:
            answers = []
            for password in (settings.auth.admin_password, "second-admin-password", "third"):
                answers.append((await http.get("/v2/", headers=basic(settings.registry.name, password))).status_code)
        assert tuple(answers) == expected
        await app.state.registry.close()


async def test_exchange_refresh_and_null_guid_login(client: httpx.AsyncClient, anon: httpx.AsyncClient,
                                                    issuer: TestIssuer) -> None:
    await push_image(client, "team/app", "v1")
    response = await _exchange(anon, issuer.token(OID), tenant=issuer.tenant)
    refresh = response.json()["refresh_token"]
    assert _claims(refresh)["typ"] == "refresh" and float(str(_claims(refresh)["exp"])) > 0
    nothing = await _refresh(anon, refresh, "repository:team/app:pull")
    assert _claims(nothing.json()["access_token"])["access"] == []  # no role yet
    await client.post("/acr/admin/roleassignments", json={"principalId": OID, "role": "AcrPush"})
    granted = await _refresh(anon, refresh, "repository:team/app:pull,push,delete")
    token = granted.json()["access_token"]
    assert _claims(token)["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]
    assert (await anon.get("/v2/team/app/manifests/v1", headers=bearer(token))).status_code == 200
    assert (await anon.delete("/v2/team/app/manifests/v1", headers=bearer(token))).status_code == 401
    # docker login -u 00000000-0000-0000-0000-000000000000 -p <refresh token>
    assert (await anon.get("/v2/team/app/tags/list", headers=basic(NULL_GUID, refresh))).status_code == 200
    via_get = await anon.get("/oauth2/token", params={"scope": "repository:team/app:pull"},
                             headers=basic(NULL_GUID, refresh))
    assert _claims(via_get.json()["access_token"])["access"][0]["actions"] == ["pull"]
    assert (await anon.get("/v2/", headers=basic(NULL_GUID, refresh[:-2]))).status_code == 401
    assert (await _refresh(anon, token, "repository:team/app:pull")).status_code == 401  # access != refresh


async def test_entra_tokens_are_validated(anon: httpx.AsyncClient, issuer: TestIssuer) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "foreign tenant": issuer.token(OID, tenant="9d0f0f4e-1111-4222-8333-444455556666"),
        "wrong audience": issuer.token(OID, audience="https://graph.microsoft.com"),
        "expired": issuer.token(OID, lifetime=-120),
        "other key": issuer.token(OID, key=stranger),
        "garbage": "not-a-token",
    }
    for case, token in bad.items():
        response = await _exchange(anon, token)
        assert response.status_code == 401, case
        assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert (await _exchange(anon, issuer.token(OID), tenant="other")).status_code == 401
    for _ in range(3):
        assert (await _exchange(anon, issuer.token(OID))).status_code == 200
    assert issuer.requests == 1  # the tenant's JWKS is cached
    response = await anon.post("/oauth2/exchange", data={"grant_type": "password", "access_token": "x"})
    assert response.status_code == 400


async def test_repository_roles_in_abac_mode(client: httpx.AsyncClient, anon: httpx.AsyncClient,
                                             issuer: TestIssuer) -> None:
    for repository in ("team/a", "other/b"):
        await push_image(client, repository, "v1")
    for role, repository in (("Container Registry Repository Writer", "team/*"), ("AcrDelete", None)):
        response = await client.post("/acr/admin/roleassignments",
                                     json={"principalId": OID, "role": role, "repository": repository})
        assert response.status_code == 201
    refresh = (await _exchange(anon, issuer.token(OID))).json()["refresh_token"]

    async def actions(repository: str) -> list[str]:
        token = (await _refresh(anon, refresh, f"repository:{repository}:pull,push,delete")).json()["access_token"]
        access = _claims(token)["access"]
        return list(access[0]["actions"]) if access else []  # type: ignore[index]

    assert await actions("team/a") == ["delete", "pull", "push"]
    assert await actions("other/b") == ["delete"]
    await client.patch("/acr/admin/options", json={"roleAssignmentMode": "abac"})
    assert await actions("team/a") == ["pull", "push"]  # AcrDelete is not honoured in ABAC mode
    assert await actions("other/b") == []
    listed = (await client.get("/acr/admin/roleassignments", params={"principalId": OID})).json()
    assert {a["role"] for a in listed["roleAssignments"]} == {"Container Registry Repository Writer", "AcrDelete"}
    bad = await client.post("/acr/admin/roleassignments", json={"principalId": OID, "role": "Superuser"})
    assert bad.status_code == 400


async def test_roles_assigned_to_a_group_apply_to_its_members(client: httpx.AsyncClient,
                                                               anon: httpx.AsyncClient, issuer: TestIssuer) -> None:
    group = "7a7a0000-0000-4000-8000-00000000beef"
    await client.post("/acr/admin/roleassignments", json={"principalId": group, "role": "AcrPull"})
    member = (await _exchange(anon, issuer.token(OID, groups=[group]))).json()["refresh_token"]
    outsider = (await _exchange(anon, issuer.token(OID))).json()["refresh_token"]
    granted = (await _refresh(anon, member, "repository:any/repo:pull,push")).json()["access_token"]
    assert _claims(granted)["access"] == [{"type": "repository", "name": "any/repo", "actions": ["pull"]}]
    refused = (await _refresh(anon, outsider, "repository:any/repo:pull,push")).json()["access_token"]
    assert _claims(refused)["access"] == []


async def test_configured_owner_administers_a_registry_with_no_role_assigned(
    settings: Settings, anon: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    owner = "0e0e0000-0000-4000-8000-0000000000aa"
    app = create_app(settings.with_env(REGISTRY_ADMIN_ENABLED="false", REGISTRY_OWNER_PRINCIPALS=owner))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test") as http:
        for oid, expected in ((owner, 200), (OID, 401)):
            refresh = (await _exchange(http, issuer.token(oid))).json()["refresh_token"]
            listed = await http.get("/acr/admin/roleassignments",
                                    auth=("00000000-0000-0000-0000-000000000000", refresh))
            assert listed.status_code in ((200,) if expected == 200 else (401, 403)), listed.text
    await app.state.registry.close()


async def test_scope_map_tokens_and_password_rotation(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    await push_image(client, "team/app", "v1")
    maps = (await client.get("/acr/admin/scopemaps")).json()["scopeMaps"]
    assert {"_repositories_pull", "_repositories_push", "_repositories_admin"} <= {m["name"] for m in maps}
    assert (await client.put("/acr/admin/scopemaps/_repositories_pull", json={"actions": ["x"]})).status_code == 403
    bad = await client.put("/acr/admin/scopemaps/broken", json={"actions": ["repositories/a/content/steal"]})
    assert bad.status_code == 400
    assert (await client.put("/acr/admin/tokens/reader1", json={"scopeMap": "_repositories_pull"})).status_code == 200
    first = (await client.post("/acr/admin/tokens/reader1/passwords", json={"name": "password1"})).json()["value"]
    second = (await client.post("/acr/admin/tokens/reader1/passwords", json={"name": "password2"})).json()["value"]
    listed = (await client.get("/acr/admin/tokens")).json()["tokens"]
    assert listed == [{"name": "reader1", "scopeMap": "_repositories_pull", "status": "enabled",
                       "passwords": [{"name": "password1", "expiry": None}, {"name": "password2", "expiry": None}]}]
    assert first not in json.dumps(listed) and "scrypt" not in json.dumps(listed)
    for password in (first, second):
        assert (await anon.get("/v2/team/app/manifests/v1", headers=basic("reader1", password))).status_code == 200
    denied = await anon.delete("/v2/team/app/manifests/v1", headers=basic("reader1", first))
    assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "DENIED"
    rotated = (await client.post("/acr/admin/tokens/reader1/passwords", json={"name": "password1"})).json()["value"]
    assert (await anon.get("/v2/team/app/tags/list", headers=basic("reader1", first))).status_code == 401
    assert (await anon.get("/v2/team/app/tags/list", headers=basic("reader1", rotated))).status_code == 200
    assert (await client.delete("/acr/admin/tokens/reader1")).status_code == 204
    assert (await anon.get("/v2/team/app/tags/list", headers=basic("reader1", second))).status_code == 401
    assert (await client.delete("/acr/admin/tokens/reader1")).status_code == 404


async def test_tokens_signed_with_the_previous_key_stay_valid(settings: Settings, client: httpx.AsyncClient) -> None:
    await push_image(client, "team/app", "v1")
    # an access token and a refresh token issued by the registry while SIGNING_KEY was current
    token = (await client.get("/oauth2/token", params={"scope": "repository:team/app:pull"})).json()["token"]
    refresh = (await client.post("/oauth2/token", data={
        "grant_type": "password", "username": settings.registry.name, "password": settings.auth.admin_password,
        "access_type": "offline"})).json()["refresh_token"]
    rotated = settings.with_env(REGISTRY_TOKEN_SIGNING_KEY=generate_signing_key(),
                                REGISTRY_TOKEN_PREVIOUS_KEY=SIGNING_KEY)
    app = create_app(rotated)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test") as http:
        assert (await http.get("/v2/team/app/manifests/v1", headers=bearer(token))).status_code == 200
        assert (await _refresh(http, refresh, "repository:team/app:pull")).status_code == 200
        fresh = (await http.get("/oauth2/token", params={"scope": "repository:team/app:pull"},
                                auth=(settings.registry.name, settings.auth.admin_password))).json()["token"]
        assert jwt.get_unverified_header(fresh)["kid"] != jwt.get_unverified_header(token)["kid"]
    await app.state.registry.close()
    without = settings.with_env(REGISTRY_TOKEN_SIGNING_KEY=generate_signing_key())
    app = create_app(without)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test") as http:
        assert (await http.get("/v2/team/app/manifests/v1", headers=bearer(token))).status_code == 401
        assert (await _refresh(http, refresh, "repository:team/app:pull")).status_code == 401
    await app.state.registry.close()


async def test_mount_needs_read_access_to_the_source(client: httpx.AsyncClient, anon: httpx.AsyncClient,
                                                     storage: StorageProbe) -> None:
    secret = await push_blob(client, "private/src", b"secret layer")
    await client.put("/acr/admin/scopemaps/dst-push", json={"actions": ["repositories/dst/content/write",
                                                                         "repositories/dst/content/read"]})
    await client.put("/acr/admin/tokens/dstpush", json={"scopeMap": "dst-push"})
    password = (await client.post("/acr/admin/tokens/dstpush/passwords", json={})).json()["value"]
    for params in ({"mount": secret["digest"], "from": "private/src"}, {"mount": secret["digest"]}):
        response = await anon.post("/v2/dst/blobs/uploads/", params=params, headers=basic("dstpush", password))
        assert response.status_code == 202  # a plain upload, not a mount
        assert (await anon.head(f"/v2/dst/blobs/{secret['digest']}", headers=basic("dstpush", password))).status_code \
            == 404
    mounted = await client.post("/v2/dst/blobs/uploads/", params={"mount": secret["digest"], "from": "private/src"})
    assert mounted.status_code == 201


def test_token_payloads_never_hold_dash_or_underscore() -> None:
    signer = TokenSigner(SIGNING_KEY, "registry:test")
    alphabet = "abc/._-:~>?\x7f\u00e9\u20ac{}[]\"\\ 0123456789"
    for seed in range(300):
        name = "".join(alphabet[(seed * 7 + i * 13) % len(alphabet)] for i in range(seed % 40 + 1))
        token = signer.issue(ACCESS, f"host{name}", name, 60, kind="admin",
                             access=[{"type": "repository", "name": name, "actions": ["pull"]}])
        _claims(token)
        assert signer.verify(token, ACCESS, f"host{name}")["sub"] == name
