"""Build OCI image layouts on disk for clients such as skopeo to push."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _write_blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def layer_bytes(size: int, seed: int | None = None) -> bytes:
    """A gzipped tar holding one file of ``size`` incompressible bytes."""
    content = os.urandom(size) if seed is None else hashlib.shake_256(str(seed).encode()).digest(size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(f"file-{seed}")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)


def _image(layout: Path, layer_sizes: list[int], arch: str, seed: int) -> dict[str, Any]:
    layers = []
    diff_ids = []
    for i, size in enumerate(layer_sizes):
        data = layer_bytes(size, seed=seed * 1000 + i)
        diff_ids.append("sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest())
        layers.append({"mediaType": OCI_LAYER, **_write_blob(layout, data)})
    config = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "config": {"Cmd": ["/bin/sh"]}}
    config_desc = {"mediaType": OCI_CONFIG, **_write_blob(layout, json.dumps(config).encode())}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": layers}
    return {"mediaType": OCI_MANIFEST, **_write_blob(layout, json.dumps(manifest).encode()),
            "platform": {"architecture": arch, "os": "linux"}}


def _finish(layout: Path, descriptor: dict[str, Any], tag: str) -> None:
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    entry = {**descriptor, "annotations": {"org.opencontainers.image.ref.name": tag}}
    entry.pop("platform", None)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}))


def make_image(layout: Path, layer_sizes: list[int], tag: str = "latest", seed: int = 1) -> str:
    """An OCI layout with one image of layers of the given sizes; returns the manifest digest."""
    descriptor = _image(layout, layer_sizes, "amd64", seed)
    _finish(layout, descriptor, tag)
    return str(descriptor["digest"])


def make_multiarch(layout: Path, archs: list[str], tag: str = "latest") -> str:
    """An OCI layout with an image index of one small image per architecture; returns its digest."""
    children = [_image(layout, [2048, 4096], arch, seed=i + 10) for i, arch in enumerate(archs)]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
    descriptor = {"mediaType": OCI_INDEX, **_write_blob(layout, json.dumps(index).encode())}
    _finish(layout, descriptor, tag)
    return str(descriptor["digest"])
