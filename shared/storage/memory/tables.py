"""An in-memory table behind the interface of ``azure.data.tables.aio.TableClient``.

Entities are kept as the SDK sends them over the wire (its own serializer: Edm types, the Int32
range check, None properties dropped) and read back through its own deserializer, so values come
back exactly as from the service (Edm.Int64 as ``EntityProperty``, date-times as
``TablesEntityDatetime``). ETags and timestamps change with every write; conditions, transactions
and their error codes follow the service (``tests/contract/`` checks both against Azurite).
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableEntity, TableErrorCode, TableTransactionError, UpdateMode
from azure.data.tables._deserialize import _convert_to_entity
from azure.data.tables._serialize import _add_entity_properties, _parameter_filter_substitution

from shared.storage.memory.filters import Predicate, Typed, parse
from shared.storage.memory.service import MemoryService, pause, storage_error

_KEYS = ("PartitionKey", "RowKey", "Timestamp")
_BAD_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
_TYPE = "@odata.type"


@dataclass(frozen=True)
class _Record:
    wire: dict[str, Any]  # the properties as sent, ``name@odata.type`` annotations included
    timestamp: datetime
    etag: str


def _time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _parse_time(text: str) -> datetime:
    head, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00")


def _typed_value(kind: str, value: Any) -> Any:
    if kind == "Edm.Int64":
        return int(value)
    if kind == "Edm.DateTime":
        return _parse_time(str(value))
    if kind == "Edm.Binary":
        return base64.b64decode(value)
    if kind == "Edm.Guid":
        return str(value).lower()
    if kind == "Edm.Double":
        return float(value)
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "Edm.Boolean"
    if isinstance(value, int):
        return "Edm.Int32"
    if isinstance(value, float):
        return "Edm.Double"
    return "Edm.String"


def _typed(key: tuple[str, str], record: _Record) -> dict[str, Typed]:
    """Every property of a row with its Edm type, as a filter compares them."""
    row: dict[str, Typed] = {"PartitionKey": ("Edm.String", key[0]), "RowKey": ("Edm.String", key[1]),
                             "Timestamp": ("Edm.DateTime", record.timestamp)}
    for name, value in record.wire.items():
        if not name.endswith(_TYPE):
            kind = record.wire.get(name + _TYPE) or _kind(value)
            row[name] = (kind, _typed_value(kind, value))
    return row


def _selected(select: str | list[str] | None) -> set[str] | None:
    if not select:
        return None
    return {name.strip() for name in (select.split(",") if isinstance(select, str) else select)}


def _conflict(kind: type[HttpResponseError], code: TableErrorCode, message: str, status: int) -> HttpResponseError:
    return storage_error(kind, code, message, status)


_NOT_FOUND = (ResourceNotFoundError, TableErrorCode.RESOURCE_NOT_FOUND, "The specified resource does not exist.", 404)
_EXISTS = (ResourceExistsError, TableErrorCode.ENTITY_ALREADY_EXISTS, "The specified entity already exists.", 409)
_CHANGED = (ResourceModifiedError, TableErrorCode.UPDATE_CONDITION_NOT_SATISFIED,
            "The update condition specified in the request was not satisfied.", 412)


class MemoryTable:
    """One table of a :class:`MemoryService`."""

    def __init__(self, service: MemoryService, name: str) -> None:
        self.service = service
        self._name = name

    @property
    def table_name(self) -> str:
        """The table's name."""
        return self._name

    def _rows(self) -> dict[tuple[str, str], _Record]:
        rows = self.service.tables.get(self._name)
        if rows is None:
            raise storage_error(ResourceNotFoundError, TableErrorCode.TABLE_NOT_FOUND,
                                "The table specified does not exist.", 404)
        return rows

    def _entity(self, key: tuple[str, str], record: _Record, select: set[str] | None = None) -> TableEntity:
        element: dict[str, Any] = {"PartitionKey": key[0], "RowKey": key[1],
                                   "Timestamp": _time_text(record.timestamp), **record.wire}
        if select is not None:
            element = {k: v for k, v in element.items() if k.removesuffix(_TYPE) in select}
        element["odata.etag"] = record.etag
        entity: TableEntity = _convert_to_entity(element)  # type: ignore[no-untyped-call]
        return entity

    def _record(self, wire: dict[str, Any]) -> _Record:
        moment = self.service.stamp()
        return _Record(wire, moment, self.service.etag(moment))

    @staticmethod
    def _wire(entity: Mapping[str, Any]) -> tuple[tuple[str, str], dict[str, Any]]:
        """The keys and the properties of ``entity`` as the SDK would send them."""
        if "PartitionKey" not in entity or "RowKey" not in entity:
            raise ValueError("PartitionKey and/or RowKey were not provided in entity")
        key = (entity["PartitionKey"], entity["RowKey"])
        if any(not isinstance(part, str) or _BAD_KEY.search(part) or len(part) > 1024 for part in key):
            raise storage_error(HttpResponseError, "InvalidInput", "Bad Request", 400)
        wire = _add_entity_properties(entity)
        return key, {k: v for k, v in wire.items() if k.removesuffix(_TYPE) not in _KEYS}

    @staticmethod
    def _merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        merged = dict(old)
        for name, value in new.items():
            if not name.endswith(_TYPE):
                merged.pop(name + _TYPE, None)
                merged[name] = value
        merged.update({k: v for k, v in new.items() if k.endswith(_TYPE)})
        return merged

    @staticmethod
    def _condition_holds(record: _Record, etag: str | None, condition: MatchConditions | None) -> bool:
        if condition in (None, MatchConditions.Unconditionally):
            return True
        if condition is MatchConditions.IfNotModified:
            if not etag:
                raise ValueError("etag is required for MatchConditions.IfNotModified")
            return record.etag == etag
        raise ValueError(f"unsupported match condition {condition}")

    def _apply(self, rows: dict[tuple[str, str], _Record], kind: str, entity: Mapping[str, Any],
               options: Mapping[str, Any]) -> tuple[tuple[str, str], _Record | None, Any]:
        """The change one write makes: (key, new record or None to delete, error kind or None)."""
        key, wire = self._wire(entity)
        current = rows.get(key)
        mode = str(getattr(options.get("mode"), "value", options.get("mode") or "merge")).lower()
        if kind == "create":
            return key, self._record(wire), _EXISTS if current is not None else None
        if kind == "upsert":
            merged = self._merged(current.wire, wire) if current is not None and mode == "merge" else wire
            return key, self._record(merged), None
        if current is None:
            return key, None, _NOT_FOUND
        if not self._condition_holds(current, options.get("etag"), options.get("match_condition")):
            return key, None, _CHANGED
        if kind == "delete":
            return key, None, None
        if kind == "update":
            return key, self._record(self._merged(current.wire, wire) if mode == "merge" else wire), None
        raise ValueError(f"Unrecognized operation: {kind}")

    def _write(self, kind: str, entity: Mapping[str, Any], options: Mapping[str, Any]) -> Mapping[str, Any]:
        rows = self._rows()
        key, record, error = self._apply(rows, kind, entity, options)
        if error is not None:
            raise _conflict(*error)
        if record is None:
            rows.pop(key, None)
            return {}
        rows[key] = record
        return {"etag": record.etag, "date": record.timestamp, "version": "memory"}

    async def get_entity(self, partition_key: str, row_key: str, *, select: str | list[str] | None = None,
                         **kwargs: Any) -> TableEntity:
        """The entity at the keys; ResourceNotFoundError if absent."""
        await pause()
        record = self._rows().get((partition_key, row_key))
        if record is None:
            raise _conflict(*_NOT_FOUND)
        return self._entity((partition_key, row_key), record, _selected(select))

    async def create_entity(self, entity: Mapping[str, Any], **kwargs: Any) -> Mapping[str, Any]:
        """Insert ``entity``; ResourceExistsError if it exists."""
        await pause()
        return self._write("create", entity, {})

    async def update_entity(self, entity: Mapping[str, Any], mode: str | UpdateMode = UpdateMode.MERGE, *,
                            etag: str | None = None, match_condition: MatchConditions | None = None,
                            **kwargs: Any) -> Mapping[str, Any]:
        """Merge into or replace an existing entity, on condition of its ETag when asked."""
        await pause()
        return self._write("update", entity, {"mode": mode, "etag": etag, "match_condition": match_condition})

    async def upsert_entity(self, entity: Mapping[str, Any], mode: str | UpdateMode = UpdateMode.MERGE,
                            **kwargs: Any) -> Mapping[str, Any]:
        """Insert, or merge into / replace, an entity."""
        await pause()
        return self._write("upsert", entity, {"mode": mode})

    async def delete_entity(self, *args: Any, etag: str | None = None, match_condition: MatchConditions | None = None,
                            **kwargs: Any) -> None:
        """Delete an entity (by keys, or an entity mapping); absent is no error, changed is."""
        await pause()
        entity = args[0] if len(args) == 1 else {"PartitionKey": args[0], "RowKey": args[1]}
        try:
            self._write("delete", entity, {"etag": etag, "match_condition": match_condition})
        except ResourceNotFoundError:
            pass

    async def submit_transaction(self, operations: Iterable[Any], **kwargs: Any) -> list[Mapping[str, Any]]:
        """Apply every operation or none (see :class:`shared.storage.interfaces.Table`)."""
        await pause()
        ops = [(op[0], op[1], op[2] if len(op) > 2 else {}) for op in operations]
        if not ops:
            return []
        if len({entity["PartitionKey"] for _, entity, _ in ops}) > 1:
            raise ValueError("Partition Keys in the batch must all be the same.")
        rows = self._rows()
        staged: dict[tuple[str, str], _Record | None] = {}
        results: list[Mapping[str, Any]] = []
        for index, (kind, entity, options) in enumerate(ops):
            key = (entity["PartitionKey"], entity["RowKey"])
            if key in staged:
                raise storage_error(TableTransactionError, "InvalidDuplicateRow",
                                    f"{index}:A command with RowKey '{key[1]}' is already present in the batch.", 400)
            _, record, error = self._apply(rows, str(kind).lower(), entity, options)
            if error is not None:
                raise storage_error(TableTransactionError, str(error[1].value), f"{index}:{error[2]}", error[3])
            staged[key] = record
            results.append({} if record is None else {"etag": record.etag})
        for key, new in staged.items():
            if new is None:
                rows.pop(key, None)
            else:
                rows[key] = new
        return results

    def query_entities(self, query_filter: str, *, results_per_page: int | None = None,
                       select: str | list[str] | None = None, parameters: dict[str, Any] | None = None,
                       **kwargs: Any) -> AsyncIterator[TableEntity]:
        """The entities the filter selects, in key order."""
        predicate = parse(_parameter_filter_substitution(parameters, query_filter))
        return self._scan(predicate, _selected(select))

    def list_entities(self, *, results_per_page: int | None = None, select: str | list[str] | None = None,
                      **kwargs: Any) -> AsyncIterator[TableEntity]:
        """Every entity, in key order."""
        return self._scan(lambda row: True, _selected(select))

    async def _scan(self, predicate: Predicate, select: set[str] | None) -> AsyncIterator[TableEntity]:
        await pause()
        for key, record in sorted(self._rows().items()):
            if predicate(_typed(key, record)):
                yield self._entity(key, record, select)

    async def close(self) -> None:
        """Nothing to release."""
