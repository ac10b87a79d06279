"""Checks of the identity layer that no end-to-end flow reaches on its own: what a principal may
do when its token went away, failures that must be charged to the throttle, refresh tokens of no
known kind, mounts without a source, signing keys, and Entra ID tokens naming no principal."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette

from shared.auth.service import ADMIN, TOKEN, Principal
from shared.auth.tokens import ACCESS, REFRESH, TokenSigner
from shared.settings import Settings
from tests.auth.helpers import SERVICE, client_from, payload, scoped_token
from tests.auth_helpers import TestIssuer, basic, bearer, push_blob
from tests.storage import StorageProbe

OID = "6f1d3c1e-0000-4000-8000-00000000c0c0"


@pytest.fixture
def settings(settings: Settings, issuer: TestIssuer) -> Settings:
    """The default test settings, trusting the test issuer's tenant."""
    return settings.with_env(REGISTRY_ENTRA_AUTHORITY=issuer.authority, REGISTRY_ENTRA_TENANTS=issuer.tenant)


async def test_permissions_of_a_token_that_went_away_are_nothing(app: Starlette, client: httpx.AsyncClient) -> None:
    await scoped_token(client, "vanishing", ["repositories/a/content/read"])
    auth = app.state.registry.auth
    assert (await auth.permissions(Principal(TOKEN, "vanishing"))).rules  # while it is there and enabled
    await client.patch("/acr/admin/tokens/vanishing", json={"status": "disabled"})
    assert not (await auth.permissions(Principal(TOKEN, "vanishing"))).rules
    await client.patch("/acr/admin/tokens/vanishing", json={"status": "enabled"})
    await client.delete("/acr/admin/scopemaps/vanishing-map")
    assert not (await auth.permissions(Principal(TOKEN, "vanishing"))).rules
    await client.delete("/acr/admin/tokens/vanishing")
    assert not (await auth.permissions(Principal(TOKEN, "vanishing"))).rules
    everything = await auth.permissions(Principal(ADMIN, "localregistry"))
    assert everything.admin and everything.catalog
    auth.settings = auth.settings.with_env(REGISTRY_ADMIN_ENABLED="false")
    nothing = await auth.permissions(Principal(ADMIN, "localregistry"))
    assert not nothing.admin and not nothing.rules


async def test_a_right_password_of_a_disabled_token_still_counts_as_a_failure(
        app: Starlette, client: httpx.AsyncClient) -> None:
    [password] = await scoped_token(client, "dormant", ["repositories/a/content/read"])
    async with client_from(app, "198.51.100.40") as owner, client_from(app, "198.51.100.39") as caller:
        assert (await owner.get("/v2/", headers=basic("dormant", password))).status_code == 200  # verified once
        await client.patch("/acr/admin/tokens/dormant", json={"status": "disabled"})
        statuses = [(await caller.get("/v2/", headers=basic("dormant", password))).status_code for _ in range(11)]
    assert statuses == [401] * 10 + [429]  # the identity's budget, though no scrypt was needed


async def test_failed_entra_and_refresh_tokens_are_charged_to_the_address(app: Starlette,
                                                                          issuer: TestIssuer) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with client_from(app, "198.51.100.41") as caller, client_from(app, "198.51.100.42") as other:
        statuses = []
        for number in range(31):
            form = {"grant_type": "access_token", "service": SERVICE,
                    "access_token": issuer.token(OID, key=stranger) if number % 2 else "garbage"}
            statuses.append((await caller.post("/oauth2/exchange", data=form)).status_code)
        assert statuses == [401] * 30 + [429]
        good = {"grant_type": "access_token", "service": SERVICE, "access_token": issuer.token(OID)}
        assert (await caller.post("/oauth2/exchange", data=good)).status_code == 429
        assert (await other.post("/oauth2/exchange", data=good)).status_code == 200
        refresh = {"grant_type": "refresh_token", "service": SERVICE, "refresh_token": "x.y.z"}
        assert (await caller.post("/oauth2/token", data=refresh)).status_code == 429


async def test_refresh_token_of_no_known_kind_is_refused(app: Starlette, anon: httpx.AsyncClient) -> None:
    await anon.get("/v2/")
    signer: TokenSigner = app.state.registry.auth.signer
    for kind in ("anonymous", "root", ""):
        forged = signer.issue(REFRESH, SERVICE, "someone", 600, kind=kind)
        answer = await anon.post("/oauth2/token", data={"grant_type": "refresh_token", "service": SERVICE,
                                                        "refresh_token": forged, "scope": "repository:a:pull"})
        assert answer.status_code == 401, kind
    # and an access token of the admin user without the binding of a current password
    unbound = signer.issue(ACCESS, SERVICE, "localregistry", 600, kind=ADMIN,
                           access=[{"type": "repository", "name": "a", "actions": ["pull"]}])
    assert (await anon.get("/v2/a/tags/list", headers=bearer(unbound))).status_code == 401


async def test_anonymous_offline_login_gets_no_refresh_token(client: httpx.AsyncClient,
                                                             anon: httpx.AsyncClient) -> None:
    await client.patch("/acr/admin/options", json={"anonymousPullEnabled": True})
    answer = await anon.post("/oauth2/token", data={"grant_type": "password", "service": SERVICE,
                                                    "access_type": "offline", "scope": "repository:a:pull"})
    assert answer.status_code == 200
    assert "refresh_token" not in answer.json() and "access_token" in answer.json()


async def test_a_mount_without_a_source_needs_read_access_to_every_repository(
        client: httpx.AsyncClient, anon: httpx.AsyncClient, storage: StorageProbe) -> None:
    blob = await push_blob(client, "src/app", b"shared layer")
    [everywhere] = await scoped_token(client, "readall", ["repositories/*/content/read",
                                                         "repositories/dst/content/write"])
    [narrow] = await scoped_token(client, "readdst", ["repositories/dst/content/read",
                                                     "repositories/dst/content/write"])
    params = {"mount": blob["digest"]}
    assert (await anon.post("/v2/dst/blobs/uploads/", params=params, headers=basic("readdst", narrow))).status_code \
        == 202
    token = (await anon.get("/oauth2/token", params=[("service", SERVICE), ("scope", "repository:dst:pull,push"),
                                                     ("scope", "repository:src/app:pull")],
                            headers=basic("readall", everywhere))).json()["access_token"]
    uploads = len(await storage.rows("uploads"))
    # A token's holder who may read every repository mounts whatever scopes the token names.
    answer = await anon.post("/v2/dst/blobs/uploads/", params=params, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    answer = await anon.post("/v2/dst/blobs/uploads/", params=params, headers=basic("readall", everywhere))
    assert answer.status_code == 201, answer.text
    assert len(await storage.rows("uploads")) == uploads  # mounted, no upload started
    assert (await client.post("/v2/other/blobs/uploads/", params=params)).status_code == 201  # the admin user


async def test_an_unknown_authorization_scheme_is_unauthorized(anon: httpx.AsyncClient) -> None:
    for header in ("Digest username=x", "Token abc", "bearer", "Basic"):
        answer = await anon.get("/v2/", headers={"Authorization": header})
        assert answer.status_code == 401, header


def test_signing_keys_are_rsa_or_p256() -> None:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    signer = TokenSigner(rsa_pem, "registry:test")
    token = signer.issue(ACCESS, "aud", "sub", 60, kind="admin")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert signer.verify(token, ACCESS, "aud")["sub"] == "sub"
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(ValueError, match="RSA or EC P-256"):
        TokenSigner(p384, "registry:test")
    # a token's expiry is bounded by not_after, and never extended by it
    soon = int(time.time()) + 30
    assert payload(signer.issue(ACCESS, "aud", "sub", 600, not_after=soon))["exp"] == soon
    late = signer.issue(ACCESS, "aud", "sub", 60, not_after=soon + 3600)
    assert payload(late)["exp"] <= int(time.time()) + 60


async def test_entra_tokens_need_a_principal_and_their_tenants_issuer(anon: httpx.AsyncClient,
                                                                      issuer: TestIssuer) -> None:
    now = int(time.time())

    def token(**claims: object) -> str:
        base = {"aud": "https://management.azure.com/", "iss": f"{issuer.authority}/{issuer.tenant}/v2.0",
                "iat": now, "nbf": now, "exp": now + 600, "oid": OID, "sub": OID, "tid": issuer.tenant}
        base.update(claims)
        return jwt.encode({k: v for k, v in base.items() if v is not None}, issuer.key, algorithm="RS256",
                          headers={"kid": issuer.kid})

    async def status(entra: str) -> int:
        return (await anon.post("/oauth2/exchange", data={"grant_type": "access_token", "service": SERVICE,
                                                          "access_token": entra})).status_code

    assert await status(token()) == 200
    assert await status(token(oid=None)) == 200  # sub alone names it
    assert await status(token(oid=None, sub=None)) == 401
    assert await status(token(iss=f"{issuer.authority}/{issuer.tenant}/")) == 200  # the v1 form
    assert await status(token(iss=f"https://sts.windows.net/{issuer.tenant}/")) == 401  # only for the public cloud
    assert await status(token(iss=f"{issuer.authority}/other-tenant/v2.0")) == 401
