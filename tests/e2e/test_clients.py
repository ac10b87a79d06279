"""End to end over real HTTP with real clients (skopeo, oras-py) against the registry process,
with authentication on: each client logs in as the admin user or as a repository-scoped token
and goes through the registry's Bearer token flow (401 challenge, /oauth2/token, retry)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import httpx
import jwt
import oras.client
import oras.oci
import requests

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, LiveRegistry
from tests.images import make_image, make_multiarch

ADMIN = (ADMIN_USER, ADMIN_PASSWORD)


def skopeo(*args: str) -> str:
    """Run skopeo; fail the test with its output when it fails."""
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _blobs(layout: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}


def test_skopeo_logs_in_and_copies_a_multi_layer_image_in_and_out(live_registry: LiveRegistry,
                                                                   tmp_path: Path) -> None:
    source, back, authfile = tmp_path / "src", tmp_path / "back", str(tmp_path / "auth.json")
    digest = make_image(source, [512, 200_000, 3_000_000, 9 * 1024 * 1024 + 5])
    target = f"docker://{live_registry.host}/e2e/multi:v1"
    skopeo("login", "--tls-verify=false", "--authfile", authfile, "-u", ADMIN_USER, "-p", ADMIN_PASSWORD,
           live_registry.host)
    skopeo("copy", "--authfile", authfile, "--dest-tls-verify=false", f"oci:{source}:latest", target)
    inspected = json.loads(skopeo("inspect", "--authfile", authfile, "--tls-verify=false", target))
    assert inspected["Digest"] == digest
    assert len(inspected["Layers"]) == 4
    skopeo("copy", "--authfile", authfile, "--src-tls-verify=false", target, f"oci:{back}:latest")
    index = json.loads((back / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    assert _blobs(back) == _blobs(source)
    for name, data in _blobs(back).items():
        assert hashlib.sha256(data).hexdigest() == name
    anonymous = subprocess.run(["skopeo", "inspect", "--no-creds", "--tls-verify=false", target],
                               capture_output=True, text=True, timeout=60)
    assert anonymous.returncode != 0 and "unauthorized" in anonymous.stderr.lower(), anonymous.stderr


def test_skopeo_copies_all_of_a_multi_arch_index_with_a_scoped_token(live_registry: LiveRegistry,
                                                                      tmp_path: Path) -> None:
    source, back = tmp_path / "src", tmp_path / "back"
    creds = f"{live_registry.token}:{live_registry.token_password}"
    digest = make_multiarch(source, ["amd64", "arm64", "ppc64le"])
    target = f"docker://{live_registry.host}/e2e/scoped/multiarch:v1"
    skopeo("copy", "--all", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{source}:latest", target)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds, target).encode()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    skopeo("copy", "--all", "--src-tls-verify=false", "--src-creds", creds, target, f"oci:{back}:latest")
    assert json.loads((back / "index.json").read_text())["manifests"][0]["digest"] == digest
    assert _blobs(back) == _blobs(source)
    arm = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", creds, "--override-arch", "arm64", target))
    assert arm["Architecture"] == "arm64"
    outside = subprocess.run(["skopeo", "copy", "--all", "--dest-tls-verify=false", "--dest-creds", creds,
                              "--retry-times", "0", f"oci:{source}:latest",
                              f"docker://{live_registry.host}/e2e/unscoped:v1"],
                             capture_output=True, text=True, timeout=120)
    assert outside.returncode != 0
    with httpx.Client(base_url=live_registry.url, auth=ADMIN) as admin:
        assert admin.get("/v2/e2e/unscoped/tags/list").status_code == 404


def _oras(live_registry: LiveRegistry, tmp_path: Path, username: str, password: str,
          push_to: str = "") -> oras.client.OrasClient:
    """An oras-py client (its default token auth backend) logged in through its own ``login``.

    oras-py keeps one Bearer token and fetches a new one only after a 403, while registries
    (distribution, ACR, this one) answer a token that lacks a scope with 401 and a challenge. Its
    first challenge therefore decides what its token may do; a push starts with a HEAD (pull), so
    for ``push_to`` the client answers the upload's challenge (pull,push) first, with its own
    challenge parsing and token request.
    """
    client = oras.client.OrasClient(hostname=live_registry.host, insecure=True)
    client.login(username, password, hostname=live_registry.host, config_path=str(tmp_path / "config.json"))
    if push_to:
        challenge = requests.post(f"{live_registry.url}/v2/{push_to}/blobs/uploads/", timeout=30)
        assert challenge.status_code == 401
        _, authenticated = client.auth.authenticate_request(challenge, {})
        assert authenticated
    return client


def _granted(client: oras.client.OrasClient) -> list[dict[str, object]]:
    """The access the Bearer token oras-py fetched from /oauth2/token carries."""
    token = client.auth.token  # type: ignore[attr-defined]
    assert token, "oras-py sent no Bearer token"
    access: list[dict[str, object]] = jwt.decode(token, options={"verify_signature": False})["access"]
    return access


def test_oras_pushes_and_pulls_an_artifact_and_a_referrer_through_the_token_flow(
        live_registry: LiveRegistry, tmp_path: Path) -> None:
    repository = "e2e/scoped/artifact"
    client = _oras(live_registry, tmp_path, live_registry.token, live_registry.token_password, repository)
    artifact = tmp_path / "artifact.txt"
    artifact.write_bytes(b"hello from oras\n" * 1000)
    target = f"{live_registry.host}/{repository}:v1"
    pushed = client.push(target=target, files=[str(artifact)], disable_path_validation=True)
    assert pushed.status_code == 201
    assert {"type": "repository", "name": repository, "actions": ["pull", "push"]} in _granted(client)
    chunked = tmp_path / "chunked.bin"
    chunked.write_bytes(bytes(range(256)) * 8192)
    assert client.push(target=f"{live_registry.host}/{repository}:chunked", files=[str(chunked)],
                       disable_path_validation=True, do_chunked=True, chunk_size=300_000).status_code == 201
    out = tmp_path / "out"
    files = _oras(live_registry, tmp_path / "pull", live_registry.token, live_registry.token_password).pull(
        target=target, outdir=str(out))
    assert [Path(f).read_bytes() for f in files] == [artifact.read_bytes()]
    files = client.pull(target=f"{live_registry.host}/{repository}:chunked", outdir=str(tmp_path / "out2"))
    assert Path(files[0]).read_bytes() == chunked.read_bytes()

    subject = httpx.head(f"{live_registry.url}/v2/{repository}/manifests/v1", auth=ADMIN,
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    subject_digest = subject.headers["docker-content-digest"]
    signature = tmp_path / "signature.sig"
    signature.write_bytes(b"signed")
    referrer = client.push(target=f"{live_registry.host}/{repository}", files=[str(signature)],
                           subject=oras.oci.Subject(  # type: ignore[arg-type]
                               mediaType=subject.headers["content-type"], digest=subject_digest,
                               size=int(subject.headers["content-length"])),
                           disable_path_validation=True)
    assert referrer.status_code == 201
    assert referrer.headers["oci-subject"] == subject_digest
    listed = httpx.get(f"{live_registry.url}/v2/{repository}/referrers/{subject_digest}", auth=ADMIN).json()
    assert [m["digest"] for m in listed["manifests"]] == [referrer.headers["docker-content-digest"]]


def test_oras_as_the_admin_user_gets_tokens_of_the_scopes_each_challenge_asks(
        live_registry: LiveRegistry, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("admin's notes")
    client = _oras(live_registry, tmp_path, ADMIN_USER, ADMIN_PASSWORD, "e2e/admin-notes")
    target = f"{live_registry.host}/e2e/admin-notes:v1"
    assert client.push(target=target, files=[str(tmp_path / "notes.txt")],
                       disable_path_validation=True).status_code == 201
    assert {"type": "repository", "name": "e2e/admin-notes", "actions": ["pull", "push"]} in _granted(client)
    reader = _oras(live_registry, tmp_path / "reader", ADMIN_USER, ADMIN_PASSWORD)  # challenged by the pull
    pulled = reader.pull(target=target, outdir=str(tmp_path / "out"))
    assert Path(pulled[0]).read_text() == "admin's notes"
    assert _granted(reader) == [{"type": "repository", "name": "e2e/admin-notes", "actions": ["pull"]}]


def test_blob_pull_follows_the_sas_redirect(live_registry: LiveRegistry) -> None:
    data = bytes(range(256)) * 4096
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=live_registry.url, auth=ADMIN) as registry:
        token = registry.get("/oauth2/token", params={
            "service": live_registry.host, "scope": "repository:e2e/redirect:pull,push"}).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    started = httpx.post(f"{live_registry.url}/v2/e2e/redirect/blobs/uploads/", headers=bearer)
    location = live_registry.url + started.headers["location"]
    assert httpx.put(location, params={"digest": digest}, content=data, headers=bearer).status_code == 201
    with httpx.Client(follow_redirects=True) as client:
        response = client.get(f"{live_registry.url}/v2/e2e/redirect/blobs/{digest}", headers=bearer)
        assert response.status_code == 200
        assert response.history[0].status_code == 307
        assert response.url.host == "127.0.0.1" and response.url.port != int(live_registry.host.split(":")[1])
        assert response.content == data
