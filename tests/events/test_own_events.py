"""This project's own events, which ACR does not send but geo-replication needs: a tag deleted
alone (``untag``) and lock flags changed (``attributes``), each committed in the outbox with the
change; and ``origin``, which Event Grid data carries and webhook payloads never do."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from starlette.applications import Starlette

from scripts.azurite import Azurite
from shared.composition import Registry, open_registry
from shared.events.envelope import event_data, to_event_grid
from shared.events.model import RegistryEvent, Target
from shared.settings import Settings
from shared.storage import layout
from tests.conftest import test_settings
from tests.events.push import push_image
from tests.receiver import Receiver
from tests.storage import StorageProbe


@pytest.fixture
def settings(azurite: Azurite, receiver: Receiver) -> Settings:
    """Publishing to an Event Grid topic that refuses every event, so the outbox keeps them."""
    receiver.statuses["/api/events"] = 400
    return test_settings(azurite, REGISTRY_EVENTGRID_ENDPOINT=f"{receiver.url}/api/events", REGISTRY_EVENTGRID_KEY="k")


@pytest.fixture
async def registry(app: Starlette) -> AsyncIterator[Registry]:
    """The app's registry (opened now)."""
    yield await open_registry(app.state)


async def _events(storage: StorageProbe) -> list[dict[str, object]]:
    return [{**json.loads(str(r["event"])), "partition": r["PartitionKey"]} for r in await storage.rows("repos")
            if str(r["RowKey"]).startswith(layout.OUTBOX)]


async def test_lock_changes_commit_an_attributes_event_and_move_updated(
    client: httpx.AsyncClient, registry: Registry, storage: StorageProbe
) -> None:
    pushed = await push_image(client, "apps/locks", "v1")
    await registry.outbox.settle()
    before = {r["RowKey"]: r for r in await storage.rows("repos")}
    body = {"writeEnabled": False}
    assert (await client.patch("/acr/v1/apps/locks/_tags/v1", json=body)).status_code == 200
    assert (await client.patch(f"/acr/v1/apps/locks/_manifests/{pushed['digest']}", json=body)).status_code == 200
    assert (await client.patch("/acr/v1/apps/locks", json=body)).status_code == 200
    await registry.outbox.settle()
    events = [e for e in await _events(storage) if e["action"] == "attributes"]
    targets = sorted((e["partition"], json.dumps(e["target"], sort_keys=True)) for e in events)
    partition = "apps0locks"  # "/" encodes as "0"
    assert targets == sorted([
        (partition, json.dumps({"digest": pushed["digest"], "repository": "apps/locks", "tag": "v1"}, sort_keys=True)),
        (partition, json.dumps({"digest": pushed["digest"], "repository": "apps/locks"}, sort_keys=True)),
        ("_catalog", json.dumps({"digest": "", "repository": "apps/locks"}, sort_keys=True)),
    ])
    after = {r["RowKey"]: r for r in await storage.rows("repos")}
    for key in ("t|v1", f"m|{pushed['digest']}", partition):
        assert after[key]["can_write"] is False
        assert isinstance(after[key]["updated"], datetime)
    assert after["t|v1"]["updated"] > before["t|v1"]["updated"]


async def test_a_tag_deleted_alone_commits_an_untag_event_not_a_delete(
    client: httpx.AsyncClient, registry: Registry, storage: StorageProbe
) -> None:
    pushed = await push_image(client, "apps/untag", "old")
    await registry.outbox.settle()
    assert (await client.delete("/v2/apps/untag/manifests/old")).status_code == 202
    await registry.outbox.settle()
    actions = sorted(str(e["action"]) for e in await _events(storage))
    assert actions == ["push", "untag"]
    assert not [r for r in await storage.rows("repos") if r["RowKey"] == "t|old"]
    assert (await client.get(f"/v2/apps/untag/manifests/{pushed['digest']}")).status_code == 200


async def test_webhooks_cannot_subscribe_to_this_projects_own_actions(client: httpx.AsyncClient) -> None:
    body = {"location": "local", "properties": {"serviceUri": "https://example.com/hook", "actions": ["untag"]}}
    answer = await client.put("/acr/admin/webhooks/own", json=body)
    assert answer.status_code == 400


def test_origin_travels_in_event_grid_data_but_never_in_a_webhook_payload() -> None:
    event = RegistryEvent("id-1", "2026-11-29T00:00:00Z", "push", Target("a/b", "sha256:" + "0" * 64, "m", 3, "t"),
                          origin="east")
    assert "origin" not in event.to_payload()
    assert event_data(event, "west")["origin"] == "east"
    envelope = to_event_grid(event, "west", None)
    assert RegistryEvent.from_payload(envelope["data"]).origin == "east"
    assert RegistryEvent.from_payload(event.to_payload()).origin is None
