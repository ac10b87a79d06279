"""The official ``azure-containerregistry`` SDK against the registry served by uvicorn behind TLS:
authenticated through the exchange flow with a token from the test Entra ID issuer, and anonymously."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from azure.containerregistry import ContainerRegistryClient
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from scripts.azurite import ACCOUNT, ACCOUNT_KEY, ROOT, free_port, stop_process
from tests.auth_helpers import OCI_INDEX, IssuerCredential, TestIssuer, make_tls
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, start_registry, test_settings

OWNER = "0b3c6a52-6f5e-4a34-9d0b-1c1f0fb1e001"
READER = "0b3c6a52-6f5e-4a34-9d0b-1c1f0fb1e002"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


@dataclass
class SecureRegistry:
    """The registry over HTTPS, its CA and the test issuer."""

    endpoint: str
    ca: str
    issuer: TestIssuer
    log_path: str
    credentials: list[IssuerCredential]

    def admin(self) -> httpx.Client:
        """An admin-API client logged in as the admin user."""
        return httpx.Client(base_url=self.endpoint, verify=ssl.create_default_context(cafile=self.ca),
                            auth=(ADMIN_USER, ADMIN_PASSWORD))

    def client(self, oid: str | None) -> ContainerRegistryClient:
        """The SDK client for principal ``oid`` (anonymous when None)."""
        credential = IssuerCredential(self.issuer, oid) if oid else None
        if credential is not None:
            self.credentials.append(credential)
        return ContainerRegistryClient(self.endpoint, credential, audience="https://management.core.windows.net",
                                       connection_verify=self.ca)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A test CA and a certificate for 127.0.0.1: (cert, key, CA)."""
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_azurite(tls_files: tuple[str, str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite serving HTTPS with the test certificate; yields its connection string.

    The SDK refuses to follow a 307 to a plain-http URL (its challenge policy sees every redirected
    request and rejects non-https ones), so blob downloads are redirected to storage over TLS, as
    in Azure. (Against the session's plain-http Azurite the SDK needs REGISTRY_BLOB_REDIRECT=false.)
    """
    location = tmp_path_factory.mktemp("azurite-tls")
    ports = [free_port() for _ in range(3)]
    command = [str(ROOT / "node_modules" / ".bin" / "azurite"), "--silent", "--skipApiVersionCheck", "--loose",
               "--disableTelemetry", "--location", str(location), "--cert", tls_files[0], "--key", tls_files[1]]
    for service, port in zip(("blob", "queue", "table"), ports, strict=True):
        command += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=location)
    for port in ports:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "Azurite did not start"
                time.sleep(0.1)
    yield (f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
           f"BlobEndpoint=https://127.0.0.1:{ports[0]}/{ACCOUNT};QueueEndpoint=https://127.0.0.1:{ports[1]}/{ACCOUNT};"
           f"TableEndpoint=https://127.0.0.1:{ports[2]}/{ACCOUNT};")
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def secure(https_azurite: str, tls_files: tuple[str, str, str],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRegistry]:
    """A registry process on HTTPS trusting the test issuer's tenant, with Owner and Reader principals;
    blob GETs redirect (307) to SAS URLs of Azurite over HTTPS."""
    folder = tmp_path_factory.mktemp("registry")
    tls = tls_files
    issuer = TestIssuer()
    settings = test_settings(https_azurite, REGISTRY_BLOB_REDIRECT="true")
    port = free_port()
    log_path = str(folder / "registry.log")
    # every logger at DEBUG, so the secrets test sees everything the process could log
    log_config = folder / "logging.json"
    log_config.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "handlers": {"err": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
        "root": {"level": "DEBUG", "handlers": ["err"]},
    }))
    with open(log_path, "wb") as log:
        process = start_registry(settings, port, {
            "REGISTRY_ENTRA_AUTHORITY": issuer.authority, "REGISTRY_ENTRA_TENANTS": issuer.tenant,
            "PYTHONUNBUFFERED": "1", "SSL_CERT_FILE": tls[2],  # trust the test CA for Azurite
        }, tls=tls, uvicorn_args=("--log-config", str(log_config), "--timeout-graceful-shutdown", "2"),
            stdout=log, stderr=subprocess.STDOUT)
    registry = SecureRegistry(f"https://127.0.0.1:{port}", tls[2], issuer, log_path, [])
    with registry.admin() as admin:
        for oid, role in ((OWNER, "Owner"), (READER, "AcrPull")):
            assert admin.post("/acr/admin/roleassignments", json={"principalId": oid, "role": role}).status_code == 201
    yield registry
    stop_process(process)
    issuer.close()


def _push(client: ContainerRegistryClient, repository: str, tag: str, arch: str, layer: bytes) -> str:
    config = json.dumps({"architecture": arch, "os": "linux"}).encode()
    config_digest, config_size = client.upload_blob(repository, io.BytesIO(config))
    layer_digest, layer_size = client.upload_blob(repository, io.BytesIO(layer))
    assert layer_digest == "sha256:" + hashlib.sha256(layer).hexdigest() and layer_size == len(layer)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": config_size},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                            "size": layer_size}]}
    return client.set_manifest(repository, manifest, tag=tag)


def test_sdk_performs_every_operation_through_the_exchange_flow(secure: SecureRegistry) -> None:
    big = os.urandom(5 * 1024 * 1024 + 123)  # two PATCH chunks, two ranged GETs
    with secure.client(OWNER) as client:
        amd = _push(client, "sdk/app", "amd64", "amd64", big)
        arm = _push(client, "sdk/app", "arm64", "arm64", b"small layer")
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": s,
             "platform": {"architecture": a, "os": "linux"}}
            for d, s, a in ((amd, client.get_manifest_properties("sdk/app", amd).size_in_bytes, "amd64"),
                            (arm, client.get_manifest_properties("sdk/app", arm).size_in_bytes, "arm64"))]}
        # size_in_bytes is the image size; the index needs the manifest sizes
        for entry in index["manifests"]:  # type: ignore[attr-defined]
            entry["size"] = len(json.dumps(client.get_manifest("sdk/app", entry["digest"]).manifest).encode())
        index_digest = client.set_manifest("sdk/app", index, tag="latest", media_type=OCI_INDEX)

        got = client.get_manifest("sdk/app", "amd64")
        assert got.digest == amd and got.manifest["config"]["mediaType"] == CONFIG_TYPE
        layer_digest = got.manifest["layers"][0]["digest"]
        stream = client.download_blob("sdk/app", layer_digest)
        assert b"".join(stream) == big
        with secure.admin() as admin:  # the SDK followed a redirect to storage
            redirect = admin.get(f"/v2/sdk/app/blobs/{layer_digest}")
            assert redirect.status_code == 307 and redirect.headers["location"].startswith("https://127.0.0.1:")

        assert "sdk/app" in list(client.list_repository_names())
        repo = client.get_repository_properties("sdk/app")
        assert (repo.manifest_count, repo.tag_count, repo.can_write) == (3, 3, True)
        updated = client.update_repository_properties("sdk/app", can_list=True, can_read=True)
        assert updated.can_delete is True

        tags = list(client.list_tag_properties("sdk/app", results_per_page=1))
        assert [t.name for t in tags] == ["amd64", "arm64", "latest"]
        newest = [t.name for t in client.list_tag_properties("sdk/app", order_by="timedesc")]
        assert newest[0] == "latest"
        assert client.get_tag_properties("sdk/app", "arm64").digest == arm
        locked = client.update_tag_properties("sdk/app", "arm64", can_delete=False)
        assert locked.can_delete is False
        with pytest.raises(HttpResponseError) as refused:
            client.delete_tag("sdk/app", "arm64")
        assert refused.value.status_code == 403

        manifests = {m.digest: m for m in client.list_manifest_properties("sdk/app", results_per_page=2)}
        assert set(manifests) == {amd, arm, index_digest}
        assert (manifests[arm].architecture, manifests[arm].operating_system) == ("arm64", "linux")
        assert manifests[index_digest].tags == ["latest"]
        props = client.get_manifest_properties("sdk/app", "amd64")
        assert props.digest == amd and props.architecture == "amd64" and props.size_in_bytes > len(big)
        changed = client.update_manifest_properties("sdk/app", amd, can_write=False)
        assert changed.can_write is False
        client.update_manifest_properties("sdk/app", amd, can_write=True)

        client.update_tag_properties("sdk/app", "arm64", can_delete=True)
        client.delete_tag("sdk/app", "arm64")
        assert [t.name for t in client.list_tag_properties("sdk/app")] == ["amd64", "latest"]
        client.delete_manifest("sdk/app", index_digest)
        with pytest.raises(ResourceNotFoundError):
            client.get_manifest_properties("sdk/app", "latest")
        client.delete_blob("sdk/app", layer_digest)
        with pytest.raises(ResourceNotFoundError):
            client.download_blob("sdk/app", layer_digest)
        client.delete_repository("sdk/app")
        assert "sdk/app" not in list(client.list_repository_names())
        client.delete_repository("sdk/app")  # absent: no error
    credential = secure.credentials[-1]
    assert set(credential.scopes) == {"https://management.core.windows.net/.default"}  # the exchange flow ran


def test_sdk_reader_role_reads_but_cannot_write(secure: SecureRegistry) -> None:
    with secure.client(OWNER) as owner:
        digest = _push(owner, "sdk/read", "v1", "amd64", b"reader layer")
    with secure.client(READER) as reader:
        assert reader.get_manifest("sdk/read", "v1").digest == digest
        assert "sdk/read" in list(reader.list_repository_names())
        with pytest.raises(ClientAuthenticationError):
            reader.delete_manifest("sdk/read", digest)
        with pytest.raises(ClientAuthenticationError):
            reader.upload_blob("sdk/read", io.BytesIO(b"nope"))


def test_sdk_anonymous_access_where_allowed(secure: SecureRegistry) -> None:
    with secure.client(OWNER) as owner:
        digest = _push(owner, "sdk/public", "v1", "amd64", b"public layer")
    with secure.client(None) as anonymous:
        with pytest.raises(ClientAuthenticationError):
            list(anonymous.list_repository_names())
        with secure.admin() as admin:
            assert admin.patch("/acr/admin/options", json={"anonymousPullEnabled": True}).status_code == 200
        try:
            assert "sdk/public" in list(anonymous.list_repository_names())
            got = anonymous.get_manifest("sdk/public", "v1")
            assert got.digest == digest
            layer = got.manifest["layers"][0]["digest"]
            assert b"".join(anonymous.download_blob("sdk/public", layer)) == b"public layer"
            assert [t.name for t in anonymous.list_tag_properties("sdk/public")] == ["v1"]
            assert anonymous.get_manifest_properties("sdk/public", "v1").digest == digest
            with pytest.raises(ClientAuthenticationError):
                anonymous.delete_manifest("sdk/public", digest)
            with pytest.raises(ClientAuthenticationError):
                anonymous.update_tag_properties("sdk/public", "v1", can_delete=False)
            with pytest.raises(ClientAuthenticationError):
                anonymous.upload_blob("sdk/public", io.BytesIO(b"anonymous write"))
        finally:
            with secure.admin() as admin:
                admin.patch("/acr/admin/options", json={"anonymousPullEnabled": False})


def test_registry_process_logs_hold_no_secrets(secure: SecureRegistry) -> None:
    with secure.client(OWNER) as client, pytest.raises(ClientAuthenticationError):
        client._credential.get_token = lambda *s, **k: AccessToken("forged." + secure.credentials[0].tokens[0], 0)
        list(client.list_repository_names())
    with secure.admin() as admin:
        assert admin.get("/v2/", auth=(ADMIN_USER, ADMIN_PASSWORD + "x")).status_code == 401
    with open(secure.log_path, encoding="utf-8", errors="replace") as log:
        text = log.read()
    assert "Entra ID token refused" in text  # refusals are logged ...
    secrets = [ADMIN_PASSWORD] + [t for c in secure.credentials for t in c.tokens]
    assert secrets[1:]
    for secret in secrets:  # ... but no password or token, not even the signature part
        assert secret not in text and secret.split(".")[-1] not in text
    assert "Bearer ey" not in text and "Basic " not in text
