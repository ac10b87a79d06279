"""The tags of a repository only another region holds yet are listed from there: in process with
replication held back, and end to end with ``skopeo inspect`` (which lists tags) against live
regions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Azurite
from tests.images import make_image
from tests.manifest_helpers import error_code
from tests.oci import push_image
from tests.replication.harness import regions_of
from tests.replication.live import held_back, skopeo
from tests.replication.live import live_regions as live


async def test_tags_only_in_west_are_listed_from_east_page_by_page_and_nowhere_is_unknown(azurite: Any) -> None:
    async with regions_of(azurite, auto=False) as regions:
        east, west = regions["east"], regions["west"]
        for tag in ("b", "a", "c"):
            await push_image(west.client, "west/only", tag)
        assert await east.rows("west/only") == {}

        whole = await east.client.get("/v2/west/only/tags/list")
        assert whole.status_code == 200, whole.text
        assert whole.json() == {"name": "west/only", "tags": ["a", "b", "c"]}
        first = await east.client.get("/v2/west/only/tags/list", params={"n": "2"})
        assert first.json()["tags"] == ["a", "b"]
        assert first.headers["link"] == '</v2/west/only/tags/list?last=b&n=2>; rel="next"'
        second = await east.client.get("/v2/west/only/tags/list", params={"n": "2", "last": "b"})
        assert second.status_code == 200 and second.json()["tags"] == ["c"] and "link" not in second.headers
        assert await east.rows("west/only") == {}  # listed from west, nothing copied

        # A repository in no region is still unknown; one east knows lists east's own tags.
        for region in regions.values():
            nowhere = await region.client.get("/v2/no/where/tags/list")
            assert nowhere.status_code == 404 and error_code(nowhere) == "NAME_UNKNOWN"
        await push_image(east.client, "both/app", "east-tag")
        await push_image(west.client, "both/app", "west-tag")
        assert (await east.client.get("/v2/both/app/tags/list")).json()["tags"] == ["east-tag"]
        assert (await east.client.get("/v2/_catalog")).json()["repositories"] == ["both/app"]


# End to end: skopeo inspect (with its tag list) from east of an image pushed only to west.

@pytest.fixture
def live_regions(azurite: Azurite) -> Iterator[dict[str, str]]:
    """East and west as live processes (host:port each), replication held back: their events go
    to an Event Grid endpoint nobody listens on."""
    with live(held_back(azurite)) as hosts:
        yield hosts


@pytest.mark.slow
def test_skopeo_inspect_with_tags_in_east_of_an_image_pushed_only_to_west(
        live_regions: dict[str, str], tmp_path: Path) -> None:
    creds = f"{ADMIN_USER}:{ADMIN_PASSWORD}"
    digest = make_image(tmp_path / "src", [512, 70_000], seed=21)
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{tmp_path / 'src'}:latest",
           f"docker://{live_regions['west']}/geo/inspected:v1")
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", creds,
                                  f"docker://{live_regions['east']}/geo/inspected:v1"))
    assert inspected["Digest"] == digest
    assert inspected["RepoTags"] == ["v1"]
    assert len(inspected["Layers"]) == 2
