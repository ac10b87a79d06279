"""Pull of blobs: SAS redirect (read-only, short-lived) and proxy mode with ranges."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from starlette.applications import Starlette

from shared.composition import create_app
from shared.settings import Settings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.oci import push_blob


async def test_get_redirects_to_read_only_sas(client: httpx.AsyncClient) -> None:
    data = os.urandom(10_000)
    digest = await push_blob(client, "sas", data)
    response = await client.get(f"/v2/sas/blobs/{digest}")
    assert response.status_code == 307
    url = response.headers["location"]
    query = parse_qs(urlparse(url).query)
    assert query["sp"] == ["r"] and "se" in query and "sig" in query
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(url)).content == data
        ranged = await plain.get(url, headers={"Range": "bytes=100-199"})
        assert ranged.status_code == 206 and ranged.content == data[100:200]
        write = await plain.put(url, content=b"overwrite", headers={"x-ms-blob-type": "BlockBlob"})
        assert write.status_code == 403


async def test_unknown_blob_and_blob_of_other_repository(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "mine", b"private")
    for method in ("GET", "HEAD"):
        response = await client.request(method, f"/v2/theirs/blobs/{digest}")
        assert response.status_code == 404
    assert (await client.get(f"/v2/theirs/blobs/{digest}")).json()["errors"][0]["code"] == "BLOB_UNKNOWN"


@pytest.fixture
async def proxy_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: Starlette = create_app(settings.with_env(REGISTRY_BLOB_REDIRECT="false"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        yield http
    await app.state.registry.close()


async def test_proxy_mode_streams_and_honours_ranges(proxy_client: httpx.AsyncClient) -> None:
    data = os.urandom(50_000)
    digest = await push_blob(proxy_client, "proxy", data)
    full = await proxy_client.get(f"/v2/proxy/blobs/{digest}")
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-length"] == "50000" and full.headers["docker-content-digest"] == digest
    for header, expected in [("bytes=0-9", data[:10]), ("bytes=49990-", data[49990:]), ("bytes=-5", data[-5:]),
                             ("bytes=40000-99999", data[40000:])]:
        part = await proxy_client.get(f"/v2/proxy/blobs/{digest}", headers={"Range": header})
        assert part.status_code == 206, header
        assert part.content == expected, header
        assert part.headers["content-range"].endswith("/50000")
    for unsatisfiable in ("bytes=50000-", "bytes=60000-60010", "bytes=500-0"):
        refused = await proxy_client.get(f"/v2/proxy/blobs/{digest}", headers={"Range": unsatisfiable})
        assert refused.status_code == 416
        assert refused.headers["content-range"] == "bytes */50000"
    ignored = await proxy_client.get(f"/v2/proxy/blobs/{digest}", headers={"Range": "items=1-2"})
    assert ignored.status_code == 200 and ignored.content == data


async def test_suffix_range_in_redirect_mode_is_served_by_the_registry(client: httpx.AsyncClient) -> None:
    data = os.urandom(2000)
    digest = await push_blob(client, "suffix", data)
    for header, expected in [("bytes=-500", data[-500:]), ("bytes=-5000", data)]:
        part = await client.get(f"/v2/suffix/blobs/{digest}", headers={"Range": header})
        assert part.status_code == 206, header
        assert part.content == expected
        assert part.headers["content-length"] == str(len(expected))
        assert part.headers["content-range"] == f"bytes {2000 - len(expected)}-1999/2000"
    for unsatisfiable in ("bytes=-0", "bytes=500-0"):
        refused = await client.get(f"/v2/suffix/blobs/{digest}", headers={"Range": unsatisfiable})
        assert refused.status_code == 416, unsatisfiable
        assert refused.headers["content-range"] == "bytes */2000"
    # Ranges storage answers correctly still go there.
    simple = await client.get(f"/v2/suffix/blobs/{digest}", headers={"Range": "bytes=0-9"})
    assert simple.status_code == 307


async def test_proxied_get_of_missing_data_is_blob_unknown(
    proxy_client: httpx.AsyncClient, settings: Settings
) -> None:
    from tests.storage import StorageProbe

    data = os.urandom(100)
    digest = await push_blob(proxy_client, "gone", data)
    probe = StorageProbe(settings.with_env(REGISTRY_BLOB_REDIRECT="false"))
    try:
        [row] = await probe.rows("blobs")
        await probe.clients.container.get_blob_client(row["location"]).delete_blob()
    finally:
        await probe.close()
    answer = await proxy_client.get(f"/v2/gone/blobs/{digest}")
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
