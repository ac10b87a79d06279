"""The Azure Functions path: indexed functions and bindings, host.json, and requests through the
azure-functions ASGI middleware with real ``func.HttpRequest`` objects."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from functions import http
from shared.api.app import create_app
from shared.settings import Settings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.indexed import indexed_functions
from tests.oci import OCI_MANIFEST, digest_of

ROOT = Path(__file__).resolve().parent.parent
BASIC = "Basic " + base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()


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


def test_host_json_serves_v2_at_the_root() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensions"]["http"]["routePrefix"] == ""
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"


@pytest.fixture
async def invoke(settings: Settings) -> AsyncIterator[Any]:
    """Call the indexed HTTP function as the Functions host would."""
    app = create_app(settings)
    function_app_ = http.function_app(app)
    functions = {f.get_function_name(): f for f in function_app_.get_functions()}
    user_function = functions["http_app_func"].get_user_function()

    async def call(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None,
                   params: dict[str, str] | None = None) -> func.HttpResponse:
        headers = {"Authorization": BASIC, **(headers or {})}
        request = func.HttpRequest(method=method, url=f"http://localhost:7071{url}", headers=headers,
                                   params=params or {}, body=body)
        response: func.HttpResponse = await user_function(request, None)
        return response

    yield call
    if function_app_.startup_task_done:
        # Shut the ASGI lifespan down here, as the host does; otherwise the app's finaliser
        # would try to from inside this test's running event loop.
        await function_app_.middleware.notify_shutdown()
        function_app_.startup_task_done = False
    if app.state.registry is not None:
        await app.state.registry.close()


async def test_push_and_pull_through_the_functions_middleware(invoke: Any) -> None:
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer-bytes"
    for data in (config, layer):
        started = await invoke("POST", "/v2/fn/repo/blobs/uploads/")
        assert started.status_code == 202
        location = started.headers["Location"]
        done = await invoke("PUT", f"{location}?digest={digest_of(data)}", body=data)
        assert done.status_code == 201, done.get_body()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest_of(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": digest_of(layer), "size": len(layer)}]}).encode()
    put = await invoke("PUT", "/v2/fn/repo/manifests/v1", body=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201
    assert put.headers["Docker-Content-Digest"] == digest_of(manifest)
    got = await invoke("GET", "/v2/fn%2Frepo/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert got.status_code == 200 and got.get_body() == manifest
    assert got.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    blob = await invoke("GET", f"/v2/fn/repo/blobs/{digest_of(layer)}")
    assert blob.status_code == 307 and "sig=" in blob.headers["Location"]
    tags = await invoke("GET", "/v2/fn/repo/tags/list")
    assert json.loads(tags.get_body()) == {"name": "fn/repo", "tags": ["v1"]}


async def test_errors_keep_their_shape_through_the_middleware(invoke: Any) -> None:
    missing = await invoke("GET", "/v2/fn/none/manifests/latest")
    assert missing.status_code == 404
    assert json.loads(missing.get_body())["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    head = await invoke("HEAD", "/v2/fn/none/manifests/latest")
    assert head.status_code == 404 and head.get_body() == b""
    invalid = await invoke("GET", "/v2/..%2Fetc/tags/list")
    assert json.loads(invalid.get_body())["errors"][0]["code"] == "NAME_INVALID"
