"""End to end over real HTTP with real clients: skopeo and oras against the registry process."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import httpx
import oras.client
import oras.oci

from tests.conftest import LiveRegistry
from tests.images import make_image, make_multiarch


def skopeo(*args: str) -> str:
    """Run skopeo; fail the test with its output when it fails."""
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _blobs(layout: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}


def test_skopeo_copies_a_multi_layer_image_in_and_out(live_registry: LiveRegistry, tmp_path: Path) -> None:
    source, back = tmp_path / "src", tmp_path / "back"
    digest = make_image(source, [512, 200_000, 3_000_000, 9 * 1024 * 1024 + 5])
    skopeo("copy", "--dest-tls-verify=false", f"oci:{source}:latest", f"docker://{live_registry.host}/e2e/multi:v1")
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{live_registry.host}/e2e/multi:v1"))
    assert inspected["Digest"] == digest
    assert len(inspected["Layers"]) == 4
    skopeo("copy", "--src-tls-verify=false", f"docker://{live_registry.host}/e2e/multi:v1", f"oci:{back}:latest")
    index = json.loads((back / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    assert _blobs(back) == _blobs(source)
    for name, data in _blobs(back).items():
        assert hashlib.sha256(data).hexdigest() == name


def test_skopeo_copy_all_of_a_multi_arch_index(live_registry: LiveRegistry, tmp_path: Path) -> None:
    source, back = tmp_path / "src", tmp_path / "back"
    digest = make_multiarch(source, ["amd64", "arm64", "ppc64le"])
    target = f"docker://{live_registry.host}/e2e/multiarch:v1"
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{source}:latest", target)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", target).encode()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    skopeo("copy", "--all", "--src-tls-verify=false", target, f"oci:{back}:latest")
    assert json.loads((back / "index.json").read_text())["manifests"][0]["digest"] == digest
    assert _blobs(back) == _blobs(source)
    arm = json.loads(skopeo("inspect", "--tls-verify=false", "--override-arch", "arm64", target))
    assert arm["Architecture"] == "arm64"


def test_oras_pushes_and_pulls_an_artifact_and_a_referrer(live_registry: LiveRegistry, tmp_path: Path) -> None:
    client = oras.client.OrasClient(hostname=live_registry.host, insecure=True)
    artifact = tmp_path / "artifact.txt"
    artifact.write_bytes(b"hello from oras\n" * 1000)
    target = f"{live_registry.host}/e2e/artifact:v1"
    pushed = client.push(target=target, files=[str(artifact)], disable_path_validation=True)
    assert pushed.status_code == 201
    chunked = tmp_path / "chunked.bin"
    chunked.write_bytes(bytes(range(256)) * 8192)
    assert client.push(target=f"{live_registry.host}/e2e/artifact:chunked", files=[str(chunked)],
                       disable_path_validation=True, do_chunked=True, chunk_size=300_000).status_code == 201
    out = tmp_path / "out"
    files = client.pull(target=target, outdir=str(out))
    assert [Path(f).read_bytes() for f in files] == [artifact.read_bytes()]
    files = client.pull(target=f"{live_registry.host}/e2e/artifact:chunked", outdir=str(tmp_path / "out2"))
    assert Path(files[0]).read_bytes() == chunked.read_bytes()

    subject = httpx.head(f"{live_registry.url}/v2/e2e/artifact/manifests/v1",
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    subject_digest = subject.headers["docker-content-digest"]
    signature = tmp_path / "signature.sig"
    signature.write_bytes(b"signed")
    referrer = client.push(target=f"{live_registry.host}/e2e/artifact", files=[str(signature)],
                           subject=oras.oci.Subject(  # type: ignore[arg-type]
                               mediaType=subject.headers["content-type"], digest=subject_digest,
                               size=int(subject.headers["content-length"])),
                           disable_path_validation=True)
    assert referrer.status_code == 201
    assert referrer.headers["oci-subject"] == subject_digest
    listed = httpx.get(f"{live_registry.url}/v2/e2e/artifact/referrers/{subject_digest}").json()
    assert [m["digest"] for m in listed["manifests"]] == [referrer.headers["docker-content-digest"]]


def test_blob_pull_follows_the_sas_redirect(live_registry: LiveRegistry, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = httpx.post(f"{live_registry.url}/v2/e2e/redirect/blobs/uploads/")
    location = live_registry.url + started.headers["location"]
    assert httpx.put(location, params={"digest": digest}, content=data).status_code == 201
    with httpx.Client(follow_redirects=True) as client:
        response = client.get(f"{live_registry.url}/v2/e2e/redirect/blobs/{digest}")
        assert response.status_code == 200
        assert response.history[0].status_code == 307
        assert response.url.host == "127.0.0.1" and response.url.port != int(live_registry.host.split(":")[1])
        assert response.content == data
