"""Regions of one registry as live processes (uvicorn), for end-to-end tests with real clients."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from scripts.azurite import free_port
from shared.settings import Settings
from tests.conftest import start_registry


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
