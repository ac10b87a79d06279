"""The Azure path: ``azure-eventgrid``'s client publishing to a local endpoint that speaks Event Grid's API."""

from __future__ import annotations

import pytest

from shared.events.model import RequestInfo, push_event
from shared.events.publisher import EventGridPublisher
from shared.settings import Settings
from tests.events.schemas import validate_cloud_event, validate_event_grid
from tests.receiver import Receiver

DIGEST = "sha256:" + "ef" * 32
REQUEST = RequestInfo("3f2a94c6-0d1e-4b1a-9c55-6b0ad0b7f0e1", "myregistry.azurecr.io", "PUT", "skopeo/1.13")
TOPIC_KEY = "bG9jYWwtdG9waWMta2V5"


def _settings(receiver: Receiver, schema: str) -> Settings:
    return Settings.from_env({
        "REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "REGISTRY_EVENTGRID_ENDPOINT": f"{receiver.url}/api/events", "REGISTRY_EVENTGRID_KEY": TOPIC_KEY,
        "REGISTRY_EVENTS_SCHEMA": schema, "REGISTRY_LOCATION": "westeurope",
    })


async def test_event_grid_schema_publish_sends_key_header_and_events(receiver: Receiver) -> None:
    publisher = EventGridPublisher(_settings(receiver, "EventGridSchema"))
    event = push_event("samples/nginx", DIGEST, "application/vnd.oci.image.manifest.v1+json", 1153, "latest",
                       REQUEST)
    try:
        await publisher.publish([event])
    finally:
        await publisher.close()
    [request] = receiver.at("/api/events")
    assert request.headers["aeg-sas-key"] == TOPIC_KEY
    assert "api-version" in request.query
    assert request.headers["Content-Type"].startswith("application/json")
    [sent] = request.json()
    validate_event_grid(sent)
    assert sent["id"] == event.id
    assert sent["subject"] == "samples/nginx:latest"
    assert sent["eventType"] == "Microsoft.ContainerRegistry.ImagePushed"
    assert sent["dataVersion"] == "2.0"
    assert sent["data"] == {
        "id": event.id, "timestamp": event.timestamp, "action": "push", "location": "westeurope",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1153, "digest": DIGEST,
                   "length": 1153, "repository": "samples/nginx", "tag": "latest"},
        "request": {"id": REQUEST.id, "host": "myregistry.azurecr.io", "method": "PUT", "useragent": "skopeo/1.13"},
    }


async def test_cloud_event_schema_publish_sends_a_cloudevents_batch(receiver: Receiver) -> None:
    settings = _settings(receiver, "CloudEventSchemaV1_0")
    publisher = EventGridPublisher(settings)
    event = push_event("samples/nginx", DIGEST, "application/vnd.oci.image.manifest.v1+json", 1153, "v2", REQUEST)
    try:
        await publisher.publish([event])
    finally:
        await publisher.close()
    [request] = receiver.at("/api/events")
    assert request.headers["aeg-sas-key"] == TOPIC_KEY
    assert request.headers["Content-Type"].startswith("application/cloudevents-batch+json")
    [sent] = request.json()
    validate_cloud_event(sent)
    assert (sent["id"], sent["source"], sent["subject"]) == (event.id, settings.registry.resource_id,
                                                             "samples/nginx:v2")
    assert sent["data"]["target"]["tag"] == "v2"


async def test_a_refused_publish_raises(receiver: Receiver) -> None:
    receiver.statuses["/api/events"] = 401
    publisher = EventGridPublisher(_settings(receiver, "EventGridSchema"))
    event = push_event("r", DIGEST, "application/vnd.oci.image.manifest.v1+json", 1, "t", REQUEST)
    try:
        with pytest.raises(Exception, match=r"401|Unauthorized|ClientAuthentication"):
            await publisher.publish([event])
    finally:
        await publisher.close()


async def test_without_a_key_the_publisher_uses_default_azure_credential() -> None:
    from azure.identity.aio import DefaultAzureCredential

    settings = Settings.from_env({"REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
                                  "REGISTRY_EVENTGRID_ENDPOINT": "https://topic.westus-1.eventgrid.azure.net/api/events"})
    publisher = EventGridPublisher(settings)
    try:
        assert isinstance(publisher._credential, DefaultAzureCredential)
    finally:
        await publisher.close()
