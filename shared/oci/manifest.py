"""Manifest media types and parsing: what a manifest references, its subject and artifact type.

The rules a manifest must follow are in :mod:`shared.oci.spec`; this module turns a valid one into
the :class:`Manifest` the registry stores and indexes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.oci import spec
from shared.oci.digest import Digest
from shared.oci.errors import ManifestTooLarge

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
DOCKER_TYPES = frozenset({DOCKER_MANIFEST, DOCKER_MANIFEST_LIST})
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


def descriptor(doc: Any, where: str, in_index: bool = False) -> Descriptor:
    """Parse a descriptor by the image-spec's rules (with ``platform`` when it is an index entry)."""
    if not isinstance(doc, dict):
        raise spec.invalid(f"{where} must be a descriptor object")
    for key in ("mediaType", "digest", "size"):
        if key not in doc:
            raise spec.invalid(f"{where}.{key} is required")
    media_type = spec.media_type(doc["mediaType"], f"{where}.mediaType")
    digest = spec.digest(doc["digest"], f"{where}.digest")
    size = spec.size(doc["size"], f"{where}.size")
    annotations = spec.string_map(doc["annotations"], f"{where}.annotations") if "annotations" in doc else {}
    urls = spec.urls(doc["urls"], f"{where}.urls") if "urls" in doc else ()
    artifact_type = spec.media_type(doc["artifactType"], f"{where}.artifactType") if "artifactType" in doc else ""
    if "data" in doc:
        spec.embedded(doc["data"], f"{where}.data", digest, size)
    platform = spec.platform(doc["platform"], f"{where}.platform") if in_index and "platform" in doc else {}
    return Descriptor(media_type, digest, size, artifact_type, annotations, platform, urls)


def _media_type(doc: dict[str, Any], content_type: str) -> str:
    """The manifest's media type: the ``Content-Type`` it was sent with, else its ``mediaType``."""
    declared = doc.get("mediaType")
    if "mediaType" in doc and not isinstance(declared, str):
        raise spec.invalid("mediaType must be a string")
    media_type = content_type.split(";")[0].strip() or declared or ""
    if declared is not None and declared != media_type:
        raise spec.invalid(f"mediaType {declared[:100]!r} does not match Content-Type {media_type[:100]!r}")
    if media_type not in MANIFEST_TYPES:
        spec.check_version(doc)  # names Docker schema 1 when that is what was sent
        raise spec.invalid(f"unsupported manifest media type {media_type[:100]!r}")
    if media_type in DOCKER_TYPES and declared is None:
        raise spec.invalid("a Docker schema 2 manifest must declare its mediaType")
    return media_type


def _count(items: Any, where: str, extra: int = 0) -> list[Any]:
    if not isinstance(items, list):
        raise spec.invalid(f"{where} must be an array")
    if len(items) + extra > spec.MAX_DESCRIPTORS:
        raise spec.invalid(f"a manifest may reference at most {spec.MAX_DESCRIPTORS} descriptors",
                           {"limit": spec.MAX_DESCRIPTORS})
    return items


def parse_manifest(raw: bytes, content_type: str, algorithm: str = "sha256") -> Manifest:
    """Parse and validate manifest bytes sent with ``content_type``; InvalidManifest on anything
    that breaks the image-spec or Docker schema 2 (see :mod:`shared.oci.spec`). ``algorithm``
    names the digest the manifest is stored under."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestTooLarge(detail={"limit": MAX_MANIFEST_BYTES})
    doc = spec.load_json(raw)
    if not isinstance(doc, dict):
        raise spec.invalid("manifest is not a JSON object")
    media_type = _media_type(doc, content_type)
    spec.check_version(doc)
    config: Descriptor | None = None
    blobs: list[Descriptor] = []
    children: list[Descriptor] = []
    if media_type in IMAGE_TYPES:
        if "manifests" in doc:  # else one document reads as an image and an index (CVE-2021-41190)
            raise spec.invalid("an image manifest must not have manifests")
        if "config" not in doc or "layers" not in doc:
            raise spec.invalid("an image manifest needs config and layers")
        layers = _count(doc["layers"], "layers", extra=1)
        config = descriptor(doc["config"], "config")
        blobs.append(config)
        for i, layer in enumerate(layers):
            item = descriptor(layer, f"layers[{i}]")
            if not (item.media_type in FOREIGN_LAYER_TYPES and item.urls):
                blobs.append(item)
    else:
        if "config" in doc or "layers" in doc:
            raise spec.invalid("an index must not have config or layers")
        if "manifests" not in doc:
            raise spec.invalid("an index needs manifests")
        entries = _count(doc["manifests"], "manifests")
        children = [descriptor(m, f"manifests[{i}]", in_index=True) for i, m in enumerate(entries)]
    subject = descriptor(doc["subject"], "subject") if "subject" in doc else None
    artifact_type = spec.media_type(doc["artifactType"], "artifactType") if "artifactType" in doc else ""
    if not artifact_type and config is not None:
        # The referrers API reports the config media type when artifactType is absent.
        artifact_type = config.media_type
    annotations = spec.string_map(doc["annotations"], "annotations") if "annotations" in doc else {}
    return Manifest(
        raw=raw,
        media_type=media_type,
        digest=Digest.of(raw, algorithm),
        config=config,
        blobs=tuple(blobs),
        children=tuple(children),
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )
