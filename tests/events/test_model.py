"""ACR event payloads and their Event Grid and CloudEvents envelopes, checked against the schemas."""

from __future__ import annotations

import json

import jsonschema
import pytest

from shared.composition import SUBSCRIPTIONS
from shared.events.envelope import event_of, subject, to_cloud_event, to_envelope, to_event_grid
from shared.events.model import (
    HELM_CONFIG,
    RegistryEvent,
    RequestInfo,
    chart_of,
    delete_event,
    push_event,
    repository_delete_events,
)
from shared.kernel.jobs import Subscription
from shared.settings import Settings, SettingsError
from tests.events.schemas import validate_cloud_event, validate_event_grid, validate_payload

DIGEST = "sha256:" + "ab" * 32
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
REQUEST = RequestInfo("3f2a94c6-0d1e-4b1a-9c55-6b0ad0b7f0e1", "myregistry.azurecr.io", "PUT", "docker/24.0")
REGISTRY_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry"


def test_push_payload_has_acr_fields_in_acr_order() -> None:
    event = push_event("hello-world", DIGEST, DOCKER, 524, "v1", REQUEST)
    payload = event.to_payload()
    validate_payload(payload)
    assert list(payload) == ["id", "timestamp", "action", "target", "request"]
    assert payload["action"] == "push"
    assert payload["target"] == {"mediaType": DOCKER, "size": 524, "digest": DIGEST, "length": 524,
                                 "repository": "hello-world", "tag": "v1"}
    assert payload["request"] == {"id": REQUEST.id, "host": "myregistry.azurecr.io", "method": "PUT",
                                  "useragent": "docker/24.0"}
    assert payload["timestamp"].endswith("Z")


def test_delete_payload_has_only_media_type_digest_and_repository() -> None:
    request = RequestInfo(REQUEST.id, REQUEST.host, "DELETE", "curl/8")
    payload = delete_event("hello-world", DIGEST, DOCKER, request, size=524).to_payload()
    validate_payload(payload)
    assert payload["target"] == {"mediaType": DOCKER, "digest": DIGEST, "repository": "hello-world"}


def test_chart_events_use_acr_chart_media_type_and_carry_no_request() -> None:
    chart = chart_of(HELM_CONFIG, {"org.opencontainers.image.title": "mychart",
                                   "org.opencontainers.image.version": "1.2.3"}, "charts/mychart", "1.2.3")
    assert chart is not None
    pushed = push_event("charts/mychart", DIGEST, "application/vnd.oci.image.manifest.v1+json", 700, "1.2.3",
                        REQUEST, chart).to_payload()
    validate_payload(pushed)
    assert pushed["action"] == "chart_push"
    assert pushed["target"] == {"mediaType": "application/vnd.acr.helm.chart", "size": 700, "digest": DIGEST,
                                "repository": "charts/mychart", "tag": "1.2.3", "name": "mychart",
                                "version": "1.2.3"}
    assert "request" not in pushed
    deleted = delete_event("charts/mychart", DIGEST, "x", REQUEST, 700, chart).to_payload()
    validate_payload(deleted)
    assert deleted["action"] == "chart_delete"


def test_chart_without_annotations_falls_back_to_repository_and_tag() -> None:
    assert chart_of(HELM_CONFIG, {}, "charts/nginx", "0.1.0") == chart_of(
        HELM_CONFIG, {"org.opencontainers.image.title": "nginx", "org.opencontainers.image.version": "0.1.0"},
        "x", None)
    assert chart_of("application/vnd.oci.image.config.v1+json", {}, "charts/nginx", "0.1.0") is None


def test_quarantine_payload_drops_media_type_and_user_agent() -> None:
    payload = push_event("hello-world", DIGEST, DOCKER, 524, "v1", REQUEST, quarantined=True).to_payload()
    validate_payload(payload)
    assert payload["action"] == "quarantine"
    assert "mediaType" not in payload["target"]
    assert "useragent" not in payload["request"]


def test_schema_rejects_a_push_without_length() -> None:
    payload = push_event("hello-world", DIGEST, DOCKER, 524, "v1", REQUEST).to_payload()
    del payload["target"]["length"]
    with pytest.raises(jsonschema.ValidationError):
        validate_payload(payload)


def test_event_grid_envelope_matches_acr_example() -> None:
    event = push_event("samples/nginx", DIGEST, DOCKER, 1153, "latest", REQUEST)
    doc = to_event_grid(event, "westus", REGISTRY_ID)
    validate_event_grid(doc)
    assert doc["subject"] == "samples/nginx:latest"
    assert doc["eventType"] == "Microsoft.ContainerRegistry.ImagePushed"
    assert doc["topic"] == REGISTRY_ID
    assert doc["eventTime"] == event.timestamp
    assert (doc["dataVersion"], doc["metadataVersion"]) == ("2.0", "1")
    assert doc["data"] == {  # ACR's example (ACR-REFERENCE.md), written out
        "id": event.id, "timestamp": event.timestamp, "action": "push", "location": "westus",
        "target": {"mediaType": DOCKER, "size": 1153, "digest": DIGEST, "length": 1153, "repository": "samples/nginx",
                   "tag": "latest"},
        "request": {"id": REQUEST.id, "host": "myregistry.azurecr.io", "method": "PUT", "useragent": "docker/24.0"},
    }
    assert list(doc["data"])[:4] == ["id", "timestamp", "action", "location"]
    assert "topic" not in to_event_grid(event, "westus", None)


def test_delete_subject_is_the_repository_and_digest_push_uses_the_digest() -> None:
    deleted = delete_event("samples/nginx", DIGEST, DOCKER, REQUEST)
    assert subject(deleted) == "samples/nginx"
    assert to_event_grid(deleted, "l", REGISTRY_ID)["eventType"] == "Microsoft.ContainerRegistry.ImageDeleted"
    assert subject(push_event("samples/nginx", DIGEST, DOCKER, 1, None, REQUEST)) == f"samples/nginx@{DIGEST}"


def test_cloud_event_carries_the_same_data() -> None:
    event = push_event("samples/nginx", DIGEST, DOCKER, 1153, "latest", REQUEST)
    doc = to_cloud_event(event, "westus", REGISTRY_ID)
    validate_cloud_event(doc)
    assert (doc["specversion"], doc["source"], doc["type"]) == (
        "1.0", REGISTRY_ID, "Microsoft.ContainerRegistry.ImagePushed")
    assert doc["data"] == to_event_grid(event, "westus", None)["data"]


@pytest.mark.parametrize("schema", ["EventGridSchema", "CloudEventSchemaV1_0"])
def test_an_event_survives_its_envelope(schema: str) -> None:
    event = push_event("a/b", DIGEST, DOCKER, 10, "t", REQUEST)
    envelope = json.loads(json.dumps(to_envelope(event, schema, "westus", REGISTRY_ID)))
    assert event_of(envelope) == event
    assert RegistryEvent.from_payload(event.to_payload()) == event


def test_repository_delete_gives_one_delete_per_manifest() -> None:
    events = repository_delete_events("repo", [(DIGEST, DOCKER), ("sha256:" + "cd" * 32, DOCKER)], REQUEST)
    assert [e.action for e in events] == ["delete", "delete"]
    assert len({e.id for e in events}) == 2


def test_subscription_filters_like_event_grid() -> None:
    subscription = Subscription("s", "f", ("Microsoft.ContainerRegistry.ImagePushed",), "samples/", ":latest")
    assert subscription.matches("Microsoft.ContainerRegistry.ImagePushed", "samples/nginx:latest")
    assert not subscription.matches("Microsoft.ContainerRegistry.ImagePushed", "other/nginx:latest")
    assert not subscription.matches("Microsoft.ContainerRegistry.ImagePushed", "samples/nginx:v1")
    assert not subscription.matches("Microsoft.ContainerRegistry.ImageDeleted", "samples/nginx:latest")
    assert [s.function_name for s in SUBSCRIPTIONS] == ["webhook_fanout"]


def test_events_schema_setting_is_checked() -> None:
    env = {"REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}
    assert Settings.from_env({**env, "REGISTRY_EVENTS_SCHEMA": "CloudEventSchemaV1_0"}).events.schema == (
        "CloudEventSchemaV1_0")
    with pytest.raises(SettingsError, match="REGISTRY_EVENTS_SCHEMA"):
        Settings.from_env({**env, "REGISTRY_EVENTS_SCHEMA": "CustomInputSchema"})
