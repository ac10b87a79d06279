"""End to end: a real registry process, skopeo pushing, webhooks reaching a local receiver, and a
real SIGKILL between a commit and its publication.

The kill is made deterministic by the ``kill_after_commit`` fault (tests/faults.py): with it the
registry process SIGKILLs itself right after the transaction that commits a manifest and its outbox
row, before the event is published. The restarted process finds the row (its sweeper runs at start-up) and delivers.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from scripts.azurite import Azurite, free_port
from shared.storage import layout
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, LiveRegistry, start_registry, test_settings
from tests.events.push import push_blob
from tests.events.schemas import validate_payload
from tests.images import OCI_MANIFEST, make_image
from tests.receiver import Receiver
from tests.storage import StorageProbe

EVENTS_ENV = {"REGISTRY_WEBHOOK_ALLOW_PRIVATE": "true", "REGISTRY_WEBHOOK_RETRY_MS": "0",
              "REGISTRY_BACKGROUND_JOBS": "true"}


@pytest.fixture(scope="module")
def events_registry(azurite: Azurite) -> Iterator[LiveRegistry]:
    """A registry process whose webhooks may call the loopback receiver."""
    settings = test_settings(azurite)
    port = free_port()
    process = start_registry(settings, port, EVENTS_ENV)
    yield LiveRegistry(f"127.0.0.1:{port}", settings)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
async def admin(events_registry: LiveRegistry) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the registry process."""
    async with httpx.AsyncClient(base_url=events_registry.url, timeout=30, auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        yield http


async def _webhook(http: httpx.AsyncClient, name: str, uri: str, **properties: object) -> None:
    response = await http.put(f"/acr/admin/webhooks/{name}",
                              json={"properties": {"serviceUri": uri, "actions": ["push", "delete"], **properties}})
    assert response.status_code == 201, response.text


async def _skopeo_push(layout_dir: Path, reference: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
        f"--dest-creds={ADMIN_USER}:{ADMIN_PASSWORD}",
        f"oci:{layout_dir}:v1", f"docker://{reference}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, (out + err).decode()


async def test_skopeo_push_and_delete_reach_webhooks_as_acr_payloads(
    events_registry: LiveRegistry, admin: httpx.AsyncClient, receiver: Receiver, tmp_path: Path
) -> None:
    await _webhook(admin, "e2eall", f"{receiver.url}/all", scope="e2e/app:*")
    await _webhook(admin, "e2eother", f"{receiver.url}/other", scope="other:*")
    await _webhook(admin, "e2eoff", f"{receiver.url}/disabled", scope="e2e/app:*", status="disabled")
    await _webhook(admin, "e2eflaky", f"{receiver.url}/flaky", scope="e2e/app:v1", actions=["push"])
    receiver.failures["/flaky"] = 3
    digest = make_image(tmp_path / "image", [2048, 4096], tag="v1")
    size = (tmp_path / "image" / "blobs" / "sha256" / digest.split(":")[1]).stat().st_size

    await _skopeo_push(tmp_path / "image", f"{events_registry.host}/e2e/app:v1")
    await receiver.wait_for(lambda: len(receiver.at("/all")) >= 1 and len(receiver.at("/flaky")) >= 4)
    await asyncio.sleep(1.0)  # anything more (a push per layer, a duplicate) would arrive by now
    [push] = [c.json() for c in receiver.at("/all")]
    validate_payload(push)
    assert push["action"] == "push"
    assert push["target"] == {"mediaType": OCI_MANIFEST, "size": size, "digest": digest, "length": size,
                              "repository": "e2e/app", "tag": "v1"}
    assert push["request"]["method"] == "PUT"
    assert push["request"]["host"] == events_registry.host
    assert push["request"]["useragent"]
    assert receiver.at("/other") == []
    assert receiver.at("/disabled") == []
    assert [c.json() for c in receiver.at("/flaky")][-1] == push

    log = (await admin.post("/acr/admin/webhooks/e2eflaky/listEvents")).json()["value"]
    assert [e["eventResponseMessage"]["statusCode"] for e in log] == [200, 500, 500, 500]
    assert all(json.loads(e["eventRequestMessage"]["content"]) == push for e in log)

    deleted = await admin.delete(f"/v2/e2e/app/manifests/{digest}")
    assert deleted.status_code == 202
    await receiver.wait_for(lambda: len(receiver.at("/all")) >= 2)
    await asyncio.sleep(0.5)
    calls = [c.json() for c in receiver.at("/all")]
    assert [c["action"] for c in calls] == ["push", "delete"]
    validate_payload(calls[1])
    assert calls[1]["target"] == {"mediaType": OCI_MANIFEST, "digest": digest, "repository": "e2e/app"}
    assert calls[1]["request"]["method"] == "DELETE"
    assert len(receiver.at("/flaky")) == 4  # push only
    assert receiver.at("/other") == [] and receiver.at("/disabled") == []


async def _outbox(probe: StorageProbe) -> list[str]:
    return [str(r["RowKey"]) for r in await probe.rows("repos") if str(r["RowKey"]).startswith(layout.OUTBOX)]


async def test_a_kill_between_commit_and_publish_loses_nothing(azurite: Azurite, receiver: Receiver) -> None:
    settings = test_settings(azurite)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    doomed = await asyncio.to_thread(start_registry, settings, port, EVENTS_ENV, fault="kill_after_commit")
    restarted = None
    probe = StorageProbe(settings)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30, auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
            await _webhook(http, "survivor", f"{receiver.url}/hook")
            config = await push_blob(http, "kill/app", b'{"architecture":"amd64","os":"linux"}')
            layer = await push_blob(http, "kill/app", b"layer")
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
            }).encode()
            with pytest.raises(httpx.TransportError):
                await http.put("/v2/kill/app/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert await asyncio.to_thread(doomed.wait, 10) == -signal.SIGKILL
        assert len(await _outbox(probe)) == 1  # committed, not published
        assert receiver.received == []

        restarted = await asyncio.to_thread(start_registry, settings, port, {
            **EVENTS_ENV, "REGISTRY_OUTBOX_SWEEP_SECONDS": "1", "REGISTRY_OUTBOX_GRACE_SECONDS": "0"})
        await receiver.wait_for(lambda: len(receiver.at("/hook")) >= 1)
        [event] = [c.json() for c in receiver.at("/hook")]
        validate_payload(event)
        assert (event["action"], event["target"]["repository"], event["target"]["tag"]) == ("push", "kill/app", "v1")
        assert event["target"]["size"] == len(manifest)
        for _ in range(50):
            if not await _outbox(probe):
                break
            await asyncio.sleep(0.1)
        assert await _outbox(probe) == []
    finally:
        await probe.close()
        for process in (doomed, restarted):
            if process is not None and process.poll() is None:
                process.terminate()
                await asyncio.to_thread(process.wait, 10)
