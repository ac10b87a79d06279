"""End to end with skopeo and three live regions replicating through their local Event Grid: a push
in any region reaches every other region's own storage, byte for byte; a delete made in one region
and a lock set in another propagate everywhere."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.settings import Settings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Azurite
from tests.images import make_image
from tests.replication.harness import linked_blob_hashes, repository_rows
from tests.replication.live import live_regions, skopeo
from tests.replication.regions import region_settings
from tests.replication.test_bouncing_e2e import blobs_of
from tests.storage import StorageProbe

pytestmark = pytest.mark.slow
LAYERS = [300, 150_000, 2_500_000]
NAMES = ("east", "west", "north")
CREDS = f"{ADMIN_USER}:{ADMIN_PASSWORD}"


@pytest.fixture
def live(azurite: Azurite) -> Iterator[tuple[dict[str, str], dict[str, Settings]]]:
    """Three regions as live processes (host:port each), replicating."""
    settings = region_settings(azurite, NAMES, REGISTRY_OUTBOX_SWEEP_SECONDS="2")
    with live_regions(settings) as hosts:
        yield hosts, settings


async def _rows_everywhere(settings: dict[str, Settings], repository: str) -> dict[str, dict[str, object]]:
    found = {}
    for name, region in settings.items():
        probe = StorageProbe(region)
        try:
            found[name] = {"rows": await repository_rows(probe, repository),
                           "blobs": await linked_blob_hashes(probe, repository)}
        finally:
            await probe.close()
    return found


def _converged(settings: dict[str, Settings], repository: str, check: object, within: float = 60.0) -> dict:
    """Poll every region's own storage until ``check(found)`` holds; returns what was found."""
    deadline = time.monotonic() + within
    while True:
        found = asyncio.run(_rows_everywhere(settings, repository))
        if check(found):  # type: ignore[operator]
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"regions did not converge: {found}")
        time.sleep(0.5)


def test_a_skopeo_push_in_one_region_is_pulled_byte_identical_from_the_others_and_deletes_and_locks_follow(
    live: tuple[dict[str, str], dict[str, Settings]], tmp_path: Path
) -> None:
    hosts, settings = live
    source = tmp_path / "src"
    digest = make_image(source, LAYERS, seed=21)
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", CREDS, f"oci:{source}:latest",
           f"docker://{hosts['west']}/geo/app:v1")

    def everywhere(found: dict) -> bool:
        return all(f"m|{digest}" in f["rows"] and f["rows"].get("t|v1", {}).get("digest") == digest
                   and len(f["blobs"]) == len(LAYERS) + 1 for f in found.values())

    found = _converged(settings, "geo/app", everywhere)
    assert found["east"]["blobs"] == found["west"]["blobs"] == found["north"]["blobs"]
    for digest_of_blob, sha in found["north"]["blobs"].items():
        assert digest_of_blob == sha  # each region's own copy holds the bytes of its digest
    for name in ("east", "north"):
        back = tmp_path / f"back-{name}"
        skopeo("copy", "--src-tls-verify=false", "--src-creds", CREDS, f"docker://{hosts[name]}/geo/app:v1",
               f"oci:{back}:latest")
        assert blobs_of(back) == blobs_of(source)
        raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", CREDS, f"docker://{hosts[name]}/geo/app:v1")
        assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == digest

    # A lock set in north is enforced in east; a delete in east then is refused everywhere ...
    with httpx.Client(auth=(ADMIN_USER, ADMIN_PASSWORD)) as admin:
        locked = admin.patch(f"http://{hosts['north']}/acr/v1/geo/app/_manifests/{digest}",
                             json={"deleteEnabled": False})
        assert locked.status_code == 200, locked.text
        _converged(settings, "geo/app", lambda f: all(
            x["rows"][f"m|{digest}"].get("can_delete") is False for x in f.values()))
        refused = admin.delete(f"http://{hosts['east']}/v2/geo/app/manifests/{digest}")
        assert refused.status_code in (403, 405), refused.text
        # ... until it is lifted (in west), after which a delete in east reaches every region.
        assert admin.patch(f"http://{hosts['west']}/acr/v1/geo/app/_manifests/{digest}",
                           json={"deleteEnabled": True}).status_code == 200
        _converged(settings, "geo/app", lambda f: all(
            x["rows"][f"m|{digest}"].get("can_delete") is not False for x in f.values()))
        assert admin.delete(f"http://{hosts['east']}/v2/geo/app/manifests/{digest}").status_code == 202
    _converged(settings, "geo/app", lambda f: all(
        f"m|{digest}" not in x["rows"] and "t|v1" not in x["rows"] for x in f.values()))
