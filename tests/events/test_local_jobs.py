"""Local parity of the background functions: declared once, bound to the same triggers in Azure,
and run by ``make run`` (REGISTRY_BACKGROUND_JOBS) on the same NCRONTAB schedules with the same
plain functions; the queue consumer follows the host's retry rules."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from scripts.run_local import local_environment
from shared.api.capability import PURGE_STALE_UPLOADS
from shared.composition import CAPABILITIES, TIMERS, configure, create_app
from shared.composition import QUEUE_JOBS as QUEUES
from shared.events.capability import REPUBLISH_OUTBOX
from shared.kernel.configurator import Configurator
from shared.kernel.jobs import QUEUE_CONNECTION, Timer
from shared.local_jobs import QUEUE_HOST_SETTINGS, next_run, run_timer
from shared.settings import Settings
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.events.push import push_image
from tests.indexed import indexed_functions
from tests.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]


def test_the_azure_triggers_are_the_declared_timers_and_queues() -> None:
    functions = indexed_functions()
    timers = {n: f.get_trigger() for n, f in functions.items() if f.get_trigger().type == "timerTrigger"}
    assert {n: t.schedule for n, t in timers.items()} == {
        "purge_stale_uploads": "0 17 * * * *", "republish_outbox": "0 * * * * *"}
    assert {t.name: t.schedule for t in TIMERS} == {n: t.schedule for n, t in timers.items()}
    queues = {n: f.get_trigger() for n, f in functions.items() if f.get_trigger().type == "queueTrigger"}
    assert {n: (t.queue_name, t.connection) for n, t in queues.items()} == {
        "webhook_delivery": ("%REGISTRY_STORAGE_PREFIX%-webhooks", QUEUE_CONNECTION),
        "webhook_delivery_poison": ("%REGISTRY_STORAGE_PREFIX%-webhooks-poison", QUEUE_CONNECTION)}
    assert {q.name for q in QUEUES} == set(queues)


def test_host_json_queue_settings_are_the_ones_mimicked_locally() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["extensions"]["queues"] == QUEUE_HOST_SETTINGS


@pytest.mark.parametrize(("schedule", "after", "expected"), [
    ("0 17 * * * *", "2026-03-04T10:20:30", "2026-03-04T11:17:00"),
    ("0 17 * * * *", "2026-03-04T10:16:59", "2026-03-04T10:17:00"),
    ("0 17 * * * *", "2026-03-04T23:59:00", "2026-03-05T00:17:00"),
    ("0 * * * * *", "2026-03-04T10:20:30", "2026-03-04T10:21:00"),
    ("0 * * * * *", "2026-03-04T10:20:00", "2026-03-04T10:21:00"),  # strictly after
    ("*/15 * * * * *", "2026-03-04T10:20:31", "2026-03-04T10:20:45"),
    ("0 30 9 * * 1-5", "2026-03-06T10:00:00", "2026-03-09T09:30:00"),  # Friday -> Monday
    ("0 0 0 1 * *", "2026-02-15T00:00:00", "2026-03-01T00:00:00"),
])
def test_next_run_reads_ncrontab_with_seconds_first(schedule: str, after: str, expected: str) -> None:
    start = datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert next_run(schedule, start) == datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize("timer", TIMERS, ids=lambda t: t.name)
async def test_a_declared_timer_runs_its_plain_function_at_each_occurrence(timer: Timer) -> None:
    now = [datetime(2026, 3, 4, 10, 20, 30, tzinfo=UTC)]
    waits: list[float] = []
    runs: list[tuple[datetime, Settings]] = []
    settings = Settings.from_env({"REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"})

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] = now[0].fromtimestamp(now[0].timestamp() + seconds, UTC)

    async def record(given: Settings) -> None:
        runs.append((now[0], given))
        if len(runs) == 3:
            raise asyncio.CancelledError
        if len(runs) == 2:
            raise RuntimeError("a failing run is logged; the schedule goes on")

    with pytest.raises(asyncio.CancelledError):
        await run_timer(dataclasses.replace(timer, run=record), settings, clock=lambda: now[0], sleep=sleep)
    expected = {PURGE_STALE_UPLOADS.name: ["11:17:00", "12:17:00", "13:17:00"],
                REPUBLISH_OUTBOX.name: ["10:21:00", "10:22:00", "10:23:00"]}[timer.name]
    assert [t.strftime("%H:%M:%S") for t, _ in runs] == expected
    assert all(given is settings for _, given in runs)
    assert waits[0] == {PURGE_STALE_UPLOADS.name: 3390, REPUBLISH_OUTBOX.name: 30}[timer.name]


def test_make_run_turns_the_background_functions_on() -> None:
    env = local_environment({"REGISTRY_ADMIN_PASSWORD": "p"})
    assert Settings.from_env(env).jobs.enabled is True
    assert local_environment({"REGISTRY_BACKGROUND_JOBS": "false"})["REGISTRY_BACKGROUND_JOBS"] == "false"


async def test_the_web_process_runs_timers_and_the_queue_consumer_when_asked(
    settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks: list[datetime] = []

    async def tick(given: Settings) -> None:
        ticks.append(datetime.now(UTC))

    def every_second(config: Configurator) -> None:
        config.add_timer(Timer("every_second", "* * * * * *", tick))

    settings = settings.with_env(REGISTRY_BACKGROUND_JOBS="true", REGISTRY_WEBHOOK_ALLOW_PRIVATE="true")
    app = create_app(settings, configure((*CAPABILITIES, every_second)))
    storage = StorageClients(StorageAccount.from_settings(settings))
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r.test",
                                         auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
                created = await http.put("/acr/admin/webhooks/localhook", json={
                    "properties": {"serviceUri": f"{receiver.url}/hook", "actions": ["push"]}})
                assert created.status_code == 201
                pushed = await push_image(http, "local/app", "v1")
            await receiver.wait_for(lambda: len(receiver.at("/hook")) == 1, within=15)
            for _ in range(50):
                if len(ticks) >= 2:
                    break
                await asyncio.sleep(0.1)
        assert receiver.at("/hook")[0].json()["target"]["digest"] == pushed["digest"]
        assert len(ticks) >= 2
        assert all(t.microsecond < 800_000 for t in ticks)  # on the second, as "* * * * * *" says
        rows = [r async for r in storage.events.list_entities()]
        assert [(r["PartitionKey"], r["status"]) for r in rows] == [("w|localhook", "delivered")]
    finally:
        await storage.close()

