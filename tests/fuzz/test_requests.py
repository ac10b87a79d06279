"""Fuzzing every route through the real app on Azurite: whatever the names, digests, references,
headers, query parameters and small bodies, the registry never answers 500, and a request it
refuses (and any GET or HEAD) stores nothing: the whole storage snapshot (every row of every
table, every blob's bytes and staged blocks, every queue message) is the same after it.

The default run tries :data:`DEFAULT_CASES` cases, the same ones every time; the slow-marked run
tries :data:`SLOW_CASES` fresh random ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from tests.auth_helpers import basic
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.fuzz.inputs import Case, Seed, cases
from tests.storage import StorageProbe

DEFAULT_CASES = 300
SLOW_CASES = 1000
_COMMON: dict[str, Any] = {
    "deadline": None,  # every case is a real request to Azurite
    "database": None,  # nothing written to the work tree; a failure prints how to reproduce it
    "print_blob": True,
    # Cases are readable as drawn, and shrinking real requests takes minutes.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate],
    # One registry (function-scoped fixtures) serves every case of a test, on purpose.
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                              HealthCheck.data_too_large, HealthCheck.filter_too_much],
}
QUICK = settings(max_examples=DEFAULT_CASES, derandomize=True, **_COMMON)
THOROUGH = settings(max_examples=SLOW_CASES, **_COMMON)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REPOSITORY, TAG = "fuzz/app", "v1"
CONFIG = b'{"architecture":"amd64","os":"linux"}'
LAYER = bytes(range(256)) * 4


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _manifest(config: bytes, layer: bytes, **extra: Any) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha256(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _sha256(layer),
                    "size": len(layer)}],
        **extra,
    }, separators=(",", ":")).encode()


MANIFEST = _manifest(CONFIG, LAYER)
REFERRER = _manifest(CONFIG, LAYER, artifactType="application/vnd.example.sig",
                     subject={"mediaType": OCI_MANIFEST, "digest": _sha256(MANIFEST), "size": len(MANIFEST)})
SEED = Seed(REPOSITORY, TAG, _sha256(MANIFEST), MANIFEST, [_sha256(CONFIG), _sha256(LAYER)], _sha256(REFERRER))


async def _ok(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, f"{response.request.method} {response.request.url}: {response.text}"


async def restore(client: httpx.AsyncClient, seed: Seed) -> None:
    """Put back what the seed names: the image, its tag and referrer, an open upload, the token,
    every lock open and anonymous pull off (a case that succeeded may have changed any of them)."""
    for blob in (CONFIG, LAYER):
        await _ok(await client.post(f"/v2/{REPOSITORY}/blobs/uploads/", params={"digest": _sha256(blob)},
                                    content=blob), 201)
    for reference, raw in ((TAG, MANIFEST), (seed.referrer, REFERRER)):
        await _ok(await client.put(f"/v2/{REPOSITORY}/manifests/{reference}", content=raw,
                                   headers={"Content-Type": OCI_MANIFEST}), 201)
    unlocked = {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True, "listEnabled": True}
    for path in (f"/acr/v1/{REPOSITORY}", f"/acr/v1/{REPOSITORY}/_tags/{TAG}",
                 f"/acr/v1/{REPOSITORY}/_manifests/{seed.manifest}"):
        await _ok(await client.patch(path, json=unlocked), 200)
    await _ok(await client.patch("/acr/admin/options", json={"anonymousPullEnabled": False,
                                                            "roleAssignmentMode": "rbac"}), 200)
    await _ok(await client.put(f"/acr/admin/scopemaps/{seed.scope_map}",
                               json={"actions": [f"repositories/{REPOSITORY}/content/read"]}), 200)
    await _ok(await client.put(f"/acr/admin/tokens/{seed.token}", json={"scopeMap": seed.scope_map,
                                                                       "status": "enabled"}), 200)
    if not seed.upload_id or (await client.get(f"/v2/{REPOSITORY}/blobs/uploads/{seed.upload_id}")).status_code != 204:
        started = await client.post(f"/v2/{REPOSITORY}/blobs/uploads/")
        await _ok(started, 202)
        seed.upload_id = started.headers["docker-upload-uuid"]
        await _ok(await client.patch(started.headers["location"], content=b"staged"), 202)


def stored_by(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What a request stored: rows, blobs or messages it added or changed, and anything it removed
    other than an upload session and its staged blocks (a refused final PUT cancels its upload)."""
    found: list[str] = []
    for table in sorted(set(before["tables"]) | set(after["tables"])):
        old, new = before["tables"].get(table, {}), after["tables"].get(table, {})
        found += [f"{table} row {k} added: {new[k]}" for k in new if k not in old]
        found += [f"{table} row {k} changed: {old[k]} -> {new[k]}" for k in new if k in old and new[k] != old[k]]
        if table != "uploads":
            found += [f"{table} row {k} removed" for k in old if k not in new]
    old_blobs, new_blobs = before["blobs"], after["blobs"]
    found += [f"blob {n} added: {new_blobs[n]}" for n in new_blobs if n not in old_blobs]
    found += [f"blob {n} changed: {old_blobs[n]} -> {new_blobs[n]}" for n in new_blobs
              if n in old_blobs and new_blobs[n] != old_blobs[n]]
    found += [f"blob {n} removed" for n in old_blobs if n not in new_blobs and old_blobs[n]["committed"]]
    if before["queues"] != after["queues"]:
        found.append(f"queues changed: {before['queues']} -> {after['queues']}")
    return found


@dataclass(frozen=True)
class Answer:
    """What the app answered."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


async def send(app: Starlette, case: Case) -> Answer:
    """Send ``case`` to the app in-process as an ASGI request, as uvicorn would hand it over: the raw
    path and query bytes, ``path`` percent-decoded as UTF-8 (invalid bytes replaced), headers as
    bytes, the admin's Basic credentials unless the case says otherwise."""
    raw_path = case.path.encode()
    headers = [(k.lower().encode(), v) for k, v in case.headers]
    names = {k for k, _ in headers}
    if case.auth == "admin" and b"authorization" not in names:
        headers += [(k.lower().encode(), v.encode()) for k, v in basic(ADMIN_USER, ADMIN_PASSWORD).items()]
    if b"host" not in names:
        headers.append((b"host", b"registry.test"))
    if case.body is not None and b"content-length" not in names:
        headers.append((b"content-length", str(len(case.body)).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": case.method,
        "scheme": "http", "path": unquote(case.path), "raw_path": raw_path, "root_path": "",
        "query_string": case.query.encode(), "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("registry.test", 80),
    }
    pending = [{"type": "http.request", "body": case.body or b"", "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)  # the body was all sent: nothing more comes until cancelled
        return {"type": "http.disconnect"}

    async def send_message(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send_message)
    except Exception as error:  # what escapes the app is what a server answers with a bare 500
        return Answer(500, [], f"{type(error).__name__}: {error}".encode())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], list(start.get("headers", [])), body)


class Fuzzer:
    """Sends cases and checks each answer against the invariants."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient, storage: StorageProbe) -> None:
        self.app, self.client, self.storage = app, client, storage
        self.seed = Seed(**{**SEED.__dict__, "blobs": list(SEED.blobs)})
        self.before: dict[str, Any] | None = None
        self.statuses: dict[int, int] = {}
        self._cases: tuple[str, st.SearchStrategy[Case]] | None = None

    def cases(self) -> st.SearchStrategy[Case]:
        """Requests naming what the registry holds now (built again only when the upload changes:
        building strategies costs more than drawing from them)."""
        if self._cases is None or self._cases[0] != self.seed.upload_id:
            self._cases = (self.seed.upload_id, cases(self.seed))
        return self._cases[1]

    async def settled_snapshot(self) -> dict[str, Any]:
        """The snapshot once the events of earlier commits are published."""
        await self.app.state.registry.outbox.settle()
        return await self.storage.snapshot()

    async def reset(self) -> None:
        """Restore the seed and take the snapshot the next case is compared with."""
        await restore(self.client, self.seed)
        self.before = await self.settled_snapshot()

    async def check(self, case: Case) -> None:
        """Send ``case``; assert no 500 and, when refused or a read, that nothing was stored."""
        if self.before is None:
            await self.reset()
        assert self.before is not None
        answer = await send(self.app, case)
        self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1
        assert answer.status < 500, f"{case}: {answer.status} {answer.body[:300]!r}"
        after = await self.settled_snapshot()
        if answer.status >= 400 or case.method in ("GET", "HEAD"):
            stored = stored_by(self.before, after)
            assert not stored, f"{case} answered {answer.status} and stored: {stored[:5]}"
        if after != self.before:
            self.before = None  # something changed (a success, a cancelled upload): restore the seed


@pytest.fixture
async def fuzzer(app: Starlette, client: httpx.AsyncClient, storage: StorageProbe) -> AsyncIterator[Fuzzer]:
    """A registry holding the seed, and the checker of cases against it."""
    checker = Fuzzer(app, client, storage)
    await checker.reset()
    yield checker
    print("statuses:", dict(sorted(checker.statuses.items())))


@QUICK
@given(data=st.data())
async def test_no_request_answers_500_or_stores_anything_when_refused(fuzzer: Fuzzer, data: st.DataObject) -> None:
    await fuzzer.check(data.draw(fuzzer.cases()))


@pytest.mark.slow
@THOROUGH
@given(data=st.data())
async def test_no_request_answers_500_or_stores_anything_when_refused_at_length(
        fuzzer: Fuzzer, data: st.DataObject) -> None:
    await fuzzer.check(data.draw(fuzzer.cases()))
