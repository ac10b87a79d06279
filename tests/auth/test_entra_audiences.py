"""Entra ID tokens are accepted for each audience ACR accepts, with or without a trailing slash,
and for nothing else."""

from __future__ import annotations

import httpx
import pytest

from shared.composition import create_app
from shared.settings import Settings
from tests.auth.helpers import SERVICE
from tests.auth_helpers import TestIssuer

OID = "6f1d3c1e-0000-4000-8000-00000000a0a0"


@pytest.fixture
def settings(settings: Settings, issuer: TestIssuer) -> Settings:
    """The default test settings (default audiences), trusting the test issuer's tenant."""
    return settings.with_env(REGISTRY_ENTRA_AUTHORITY=issuer.authority, REGISTRY_ENTRA_TENANTS=issuer.tenant)


async def _exchange(anon: httpx.AsyncClient, token: str) -> int:
    response = await anon.post("/oauth2/exchange", data={"grant_type": "access_token", "service": SERVICE,
                                                         "access_token": token})
    return response.status_code


async def test_default_audiences_are_accepted_with_or_without_a_trailing_slash(
        anon: httpx.AsyncClient, issuer: TestIssuer) -> None:
    accepted = ["https://management.azure.com", "https://management.azure.com/",
                "https://management.core.windows.net", "https://management.core.windows.net/",
                "https://containerregistry.azure.net", "https://containerregistry.azure.net/"]
    for audience in accepted:
        assert await _exchange(anon, issuer.token(OID, audience=audience)) == 200, audience
    refused = ["https://management.azure.com//", "https://management.azure.co", "https://graph.microsoft.com/",
               "https://management.azure.com/x", "management.azure.com", "https://MANAGEMENT.azure.com/evil"]
    for audience in refused:
        assert await _exchange(anon, issuer.token(OID, audience=audience)) == 401, audience


async def test_a_configured_audience_is_accepted_in_both_forms(settings: Settings, issuer: TestIssuer) -> None:
    app = create_app(settings.with_env(REGISTRY_ENTRA_AUDIENCES="api://registry-app/"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{SERVICE}") as http:
        try:
            assert await _exchange(http, issuer.token(OID, audience="api://registry-app")) == 200
            assert await _exchange(http, issuer.token(OID, audience="api://registry-app/")) == 200
            assert await _exchange(http, issuer.token(OID, audience="https://management.azure.com/")) == 401
        finally:
            await app.state.registry.close()
