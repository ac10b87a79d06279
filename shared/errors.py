"""Errors in two layers: domain errors raised below the API, and wire errors the API answers.

Below the API (``shared.oci``, ``shared.registry``, ``shared.auth``, ``shared.events`` and the
capability packages) code raises a :class:`DomainError`: what went wrong in the domain's words (a
blob is unknown, a name is invalid, a lock forbids it), never an HTTP status. The wire errors are
registered per group, as distribution's ``errcode.Register`` does: each group is an enum of
(code sent, HTTP status, default message) whose status never changes per call site. An
:class:`ErrorGroup` says which domain errors a group's codes answer; the API boundary translates
with the groups of the request's API (``/v2``: the OCI codes; ``/acr/v1``, ``/acr/admin``,
``/oauth2``: the generic management codes) and those capabilities add, into
``{"errors":[{"code","message","detail"}]}``. :class:`RegistryError` is a wire answer the API
layer raises itself (a malformed header, a missing challenge).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

# --- domain errors: raised below the API -----------------------------------------------------------


class DomainError(Exception):
    """Something the domain refuses or cannot find; the API boundary picks the wire error.

    ``message`` defaults to the class's ``default_message`` (or, when that is empty, to the wire
    error's own); ``detail`` is sent as the error's detail; ``retry_after`` (seconds) becomes a
    ``Retry-After`` header.
    """

    default_message: ClassVar[str] = ""

    def __init__(self, message: str = "", detail: Any = None, retry_after: int | None = None) -> None:
        self.message = message or self.default_message
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(self.message or type(self).__name__)


class NotFound(DomainError):
    """Something named does not exist."""


class ResourceNotFound(NotFound):
    """A named resource (a token, a scope map, a role assignment, ...) does not exist."""

    def __init__(self, resource: str, name: str) -> None:
        super().__init__(f"{resource} not found", detail={"resource": resource, "name": name[:128]})
        self.resource = resource
        self.name = name


class Invalid(DomainError):
    """The request is malformed, or asks for a value that cannot be."""


class InvalidName(Invalid):
    """A name (of a repository, token, scope map, principal, ...) that nothing can have."""


class Denied(DomainError):
    """The caller may not do this."""


class Locked(Denied):
    """A lock (ACR's ``changeableAttributes``) forbids the operation."""


class Unauthenticated(DomainError):
    """The caller's credentials are missing, malformed or wrong."""


class Throttled(DomainError):
    """Too many requests; ``retry_after`` says when to try again."""


class Unavailable(DomainError):
    """A passing condition (rows changing under the request, too many at once); retry later."""


# --- wire errors: registered per group --------------------------------------------------------------


class WireCode(Enum):
    """Base of a group of wire errors: each member is (code sent to the client, HTTP status, default message)."""

    @property
    def code(self) -> str:
        """The code string sent on the wire."""
        return str(self.value[0])

    @property
    def status(self) -> int:
        """The HTTP status this error is answered with."""
        return int(self.value[1])

    @property
    def message(self) -> str:
        """The default human-readable message."""
        return str(self.value[2])


class Common(WireCode):
    """The codes every API answers with (distribution's ``errcode`` group), and ACR's lock message."""

    UNKNOWN = ("UNKNOWN", 500, "unknown error")
    UNSUPPORTED = ("UNSUPPORTED", 405, "the operation is unsupported")
    UNAUTHORIZED = ("UNAUTHORIZED", 401, "authentication required")
    DENIED = ("DENIED", 403, "requested access to the resource is denied")
    LOCKED = ("DENIED", 403, "The operation is disallowed on this registry, repository or image.")
    TOOMANYREQUESTS = ("TOOMANYREQUESTS", 429, "too many requests")
    UNAVAILABLE = ("UNAVAILABLE", 503, "service unavailable")
    NO_ROUTE = ("NOT_FOUND", 404, "no API route matches this path")


class Oci(WireCode):
    """The distribution spec's codes: ``/v2``, and ACR's ``/acr/v1`` for the same content."""

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


class Management(WireCode):
    """The generic codes of the management APIs (``/acr/v1``, ``/acr/admin``, ``/oauth2``)."""

    INVALID_REQUEST = ("INVALID_REQUEST", 400, "invalid request")
    NAME_INVALID = ("NAME_INVALID", 400, "invalid name")
    NOT_FOUND = ("NOT_FOUND", 404, "resource not found")
    BODY_TOO_LARGE = ("SIZE_INVALID", 400, "the request body is too large")
    TOKEN_REQUEST_INVALID = ("UNSUPPORTED", 400, "unsupported grant type or malformed token request")


class RegistryError(Exception):
    """A wire answer: a code from a group, a message, a detail, and headers."""

    def __init__(
        self,
        code: WireCode,
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


#: A wire code, or a function building the whole answer (for one that carries headers of its own).
Answer = WireCode | Callable[[Any], RegistryError]


@dataclass(frozen=True)
class ErrorGroup:
    """A group of wire errors and the domain errors they answer, for one API or added by a capability."""

    name: str
    codes: type[WireCode]
    answers: Mapping[type[DomainError], Answer]


def answer(error: DomainError, code: WireCode) -> RegistryError:
    """``error`` answered with ``code``: its message (or the code's), detail and ``Retry-After``."""
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return RegistryError(code, error.message or None, error.detail, headers)


def translate(error: DomainError, groups: Iterable[ErrorGroup]) -> RegistryError | None:
    """The wire answer to ``error``: its most specific class any of ``groups`` answers (earlier
    groups first for the same class), or None when none does."""
    ordered = tuple(groups)
    for kind in type(error).__mro__:
        for group in ordered:
            found = group.answers.get(kind)
            if found is None:
                continue
            return answer(error, found) if isinstance(found, WireCode) else found(error)
    return None


#: The answers every API gives: authentication, permission, locks, throttling, passing conditions.
COMMON = ErrorGroup("common", Common, {
    Unauthenticated: Common.UNAUTHORIZED,
    Denied: Common.DENIED,
    Locked: Common.LOCKED,
    Throttled: Common.TOOMANYREQUESTS,
    Unavailable: Common.UNAVAILABLE,
})

#: The management APIs' generic answers: a named resource not found, an invalid name or request.
MANAGEMENT = ErrorGroup("management", Management, {
    NotFound: Management.NOT_FOUND,
    Invalid: Management.INVALID_REQUEST,
    InvalidName: Management.NAME_INVALID,
})
