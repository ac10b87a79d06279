"""Where scope maps stop: ``team/*`` covers the repositories under ``team/`` and nothing else
(not ``teamx/…``, not ``team`` itself, as ACR's prefix wildcards), through Basic and through
the token service, with a real scoped token."""

from __future__ import annotations

import httpx

from tests.auth.helpers import SERVICE, payload, scoped_token
from tests.auth_helpers import basic, bearer, push_image

INSIDE = ["team/app", "team/sub/app"]
OUTSIDE = ["teamx/app", "team", "tea/app", "xteam/app", "other/team/app"]


async def test_prefix_scope_map_grants_only_repositories_under_the_prefix(
        client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    for repository in INSIDE + OUTSIDE:
        await push_image(client, repository, "v1")
    [password] = await scoped_token(client, "teamread", ["repositories/team/*/content/read"])
    for repository in INSIDE:
        answer = await anon.get(f"/v2/{repository}/manifests/v1", headers=basic("teamread", password))
        assert answer.status_code == 200, repository
    for repository in OUTSIDE:
        answer = await anon.get(f"/v2/{repository}/manifests/v1", headers=basic("teamread", password))
        assert answer.status_code == 403, repository
        assert answer.json()["errors"][0]["code"] == "DENIED"
    scopes = [("scope", f"repository:{r}:pull,push") for r in INSIDE + OUTSIDE]
    answer = await anon.get("/oauth2/token", params=[("service", SERVICE), *scopes],
                            headers=basic("teamread", password))
    token = answer.json()["access_token"]
    assert payload(token)["access"] == [{"type": "repository", "name": r, "actions": ["pull"]} for r in INSIDE]
    for repository in OUTSIDE:
        assert (await anon.get(f"/v2/{repository}/manifests/v1", headers=bearer(token))).status_code == 401


async def test_exact_scope_map_entry_grants_that_repository_only(client: httpx.AsyncClient,
                                                                 anon: httpx.AsyncClient) -> None:
    for repository in ("team/app", "team/app2", "team/app/sub", "team"):
        await push_image(client, repository, "v1")
    [password] = await scoped_token(client, "oneread", ["repositories/team/app/content/read"])
    statuses = {}
    for repository in ("team/app", "team/app2", "team/app/sub", "team"):
        answer = await anon.get(f"/v2/{repository}/manifests/v1", headers=basic("oneread", password))
        statuses[repository] = answer.status_code
    assert statuses == {"team/app": 200, "team/app2": 403, "team/app/sub": 403, "team": 403}
