"""Reads never fail mid-replication, and pushes may bounce between regions: two regions on one
Azurite, each its own app, with replication held back (no Event Grid consumer runs), so whatever
one region serves of the other's content it serves by looking there."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest

from scripts.azurite import free_port
from shared.composition import configure, create_app
from shared.settings import Settings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Azurite, test_settings, unique_prefix
from tests.manifest_helpers import encode, error_code
from tests.replication.regions import region_settings
from tests.storage import StorageProbe

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def describe(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}


def image(config: bytes, layers: list[bytes]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": describe(OCI_CONFIG, config),
                       "layers": [describe(OCI_LAYER, layer) for layer in layers]}).encode()


@asynccontextmanager
async def region_clients(settings: Mapping[str, Settings]) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """An in-process app per region, as the admin user; no Event Grid consumer is registered, so
    replication never runs and a region knows the other's content only by looking there."""
    apps = {name: create_app(s, replace(configure(environ=s.source), consumers=())) for name, s in settings.items()}
    clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}.test",
                                       auth=(ADMIN_USER, ADMIN_PASSWORD)) for name, app in apps.items()}
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()
        for app in apps.values():
            if app.state.registry is not None:
                await app.state.registry.close()


@pytest.fixture
def regions(azurite: Azurite) -> dict[str, Settings]:
    return region_settings(azurite)


@pytest.fixture
async def clients(regions: dict[str, Settings]) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with region_clients(regions) as opened:
        yield opened


@pytest.fixture
async def probes(regions: dict[str, Settings]) -> AsyncIterator[dict[str, StorageProbe]]:
    opened = {name: StorageProbe(s) for name, s in regions.items()}
    yield opened
    for probe in opened.values():
        await probe.close()


async def upload(client: httpx.AsyncClient, name: str, data: bytes) -> None:
    start = await client.post(f"/v2/{name}/blobs/uploads/")
    assert start.status_code == 202, start.text
    done = await client.put(start.headers["location"], params={"digest": sha256(data)}, content=data)
    assert done.status_code == 201, done.text


async def push(client: httpx.AsyncClient, name: str, tag: str, layers: int = 2) -> tuple[bytes, list[bytes]]:
    """Push a random image; returns its manifest bytes and its blobs (config first)."""
    blobs = [json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(8).hex()}).encode()]
    blobs += [os.urandom(3000 + i) for i in range(layers)]
    for data in blobs:
        await upload(client, name, data)
    raw = image(blobs[0], blobs[1:])
    response = await client.put(f"/v2/{name}/manifests/{tag}", content=raw, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return raw, blobs


async def follow(response: httpx.Response) -> bytes:
    assert response.status_code == 307, response.text
    async with httpx.AsyncClient() as storage:
        redirected = await storage.get(response.headers["location"])
    assert redirected.status_code == 200
    return redirected.content


async def test_image_pushed_to_east_is_pulled_whole_from_west_before_replication(
        clients: dict[str, httpx.AsyncClient], regions: dict[str, Settings], probes: dict[str, StorageProbe]) -> None:
    east, west = clients["east"], clients["west"]
    raw, blobs = await push(east, "geo/app", "v1")
    west_before = await probes["west"].snapshot()

    for reference in ("v1", sha256(raw)):
        got = await west.get(f"/v2/geo/app/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200, got.text
        assert got.content == raw and sha256(got.content) == sha256(raw)
        assert got.headers["docker-content-digest"] == sha256(raw)
        assert got.headers["content-type"] == OCI_MANIFEST
        head = await west.head(f"/v2/geo/app/manifests/{reference}")
        assert head.status_code == 200
        assert head.headers["docker-content-digest"] == sha256(raw) and head.headers["content-length"] == str(len(raw))

    east_container = f"{regions['east'].storage.prefix}"
    for data in blobs:
        head = await west.head(f"/v2/geo/app/blobs/{sha256(data)}")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(data))
        assert head.headers["docker-content-digest"] == sha256(data)
        got = await west.get(f"/v2/geo/app/blobs/{sha256(data)}")
        assert east_container in got.headers["location"]  # east's storage serves it
        assert hashlib.sha256(await follow(got)).hexdigest() == hashlib.sha256(data).hexdigest()

    # The tag list of a repository unknown in west is east's; the catalog stays local; reading wrote nothing in west.
    assert (await west.get("/v2/geo/app/tags/list")).json() == {"name": "geo/app", "tags": ["v1"]}
    assert (await west.get("/v2/_catalog")).json() == {"repositories": []}
    assert await probes["west"].snapshot() == west_before
    assert not [r for r in await probes["west"].rows("repos") if r["PartitionKey"] == encode("geo/app")]


async def test_blobs_stream_from_the_other_region_when_redirects_are_off(azurite: Azurite) -> None:
    settings = region_settings(azurite, REGISTRY_BLOB_REDIRECT="false")
    async with region_clients(settings) as clients:
        _, blobs = await push(clients["east"], "geo/stream", "v1", layers=1)
        for data in blobs:
            got = await clients["west"].get(f"/v2/geo/stream/blobs/{sha256(data)}")
            assert got.status_code == 200
            assert sha256(got.content) == sha256(data)
        part = await clients["west"].get(f"/v2/geo/stream/blobs/{sha256(blobs[1])}", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == blobs[1][10:20]


async def test_unknown_everywhere_stays_unknown(clients: dict[str, httpx.AsyncClient],
                                                probes: dict[str, StorageProbe]) -> None:
    west = clients["west"]
    await push(clients["east"], "geo/none", "v1", layers=1)
    before = {name: await probe.snapshot() for name, probe in probes.items()}
    missing = sha256(os.urandom(32))
    assert error_code(await west.get(f"/v2/geo/none/manifests/{missing}")) == "MANIFEST_UNKNOWN"
    assert error_code(await west.get("/v2/geo/none/manifests/v2")) == "MANIFEST_UNKNOWN"
    assert error_code(await west.get(f"/v2/geo/none/blobs/{missing}")) == "BLOB_UNKNOWN"
    assert (await west.head(f"/v2/geo/none/blobs/{missing}")).status_code == 404
    # Another repository of the other region is not this one's.
    assert error_code(await west.get("/v2/geo/other/manifests/v1")) == "MANIFEST_UNKNOWN"
    patch = await west.patch(f"/v2/geo/none/blobs/uploads/{os.urandom(16).hex()}", content=b"x")
    assert error_code(patch) == "BLOB_UPLOAD_UNKNOWN"
    assert {name: await probe.snapshot() for name, probe in probes.items()} == before


async def test_read_lock_in_the_region_holding_the_content_is_enforced(clients: dict[str, httpx.AsyncClient]) -> None:
    east, west = clients["east"], clients["west"]
    raw, blobs = await push(east, "geo/locked", "v1", layers=1)
    locked = await east.patch("/acr/v1/geo/locked", json={"readEnabled": False})
    assert locked.status_code == 200, locked.text
    for path in ("/v2/geo/locked/manifests/v1", f"/v2/geo/locked/manifests/{sha256(raw)}",
                 f"/v2/geo/locked/blobs/{sha256(blobs[1])}"):
        refused = await west.get(path)
        assert refused.status_code == 403 and error_code(refused) == "DENIED", path


async def test_push_bouncing_between_regions_commits_and_is_pullable_from_both(
        clients: dict[str, httpx.AsyncClient], probes: dict[str, StorageProbe]) -> None:
    east, west = clients["east"], clients["west"]
    name = "geo/bounce"
    config = json.dumps({"architecture": "arm64", "os": "linux", "n": os.urandom(8).hex()}).encode()
    first, second = os.urandom(40_000), os.urandom(25_000)
    await upload(east, name, config)

    # first layer: POST in east, PATCH in west, PUT in east
    start = await east.post(f"/v2/{name}/blobs/uploads/")
    location = start.headers["location"]
    patched = await west.patch(location, content=first[:30_000],
                               headers={"Content-Range": "0-29999", "Content-Type": "application/octet-stream"})
    assert patched.status_code == 202, patched.text
    assert patched.headers["range"] == "0-29999"
    status = await west.get(location)
    assert status.status_code == 204 and status.headers["range"] == "0-29999"
    done = await east.put(location, params={"digest": sha256(first)}, content=first[30_000:],
                          headers={"Content-Range": "30000-39999"})
    assert done.status_code == 201, done.text

    # second layer: POST in west, PATCH in east, PUT (empty) in west
    start = await west.post(f"/v2/{name}/blobs/uploads/")
    location = start.headers["location"]
    assert (await east.patch(location, content=second)).status_code == 202
    done = await west.put(location, params={"digest": sha256(second)})
    assert done.status_code == 201, done.text

    # the manifest in west: config and the first layer live in east, the second in west
    raw = image(config, [first, second])
    put = await west.put(f"/v2/{name}/manifests/v1", content=raw, headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201, put.text
    assert put.headers["docker-content-digest"] == sha256(raw)

    for client in (west, east):
        got = await client.get(f"/v2/{name}/manifests/v1")
        assert got.status_code == 200 and got.content == raw
        for data in (config, first, second):
            assert sha256(await follow(await client.get(f"/v2/{name}/blobs/{sha256(data)}"))) == sha256(data)

    # West holds the imported blobs, each once under its digest's name, indexed and linked.
    index = {r["PartitionKey"]: r for r in await probes["west"].rows("blobs")}
    links = {r["RowKey"]: r for r in await probes["west"].rows("repos") if r["PartitionKey"] == encode(name)}
    stored = await probes["west"].blobs()
    for data in (config, first):
        hexpart = hashlib.sha256(data).hexdigest()
        assert index[sha256(data)]["location"] == f"data/sha256-{hexpart}"
        assert index[sha256(data)]["size"].value == len(data)  # an Edm.Int64
        assert links[f"l|{sha256(data)}"]["location"] == f"data/sha256-{hexpart}"
        assert stored[f"data/sha256-{hexpart}"] == len(data)
    assert f"l|{sha256(second)}" in links and f"m|{sha256(raw)}" in links and "t|v1" in links
    # East's sessions ended, and west never held one of them.
    assert await probes["east"].rows("uploads") == [] and await probes["west"].rows("uploads") == []
    east_links = {r["RowKey"] for r in await probes["east"].rows("repos") if r["PartitionKey"] == encode(name)}
    assert {f"l|{sha256(config)}", f"l|{sha256(first)}"} <= east_links
    assert f"l|{sha256(second)}" not in east_links  # its session was west's, so it was committed there
    assert f"m|{sha256(raw)}" not in east_links  # the manifest is west's until replication runs


async def test_manifest_put_referencing_a_blob_in_no_region_writes_nothing(
        clients: dict[str, httpx.AsyncClient], probes: dict[str, StorageProbe]) -> None:
    east, west = clients["east"], clients["west"]
    config, layer, nowhere = b'{"architecture":"amd64","os":"linux"}', os.urandom(2000), os.urandom(2000)
    await upload(east, "geo/partial", config)
    await upload(east, "geo/partial", layer)
    west_before = await probes["west"].snapshot()
    raw = image(config, [layer, nowhere])
    refused = await west.put("/v2/geo/partial/manifests/v1", content=raw, headers={"Content-Type": OCI_MANIFEST})
    assert refused.status_code == 400
    assert error_code(refused) == "MANIFEST_BLOB_UNKNOWN"
    assert refused.json()["errors"][0]["detail"] == {"digests": [sha256(nowhere)]}
    assert await probes["west"].snapshot() == west_before  # nothing imported, nothing committed


async def test_index_pushed_in_west_imports_its_child_manifest_from_east(
        clients: dict[str, httpx.AsyncClient], probes: dict[str, StorageProbe]) -> None:
    east, west = clients["east"], clients["west"]
    child, blobs = await push(east, "geo/multi", "amd64")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**describe(OCI_MANIFEST, child), "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    put = await west.put("/v2/geo/multi/manifests/latest", content=index, headers={"Content-Type": OCI_INDEX})
    assert put.status_code == 201, put.text
    rows = {r["RowKey"]: r for r in await probes["west"].rows("repos") if r["PartitionKey"] == encode("geo/multi")}
    assert rows[f"m|{sha256(child)}"]["media_type"] == OCI_MANIFEST
    assert rows[f"m|{sha256(index)}"]["media_type"] == OCI_INDEX
    assert {f"l|{sha256(b)}" for b in blobs} <= rows.keys()
    got = await west.get(f"/v2/geo/multi/manifests/{sha256(child)}")
    assert got.content == child
    got = await east.get("/v2/geo/multi/manifests/latest", headers={"Accept": OCI_INDEX})
    assert got.status_code == 200 and got.content == index


async def test_an_unreachable_region_is_looked_past_and_the_local_answers_stand(azurite: Azurite) -> None:
    dead = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{free_port()}", azurite.connection_string)  # nothing listens
    prefix = unique_prefix()
    regions = json.dumps([{"name": "east", "connection_string": azurite.connection_string, "prefix": prefix},
                          {"name": "west", "connection_string": dead, "prefix": unique_prefix()}])
    east = test_settings(azurite, REGISTRY_STORAGE_PREFIX=prefix, REGISTRY_REGION="east", REGISTRY_REGIONS=regions)
    async with region_clients({"east": east}) as clients:
        client = clients["east"]
        fresh = os.urandom(500)
        started = time.monotonic()
        assert (await client.head(f"/v2/geo/down/blobs/{sha256(fresh)}")).status_code == 404  # a push's first question
        first = time.monotonic() - started
        started = time.monotonic()
        assert (await client.head(f"/v2/geo/down/blobs/{sha256(fresh)}")).status_code == 404
        assert time.monotonic() - started < first  # the region is left out for a while: no waits on its retries
        raw, _ = await push(client, "geo/down", "v1", layers=1)
        assert (await client.get("/v2/geo/down/manifests/v1")).content == raw
        assert error_code(await client.get("/v2/geo/down/manifests/v2")) == "MANIFEST_UNKNOWN"
        assert error_code(await client.get(f"/v2/geo/down/blobs/{sha256(fresh)}")) == "BLOB_UNKNOWN"
        patch = await client.patch(f"/v2/geo/down/blobs/uploads/{os.urandom(16).hex()}", content=b"x")
        assert error_code(patch) == "BLOB_UPLOAD_UNKNOWN"
        refused = await client.put("/v2/geo/down/manifests/v2", content=image(b"{}", [fresh]),
                                   headers={"Content-Type": OCI_MANIFEST})
        assert error_code(refused) == "MANIFEST_BLOB_UNKNOWN"
