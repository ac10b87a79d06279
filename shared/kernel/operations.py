"""What a request does: each route names one :class:`Operation`, and request-time policies
(authorization, locks, the mount rewrite, and later quota, throttling, quarantine, trust, network
rules, cache rules) attach to operations, not to paths."""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """The operations of the registry's HTTP API."""

    LOGIN = "login"  # /oauth2: the token service
    API_ROOT = "api_root"  # /v2/
    CATALOG = "catalog"  # /v2/_catalog, /acr/v1/_catalog
    READ_MANIFEST = "read_manifest"
    WRITE_MANIFEST = "write_manifest"
    DELETE_MANIFEST = "delete_manifest"  # /v2 and /acr/v1 alike
    READ_BLOB = "read_blob"
    DELETE_BLOB = "delete_blob"
    START_UPLOAD = "start_upload"  # POST: an upload session, a monolithic push, or a mount
    READ_UPLOAD = "read_upload"
    WRITE_UPLOAD = "write_upload"  # PATCH a chunk
    FINISH_UPLOAD = "finish_upload"
    CANCEL_UPLOAD = "cancel_upload"
    LIST_TAGS = "list_tags"
    LIST_REFERRERS = "list_referrers"
    READ_METADATA = "read_metadata"  # /acr/v1 properties
    WRITE_METADATA = "write_metadata"  # /acr/v1 changeable attributes
    DELETE_TAG = "delete_tag"
    DELETE_REPOSITORY = "delete_repository"
    ADMIN = "admin"  # the management plane, /acr/admin
