"""podman as a real client: login, push and pull with authentication on (as root, vfs storage
in a folder of the test's own, so it needs no daemon, no overlay and no cgroups)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, LiveRegistry
from tests.images import make_image

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("podman") is None,
                                                   reason="podman is not installed (.ci/run installs it)")]


_RUNROOTS: dict[Path, str] = {}


def _podman(root: Path, *args: str) -> str:
    # podman refuses a runroot path longer than 50 characters, which pytest's folders are
    runroot = _RUNROOTS.setdefault(root, tempfile.mkdtemp(prefix="podman-"))
    command = ["podman", "--root", str(root / "storage"), "--runroot", runroot,
               "--storage-driver", "vfs", "--events-backend", "file", "--cgroup-manager", "cgroupfs", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args[:2])}: {result.stderr}"
    return result.stdout


@pytest.fixture(autouse=True)
def _remove_runroots() -> Iterator[None]:
    yield
    while _RUNROOTS:
        shutil.rmtree(_RUNROOTS.popitem()[1], ignore_errors=True)


def test_podman_logs_in_pushes_and_pulls_an_image(live_registry: LiveRegistry, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    make_image(layout, [4000, 250_000], tag="v1", seed=7)
    diff_ids = _diff_ids(layout)
    authfile = str(tmp_path / "auth.json")
    target = f"{live_registry.host}/e2e/scoped/podman:v1"
    _podman(tmp_path, "login", "--tls-verify=false", "--authfile", authfile,
            "-u", live_registry.token, "-p", live_registry.token_password, live_registry.host)
    _podman(tmp_path, "pull", "-q", f"oci:{layout}:v1")
    _podman(tmp_path, "tag", _image_id(tmp_path), target)
    _podman(tmp_path, "push", "-q", "--tls-verify=false", "--authfile", authfile, target)
    with httpx.Client(base_url=live_registry.url, auth=(ADMIN_USER, ADMIN_PASSWORD)) as admin:
        assert admin.get("/v2/e2e/scoped/podman/tags/list").json()["tags"] == ["v1"]
        stored = admin.get("/v2/e2e/scoped/podman/manifests/v1", headers={"Accept": ", ".join([
            "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"])})
        assert stored.status_code == 200
        config = admin.get(f"/v2/e2e/scoped/podman/blobs/{stored.json()['config']['digest']}",
                           follow_redirects=True)
        assert json.loads(config.content)["rootfs"]["diff_ids"] == diff_ids

    clean = tmp_path / "clean"  # a second, empty store: the pull must come from the registry
    _podman(clean, "pull", "-q", "--tls-verify=false", "--authfile", authfile, target)
    inspected = json.loads(_podman(clean, "image", "inspect", target))[0]
    assert inspected["RootFS"]["Layers"] == diff_ids
    assert inspected["Digest"] == stored.headers["docker-content-digest"]


def _image_id(root: Path) -> str:
    return _podman(root, "images", "-q", "--no-trunc").split()[0]


def _diff_ids(layout: Path) -> list[str]:
    index = json.loads((layout / "index.json").read_text())
    manifest = _blob(layout, index["manifests"][0]["digest"])
    config = _blob(layout, manifest["config"]["digest"])
    diff_ids: list[str] = config["rootfs"]["diff_ids"]
    return diff_ids


def _blob(layout: Path, digest: str) -> Any:
    return json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_text())
