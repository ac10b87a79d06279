"""python-dxf as a real client: push, pull and a cross-repository mount (``from``) with a
repository-scoped token, through its own token flow (scopes taken from each challenge).

python-dxf sends credentials only over TLS (and always asks the token realm over https), so this
registry serves HTTPS with a test CA.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
from dxf import DXF, DXFBase
from dxf.exceptions import DXFUnauthorizedError

from scripts.azurite import Azurite, free_port, stop_process
from tests.auth_helpers import make_tls
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, LiveRegistry, add_scoped_token, start_registry, test_settings

TOKEN = "dxfclient"


@pytest.fixture(scope="module")
def tls_registry(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveRegistry, str]]:
    """A registry process on HTTPS with a token for ``e2e/dxf/*``; yields it and the CA file."""
    tls = make_tls(tmp_path_factory.mktemp("tls"))
    settings = test_settings(azurite)
    port = free_port()
    process = start_registry(settings, port, tls=tls)
    host = f"127.0.0.1:{port}"
    password = add_scoped_token(f"https://{host}", TOKEN, "e2e/dxf/*", verify=ssl.create_default_context(cafile=tls[2]))
    yield LiveRegistry(host, settings, TOKEN, password, scheme="https"), tls[2]
    stop_process(process)


def _client(registry: LiveRegistry, ca: str, repository: str) -> DXF:
    def authenticate(dxf: DXFBase, response: requests.Response) -> None:
        dxf.authenticate(registry.token, registry.token_password, response=response)

    return DXF(registry.host, repository, auth=authenticate, tlsverify=ca)


def test_python_dxf_pushes_pulls_and_mounts_with_a_scoped_token(tls_registry: tuple[LiveRegistry, str],
                                                                 tmp_path: Path) -> None:
    registry, ca = tls_registry
    data = os.urandom(300_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    layer = tmp_path / "layer.bin"
    layer.write_bytes(data)
    source = _client(registry, ca, "e2e/dxf/source")
    assert source.push_blob(str(layer)) == digest
    source.set_alias("v1", digest)
    assert b"".join(source.pull_blob(digest)) == data
    assert source.get_alias("v1") == [digest]

    target = _client(registry, ca, "e2e/dxf/target")
    assert target.mount_blob("e2e/dxf/source", digest) == digest
    assert b"".join(target.pull_blob(digest)) == data
    target.set_alias("mounted", digest)
    assert target.get_alias("mounted") == [digest]
    with httpx.Client(base_url=registry.url, auth=(ADMIN_USER, ADMIN_PASSWORD),
                      verify=ssl.create_default_context(cafile=ca)) as admin:
        assert admin.get("/v2/e2e/dxf/target/tags/list").json()["tags"] == ["mounted"]
        # The mount linked the stored blob: one data blob, no second upload of its bytes.
        assert admin.head(f"/v2/e2e/dxf/target/blobs/{digest}").headers["content-length"] == str(len(data))

    outside = _client(registry, ca, "e2e/other")
    with pytest.raises(DXFUnauthorizedError):  # the token service grants nothing outside e2e/dxf/*
        outside.push_blob(str(layer))
    with httpx.Client(base_url=registry.url, auth=(ADMIN_USER, ADMIN_PASSWORD),
                      verify=ssl.create_default_context(cafile=ca)) as admin:
        assert admin.head(f"/v2/e2e/other/blobs/{digest}").status_code == 404
