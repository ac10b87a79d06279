"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from shared.composition import create_app
from shared.settings import Settings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER


@pytest.fixture
async def instances(settings: Settings) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Four more registry instances over the test's storage (as in Azure, where several hosts
    serve one registry), each with its own client, as the admin user."""
    apps = [create_app(settings) for _ in range(4)]
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://registry.test",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD)) for a in apps]
    yield clients
    for client, app in zip(clients, apps, strict=True):
        await client.aclose()
        if app.state.registry is not None:
            await app.state.registry.close()
