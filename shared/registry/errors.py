"""What the registry's services refuse or cannot find, in the domain's words (the API picks the codes)."""

from __future__ import annotations

from typing import Any

from shared.errors import Invalid, NotFound


class BlobUnknown(NotFound):
    """The blob is not in the repository (or its data is gone)."""


class ManifestUnknown(NotFound):
    """No manifest answers to the reference in the repository."""


class RepositoryUnknown(NotFound):
    """The repository does not exist."""


class UploadUnknown(NotFound):
    """The upload session does not exist, or has ended."""


class UploadInvalid(Invalid):
    """The upload cannot go on (its data is gone, or it has too many chunks)."""


class UploadOutOfOrder(Invalid):
    """A chunk that does not start where the upload ends; ``size`` is what the upload holds."""

    def __init__(self, size: int, message: str = "", detail: Any = None) -> None:
        super().__init__(message, detail)
        self.size = size


class DigestMismatch(Invalid):
    """The content does not have the digest it was sent with."""


class SizeMismatch(Invalid):
    """A body is longer or shorter than its declared length."""


class ManifestBlobUnknown(Invalid):
    """A manifest refers to blobs the repository does not hold."""


class InvalidPageSize(Invalid):
    """A page size (``n``) that is not a non-negative integer."""
