"""skopeo and oras push and pull with a repository-scoped token, and are refused outside its scope."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import oras.client
import pytest
import requests

from scripts.azurite import Azurite, free_port, stop_process
from shared import cli
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, start_registry, test_settings
from tests.images import make_image

TOKEN = "teamci"


@dataclass
class ScopedRegistry:
    """A registry process with one token allowed to push and pull ``team/*`` only."""

    host: str
    password: str


@pytest.fixture(scope="module")
def scoped(azurite: Azurite) -> Iterator[ScopedRegistry]:
    """The registry over http with authentication on and a ``team/*`` token."""
    settings = test_settings(azurite)
    port = free_port()
    process = start_registry(settings, port)
    host = f"127.0.0.1:{port}"
    with httpx.Client(base_url=f"http://{host}", auth=(ADMIN_USER, ADMIN_PASSWORD)) as admin:
        actions = ["repositories/team/*/content/read", "repositories/team/*/content/write"]
        assert admin.put("/acr/admin/scopemaps/team-push", json={"actions": actions}).status_code == 200
        assert admin.put(f"/acr/admin/tokens/{TOKEN}", json={"scopeMap": "team-push"}).status_code == 200
        password = admin.post(f"/acr/admin/tokens/{TOKEN}/passwords", json={"name": "password2"}).json()["value"]
    yield ScopedRegistry(host, password)
    stop_process(process)


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", "--insecure-policy", "copy", "--retry-times", "0", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_skopeo_pushes_and_pulls_within_the_token_scope(scoped: ScopedRegistry, tmp_path: Path) -> None:
    digest = make_image(tmp_path / "src", [3000, 70_000], tag="v1")
    creds = f"{TOKEN}:{scoped.password}"
    push = _skopeo("--dest-tls-verify=false", "--dest-creds", creds, f"oci:{tmp_path / 'src'}:v1",
                   f"docker://{scoped.host}/team/web:v1")
    assert push.returncode == 0, push.stderr
    pull = _skopeo("--src-tls-verify=false", "--src-creds", creds, f"docker://{scoped.host}/team/web:v1",
                   f"oci:{tmp_path / 'dst'}:v1")
    assert pull.returncode == 0, pull.stderr
    assert digest.split(":")[1] in {p.name for p in (tmp_path / "dst" / "blobs" / "sha256").iterdir()}


def test_skopeo_is_refused_outside_the_token_scope(scoped: ScopedRegistry, tmp_path: Path) -> None:
    make_image(tmp_path / "src", [2000], tag="v1")
    creds = f"{TOKEN}:{scoped.password}"
    push = _skopeo("--dest-tls-verify=false", "--dest-creds", creds, f"oci:{tmp_path / 'src'}:v1",
                   f"docker://{scoped.host}/other/web:v1")
    assert push.returncode != 0
    assert any(w in push.stderr.lower() for w in ("403", "denied", "unauthorized")), push.stderr
    wrong = _skopeo("--dest-tls-verify=false", "--dest-creds", f"{TOKEN}:wrong", f"oci:{tmp_path / 'src'}:v1",
                    f"docker://{scoped.host}/team/web:v2")
    assert wrong.returncode != 0
    with httpx.Client(base_url=f"http://{scoped.host}", auth=(ADMIN_USER, ADMIN_PASSWORD)) as admin:
        assert admin.get("/v2/other/web/tags/list").status_code == 404
        assert admin.get("/v2/team/web/manifests/v2").status_code == 404


def _oras(scoped: ScopedRegistry, password: str) -> oras.client.OrasClient:
    # oras-py's token backend asks for a new token only after a 403, while registries (and the
    # Azure SDK) answer a token lacking a scope with 401; its basic backend sends the token's
    # credentials on every request, which /v2/ accepts.
    client = oras.client.OrasClient(hostname=scoped.host, insecure=True, auth_backend="basic")
    client.auth.set_basic_auth(TOKEN, password)
    return client


def test_oras_pushes_and_pulls_within_the_token_scope(scoped: ScopedRegistry, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("scoped artifact")
    client = _oras(scoped, scoped.password)
    response = client.push(target=f"{scoped.host}/team/notes:v1", files=["notes.txt"])
    assert response.status_code == 201
    pulled = client.pull(target=f"{scoped.host}/team/notes:v1", outdir=str(tmp_path / "out"))
    assert Path(pulled[0]).read_text() == "scoped artifact"


def test_oras_is_refused_outside_the_token_scope(scoped: ScopedRegistry, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("out of scope")
    client = _oras(scoped, scoped.password)
    with pytest.raises((ValueError, requests.HTTPError)):
        client.push(target=f"{scoped.host}/other/notes:v1", files=["notes.txt"])
    with httpx.Client(base_url=f"http://{scoped.host}", auth=(ADMIN_USER, ADMIN_PASSWORD)) as admin:
        assert admin.get("/v2/other/notes/tags/list").status_code == 404


def _cli(scoped: ScopedRegistry, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert cli.main(["--registry", f"http://{scoped.host}", "-u", ADMIN_USER, "-p", ADMIN_PASSWORD, *args]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if out.strip() else None


def test_cli_manages_scope_maps_tokens_roles_and_options(scoped: ScopedRegistry,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    actions = ["--action", "repositories/cli/*/content/read", "--action", "repositories/cli/*/metadata/read"]
    assert _cli(scoped, capsys, "scopemaps", "create", "cli-read", *actions)["type"] == "UserDefined"
    created = _cli(scoped, capsys, "tokens", "create", "clireader", "--scope-map", "cli-read")
    password = created["password1"]
    with httpx.Client(base_url=f"http://{scoped.host}") as http:
        assert http.get("/oauth2/token", auth=("clireader", password)).status_code == 200
        _cli(scoped, capsys, "tokens", "disable", "clireader")
        assert http.get("/oauth2/token", auth=("clireader", password)).status_code == 401
        _cli(scoped, capsys, "tokens", "enable", "clireader")
        rotated = _cli(scoped, capsys, "tokens", "password", "clireader", "--which", "password2")["value"]
        assert http.get("/oauth2/token", auth=("clireader", rotated)).status_code == 200
    tokens = _cli(scoped, capsys, "tokens", "list")["tokens"]
    assert {t["name"] for t in tokens} == {TOKEN, "clireader"}
    assignment = _cli(scoped, capsys, "roles", "assign", "5b2f0000-0000-4000-8000-000000000001",
                      "Container Registry Repository Reader", "--repository", "cli/*")
    assert assignment["repository"] == "cli/*"
    listed = _cli(scoped, capsys, "roles", "list", "--principal", "5b2f0000-0000-4000-8000-000000000001")
    assert [a["id"] for a in listed["roleAssignments"]] == [assignment["id"]]
    _cli(scoped, capsys, "roles", "remove", assignment["id"])
    assert _cli(scoped, capsys, "options", "set", "--anonymous-pull", "on")["anonymousPullEnabled"] is True
    assert _cli(scoped, capsys, "options", "set", "--anonymous-pull", "off")["anonymousPullEnabled"] is False
    _cli(scoped, capsys, "tokens", "delete", "clireader")
    _cli(scoped, capsys, "scopemaps", "delete", "cli-read")
    with pytest.raises(SystemExit, match="403"):
        cli.main(["--registry", f"http://{scoped.host}", "-u", TOKEN, "-p", scoped.password, "tokens", "list"])
