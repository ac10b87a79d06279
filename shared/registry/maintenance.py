"""Housekeeping run by timer functions."""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.kernel.container import Container
from shared.registry.uploads import UploadService

log = logging.getLogger("registry.maintenance")


async def purge_stale_uploads(container: Container) -> int:
    """Cancel uploads untouched for ``upload_ttl_hours``; returns how many were purged."""
    uploads = await container.get(UploadService)
    purged = await uploads.purge_stale(timedelta(hours=container.settings.registry.upload_ttl_hours))
    log.info("purged %d stale uploads", purged)
    return purged
