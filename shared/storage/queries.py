"""Reading tables: one point read that may find nothing, one query of a key prefix, one of a partition.

Every range the registry reads is a run of row keys sharing a prefix (``t|`` for a repository's
tags, ``r|<subject>|`` for a subject's referrers, ``o|`` for the outbox ...), in one partition or
across all of them, optionally after a marker (pagination). :func:`prefix_range` builds that
query once; the row types of :mod:`shared.storage.rows` read what it returns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar, overload

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableEntity

from shared.storage import layout
from shared.storage.interfaces import Table
from shared.storage.rows.base import Row

R = TypeVar("R", bound=Row)


@overload
async def get_or_none(table: Table, partition: str, key: str, *, select: list[str] | None = None) -> TableEntity | None:
    ...


@overload
async def get_or_none(table: Table, partition: str, key: str, kind: type[R], *,
                      select: list[str] | None = None) -> R | None:
    ...


async def get_or_none(table: Table, partition: str, key: str, kind: type[R] | None = None, *,
                      select: list[str] | None = None) -> TableEntity | R | None:
    """The row at (``partition``, ``key``), as a ``kind`` when one is given; None when there is none."""
    try:
        entity = await table.get_entity(partition, key, select=select)
    except ResourceNotFoundError:
        return None
    return entity if kind is None else kind.from_entity(entity)


def range_end(prefix: str) -> str:
    """The least key greater than every key that starts with ``prefix`` (keys never hold ``}``)."""
    if not prefix:
        return layout.RANGE_END
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def prefix_range(table: Table, partition: str | None, prefix: str, *, after: str = "", where: str = "",
                 parameters: Mapping[str, Any] | None = None, select: list[str] | None = None,
                 results_per_page: int | None = None) -> AsyncIterator[TableEntity]:
    """Rows whose key starts with ``prefix`` and sorts after ``prefix + after``, in key order: of
    ``partition``, or of every partition when it is None.

    ``where`` adds OData conditions (``and``\\ed), whose ``@names`` ``parameters`` gives (the
    names ``pk``, ``start`` and ``end`` are taken).
    """
    query = "RowKey gt @start and RowKey lt @end"
    values: dict[str, Any] = {"start": prefix + after, "end": range_end(prefix)}
    if partition is not None:
        query = "PartitionKey eq @pk and " + query
        values["pk"] = partition
    if where:
        query += " and " + where
        values |= parameters or {}
    return table.query_entities(query, parameters=values, select=select, results_per_page=results_per_page)


def partition_rows(table: Table, partition: str, *, where: str = "", parameters: Mapping[str, Any] | None = None,
                   select: list[str] | None = None, results_per_page: int | None = None) -> AsyncIterator[TableEntity]:
    """Every row of ``partition``, in key order; ``where`` adds OData conditions as in :func:`prefix_range`."""
    query = "PartitionKey eq @pk"
    values: dict[str, Any] = {"pk": partition}
    if where:
        query += " and " + where
        values |= parameters or {}
    return table.query_entities(query, parameters=values, select=select, results_per_page=results_per_page)


async def typed(entities: AsyncIterator[TableEntity], kind: type[R]) -> list[R]:
    """Every entity of ``entities`` as a ``kind``."""
    return [kind.from_entity(entity) async for entity in entities]
