"""Which wire errors each API answers domain errors with.

``/v2`` answers with the distribution spec's codes; the management APIs (``/acr/v1``,
``/acr/admin``, ``/oauth2``) with the generic management codes, and, as ACR does on ``/acr/v1``,
with the spec's codes for the same content (an unknown manifest is MANIFEST_UNKNOWN on both).
Capabilities add their own groups, which are consulted first.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.api.http import range_header
from shared.errors import COMMON, MANAGEMENT, ErrorGroup, Oci, RegistryError
from shared.oci.errors import InvalidDigest, InvalidManifest, InvalidRepositoryName, InvalidTag, ManifestTooLarge
from shared.registry.errors import (
    BlobUnknown,
    DigestMismatch,
    InvalidPageSize,
    ManifestBlobUnknown,
    ManifestUnknown,
    RepositoryUnknown,
    SizeMismatch,
    UploadInvalid,
    UploadOutOfOrder,
    UploadUnknown,
)


def _out_of_order(error: UploadOutOfOrder) -> RegistryError:
    return RegistryError(Oci.RANGE_INVALID, error.message or None, error.detail, headers=range_header(error.size))


#: The distribution spec's answers to what the OCI rules and the registry's services refuse.
OCI = ErrorGroup("oci", Oci, {
    InvalidRepositoryName: Oci.NAME_INVALID,
    InvalidTag: Oci.TAG_INVALID,
    InvalidDigest: Oci.DIGEST_INVALID,
    InvalidManifest: Oci.MANIFEST_INVALID,
    ManifestTooLarge: Oci.MANIFEST_TOO_LARGE,
    BlobUnknown: Oci.BLOB_UNKNOWN,
    ManifestUnknown: Oci.MANIFEST_UNKNOWN,
    RepositoryUnknown: Oci.NAME_UNKNOWN,
    UploadUnknown: Oci.BLOB_UPLOAD_UNKNOWN,
    UploadInvalid: Oci.BLOB_UPLOAD_INVALID,
    UploadOutOfOrder: _out_of_order,
    DigestMismatch: Oci.DIGEST_INVALID,
    SizeMismatch: Oci.SIZE_INVALID,
    ManifestBlobUnknown: Oci.MANIFEST_BLOB_UNKNOWN,
    InvalidPageSize: Oci.PAGINATION_NUMBER_INVALID,
})

#: The groups of ``/v2``.
V2_API: tuple[ErrorGroup, ...] = (OCI, COMMON)
#: The groups of the management APIs.
MANAGEMENT_API: tuple[ErrorGroup, ...] = (OCI, MANAGEMENT, COMMON)


def api_groups(path: str, capabilities: Sequence[ErrorGroup] = ()) -> tuple[ErrorGroup, ...]:
    """The error groups of the API ``path`` (as the router sees it) belongs to, the capabilities' first."""
    own = V2_API if path == "/v2" or path.startswith("/v2/") else MANAGEMENT_API
    return (*capabilities, *own)
