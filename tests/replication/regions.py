"""Registries of several regions on one Azurite: each region is a storage prefix of its own (the
layout is per prefix, so a prefix stands for a storage account) and every region's settings list
all of them in ``REGISTRY_REGIONS``."""

from __future__ import annotations

import json
from collections.abc import Sequence

from shared.settings import Settings
from tests.conftest import Azurite, RunningAzurite, test_settings, unique_prefix


def region_settings(azurite: Azurite | RunningAzurite | str, names: Sequence[str] = ("east", "west"),
                    endpoints: Sequence[str] = (), **env: str) -> dict[str, Settings]:
    """Settings of each region of one registry (home first): the same ``REGISTRY_REGIONS``, each
    with its own ``REGISTRY_REGION`` and storage prefix; ``endpoints`` are the regions' URLs."""
    connection = azurite if isinstance(azurite, str) else azurite.connection_string
    prefixes = {name: unique_prefix() for name in names}
    regions = [{"name": name, "connection_string": connection, "prefix": prefixes[name],
                **({"endpoint": endpoints[i]} if i < len(endpoints) else {})} for i, name in enumerate(names)]
    text = json.dumps(regions)
    return {name: test_settings(azurite, REGISTRY_STORAGE_PREFIX=prefixes[name], REGISTRY_REGION=name,
                                REGISTRY_REGIONS=text, **env)
            for name in names}
