"""The one error table: every wire error the registry answers, with its code and HTTP status.

Handlers and services only raise :class:`RegistryError`; the API boundary turns it into
``{"errors":[{"code","message","detail"}]}`` (no body on HEAD). A member's status never
changes per call site, so statuses cannot drift between handlers.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(Enum):
    """A wire error: (code sent to the client, HTTP status, default message)."""

    BLOB_UNKNOWN = ("BLOB_UNKNOWN", 404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = ("BLOB_UPLOAD_INVALID", 400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = ("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry")
    RANGE_INVALID = ("BLOB_UPLOAD_INVALID", 416, "chunk does not start at the upload's offset")
    RANGE_NOT_SATISFIABLE = ("RANGE_INVALID", 416, "requested range not satisfiable")
    DIGEST_INVALID = ("DIGEST_INVALID", 400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = ("MANIFEST_BLOB_UNKNOWN", 400, "manifest references unknown blobs")
    MANIFEST_INVALID = ("MANIFEST_INVALID", 400, "manifest invalid")
    MANIFEST_TOO_LARGE = ("SIZE_INVALID", 413, "manifest exceeds the maximum size")
    MANIFEST_UNKNOWN = ("MANIFEST_UNKNOWN", 404, "manifest unknown to registry")
    NAME_INVALID = ("NAME_INVALID", 400, "invalid repository name")
    NAME_UNKNOWN = ("NAME_UNKNOWN", 404, "repository name not known to registry")
    TAG_INVALID = ("TAG_INVALID", 400, "invalid tag")
    SIZE_INVALID = ("SIZE_INVALID", 400, "provided length did not match content length")
    PAGINATION_NUMBER_INVALID = ("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested")
    UNAUTHORIZED = ("UNAUTHORIZED", 401, "authentication required")
    DENIED = ("DENIED", 403, "requested access to the resource is denied")
    LOCKED = (
        "DENIED",
        403,
        "The operation is disallowed on this registry, repository or image.",
    )
    UNSUPPORTED = ("UNSUPPORTED", 405, "the operation is unsupported")
    NOT_FOUND = ("NOT_FOUND", 404, "no API route matches this path")
    TOOMANYREQUESTS = ("TOOMANYREQUESTS", 429, "too many requests")
    WEBHOOK_INVALID = ("WEBHOOK_INVALID", 400, "invalid webhook definition")
    WEBHOOK_UNKNOWN = ("WEBHOOK_UNKNOWN", 404, "webhook not found")
    UNKNOWN = ("UNKNOWN", 500, "unknown error")
    UNAVAILABLE = ("UNAVAILABLE", 503, "service unavailable")

    @property
    def code(self) -> str:
        """The code string sent on the wire."""
        return self.value[0]

    @property
    def status(self) -> int:
        """The HTTP status this error is answered with."""
        return self.value[1]

    @property
    def message(self) -> str:
        """The default human-readable message."""
        return self.value[2]


class RegistryError(Exception):
    """An error the client should see, carrying a code from the table, a message and a detail."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.message = message or code.message
        self.detail = detail
        self.headers = headers or {}
        super().__init__(f"{code.code}: {self.message}")

    def body(self) -> dict[str, Any]:
        """The JSON error document of the distribution spec."""
        entry: dict[str, Any] = {"code": self.code.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return {"errors": [entry]}
