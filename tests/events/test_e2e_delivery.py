"""End to end, through a real registry process running its background jobs as ``make run`` does:
a webhook endpoint down for minutes during ten pushes gets each event exactly once when it comes
back; one that never comes back is dead-lettered, listed, and re-delivered by the admin API and by
the CLI (``python -m shared.cli``)."""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from scripts.azurite import ROOT, Azurite, free_port, stop_process
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, start_registry, test_settings
from tests.events.push import push_image
from tests.receiver import Receiver

BACKGROUND = {"REGISTRY_WEBHOOK_ALLOW_PRIVATE": "true", "REGISTRY_BACKGROUND_JOBS": "true",
              "REGISTRY_WEBHOOK_TIMEOUT_SECONDS": "2"}


async def _registry(azurite: Azurite, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = await asyncio.to_thread(start_registry, test_settings(azurite), port, {**BACKGROUND, **env})
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture
async def dead_letter_registry(azurite: Azurite) -> AsyncIterator[str]:
    """A registry that gives up on a webhook after two attempts."""
    process, url = await _registry(azurite, {"REGISTRY_WEBHOOK_MAX_ATTEMPTS": "2", "REGISTRY_WEBHOOK_RETRY_MS": "0"})
    yield url
    await asyncio.to_thread(stop_process, process)


def _cli(url: str, *args: str) -> object:
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "--registry", url, "-u", ADMIN_USER, "-p", ADMIN_PASSWORD, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def _ids(receiver: Receiver, path: str) -> collections.Counter[str]:
    return collections.Counter(call.json()["id"] for call in receiver.at(path))


async def test_dead_letters_are_listed_and_redelivered_by_the_api_and_the_cli(
    dead_letter_registry: str, receiver: Receiver
) -> None:
    url = dead_letter_registry
    receiver.statuses["/down"] = 503
    async with httpx.AsyncClient(base_url=url, timeout=30, auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        await asyncio.to_thread(_cli, url, "webhooks", "create", "downhook", "--uri", f"{receiver.url}/down",
                                "--action", "push", "--header", "X-Key: k1")
        await push_image(http, "dl/app", "v1", seed=1)
        await push_image(http, "dl/app", "v2", seed=2)
        await receiver.wait_for(lambda: len(receiver.at("/down")) >= 4)

        async def dead() -> list[dict[str, object]]:
            letters = (await http.get("/acr/admin/webhooks/downhook/deadLetters")).json()["value"]
            return list(letters)

        for _ in range(100):
            if len(await dead()) == 2:
                break
            await asyncio.sleep(0.1)
        letters = await asyncio.to_thread(_cli, url, "webhooks", "deadletters", "downhook")
        assert isinstance(letters, dict)
        listed = {letter["event"]["target"]["tag"]: letter for letter in letters["value"]}
        assert set(listed) == {"v1", "v2"}
        assert all(letter["attempts"] == 2 and letter["lastStatusCode"] == 503 for letter in listed.values())
        assert len(receiver.at("/down")) == 4  # two attempts each, then nothing more

        del receiver.statuses["/down"]
        first = str(listed["v1"]["eventId"])
        api = await http.post(f"/acr/admin/webhooks/downhook/deadLetters/{first}/redeliver")
        assert api.status_code == 202 and api.json() == {"value": [first]}
        await receiver.wait_for(lambda: _ids(receiver, "/down")[first] == 3)
        assert await asyncio.to_thread(_cli, url, "webhooks", "redeliver", "downhook") == {
            "value": [listed["v2"]["eventId"]]}
        await receiver.wait_for(lambda: _ids(receiver, "/down")[str(listed["v2"]["eventId"])] == 3)
        await asyncio.sleep(1.0)  # nothing more arrives
        assert await dead() == []
    assert sorted(_ids(receiver, "/down").values()) == [3, 3]
    assert {call.headers["X-Key"] for call in receiver.at("/down")} == {"k1"}


@pytest.mark.slow
async def test_an_endpoint_down_for_three_minutes_during_ten_pushes_gets_all_ten_exactly_once(
    azurite: Azurite
) -> None:
    """The default 30 attempts, but after 1 s doubling to 8 s: about 215 s of retries. Midway the
    registry process is killed (SIGKILL) and another started: the schedule lives in the queue."""
    settings = test_settings(azurite)
    env = {**BACKGROUND, "REGISTRY_WEBHOOK_RETRY_MS": "1000", "REGISTRY_WEBHOOK_RETRY_MAX_SECONDS": "8"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = await asyncio.to_thread(start_registry, settings, port, env)
    down = Receiver()  # its port is reserved; nothing listens until it starts
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30, auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
            created = await http.put("/acr/admin/webhooks/outage1", json={
                "properties": {"serviceUri": f"{down.url}/hook", "actions": ["push"]}})
            assert created.status_code == 201
            pushed = [await push_image(http, "outage/app", f"v{n}", seed=n) for n in range(10)]
            await asyncio.sleep(90)
            process.kill()
            await asyncio.to_thread(process.wait, 10)
            process = await asyncio.to_thread(start_registry, settings, port, env)
            await asyncio.sleep(90)
            await down.start()
            await down.wait_for(lambda: len(down.at("/hook")) >= 10, within=60)
            await asyncio.sleep(10)  # a duplicate, if any, would arrive by now
            log = (await http.post("/acr/admin/webhooks/outage1/listEvents")).json()["value"]
    finally:
        await down.stop()
        await asyncio.to_thread(stop_process, process)
    received = [call.json() for call in down.at("/hook")]
    assert sorted(p["target"]["digest"] for p in received) == sorted(p["digest"] for p in pushed)
    assert collections.Counter(p["id"] for p in received).most_common(1)[0][1] == 1  # exactly once each
    # newest first: the ten deliveries, then failed attempts made while the endpoint was down
    assert [e["eventResponseMessage"]["statusCode"] for e in log[:10]] == [200] * 10
    assert len(log) == 100 and all(e["eventResponseMessage"]["statusCode"] is None for e in log[10:])
