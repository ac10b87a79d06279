"""Concurrent writers of one tag: all succeed, the last one wins, nothing written in between is lost,
and contention beyond the bound answers 503 with Retry-After."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from starlette.applications import Starlette

from shared.registry import commit
from tests.manifest_helpers import TableSpy, encode, registry_of_app
from tests.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, descriptor, digest_of, push_blob
from tests.storage import StorageProbe


async def _manifests(client: httpx.AsyncClient, repository: str, count: int) -> list[bytes]:
    """``count`` distinct manifests over one config and one layer (pushed once)."""
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer bytes"
    await push_blob(client, repository, config)
    await push_blob(client, repository, layer)
    return [json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                        "layers": [descriptor(OCI_LAYER, layer)], "annotations": {"n": str(i)}}).encode()
            for i in range(count)]


async def _put(client: httpx.AsyncClient, repository: str, tag: str, raw: bytes) -> httpx.Response:
    return await client.put(f"/v2/{repository}/manifests/{tag}", content=raw, headers={"Content-Type": OCI_MANIFEST})


async def _assert_consistent(client: httpx.AsyncClient, storage: StorageProbe, repository: str, tag: str,
                             pushed: list[bytes]) -> None:
    """The tag names one of the pushed manifests and serves its bytes; every manifest is pullable."""
    got = await client.get(f"/v2/{repository}/manifests/{tag}")
    assert got.status_code == 200
    assert got.content in pushed and got.headers["docker-content-digest"] == digest_of(got.content)
    for raw in pushed:
        by_digest = await client.get(f"/v2/{repository}/manifests/{digest_of(raw)}")
        assert by_digest.status_code == 200 and by_digest.content == raw
    rows = [r for r in await storage.rows("repos") if r["PartitionKey"] == encode(repository)]
    assert sum(r["RowKey"].startswith("m|") for r in rows) == len(pushed)
    assert [r["RowKey"] for r in rows if r["RowKey"].startswith("t|")] == [f"t|{tag}"]


@pytest.mark.parametrize("writers", [25, pytest.param(100, marks=pytest.mark.slow)])
async def test_concurrent_pushes_of_one_tag_all_succeed(client: httpx.AsyncClient, storage: StorageProbe,
                                                        writers: int) -> None:
    pushed = await _manifests(client, "busy/one", writers)
    responses = await asyncio.gather(*(_put(client, "busy/one", "latest", raw) for raw in pushed))
    assert [r.status_code for r in responses] == [201] * writers, {r.status_code for r in responses}
    await _assert_consistent(client, storage, "busy/one", "latest", pushed)


@pytest.mark.slow
async def test_hundred_concurrent_pushes_of_one_tag_across_four_instances_all_succeed(
        instances: list[httpx.AsyncClient], storage: StorageProbe) -> None:
    pushed = await _manifests(instances[0], "busy/many", 100)
    responses = await asyncio.gather(*(_put(instances[i % 4], "busy/many", "latest", raw)
                                       for i, raw in enumerate(pushed)))
    assert [r.status_code for r in responses] == [201] * 100, {(r.status_code, r.text[:200]) for r in responses}
    await _assert_consistent(instances[1], storage, "busy/many", "latest", pushed)


async def test_contention_beyond_the_bound_answers_503_with_retry_after(
        app: Starlette, client: httpx.AsyncClient, storage: StorageProbe, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = await _manifests(client, "busy/stuck", 2)
    assert (await _put(client, "busy/stuck", "latest", first)).status_code == 201
    monkeypatch.setattr(commit, "COMMIT_SECONDS", 0.5)
    registry = await registry_of_app(app)
    spy = TableSpy(registry.storage.repos)
    registry.storage.repos = spy

    async def another_host_writes_the_tag() -> None:  # before every attempt: the ETag never matches
        await storage.clients.repos.update_entity(
            {"PartitionKey": encode("busy/stuck"), "RowKey": "t|latest", "other": "writer"}, mode="merge")

    spy.before_every_commit = another_host_writes_the_tag
    response = await _put(client, "busy/stuck", "latest", second)
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert int(response.headers["retry-after"]) >= 1
    assert spy.calls["submit_transaction"] >= 3  # it retried before giving up
    keys = {r["RowKey"] for r in await storage.rows("repos") if r["PartitionKey"] == encode("busy/stuck")}
    assert f"m|{digest_of(second)}" not in keys
    spy.before_every_commit = None
    assert (await client.get("/v2/busy/stuck/manifests/latest")).content == first


async def test_lock_change_forced_between_read_and_commit_is_kept(app: Starlette, client: httpx.AsyncClient,
                                                                 storage: StorageProbe) -> None:
    first, second = await _manifests(client, "race/lock", 2)
    assert (await _put(client, "race/lock", "v", first)).status_code == 201
    registry = await registry_of_app(app)
    spy = TableSpy(registry.storage.repos)
    registry.storage.repos = spy

    async def lock_the_tag() -> None:
        locked = await client.patch("/acr/v1/race/lock/_tags/v", json={"deleteEnabled": False})
        assert locked.status_code == 200, locked.text

    spy.before_commit = lock_the_tag
    assert (await _put(client, "race/lock", "v", second)).status_code == 201
    assert spy.before_commit is None  # the competing write did run
    row = next(r for r in await storage.rows("repos") if r["RowKey"] == "t|v")
    assert row["digest"] == digest_of(second)
    assert row["can_delete"] is False
    assert (await client.delete("/v2/race/lock/manifests/v")).status_code == 403


async def test_write_lock_forced_between_read_and_commit_refuses_the_push(
        app: Starlette, client: httpx.AsyncClient, storage: StorageProbe) -> None:
    first, second = await _manifests(client, "race/write", 2)
    assert (await _put(client, "race/write", "v", first)).status_code == 201
    registry = await registry_of_app(app)
    spy = TableSpy(registry.storage.repos)
    registry.storage.repos = spy

    async def write_lock_the_tag() -> None:
        locked = await client.patch("/acr/v1/race/write/_tags/v", json={"writeEnabled": False})
        assert locked.status_code == 200, locked.text

    spy.before_commit = write_lock_the_tag
    response = await _put(client, "race/write", "v", second)
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["code"] == "DENIED"
    rows = {r["RowKey"]: r for r in await storage.rows("repos") if r["PartitionKey"] == encode("race/write")}
    assert rows["t|v"]["digest"] == digest_of(first) and rows["t|v"]["can_write"] is False
    assert f"m|{digest_of(second)}" not in rows


async def test_push_forced_between_read_and_commit_is_not_lost(
        app: Starlette, client: httpx.AsyncClient, instances: list[httpx.AsyncClient]) -> None:
    first, second, third = await _manifests(client, "race/push", 3)
    assert (await _put(client, "race/push", "v", first)).status_code == 201
    registry = await registry_of_app(app)
    spy = TableSpy(registry.storage.repos)
    registry.storage.repos = spy

    async def push_another() -> None:  # from another instance, as two hosts would race
        assert (await _put(instances[0], "race/push", "v", third)).status_code == 201

    spy.before_commit = push_another
    assert (await _put(client, "race/push", "v", second)).status_code == 201
    # The two pushes overlap: the one that began first is ordered first, the tag stays at the other.
    assert (await client.get("/v2/race/push/manifests/v")).content == third
    for raw in (first, second, third):
        assert (await client.get(f"/v2/race/push/manifests/{digest_of(raw)}")).content == raw
