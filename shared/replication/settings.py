"""The geo-replication settings group: this app's region and every region of the registry.

``REGISTRY_REGIONS`` is a JSON array with one object per region, the same text in every
region's app: ``name`` (required, 1-40 lowercase letters, digits and hyphens), the region's storage
(``connection_string``, or ``blob_endpoint`` and ``table_endpoint`` with a managed identity, plus
an optional ``queue_endpoint``), ``prefix`` (default: this app's ``REGISTRY_STORAGE_PREFIX``) and
``endpoint`` (the region's own registry URL, for status and routing). The first region is the home
region. The entry of this app's own region (``REGISTRY_REGION``) may leave its storage out: the
app's storage settings describe it. With fewer than two regions replication is off.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from shared.settings import SettingsError, SettingsGroup, setting

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
_PREFIX = re.compile(r"[a-z][a-z0-9]{2,30}")
_FIELDS = frozenset({"name", "connection_string", "blob_endpoint", "table_endpoint", "queue_endpoint", "prefix",
                     "endpoint"})


@dataclass(frozen=True)
class RegionConfig:
    """One region as ``REGISTRY_REGIONS`` lists it."""

    name: str
    connection_string: str = ""
    blob_endpoint: str = ""
    table_endpoint: str = ""
    queue_endpoint: str = ""
    prefix: str = ""  # empty: the app's REGISTRY_STORAGE_PREFIX
    endpoint: str = ""  # the region's own registry URL

    def __repr__(self) -> str:  # never print a connection string's key
        return f"RegionConfig(name={self.name!r}, prefix={self.prefix!r}, endpoint={self.endpoint!r})"

    @property
    def has_storage(self) -> bool:
        """True when the entry names the region's storage itself."""
        return bool(self.connection_string or (self.blob_endpoint and self.table_endpoint))


def parse_regions(text: str) -> tuple[RegionConfig, ...]:
    """The regions of ``REGISTRY_REGIONS`` (empty text: none); SettingsError naming what is wrong."""
    if not text:
        return ()
    try:
        doc: Any = json.loads(text)
    except ValueError:
        raise SettingsError("setting REGISTRY_REGIONS must be a JSON array of region objects") from None
    if not isinstance(doc, list):
        raise SettingsError("setting REGISTRY_REGIONS must be a JSON array of region objects")
    regions = []
    for index, entry in enumerate(doc):
        if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
            raise SettingsError(f"REGISTRY_REGIONS[{index}] must be an object of strings")
        unknown = set(entry) - _FIELDS
        if unknown:
            raise SettingsError(f"REGISTRY_REGIONS[{index}] has unknown fields: {', '.join(sorted(unknown))}")
        if not _NAME.fullmatch(entry.get("name", "")):
            raise SettingsError(f"REGISTRY_REGIONS[{index}].name must be 1-40 lowercase letters, digits and hyphens")
        if entry.get("prefix") and not _PREFIX.fullmatch(entry["prefix"]):
            raise SettingsError(f"REGISTRY_REGIONS[{index}].prefix must be 3-31 lowercase letters and digits")
        regions.append(RegionConfig(**entry))
    names = [r.name for r in regions]
    if len(set(names)) != len(names):
        raise SettingsError("REGISTRY_REGIONS names a region twice")
    return tuple(regions)


@dataclass(frozen=True)
class ReplicationSettings(SettingsGroup):
    """Geo-replication: which region this app serves, and every region of the registry."""

    title = "Geo-replication"

    region: str = setting(
        "REGISTRY_REGION", "", "This app's region: the `name` of its entry in REGISTRY_REGIONS. Empty: the first "
        "(home) region.", pattern=r"([a-z0-9][a-z0-9-]{0,39})?", pattern_text="1-40 lowercase letters, digits, "
        "hyphens")
    regions_text: str = setting(
        "REGISTRY_REGIONS", "", "JSON array of every region of the registry, home first, the same in every region: "
        "`[{\"name\": \"westeurope\", \"connection_string\": \"…\", \"endpoint\": \"https://…\"}, …]` (or "
        "`blob_endpoint`/`table_endpoint` with the managed identity; optional `prefix`). Fewer than two regions: "
        "replication off.", secret=True)
    retry_seconds: int = setting(
        "REGISTRY_REPLICATION_RETRY_SECONDS", 120, "A change not replicated to a region this long after it was "
        "made is retried by the replication timer (Event Grid redelivers it too).", minimum=10)

    @property
    def regions(self) -> tuple[RegionConfig, ...]:
        """Every region, home first."""
        return parse_regions(self.regions_text)

    @property
    def enabled(self) -> bool:
        """Replication runs when the registry has at least two regions."""
        return len(self.regions) >= 2

    @property
    def local(self) -> str:
        """The name of this app's region."""
        regions = self.regions
        return self.region or (regions[0].name if regions else "")

    def check(self) -> None:
        """The regions parse, and this app's region is one of them."""
        regions = parse_regions(self.regions_text)
        if self.region and regions and self.region not in {r.name for r in regions}:
            raise SettingsError(f"REGISTRY_REGION {self.region!r} is not listed in REGISTRY_REGIONS")
        local = self.region or (regions[0].name if regions else "")
        for region in regions:
            if region.name != local and not region.has_storage:
                raise SettingsError(f"REGISTRY_REGIONS entry {region.name!r} needs connection_string, or "
                                    "blob_endpoint and table_endpoint")
