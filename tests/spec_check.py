"""An independent check that a manifest obeys the OCI image-spec and Docker schema 2: JSON Schemas
written here from the specs' text and schema files (opencontainers/image-spec ``schema/``; Docker's
``manifest-v2-2.md``), validated with the ``jsonschema`` library, plus the rules a schema cannot
say. It shares no code with the registry, so the fuzz test can judge what the registry accepted.
"""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft7Validator

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
FOREIGN = {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
           "application/vnd.oci.image.layer.nondistributable.v1.tar",
           "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
           "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"}

# ECMA-262 patterns as in defs-descriptor.json; \Z because Python's $ also matches before a final newline.
_MEDIA_TYPE = {"type": "string",
               "pattern": r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\Z"}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_DESCRIPTOR: dict[str, Any] = {
    "type": "object",
    "required": ["mediaType", "size", "digest"],
    "properties": {
        "mediaType": _MEDIA_TYPE,
        "size": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
        "digest": {"type": "string", "pattern": r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\Z"},
        "urls": _STRINGS,
        "data": {"type": "string"},
        "artifactType": _MEDIA_TYPE,
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_PLATFORM = {
    "type": "object",
    "required": ["architecture", "os"],
    "properties": {"architecture": {"type": "string"}, "os": {"type": "string"}, "os.version": {"type": "string"},
                   "os.features": _STRINGS, "variant": {"type": "string"}, "features": _STRINGS},
}
_ENTRY = {"allOf": [_DESCRIPTOR, {"properties": {"platform": _PLATFORM}}]}
_COMMON = {"schemaVersion": {"type": "integer", "minimum": 2, "maximum": 2}, "mediaType": _MEDIA_TYPE,
           "artifactType": _MEDIA_TYPE, "subject": _DESCRIPTOR,
           "annotations": {"type": "object", "additionalProperties": {"type": "string"}}}
# The image-spec's schema says minItems 1 for layers; its prose (normative) says SHOULD, and the
# distribution-spec conformance suite pushes an image without layers, so it is left out here.
IMAGE = Draft7Validator({"type": "object", "required": ["schemaVersion", "config", "layers"],
                         "properties": {**_COMMON, "config": _DESCRIPTOR,
                                        "layers": {"type": "array", "items": _DESCRIPTOR}}})
INDEX = Draft7Validator({"type": "object", "required": ["schemaVersion", "manifests"],
                         "properties": {**_COMMON, "manifests": {"type": "array", "items": _ENTRY}}})
_URI_CHARACTERS = set(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")


def _strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def _refuse(name: str) -> Any:
    raise ValueError(name)


def _is_uri(text: str) -> bool:
    if not set(text) <= _URI_CHARACTERS:
        return False
    scheme = urlsplit(text).scheme
    return bool(scheme) and scheme[0].isalpha() and text.lower().startswith(scheme + ":")


def _descriptors(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = [doc["config"], *doc["layers"]] if "config" in doc else list(doc.get("manifests", []))
    return found + ([doc["subject"]] if "subject" in doc else [])


def violations(raw: bytes, content_type: str) -> list[str]:
    """Every rule ``raw`` (sent with ``content_type``) breaks; empty when it is a valid manifest."""
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_strict_object, parse_constant=_refuse)
        json.dumps(doc, ensure_ascii=False).encode("utf-8")  # no unpaired surrogates (RFC 7493)
    except (ValueError, RecursionError) as error:
        return [f"not strict JSON: {error}"]
    if not isinstance(doc, dict):
        return ["not an object"]
    declared = doc.get("mediaType")
    media_type = content_type.split(";")[0].strip() or declared
    problems = []
    if media_type not in (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST):
        return [f"media type {media_type!r}"]
    if "mediaType" in doc and declared != media_type:
        problems.append("mediaType differs from Content-Type")
    if media_type in (DOCKER_MANIFEST, DOCKER_LIST) and declared is None:
        problems.append("Docker schema 2 without mediaType")
    image = media_type in (OCI_MANIFEST, DOCKER_MANIFEST)
    validator = IMAGE if image else INDEX
    problems += [f"schema: {e.message[:200]}" for e in validator.iter_errors(doc)]
    if (image and "manifests" in doc) or (not image and ("config" in doc or "layers" in doc)):
        problems.append("ambiguous image/index")
    if problems:
        return problems
    for item in _descriptors(doc):
        if any(not _is_uri(u) for u in item.get("urls", [])):
            problems.append(f"urls not URIs: {item['urls']!r}"[:200])
    return problems


def references(raw: bytes) -> tuple[list[tuple[str, int, dict[str, Any]]], list[tuple[str, int]]]:
    """(blobs a manifest needs stored: digest, size, descriptor; manifests it needs stored: digest, size)."""
    doc = json.loads(raw)
    if "config" in doc:
        layers = [d for d in doc["layers"] if not (d["mediaType"] in FOREIGN and d.get("urls"))]
        return [(d["digest"], d["size"], d) for d in [doc["config"], *layers]], []
    return [], [(d["digest"], d["size"]) for d in doc["manifests"]]
