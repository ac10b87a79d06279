"""Every event carries the request that caused it, whichever API caused it: the request context is
set once per request, and services read it when they build events."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from scripts.azurite import Azurite
from shared.settings import Settings
from shared.storage import layout
from tests.conftest import test_settings
from tests.events.push import push_image
from tests.receiver import Receiver
from tests.storage import StorageProbe

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def settings(azurite: Azurite, receiver: Receiver) -> Settings:
    """Publishing to an Event Grid topic that refuses every event, so each stays in the outbox."""
    receiver.statuses["/api/events"] = 400
    return test_settings(azurite, REGISTRY_EVENTGRID_ENDPOINT=f"{receiver.url}/api/events",
                         REGISTRY_EVENTGRID_KEY="k")


async def _outbox_events(app: Starlette, storage: StorageProbe) -> list[dict[str, Any]]:
    await app.state.registry.outbox.settle()
    rows = [r for r in await storage.rows("repos") if str(r["RowKey"]).startswith(layout.OUTBOX)]
    return [json.loads(str(r["event"])) for r in rows]


async def test_a_manifest_deleted_through_acr_v1_carries_the_request(
    app: Starlette, client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    pushed = await push_image(client, "apps/web", "v1")
    deleted = await client.delete(f"/acr/v1/apps/web/_manifests/{pushed['digest']}",
                                  headers={"User-Agent": "azsdk-python-containerregistry/1.2.0"})
    assert deleted.status_code == 202
    [delete] = [e for e in await _outbox_events(app, storage) if e["action"] == "delete"]
    assert delete["target"] == {"mediaType": pushed["mediaType"], "digest": pushed["digest"],
                                "repository": "apps/web"}
    assert delete["request"]["method"] == "DELETE"
    assert delete["request"]["host"] == "registry.test"
    assert delete["request"]["useragent"] == "azsdk-python-containerregistry/1.2.0"
    assert _UUID.fullmatch(delete["request"]["id"])


async def test_a_repository_deleted_through_acr_v1_gives_deletes_that_carry_the_request(
    app: Starlette, client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    first = await push_image(client, "apps/api", "v1", seed=1)
    second = await push_image(client, "apps/api", "v2", seed=2)
    deleted = await client.delete("/acr/v1/apps/api", headers={"User-Agent": "az-cli/2.60"})
    assert deleted.status_code == 202
    deletes = [e for e in await _outbox_events(app, storage) if e["action"] == "delete"]
    assert sorted(e["target"]["digest"] for e in deletes) == sorted([first["digest"], second["digest"]])
    assert {(e["request"]["method"], e["request"]["host"], e["request"]["useragent"]) for e in deletes} == {
        ("DELETE", "registry.test", "az-cli/2.60")}
    assert len({e["request"]["id"] for e in deletes}) == 1  # one request caused both


async def test_each_request_carries_its_own_id_and_the_one_it_answers_with(
    app: Starlette, client: httpx.AsyncClient, storage: StorageProbe
) -> None:
    pushed = await push_image(client, "apps/ids", "v1")
    deleted = await client.delete(f"/v2/apps/ids/manifests/{pushed['digest']}")
    [push] = [e for e in await _outbox_events(app, storage) if e["action"] == "push"]
    [delete] = [e for e in await _outbox_events(app, storage) if e["action"] == "delete"]
    assert push["request"]["id"] != delete["request"]["id"]
    assert delete["request"]["id"].replace("-", "") == deleted.headers["x-request-id"]

