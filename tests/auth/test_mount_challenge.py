"""A cross-repository mount's challenge asks for the source too, as the reference registry does, so
clients that take their scope from the challenge (python-dxf, the OCI conformance suite) can mount;
a caller who may not read the source still gets a plain upload."""

from __future__ import annotations

import re

import httpx

from tests.auth.helpers import SERVICE, payload, scoped_token
from tests.auth_helpers import basic, bearer, push_blob
from tests.storage import StorageProbe

BLOB = b"a layer both repositories share"


async def _follow_challenge(anon: httpx.AsyncClient, response: httpx.Response, username: str,
                            password: str) -> str:
    """What python-dxf does with a 401: a token for every scope the challenge names."""
    challenge = response.headers["www-authenticate"]
    scope = re.search(r'scope="([^"]*)"', challenge)
    assert scope is not None, challenge
    params = [("service", SERVICE), *(("scope", s) for s in scope[1].split())]
    answer = await anon.get("/oauth2/token", params=params, headers=basic(username, password))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def test_mount_challenge_names_the_source_and_the_token_then_mounts(
        client: httpx.AsyncClient, anon: httpx.AsyncClient, storage: StorageProbe) -> None:
    blob = await push_blob(client, "src/app", BLOB)
    [password] = await scoped_token(client, "mounter", ["repositories/src/app/content/read",
                                                        "repositories/dst/app/content/read",
                                                        "repositories/dst/app/content/write"])
    params = {"mount": blob["digest"], "from": "src/app"}
    first = await anon.post("/v2/dst/app/blobs/uploads/", params=params)
    assert first.status_code == 401
    assert first.headers["www-authenticate"] == (
        f'Bearer realm="http://{SERVICE}/oauth2/token",service="{SERVICE}",'
        'scope="repository:dst/app:pull,push repository:src/app:pull"')
    token = await _follow_challenge(anon, first, "mounter", password)
    assert payload(token)["access"] == [{"type": "repository", "name": "dst/app", "actions": ["pull", "push"]},
                                        {"type": "repository", "name": "src/app", "actions": ["pull"]}]
    mounted = await anon.post("/v2/dst/app/blobs/uploads/", params=params, headers=bearer(token))
    assert mounted.status_code == 201, mounted.text
    assert mounted.headers["location"].endswith(f"/v2/dst/app/blobs/{blob['digest']}")
    links = [r["RowKey"] for r in await storage.rows("repos") if r["RowKey"].startswith("l|")]
    assert sorted(links) == [f"l|{blob['digest']}"] * 2  # linked into both repositories
    assert await storage.rows("uploads") == []  # a mount, not an upload


async def test_a_caller_who_may_not_read_the_source_still_gets_a_plain_upload(
        client: httpx.AsyncClient, anon: httpx.AsyncClient, storage: StorageProbe) -> None:
    blob = await push_blob(client, "src/app", BLOB)
    [password] = await scoped_token(client, "pusher", ["repositories/dst/app/content/read",
                                                       "repositories/dst/app/content/write"])
    params = {"mount": blob["digest"], "from": "src/app"}
    first = await anon.post("/v2/dst/app/blobs/uploads/", params=params)
    token = await _follow_challenge(anon, first, "pusher", password)
    assert payload(token)["access"] == [{"type": "repository", "name": "dst/app", "actions": ["pull", "push"]}]
    answer = await anon.post("/v2/dst/app/blobs/uploads/", params=params, headers=bearer(token))
    assert answer.status_code == 202, answer.text
    links = [r for r in await storage.rows("repos") if r["RowKey"].startswith("l|")]
    assert len(links) == 1  # only the source's
    assert len(await storage.rows("uploads")) == 1


async def test_mount_challenge_names_only_valid_repositories(anon: httpx.AsyncClient) -> None:
    digest = "sha256:" + "a" * 64
    for source in ('src",error="x', "Src/App", "src//app", "", "src/app\r\nX-Evil: 1"):
        answer = await anon.post("/v2/dst/app/blobs/uploads/", params={"mount": digest, "from": source})
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].endswith('scope="repository:dst/app:pull,push"'), source
    answer = await anon.post("/v2/dst/app/blobs/uploads/", params={"from": "src/app"})  # not a mount
    assert answer.headers["www-authenticate"].endswith('scope="repository:dst/app:pull,push"')
    answer = await anon.get('/v2/a"b/manifests/v1')
    assert answer.status_code in (400, 401, 404)
    assert '"b' not in answer.headers.get("www-authenticate", "")


async def test_challenge_realm_scheme_comes_only_from_a_plain_forwarded_proto(anon: httpx.AsyncClient) -> None:
    cases = {"https": "https", "http": "http", 'https",x="1': "http", "ftp": "http"}
    for forwarded, scheme in cases.items():
        answer = await anon.get("/v2/", headers={"X-Forwarded-Proto": forwarded})
        assert answer.headers["www-authenticate"].startswith(f'Bearer realm="{scheme}://{SERVICE}/oauth2/token"')
