"""Push small images through the in-process app (blobs, then the manifest)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


async def push_blob(http: httpx.AsyncClient, repository: str, data: bytes) -> dict[str, Any]:
    """Upload ``data`` as a blob; its descriptor fields."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = await http.post(f"/v2/{repository}/blobs/uploads/")
    assert start.status_code == 202, start.text
    done = await http.put(start.headers["location"], params={"digest": digest}, content=data)
    assert done.status_code == 201, done.text
    return {"digest": digest, "size": len(data)}


def manifest_of(config: dict[str, Any], layer: dict[str, Any], config_media_type: str = OCI_CONFIG,
                annotations: dict[str, str] | None = None) -> bytes:
    """An image manifest of one config and one layer."""
    doc: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_media_type, **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
    }
    if annotations:
        doc["annotations"] = annotations
    return json.dumps(doc).encode()


async def push_image(http: httpx.AsyncClient, repository: str, tag: str, seed: int = 1,
                     config_media_type: str = OCI_CONFIG, annotations: dict[str, str] | None = None,
                     ) -> dict[str, Any]:
    """Push a tiny image under ``tag``; the manifest's descriptor (digest, size, mediaType)."""
    config = await push_blob(http, repository, json.dumps({"seed": seed}).encode())
    layer = await push_blob(http, repository, f"layer {seed}".encode())
    raw = manifest_of(config, layer, config_media_type, annotations)
    response = await http.put(f"/v2/{repository}/manifests/{tag}", content=raw,
                              headers={"Content-Type": OCI_MANIFEST, "User-Agent": "events-test/1.0"})
    assert response.status_code == 201, response.text
    return {"digest": response.headers["docker-content-digest"], "size": len(raw), "mediaType": OCI_MANIFEST}
