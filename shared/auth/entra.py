"""Entra ID access tokens: signature against the tenant's JWKS (cached), issuer, audience, tenant.

The JWKS of tenant ``t`` is read from ``<authority>/<t>/discovery/v2.0/keys``; tests point the
authority at a local server. Keys are cached per tenant and fetched again when a token names an
unknown ``kid`` (Entra rotates its keys), at most once per minute.

Each accepted audience is accepted with and without a trailing slash, as ACR does: Entra ID
writes the audience the way the client asked for the resource (``https://management.azure.com``
from one SDK, ``https://management.azure.com/`` from another).
"""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
from jwt import PyJWKClient

from shared.auth.tokens import TokenError

_PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
_JWKS_LIFESPAN_SECONDS = 3600


def _both_forms(audience: str) -> tuple[str, ...]:
    bare = audience.rstrip("/")
    return (bare, bare + "/") if bare else ()


class EntraValidator:
    """Validates Entra ID access tokens from allowed tenants."""

    def __init__(self, authority: str, tenants: tuple[str, ...], audiences: tuple[str, ...]) -> None:
        self.authority = authority.rstrip("/")
        self.tenants = {t.lower() for t in tenants}
        self.audiences = sorted({form for audience in audiences for form in _both_forms(audience)})
        self._clients: dict[str, PyJWKClient] = {}

    def _client(self, tenant: str) -> PyJWKClient:
        client = self._clients.get(tenant)
        if client is None:
            client = PyJWKClient(
                f"{self.authority}/{tenant}/discovery/v2.0/keys",
                cache_jwk_set=True, lifespan=_JWKS_LIFESPAN_SECONDS, timeout=10,
            )
            self._clients[tenant] = client
        return client

    def _issuers(self, tenant: str) -> list[str]:
        issuers = [f"{self.authority}/{tenant}/v2.0", f"{self.authority}/{tenant}/"]
        if self.authority == _PUBLIC_AUTHORITY:
            issuers.append(f"https://sts.windows.net/{tenant}/")
        return issuers

    async def validate(self, token: str, tenant_hint: str | None = None) -> dict[str, Any]:
        """The claims of a valid token; TokenError for anything else (including a foreign tenant)."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenError("malformed Entra ID token") from None
        tenant = str(unverified.get("tid") or "").lower()
        if not tenant or tenant not in self.tenants or (tenant_hint and tenant_hint.lower() != tenant):
            raise TokenError("tenant not allowed")
        return await asyncio.to_thread(self._verify, token, tenant)

    def _verify(self, token: str, tenant: str) -> dict[str, Any]:
        try:
            key = self._client(tenant).get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=["RS256"], audience=self.audiences, issuer=self._issuers(tenant),
                leeway=5, options={"require": ["exp", "iat", "iss", "aud", "tid"]},
            )
        except jwt.PyJWTError as error:
            raise TokenError(f"invalid Entra ID token: {error}") from None
        if not (claims.get("oid") or claims.get("sub")):
            raise TokenError("Entra ID token names no principal")
        return claims
