"""Manifest media types and parsing: what a manifest references, its subject and artifact type."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.errors import ErrorCode, RegistryError
from shared.oci.digest import Digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES
# Layers a registry may not hold (they carry their own URLs); pushes need not upload them.
FOREIGN_LAYER_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor, as far as the registry needs it."""

    media_type: str
    digest: Digest
    size: int
    artifact_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    platform: dict[str, Any] = field(default_factory=dict)
    urls: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The descriptor as the image spec serialises it."""
        doc: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.artifact_type:
            doc["artifactType"] = self.artifact_type
        if self.annotations:
            doc["annotations"] = self.annotations
        if self.platform:
            doc["platform"] = self.platform
        return doc


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: the exact bytes plus what the registry checks and indexes."""

    raw: bytes
    media_type: str
    digest: Digest
    config: Descriptor | None
    blobs: tuple[Descriptor, ...]  # config and layers that must exist as blobs in the repository
    children: tuple[Descriptor, ...]  # manifests an index references
    subject: Descriptor | None
    artifact_type: str
    annotations: dict[str, str]

    @property
    def is_index(self) -> bool:
        """True for an image index or Docker manifest list."""
        return self.media_type in INDEX_TYPES

    def descriptor(self) -> Descriptor:
        """A descriptor of this manifest, as the referrers API lists it."""
        return Descriptor(
            self.media_type, self.digest, len(self.raw), self.artifact_type, dict(self.annotations)
        )


def _invalid(message: str) -> RegistryError:
    return RegistryError(ErrorCode.MANIFEST_INVALID, message)


def _descriptor(doc: Any, where: str) -> Descriptor:
    if not isinstance(doc, dict):
        raise _invalid(f"{where} is not a descriptor")
    media_type, digest, size = doc.get("mediaType"), doc.get("digest"), doc.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where} has no mediaType")
    if not isinstance(digest, str):
        raise _invalid(f"{where} has no digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where} has no valid size")
    try:
        parsed = Digest.parse(digest)
    except RegistryError:
        raise _invalid(f"{where} has an invalid digest") from None
    annotations = doc.get("annotations") or {}
    platform = doc.get("platform") or {}
    urls = doc.get("urls") or []
    artifact_type = doc.get("artifactType") or ""
    if not isinstance(annotations, dict) or not isinstance(platform, dict) or not isinstance(urls, list):
        raise _invalid(f"{where} has malformed annotations, platform or urls")
    return Descriptor(media_type, parsed, size, str(artifact_type), annotations, platform, tuple(map(str, urls)))


def parse_manifest(raw: bytes, content_type: str) -> Manifest:
    """Parse manifest bytes sent with ``content_type``; raise MANIFEST_INVALID on anything wrong."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise RegistryError(ErrorCode.MANIFEST_TOO_LARGE, detail={"limit": MAX_MANIFEST_BYTES})
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _invalid("manifest is not valid JSON") from None
    if not isinstance(doc, dict):
        raise _invalid("manifest is not a JSON object")
    declared = doc.get("mediaType")
    media_type = content_type.split(";")[0].strip() or (declared if isinstance(declared, str) else "")
    if declared is not None and declared != media_type:
        raise _invalid(f"mediaType {declared!r} does not match Content-Type {media_type!r}")
    if media_type not in MANIFEST_TYPES:
        if doc.get("schemaVersion") == 1:
            raise _invalid("Docker schema 1 manifests are not supported")
        raise _invalid(f"unsupported manifest media type {media_type!r}")
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    config: Descriptor | None = None
    blobs: list[Descriptor] = []
    children: list[Descriptor] = []
    if media_type in IMAGE_TYPES:
        config = _descriptor(doc.get("config"), "config")
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise _invalid("layers must be a list")
        blobs.append(config)
        for i, layer in enumerate(layers):
            descriptor = _descriptor(layer, f"layers[{i}]")
            if not (descriptor.media_type in FOREIGN_LAYER_TYPES and descriptor.urls):
                blobs.append(descriptor)
    else:
        manifests = doc.get("manifests")
        if not isinstance(manifests, list):
            raise _invalid("manifests must be a list")
        children = [_descriptor(m, f"manifests[{i}]") for i, m in enumerate(manifests)]
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    artifact_type = doc.get("artifactType") or ""
    if not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    if not artifact_type and config is not None:
        # The referrers API reports the config media type when artifactType is absent.
        artifact_type = config.media_type
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise _invalid("annotations must be an object")
    return Manifest(
        raw=raw,
        media_type=media_type,
        digest=Digest.of(raw),
        config=config,
        blobs=tuple(blobs),
        children=tuple(children),
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )
