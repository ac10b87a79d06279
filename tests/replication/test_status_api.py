"""Replication status under /acr/admin/replications: ACR's resource shape, lag per region pair read
from the pending rows, the Prometheus gauges, admin-only access and unknown region names."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from scripts.azurite import Azurite, free_port
from shared.replication import status
from shared.replication.regions import Regions
from shared.replication.status import READ_TIMEOUT
from shared.storage import layout
from tests.auth.helpers import scoped_token
from tests.conftest import test_settings, unique_prefix
from tests.manifest_helpers import TableSpy
from tests.oci import push_image
from tests.replication.status_world import app_client, replicated_app, world_of

RESOURCE_KEYS = {"id", "name", "type", "location", "properties"}
PROPERTY_KEYS = {"provisioningState", "status", "regionEndpointEnabled", "zoneRedundancy", "lag"}
STATUS_KEYS = {"displayStatus", "message", "timestamp"}


async def test_list_shows_every_region_as_an_acr_replication_resource(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        response = await world.clients["west"].get("/acr/admin/replications")
        assert response.status_code == 200, response.text
        listed = response.json()["value"]
        assert [r["name"] for r in listed] == ["east", "west"]  # home first
        for resource in listed:
            name = resource["name"]
            assert set(resource) == RESOURCE_KEYS
            assert resource["type"] == "Microsoft.ContainerRegistry/registries/replications"
            assert resource["location"] == name
            assert resource["id"].endswith(f"/replications/{name}")
            properties = resource["properties"]
            assert set(properties) == PROPERTY_KEYS
            assert properties["provisioningState"] == "Succeeded"
            assert properties["zoneRedundancy"] == "Disabled"
            assert properties["regionEndpointEnabled"] is True
            assert set(properties["status"]) == STATUS_KEYS
            assert properties["status"]["displayStatus"] == "Ready"
            other = "west" if name == "east" else "east"
            assert properties["lag"] == {other: {"pending": 0, "oldestPendingAge": 0}}
            assert datetime.fromisoformat(properties["status"]["timestamp"]).tzinfo is not None

        one = await world.clients["east"].get("/acr/admin/replications/west")
        assert one.status_code == 200
        assert one.json()["name"] == "west"
        assert set(one.json()["properties"]) == PROPERTY_KEYS


async def test_lag_counts_the_pending_rows_of_each_source_region(azurite: Azurite) -> None:
    async with world_of(azurite, ("east", "west", "north")) as world:
        now = datetime.now(UTC)
        for event, age in (("e1", 120), ("e2", 30), ("e3", 5)):
            await world.pending("east", "west", event, now - timedelta(seconds=age))
        await world.pending("north", "west", "n1", now - timedelta(seconds=10))
        await world.pending("east", "north", "e4", now - timedelta(seconds=60))
        await world.pending("east", "north", "e5", now - timedelta(seconds=1))

        listed = {r["name"]: r["properties"] for r in
                  (await world.clients["north"].get("/acr/admin/replications")).json()["value"]}
        west = listed["west"]["lag"]
        assert west["east"]["pending"] == 3 and west["north"]["pending"] == 1
        assert 120 <= west["east"]["oldestPendingAge"] < 130
        assert 10 <= west["north"]["oldestPendingAge"] < 20
        assert listed["west"]["status"]["displayStatus"] == "Syncing"
        assert "3 from east" in listed["west"]["status"]["message"]
        since = datetime.fromisoformat(listed["west"]["status"]["timestamp"])
        assert abs(since - (now - timedelta(seconds=120))) < timedelta(milliseconds=1)  # the oldest change's
        north = listed["north"]["lag"]
        assert north["east"]["pending"] == 2 and 60 <= north["east"]["oldestPendingAge"] < 70
        assert north["west"] == {"pending": 0, "oldestPendingAge": 0}
        assert listed["east"]["lag"] == {"west": {"pending": 0, "oldestPendingAge": 0},
                                         "north": {"pending": 0, "oldestPendingAge": 0}}
        assert listed["east"]["status"]["displayStatus"] == "Ready"

        # The rows are still there: reading the status changed nothing.
        assert set(await world.rows("east", "replication", "q|west")) == {"e1", "e2", "e3"}
        one = (await world.clients["east"].get("/acr/admin/replications/west")).json()
        assert one["properties"]["lag"]["east"]["pending"] == 3


async def test_lag_reads_only_pending_rows_never_repositories(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        for i in range(3):
            await push_image(world.clients["east"], f"team/app{i}", "v1")
        await world.pending("east", "west", "e1", datetime.now(UTC))
        regions = await world.regions_of("east")
        spies: dict[tuple[str, str], TableSpy] = {}
        for name in regions.names:
            storage = await regions.storage(name)
            for table in ("repos", "blobs", "replication"):
                spy = TableSpy(storage.tables[table])  # type: ignore[attr-defined]
                storage.tables[table] = spy  # type: ignore[attr-defined]
                spies[(name, table)] = spy
        response = await world.clients["east"].get("/acr/admin/replications")
        assert response.status_code == 200
        for name in regions.names:
            assert spies[(name, "repos")].calls == {} and spies[(name, "blobs")].calls == {}
        # One query of the pending rows per region, and one of the switches in the home region.
        assert spies[("west", "replication")].calls == {"query_entities": 1}
        assert spies[("east", "replication")].calls == {"query_entities": 2}


async def test_metrics_expose_pending_and_oldest_age_per_region_pair(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        now = datetime.now(UTC)
        await world.pending("east", "west", "e1", now - timedelta(seconds=42))
        await world.pending("east", "west", "e2", now)
        response = await world.clients["west"].get("/acr/admin/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = dict(re.findall(r"^(registry_\S+) (\S+)$", response.text, re.MULTILINE))
        assert samples['registry_replication_pending{source="east",target="west"}'] == "2"
        assert samples['registry_replication_pending{source="west",target="east"}'] == "0"
        age = float(samples['registry_replication_oldest_pending_seconds{source="east",target="west"}'])
        assert 42 <= age < 52
        assert samples['registry_replication_region_up{region="west"}'] == "1"
        assert samples['registry_replication_endpoint_enabled{region="east"}'] == "1"
        assert "# TYPE registry_replication_pending gauge" in response.text


async def test_replication_routes_are_admin_only(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        admin = world.clients["west"]
        password, = await scoped_token(admin, "reader", ["repositories/*/content/read"])
        for path, method in (("/acr/admin/replications", "GET"), ("/acr/admin/replications/west", "GET"),
                             ("/acr/admin/replications/west", "PATCH"), ("/acr/admin/metrics", "GET"),
                             ("/acr/admin/replications/images/team/app/v1", "GET")):
            body = {"properties": {"regionEndpointEnabled": False}} if method == "PATCH" else None
            anonymous = await admin.request(method, path, json=body, auth=None)
            assert anonymous.status_code == 401, (path, anonymous.text)
            reader = await admin.request(method, path, json=body, auth=("reader", password))
            assert reader.status_code == 403, (path, reader.text)
            assert reader.json()["errors"][0]["code"] == "DENIED"
        assert await world.rows("east", "replication", layout.REGIONS_PARTITION) == {}


@pytest.mark.parametrize("name", ["nowhere", "WEST", "west-", "a" * 300, "%C3%A9t%C3%A9", "we%00st", "_regions",
                                  "q%7Cwest"])
async def test_unknown_or_malformed_region_names_answer_404(azurite: Azurite, name: str) -> None:
    async with world_of(azurite) as world:
        for method in ("GET", "PATCH"):
            body = {"properties": {"regionEndpointEnabled": False}} if method == "PATCH" else None
            response = await world.clients["east"].request(method, f"/acr/admin/replications/{name}", json=body)
            assert response.status_code == 404, response.text
            error = response.json()["errors"][0]
            assert error["code"] == "NOT_FOUND"
            assert error["detail"]["resource"] == "replication"
        assert await world.rows("east", "replication", layout.REGIONS_PARTITION) == {}


async def test_unknown_region_is_unknown_to_the_regions_predicate(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        await world.clients["east"].get("/v2/")
        regions: Regions = await world.regions_of("east")
        assert await regions.is_enabled("west") is True
        with pytest.raises(LookupError):
            await regions.is_enabled("nowhere")


async def test_a_region_whose_storage_does_not_answer_is_unavailable(azurite: Azurite) -> None:
    names = ("east", "west")
    prefixes = {name: unique_prefix() for name in names}
    dead = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={'A' * 88};"
            f"BlobEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;"
            f"TableEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;"
            f"QueueEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;")
    regions = [{"name": n, "connection_string": azurite.connection_string, "prefix": prefixes[n]} for n in names]
    regions.append({"name": "north", "connection_string": dead, "prefix": "tnorth"})
    settings = test_settings(azurite, REGISTRY_STORAGE_PREFIX=prefixes["east"], REGISTRY_REGION="east",
                             REGISTRY_REGIONS=json.dumps(regions))
    async with app_client(settings, app=replicated_app(settings)) as (_, client):
        started = time.monotonic()
        response = await client.get("/acr/admin/replications")
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text
        listed = {r["name"]: r["properties"] for r in response.json()["value"]}
        assert listed["north"]["status"]["displayStatus"] == "Unavailable"
        assert listed["east"]["lag"]["north"] is None
        assert listed["east"]["status"]["displayStatus"] == "Ready"
        assert "no figures from north" in listed["east"]["status"]["message"]
        assert elapsed < READ_TIMEOUT + 5
        metrics = (await client.get("/acr/admin/metrics")).text
        assert 'registry_replication_region_up{region="north"} 0' in metrics
        assert 'source="north"' not in metrics
        assert 'registry_replication_pending{source="east",target="north"} 0' in metrics


async def test_a_backlog_past_the_count_limit_is_shown_as_a_lower_bound(azurite: Azurite,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status, "COUNT_LIMIT", 3)
    async with world_of(azurite) as world:
        now = datetime.now(UTC)
        for i in range(5):
            await world.pending("east", "west", f"e{i}", now - timedelta(seconds=i))
        shown = (await world.clients["west"].get("/acr/admin/replications/west")).json()["properties"]
        assert shown["lag"]["east"]["pending"] == 3 and shown["lag"]["east"]["capped"] is True
        assert shown["status"]["displayStatus"] == "Syncing"
