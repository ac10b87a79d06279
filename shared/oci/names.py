"""Repository name, tag and reference grammar of the distribution spec."""

from __future__ import annotations

import re

from shared.oci.errors import InvalidRepositoryName, InvalidTag

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
MAX_NAME_LENGTH = 255


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid repository name, else raise InvalidRepositoryName."""
    if len(name) > MAX_NAME_LENGTH or not NAME_RE.fullmatch(name):
        raise InvalidRepositoryName(detail={"name": name[:MAX_NAME_LENGTH]})
    return name


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it matches the tag grammar, else raise InvalidTag."""
    if not TAG_RE.fullmatch(tag):
        raise InvalidTag(detail={"tag": tag[:128]})
    return tag


def is_tag(reference: str) -> bool:
    """True when ``reference`` is syntactically a tag (digests contain a colon, tags cannot)."""
    return ":" not in reference
