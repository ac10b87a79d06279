"""The table contract: typed values, ETags and conditions, queries, transactions and their error codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, TableTransactionError, UpdateMode

from shared.storage.layout import TABLES, TableSpec
from tests.contract.conftest import Backend

STALE = "W/\"datetime'2001-01-01T00%3A00%3A00.0000000Z'\""


def _row(key: str, **properties: Any) -> dict[str, Any]:
    return {"PartitionKey": "p", "RowKey": key, **properties}


async def _keys(rows: Any) -> list[str]:
    return [row["RowKey"] async for row in rows]


async def test_values_read_back_with_the_types_written(backend: Backend) -> None:
    table = backend.storage.repos
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    await table.create_entity(_row("x", text="v", empty="", flag=False, small=7,
                                   big=EntityProperty(2**40, EdmType.INT64), when=moment, raw=b"\x00\xff",
                                   nothing=b"", absent=None))
    row = await table.get_entity("p", "x")
    assert dict(row) == {"PartitionKey": "p", "RowKey": "x", "text": "v", "empty": "", "flag": False, "small": 7,
                         "big": EntityProperty(2**40, EdmType.INT64), "when": moment, "raw": b"\x00\xff",
                         "nothing": b""}
    assert row.metadata["etag"] and isinstance(row.metadata["timestamp"], datetime)


async def test_a_python_int_of_2_31_or_more_is_refused(backend: Backend) -> None:
    with pytest.raises(TypeError):
        await backend.storage.repos.create_entity(_row("x", size=2**31))


async def test_create_refuses_an_existing_row_and_update_a_missing_one(backend: Backend) -> None:
    table = backend.storage.repos
    await table.create_entity(_row("x", n=1))
    with pytest.raises(ResourceExistsError):
        await table.create_entity(_row("x", n=2))
    with pytest.raises(ResourceNotFoundError):
        await table.update_entity(_row("y", n=2))
    with pytest.raises(ResourceNotFoundError):
        await table.get_entity("p", "y")
    assert (await table.get_entity("p", "x"))["n"] == 1


async def test_merge_keeps_other_properties_replace_drops_them_and_each_write_changes_the_etag(
        backend: Backend) -> None:
    table = backend.storage.repos
    first = (await table.create_entity(_row("x", a=1, b=2)))["etag"]
    second = (await table.update_entity(_row("x", b=3), mode=UpdateMode.MERGE))["etag"]
    assert dict(await table.get_entity("p", "x")) == _row("x", a=1, b=3)
    third = (await table.update_entity(_row("x", c=4), mode=UpdateMode.REPLACE))["etag"]
    assert dict(await table.get_entity("p", "x")) == _row("x", c=4)
    await table.upsert_entity(_row("x", d=5))  # merge by default
    await table.upsert_entity(_row("y", e=6), mode=UpdateMode.REPLACE)
    assert dict(await table.get_entity("p", "x")) == _row("x", c=4, d=5)
    assert dict(await table.get_entity("p", "y")) == _row("y", e=6)
    assert len({first, second, third, (await table.get_entity("p", "x")).metadata["etag"]}) == 4


async def test_conditional_writes_hold_only_at_the_etag_read(backend: Backend) -> None:
    table = backend.storage.repos
    etag = (await table.create_entity(_row("x", n=1)))["etag"]
    assert (await table.get_entity("p", "x")).metadata["etag"] == etag
    with pytest.raises(ResourceModifiedError):
        await table.update_entity(_row("x", n=2), etag=STALE, match_condition=MatchConditions.IfNotModified)
    with pytest.raises(ResourceNotFoundError):
        await table.update_entity(_row("y", n=2), etag=etag, match_condition=MatchConditions.IfNotModified)
    changed = await table.update_entity(_row("x", n=3), mode=UpdateMode.REPLACE, etag=etag,
                                        match_condition=MatchConditions.IfNotModified)
    with pytest.raises(ResourceModifiedError):
        await table.delete_entity("p", "x", etag=etag, match_condition=MatchConditions.IfNotModified)
    assert (await table.get_entity("p", "x"))["n"] == 3
    await table.delete_entity("p", "x", etag=changed["etag"], match_condition=MatchConditions.IfNotModified)
    await table.delete_entity("p", "x")  # an absent row is no error
    await table.delete_entity("p", "x", etag=STALE, match_condition=MatchConditions.IfNotModified)
    assert await _keys(table.list_entities()) == []


async def test_select_returns_only_the_named_properties_and_the_etag(backend: Backend) -> None:
    table = backend.storage.repos
    await table.create_entity(_row("x", a=1, b=2))
    row = await table.get_entity("p", "x", select=["a", "missing"])
    assert dict(row) == {"a": 1} and row.metadata["etag"]
    rows = [dict(r) async for r in table.query_entities("PartitionKey eq @pk", parameters={"pk": "p"},
                                                        select=["RowKey", "b"])]
    assert rows == [{"RowKey": "x", "b": 2}]


async def test_queries_return_key_ranges_in_key_order_with_the_filters_the_registry_uses(backend: Backend) -> None:
    table = backend.storage.repos
    for partition in ("p", "q"):
        for key in ("t|b", "t|a", "m|z", "t|c", "u|a"):
            await table.create_entity({"PartitionKey": partition, "RowKey": key, "digest": key[-1],
                                       "can_list": key != "t|b", "size": EntityProperty(5, EdmType.INT64)})
    in_range = "PartitionKey eq @pk and RowKey gt @start and RowKey lt @end"
    assert await _keys(table.query_entities(in_range, parameters={"pk": "p", "start": "t|", "end": "t}"})) == [
        "t|a", "t|b", "t|c"]
    assert await _keys(table.query_entities(in_range, parameters={"pk": "p", "start": "t|a", "end": "t}"})) == [
        "t|b", "t|c"]
    assert await _keys(table.query_entities(in_range + " and digest eq @digest",
                                            parameters={"pk": "q", "start": "t|", "end": "t}", "digest": "c"})) == [
        "t|c"]
    assert await _keys(table.query_entities("PartitionKey eq @pk and can_list eq false",
                                            parameters={"pk": "p"})) == ["t|b"]
    everywhere = [(r["PartitionKey"], r["RowKey"]) async for r in table.query_entities(
        "RowKey gt @start and RowKey lt @end", parameters={"start": "t|b", "end": "t}"})]
    assert everywhere == [("p", "t|c"), ("q", "t|c")]
    assert await _keys(table.query_entities("PartitionKey eq 'p' and RowKey ge 'm|z' and RowKey le 't|a'")) == [
        "m|z", "t|a"]
    # Edm.Int64 properties equal only Int64 literals (a parameter of 2^32 or more, or ``5L``).
    assert await _keys(table.query_entities("PartitionKey eq 'p' and size eq 5")) == []
    assert len(await _keys(table.query_entities("PartitionKey eq 'p' and size eq 5L"))) == 5


async def test_timestamps_filter_rows_by_when_they_were_written(backend: Backend) -> None:
    table = backend.storage.uploads
    await table.create_entity({"PartitionKey": "u1", "RowKey": "", "repository": "r"})
    later = backend.now() + timedelta(minutes=1)
    earlier = backend.now() - timedelta(hours=1)
    query = "Timestamp lt @cutoff"
    assert await _keys(table.query_entities(query, parameters={"cutoff": later})) == [""]
    assert await _keys(table.query_entities(query, parameters={"cutoff": earlier})) == []


async def test_a_transaction_writes_everything_and_returns_the_etags(backend: Backend) -> None:
    table = backend.storage.repos
    etag = (await table.create_entity(_row("a", n=1)))["etag"]
    await table.create_entity(_row("d"))
    results = await table.submit_transaction([
        ("update", _row("a", n=2), {"mode": "merge", "etag": etag, "match_condition": MatchConditions.IfNotModified}),
        ("create", _row("b", n=1)),
        ("upsert", _row("c", n=1), {"mode": "replace"}),
        ("delete", _row("d")),
    ])
    assert [bool(r.get("etag")) for r in results] == [True, True, True, False]
    rows = {r["RowKey"]: r async for r in table.list_entities()}
    assert sorted(rows) == ["a", "b", "c"] and rows["a"]["n"] == 2
    assert rows["a"].metadata["etag"] == results[0]["etag"]


@pytest.mark.parametrize(("operation", "code"), [
    (("create", _row("a")), "EntityAlreadyExists"),
    (("update", _row("missing")), "ResourceNotFound"),
    (("delete", _row("missing")), "ResourceNotFound"),
    (("update", _row("a", n=9), {"etag": STALE, "match_condition": MatchConditions.IfNotModified}),
     "UpdateConditionNotSatisfied"),
    (("delete", _row("a"), {"etag": STALE, "match_condition": MatchConditions.IfNotModified}),
     "UpdateConditionNotSatisfied"),
    (("upsert", _row("new")), "InvalidDuplicateRow"),
])
async def test_a_failed_transaction_writes_nothing_and_names_its_error(backend: Backend, operation: Any,
                                                                       code: str) -> None:
    table = backend.storage.repos
    await table.create_entity(_row("a", n=1))
    before = [dict(r) async for r in table.list_entities()]
    operations = [("upsert", _row("new", n=1)), operation]
    with pytest.raises(TableTransactionError) as raised:
        await table.submit_transaction(operations)
    assert str(raised.value.error_code) == code and raised.value.index == 1
    assert [dict(r) async for r in table.list_entities()] == before


async def test_a_transaction_spans_one_partition(backend: Backend) -> None:
    with pytest.raises(ValueError, match="Partition"):
        await backend.storage.repos.submit_transaction([("upsert", _row("a")), ("upsert", {"PartitionKey": "other",
                                                                                           "RowKey": "b"})])


@pytest.mark.parametrize("key", ["a/b", "a#b", "a?b", "a\\b", "a\tb"])
async def test_keys_may_not_hold_slashes_hashes_question_marks_or_controls(backend: Backend, key: str) -> None:
    with pytest.raises(HttpResponseError) as raised:
        await backend.storage.repos.create_entity(_row(key))
    assert raised.value.status_code == 400


async def test_a_table_that_was_not_created_is_not_found(backend: Backend) -> None:
    other = backend.reopen((*TABLES, TableSpec("absent")))  # listed, but ``ensure`` never ran
    try:
        with pytest.raises(ResourceNotFoundError):
            await other.table("absent").get_entity("p", "x")
        with pytest.raises(ResourceNotFoundError):
            await _keys(other.table("absent").query_entities("PartitionKey eq 'p'"))
    finally:
        await other.close()
