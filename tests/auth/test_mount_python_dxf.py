"""python-dxf, which takes its scope from the challenge, mounts a blob across repositories with a
scoped token that may read the source; a token that may not gets no mount."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from dxf import DXF
from dxf.exceptions import DXFMountFailed

from scripts.azurite import Azurite, free_port, stop_process
from tests.auth_helpers import make_tls
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, start_registry, test_settings

LAYER = b"a layer python-dxf mounts"


def _token(admin: httpx.Client, name: str, actions: list[str]) -> str:
    assert admin.put(f"/acr/admin/scopemaps/{name}-map", json={"actions": actions}).status_code == 200
    assert admin.put(f"/acr/admin/tokens/{name}", json={"scopeMap": f"{name}-map"}).status_code == 200
    return str(admin.post(f"/acr/admin/tokens/{name}/passwords", json={"name": "password1"}).json()["value"])


def _dxf(host: str, ca: str, username: str, password: str) -> DXF:
    def auth(dxf: DXF, response: Any) -> None:
        dxf.authenticate(username, password, response=response)  # the scope comes from the challenge
    return DXF(host, "dst/app", auth=auth, tlsverify=ca)


@pytest.mark.slow
def test_python_dxf_mounts_with_the_scope_the_challenge_names(azurite: Azurite, tmp_path: Path) -> None:
    cert, key, ca = make_tls(tmp_path)
    settings = test_settings(azurite)
    port = free_port()
    process = start_registry(settings, port, tls=(cert, key, ca))
    host = f"127.0.0.1:{port}"
    digest = "sha256:" + hashlib.sha256(LAYER).hexdigest()
    try:
        with httpx.Client(base_url=f"https://{host}", auth=(ADMIN_USER, ADMIN_PASSWORD),
                          verify=ssl.create_default_context(cafile=ca)) as admin:
            assert admin.post("/v2/src/app/blobs/uploads/", params={"digest": digest},
                              content=LAYER).status_code == 201
            mounter = _token(admin, "dxfmount", ["repositories/src/app/content/read",
                                                 "repositories/dst/app/content/read",
                                                 "repositories/dst/app/content/write"])
            pusher = _token(admin, "dxfpush", ["repositories/dst/app/content/read",
                                               "repositories/dst/app/content/write"])
            with pytest.raises(DXFMountFailed):  # may not read the source: a plain upload, no mount
                _dxf(host, ca, "dxfpush", pusher).mount_blob("src/app", digest)
            assert admin.head(f"/v2/dst/app/blobs/{digest}").status_code == 404
            assert _dxf(host, ca, "dxfmount", mounter).mount_blob("src/app", digest) == digest
            assert admin.head(f"/v2/dst/app/blobs/{digest}").status_code == 200
            assert admin.get(f"/v2/dst/app/blobs/{digest}", follow_redirects=True).content == LAYER
    finally:
        stop_process(process)
