"""Manifest references: a sha512 digest stores, serves, lists and deletes under that digest; a
reference that cannot exist is unknown to GET and HEAD."""

from __future__ import annotations

import hashlib
import json
import os

import httpx
import pytest

from tests.manifest_helpers import encode, error_code, put
from tests.oci import EMPTY, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, descriptor, push_blob
from tests.storage import StorageProbe


def sha512(data: bytes) -> str:
    """The sha512 digest string of ``data``."""
    return "sha512:" + hashlib.sha512(data).hexdigest()


async def test_manifest_pushed_by_sha512_digest_lives_under_that_digest(client: httpx.AsyncClient,
                                                                      storage: StorageProbe) -> None:
    config, layer = b'{"architecture":"amd64","os":"linux"}', os.urandom(100)
    await push_blob(client, "dig/five", config)
    await push_blob(client, "dig/five", layer)
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                      "layers": [descriptor(OCI_LAYER, layer)]}).encode()
    digest = sha512(raw)
    response = await put(client, "dig/five", digest, raw, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    assert response.headers["location"] == f"/v2/dig/five/manifests/{digest}"
    keys = {r["RowKey"] for r in await storage.rows("repos") if r["PartitionKey"] == encode("dig/five")}
    assert f"m|{digest}" in keys
    assert not any(k.startswith("m|sha256:") for k in keys)

    got = await client.get(f"/v2/dig/five/manifests/{digest}")
    assert got.status_code == 200 and got.content == raw
    assert got.headers["docker-content-digest"] == digest
    head = await client.head(f"/v2/dig/five/manifests/{digest}")
    assert head.status_code == 200 and head.headers["docker-content-digest"] == digest
    assert head.headers["content-length"] == str(len(raw))

    wrong = await put(client, "dig/five", sha512(raw + b" "), raw, OCI_MANIFEST)
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["code"] == "DIGEST_INVALID"

    await push_blob(client, "dig/five", b"{}")
    payload = os.urandom(32)
    await push_blob(client, "dig/five", payload)
    referrer = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.sig",
                           "config": descriptor(EMPTY, b"{}"), "layers": [descriptor(OCI_LAYER, payload)],
                           "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw)}}).encode()
    response = await put(client, "dig/five", sha512(referrer), referrer, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    assert response.headers["oci-subject"] == digest
    listed = (await client.get(f"/v2/dig/five/referrers/{digest}")).json()["manifests"]
    assert [(m["digest"], m["size"], m["artifactType"]) for m in listed] == [
        (sha512(referrer), len(referrer), "application/x.sig")]

    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw)}]}).encode()
    response = await put(client, "dig/five", "multi", index, "application/vnd.oci.image.index.v1+json")
    assert response.status_code == 201, response.text

    assert (await client.delete(f"/v2/dig/five/manifests/{digest}")).status_code == 202
    assert (await client.get(f"/v2/dig/five/manifests/{digest}")).status_code == 404
    keys = {r["RowKey"] for r in await storage.rows("repos") if r["PartitionKey"] == encode("dig/five")}
    assert f"m|{digest}" not in keys


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_get_and_head_of_a_reference_that_cannot_exist_are_manifest_unknown(
        client: httpx.AsyncClient, method: str) -> None:
    await push_blob(client, "conf/refs", b"{}")
    for reference in (".INVALID_MANIFEST_NAME", "-x", "t" * 129, "sha256:zz", "sha384:" + "0" * 96):
        response = await client.request(method, f"/v2/conf/refs/manifests/{reference}")
        assert response.status_code == 404, reference
        if method == "GET":
            assert error_code(response) == "MANIFEST_UNKNOWN"
    response = await put(client, "conf/refs", ".INVALID_MANIFEST_NAME", b"{}", OCI_MANIFEST)
    assert response.status_code == 400 and error_code(response) == "TAG_INVALID"
