"""Uploads under contention: one upload, one digest, several repositories, the purge.

Invariants: an upload session is completed or cancelled at most once, and any later request on
it (even one already streaming when the session ended) answers 404 BLOB_UPLOAD_UNKNOWN; a data
blob the index refers to is never modified or deleted by an upload; what the index maps a digest
to hashes to that digest. Interleavings are forced with request bodies held open at a chosen
point, never with sleeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
from starlette.applications import Starlette

from shared.composition import Registry
from tests.oci import digest_of, fetch_blob, push_blob
from tests.storage import StorageProbe


class HeldBody:
    """A request body that sends ``first``, then waits for :meth:`release` before sending ``rest``.

    ``reached`` is set once the server asks for more than ``first``: by then it has read the
    upload's state and is streaming this body.
    """

    def __init__(self, first: bytes, rest: bytes) -> None:
        self.first = first
        self.rest = rest
        self.reached = asyncio.Event()
        self._released = asyncio.Event()

    def release(self) -> None:
        """Let the rest of the body go."""
        self._released.set()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        self.reached.set()
        await self._released.wait()
        yield self.rest


async def held_request(client: httpx.AsyncClient, method: str, url: str, body: HeldBody,
                       **kwargs: Any) -> asyncio.Task[httpx.Response]:
    """Start a request whose body is held; returns once the server is streaming it."""
    task = asyncio.ensure_future(client.request(method, url, content=body, **kwargs))
    await asyncio.wait_for(body.reached.wait(), timeout=10)
    return task


async def read_data(storage: StorageProbe, name: str) -> bytes:
    """The committed bytes of one data blob."""
    downloader = await storage.clients.container.get_blob_client(name).download_blob()
    return bytes(await downloader.readall())


async def assert_storage_sound(storage: StorageProbe) -> None:
    """Every index entry and every link names a data blob that exists and hashes to its digest."""
    entries = [(r["PartitionKey"], r["location"], stored_int(r["size"])) for r in await storage.rows("blobs")]
    entries += [(r["RowKey"][2:], r["location"], stored_int(r["size"])) for r in await storage.rows("repos")
                if r["RowKey"].startswith("l|")]
    stored = await storage.blobs()
    for digest, location, size in entries:
        assert location in stored, f"{digest} points at a missing blob {location}"
        data = await read_data(storage, location)
        algorithm, _, hexpart = digest.partition(":")
        assert hashlib.new(algorithm, data).hexdigest() == hexpart, f"{location} does not hash to {digest}"
        assert len(data) == size


def stored_int(value: Any) -> int:
    """A table integer as read back (an Edm.Int64 arrives wrapped in an EntityProperty)."""
    return int(getattr(value, "value", value))


def error_code(response: httpx.Response) -> str:
    """The first error code of an error answer."""
    return str(response.json()["errors"][0]["code"])


async def test_late_final_put_cannot_overwrite_committed_content(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    prefix, good, evil = os.urandom(134), os.urandom(128), os.urandom(128)
    location = (await client.post("/v2/a/x/blobs/uploads/")).headers["location"]
    assert (await client.patch(location, content=prefix)).status_code == 202
    late = HeldBody(evil[:64], evil[64:])
    late_put = await held_request(client, "PUT", location, late, params={"digest": digest_of(prefix + evil)})
    on_time = await client.put(location, params={"digest": digest_of(prefix + good)}, content=good)
    assert on_time.status_code == 201
    late.release()
    answer = await late_put
    assert answer.status_code == 404
    assert error_code(answer) == "BLOB_UPLOAD_UNKNOWN"
    assert await fetch_blob(client, "a/x", digest_of(prefix + good)) == prefix + good
    assert (await client.head(f"/v2/a/x/blobs/{digest_of(prefix + evil)}")).status_code == 404
    # A genuine push of the same content elsewhere deduplicates onto the right bytes.
    await push_blob(client, "victim/app", prefix + good)
    assert await fetch_blob(client, "victim/app", digest_of(prefix + good)) == prefix + good
    assert [r["PartitionKey"] for r in await storage.rows("blobs")] == [digest_of(prefix + good)]
    assert await storage.rows("uploads") == []
    await assert_storage_sound(storage)


async def test_late_final_put_with_wrong_digest_cannot_delete_committed_content(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    prefix, good = os.urandom(134), os.urandom(128)
    location = (await client.post("/v2/a/x/blobs/uploads/")).headers["location"]
    assert (await client.patch(location, content=prefix)).status_code == 202
    late = HeldBody(b"w" * 64, b"w" * 64)
    late_put = await held_request(client, "PUT", location, late, params={"digest": digest_of(b"not this")})
    on_time = await client.put(location, params={"digest": digest_of(prefix + good)}, content=good)
    assert on_time.status_code == 201
    late.release()
    answer = await late_put
    assert answer.status_code == 404
    assert error_code(answer) == "BLOB_UPLOAD_UNKNOWN"
    digest = digest_of(prefix + good)
    assert (await client.head(f"/v2/a/x/blobs/{digest}")).status_code == 200
    assert await fetch_blob(client, "a/x", digest) == prefix + good
    await assert_storage_sound(storage)


async def test_patch_streaming_when_the_upload_completes_answers_unknown(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    data = os.urandom(1000)
    location = (await client.post("/v2/race/blobs/uploads/")).headers["location"]
    late = HeldBody(b"p" * 10, b"p" * 10)
    late_patch = await held_request(client, "PATCH", location, late)
    assert (await client.put(location, params={"digest": digest_of(data)}, content=data)).status_code == 201
    late.release()
    answer = await late_patch
    assert answer.status_code == 404
    assert error_code(answer) == "BLOB_UPLOAD_UNKNOWN"
    assert await fetch_blob(client, "race", digest_of(data)) == data
    await assert_storage_sound(storage)


async def test_cancel_while_the_final_put_streams_wins_and_nothing_is_stored(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    data = os.urandom(1000)
    location = (await client.post("/v2/race/blobs/uploads/")).headers["location"]
    late = HeldBody(data[:500], data[500:])
    late_put = await held_request(client, "PUT", location, late, params={"digest": digest_of(data)})
    assert (await client.delete(location)).status_code == 204
    late.release()
    answer = await late_put
    assert answer.status_code == 404
    assert error_code(answer) == "BLOB_UPLOAD_UNKNOWN"
    digest = digest_of(data)
    for later in (await client.get(location), await client.delete(location),
                  await client.patch(location, content=b"x"), await client.put(location, params={"digest": digest})):
        assert later.status_code == 404
        assert error_code(later) == "BLOB_UPLOAD_UNKNOWN"
    assert (await client.head(f"/v2/race/blobs/{digest_of(data)}")).status_code == 404
    # The PUT staged its block before it found its upload gone; a block no upload will commit
    # (storage discards it after a week) is all that may remain.
    snapshot = await storage.snapshot(staged=False)
    assert storage.is_empty(snapshot), snapshot


async def test_two_final_puts_of_one_upload_complete_it_once(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    data = os.urandom(2000)
    location = (await client.post("/v2/twice/blobs/uploads/")).headers["location"]
    first, second = HeldBody(data[:1000], data[1000:]), HeldBody(data[:1000], data[1000:])
    puts = [await held_request(client, "PUT", location, body, params={"digest": digest_of(data)})
            for body in (first, second)]
    first.release()
    second.release()
    answers = await asyncio.gather(*puts)
    assert sorted(a.status_code for a in answers) == [201, 404]
    assert await fetch_blob(client, "twice", digest_of(data)) == data
    assert len(await storage.blobs()) == 1
    await assert_storage_sound(storage)


async def test_one_layer_pushed_at_once_to_many_repositories_is_stored_once(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    data = os.urandom(50_000)
    repositories = [f"team/app{i}" for i in range(6)]
    await asyncio.gather(*(push_blob(client, name, data) for name in repositories))
    for name in repositories:
        assert await fetch_blob(client, name, digest_of(data)) == data
    assert len(await storage.blobs()) == 1
    assert len(await storage.rows("blobs")) == 1
    await assert_storage_sound(storage)


async def test_purge_racing_a_commit_never_leaves_the_index_on_missing_data(
    app: Starlette, client: httpx.AsyncClient, settings: Any, storage: StorageProbe
) -> None:
    data = os.urandom(3000)
    location = (await client.post("/v2/purged/blobs/uploads/")).headers["location"]
    registry: Registry = app.state.registry
    index = registry.blobs.index
    purged: list[int] = []

    async def index_after_a_purge(*args: Any, **kwargs: Any) -> Any:
        # The upload's blob is committed and not yet indexed: the purge runs now.
        other = await Registry.open(settings)
        try:
            purged.append(await other.uploads.purge_stale(timedelta(seconds=-60)))
        finally:
            await other.close()
        return await index(*args, **kwargs)

    registry.blobs.index = index_after_a_purge  # type: ignore[method-assign]
    answer = await client.put(location, params={"digest": digest_of(data)}, content=data)
    registry.blobs.index = index  # type: ignore[method-assign]
    assert purged == [1]
    assert answer.status_code == 201
    assert await fetch_blob(client, "purged", digest_of(data)) == data
    assert await storage.rows("uploads") == []
    await assert_storage_sound(storage)


async def test_purge_of_an_upload_whose_final_put_is_streaming_ends_it_once(
    client: httpx.AsyncClient, settings: Any, storage: StorageProbe
) -> None:
    data = os.urandom(3000)
    location = (await client.post("/v2/purged/blobs/uploads/")).headers["location"]
    late = HeldBody(data[:1500], data[1500:])
    late_put = await held_request(client, "PUT", location, late, params={"digest": digest_of(data)})
    other = await Registry.open(settings)
    try:
        assert await other.uploads.purge_stale(timedelta(seconds=-60)) == 1
    finally:
        await other.close()
    late.release()
    answer = await late_put
    assert answer.status_code == 404
    assert error_code(answer) == "BLOB_UPLOAD_UNKNOWN"
    assert storage.is_empty(await storage.snapshot(staged=False))  # as above: staged blocks may remain


async def test_a_crowd_of_requests_on_one_upload_ends_it_exactly_once(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    for round_ in range(4):
        prefix = os.urandom(500)
        location = (await client.post("/v2/crowd/blobs/uploads/")).headers["location"]
        assert (await client.patch(location, content=prefix)).status_code == 202
        bodies = [os.urandom(300) for _ in range(3)]
        requests = [client.put(location, params={"digest": digest_of(prefix + b)}, content=b) for b in bodies]
        requests.append(client.put(location, params={"digest": digest_of(b"wrong")}, content=b"w" * 300))
        requests.append(client.delete(location))
        requests += [client.patch(location, content=os.urandom(100)) for _ in range(2)]
        order = list(range(len(requests)))
        order = order[round_:] + order[:round_]  # a different request starts first each round
        tasks = {i: asyncio.ensure_future(requests[i]) for i in order}
        answers = [await tasks[i] for i in range(len(requests))]
        enders = [i for i, a in enumerate(answers)
                  if (i < 4 and a.status_code in (201, 400)) or (i == 4 and a.status_code == 204)]
        assert len(enders) == 1, [a.status_code for a in answers]
        for i, answer in enumerate(answers):
            if i not in enders:
                assert answer.status_code in (202, 404, 416), (i, answer.status_code, answer.text)
        assert (await client.get(location)).status_code == 404
        winner = enders[0]
        if winner < 3:
            assert await fetch_blob(client, "crowd", digest_of(prefix + bodies[winner])) == prefix + bodies[winner]
        assert await storage.rows("uploads") == []
        await assert_storage_sound(storage)
