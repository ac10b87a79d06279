"""The Azure Functions path: indexed functions and bindings, host.json, and requests through the
HTTP function as the worker calls it under HTTP streams (tests/functions_worker.py)."""

from __future__ import annotations

import base64
import inspect
import json
import typing
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from azurefunctions.extensions.base import HttpV2FeatureChecker, RequestTrackerMeta, ResponseTrackerMeta

from functions import http
from shared.composition import create_app
from shared.settings import Settings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.functions_worker import PUBLIC_HOST, Answer, Worker
from tests.indexed import indexed_functions
from tests.oci import OCI_MANIFEST, digest_of

ROOT = Path(__file__).resolve().parent.parent
BASIC = "Basic " + base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()


@cache
def _functions() -> dict[str, Any]:
    return indexed_functions()


def test_function_app_indexes_http_and_timer_functions() -> None:
    functions = _functions()
    assert set(functions) >= {"http_app_func", "purge_stale_uploads"}
    trigger = functions["http_app_func"].get_trigger()
    assert trigger.type == "httpTrigger"
    assert trigger.route == "/{*route}"
    assert str(trigger.auth_level.value).lower() == "anonymous"
    assert {m.value for m in trigger.methods} >= {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"}
    timer = functions["purge_stale_uploads"].get_trigger()
    assert timer.type == "timerTrigger" and timer.schedule == "0 17 * * * *"


def test_http_function_binds_the_types_the_worker_streams() -> None:
    # What the worker checks when it loads the function with HTTP streams on: the extension is
    # imported, the trigger parameter is its Request and the return its Response.
    function = _functions()["http_app_func"]
    user_function = function.get_user_function()
    trigger = function.get_trigger()
    hints = typing.get_type_hints(user_function)
    assert HttpV2FeatureChecker.http_v2_enabled()
    assert list(inspect.signature(user_function).parameters) == [trigger.name]
    assert RequestTrackerMeta.check_type(hints[trigger.name])
    assert ResponseTrackerMeta.check_type(hints["return"])
    assert inspect.iscoroutinefunction(user_function)
    assert {(b.type, b.name) for b in function.get_bindings()} == {("httpTrigger", trigger.name), ("http", "$return")}


def test_host_json_serves_v2_at_the_root() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensions"]["http"]["routePrefix"] == ""
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"


@pytest.fixture
async def invoke(settings: Settings) -> AsyncIterator[Any]:
    """Call the indexed HTTP function as the worker does under HTTP streams."""
    app = create_app(settings)
    worker = Worker(http.function_app(app))

    async def call(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
        return await worker.request(method, url, body, {"Authorization": BASIC, **(headers or {})})

    yield call
    if app.state.registry is not None:
        await app.state.registry.close()


async def test_push_and_pull_through_the_functions_middleware(invoke: Any) -> None:
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer-bytes"
    for data in (config, layer):
        started = await invoke("POST", "/v2/fn/repo/blobs/uploads/")
        assert started.status == 202
        location = started.headers["Location"]
        done = await invoke("PUT", f"{location}?digest={digest_of(data)}", body=data)
        assert done.status == 201, done.body
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest_of(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": digest_of(layer), "size": len(layer)}]}).encode()
    put = await invoke("PUT", "/v2/fn/repo/manifests/v1", body=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert put.status == 201
    assert put.headers["Docker-Content-Digest"] == digest_of(manifest)
    got = await invoke("GET", "/v2/fn%2Frepo/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert got.status == 200 and got.body == manifest
    assert got.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    blob = await invoke("GET", f"/v2/fn/repo/blobs/{digest_of(layer)}")
    assert blob.status == 307 and "sig=" in blob.headers["Location"]
    tags = await invoke("GET", "/v2/fn/repo/tags/list")
    assert json.loads(tags.body) == {"name": "fn/repo", "tags": ["v1"]}


async def test_errors_keep_their_shape_through_the_middleware(invoke: Any) -> None:
    missing = await invoke("GET", "/v2/fn/none/manifests/latest")
    assert missing.status == 404
    assert json.loads(missing.body)["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    head = await invoke("HEAD", "/v2/fn/none/manifests/latest")
    assert head.status == 404 and head.body == b""
    invalid = await invoke("GET", "/v2/..%2Fetc/tags/list")
    assert json.loads(invalid.body)["errors"][0]["code"] == "NAME_INVALID"


async def test_the_token_realm_names_the_host_the_client_used_not_the_workers(invoke: Any) -> None:
    # The host reaches the worker on loopback and passes the client's Host in X-Forwarded-Host,
    # after any value the client sent itself.
    answer = await invoke("GET", "/v2/", headers={"Authorization": "", "X-Forwarded-Host": f"evil.test, {PUBLIC_HOST}"})
    assert answer.status == 401
    challenge = answer.headers["www-authenticate"]
    assert f'realm="https://{PUBLIC_HOST}/oauth2/token"' in challenge
    assert f'service="{PUBLIC_HOST}"' in challenge
