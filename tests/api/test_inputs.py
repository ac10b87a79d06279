"""Bad input is a 4xx with the spec's error code, never a 500, and stores nothing: numbers in
query parameters and headers, nesting and text in JSON bodies, lengths of names and filters."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from shared.composition import create_app
from shared.settings import Settings
from tests.auth_helpers import basic
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.oci import OCI_MANIFEST, push_artifact, push_blob, push_image
from tests.storage import StorageProbe

HUGE = "9" * 5000  # Python's int() refuses strings of more than 4,300 digits
# superscript two, Arabic-Indic three, fullwidth one: str.isdigit() takes all three, int() refuses the first
NOT_ASCII_DIGITS = ["\u00b2", "\u0663", "\uff11"]


def _code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["code"])


async def test_page_size_of_other_scripts_digits_or_thousands_of_digits_is_pagination_number_invalid(
        client: httpx.AsyncClient, storage: StorageProbe) -> None:
    digest, _ = await push_image(client, "paged/app", "v1")
    lists = ["/v2/_catalog", "/v2/paged/app/tags/list", f"/v2/paged/app/referrers/{digest}", "/acr/v1/_catalog",
             "/acr/v1/paged/app/_tags", "/acr/v1/paged/app/_manifests"]
    before = await storage.snapshot()
    for path in lists:
        for n in [*NOT_ASCII_DIGITS, HUGE, "0" * 5000 + "1" + "0" * 19, str(2**63), "-1", " 1"]:
            response = await client.get(path, params={"n": n})
            assert response.status_code == 400, (path, n[:10], response.text)
            assert _code(response) == "PAGINATION_NUMBER_INVALID", (path, n[:10])
        # The largest number distribution's strconv.Atoi takes is a valid n (served one page at a time).
        for n in [str(2**63 - 1), "0" * 5000 + "2"]:
            assert (await client.get(path, params={"n": n})).status_code == 200, (path, n[:10])
    assert await storage.snapshot() == before


async def test_tag_list_and_catalog_take_a_last_of_any_length(client: httpx.AsyncClient) -> None:
    await push_image(client, "long/last", "b", layers=0)
    raw = (await client.get("/v2/long/last/manifests/b")).content
    for tag in ("a", "c", "b" + "x" * 127):
        response = await client.put(f"/v2/long/last/manifests/{tag}", content=raw,
                                    headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 201
    for name in ("long/lasta", "long/lastc"):
        await push_image(client, name, "v1", layers=0)
    # Every tag after "b" followed by 60,000 "x": the 128-character tag sorts before it, "c" after.
    response = await client.get("/v2/long/last/tags/list", params={"last": "b" + "x" * 60_000})
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["c"]
    for path in ("/v2/_catalog", "/acr/v1/_catalog"):
        response = await client.get(path, params={"last": "long/last" + "a" * 60_000})
        assert response.status_code == 200, response.text
        assert response.json()["repositories"] == ["long/lastc"]


async def test_content_length_and_content_range_of_thousands_of_digits_are_refused_and_change_nothing(
        client: httpx.AsyncClient, storage: StorageProbe) -> None:
    location = (await client.post("/v2/huge/range/blobs/uploads/")).headers["location"]
    assert (await client.patch(location, content=b"abc")).status_code == 202
    before = await storage.snapshot()
    for header in (f"0-{HUGE}", f"{HUGE}-{HUGE}", f"3-{2**63}", "٣-٤", "3-٤", f"bytes 3-5/{HUGE}x"):
        response = await client.patch(location, content=b"def", headers={"Content-Range": header.encode()})
        assert response.status_code == 400, (header[:20], response.text)
        assert _code(response) == "BLOB_UPLOAD_INVALID", header[:20]
    for length in (HUGE, str(2**63), "²", "٣"):
        for method, url in (("PATCH", location), ("POST", "/v2/huge/range/blobs/uploads/?digest="
                                                  + "sha256:" + hashlib.sha256(b"def").hexdigest())):
            response = await client.request(method, url, content=b"def", headers={"Content-Length": length.encode()})
            assert response.status_code == 400, (method, length[:10], response.text)
            assert _code(response) == "SIZE_INVALID", (method, length[:10])
    assert await storage.snapshot() == before
    assert (await client.get(location)).headers["range"] == "0-2"


async def test_monolithic_push_whose_content_length_is_not_its_body_stores_nothing(
        app: Starlette, client: httpx.AsyncClient, storage: StorageProbe) -> None:
    data = b"twelve bytes"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    before = await storage.snapshot()
    for declared in (len(data) - 1, len(data) + 1):
        response = await _raw_post(app, f"/v2/mono/len/blobs/uploads/?digest={digest}", data, declared)
        assert response == 400
    assert await storage.snapshot() == before
    assert (await client.head(f"/v2/mono/len/blobs/{digest}")).status_code == 404


async def _raw_post(app: Starlette, target: str, body: bytes, declared: int) -> int:
    """POST ``body`` with a ``Content-Length`` of ``declared`` straight through ASGI (an HTTP client
    would frame the body by its header); the status answered."""
    path, _, query = target.partition("?")
    auth = basic(ADMIN_USER, ADMIN_PASSWORD)["Authorization"]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": query.encode(),
             "headers": [(b"host", b"registry.test"), (b"content-length", str(declared).encode()),
                         (b"authorization", auth.encode())],
             "client": ("127.0.0.1", 1), "server": ("registry.test", 80)}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    statuses: list[int] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(int(message["status"]))  # type: ignore[call-overload]

    await app(scope, receive, send)
    return statuses[0]


@pytest.fixture
async def proxy_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a registry that streams blobs itself (and so reads ``Range``)."""
    app = create_app(settings.with_env(REGISTRY_BLOB_REDIRECT="false"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        yield http
    await app.state.registry.close()


async def test_range_positions_of_thousands_of_digits_are_past_any_blob(proxy_client: httpx.AsyncClient) -> None:
    data = os.urandom(1000)
    digest = await push_blob(proxy_client, "huge/range", data)
    url = f"/v2/huge/range/blobs/{digest}"
    for header in (f"bytes={HUGE}-", f"bytes={2**63}-{2**64}"):
        response = await proxy_client.get(url, headers={"Range": header})
        assert response.status_code == 416, header[:20]
        assert response.headers["content-range"] == "bytes */1000"
    for header, expected in ((f"bytes=10-{HUGE}", data[10:]), (f"bytes=-{HUGE}", data),
                             ("bytes=0-" + "0" * 5000, data[:1])):
        response = await proxy_client.get(url, headers={"Range": header})
        assert response.status_code == 206, header[:20]
        assert response.content == expected, header[:20]
    for header in ("bytes=٣-٤", "bytes=²-"):  # not a range of ASCII digits: ignored, as RFC 9110 says
        response = await proxy_client.get(url, headers={"Range": header.encode()})
        assert response.status_code == 200 and response.content == data, header


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"true" + b"}" * depth


JSON_ENDPOINTS = [
    ("PATCH", "/acr/v1/deep/app"), ("PATCH", "/acr/v1/deep/app/_tags/v1"), ("PATCH", "/acr/v1/deep/app/_manifests/{d}"),
    ("PATCH", "/acr/admin/options"), ("PUT", "/acr/admin/scopemaps/deep-map"), ("PUT", "/acr/admin/tokens/deep-token"),
    ("POST", "/acr/admin/tokens/deep-token/passwords"), ("POST", "/acr/admin/roleassignments"),
]


async def test_json_bodies_nested_thousands_deep_or_past_32_levels_are_refused_and_store_nothing(
        client: httpx.AsyncClient, storage: StorageProbe) -> None:
    digest, _ = await push_image(client, "deep/app", "v1")
    assert (await client.put("/acr/admin/scopemaps/deep-map", json={"actions": ["repositories/x/content/read"]})
            ).status_code == 200
    assert (await client.put("/acr/admin/tokens/deep-token", json={"scopeMap": "deep-map"})).status_code == 200
    before = await storage.snapshot()
    for method, path in JSON_ENDPOINTS:
        for body in (_nested(2000), b"[" * 8000 + b"]" * 8000, _nested(33),
                     b'{"writeEnabled": false, "x": ' + b"[" * 40 + b"]" * 40 + b"}"):
            response = await client.request(method, path.format(d=digest), content=body)
            assert response.status_code == 400, (method, path, len(body), response.text)
            assert _code(response) == "INVALID_REQUEST", (method, path)
    assert await storage.snapshot() == before
    accepted = await client.patch("/acr/v1/deep/app", content=b'{"writeEnabled": false, "x": ' + _nested(30) + b"}")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["changeableAttributes"]["writeEnabled"] is False


async def test_json_strings_with_lone_surrogates_are_refused_and_store_nothing(
        client: httpx.AsyncClient, storage: StorageProbe) -> None:
    await push_image(client, "text/app", "v1")
    before = await storage.snapshot()
    for method, path, body in [
        ("PUT", "/acr/admin/scopemaps/text-map", {"actions": ["repositories/x/content/read"], "description": "\ud800"}),
        ("POST", "/acr/admin/roleassignments", {"principalId": "\udfff", "role": "AcrPull"}),
        ("PATCH", "/acr/v1/text/app", {"\ud800": True, "writeEnabled": False}),
    ]:
        raw = json.dumps(body).encode()  # ASCII JSON with \\ud800 escapes, as a client may send
        response = await client.request(method, path, content=raw)
        assert response.status_code == 400, (path, response.text)
        assert _code(response) == "INVALID_REQUEST", path
    assert await storage.snapshot() == before


async def test_admin_names_no_key_can_hold_are_not_found_or_invalid_and_change_nothing(
        client: httpx.AsyncClient, storage: StorageProbe) -> None:
    assert (await client.put("/acr/admin/scopemaps/keep-map", json={"actions": ["repositories/x/content/read"]})
            ).status_code == 200
    before = await storage.snapshot()
    long = "x" * 20_000
    for method, path, status in [
        ("GET", f"/acr/admin/tokens/{long}", 404), ("DELETE", f"/acr/admin/tokens/{long}", 404),
        ("PATCH", f"/acr/admin/tokens/{long}", 404), ("POST", f"/acr/admin/tokens/{long}/passwords", 404),
        ("GET", f"/acr/admin/scopemaps/{long}", 404), ("DELETE", f"/acr/admin/scopemaps/{long}", 404),
        ("DELETE", f"/acr/admin/roleassignments/{long}", 404), ("DELETE", "/acr/admin/roleassignments/a%23b", 404),
        ("PUT", f"/acr/admin/tokens/{long}", 400), ("PUT", f"/acr/admin/scopemaps/{long}", 400),
    ]:
        body = {"scopeMap": "keep-map", "actions": ["repositories/x/content/read"]} \
            if method in ("PUT", "PATCH", "POST") else None
        response = await client.request(method, path, json=body)
        assert response.status_code == status, (method, path[:40], response.text)
    response = await client.get("/acr/admin/roleassignments", params={"principalId": long})
    assert response.status_code == 400 and _code(response) == "NAME_INVALID"
    assert await storage.snapshot() == before


async def test_referrers_filtered_by_an_artifact_type_longer_than_any_media_type_is_an_empty_index(
        client: httpx.AsyncClient) -> None:
    subject, raw = await push_image(client, "filtered/app", "v1")
    await push_artifact(client, "filtered/app", {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(raw)},
                        "application/vnd.example.sig")
    response = await client.get(f"/v2/filtered/app/referrers/{subject}", params={"artifactType": "a/" + "b" * 20_000})
    assert response.status_code == 200, response.text
    assert response.json()["manifests"] == []
    assert response.headers["oci-filters-applied"] == "artifactType"
