"""Copying a blob's bytes from one region's container to another's.

This first version streams the bytes through the process in bounded pieces; the server-side
copy (Put Block From URL with a read SAS of the source) replaces it.
"""

from __future__ import annotations

import base64

from azure.storage.blob import BlobBlock

from shared.storage.interfaces import Storage

BLOCK_BYTES = 8 * 1024 * 1024


async def copy_blob(source: Storage, source_name: str, target: Storage, target_name: str, size: int,
                    metadata: dict[str, str] | None = None) -> None:
    """Copy blob ``source_name`` of ``source``'s container (``size`` bytes) to ``target_name`` in
    ``target``'s container, as a block blob committed once (with ``metadata``): the target blob
    exists only complete, and copying the same bytes to the same name twice leaves one blob."""
    blob = target.container.get_blob_client(target_name)
    ids: list[str] = []
    for index, start in enumerate(range(0, size, BLOCK_BYTES)):
        length = min(BLOCK_BYTES, size - start)
        download = await source.container.get_blob_client(source_name).download_blob(offset=start, length=length)
        data = await download.readall()
        block_id = base64.b64encode(f"{index:08d}".encode()).decode()
        await blob.stage_block(block_id, data, length=len(data))
        ids.append(block_id)
    await blob.commit_block_list([BlobBlock(block_id=i) for i in ids], metadata=metadata)
