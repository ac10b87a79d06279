"""Push: monolithic, POST then PUT, chunked, streamed, status, cancel, mount, and their errors."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.oci import digest_of, fetch_blob, push_blob
from tests.storage import StorageProbe


async def test_monolithic_post_with_digest_creates_blob(client: httpx.AsyncClient) -> None:
    data = os.urandom(5000)
    response = await client.post("/v2/mono/blobs/uploads/", params={"digest": digest_of(data)}, content=data)
    assert response.status_code == 201
    assert response.headers["location"] == f"/v2/mono/blobs/{digest_of(data)}"
    assert response.headers["docker-content-digest"] == digest_of(data)
    head = await client.head(f"/v2/mono/blobs/{digest_of(data)}")
    assert head.status_code == 200
    assert head.headers["content-length"] == "5000"
    assert head.headers["docker-content-digest"] == digest_of(data)


async def test_post_then_put_with_relative_location(client: httpx.AsyncClient) -> None:
    start = await client.post("/v2/a/b/blobs/uploads/")
    assert start.status_code == 202
    location = start.headers["location"]
    assert location.startswith("/v2/a/b/blobs/uploads/")
    assert start.headers["range"] == "0-0"
    assert start.headers["docker-upload-uuid"] in location
    data = b"hello world"
    done = await client.put(location, params={"digest": digest_of(data)}, content=data)
    assert done.status_code == 201
    assert await fetch_blob(client, "a/b", digest_of(data)) == data


async def test_chunked_upload_reports_progress_and_commits(client: httpx.AsyncClient, storage: StorageProbe) -> None:
    data = os.urandom(300_000)
    location = (await client.post("/v2/chunky/blobs/uploads/")).headers["location"]
    first = await client.patch(location, content=data[:100_000],
                               headers={"Content-Range": "0-99999", "Content-Type": "application/octet-stream"})
    assert first.status_code == 202
    assert first.headers["range"] == "0-99999"
    status = await client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-99999"
    second = await client.patch(status.headers["location"], content=data[100_000:250_000],
                                headers={"Content-Range": "100000-249999"})
    assert second.headers["range"] == "0-249999"
    done = await client.put(location, params={"digest": digest_of(data)}, content=data[250_000:],
                            headers={"Content-Range": "250000-299999"})
    assert done.status_code == 201, done.text
    assert await fetch_blob(client, "chunky", digest_of(data)) == data
    assert await storage.rows("uploads") == []


async def test_streamed_patch_without_content_length(client: httpx.AsyncClient, settings: object) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]

    location = (await client.post("/v2/streamed/blobs/uploads/")).headers["location"]
    patched = await client.patch(location, content=pieces())
    assert patched.status_code == 202
    assert patched.headers["range"] == f"0-{len(data) - 1}"
    done = await client.put(location, params={"digest": digest_of(data)})
    assert done.status_code == 201
    assert await fetch_blob(client, "streamed", digest_of(data)) == data


async def test_out_of_order_chunk_returns_416_with_current_range(client: httpx.AsyncClient) -> None:
    location = (await client.post("/v2/order/blobs/uploads/")).headers["location"]
    await client.patch(location, content=b"a" * 10, headers={"Content-Range": "0-9"})
    skipped = await client.patch(location, content=b"b" * 10, headers={"Content-Range": "20-29"})
    assert skipped.status_code == 416
    assert skipped.headers["range"] == "0-9"
    assert skipped.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    overlapping = await client.patch(location, content=b"c" * 10, headers={"Content-Range": "5-14"})
    assert overlapping.status_code == 416
    assert (await client.get(location)).headers["range"] == "0-9"


async def test_content_length_disagreeing_with_range_is_refused(client: httpx.AsyncClient) -> None:
    location = (await client.post("/v2/order/blobs/uploads/")).headers["location"]
    response = await client.patch(location, content=b"x" * 10, headers={"Content-Range": "0-4"})
    assert response.status_code == 416
    assert (await client.get(location)).headers["range"] == "0-0"


async def test_wrong_digest_is_rejected_and_nothing_stays(client: httpx.AsyncClient, storage: StorageProbe) -> None:
    location = (await client.post("/v2/bad/blobs/uploads/")).headers["location"]
    response = await client.put(location, params={"digest": digest_of(b"other")}, content=b"actual")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert (await client.get(location)).status_code == 404
    assert storage.is_empty(await storage.snapshot())
    mono = await client.post("/v2/bad/blobs/uploads/", params={"digest": digest_of(b"x")}, content=b"y")
    assert mono.status_code == 400
    assert storage.is_empty(await storage.snapshot())


async def test_malformed_digest_and_missing_digest(client: httpx.AsyncClient) -> None:
    location = (await client.post("/v2/bad/blobs/uploads/")).headers["location"]
    for params in ({"digest": "sha256:xyz"}, {"digest": "md5:abc"}, {}):
        response = await client.put(location, params=params, content=b"data")
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert (await client.get(location)).status_code == 204


async def test_cancel_upload_then_unknown(client: httpx.AsyncClient, storage: StorageProbe) -> None:
    location = (await client.post("/v2/cancel/blobs/uploads/")).headers["location"]
    await client.patch(location, content=b"abc")
    assert (await client.delete(location)).status_code == 204
    for response in (await client.get(location), await client.patch(location, content=b"x"),
                     await client.put(location, params={"digest": digest_of(b"abc")})):
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert await storage.rows("uploads") == []


async def test_upload_of_another_repository_or_bad_id_is_unknown(client: httpx.AsyncClient) -> None:
    location = (await client.post("/v2/one/blobs/uploads/")).headers["location"]
    upload_id = location.rsplit("/", 1)[1]
    assert (await client.get(f"/v2/two/blobs/uploads/{upload_id}")).status_code == 404
    for bad in ("..%2F..%2Fx", "not-an-id", "A" * 32):
        response = await client.get(f"/v2/one/blobs/uploads/{bad}")
        assert response.status_code == 404


async def test_second_push_of_a_layer_to_another_repository_stores_nothing_new(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    data = os.urandom(20_000)
    await push_blob(client, "first", data)
    before = await storage.blobs()
    await push_blob(client, "second", data)
    assert await storage.blobs() == before
    assert len([n for n in before if n.startswith("data/")]) == 1
    assert (await client.head(f"/v2/second/blobs/{digest_of(data)}")).status_code == 200


async def test_mount_from_repository(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "source", b"mounted content")
    assert (await client.head(f"/v2/target/blobs/{digest}")).status_code == 404
    mounted = await client.post("/v2/target/blobs/uploads/", params={"mount": digest, "from": "source"})
    assert mounted.status_code == 201
    assert mounted.headers["location"] == f"/v2/target/blobs/{digest}"
    assert mounted.headers["docker-content-digest"] == digest
    assert (await client.head(f"/v2/target/blobs/{digest}")).status_code == 200


async def test_mount_falls_back_to_upload_when_source_lacks_blob(client: httpx.AsyncClient) -> None:
    missing = digest_of(b"never pushed")
    response = await client.post("/v2/target/blobs/uploads/", params={"mount": missing, "from": "source"})
    assert response.status_code == 202
    assert response.headers["location"].startswith("/v2/target/blobs/uploads/")
    automatic = await client.post("/v2/target/blobs/uploads/", params={"mount": missing})
    assert automatic.status_code == 202


async def test_automatic_mount_without_from(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "somewhere", b"shared layer")
    response = await client.post("/v2/elsewhere/blobs/uploads/", params={"mount": digest})
    assert response.status_code == 201
    assert (await client.head(f"/v2/elsewhere/blobs/{digest}")).status_code == 200


async def test_chunk_min_length_is_advertised(azurite: object, settings: object) -> None:

    from shared.composition import create_app
    from shared.settings import Settings

    assert isinstance(settings, Settings)
    app = create_app(settings.with_env(REGISTRY_CHUNK_MIN_BYTES="1048576"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        response = await http.post("/v2/x/blobs/uploads/")
        assert response.headers["oci-chunk-min-length"] == "1048576"
    await app.state.registry.close()


async def test_racing_patches_on_one_upload_never_mix_their_bytes(client: httpx.AsyncClient) -> None:
    location = (await client.post("/v2/racing/blobs/uploads/")).headers["location"]
    bodies = [bytes([i]) * 200_000 for i in range(4)]
    responses = await asyncio.gather(*(client.patch(location, content=b, headers={"Content-Range": "0-199999"})
                                       for b in bodies))
    statuses = [r.status_code for r in responses]
    assert sorted(statuses) == [202, 416, 416, 416]
    winner = bodies[statuses.index(202)]
    assert (await client.get(location)).headers["range"] == "0-199999"
    # The committed blob is exactly the winner's bytes, though every request staged blocks.
    done = await client.put(location, params={"digest": digest_of(winner)})
    assert done.status_code == 201
    assert await fetch_blob(client, "racing", digest_of(winner)) == winner


def sha512_of(data: bytes) -> str:
    """The sha512 digest string of ``data``."""
    return "sha512:" + hashlib.sha512(data).hexdigest()


async def _sha512_push(client: httpx.AsyncClient, mode: str, name: str, data: bytes) -> httpx.Response:
    digest = sha512_of(data)
    if mode == "monolithic":
        return await client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=data)
    location = (await client.post(f"/v2/{name}/blobs/uploads/")).headers["location"]
    if mode == "post-put":
        return await client.put(location, params={"digest": digest}, content=data)
    if mode == "streamed":

        async def pieces() -> AsyncIterator[bytes]:
            yield data[:700]
            yield data[700:]

        assert (await client.patch(location, content=pieces())).status_code == 202
        return await client.put(location, params={"digest": digest})
    cuts = {"chunked-single": [0, len(data)], "chunked-multi": [0, 400, 900, len(data)],
            "chunked-final-put": [0, 600], "chunked-out-of-order": [0, 500, len(data)]}[mode]
    for start, end in itertools.pairwise(cuts):
        chunk = await client.patch(location, content=data[start:end],
                                   headers={"Content-Range": f"{start}-{end - 1}"})
        assert chunk.status_code == 202, chunk.text
        if mode == "chunked-out-of-order" and start == 0:
            skipped = await client.patch(location, content=data[700:],
                                         headers={"Content-Range": f"700-{len(data) - 1}"})
            assert skipped.status_code == 416
    rest = data[cuts[-1]:]
    headers = {"Content-Range": f"{cuts[-1]}-{len(data) - 1}"} if rest else {}
    return await client.put(location, params={"digest": digest}, content=rest, headers=headers)


@pytest.mark.parametrize("mode", ["post-put", "monolithic", "chunked-single", "chunked-multi", "chunked-final-put",
                                  "chunked-out-of-order", "streamed"])
async def test_sha512_blob_push_in_every_mode(client: httpx.AsyncClient, storage: StorageProbe, mode: str) -> None:
    data = os.urandom(1200)
    digest = sha512_of(data)
    done = await _sha512_push(client, mode, "five/twelve", data)
    assert done.status_code == 201, done.text
    assert done.headers["docker-content-digest"] == digest
    assert done.headers["location"] == f"/v2/five/twelve/blobs/{digest}"
    head = await client.head(f"/v2/five/twelve/blobs/{digest}")
    assert head.status_code == 200 and head.headers["content-length"] == "1200"
    assert await fetch_blob(client, "five/twelve", digest) == data
    [entry] = await storage.rows("blobs")
    assert entry["PartitionKey"] == digest
    assert await storage.rows("uploads") == []
    for params in ({"mount": digest, "from": "five/twelve"}, {"mount": digest}):
        target = f"mounted/{len(params)}"
        mounted = await client.post(f"/v2/{target}/blobs/uploads/", params=params)
        assert mounted.status_code == 201
        assert mounted.headers["docker-content-digest"] == digest
        assert await fetch_blob(client, target, digest) == data
    assert len(await storage.blobs()) == 1


async def test_wrong_sha512_digest_at_the_final_put_stores_nothing(
    client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    location = (await client.post("/v2/five/twelve/blobs/uploads/")).headers["location"]
    assert (await client.patch(location, content=b"what was sent")).status_code == 202
    answer = await client.put(location, params={"digest": sha512_of(b"something else")})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert answer.json()["errors"][0]["detail"]["actual"] == sha512_of(b"what was sent")
    assert (await client.get(location)).status_code == 404
    assert storage.is_empty(await storage.snapshot())


async def test_sha512_of_a_blob_of_many_blocks_is_verified_piece_by_piece(settings: object) -> None:
    from dataclasses import replace

    from shared.composition import create_app
    from shared.settings import Settings

    assert isinstance(settings, Settings)
    app = create_app(replace(settings, registry=replace(settings.registry, upload_block_bytes=1000)))
    data = os.urandom(4321)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        location = (await http.post("/v2/pieces/blobs/uploads/")).headers["location"]
        assert (await http.patch(location, content=data[:2500])).status_code == 202
        wrong = await http.put(location, params={"digest": sha512_of(data[:-1] + b"!")}, content=data[2500:])
        assert wrong.status_code == 400
        location = (await http.post("/v2/pieces/blobs/uploads/")).headers["location"]
        assert (await http.patch(location, content=data[:2500])).status_code == 202
        done = await http.put(location, params={"digest": sha512_of(data)}, content=data[2500:])
        assert done.status_code == 201, done.text
        assert await fetch_blob(http, "pieces", sha512_of(data)) == data
    await app.state.registry.close()
