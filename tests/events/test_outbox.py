"""The outbox: events commit with the manifest, are published after it, and are republished if left."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette

from scripts.azurite import Azurite
from shared.composition import Registry, open_registry
from shared.events.model import HELM_CONFIG
from shared.settings import Settings
from shared.storage import layout
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, test_settings
from tests.events.push import push_image
from tests.events.schemas import validate_event_grid
from tests.receiver import Receiver
from tests.storage import StorageProbe


@pytest.fixture
def settings(azurite: Azurite, receiver: Receiver) -> Settings:
    """Publishing to a (local) Event Grid topic that refuses events until a test says otherwise."""
    receiver.statuses["/api/events"] = 400
    return test_settings(azurite, REGISTRY_EVENTGRID_ENDPOINT=f"{receiver.url}/api/events", REGISTRY_EVENTGRID_KEY="k")


@pytest.fixture
async def registry(app: Starlette) -> AsyncIterator[Registry]:
    """The app's registry (opened now)."""
    yield await open_registry(app.state)


async def _outbox(storage: StorageProbe) -> list[dict[str, object]]:
    return [r for r in await storage.rows("repos") if str(r["RowKey"]).startswith(layout.OUTBOX)]


async def test_push_event_is_in_the_outbox_row_of_the_manifest_partition(
    client: httpx.AsyncClient, registry: Registry, storage: StorageProbe, receiver: Receiver
) -> None:
    pushed = await push_image(client, "apps/web", "v1")
    await registry.outbox.settle()
    assert len(receiver.at("/api/events")) == 1  # tried once, refused: the row stays
    [row] = await _outbox(storage)
    assert row["PartitionKey"] == layout.encode_repository("apps/web")
    event = json.loads(str(row["event"]))
    assert row["RowKey"] == layout.outbox_key(event["id"])
    assert event["action"] == "push"
    assert event["target"] == {"mediaType": pushed["mediaType"], "size": pushed["size"], "digest": pushed["digest"],
                               "length": pushed["size"], "repository": "apps/web", "tag": "v1"}
    assert event["request"]["method"] == "PUT"
    assert event["request"]["host"] == "registry.test"
    assert event["request"]["useragent"] == "events-test/1.0"

    del receiver.statuses["/api/events"]
    assert await registry.outbox.republish(timedelta(0)) == 1
    assert await _outbox(storage) == []
    [sent] = receiver.at("/api/events")[-1].json()
    validate_event_grid(sent)
    assert sent["id"] == event["id"]


async def test_published_events_leave_no_outbox_row(
    client: httpx.AsyncClient, registry: Registry, storage: StorageProbe, receiver: Receiver
) -> None:
    del receiver.statuses["/api/events"]
    await push_image(client, "apps/web", "v1")
    await registry.outbox.settle()
    assert len(receiver.at("/api/events")) == 1
    assert await _outbox(storage) == []


async def test_republish_leaves_young_rows_to_their_request(
    client: httpx.AsyncClient, registry: Registry, storage: StorageProbe
) -> None:
    await push_image(client, "apps/web", "v1")
    await registry.outbox.settle()
    assert await registry.outbox.republish(timedelta(minutes=5)) == 0
    assert len(await _outbox(storage)) == 1


async def test_tag_move_is_a_push_and_only_a_manifest_delete_is_a_delete(
    client: httpx.AsyncClient, registry: Registry, storage: StorageProbe
) -> None:
    first = await push_image(client, "apps/api", "stable", seed=1)
    second = await push_image(client, "apps/api", "stable", seed=2)  # moves the tag
    await client.put(f"/v2/apps/api/manifests/{first['digest']}",
                     content=(await client.get(f"/v2/apps/api/manifests/{first['digest']}")).content,
                     headers={"Content-Type": first["mediaType"]})  # by digest: a push without tag
    await registry.outbox.settle()
    events = [json.loads(str(r["event"])) for r in await _outbox(storage)]
    assert sorted((e["action"], e["target"].get("tag", "")) for e in events) == [
        ("push", ""), ("push", "stable"), ("push", "stable")]

    assert (await client.delete("/v2/apps/api/manifests/stable")).status_code == 202  # tag only
    await registry.outbox.settle()
    after_untag = [json.loads(str(r["event"])) for r in await _outbox(storage)]
    untags = [e for e in after_untag if e["action"] == "untag"]  # this project's own event, not ACR's delete
    assert len(after_untag) == 4 and len(untags) == 1
    assert untags[0]["target"] == {"digest": second["digest"], "repository": "apps/api",
                                   "tag": "stable"}
    assert (await client.delete(f"/v2/apps/api/manifests/{first['digest']}")).status_code == 202
    await registry.outbox.settle()
    deletes = [json.loads(str(r["event"])) for r in await _outbox(storage)]
    deletes = [e for e in deletes if e["action"] == "delete"]
    assert len(deletes) == 1
    assert deletes[0]["target"] == {"mediaType": first["mediaType"], "digest": first["digest"],
                                    "repository": "apps/api"}
    assert deletes[0]["request"]["method"] == "DELETE"


async def test_helm_chart_push_is_a_chart_push(
    client: httpx.AsyncClient, registry: Registry, storage: StorageProbe
) -> None:
    pushed = await push_image(client, "charts/web", "0.3.0", config_media_type=HELM_CONFIG,
                              annotations={"org.opencontainers.image.title": "web",
                                           "org.opencontainers.image.version": "0.3.0"})
    await registry.outbox.settle()
    await client.delete(f"/v2/charts/web/manifests/{pushed['digest']}")
    await registry.outbox.settle()
    events = {e["action"]: e for e in (json.loads(str(r["event"])) for r in await _outbox(storage))}
    assert set(events) == {"chart_push", "chart_delete"}
    assert events["chart_push"]["target"]["name"] == "web"
    assert events["chart_delete"]["target"]["version"] == "0.3.0"


async def test_settings_without_events_still_push(azurite: Azurite, receiver: Receiver) -> None:
    """A publisher that cannot be reached never fails a push: the event waits in the outbox."""
    settings = test_settings(azurite, REGISTRY_EVENTGRID_ENDPOINT="http://127.0.0.1:9/api/events",
                             REGISTRY_EVENTGRID_KEY="k")
    from shared.composition import create_app

    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r.test",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        await push_image(http, "a/b", "t")
    registry = await open_registry(app.state)
    await registry.outbox.settle()
    probe = StorageProbe(settings)
    try:
        assert len(await _outbox(probe)) == 1
    finally:
        await probe.close()
        await registry.close()
