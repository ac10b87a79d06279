"""Committing a manifest: its row, its tag's row, its referrer row and its events, in one
entity-group transaction of the repository's partition, so a reader sees all of them or none.

Concurrency. The tag row is replaced only if it is unchanged since it was read (ETag), and a tag
whose write lock is set when it is read refuses the push: so a lock set, or another push made,
between the read and the transaction is never lost; the transaction fails and is retried on
fresh rows, after a jittered pause that grows with each attempt. The manifest row's properties
derive from its bytes, the same for every writer, so an existing row is merged into (its lock
flags and creation time stay) and needs no ETag; it conflicts only with a concurrent first push
or delete of the same manifest.

Many writers of one tag at once: when a retry finds that the tag names another manifest than it
did at this push's first read, another push moved it after this one began. The two overlap, so
this push is ordered just before that one, whose tag stands: it commits its manifest and event
without rewriting the tag. Every writer thus succeeds within one or two attempts however many
there are, the tag ends at the last push in that order, and every manifest is pullable by
digest. A commit that still cannot succeed within :data:`COMMIT_SECONDS` (a row rewritten
without end) answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import EntityProperty, TableTransactionError

from shared.errors import Locked, Unavailable
from shared.events.model import RegistryEvent
from shared.kernel.interfaces import EventSink
from shared.oci.errors import InvalidManifest
from shared.storage import layout
from shared.storage.interfaces import Storage
from shared.storage.queries import get_or_none
from shared.storage.rows import Locks, ManifestRow, ReferrerRow, TagRow

#: How long one commit may retry before it answers 503.
COMMIT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 1
_FIRST_PAUSE = 0.005
_LONGEST_PAUSE = 0.25
#: Azure Table limits: a string property holds 32 Ki UTF-16 units, a binary one 64 KiB, a row 1 MiB.
PROPERTY_CHARS = 32 * 1024
PROPERTY_BYTES = 64 * 1024
ROW_BYTES = 1024 * 1024
_CONFLICTS = frozenset({"EntityAlreadyExists", "UpdateConditionNotSatisfied", "ResourceNotFound"})


def _now() -> datetime:
    return datetime.now(UTC)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def oversized(row: dict[str, Any]) -> str | None:
    """The name of a property of ``row`` too large for a table (or ``"row"``), else None."""
    total = 4 + 2 * (_units(row["PartitionKey"]) + _units(row["RowKey"]))
    for name, value in row.items():
        if name in ("PartitionKey", "RowKey"):
            continue
        raw = value.value if isinstance(value, EntityProperty) else value
        if isinstance(raw, str):
            if _units(raw) > PROPERTY_CHARS:
                return name
            length = 2 * _units(raw) + 4
        elif isinstance(raw, bytes):
            if len(raw) > PROPERTY_BYTES:
                return name
            length = len(raw) + 4
        else:
            length = 8
        total += 8 + 2 * _units(name) + length
    return "row" if total > ROW_BYTES else None


@dataclass(frozen=True)
class Commit:
    """What one manifest PUT writes."""

    manifest: ManifestRow  # every property derived from its bytes (no times, no lock flags)
    tag: str | None
    referrer: ReferrerRow | None  # when the manifest has a subject
    events: tuple[RegistryEvent, ...]

    @property
    def partition(self) -> str:
        """The repository's partition, where every row of the commit lives."""
        return layout.encode_repository(self.manifest.repository)

    @property
    def digest(self) -> str:
        """The manifest's digest."""
        return self.manifest.digest


def _busy() -> Unavailable:
    return Unavailable("too many concurrent updates of this tag or manifest; retry later",
                       retry_after=RETRY_AFTER_SECONDS)


def check_sizes(change: Commit, events: EventSink[RegistryEvent]) -> None:
    """InvalidManifest when a row ``change`` writes (``events``' rows among them) would exceed a
    table limit (a Helm chart's 40,000-character title, say), before anything is written."""
    now = _now()
    rows = [replace(change.manifest, created=now, updated=now).to_entity()]
    if change.referrer is not None:
        rows.append(change.referrer.to_entity())
    rows += [operation[1] for operation in events.operations(change.partition, change.events)]
    for row in rows:
        if (name := oversized(row)) is not None:
            raise InvalidManifest(f"the manifest's {name} is too large to store", detail={"property": name})


class Committer:
    """Commits manifests of one registry."""

    def __init__(self, storage: Storage, events: EventSink[RegistryEvent]) -> None:
        self.storage = storage
        self.events = events

    async def commit(self, change: Commit) -> None:
        """Write ``change`` atomically; LOCKED if its tag is write-locked, UNAVAILABLE (503,
        ``Retry-After``) if concurrent writers keep it from committing for too long."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + COMMIT_SECONDS
        first: list[str | None] = []  # the tag's digest at the first read
        attempt = 0
        while not await self._attempt(change, first):
            pause = random.uniform(0, min(_LONGEST_PAUSE, _FIRST_PAUSE * 2**attempt))
            if loop.time() + pause > deadline:
                raise _busy()
            await asyncio.sleep(pause)
            attempt += 1

    async def _attempt(self, change: Commit, first: list[str | None]) -> bool:
        """Read the rows, build the transaction and submit it; False when a condition failed.

        ``first`` holds the tag's digest at the first attempt's read (this one records it).
        """
        partition, now = change.partition, _now()
        current, tag_row = await asyncio.gather(
            get_or_none(self.storage.repos, partition, layout.manifest_key(change.digest)),
            get_or_none(self.storage.repos, partition, layout.tag_key(change.tag), TagRow) if change.tag
            else _nothing(),
        )
        ops: list[tuple[Any, ...]] = []
        row = replace(change.manifest, updated=now)
        if current is None:
            ops.append(("create", replace(row, created=now).to_entity()))
        else:  # merged into if it still exists: its lock flags and creation time stay
            ops.append(("update", row.to_entity(), {"mode": "merge"}))
        now_names = tag_row.digest if tag_row is not None else None
        if not first:
            first.append(now_names)
        superseded = now_names != first[0]  # another push moved the tag since this one began
        if change.tag is not None and not superseded:
            if tag_row is not None and not tag_row.locks.allows("can_write"):
                raise Locked()
            created = tag_row.created if tag_row is not None and tag_row.created else now
            tag = TagRow.naming(row, change.tag, created, now, tag_row.locks if tag_row is not None else Locks())
            if tag_row is None:
                ops.append(("create", tag.to_entity()))
            else:
                ops.append(("update", tag.to_entity(), {"mode": "replace", "etag": tag_row.etag,
                                                        "match_condition": MatchConditions.IfNotModified}))
        if change.referrer is not None:
            ops.append(("upsert", change.referrer.to_entity(), {"mode": "replace"}))
        ops += self.events.operations(partition, change.events)
        try:
            await self.storage.repos.submit_transaction(ops)
        except TableTransactionError as error:
            if str(getattr(error, "error_code", "")) in _CONFLICTS:
                return False
            raise
        return True


async def _nothing() -> None:
    return None
