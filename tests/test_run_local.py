"""`make run` (scripts/run_local.py): with ``--regions 2`` it starts two answering regions, each
writing to its own storage prefix and listing both in REGISTRY_REGIONS, and SIGTERM or Ctrl-C
stops every process it started."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from azure.storage.blob import ContainerClient

from scripts.azurite import ROOT, Azurite, free_port
from scripts.run_local import local_environment, region_environments
from shared.replication.settings import ReplicationSettings
from tests.conftest import RunningAzurite, unique_prefix

USER = "localregistry"


def test_two_regions_share_the_region_list_and_have_their_own_prefix_and_port() -> None:
    env = local_environment({"REGISTRY_STORAGE_PREFIX": "myreg"})
    east, west = region_environments(env, 2, 8000)
    assert [e["REGISTRY_REGION"] for e in (east, west)] == ["region1", "region2"]
    assert [e["REGISTRY_STORAGE_PREFIX"] for e in (east, west)] == ["myreg", "myreg2"]
    assert east["REGISTRY_REGIONS"] == west["REGISTRY_REGIONS"]
    assert json.loads(east["REGISTRY_REGIONS"]) == [
        {"name": "region1", "connection_string": "UseDevelopmentStorage=true", "prefix": "myreg",
         "endpoint": "http://127.0.0.1:8000"},
        {"name": "region2", "connection_string": "UseDevelopmentStorage=true", "prefix": "myreg2",
         "endpoint": "http://127.0.0.1:8001"},
    ]
    for region in (east, west):
        replication = ReplicationSettings.from_env(region)
        replication.check()
        assert replication.enabled
    assert region_environments(env, 1, 8000) == [env]  # one region: no replication settings


def _ports_in_a_row(count: int) -> int:
    for _ in range(50):
        first = free_port()
        if all(_free(first + i) for i in range(count)):
            return first
    raise RuntimeError("no free ports in a row")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _children(pid: int) -> set[int]:
    """Every process whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until_answering(urls: list[str], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        assert process.poll() is None, f"make run exited: {log.read_text()[-3000:]}"
        try:
            if httpx.get(pending[0] + "/v2/", timeout=1).status_code == 401:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    assert not pending, f"{pending} did not answer: {log.read_text()[-3000:]}"


def _push_blob(url: str, password: str, content: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    with httpx.Client(base_url=url, auth=(USER, password), timeout=30) as client:
        started = client.post("/v2/local/regions/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        done = client.put(location, params={"digest": digest}, content=content,
                          headers={"Content-Type": "application/octet-stream"})
        assert done.status_code == 201, done.text
    return digest


def _stored_hashes(connection: str, prefix: str) -> set[str]:
    """sha256 of every blob in the registry container of ``prefix``."""
    container = ContainerClient.from_connection_string(connection, prefix)
    with container:
        return {"sha256:" + hashlib.sha256(container.download_blob(b.name).readall()).hexdigest()
                for b in container.list_blobs()}


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_make_run_with_two_regions_starts_both_and_stops_every_process(
        azurite: Azurite | RunningAzurite, tmp_path: Path, stop: signal.Signals) -> None:
    port = _ports_in_a_row(2)
    prefix = unique_prefix()
    password = "pw-" + uuid.uuid4().hex
    env = {**os.environ, "REGISTRY_STORAGE_CONNECTION_STRING": azurite.connection_string,
           "REGISTRY_STORAGE_PREFIX": prefix, "REGISTRY_ADMIN_PASSWORD": password, "REGIONS": "2"}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "scripts.run_local", "--port", str(port)],
                                   env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        urls = [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]
        _wait_until_answering(urls, process, log)
        servers = _children(process.pid)
        assert len(servers) == 2, servers  # one uvicorn per region (the test's own Azurite is reused)
        # each region writes to its own storage prefix
        east = _push_blob(urls[0], password, b"pushed in region1 " + uuid.uuid4().bytes)
        west = _push_blob(urls[1], password, b"pushed in region2 " + uuid.uuid4().bytes)
        assert east in _stored_hashes(azurite.connection_string, prefix)
        assert west in _stored_hashes(azurite.connection_string, prefix + "2")
        assert "region2: " + urls[1] in log.read_text()
    finally:
        process.send_signal(stop)
        asked = time.monotonic()
        status = process.wait(timeout=30)
    assert status == 0, log.read_text()[-3000:]
    assert time.monotonic() - asked < 10, "a region did not stop on its own and was killed"
    assert not [pid for pid in servers if _alive(pid)]
    assert _free(port) and _free(port + 1)


def test_readme_two_regions_how_to_uses_the_ports_and_user_make_run_gives() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Two regions locally\n", 1)[1].split("\n## ", 1)[0]
    default = re.search(r"^PORT \?= (\d+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert default is not None
    port = int(default.group(1))
    assert "make run REGIONS=2" in section
    assert f"docker://127.0.0.1:{port}/alpine:latest" in section  # pushed to region1
    assert f"docker://127.0.0.1:{port + 1}/alpine:latest" in section  # pulled from region2
    assert '"localregistry:$PASSWORD"' in section  # the admin user make run enables
    assert "(docs/replication.md)" in section and (ROOT / "docs" / "replication.md").is_file()
    assert readme.index("### Two regions locally") < readme.index("## Log in, push and pull")  # near the top
