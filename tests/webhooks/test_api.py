"""Webhook management under /acr/admin/webhooks: create, update, delete, get, list, ping, listEvents, callback."""

from __future__ import annotations

import httpx
import pytest

from scripts.azurite import Azurite
from shared.settings import Settings
from tests.conftest import test_settings
from tests.receiver import Receiver
from tests.storage import StorageProbe


@pytest.fixture
def settings(azurite: Azurite) -> Settings:
    """Webhooks may call the loopback receiver."""
    return test_settings(azurite, REGISTRY_WEBHOOK_ALLOW_PRIVATE="true", REGISTRY_WEBHOOK_RETRY_MS="10")


def _body(receiver: Receiver, **properties: object) -> dict[str, object]:
    return {"location": "local", "properties": {"serviceUri": f"{receiver.url}/hook", "actions": ["push"],
                                                 **properties}}


async def test_webhook_lifecycle(client: httpx.AsyncClient, receiver: Receiver) -> None:
    created = await client.put("/acr/admin/webhooks/hook1", json=_body(
        receiver, customHeaders={"Authorization": "Bearer s3cret"}, scope="apps/web:*"))
    assert created.status_code == 201, created.text
    resource = created.json()
    assert resource["name"] == "hook1"
    assert resource["type"] == "Microsoft.ContainerRegistry/registries/webhooks"
    assert resource["properties"] == {"status": "enabled", "scope": "apps/web:*", "actions": ["push"],
                                      "provisioningState": "Succeeded"}
    assert "serviceUri" not in created.text and "s3cret" not in created.text

    assert (await client.get("/acr/admin/webhooks/hook1")).json() == resource
    config = await client.post("/acr/admin/webhooks/hook1/getCallbackConfig")
    assert config.json() == {"serviceUri": f"{receiver.url}/hook", "customHeaders": {"Authorization": "Bearer s3cret"}}

    patched = await client.patch("/acr/admin/webhooks/hook1", json={"properties": {"status": "disabled",
                                                                                "actions": ["push", "delete"]}})
    assert patched.status_code == 200
    assert patched.json()["properties"]["status"] == "disabled"
    assert patched.json()["properties"]["actions"] == ["push", "delete"]
    assert patched.json()["properties"]["scope"] == "apps/web:*"

    await client.put("/acr/admin/webhooks/hook2", json=_body(receiver))
    assert (await client.put("/acr/admin/webhooks/hook2", json=_body(receiver))).status_code == 200
    listed = (await client.get("/acr/admin/webhooks")).json()["value"]
    assert [w["name"] for w in listed] == ["hook1", "hook2"]

    assert (await client.delete("/acr/admin/webhooks/hook1")).status_code == 204
    missing = await client.get("/acr/admin/webhooks/hook1")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "WEBHOOK_UNKNOWN"
    assert (await client.delete("/acr/admin/webhooks/hook1")).status_code == 404


@pytest.mark.parametrize(("name", "properties"), [
    ("abcd", {}),  # name too short
    ("hook-1", {}),  # not alphanumeric
    ("hook1", {"actions": []}),
    ("hook1", {"actions": ["pull"]}),
    ("hook1", {"serviceUri": "ftp://example.com/x"}),
    ("hook1", {"status": "paused"}),
    ("hook1", {"scope": "a:b:c"}),
    ("hook1", {"customHeaders": {"X-Bad": "a\r\nInjected: 1"}}),
])
async def test_invalid_webhooks_are_refused(client: httpx.AsyncClient, receiver: Receiver, name: str,
                                            properties: dict[str, object]) -> None:
    response = await client.put(f"/acr/admin/webhooks/{name}", json=_body(receiver, **properties))
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "WEBHOOK_INVALID"


async def test_create_requires_service_uri_and_actions(client: httpx.AsyncClient) -> None:
    response = await client.put("/acr/admin/webhooks/hook1", json={"properties": {"actions": ["push"]}})
    assert response.status_code == 400


async def test_ping_posts_with_custom_headers_and_is_listed(client: httpx.AsyncClient, receiver: Receiver) -> None:
    await client.put("/acr/admin/webhooks/pinged", json=_body(receiver, customHeaders={"X-Token": "t1"},
                                                           status="disabled"))
    ping = await client.post("/acr/admin/webhooks/pinged/ping")
    assert ping.status_code == 200
    [call] = receiver.at("/hook")
    assert call.headers["X-Token"] == "t1"
    assert call.json()["action"] == "ping"
    assert call.json()["id"] == ping.json()["id"]
    [event] = (await client.post("/acr/admin/webhooks/pinged/listEvents")).json()["value"]
    assert event["eventRequestMessage"]["method"] == "POST"
    assert event["eventRequestMessage"]["requestUri"] == f"{receiver.url}/hook"
    assert event["eventRequestMessage"]["headers"]["X-Token"] == "t1"
    assert event["eventResponseMessage"]["statusCode"] == 200
    assert event["eventResponseMessage"]["reasonPhrase"] == "OK"
    assert event["eventResponseMessage"]["content"] == "ok"


async def test_list_events_of_unknown_webhook_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.post("/acr/admin/webhooks/nothere/listEvents")).status_code == 404


async def test_dead_letter_routes_answer_404_for_unknown_webhooks_and_events(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    assert (await client.get("/acr/admin/webhooks/nothere/deadLetters")).status_code == 404
    assert (await client.post("/acr/admin/webhooks/nothere/redeliver")).status_code == 404
    await client.put("/acr/admin/webhooks/hook1", json=_body(receiver))
    assert (await client.get("/acr/admin/webhooks/hook1/deadLetters")).json() == {"value": []}
    assert (await client.post("/acr/admin/webhooks/hook1/redeliver")).json() == {"value": []}
    for event in ("7d1a8a5c-3c2e-4f8e-9b9a-0f3c2a1b4c5d", "a%2Fb", "x" * 200):
        missing = await client.post(f"/acr/admin/webhooks/hook1/deadLetters/{event}/redeliver")
        assert missing.status_code == 404
        assert missing.json()["errors"][0]["code"] in ("WEBHOOK_UNKNOWN", "NOT_FOUND")  # a/b: no such route


async def test_a_webhook_of_another_location_is_created_through_that_regions_endpoint(
    client: httpx.AsyncClient, receiver: Receiver, storage: StorageProbe
) -> None:
    body = {**_body(receiver), "location": "westus"}  # this registry (region) is at "local"
    answer = await client.put("/acr/admin/webhooks/hook4", json=body)
    assert answer.status_code == 400 and "location" in answer.text
    assert not await storage.rows("webhooks")
    assert (await client.put("/acr/admin/webhooks/hook4", json={"properties": body["properties"]})).status_code == 201
