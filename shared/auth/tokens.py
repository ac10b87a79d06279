"""Registry tokens: short-lived signed JWTs, access tokens with ``access`` entries and refresh tokens.

The key comes from a setting (a Key Vault reference in Azure); the ``kid`` header is the key's
RFC 7638 thumbprint, so a rotated key and its predecessor are told apart, and tokens signed by
the previous key stay valid until they expire. The Azure SDK reads a token's payload with plain
base64 and breaks on ``-`` and ``_``; in ASCII JSON only ``>``, ``?``, ``~`` and DEL produce those,
so the encoder writes them as ``\\u`` escapes and no payload ever contains either character.

Tokens issued to the admin user or a scoped token carry a *binding* (``gen``) of the credential
they came from: an HMAC, keyed by a secret derived from the signing key, of which password it was
and that password (the admin user's) or its stored hash (a scoped token's, new for every
password set). It proves which credential generation a token belongs to without revealing
anything a guess could be checked against.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ACCESS = "access"
REFRESH = "refresh"
_LEEWAY_SECONDS = 5
_UNSAFE = {">": "\\u003e", "?": "\\u003f", "~": "\\u007e", "\x7f": "\\u007f"}


class TokenError(Exception):
    """A token is malformed, badly signed, expired, not yet valid or meant for someone else."""


class _SafeJSONEncoder(json.JSONEncoder):
    """Compact ASCII JSON whose base64 form contains neither ``-`` nor ``_``."""

    def encode(self, o: Any) -> str:
        text = super().encode(o)
        for char, escape in _UNSAFE.items():
            text = text.replace(char, escape)
        return text


@dataclass(frozen=True)
class _Key:
    kid: str
    algorithm: str
    private: Any
    public: Any
    binding_secret: bytes


def _load(pem: str) -> _Key:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm, jwk = "RS256", RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        algorithm, jwk = "ES256", ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        raise ValueError("the token signing key must be an RSA or EC P-256 private key")
    members = {k: jwk[k] for k in ("crv", "e", "kty", "n", "x", "y") if k in jwk}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    secret = hashlib.sha256(b"registry credential binding\0" + der).digest()
    return _Key(_thumbprint(canonical), algorithm, key, key.public_key(), secret)


def _thumbprint(canonical: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def generate_signing_key() -> str:
    """A fresh EC P-256 private key as PEM (for local runs and tests)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class TokenSigner:
    """Issues and verifies the registry's own tokens."""

    def __init__(self, signing_key: str, issuer: str, previous_key: str = "") -> None:
        self.current = _load(signing_key)
        self.issuer = issuer
        self._keys = {self.current.kid: self.current}
        if previous_key:
            previous = _load(previous_key)
            self._keys[previous.kid] = previous

    def issue(self, token_type: str, audience: str, subject: str, ttl_seconds: int, *, not_after: int = 0,
              **claims: Any) -> str:
        """A signed token of ``token_type`` (access or refresh) for ``audience``, valid ``ttl_seconds``
        but not beyond ``not_after`` (epoch seconds; 0: no such bound)."""
        now = int(time.time())
        expires = min(now + ttl_seconds, not_after) if not_after else now + ttl_seconds
        payload = {
            "jti": secrets.token_hex(16), "sub": subject, "nbf": now - 1, "iat": now, "exp": expires,
            "iss": self.issuer, "aud": audience, "typ": token_type, **claims,
        }
        return jwt.encode(
            payload, self.current.private, algorithm=self.current.algorithm,
            headers={"kid": self.current.kid}, json_encoder=_SafeJSONEncoder,
        )

    def bind(self, material: str) -> str:
        """The binding of a credential (``material`` names it and holds its secret) under the current key."""
        return _binding(self.current.binding_secret, material)

    def bound(self, binding: str, material: str) -> bool:
        """True when ``binding`` was made by :meth:`bind` of ``material`` under any known key."""
        results = [hmac.compare_digest(binding.encode(), _binding(key.binding_secret, material).encode())
                   for key in self._keys.values()]
        return any(results)

    def verify(self, token: str, kind: str, audience: str) -> dict[str, Any]:
        """The claims of ``token`` if it is a valid ``kind`` token for ``audience``; else TokenError."""
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(str(header.get("kid")))
            if key is None:
                raise TokenError("unknown signing key")
            claims: dict[str, Any] = jwt.decode(
                token, key.public, algorithms=[key.algorithm], audience=audience, issuer=self.issuer,
                leeway=_LEEWAY_SECONDS, options={"require": ["exp", "nbf", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise TokenError(str(error)) from None
        if claims.get("typ") != kind:
            raise TokenError(f"not a {kind} token")
        return claims


def _binding(secret: bytes, material: str) -> str:
    return hmac.new(secret, material.encode(), hashlib.sha256).hexdigest()[:32]
