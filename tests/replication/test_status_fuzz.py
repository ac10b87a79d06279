"""The replication admin API under arbitrary input: whatever the region name, PATCH body, image
repository and reference, it never answers 500, and a refused PATCH changes no switch."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.azurite import Azurite
from shared.storage import layout
from tests.replication.status_world import World, world_of

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=20), inner, max_size=3),
    max_leaves=8)
_BODY = (_JSON.map(lambda v: json.dumps(v).encode())
         | st.fixed_dictionaries({"properties": st.dictionaries(st.sampled_from(
             ["regionEndpointEnabled", "status", "x"]), _JSON, max_size=2)}).map(lambda v: json.dumps(v).encode())
         | st.binary(max_size=40))
_NAME = st.sampled_from(["east", "west", "East", "north", "_regions", "q|west", "..", ""]) | st.text(max_size=30)


@pytest.fixture
async def world(azurite: Azurite) -> AsyncIterator[World]:
    """East (home) and west, replication held back."""
    async with world_of(azurite) as opened:
        yield opened


async def _switches(world: World) -> dict[str, Any]:
    return await world.rows("east", "replication", layout.REGIONS_PARTITION)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_the_replication_api_never_answers_500_and_a_refused_patch_changes_nothing(
    world: World, data: st.DataObject
) -> None:
    client = world.clients[data.draw(st.sampled_from(["east", "west"]))]
    region = quote(data.draw(_NAME), safe="")
    before = await _switches(world)
    patched = await client.patch(f"/acr/admin/replications/{region}", content=data.draw(_BODY),
                                 headers={"Content-Type": "application/json"})
    assert patched.status_code < 500, patched.text
    if patched.status_code != 200:
        assert await _switches(world) == before
    else:  # accepted: the named region's switch is the body's, and it is a known region
        assert patched.json()["name"] in ("east", "west")
    for path in (f"/acr/admin/replications/{region}",
                 f"/acr/admin/replications/images/{quote(data.draw(_NAME))}/{quote(data.draw(_NAME), safe='')}"):
        answer = await client.get(path)
        assert answer.status_code < 500, (path, answer.text)
    if any(s.get("endpoint_enabled") is False for s in (await _switches(world)).values()):
        await world.clients["east"].patch("/acr/admin/replications/west",
                                          json={"properties": {"regionEndpointEnabled": True}})
