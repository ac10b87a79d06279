"""A process builds its container once: the triggers (and the app) reuse it, so a timer run after
the first creates no container, table or queue and loads no signing key. The storage calls are
counted at the storage clients' transport, as they leave for Azurite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from azure.functions.timer import TimerRequest

from scripts.azurite import Azurite
from shared.auth import tokens
from shared.composition import CAPABILITIES, close_containers, configure, open_container
from shared.kernel.configurator import Configurator
from shared.settings import Settings
from shared.storage import clients, layout
from tests.conftest import test_settings
from tests.indexed import indexed_functions


@pytest.fixture
def settings(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's settings, in the environment the trigger functions read."""
    settings = test_settings(azurite)
    for name, value in settings.source.items():
        monkeypatch.setenv(name, value)
    for name in ("REGISTRY_EVENTGRID_ENDPOINT", "REGISTRY_EVENTS_FUNCTIONS_URL", "REGISTRY_EVENTS_SUBSCRIBER_URLS"):
        monkeypatch.delenv(name, raising=False)
    return settings


@pytest.fixture(autouse=True)
async def _close_the_process_containers() -> AsyncIterator[None]:
    yield
    await close_containers()


@pytest.fixture
def storage_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """(method, path) of every storage request sent from now on."""
    calls: list[tuple[str, str]] = []
    send = clients.BoundedTransport.send

    async def counted(self: Any, request: Any, **kwargs: Any) -> Any:
        calls.append((request.method, request.url.split("?")[0].split("/", 4)[-1]))
        return await send(self, request, **kwargs)

    monkeypatch.setattr(clients.BoundedTransport, "send", counted)
    yield calls


@pytest.fixture
def signing_keys_loaded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per token signer made (each loads the signing key) from now on."""
    made: list[int] = []
    init = tokens.TokenSigner.__init__

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(tokens.TokenSigner, "__init__", counted)
    return made


async def _run(name: str) -> None:
    await indexed_functions()[name].get_user_function()(TimerRequest(past_due=False))


@pytest.mark.parametrize(("timer", "table"), [("republish_outbox", "repos"), ("purge_stale_uploads", "uploads")])
async def test_a_warm_timer_run_only_reads_what_it_works_on(
    settings: Settings, storage_calls: list[tuple[str, str]], signing_keys_loaded: list[int], timer: str, table: str
) -> None:
    await _run(timer)  # cold: the process's container is built, its container, tables and queues ensured
    assert ("POST", "Tables") in storage_calls
    storage_calls.clear()
    await _run(timer)
    assert storage_calls == [("GET", f"{settings.storage.prefix}{table}()")]
    assert signing_keys_loaded == []


async def test_the_container_creates_the_tables_a_capability_registers(settings: Settings) -> None:
    scans = layout.TableSpec("scans")

    def scanning(config: Configurator) -> None:
        config.add_tables(scans)

    container = await open_container(settings, configure((*CAPABILITIES, scanning)))
    try:
        table = container.storage.table("scans")
        assert table.table_name == f"{settings.storage.prefix}scans"
        await table.upsert_entity({"PartitionKey": "p", "RowKey": "r"})  # 404 had ensure() not created it
        assert [dict(row) async for row in table.list_entities()] == [{"PartitionKey": "p", "RowKey": "r"}]
    finally:
        await container.close()
