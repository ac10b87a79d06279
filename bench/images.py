"""OCI image layouts for skopeo to push: one big incompressible layer, or many small ones.

Every call makes fresh random content, so no run can reuse blobs of an earlier one (skopeo's
blob-info cache would otherwise mount them instead of pushing).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import tarfile
from pathlib import Path
from typing import Any

from tests.images import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, _finish, _write_blob, layer_bytes

MiB = 1024 * 1024
_PIECE = MiB


class _HashingFile:
    """A write-only file that hashes what goes through it."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("wb")
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def _stream_layer(layout: Path, content_size: int) -> tuple[dict[str, Any], str]:
    """A gzip (stored, level 0: the data is random anyway) tar of one random file, written in pieces.

    Returns the layer descriptor and its diff id; memory stays at one piece.
    """
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    partial = blobs / "partial"
    out = _HashingFile(partial)
    diff = hashlib.sha256()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=0, mtime=0) as gz:

        def put(data: bytes) -> None:
            diff.update(data)
            gz.write(data)

        info = tarfile.TarInfo("random.bin")
        info.size = content_size
        put(info.tobuf(format=tarfile.PAX_FORMAT))
        left = content_size
        while left:
            piece = os.urandom(min(_PIECE, left))
            put(piece)
            left -= len(piece)
        put(b"\0" * (-content_size % 512) + b"\0" * 1024)  # pad the member, then the end-of-archive
    out.file.close()
    digest = out.sha.hexdigest()
    partial.rename(blobs / digest)
    return {"mediaType": OCI_LAYER, "digest": f"sha256:{digest}", "size": out.size}, f"sha256:{diff.hexdigest()}"


def _manifest(layout: Path, layers: list[dict[str, Any]], diff_ids: list[str], tag: str) -> int:
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "config": {"Cmd": ["/bin/sh"]}}
    config_desc = {"mediaType": OCI_CONFIG, **_write_blob(layout, json.dumps(config).encode())}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": layers}
    _finish(layout, {"mediaType": OCI_MANIFEST, **_write_blob(layout, json.dumps(manifest).encode())}, tag)
    return sum(int(layer["size"]) for layer in layers)


def big_image(layout: Path, size: int, tag: str = "latest") -> tuple[str, int]:
    """An image of one ~``size``-byte incompressible layer; returns the layer's digest and size."""
    layer, diff_id = _stream_layer(layout, size - 4096)  # tar and gzip framing bring it back to ~size
    _manifest(layout, [layer], [diff_id], tag)
    return str(layer["digest"]), int(layer["size"])


def small_image(layout: Path, count: int = 50, tag: str = "latest") -> int:
    """An image of ``count`` random layers of 1-100 KiB; returns the bytes of its layers."""
    seed = random.getrandbits(40)
    rng = random.Random(seed)
    layers = []
    diff_ids = []
    for i in range(count):
        data = layer_bytes(rng.randint(1024, 100 * 1024), seed=seed + i)
        diff_ids.append("sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest())
        layers.append({"mediaType": OCI_LAYER, **_write_blob(layout, data)})
    return _manifest(layout, layers, diff_ids, tag)
