"""The storage snapshot behind every "nothing was stored" assertion sees every kind of write."""

from __future__ import annotations

import importlib.util

from azure.data.tables import UpdateMode
from azure.storage.blob import BlobBlock

from shared.settings import Settings
from tests.storage import StorageProbe


async def test_snapshot_sees_overwritten_rows_changed_flags_new_tables_blob_bytes_and_staged_blocks(
        settings: Settings, storage: StorageProbe) -> None:
    clients = storage.clients
    await clients.ensure()
    assert storage.is_empty(await storage.snapshot())  # empty tables hold nothing
    await clients.repos.create_entity({"PartitionKey": "_catalog", "RowKey": "app", "can_write": True})
    await clients.auth.create_entity({"PartitionKey": "token", "RowKey": "ci", "status": "enabled"})
    blob = clients.container.get_blob_client("data/one")
    await blob.upload_blob(b"0123456789")
    taken = [await storage.snapshot()]

    async def changed() -> bool:
        taken.append(await storage.snapshot())
        return taken[-1] != taken[-2]

    await clients.repos.update_entity({"PartitionKey": "_catalog", "RowKey": "app", "can_write": False},
                                      mode=UpdateMode.MERGE)
    assert await changed(), "a lock flag flipped"
    await clients.auth.upsert_entity({"PartitionKey": "token", "RowKey": "ci", "status": "enabled"},
                                     mode=UpdateMode.REPLACE)
    assert not await changed(), "a row rewritten with the same properties is the same row"
    await clients.auth.upsert_entity({"PartitionKey": "token", "RowKey": "ci", "status": "disabled"})
    assert await changed(), "a row of the auth table overwritten"
    await clients.events.create_entity({"PartitionKey": "c|webhooks", "RowKey": "event-1"})
    assert await changed(), "a row in the events table"
    await clients.webhooks.create_entity({"PartitionKey": "_webhooks", "RowKey": "hook"})
    assert await changed(), "a row in the webhooks table"
    await clients.table_service.create_table(settings.storage.prefix + "newtable")
    async with clients.table_service.get_table_client(settings.storage.prefix + "newtable") as table:
        await table.create_entity({"PartitionKey": "p", "RowKey": "r"})
    assert await changed(), "a row in a table the probe was never told about"
    assert taken[-1]["tables"]["newtable"] == {("p", "r"): {}}
    await blob.upload_blob(b"9876543210", overwrite=True)
    assert await changed(), "a blob rewritten with other bytes of the same size"
    await blob.stage_block("YmxvY2s=", b"staged")
    assert await changed(), "a block staged but not committed"
    await clients.container.get_blob_client("data/two").stage_block("YmxvY2s=", b"staged")
    assert await changed(), "a blob that has only staged blocks"
    await blob.commit_block_list([BlobBlock("YmxvY2s=")])
    assert await changed(), "staged blocks committed"
    assert taken[-1]["blobs"]["data/one"]["committed"] == [("YmxvY2s=", 6)]
    if importlib.util.find_spec("azure.storage.queue") is not None:  # once the registry uses queues
        from azure.storage.queue.aio import QueueServiceClient

        async with QueueServiceClient.from_connection_string(settings.storage.connection_string) as queues:
            await queues.create_queue(settings.storage.prefix + "-q")
            await queues.get_queue_client(settings.storage.prefix + "-q").send_message("delivery")
        assert await changed(), "a queue message"
