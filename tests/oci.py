"""Helpers that speak the distribution API through an httpx client, for the API tests."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY = "application/vnd.oci.empty.v1+json"


def digest_of(data: bytes) -> str:
    """The sha256 digest string of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def push_blob(client: httpx.AsyncClient, name: str, data: bytes) -> str:
    """Push ``data`` with POST then PUT; returns its digest."""
    digest = digest_of(data)
    start = await client.post(f"/v2/{name}/blobs/uploads/")
    assert start.status_code == 202, start.text
    done = await client.put(start.headers["location"], params={"digest": digest}, content=data)
    assert done.status_code == 201, done.text
    return digest


async def fetch_blob(client: httpx.AsyncClient, name: str, digest: str) -> bytes:
    """GET a blob: expect the 307 to a SAS URL and follow it with a real HTTP client."""
    response = await client.get(f"/v2/{name}/blobs/{digest}")
    assert response.status_code == 307, response.text
    assert response.headers["docker-content-digest"] == digest
    async with httpx.AsyncClient() as storage:
        redirected = await storage.get(response.headers["location"])
    assert redirected.status_code == 200
    return redirected.content


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    """A descriptor of ``data``."""
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


async def push_image(
    client: httpx.AsyncClient, name: str, reference: str | None = None, layers: int = 2, **fields: Any
) -> tuple[str, bytes]:
    """Push a small random image (config + layers) and its manifest; returns (digest, manifest bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()}).encode()
    layer_data = [os.urandom(1000 + i) for i in range(layers)]
    await push_blob(client, name, config)
    for data in layer_data:
        await push_blob(client, name, data)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, d) for d in layer_data],
        **fields,
    }
    raw = json.dumps(manifest).encode()
    digest = digest_of(raw)
    response = await client.put(
        f"/v2/{name}/manifests/{reference or digest}", content=raw, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201, response.text
    return digest, raw


async def push_artifact(client: httpx.AsyncClient, name: str, subject: dict[str, Any], artifact_type: str,
                        annotations: dict[str, str] | None = None) -> str:
    """Push an artifact manifest (empty config) that refers to ``subject``; returns its digest."""
    empty = b"{}"
    payload = os.urandom(64)
    await push_blob(client, name, empty)
    await push_blob(client, name, payload)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": descriptor(EMPTY, empty),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": subject,
        "annotations": annotations or {"created-by": "test"},
    }
    raw = json.dumps(manifest).encode()
    response = await client.put(f"/v2/{name}/manifests/{digest_of(raw)}", content=raw,
                                headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    assert response.headers["oci-subject"] == subject["digest"]
    return digest_of(raw)
