"""End to end with skopeo and two live regions whose replication is held back (their events go to
an Event Grid endpoint nobody listens on, so no region ever copies anything to the other): a push
whose every request alternates between the regions succeeds, and a pull from one region right
after a push to the other gets every byte."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Azurite
from tests.images import make_image
from tests.replication.live import held_back, live_regions, skopeo
from tests.replication.proxy import RoundRobinProxy

pytestmark = pytest.mark.slow
LAYERS = [512, 200_000, 3_000_000, 9 * 1024 * 1024 + 5]


def blobs_of(layout: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}


@pytest.fixture
def regions(azurite: Azurite) -> Iterator[dict[str, str]]:
    """East and west as live processes (host:port each), replication held back."""
    with live_regions(held_back(azurite)) as hosts:
        yield hosts


def pull_and_compare(host: str, reference: str, digest: str, source: Path, back: Path) -> None:
    """Inspect and copy the image back from ``host``: the digest and every blob as pushed."""
    creds = f"{ADMIN_USER}:{ADMIN_PASSWORD}"
    target = f"docker://{host}/{reference}"
    raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds, target).encode()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    # --no-tags: tag lists are the region's own until replication catches up
    inspected = json.loads(skopeo("inspect", "--no-tags", "--tls-verify=false", "--creds", creds, target))
    assert inspected["Digest"] == digest and len(inspected["Layers"]) == len(LAYERS)
    skopeo("copy", "--src-tls-verify=false", "--src-creds", creds, target, f"oci:{back}:latest")
    assert json.loads((back / "index.json").read_text())["manifests"][0]["digest"] == digest
    pulled = blobs_of(back)
    assert pulled == blobs_of(source)
    for name, data in pulled.items():
        assert hashlib.sha256(data).hexdigest() == name


def test_skopeo_push_alternating_between_regions_succeeds(regions: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "src"
    digest = make_image(source, LAYERS, seed=11)
    creds = f"{ADMIN_USER}:{ADMIN_PASSWORD}"
    with RoundRobinProxy([f"http://{regions['east']}", f"http://{regions['west']}"]) as proxy:
        skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, "--retry-times", "0",
               f"oci:{source}:latest", f"docker://{proxy.host}/geo/bounce:v1")
        forwarded = list(proxy.forwarded)
    # Sessions really bounced: some upload was continued by the region that did not start it.
    owners = {f.location.rsplit("/", 1)[-1]: f.upstream for f in forwarded
              if f.method == "POST" and f.status == 202 and "/blobs/uploads/" in f.location}
    bounced = [f for f in forwarded if f.method in ("PATCH", "PUT") and "/blobs/uploads/" in f.path
               and owners.get(f.path.rsplit("/", 1)[-1], f.upstream) != f.upstream]
    assert owners and bounced, forwarded
    manifest_puts = [f for f in forwarded if f.method == "PUT" and "/manifests/" in f.path]
    assert [f.status for f in manifest_puts] == [201]
    for name in ("east", "west"):
        pull_and_compare(regions[name], "geo/bounce:v1", digest, source, tmp_path / f"back-{name}")


def test_skopeo_pulls_from_west_right_after_a_push_to_east(regions: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "src"
    digest = make_image(source, LAYERS, seed=12)
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"{ADMIN_USER}:{ADMIN_PASSWORD}",
           f"oci:{source}:latest", f"docker://{regions['east']}/geo/fresh:v1")
    pull_and_compare(regions["west"], "geo/fresh:v1", digest, source, tmp_path / "back")
