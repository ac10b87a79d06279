"""Manifests are checked against the image-spec and Docker schema 2 rules and against what is stored:
descriptor sizes, the descriptor cap, bounded reads, sizes of 2 GiB and more, refused input stores nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import httpx
import pytest
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
)
from tests.oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
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

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


async def _image(client: httpx.AsyncClient, repository: str) -> tuple[dict[str, Any], bytes, bytes]:
    """Push a small config and a 70-byte layer; returns (manifest document, config, layer)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(4).hex()}).encode()
    layer = os.urandom(70)
    await push_blob(client, repository, config)
    await push_blob(client, repository, layer)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
           "layers": [descriptor(OCI_LAYER, layer)]}
    return doc, config, layer


async def test_layer_descriptor_size_must_match_the_stored_blob(client: httpx.AsyncClient,
                                                                storage: StorageProbe) -> None:
    doc, _, layer = await _image(client, "sizes/layer")
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
    doc, _, _ = await _image(client, "sizes/index")
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


def _deep(depth: int) -> bytes:
    return ('{"schemaVersion":2,"mediaType":"' + OCI_INDEX + '","manifests":[],"annotations":{"a":'
            + "[" * depth + "]" * depth + "}}").encode()


def _invalid_cases(config: bytes, layer: bytes, child: bytes) -> list[tuple[str, bytes | dict[str, Any], str]]:
    """(what, manifest, content type): every one breaks a rule of the image-spec or Docker schema 2."""
    image = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
             "layers": [descriptor(OCI_LAYER, layer)]}
    docker = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": descriptor(DOCKER_CONFIG, config),
              "layers": [descriptor(DOCKER_LAYER, layer)]}
    entry = descriptor(OCI_MANIFEST, child, platform={"architecture": "amd64", "os": "linux"})

    def index(**changes: Any) -> dict[str, Any]:
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{**entry, **changes}]}

    def layer_with(**changes: Any) -> dict[str, Any]:
        return {**image, "layers": [{**descriptor(OCI_LAYER, layer), **changes}]}

    return [
        ("platform without architecture", index(platform={"os": "linux"}), OCI_INDEX),
        ("platform without os", index(platform={"architecture": "amd64"}), OCI_INDEX),
        ("platform architecture not a string", index(platform={"architecture": 1, "os": "linux"}), OCI_INDEX),
        ("platform os.features not strings", index(platform={"architecture": "a", "os": "b", "os.features": [1]}),
         OCI_INDEX),
        ("platform not an object", index(platform="linux/amd64"), OCI_INDEX),
        ("media type not RFC 6838", layer_with(mediaType="not a media type"), OCI_MANIFEST),
        ("media type without subtype", layer_with(mediaType="application/"), OCI_MANIFEST),
        ("config media type with spaces", {**image, "config": {**descriptor(OCI_CONFIG, config),
                                                               "mediaType": "text/plain; x"}}, OCI_MANIFEST),
        ("artifactType not a media type", {**image, "artifactType": "signature"}, OCI_MANIFEST),
        ("annotation value not a string", {**image, "annotations": {"a": 1}}, OCI_MANIFEST),
        ("descriptor annotation value null", layer_with(annotations={"a": None}), OCI_MANIFEST),
        ("annotations a list", {**image, "annotations": ["a"]}, OCI_MANIFEST),
        ("urls item not a string", layer_with(urls=["https://example.com/l", 5]), OCI_MANIFEST),
        ("urls item not a URI", layer_with(urls=["not a uri"]), OCI_MANIFEST),
        ("size above Int64", layer_with(size=2**63), OCI_MANIFEST),
        ("size negative", layer_with(size=-1), OCI_MANIFEST),
        ("size a float", layer_with(size=70.0), OCI_MANIFEST),
        ("size a boolean", layer_with(size=True), OCI_MANIFEST),
        ("subject null", {**image, "subject": None}, OCI_MANIFEST),
        ("annotations null", {**image, "annotations": None}, OCI_MANIFEST),
        ("artifactType null", {**image, "artifactType": None}, OCI_MANIFEST),
        ("layers null", {**image, "layers": None}, OCI_MANIFEST),
        ("data not base64", layer_with(data="%%%"), OCI_MANIFEST),
        ("data not the content", layer_with(data="AAAA"), OCI_MANIFEST),
        ("Docker schema 2 without mediaType", {k: v for k, v in docker.items() if k != "mediaType"},
         DOCKER_MANIFEST),
        ("Docker list without mediaType", {"schemaVersion": 2, "manifests": [entry]}, DOCKER_LIST),
        ("image manifest with manifests (CVE-2021-41190)", {**image, "manifests": [entry]}, OCI_MANIFEST),
        ("index with layers (CVE-2021-41190)", {**index(), "layers": []}, OCI_INDEX),
        ("schemaVersion a string", {**image, "schemaVersion": "2"}, OCI_MANIFEST),
        ("unsupported digest algorithm", layer_with(digest="md5:" + "0" * 32), OCI_MANIFEST),
        ("duplicate keys", json.dumps(image).replace('"config"', '"config": {"x": 1}, "config"', 1).encode(),
         OCI_MANIFEST),
        ("NaN", json.dumps({**image, "x": 0}).replace('"x": 0', '"x": NaN').encode(), OCI_MANIFEST),
        ("not UTF-8", json.dumps(image).encode("utf-16"), OCI_MANIFEST),
        ("nested 2,000 deep", _deep(2000), OCI_INDEX),
        ("nested 100,000 deep", _deep(100_000), OCI_INDEX),
        ("number with 5,000 digits", json.dumps(layer_with(size=1)).replace('"size": 1', '"size": '
                                                                                          + "9" * 5000).encode(),
         OCI_MANIFEST),
    ]


async def test_manifests_breaking_the_spec_are_invalid_and_store_nothing(client: httpx.AsyncClient,
                                                                         storage: StorageProbe) -> None:
    doc, config, layer = await _image(client, "spec/rules")
    child = json.dumps(doc).encode()
    assert (await put(client, "spec/rules", digest_of(child), child, OCI_MANIFEST)).status_code == 201
    await push_blob(client, "spec/rules", b"{}")
    before = await everything(storage)
    wrong = []
    for what, body, content_type in _invalid_cases(config, layer, child):
        response = await put(client, "spec/rules", "v1", body, content_type)
        if response.status_code != 400 or error_code(response) != "MANIFEST_INVALID":
            wrong.append((what, response.status_code, response.text[:200]))
    assert wrong == []
    assert await everything(storage) == before


async def test_valid_edge_cases_are_accepted(client: httpx.AsyncClient) -> None:
    doc, _, layer = await _image(client, "spec/ok")
    await push_blob(client, "spec/ok", b"{}")
    cases = [
        {**doc, "layers": []},  # the conformance suite pushes an image without layers
        {**doc, "annotations": {"": "", "org.example": "\u00e9\U0001f600"}, "artifactType": "application/x.y+z"},
        {**doc, "layers": [{**descriptor(OCI_LAYER, layer), "data": base64.b64encode(layer).decode(),
                            "urls": ["https://example.com/a%20b?x=1#f"], "annotations": {"k": "v"}}]},
        {**doc, "config": descriptor(EMPTY, b"{}"), "artifactType": "application/vnd.example+type",
         "x-unknown-field": {"nested": [1, 2, {"ok": True}]}},
        {**doc, "subject": {"mediaType": OCI_MANIFEST, "digest": digest_of(b"absent"), "size": 6}},
        {**{k: v for k, v in doc.items() if k != "mediaType"}},
    ]
    for i, case in enumerate(cases):
        response = await put(client, "spec/ok", f"t{i}", case, OCI_MANIFEST)
        assert response.status_code == 201, (i, response.text)


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
    doc, _, _ = await _image(client, "spec/referrer")
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


async def test_unpaired_surrogate_is_refused_so_listings_never_fail(client: httpx.AsyncClient,
                                                                   storage: StorageProbe) -> None:
    doc, _, _ = await _image(client, "spec/surrogate")
    await push_blob(client, "spec/surrogate", b"{}")
    subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(b"subject"), "size": 7}
    artifact = {**doc, "config": descriptor(EMPTY, b"{}"), "artifactType": "application/x.sig", "subject": subject,
                "annotations": {"k": "\ud800"}}  # json.dumps writes the escape \ud800
    before = await everything(storage)
    response = await put(client, "spec/surrogate", "sig", artifact, OCI_MANIFEST)
    assert response.status_code == 400, response.text
    assert error_code(response) == "MANIFEST_INVALID"
    assert await everything(storage) == before
    listed = await client.get(f"/v2/spec/surrogate/referrers/{subject['digest']}")
    assert listed.status_code == 200 and listed.json()["manifests"] == []
    paired = {**artifact, "annotations": {"k": "\U0001f600"}}  # a pair of escapes, one character
    assert (await put(client, "spec/surrogate", "sig", paired, OCI_MANIFEST)).status_code == 201
    listed = await client.get(f"/v2/spec/surrogate/referrers/{subject['digest']}")
    assert [m["annotations"] for m in listed.json()["manifests"]] == [{"k": "\U0001f600"}]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_get_and_head_of_a_reference_that_cannot_exist_are_manifest_unknown(
        client: httpx.AsyncClient, method: str) -> None:
    await _image(client, "conf/refs")
    for reference in (".INVALID_MANIFEST_NAME", "-x", "t" * 129, "sha256:zz", "sha384:" + "0" * 96):
        response = await client.request(method, f"/v2/conf/refs/manifests/{reference}")
        assert response.status_code == 404, reference
        if method == "GET":
            assert error_code(response) == "MANIFEST_UNKNOWN"
    response = await put(client, "conf/refs", ".INVALID_MANIFEST_NAME", b"{}", OCI_MANIFEST)
    assert response.status_code == 400 and error_code(response) == "TAG_INVALID"
