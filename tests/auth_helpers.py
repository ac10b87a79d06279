"""Helpers for the identity and access tests: pushing small images in-process, a test Entra ID
issuer whose JWKS a local HTTP server serves, and a test CA with a certificate for 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import http.server
import ipaddress
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
ARM_URL = "https://management.core.windows.net/"


def basic(username: str, password: str) -> dict[str, str]:
    """A Basic Authorization header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    """A Bearer Authorization header."""
    return {"Authorization": f"Bearer {token}"}


async def push_blob(client: httpx.AsyncClient, repository: str, data: bytes, **kwargs: Any) -> dict[str, Any]:
    """Upload ``data`` monolithically; returns its descriptor fields."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    response = await client.post(f"/v2/{repository}/blobs/uploads/", params={"digest": digest}, content=data,
                                 **kwargs)
    assert response.status_code == 201, response.text
    return {"digest": digest, "size": len(data)}


async def push_image(client: httpx.AsyncClient, repository: str, tag: str, arch: str = "amd64",
                     **kwargs: Any) -> str:
    """Push a one-layer image for ``arch``; returns the manifest digest."""
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    config_desc = {"mediaType": OCI_CONFIG, **await push_blob(client, repository, config.encode(), **kwargs)}
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar",
             **await push_blob(client, repository, f"layer {arch} {uuid.uuid4()}".encode(), **kwargs)}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc,
                           "layers": [layer]}).encode()
    response = await client.put(f"/v2/{repository}/manifests/{tag}", content=manifest,
                                headers={"Content-Type": OCI_MANIFEST, **kwargs.pop("headers", {})}, **kwargs)
    assert response.status_code == 201, response.text
    return str(response.headers["Docker-Content-Digest"])


class TestIssuer:
    """An Entra ID look-alike: an RSA key, a JWKS served over HTTP, and tokens signed with it."""

    __test__ = False

    def __init__(self) -> None:
        self.tenant = str(uuid.uuid4())
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = json.dumps({"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}).encode()
        self.requests = 0
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(issuer.jwks)))
                self.end_headers()
                self.wfile.write(issuer.jwks)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.authority = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, oid: str, audience: str = ARM_URL, tenant: str | None = None, lifetime: int = 3600,
              key: rsa.RSAPrivateKey | None = None, groups: list[str] | None = None) -> str:
        """An access token for principal ``oid`` as Entra ID would issue it."""
        tid = tenant or self.tenant
        now = int(time.time())
        claims = {"aud": audience, "iss": f"{self.authority}/{tid}/v2.0", "iat": now, "nbf": now,
                  "exp": now + lifetime, "oid": oid, "sub": oid, "tid": tid,
                  **({"groups": groups} if groups else {})}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def close(self) -> None:
        """Stop the JWKS server."""
        self.server.shutdown()
        self.server.server_close()


class IssuerCredential:
    """An ``azure-core`` TokenCredential handing out the test issuer's tokens (as azure-identity would)."""

    def __init__(self, issuer: TestIssuer, oid: str) -> None:
        self.issuer = issuer
        self.oid = oid
        self.scopes: list[str] = []
        self.tokens: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A token for the first scope's resource."""
        self.scopes.extend(scopes)
        audience = scopes[0].removesuffix(".default") if scopes else ARM_URL
        self.tokens.append(self.issuer.token(self.oid, audience))
        return AccessToken(self.tokens[-1], int(time.time()) + 3600)


def make_tls(folder: Path) -> tuple[str, str, str]:
    """A test CA and a certificate for 127.0.0.1/localhost signed by it: (cert, key, CA) files."""
    now = datetime.now(UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
          .not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return str(paths[0]), str(paths[1]), str(paths[2])
