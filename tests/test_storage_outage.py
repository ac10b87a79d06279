"""A storage outage answers 503 UNAVAILABLE with Retry-After within seconds, stores nothing half
done, and the registry recovers when storage is back.

The registry runs in-process over relays in front of Azurite (tests/outage.py), cut three ways:
connections refused, every request answered 503, and a black hole that accepts connections and
never answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from scripts.azurite import Azurite
from shared.composition import create_app
from shared.settings import Settings
from shared.storage import layout
from shared.storage.values import read_int
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.oci import OCI_MANIFEST, digest_of, push_image
from tests.outage import Cut, StorageOutage
from tests.storage import StorageProbe

MiB = 1024 * 1024
#: How soon an outage must be answered: refused connections are retried twice, briefly; a black
#: hole costs one try's deadline (5 s in shared/storage/clients.py), plus, for a try that sends a
#: body, time to send it at 256 KiB/s (1 MiB blocks here: 4 s).
WITHIN = {Cut.REFUSED: 3.0, Cut.SERVER_BUSY: 3.0, Cut.BLACK_HOLE: 7.0}
BLOCK_ALLOWANCE = {Cut.REFUSED: 0.0, Cut.SERVER_BUSY: 0.0, Cut.BLACK_HOLE: 4.0}
CUTS = [pytest.param(Cut.REFUSED, id="refused"), pytest.param(Cut.SERVER_BUSY, id="server-busy"),
        pytest.param(Cut.BLACK_HOLE, id="black-hole", marks=pytest.mark.slow)]


@pytest.fixture
async def outage(azurite: Azurite) -> AsyncIterator[StorageOutage]:
    """Relays in front of Azurite, up until a test cuts them."""
    relays = await StorageOutage(azurite).start()
    yield relays
    await relays.close()


@pytest.fixture
async def registry(settings: Settings, outage: StorageOutage) -> AsyncIterator[httpx.AsyncClient]:
    """The registry in-process, reaching storage through the relays; 1 MiB blocks."""
    app = create_app(settings.with_env(REGISTRY_STORAGE_CONNECTION_STRING=outage.connection_string,
                                       REGISTRY_UPLOAD_BLOCK_MIB="1"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=60) as client:
        yield client
    if app.state.registry is not None:
        await app.state.registry.close()


async def answered_unavailable(request: Awaitable[httpx.Response], cut: Cut, allowance: float = 0) -> httpx.Response:
    """Send ``request`` during the outage: 503 UNAVAILABLE, Retry-After, soon (``allowance``
    seconds later for a request whose storage calls carry a body)."""
    started = time.monotonic()
    response = await request
    elapsed = time.monotonic() - started
    print(f"{response.request.method} {response.request.url.path}: {response.status_code} after {elapsed:.2f} s")
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    if response.request.method != "HEAD":
        assert [e["code"] for e in response.json()["errors"]] == ["UNAVAILABLE"]
        assert "requestId" in response.json()["errors"][0]["detail"]
    assert elapsed < WITHIN[cut] + allowance, f"answered after {elapsed:.1f} s"
    return response


async def stored_rows(storage: StorageProbe) -> dict[str, Any]:
    """Every row of the index, repository and upload tables, whole, and the committed blobs, once
    the events of earlier pushes have left the outbox (they are published in the background)."""
    for _ in range(100):
        if not any(row["RowKey"].startswith(layout.OUTBOX) for row in await storage.rows("repos")):
            break
        await asyncio.sleep(0.1)
    return {"blobs": await storage.blobs(),
            **{table: sorted(await storage.rows(table), key=lambda r: (r["PartitionKey"], r["RowKey"]))
               for table in ("blobs", "repos", "uploads")}}


@pytest.mark.parametrize("cut", CUTS)
async def test_a_pull_during_an_outage_answers_503_and_works_again_after(
    registry: httpx.AsyncClient, outage: StorageOutage, cut: Cut
) -> None:
    digest, manifest = await push_image(registry, "outage/pull", "v1")
    layer = json.loads(manifest)["layers"][0]["digest"]
    await outage.begin(cut)
    await answered_unavailable(registry.get("/v2/outage/pull/manifests/v1", headers={"Accept": OCI_MANIFEST}), cut)
    await answered_unavailable(registry.head(f"/v2/outage/pull/manifests/{digest}"), cut)
    await answered_unavailable(registry.get(f"/v2/outage/pull/blobs/{layer}"), cut)
    await outage.end()
    got = await registry.get("/v2/outage/pull/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert got.status_code == 200 and got.content == manifest
    assert (await registry.get(f"/v2/outage/pull/blobs/{layer}")).status_code == 307


@pytest.mark.parametrize("cut", CUTS)
async def test_a_token_request_during_an_outage_answers_503_not_401(
    registry: httpx.AsyncClient, outage: StorageOutage, cut: Cut
) -> None:
    # A scoped token's password is checked against the stored token: storage is needed.
    assert (await registry.put("/acr/admin/scopemaps/puller", json={"actions": ["repositories/*/content/read"]})
            ).status_code == 200
    assert (await registry.put("/acr/admin/tokens/puller", json={"scopeMap": "puller"})).status_code == 200
    created = await registry.post("/acr/admin/tokens/puller/passwords", json={"name": "password1"})
    password = created.json()["value"]
    params = {"service": "registry.test", "scope": "repository:outage/any:pull"}
    await outage.begin(cut)
    await answered_unavailable(registry.get("/oauth2/token", params=params, auth=("puller", password)), cut)
    await outage.end()
    answer = await registry.get("/oauth2/token", params=params, auth=("puller", password))
    assert answer.status_code == 200 and answer.json()["access_token"]


@pytest.mark.parametrize("cut", CUTS)
async def test_a_manifest_put_during_an_outage_stores_nothing_and_succeeds_after(
    registry: httpx.AsyncClient, outage: StorageOutage, storage: StorageProbe, cut: Cut
) -> None:
    _, manifest = await push_image(registry, "outage/manifest", "v1")
    raw = manifest.replace(b'"schemaVersion": 2', b'"schemaVersion": 2, "annotations": {"n": "2"}')
    before = await stored_rows(storage)
    await outage.begin(cut)
    await answered_unavailable(registry.put("/v2/outage/manifest/manifests/v2", content=raw,
                                            headers={"Content-Type": OCI_MANIFEST}), cut)
    await outage.end()
    assert await stored_rows(storage) == before
    put = await registry.put("/v2/outage/manifest/manifests/v2", content=raw, headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201 and put.headers["docker-content-digest"] == digest_of(raw)
    assert (await registry.get("/v2/outage/manifest/manifests/v2")).content == raw


def cut_midway(data: bytes, after: int, cut: Callable[[], Awaitable[None]]) -> AsyncIterator[bytes]:
    """``data`` in 64 KiB pieces; storage is cut once ``after`` bytes have been handed over."""

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 64 * 1024):
            if start == after:
                await cut()
            yield data[start:start + 64 * 1024]

    return pieces()


@pytest.mark.parametrize("cut", CUTS)
async def test_a_push_cut_mid_patch_keeps_its_upload_unchanged_and_completes_after(
    registry: httpx.AsyncClient, outage: StorageOutage, storage: StorageProbe, cut: Cut
) -> None:
    data = os.urandom(5 * MiB + 4321)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = await registry.post("/v2/outage/push/blobs/uploads/")
    location = started.headers["location"]
    before = await stored_rows(storage)
    # Two 1 MiB blocks are on their way to storage when it goes.
    body = cut_midway(data, 2 * MiB, lambda: outage.begin(cut))
    await answered_unavailable(registry.patch(location, content=body), cut, BLOCK_ALLOWANCE[cut])
    await outage.end()
    assert await stored_rows(storage) == before  # the upload still says 0 bytes; nothing committed
    status = await registry.get(location)
    assert status.status_code == 204 and status.headers.get("range", "0-0") == "0-0"

    patched = await registry.patch(location, content=data)
    assert patched.status_code == 202 and patched.headers["range"] == f"0-{len(data) - 1}"
    done = await registry.put(location, params={"digest": digest})
    assert done.status_code == 201, done.text
    index = {row["PartitionKey"]: row for row in await storage.rows("blobs")}
    assert read_int(index[digest]["size"]) == len(data)


@pytest.mark.parametrize("cut", CUTS)
async def test_a_final_put_during_an_outage_commits_nothing_and_completes_after(
    registry: httpx.AsyncClient, outage: StorageOutage, storage: StorageProbe, cut: Cut
) -> None:
    data = os.urandom(3 * MiB + 99)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = await registry.post("/v2/outage/final/blobs/uploads/")
    location = started.headers["location"]
    assert (await registry.patch(location, content=data[:2 * MiB])).status_code == 202
    before = await stored_rows(storage)
    await outage.begin(cut)
    await answered_unavailable(registry.put(location, params={"digest": digest}, content=data[2 * MiB:]), cut)
    await outage.end()
    assert await stored_rows(storage) == before
    done = await registry.put(location, params={"digest": digest}, content=data[2 * MiB:])
    assert done.status_code == 201, done.text
    fetched = await registry.get(f"/v2/outage/final/blobs/{digest}")
    assert fetched.status_code == 307
    async with httpx.AsyncClient() as direct:
        assert hashlib.sha256((await direct.get(fetched.headers["location"])).content).hexdigest() == digest[7:]
