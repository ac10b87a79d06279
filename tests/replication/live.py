"""Regions of one registry as live processes (uvicorn), for end-to-end tests with real clients."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from scripts.azurite import free_port
from shared.settings import Settings
from tests.conftest import Azurite, start_registry
from tests.replication.regions import region_settings


def skopeo(*args: str) -> str:
    """Run skopeo; its standard output (the test fails on a non-zero exit)."""
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def held_back(azurite: Azurite) -> dict[str, Settings]:
    """East and west, replication held back: their events go to an Event Grid endpoint nobody
    listens on, so publishing fails and the outbox keeps them."""
    nowhere = f"http://127.0.0.1:{free_port()}/api/events"
    return region_settings(azurite, REGISTRY_EVENTGRID_ENDPOINT=nowhere, REGISTRY_EVENTGRID_KEY="held-back")


@contextmanager
def live_regions(settings: Mapping[str, Settings]) -> Iterator[dict[str, str]]:
    """Start each region's registry process; yields region -> ``host:port``, stops them after."""
    hosts, processes = {}, []
    try:
        for name, region in settings.items():
            port = free_port()
            processes.append(start_registry(region, port))
            hosts[name] = f"127.0.0.1:{port}"
        yield hosts
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
