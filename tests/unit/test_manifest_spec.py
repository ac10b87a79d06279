"""The image-spec rules of shared/oci/spec.py, without storage."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from shared.oci import spec
from shared.oci.errors import InvalidManifest
from shared.oci.manifest import OCI_INDEX, parse_manifest


@pytest.mark.parametrize("value,ok", [
    ("application/vnd.oci.image.layer.v1.tar+gzip", True), ("a/b", True), ("A0/b!#$&^_.+-", True),
    ("a/" + "b" * 127, True), ("a/" + "b" * 128, False), ("a", False), ("a/", False), ("/b", False),
    ("a/b/c", False), ("a/b; c=d", False), ("a /b", False), ("a/b\n", False), ("\u00e9/b", False), (1, False),
])
def test_media_types_follow_rfc_6838(value: object, ok: bool) -> None:
    if ok:
        assert spec.media_type(value, "x") == value
    else:
        with pytest.raises(InvalidManifest):
            spec.media_type(value, "x")


@pytest.mark.parametrize("value,ok", [
    ("https://example.com/a%20b?x=1#f", True), ("urn:isbn:123", True), ("http://[::1]:80/", True),
    ("no-scheme", False), ("https://example.com/a b", False), ("https://e.com/%zz", False), ("1http://a", False),
    ("https://e.com/\u00e9", False),
])
def test_urls_are_rfc_3986_uris(value: str, ok: bool) -> None:
    if ok:
        assert spec.urls([value], "x") == (value,)
    else:
        with pytest.raises(InvalidManifest):
            spec.urls([value], "x")


def test_embedded_data_must_be_the_content() -> None:
    content = b"hello"
    digest = spec.digest("sha256:" + hashlib.sha256(content).hexdigest(), "x")
    spec.embedded(base64.b64encode(content).decode(), "x", digest, 5)
    for data, size in [("aGVsbG8", 5), ("aGVsbG8h", 5), (base64.b64encode(content).decode(), 4), ("a b=", 5)]:
        with pytest.raises(InvalidManifest):
            spec.embedded(data, "x", digest, size)


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000, b'{"a": 1, "a": 2}', b'{"a": NaN}',
    b'{"a": Infinity}', b"\xef\xbb\xbf{}", b'{"a": "\\ud800"}', b'{"a": ["x\\udc00"]}', b'{"\\ud8ff": 1}',
    '{"a": "\u00e9"}'.encode("latin-1"), b'{"a": 1e99999}x',
])
def test_json_that_is_not_strict_is_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidManifest):
        spec.load_json(raw)


def test_index_platform_keeps_only_the_specified_fields() -> None:
    child = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "a" * 64, "size": 1,
             "platform": {"architecture": "arm", "os": "linux", "variant": "v7", "x": [[{"deep": 1}]]}}
    manifest = parse_manifest(json.dumps({"schemaVersion": 2, "manifests": [child]}).encode(), OCI_INDEX)
    assert manifest.children[0].platform == {"architecture": "arm", "os": "linux", "variant": "v7"}


def test_descriptor_cap_counts_config_and_layers() -> None:
    layer = {"mediaType": "a/b", "digest": "sha256:" + "a" * 64, "size": 1}
    doc = {"schemaVersion": 2, "config": layer, "layers": [layer] * spec.MAX_DESCRIPTORS}
    with pytest.raises(InvalidManifest) as raised:
        parse_manifest(json.dumps(doc).encode(), "application/vnd.oci.image.manifest.v1+json")
    assert raised.value.detail == {"limit": spec.MAX_DESCRIPTORS}
    doc["layers"] = doc["layers"][1:]
    assert len(parse_manifest(json.dumps(doc).encode(), "application/vnd.oci.image.manifest.v1+json").blobs) == 1024
