"""Housekeeping run by timer-triggered functions."""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.registry.registry import Registry
from shared.settings import Settings

log = logging.getLogger("registry.maintenance")


async def purge_stale_uploads(settings: Settings) -> int:
    """Cancel uploads untouched for ``upload_ttl_hours``; returns how many were purged."""
    registry = await Registry.open(settings)
    try:
        purged = await registry.uploads.purge_stale(timedelta(hours=settings.upload_ttl_hours))
    finally:
        await registry.close()
    log.info("purged %d stale uploads", purged)
    return purged
