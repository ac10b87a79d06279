"""Typed rows write exactly the properties earlier versions wrote (sizes as Edm.Int64) and read
rows those versions left (sizes as Edm.Int32, optional properties missing); the query helpers
read the ranges the services used to build by hand."""

from __future__ import annotations

from datetime import UTC, datetime

from azure.data.tables import EdmType, EntityProperty

from shared.storage.memory import MemoryStorage
from shared.storage.queries import get_or_none, partition_rows, prefix_range, range_end
from shared.storage.rows import (
    BlobIndexRow,
    DeliveryStateRow,
    LinkRow,
    Locks,
    ManifestRow,
    ReferrerRow,
    TagRow,
    TokenRow,
    UploadRow,
    patch,
)

WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32


def _int64(value: int) -> EntityProperty:
    return EntityProperty(value, EdmType.INT64)


def test_the_tag_row_repeats_its_manifest_and_keeps_its_own_locks() -> None:
    manifest = ManifestRow("apps/web", DIGEST, "application/vnd.oci.image.index.v1+json", 300, b"{}",
                           artifact_type="", image_size=3_000_000_000, children="[]", updated=WHEN,
                           locks=Locks(can_read=False))
    tag = TagRow.naming(manifest, "v1", created=WHEN, updated=WHEN, locks=Locks(can_delete=False, can_list=True))
    assert tag.to_entity() == {
        "PartitionKey": "apps0web", "RowKey": "t|v1", "digest": DIGEST,
        "media_type": "application/vnd.oci.image.index.v1+json", "size": _int64(300), "content": b"{}",
        "created": WHEN, "updated": WHEN, "can_delete": False, "can_list": True}
    assert manifest.to_entity() == {
        "PartitionKey": "apps0web", "RowKey": f"m|{DIGEST}", "digest": DIGEST,
        "media_type": "application/vnd.oci.image.index.v1+json", "size": _int64(300), "artifact_type": "",
        "content": b"{}", "image_size": _int64(3_000_000_000), "children": "[]", "updated": WHEN,
        "can_read": False}


def test_rows_written_before_sizes_were_int64_still_read() -> None:
    old_link = {"PartitionKey": "apps0web", "RowKey": f"l|{DIGEST}", "size": 1234, "location": "data/x"}
    assert LinkRow.from_entity(old_link) == LinkRow("apps/web", DIGEST, 1234, "data/x")
    old_tag = {"PartitionKey": "apps0web", "RowKey": "t|v1", "digest": DIGEST, "media_type": "m", "size": 7}
    assert TagRow.from_entity(old_tag) == TagRow("apps/web", "v1", DIGEST, "m", 7)
    old_manifest = {"PartitionKey": "apps0web", "RowKey": f"m|{DIGEST}", "digest": DIGEST, "media_type": "m",
                    "size": 7, "content": b"x"}
    row = ManifestRow.from_entity(old_manifest)
    assert (row.size, row.image_size, row.locks, row.subject) == (7, None, Locks(), None)
    assert BlobIndexRow.from_entity({"PartitionKey": DIGEST, "RowKey": "", "size": 5, "location": "d"}).size == 5
    old_delivery = {"PartitionKey": "w|hook1", "RowKey": "e1", "event": "{}", "status": "queued"}
    assert DeliveryStateRow.from_entity(old_delivery) == DeliveryStateRow("hook1", "e1", "{}", "queued")


def test_an_upload_row_packs_its_segments_and_marks_its_claim() -> None:
    upload = UploadRow("u1", "apps/web", 10, ((1, 2), (0xFFFFFFFF, 1)), hash_state=b"state")
    entity = upload.to_entity()
    assert entity == {"PartitionKey": "u1", "RowKey": "", "repository": "apps/web", "offset": _int64(10),
                      "algorithm": "sha256", "hash_state": b"state",
                      "segments": bytes.fromhex("00000001 00000002 ffffffff 00000001")}
    assert UploadRow.from_entity(entity) == upload
    assert upload.claim() == {"PartitionKey": "u1", "RowKey": "", "state": "ended"}
    assert UploadRow.from_entity({**entity, "state": "ended"}).ended


def test_a_patch_writes_the_changed_properties_only() -> None:
    row = DeliveryStateRow("hook1", "e1", "{}", "queued", seq=3)
    assert patch(row, status="sending", seq=4, last_status=None) == {
        "PartitionKey": "w|hook1", "RowKey": "e1", "status": "sending", "seq": _int64(4)}
    assert patch(TokenRow("ci-token"), password2="hash", password2_expiry=None) == {
        "PartitionKey": "token", "RowKey": "ci-token", "password2": "hash"}


def test_a_referrer_row_keeps_its_subject_in_its_key_and_its_annotations_as_compact_json() -> None:
    row = ReferrerRow("apps/web", DIGEST, "sha256:" + "cd" * 32, "m", 10, "a/t", {"k": "v"})
    entity = row.to_entity()
    assert (entity["RowKey"], entity["annotations"]) == (f"r|{DIGEST}|sha256:{'cd' * 32}", '{"k":"v"}')
    assert ReferrerRow.from_entity(entity) == row


def test_a_range_ends_at_the_next_key_after_its_prefix() -> None:
    assert (range_end("t|"), range_end("r|sha256:ab|"), range_end("")) == ("t}", "r|sha256:ab}", "}")


async def test_prefix_range_reads_one_kind_of_row_after_a_marker_and_get_or_none_finds_nothing_quietly(
        memory: MemoryStorage) -> None:
    for key in ("m|x", "t|a", "t|b", "t|c", "u|a"):
        await memory.repos.create_entity({"PartitionKey": "p", "RowKey": key, "digest": key[-1]})
    await memory.repos.create_entity({"PartitionKey": "q", "RowKey": "t|z", "digest": "z"})
    assert [r["RowKey"] async for r in prefix_range(memory.repos, "p", "t|")] == ["t|a", "t|b", "t|c"]
    assert [r["RowKey"] async for r in prefix_range(memory.repos, "p", "t|", after="a")] == ["t|b", "t|c"]
    assert [r["RowKey"] async for r in prefix_range(memory.repos, "p", "t|", where="digest eq @d",
                                                    parameters={"d": "c"})] == ["t|c"]
    assert [(r["PartitionKey"], r["RowKey"]) async for r in prefix_range(memory.repos, None, "t|", after="b")] == [
        ("p", "t|c"), ("q", "t|z")]
    assert [r["RowKey"] async for r in partition_rows(memory.repos, "q")] == ["t|z"]
    assert await get_or_none(memory.repos, "p", "t|nothing") is None
    found = await get_or_none(memory.repos, "q", "t|z", TagRow)
    assert found is not None and found.tag == "z" and found.etag
