"""Test harness: real Azurite started once per session, a fresh storage prefix per test, the ASGI
app in-process (httpx) and the registry as a real uvicorn process for end-to-end clients."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette

from scripts.azurite import ROOT, Azurite, free_port
from shared.api.app import create_app
from shared.settings import Settings
from tests.receiver import Receiver
from tests.storage import StorageProbe


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """Azurite on free loopback ports for the whole session."""
    with Azurite() as service:
        yield service


def unique_prefix() -> str:
    """A storage prefix no other test uses."""
    return "t" + uuid.uuid4().hex[:16]


@pytest.fixture
def settings(azurite: Azurite) -> Settings:
    """Settings pointing at Azurite with a container and tables of this test's own."""
    return Settings(storage_connection_string=azurite.connection_string, storage_prefix=unique_prefix())


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """The registry's ASGI app; its storage clients are closed after the test."""
    application = create_app(settings)
    yield application
    if application.state.registry is not None:
        await application.state.registry.close()


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as http:
        yield http


@pytest.fixture
async def storage(settings: Settings) -> AsyncIterator[StorageProbe]:
    """Direct access to the test's container and tables, to assert on what was stored."""
    probe = StorageProbe(settings)
    yield probe
    await probe.close()


@dataclass(frozen=True)
class LiveRegistry:
    """The registry running as a real process on loopback."""

    host: str  # host:port
    settings: Settings

    @property
    def url(self) -> str:
        """Base URL of the registry."""
        return f"http://{self.host}"


def start_registry(settings: Settings, port: int, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start uvicorn serving the registry with ``settings``; returns once it answers."""
    env = {
        **os.environ,
        "REGISTRY_STORAGE_CONNECTION_STRING": settings.storage_connection_string,
        "REGISTRY_STORAGE_PREFIX": settings.storage_prefix,
        "REGISTRY_BLOB_REDIRECT": "true" if settings.blob_redirect else "false",
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "shared.api.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        env=env, cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the registry process exited")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the registry did not answer within 30 s")


@pytest.fixture(scope="session")
def live_registry(azurite: Azurite) -> Iterator[LiveRegistry]:
    """One registry process for the session's end-to-end tests (each uses its own repositories)."""
    settings = Settings(storage_connection_string=azurite.connection_string, storage_prefix=unique_prefix())
    port = free_port()
    process = start_registry(settings, port)
    yield LiveRegistry(f"127.0.0.1:{port}", settings)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A local HTTP receiver (webhooks, Event Grid subscribers) recording what it gets."""
    service = await Receiver().start()
    yield service
    await service.stop()
