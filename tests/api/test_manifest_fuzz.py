"""Property-based fuzzing of manifest PUTs through the real app on Azurite (Hypothesis).

Cases are valid manifests of every kind, mutated (keys dropped, values replaced by hostile ones,
bytes cut, keys duplicated, nesting deepened), and random JSON. Whatever is sent: no answer is a
5xx; every manifest answered 201 is valid by the independent check of :mod:`tests.spec_check`,
references only blobs and manifests the test stored, with their sizes, and reads back byte for
byte; every refused one leaves every blob and every row of every table as it was.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.azurite import Azurite
from shared.composition import create_app
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, test_settings
from tests.manifest_helpers import everything
from tests.oci import digest_of, push_blob
from tests.spec_check import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, references, violations
from tests.storage import StorageProbe

REPO = "fuzz/target"
TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]
HOSTILE: list[Any] = [
    None, True, False, 0, -1, 1, 2**31, 2**63 - 1, 2**63, -(2**63), 10**30, 1.0, 1.5, "", " ", "a", "a/b",
    "A/B+c.d", "a/b; c=d", "application/", "/b", "text/plain\n", "x" * 300, "\u00e9/\u00e9", "sha256:" + "0" * 64,
    "sha512:" + "f" * 128, "sha256:ZZ", "md5:" + "0" * 32, "sha256:" + "A" * 64, "https://example.com/x",
    "http://[::1]:80/a?b#c", "not a uri", "\u0000", "\U0001f600", "\ud800", [], {}, [[]], {"a": 1}, {"a": "b"},
    ["a", 1], [None], {"architecture": "amd64"}, {"architecture": "amd64", "os": "linux"}, [[[[[[[[[[]]]]]]]]]],
]


@dataclass
class World:
    """What the test stored: blobs (digest -> bytes), manifests (digest -> size), valid bases."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, int] = field(default_factory=dict)
    bases: list[tuple[dict[str, Any], str]] = field(default_factory=list)


def _desc(media_type: str, content: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(content), "size": len(content), **extra}


async def _build_world(client: httpx.AsyncClient) -> World:
    world = World()
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    docker_config = json.dumps({"architecture": "arm64", "os": "linux", "config": {}}).encode()
    layers = [os.urandom(90), os.urandom(120)]
    for data in (config, docker_config, b"{}", *layers):
        await push_blob(client, REPO, data)
        world.blobs[digest_of(data)] = data
    image = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": _desc("application/vnd.oci.image.config.v1+json",
             config), "layers": [_desc("application/vnd.oci.image.layer.v1.tar+gzip", d) for d in layers],
             "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}}
    docker = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
              "config": _desc("application/vnd.docker.container.image.v1+json", docker_config),
              "layers": [_desc("application/vnd.docker.image.rootfs.diff.tar.gzip", layers[0])]}
    children = {}
    for doc, media_type in ((image, OCI_MANIFEST), (docker, DOCKER_MANIFEST)):
        raw = json.dumps(doc).encode()
        response = await client.put(f"/v2/{REPO}/manifests/{digest_of(raw)}", content=raw,
                                    headers={"Content-Type": media_type})
        assert response.status_code == 201, response.text
        world.manifests[digest_of(raw)] = len(raw)
        children[media_type] = raw
    platform = {"architecture": "amd64", "os": "linux", "variant": "v8", "os.features": ["x"]}
    world.bases = [
        (image, OCI_MANIFEST),
        (docker, DOCKER_MANIFEST),
        ({"schemaVersion": 2, "mediaType": OCI_INDEX,
          "manifests": [_desc(OCI_MANIFEST, children[OCI_MANIFEST], platform=platform)]}, OCI_INDEX),
        ({"schemaVersion": 2, "mediaType": DOCKER_LIST,
          "manifests": [_desc(DOCKER_MANIFEST, children[DOCKER_MANIFEST], platform=platform)]}, DOCKER_LIST),
        ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
          "config": _desc("application/vnd.oci.empty.v1+json", b"{}"),
          "layers": [_desc("application/octet-stream", layers[1], data=base64.b64encode(layers[1]).decode())],
          "subject": _desc(OCI_MANIFEST, children[OCI_MANIFEST]), "annotations": {"k": "v"}}, OCI_MANIFEST),
        ({**image, "layers": [*image["layers"], {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1"
                                                  ".tar+gzip", "digest": "sha256:" + "1" * 64, "size": 5 << 30,
                                                  "urls": ["https://example.com/layer.tar.gz"]}]}, OCI_MANIFEST),
    ]
    return world


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*path, i))
    return found


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                     | st.text(max_size=20), lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


@st.composite
def _mutated(draw: st.DrawFn, world: World) -> tuple[bytes, str]:
    base, content_type = draw(st.sampled_from(world.bases))
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        if not path:
            continue
        parent, key = _at(doc, path[:-1]), path[-1]
        action = draw(st.sampled_from(["drop", "hostile", "json", "size", "extra", "copy"]))
        if action == "drop":
            del parent[key]
        elif action == "hostile":
            parent[key] = copy.deepcopy(draw(st.sampled_from(HOSTILE)))
        elif action == "json":
            parent[key] = draw(_JSON)
        elif action == "size" and isinstance(parent[key], int):
            parent[key] += draw(st.sampled_from([-1, 1, 2**31, 2**63]))
        elif action == "extra" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["manifests", "layers", "config", "platform", "data", "urls", "x"]))] = (
                copy.deepcopy(draw(st.sampled_from(HOSTILE))))
        elif action == "copy" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    # A lone surrogate ("\ud800") is escaped by ensure_ascii, else it becomes bytes that are not UTF-8.
    raw = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    cut = draw(st.sampled_from(["none"] * 6 + ["truncate", "byte", "duplicate", "deep", "utf16"]))
    if cut == "truncate":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif cut == "byte":
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    elif cut == "duplicate":
        raw = raw.replace(b'"schemaVersion"', b'"mediaType": "a/b", "schemaVersion"', 1)
    elif cut == "deep":
        depth = draw(st.sampled_from([65, 999, 2000, 50_000]))
        raw = raw[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    elif cut == "utf16":
        raw = raw.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        content_type = draw(st.sampled_from([*TYPES, "", "application/json", "text/plain", f"{content_type}; x=y"]))
    return raw, content_type


@st.composite
def _random(draw: st.DrawFn) -> tuple[bytes, str]:
    if draw(st.booleans()):
        doc = draw(_JSON)
    else:
        doc = draw(st.fixed_dictionaries({"schemaVersion": st.sampled_from([2, 1, "2", None])},
                                         optional={"mediaType": st.sampled_from(TYPES), "config": _JSON,
                                                   "layers": _JSON, "manifests": _JSON, "subject": _JSON}))
    return json.dumps(doc).encode(), draw(st.sampled_from(TYPES))


def _reference(draw: st.DrawFn, raw: bytes) -> str:
    return draw(st.sampled_from(["fz", "other.tag_1", "sha256:" + hashlib.sha256(raw).hexdigest(),
                                 "sha512:" + hashlib.sha512(raw).hexdigest(), digest_of(raw + b"!")]))


@st.composite
def _cases(draw: st.DrawFn, world: World) -> tuple[bytes, str, str]:
    raw, content_type = draw(st.one_of(_mutated(world), _mutated(world), _random()))
    return raw, content_type, _reference(draw, raw)


async def _check(client: httpx.AsyncClient, probe: StorageProbe, world: World, state: dict[str, Any],
                 case: tuple[bytes, str, str]) -> None:
    raw, content_type, reference = case
    response = await client.put(f"/v2/{REPO}/manifests/{reference}", content=raw,
                                headers={"Content-Type": content_type})
    assert response.status_code in (201, 400, 413), (response.status_code, response.text[:300])
    if response.status_code != 201:
        assert response.json()["errors"][0]["code"] in (
            "MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "DIGEST_INVALID", "SIZE_INVALID")
        assert await everything(probe) == state["stored"], "a refused manifest changed storage"
        state["refused"] += 1
        return
    assert violations(raw, content_type) == []
    blobs, manifests = references(raw)
    for digest, size, item in blobs:
        assert len(world.blobs[digest]) == size, digest
        if "data" in item:
            assert base64.b64decode(item["data"]) == world.blobs[digest]
    for digest, size in manifests:
        assert world.manifests[digest] == size, digest
    digest = response.headers["docker-content-digest"]
    algorithm = reference.split(":")[0] if ":" in reference else "sha256"
    assert digest == f"{algorithm}:{hashlib.new(algorithm, raw).hexdigest()}"
    got = await client.get(f"/v2/{REPO}/manifests/{reference}", headers={"Accept": "*/*"})
    assert got.status_code == 200 and got.content == raw and got.headers["docker-content-digest"] == digest
    # What repeats the manifest's fields elsewhere answers too: its metadata, its subject's referrers.
    meta = await client.get(f"/acr/v1/{REPO}/_manifests/{digest.replace(':', '%3A')}")
    assert meta.status_code == 200, meta.text[:300]
    subject = json.loads(raw).get("subject")
    if subject is not None:
        listed = await client.get(f"/v2/{REPO}/referrers/{subject['digest']}")
        assert listed.status_code == 200 and digest in listed.text, listed.text[:300]
    world.manifests[digest] = len(raw)
    state["stored"] = await everything(probe)
    state["accepted"] += 1


def _fuzz(azurite: Azurite, examples: int) -> dict[str, int]:
    config = test_settings(azurite)
    app = create_app(config)
    with asyncio.Runner() as runner:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test",
                                   auth=(ADMIN_USER, ADMIN_PASSWORD))
        probe = StorageProbe(config)
        try:
            world = runner.run(_build_world(client))
            state: dict[str, Any] = {"stored": runner.run(everything(probe)), "accepted": 0, "refused": 0}

            @settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
            @given(_cases(world))
            def put(case: tuple[bytes, str, str]) -> None:
                runner.run(_check(client, probe, world, state, case))

            put()
        finally:
            runner.run(client.aclose())
            runner.run(probe.close())
            if app.state.registry is not None:
                runner.run(app.state.registry.close())
    return {"accepted": state["accepted"], "refused": state["refused"]}


@pytest.mark.parametrize("examples", [50, pytest.param(1000, marks=pytest.mark.slow)])
def test_fuzzed_manifests_never_answer_5xx_and_store_nothing_invalid(azurite: Azurite, examples: int,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    counts = _fuzz(azurite, examples)
    with capsys.disabled():
        print(f"\nmanifest fuzz: {examples} cases, {counts['accepted']} accepted, {counts['refused']} refused")
    assert counts["accepted"] + counts["refused"] >= examples // 2
    assert counts["accepted"] > 0 and counts["refused"] > 0
