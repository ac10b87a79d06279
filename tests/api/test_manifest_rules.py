"""The image-spec and Docker schema 2 rules, through the app: every broken rule is MANIFEST_INVALID and
stores nothing; the edge cases the specs allow are accepted."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from tests.manifest_helpers import error_code, everything, put, small_image
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
    doc, config, layer = await small_image(client, "spec/rules")
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
    doc, _, layer = await small_image(client, "spec/ok")
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


async def test_unpaired_surrogate_is_refused_so_listings_never_fail(client: httpx.AsyncClient,
                                                                   storage: StorageProbe) -> None:
    doc, _, _ = await small_image(client, "spec/surrogate")
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
