"""Test harness: real Azurite started once per session, a fresh storage prefix per test, the ASGI
app in-process (httpx) and the registry as a real uvicorn process for end-to-end clients."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from scripts.azurite import ROOT, Azurite, free_port
from shared.auth.tokens import generate_signing_key
from shared.composition import create_app, load_settings
from shared.settings import Settings
from tests.auth_helpers import TestIssuer
from tests.receiver import Receiver
from tests.storage import StorageProbe


@dataclass(frozen=True)
class RunningAzurite:
    """An Azurite some other process started (``REGISTRY_TEST_AZURITE`` holds its connection string)."""

    connection_string: str


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite | RunningAzurite]:
    """Azurite on free loopback ports for the whole session, or the one ``REGISTRY_TEST_AZURITE``
    names (mutation testing runs thousands of short sessions against one Azurite)."""
    running = os.environ.get("REGISTRY_TEST_AZURITE")
    if running:
        yield RunningAzurite(running)
        return
    with Azurite() as service:
        yield service


def unique_prefix() -> str:
    """A storage prefix no other test uses."""
    return "t" + uuid.uuid4().hex[:16]


#: The admin user every test registry enables (username: the default REGISTRY_NAME).
ADMIN_USER = "localregistry"
ADMIN_PASSWORD = "test-admin-" + uuid.uuid4().hex
SIGNING_KEY = generate_signing_key()


@pytest.fixture
def settings(azurite: Azurite) -> Settings:
    """Settings pointing at Azurite with a container and tables of this test's own; authentication
    is on, with the admin user enabled (the ``client`` fixture logs in as it)."""
    return test_settings(azurite)


def test_settings(azurite: Azurite | RunningAzurite | str, **env: str) -> Settings:
    """Settings of a registry on ``azurite`` (or a connection string) with its own storage prefix,
    authentication on and the admin user; ``env`` sets other settings by name."""
    connection = azurite if isinstance(azurite, str) else azurite.connection_string
    return load_settings({"REGISTRY_STORAGE_CONNECTION_STRING": connection, "REGISTRY_STORAGE_PREFIX": unique_prefix(),
                          "REGISTRY_ADMIN_ENABLED": "true", "REGISTRY_ADMIN_PASSWORD": ADMIN_PASSWORD,
                          "REGISTRY_TOKEN_SIGNING_KEY": SIGNING_KEY, **env})


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """The registry's ASGI app; its storage clients are closed after the test."""
    application = create_app(settings)
    yield application
    if application.state.registry is not None:
        await application.state.registry.close()


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in-process, as the admin user (Basic auth)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        yield http


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    """A test Entra ID issuer."""
    test_issuer = TestIssuer()
    yield test_issuer
    test_issuer.close()


@pytest.fixture
async def anon(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same app that sends no credentials."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test") as http:
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
    #: a repository-scoped token (read, write, delete under ``e2e/scoped/``) and its password
    token: str = ""
    token_password: str = ""
    scheme: str = "http"

    @property
    def url(self) -> str:
        """Base URL of the registry."""
        return f"{self.scheme}://{self.host}"


def start_registry(settings: Settings, port: int, extra_env: dict[str, str] | None = None,
                   tls: tuple[str, str, str] | None = None, uvicorn_args: tuple[str, ...] = (),
                   fault: str | None = None, **popen: Any) -> subprocess.Popen[bytes]:
    """Start uvicorn serving the registry with ``settings``; returns once it answers.

    ``tls`` is (certificate file, key file, CA file) to serve HTTPS; ``fault`` names a fault of
    :mod:`tests.faults` the process installs before it starts.
    """
    env = {**os.environ, **settings.source, **(extra_env or {})}
    launcher = ["-m", "tests.faults", fault] if fault else ["-m", "uvicorn"]
    command = [sys.executable, *launcher, "--factory", "shared.composition:create_app",
               "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    if tls is not None:
        command += ["--ssl-certfile", tls[0], "--ssl-keyfile", tls[1]]
    command += uvicorn_args
    process = subprocess.Popen(command, env=env, cwd=ROOT, **popen)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v2/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the registry process exited")
        try:
            verify = ssl.create_default_context(cafile=tls[2]) if tls else True
            if httpx.get(url, timeout=1, verify=verify).status_code in (200, 401):
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the registry did not answer within 30 s")


#: The repository-scoped token of :func:`live_registry`, and the repositories it may use.
E2E_TOKEN = "e2eclient"
E2E_SCOPE = "e2e/scoped/*"


def add_scoped_token(url: str, name: str, pattern: str, verify: bool | ssl.SSLContext = True) -> str:
    """Create (as the admin) a token that may read, write and delete repositories matching
    ``pattern``; returns its password."""
    actions = [f"repositories/{pattern}/content/{a}" for a in ("read", "write", "delete")]
    with httpx.Client(base_url=url, auth=(ADMIN_USER, ADMIN_PASSWORD), verify=verify) as admin:
        response = admin.put(f"/acr/admin/scopemaps/{name}-map", json={"actions": actions})
        assert response.status_code == 200, response.text
        response = admin.put(f"/acr/admin/tokens/{name}", json={"scopeMap": f"{name}-map"})
        assert response.status_code == 200, response.text
        response = admin.post(f"/acr/admin/tokens/{name}/passwords", json={"name": "password1"})
        assert response.status_code == 200, response.text
        return str(response.json()["value"])


@pytest.fixture(scope="session")
def live_registry(azurite: Azurite) -> Iterator[LiveRegistry]:
    """One registry process for the session's end-to-end tests (each uses its own repositories).

    Authentication is on, as in ACR: clients log in as the admin user (``ADMIN_USER``) or as the
    repository-scoped token ``E2E_TOKEN`` (repositories under ``e2e/scoped/``), through their own
    token flows.
    """
    settings = test_settings(azurite)
    port = free_port()
    process = start_registry(settings, port)
    host = f"127.0.0.1:{port}"
    password = add_scoped_token(f"http://{host}", E2E_TOKEN, E2E_SCOPE)
    yield LiveRegistry(host, settings, E2E_TOKEN, password)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A local HTTP receiver (webhooks, Event Grid subscribers) recording what it gets."""
    service = await Receiver().start()
    yield service
    await service.stop()
