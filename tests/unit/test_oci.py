"""Unit tests of the OCI rules: digests, resumable hashing, names and tags, manifest parsing."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from shared.oci.digest import Digest, ResumableHash
from shared.oci.errors import InvalidDigest, InvalidManifest, InvalidRepositoryName, InvalidTag
from shared.oci.manifest import OCI_EMPTY, OCI_MANIFEST, parse_manifest
from shared.oci.names import validate_name, validate_tag


def test_resumable_hash_survives_saving_between_pieces() -> None:
    data = os.urandom(1_000_003)
    hasher = ResumableHash()
    for start in range(0, len(data), 99_991):
        hasher = ResumableHash("sha256", hasher.state())
        hasher.update(data[start:start + 99_991])
    assert str(hasher.digest()) == "sha256:" + hashlib.sha256(data).hexdigest()
    sha512 = ResumableHash("sha512")
    sha512.update(data[:10])
    sha512 = ResumableHash("sha512", sha512.state())
    sha512.update(data[10:])
    assert sha512.digest().hex == hashlib.sha512(data).hexdigest()


def test_resumable_hash_refuses_foreign_state() -> None:
    with pytest.raises(ValueError):
        ResumableHash("sha512", ResumableHash("sha256").state())


@pytest.mark.parametrize("text", [
    "sha256:" + "a" * 63, "sha256:" + "A" * 64, "sha256:" + "g" * 64, "md5:" + "a" * 32, "sha256", "",
    "sha256:" + "a" * 64 + "/../x", "sha512:" + "a" * 64,
])
def test_invalid_digests_are_digest_invalid(text: str) -> None:
    with pytest.raises(InvalidDigest):
        Digest.parse(text)


def test_valid_digests_round_trip() -> None:
    for text in ("sha256:" + "0" * 64, "sha512:" + "f" * 128):
        assert str(Digest.parse(text)) == text


@pytest.mark.parametrize("name", ["a", "library/ubuntu", "a.b_c__d--e/f0", "x" * 255])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "a/", "/a", "a//b", "a/../b", "..", "a_", "a___b", "x" * 256, "a b", "a\n"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidRepositoryName):
        validate_name(name)


@pytest.mark.parametrize("tag,ok", [("v1", True), ("_x", True), ("A.b-c_d", True), ("t" * 128, True),
                                    ("t" * 129, False), (".x", False), ("-x", False), ("a/b", False), ("", False)])
def test_tag_grammar(tag: str, ok: bool) -> None:
    if ok:
        assert validate_tag(tag) == tag
    else:
        with pytest.raises(InvalidTag):
            validate_tag(tag)


def _artifact(**fields: object) -> bytes:
    empty = {"mediaType": OCI_EMPTY, "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(), "size": 2}
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": empty, "layers": [], **fields}).encode()


def test_artifact_type_falls_back_to_config_media_type() -> None:
    assert parse_manifest(_artifact(), OCI_MANIFEST).artifact_type == OCI_EMPTY
    signed = parse_manifest(_artifact(artifactType="application/x.sig"), OCI_MANIFEST)
    assert signed.artifact_type == "application/x.sig"


def test_foreign_layers_with_urls_need_no_blob() -> None:
    foreign = {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "size": 10,
               "digest": "sha256:" + "1" * 64, "urls": ["https://example.invalid/layer"]}
    manifest = parse_manifest(_artifact(layers=[foreign]), OCI_MANIFEST)
    assert [str(d.digest) for d in manifest.blobs] == ["sha256:" + hashlib.sha256(b"{}").hexdigest()]


def test_content_type_must_match_declared_media_type() -> None:
    with pytest.raises(InvalidManifest):
        parse_manifest(_artifact(), "application/vnd.oci.image.index.v1+json")


def test_missing_content_type_uses_declared_media_type() -> None:
    assert parse_manifest(_artifact(), "").media_type == OCI_MANIFEST
