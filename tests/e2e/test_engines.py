"""The container engines as real clients, with authentication on: the Docker CLI against a private
dockerd, buildah, and containerd's ctr. Each logs in with the repository-scoped token, pushes, and
pulls back into an empty store; docker's second push of the same layers mounts them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, LiveRegistry
from tests.images import make_image

_ENGINES = ("dockerd", "docker", "buildah", "containerd", "ctr", "skopeo")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(any(shutil.which(e) is None for e in _ENGINES),
                                                   reason="docker.io, buildah and containerd (.ci/run installs them)")]
_ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


def _run(*command: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, input=stdin,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{' '.join(command[:3])}: {result.stdout}\n{result.stderr}"
    return result.stdout


def _daemon(command: list[str], socket: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{command[0]} did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def dockerd(live_registry: LiveRegistry) -> Iterator[dict[str, str]]:
    """A private dockerd (vfs storage, no networking of its own) that trusts the registry's plain HTTP."""
    root = Path(tempfile.mkdtemp(prefix="dkr-"))
    socket = root / "docker.sock"
    process = _daemon(["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
                       "--pidfile", str(root / "docker.pid"), "-H", f"unix://{socket}", "--storage-driver", "vfs",
                       "--iptables=false", "--ip6tables=false", "--bridge=none",
                       "--insecure-registry", live_registry.host], socket, root / "dockerd.log")
    try:
        yield {"DOCKER_HOST": f"unix://{socket}", "DOCKER_CONFIG": str(root / "config")}
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def containerd() -> Iterator[str]:
    """A private containerd; its socket."""
    root = Path(tempfile.mkdtemp(prefix="ctrd-"))
    socket = root / "containerd.sock"
    process = _daemon(["containerd", "--root", str(root / "root"), "--state", str(root / "state"),
                       "--address", str(socket)], socket, root / "containerd.log")
    try:
        yield str(socket)
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)


def _stored_digest(live_registry: LiveRegistry, repository: str, tag: str) -> str:
    with httpx.Client(base_url=live_registry.url, auth=(ADMIN_USER, ADMIN_PASSWORD)) as admin:
        answer = admin.get(f"/v2/{repository}/manifests/{tag}", headers={"Accept": _ACCEPT})
    assert answer.status_code == 200, answer.text
    return answer.headers["docker-content-digest"]


def test_docker_logs_in_pushes_mounts_and_pulls(live_registry: LiveRegistry, dockerd: dict[str, str],
                                                tmp_path: Path) -> None:
    layout, archive = tmp_path / "layout", tmp_path / "image.tar"
    make_image(layout, [3000, 300_000], tag="v1", seed=21)
    _run("skopeo", "copy", "-q", f"oci:{layout}:v1", f"docker-archive:{archive}:local/engine:v1")
    _run("docker", "load", "-q", "-i", str(archive), env=dockerd)
    image_id = _run("docker", "image", "inspect", "--format", "{{.Id}}", "local/engine:v1", env=dockerd).strip()
    first, second = (f"{live_registry.host}/e2e/scoped/docker{n}:v1" for n in ("", "-copy"))
    _run("docker", "login", "-u", live_registry.token, "--password-stdin", live_registry.host,
         env=dockerd, stdin=live_registry.token_password)
    for target in (first, second):
        _run("docker", "tag", "local/engine:v1", target, env=dockerd)
    pushed = _run("docker", "push", first, env=dockerd)
    digest = _stored_digest(live_registry, "e2e/scoped/docker", "v1")
    assert f"digest: {digest}" in pushed
    assert "Mounted from e2e/scoped/docker" in _run("docker", "push", second, env=dockerd)
    _run("docker", "rmi", first, second, "local/engine:v1", env=dockerd)
    _run("docker", "pull", "-q", first, env=dockerd)
    pulled = json.loads(_run("docker", "image", "inspect", first, env=dockerd))[0]
    assert pulled["Id"] == image_id  # the same config, so the same layers, came back
    assert f"{live_registry.host}/e2e/scoped/docker@{digest}" in pulled["RepoDigests"]


def test_buildah_pushes_and_pulls(live_registry: LiveRegistry, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    make_image(layout, [5000], tag="v1", seed=22)
    target = f"docker://{live_registry.host}/e2e/scoped/buildah:v1"
    creds = f"{live_registry.token}:{live_registry.token_password}"

    def buildah(store: str, *args: str) -> str:
        return _run("buildah", "--root", str(tmp_path / store), "--runroot", tempfile.mkdtemp(prefix="bud-"),
                    "--storage-driver", "vfs", *args)

    image = buildah("push", "pull", "-q", f"oci:{layout}:v1").strip()
    buildah("push", "push", "-q", "--tls-verify=false", "--creds", creds, image, target)
    digest = _stored_digest(live_registry, "e2e/scoped/buildah", "v1")
    pulled = buildah("pull", "pull", "-q", "--tls-verify=false", "--creds", creds, target).strip()
    assert pulled == image  # image ids are config digests: the same config came back
    assert digest.startswith("sha256:")


def test_ctr_pushes_and_pulls(live_registry: LiveRegistry, containerd: str, tmp_path: Path) -> None:
    layout, archive = tmp_path / "layout", tmp_path / "image.tar"
    manifest = make_image(layout, [7000], tag="v1", seed=23)
    _run("skopeo", "copy", "-q", f"oci:{layout}:v1", f"oci-archive:{archive}:v1")
    ref = f"{live_registry.host}/e2e/scoped/ctr:v1"
    user = f"{live_registry.token}:{live_registry.token_password}"
    ctr = ("ctr", "-a", containerd)
    _run(*ctr, "images", "import", "--base-name", f"{live_registry.host}/e2e/scoped/ctr", str(archive))
    _run(*ctr, "images", "push", "--plain-http", "--user", user, ref)
    assert _stored_digest(live_registry, "e2e/scoped/ctr", "v1") == manifest
    _run(*ctr, "images", "rm", ref)
    _run(*ctr, "images", "pull", "--plain-http", "--user", user, ref)
    listed = _run(*ctr, "images", "ls", "-q")
    assert ref in listed.split()
