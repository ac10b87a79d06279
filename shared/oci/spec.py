"""The rules of the OCI image-spec (manifest, index, descriptor) and of Docker's image manifest
schema 2, as the registry enforces them before it stores a manifest.

They follow the image-spec's JSON schemas (``schema/*.json``) and its prose, which is normative
where the two differ: an image manifest's ``layers`` may be empty (the prose says SHOULD have one
entry, and the distribution-spec conformance suite pushes one without layers). Beyond the schemas:

- the JSON is strict (RFC 7493): UTF-8, no duplicate keys, no ``NaN``/``Infinity``, no unpaired
  surrogate escapes; a document nested
  deeper than the parser's recursion limit is refused, not a crash;
- an image manifest must not have ``manifests`` and an index must not have ``config`` or
  ``layers``, so one document cannot be read as both (CVE-2021-41190);
- a descriptor's ``data``, when present, must decode to the content its digest and size name;
- digests use an algorithm the registry can verify (``sha256``, ``sha512``);
- at most :data:`MAX_DESCRIPTORS` descriptors (see there for why).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from shared.oci.digest import Digest
from shared.oci.errors import InvalidDigest, InvalidManifest

#: RFC 6838 ``type/subtype`` with the restricted-name characters of its section 4.2, as the
#: image-spec's ``defs-descriptor.json`` writes it.
MEDIA_TYPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
#: An RFC 3986 URI: a scheme, then only characters a URI may hold, ``%`` always followed by two hex digits.
URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
INT64_MAX = 2**63 - 1
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
#: Container runtimes stack at most ~127 layers (the overlay and AUFS mount limit Docker enforces;
#: ECR documented the same 127 per image), and the largest multi-platform indexes list a few dozen
#: manifests. 1,024 is eight times that, so no runnable image or real index reaches it, while the
#: registry's check of what a manifest references stays bounded (one range query, ~1,000 rows).
MAX_DESCRIPTORS = 1024


def invalid(message: str, detail: Any = None) -> InvalidManifest:
    """An invalid manifest error."""
    return InvalidManifest(message, detail=detail)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(raw: bytes) -> Any:
    """Parse a manifest's bytes as strict JSON; InvalidManifest for anything else."""
    try:
        text = raw.decode("utf-8")
        doc = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        if _SURROGATE_ESCAPE.search(text):
            # "\ud800" alone parses to a string that is not Unicode and cannot be encoded again,
            # so every answer that repeats it (referrers, metadata) would fail (RFC 7493 2.1).
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        return doc
    except UnicodeDecodeError:
        raise invalid("manifest is not UTF-8") from None
    except UnicodeEncodeError:
        raise invalid("manifest has a string with an unpaired surrogate") from None
    except RecursionError:
        # The C parser counts its nesting against the interpreter's recursion limit and stops
        # there (some 900 levels; a manifest needs five), so a deep document costs no more.
        raise invalid("manifest nests too deeply") from None
    except ValueError as error:
        reason = "has duplicate keys" if "duplicate key" in str(error) else "is not valid JSON"
        raise invalid(f"manifest {reason}") from None


def media_type(value: Any, where: str) -> str:
    """``value`` if it is an RFC 6838 media type."""
    if not isinstance(value, str) or not MEDIA_TYPE_RE.fullmatch(value):
        raise invalid(f"{where} must be a media type (RFC 6838 type/subtype)")
    return value


def size(value: Any, where: str) -> int:
    """``value`` if it is an integer size from 0 to 2^63-1."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= INT64_MAX:
        raise invalid(f"{where} must be an integer from 0 to 2^63-1")
    return value


def digest(value: Any, where: str) -> Digest:
    """``value`` parsed as a digest of a supported algorithm."""
    if not isinstance(value, str):
        raise invalid(f"{where} must be a digest string")
    try:
        return Digest.parse(value)
    except InvalidDigest:
        raise invalid(f"{where} is not a sha256 or sha512 digest", {"digest": value[:200]}) from None


def string_map(value: Any, where: str) -> dict[str, str]:
    """``value`` if it is a map of strings to strings."""
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid(f"{where} must be an object of string values")
    return value


def strings(value: Any, where: str) -> list[str]:
    """``value`` if it is an array of strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{where} must be an array of strings")
    return value


def urls(value: Any, where: str) -> tuple[str, ...]:
    """``value`` if it is an array of RFC 3986 URIs."""
    items = strings(value, where)
    if not all(URI_RE.fullmatch(u) for u in items):
        raise invalid(f"{where} must hold URIs (RFC 3986)")
    return tuple(items)


PLATFORM_KEYS = ("architecture", "os", "os.version", "os.features", "variant", "features")


def platform(value: Any, where: str) -> dict[str, Any]:
    """An index entry's platform (string ``architecture`` and ``os`` required), with the fields
    the specs define; others stay in the manifest's bytes but are not indexed."""
    if not isinstance(value, dict):
        raise invalid(f"{where} must be an object")
    for key in ("architecture", "os"):
        if not isinstance(value.get(key), str):
            raise invalid(f"{where}.{key} is required and must be a string")
    for key in ("os.version", "variant"):
        if key in value and not isinstance(value[key], str):
            raise invalid(f"{where}.{key} must be a string")
    for key in ("os.features", "features"):  # features: Docker's manifest list
        if key in value:
            strings(value[key], f"{where}.{key}")
    return {k: value[k] for k in PLATFORM_KEYS if k in value}


def embedded(value: Any, where: str, expected: Digest, length: int) -> None:
    """Check a descriptor's ``data``: base64 (RFC 4648) of exactly the content it describes."""
    if not isinstance(value, str):
        raise invalid(f"{where} must be a base64 string")
    try:
        content = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"{where} must be base64 (RFC 4648)") from None
    if len(content) != length or Digest.of(content, expected.algorithm) != expected:
        raise invalid(f"{where} is not the content the descriptor's digest and size name")


def check_version(doc: dict[str, Any]) -> None:
    """``schemaVersion`` must be the integer 2."""
    version = doc.get("schemaVersion")
    if version == 1 and not isinstance(version, bool):
        raise invalid("Docker schema 1 manifests are not supported")
    if not isinstance(version, int) or isinstance(version, bool) or version != 2:
        raise invalid("schemaVersion must be 2")
