"""Helpers of the manifest tests: full storage snapshots, rows written straight into storage, and
wrappers around the app's storage clients that observe calls or force a competing write."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty
from starlette.applications import Starlette

from shared.composition import Registry, open_registry
from tests.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, descriptor, push_blob
from tests.storage import StorageProbe

TABLES = ("blobs", "uploads", "repos", "webhooks", "events", "auth")


async def registry_of_app(app: Starlette) -> Registry:
    """The app's registry (opened now if no request has opened it yet)."""
    return await open_registry(app.state)


async def everything(storage: StorageProbe) -> dict[str, Any]:
    """Every blob (name, size and ETag, which changes with any write) and every row of every
    table, whole."""
    try:
        blobs = {b.name: (b.size, b.etag) async for b in storage.clients.container.list_blobs()}
    except ResourceNotFoundError:
        blobs = {}
    rows = {table: sorted((await storage.rows(table)), key=lambda r: (r["PartitionKey"], r["RowKey"]))
            for table in TABLES}
    return {"container": blobs, **rows}


def encode(name: str) -> str:
    """The partition key of a repository, written out independently of the code under test:
    ``/`` becomes ``0`` and each digit moves up by one."""
    return "".join("0" if c == "/" else chr(ord(c) + 1) if c.isdigit() else c for c in name)


async def link_rows(storage: StorageProbe, repository: str, sizes: dict[str, int], location: str = "data/none") -> None:
    """Link blobs of the given digests and sizes (Int64) into ``repository`` directly in storage,
    as a finished upload would: test setup for sizes no test can afford to upload."""
    ops: list[Any] = []
    for digest, size in sizes.items():
        ops.append(("upsert", {"PartitionKey": encode(repository), "RowKey": f"l|{digest}",
                               "size": EntityProperty(size, EdmType.INT64), "location": location}))
    for start in range(0, len(ops), 100):
        await storage.clients.repos.submit_transaction(ops[start:start + 100])


async def put(client: httpx.AsyncClient, repository: str, reference: str, body: bytes | dict[str, Any],
              content_type: str) -> httpx.Response:
    """PUT a manifest given as bytes or as a JSON document."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.put(f"/v2/{repository}/manifests/{reference}", content=raw,
                            headers={"Content-Type": content_type})


def error_code(response: httpx.Response) -> str:
    """The first error code of an error answer."""
    return str(response.json()["errors"][0]["code"])


class TableSpy:
    """Wraps a TableClient: counts the calls made through it and runs ``before_commit`` (once) or
    ``before_every_commit`` just before a transaction is submitted: a competing write forced
    between a read and its commit."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self.calls: dict[str, int] = {}
        self.before_commit: Callable[[], Awaitable[None]] | None = None
        self.before_every_commit: Callable[[], Awaitable[None]] | None = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._table, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return attribute(*args, **kwargs)
        return counted

    async def submit_transaction(self, operations: Any, **kwargs: Any) -> Any:
        self.calls["submit_transaction"] = self.calls.get("submit_transaction", 0) + 1
        hook, self.before_commit = self.before_commit, None
        if hook is not None:
            await hook()
        if self.before_every_commit is not None:
            await self.before_every_commit()
        return await self._table.submit_transaction(operations, **kwargs)


class DownloadSpy:
    """Wraps the blob container client and records (blob, offset, length) of every download."""

    def __init__(self, container: Any) -> None:
        self._container = container
        self.downloads: list[tuple[str, int | None, int | None]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def get_blob_client(self, blob: str) -> Any:
        spy = self

        class Blob:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            async def download_blob(self, offset: int | None = None, length: int | None = None,
                                    **kwargs: Any) -> Any:
                spy.downloads.append((blob, offset, length))
                return await real.download_blob(offset=offset, length=length, **kwargs)

        real = self._container.get_blob_client(blob)
        return Blob()


async def small_image(client: httpx.AsyncClient, repository: str) -> tuple[dict[str, Any], bytes, bytes]:
    """Push a small config and a 70-byte layer into ``repository``; returns (an OCI image manifest
    of them, the config, the layer)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(4).hex()}).encode()
    layer = os.urandom(70)
    await push_blob(client, repository, config)
    await push_blob(client, repository, layer)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
           "layers": [descriptor(OCI_LAYER, layer)]}
    return doc, config, layer
