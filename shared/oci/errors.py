"""What the OCI rules refuse: names, tags, digests and manifests that break them."""

from __future__ import annotations

from shared.errors import Invalid, InvalidName


class InvalidRepositoryName(InvalidName):
    """A repository name the distribution spec does not allow."""


class InvalidTag(Invalid):
    """A tag the distribution spec does not allow."""


class InvalidDigest(Invalid):
    """A digest that is malformed or of an algorithm this registry does not support."""


class InvalidManifest(Invalid):
    """A manifest that breaks the image spec or this registry's limits."""


class ManifestTooLarge(InvalidManifest):
    """A manifest larger than the registry accepts."""
