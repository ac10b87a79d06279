"""Typed rows: one type per kind of row the registry reads or writes, next to the keys of
:mod:`shared.storage.layout`; each writes itself (``to_entity``) and reads itself back
(``from_entity``), sizes and counts as Edm.Int64 (:mod:`shared.storage.values`)."""

from shared.storage.rows.base import Row, etag_of, keys, patch
from shared.storage.rows.content import CatalogRow, LinkRow, Locks, ManifestRow, OutboxRow, ReferrerRow, TagRow
from shared.storage.rows.identity import OptionsRow, RoleRow, ScopeMapRow, TokenRow
from shared.storage.rows.uploads import MAX_SEGMENTS, BlobIndexRow, UploadRow
from shared.storage.rows.webhooks import DeliveryStateRow, WebhookCallRow, WebhookRow

__all__ = [
    "MAX_SEGMENTS",
    "BlobIndexRow",
    "CatalogRow",
    "DeliveryStateRow",
    "LinkRow",
    "Locks",
    "ManifestRow",
    "OptionsRow",
    "OutboxRow",
    "ReferrerRow",
    "RoleRow",
    "Row",
    "ScopeMapRow",
    "TagRow",
    "TokenRow",
    "UploadRow",
    "WebhookCallRow",
    "WebhookRow",
    "etag_of",
    "keys",
    "patch",
]
