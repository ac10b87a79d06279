"""The region endpoint switch: PATCH regionEndpointEnabled, kept in the home region's table; a
disabled region answers its registry API with 503 and Retry-After until it is enabled again; the
home region cannot be disabled; the switch is read from a short cache, and an unreadable home
region leaves the last known switches in force."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx

from scripts.azurite import Azurite, free_port
from shared.replication.switches import CACHE_SECONDS, READ_TIMEOUT, EndpointSwitches
from shared.storage import layout
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from shared.storage.interfaces import Storage
from tests.clock import ManualClock
from tests.manifest_helpers import TableSpy
from tests.oci import push_image
from tests.replication.status_world import world_of

DISABLE = {"properties": {"regionEndpointEnabled": False}}
ENABLE = {"properties": {"regionEndpointEnabled": True}}


async def test_a_disabled_region_answers_503_until_it_is_enabled_again(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        west, east = world.clients["west"], world.clients["east"]
        digest, raw = await push_image(west, "team/app", "v1")
        probe = httpx.AsyncClient(transport=west._transport, base_url="http://registry.test")  # anonymous
        healthy = await probe.get("/acr/health")
        assert healthy.status_code == 200 and healthy.json() == {"region": "west", "status": "serving"}

        patched = await west.patch("/acr/admin/replications/west", json=DISABLE)
        assert patched.status_code == 200, patched.text
        assert patched.json()["properties"]["regionEndpointEnabled"] is False
        assert patched.json()["properties"]["status"]["displayStatus"] == "Disabled"
        # Stored in the home region's table, nowhere else.
        switches = await world.rows("east", "replication", layout.REGIONS_PARTITION)
        assert set(switches) == {"west"} and switches["west"]["endpoint_enabled"] is False
        assert await world.rows("west", "replication", layout.REGIONS_PARTITION) == {}

        refused = await west.get("/v2/team/app/manifests/v1")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "30"
        error = refused.json()["errors"][0]
        assert error["code"] == "UNAVAILABLE"
        assert "region west" in error["message"] and "disabled" in error["message"]
        assert error["detail"] == {"region": "west", "enabledRegions": ["east"]}
        assert (await west.get("/v2/")).status_code == 503
        assert (await probe.head("/acr/health")).status_code == 503  # what the front door's probe sees
        head = await west.head(f"/v2/team/app/blobs/{digest}")
        assert head.status_code == 503 and head.content == b""
        assert (await west.post("/v2/team/other/blobs/uploads/")).status_code == 503
        assert (await west.get("/acr/v1/team/app/_tags")).status_code == 503
        assert (await west.get("/acr/admin/replications/west")).status_code == 200  # management still served
        assert (await east.get("/v2/")).status_code == 200  # the other region serves

        listed = {r["name"]: r for r in (await east.get("/acr/admin/replications")).json()["value"]}
        assert listed["west"]["properties"]["regionEndpointEnabled"] is False
        assert listed["east"]["properties"]["regionEndpointEnabled"] is True

        enabled = await west.patch("/acr/admin/replications/west", json=ENABLE)
        assert enabled.status_code == 200
        assert enabled.json()["properties"]["status"]["displayStatus"] == "Ready"
        served = await west.get("/v2/team/app/manifests/v1",
                                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert served.status_code == 200 and served.content == raw
        assert (await probe.head("/acr/health")).status_code == 200
        await probe.aclose()
        switches = await world.rows("east", "replication", layout.REGIONS_PARTITION)
        assert switches["west"]["endpoint_enabled"] is True


async def test_the_home_region_cannot_be_disabled(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        for client in world.clients.values():
            refused = await client.patch("/acr/admin/replications/east", json=DISABLE)
            assert refused.status_code == 400, refused.text
            assert refused.json()["errors"][0]["code"] == "INVALID_REQUEST"
            assert "home region" in refused.json()["errors"][0]["message"]
        assert await world.rows("east", "replication", layout.REGIONS_PARTITION) == {}
        assert (await world.clients["east"].get("/v2/")).status_code == 200
        assert (await world.clients["east"].patch("/acr/admin/replications/east", json=ENABLE)).status_code == 200


async def test_malformed_switch_bodies_change_nothing(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        for body in ({"properties": {"regionEndpointEnabled": "false"}}, {"properties": {"zoneRedundancy": "x"}},
                     {"properties": []}, [], {"properties": {"regionEndpointEnabled": 0}}):
            response = await world.clients["east"].patch("/acr/admin/replications/west", json=body)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["errors"][0]["code"] == "INVALID_REQUEST"
        garbage = await world.clients["east"].patch("/acr/admin/replications/west", content=b"{nope")
        assert garbage.status_code == 400
        assert await world.rows("east", "replication", layout.REGIONS_PARTITION) == {}


async def test_requests_read_the_switch_from_the_cache_not_storage(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        west = world.clients["west"]
        regions = await world.regions_of("west")
        clock = ManualClock()  # time stands still: the cache never expires during the requests
        regions.switches = EndpointSwitches(lambda: regions.storage("east"), clock=lambda: clock.now.timestamp())
        home = await regions.storage("east")
        spy = TableSpy(home.tables["replication"])  # type: ignore[attr-defined]
        home.tables["replication"] = spy  # type: ignore[attr-defined]
        for _ in range(20):
            assert (await west.get("/v2/")).status_code == 200
        assert spy.calls == {"query_entities": 1}  # the first request read the switches, once
        clock.advance(CACHE_SECONDS)
        assert (await west.get("/v2/")).status_code == 200
        assert spy.calls == {"query_entities": 2}


async def test_a_switch_set_elsewhere_is_seen_once_the_cache_expires(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        regions = await world.regions_of("west")
        clock = ManualClock()
        seconds = lambda: clock.now.timestamp()  # noqa: E731
        here = EndpointSwitches(lambda: regions.storage("east"), clock=seconds)
        elsewhere = EndpointSwitches(lambda: regions.storage("east"), clock=seconds)
        assert await here.is_enabled("west") is True
        await elsewhere.set("west", False)
        clock.advance(CACHE_SECONDS - 0.5)
        assert await here.is_enabled("west") is True  # still the cached switch
        clock.advance(1)
        assert await here.is_enabled("west") is False
        assert await elsewhere.is_enabled("west") is False  # the writer sees its own change at once


async def test_an_unreadable_home_region_keeps_the_last_known_switches(azurite: Azurite) -> None:
    async with world_of(azurite) as world:
        regions = await world.regions_of("west")
        dead = StorageClients(StorageAccount(prefix="tdead", connection_string=(
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={'A' * 88};"
            f"TableEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;"
            f"BlobEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;")), (layout.REPLICATION,))
        home: list[Callable[[], Awaitable[Storage]]] = [lambda: regions.storage("east")]
        clock = ManualClock()
        switches = EndpointSwitches(lambda: home[0](), clock=lambda: clock.now.timestamp())
        try:
            await switches.set("west", False)
            home[0] = _returning(dead)
            clock.advance(CACHE_SECONDS + 1)
            started = time.monotonic()
            assert await switches.is_enabled("west") is False  # the last known switch
            assert await switches.is_enabled("north") is True  # never switched: enabled
            assert time.monotonic() - started < READ_TIMEOUT + 1
            again = time.monotonic()
            assert await switches.is_enabled("west") is False
            assert time.monotonic() - again < 0.1  # the failed read is not retried before the cache expires
        finally:
            await dead.close()


def _returning(storage: Storage) -> Callable[[], Awaitable[Storage]]:
    async def provide() -> Storage:
        return storage
    return provide
