"""Manifests are checked against what is stored: descriptor sizes, the descriptor cap, bounded reads,
sizes of 2 GiB and more, rows too large for a table; refused input stores nothing."""

from __future__ import annotations

import hashlib
import json
import os

import httpx
from azure.data.tables import EdmType, EntityProperty
from starlette.applications import Starlette

from tests.manifest_helpers import (
    DownloadSpy,
    TableSpy,
    encode,
    error_code,
    everything,
    link_rows,
    put,
    registry_of_app,
    small_image,
)
from tests.oci import (
    EMPTY,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    push_blob,
)
from tests.storage import StorageProbe


async def test_layer_descriptor_size_must_match_the_stored_blob(client: httpx.AsyncClient,
                                                                storage: StorageProbe) -> None:
    doc, _, layer = await small_image(client, "sizes/layer")
    doc["layers"][0]["size"] = 1
    before = await everything(storage)
    response = await put(client, "sizes/layer", "v1", doc, OCI_MANIFEST)
    assert response.status_code == 400, response.text
    assert error_code(response) == "MANIFEST_INVALID"
    assert digest_of(layer) in json.dumps(response.json())
    assert await everything(storage) == before


async def test_config_size_lie_is_refused_without_reading_the_blob(app: Starlette, client: httpx.AsyncClient,
                                                                  storage: StorageProbe) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux", "pad": "x" * (1024 * 1024)}).encode()
    layer = os.urandom(70)
    await push_blob(client, "sizes/config", config)
    await push_blob(client, "sizes/config", layer)
    registry = await registry_of_app(app)
    spy = DownloadSpy(registry.storage.container)
    registry.storage.container = spy
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": 1000},
           "layers": [descriptor(OCI_LAYER, layer)]}
    before = await everything(storage)
    response = await put(client, "sizes/config", "v1", doc, OCI_MANIFEST)
    assert response.status_code == 400, response.text
    assert error_code(response) == "MANIFEST_INVALID"
    assert spy.downloads == []
    assert await everything(storage) == before


async def test_config_is_read_only_up_to_a_small_cap(app: Starlette, client: httpx.AsyncClient,
                                                    storage: StorageProbe) -> None:
    registry = await registry_of_app(app)
    small = json.dumps({"architecture": "arm64", "os": "linux"}).encode()
    large = json.dumps({"architecture": "s390x", "os": "linux", "pad": "x" * (256 * 1024)}).encode()
    layer = os.urandom(70)
    for data in (small, large, layer):
        await push_blob(client, "sizes/cap", data)
    spy = DownloadSpy(registry.storage.container)
    registry.storage.container = spy
    for tag, config in (("small", small), ("large", large)):
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
               "layers": [descriptor(OCI_LAYER, layer)]}
        assert (await put(client, "sizes/cap", tag, doc, OCI_MANIFEST)).status_code == 201
    assert spy.downloads and all(length is not None and length <= 64 * 1024 for _, _, length in spy.downloads)
    rows = {r["RowKey"]: r for r in await storage.rows("repos") if r["RowKey"].startswith("m|")}
    archs = sorted(str(r.get("architecture")) for r in rows.values())
    assert archs == ["None", "arm64"]


async def test_index_child_size_must_match_the_stored_manifest(client: httpx.AsyncClient,
                                                               storage: StorageProbe) -> None:
    doc, _, _ = await small_image(client, "sizes/index")
    raw = json.dumps(doc).encode()
    assert (await put(client, "sizes/index", digest_of(raw), raw, OCI_MANIFEST)).status_code == 201
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest_of(raw), "size": len(raw) + 1}]}
    before = await everything(storage)
    response = await put(client, "sizes/index", "multi", index, OCI_INDEX)
    assert response.status_code == 400, response.text
    assert error_code(response) == "MANIFEST_INVALID"
    assert await everything(storage) == before
    index["manifests"][0]["size"] = len(raw)
    assert (await put(client, "sizes/index", "multi", index, OCI_INDEX)).status_code == 201


async def test_images_of_2_gib_and_more_are_stored_with_int64_sizes(client: httpx.AsyncClient,
                                                                   storage: StorageProbe) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    await push_blob(client, "big/image", config)
    huge = {"sha256:" + hashlib.sha256(str(i).encode()).hexdigest(): (3 << 30) + i for i in range(3)}
    await link_rows(storage, "big/image", huge)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
           "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in huge.items()]}
    raw = json.dumps(doc).encode()
    response = await put(client, "big/image", "v1", raw, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    expected = len(raw) + len(config) + sum(huge.values())
    rows = {r["RowKey"]: r for r in await storage.rows("repos") if r["PartitionKey"] == encode("big/image")}
    manifest_row = rows[f"m|{digest_of(raw)}"]
    assert manifest_row["image_size"] == EntityProperty(expected, EdmType.INT64)
    assert manifest_row["size"] == EntityProperty(len(raw), EdmType.INT64)
    assert rows["t|v1"]["size"] == EntityProperty(len(raw), EdmType.INT64)
    meta = await client.get(f"/acr/v1/big/image/_manifests/{digest_of(raw).replace(':', '%3A')}")
    assert meta.status_code == 200, meta.text
    assert meta.json()["manifest"]["imageSize"] == expected
    got = await client.get("/v2/big/image/manifests/v1")
    assert got.content == raw and got.headers["content-length"] == str(len(raw))


async def test_descriptor_count_is_capped(client: httpx.AsyncClient, storage: StorageProbe) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    await push_blob(client, "spec/cap", config)
    layers = [{"mediaType": OCI_LAYER, "digest": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest(),
               "size": 1} for i in range(1024)]
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
           "layers": layers}
    before = await everything(storage)
    response = await put(client, "spec/cap", "v1", doc, OCI_MANIFEST)
    assert response.status_code == 400, response.text
    assert error_code(response) == "MANIFEST_INVALID" and response.json()["errors"][0]["detail"]["limit"] == 1024
    assert await everything(storage) == before


async def test_reference_check_of_many_descriptors_is_a_few_range_queries(app: Starlette, client: httpx.AsyncClient,
                                                                         storage: StorageProbe) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    await push_blob(client, "spec/many", config)
    sizes = {"sha256:" + hashlib.sha256(str(i).encode()).hexdigest(): 10 + i for i in range(1023)}
    await link_rows(storage, "spec/many", sizes)
    registry = await registry_of_app(app)
    spy = TableSpy(registry.storage.repos)
    registry.storage.repos = spy
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
           "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in sizes.items()]}
    response = await put(client, "spec/many", "v1", doc, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    assert spy.calls.get("get_entity", 0) <= 8, spy.calls
    assert spy.calls.get("query_entities", 0) <= 4, spy.calls
    one_off = dict(doc, layers=[*doc["layers"][:-1], {**doc["layers"][-1], "size": 1}])
    response = await put(client, "spec/many", "v2", one_off, OCI_MANIFEST)
    assert response.status_code == 400 and error_code(response) == "MANIFEST_INVALID"
    missing = dict(doc, layers=[*doc["layers"][:-1], {"mediaType": OCI_LAYER, "digest": digest_of(b"x"), "size": 1}])
    response = await put(client, "spec/many", "v3", missing, OCI_MANIFEST)
    assert response.status_code == 400 and error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    assert response.json()["errors"][0]["detail"]["digests"] == [digest_of(b"x")]


async def test_subject_manifest_with_annotations_too_large_to_list_is_refused_clearly(
        client: httpx.AsyncClient, storage: StorageProbe) -> None:
    doc, _, _ = await small_image(client, "spec/referrer")
    await push_blob(client, "spec/referrer", b"{}")
    subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(b"subject"), "size": 7}
    artifact = {**doc, "config": descriptor(EMPTY, b"{}"), "artifactType": "application/x.sig", "subject": subject,
                "annotations": {f"k{i}": "v" * 1000 for i in range(200)}}
    before = await everything(storage)
    response = await put(client, "spec/referrer", "sig", artifact, OCI_MANIFEST)
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "MANIFEST_INVALID" and "referrers" in error["message"]
    assert await everything(storage) == before
    artifact["annotations"] = {f"k{i}": "v" * 1000 for i in range(20)}
    assert (await put(client, "spec/referrer", "sig", artifact, OCI_MANIFEST)).status_code == 201
    listed = (await client.get(f"/v2/spec/referrer/referrers/{subject['digest']}")).json()["manifests"]
    assert [m["annotations"] for m in listed] == [artifact["annotations"]]


async def test_helm_chart_with_oversized_title_is_refused_not_a_500(client: httpx.AsyncClient,
                                                                   storage: StorageProbe) -> None:
    config = json.dumps({"name": "c", "version": "1.0.0", "apiVersion": "v2"}).encode()
    chart = os.urandom(100)
    await push_blob(client, "charts/big", config)
    await push_blob(client, "charts/big", chart)
    doc = {"schemaVersion": 2, "config": descriptor("application/vnd.cncf.helm.config.v1+json", config),
           "layers": [descriptor("application/vnd.cncf.helm.chart.content.v1.tar+gzip", chart)],
           "annotations": {"org.opencontainers.image.title": "t" * 40_000}}
    before = await everything(storage)
    response = await put(client, "charts/big", "1.0.0", doc, OCI_MANIFEST)
    assert response.status_code == 400, response.text
    assert error_code(response) == "MANIFEST_INVALID"
    assert await everything(storage) == before
