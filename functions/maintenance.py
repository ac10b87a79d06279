"""Timer-triggered housekeeping functions (schedules: ``shared.jobs``)."""

from __future__ import annotations

import azure.functions as func

from shared.capabilities import load_settings
from shared.jobs import PURGE_STALE_UPLOADS

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name(PURGE_STALE_UPLOADS.name)
@bp.timer_trigger(schedule=PURGE_STALE_UPLOADS.schedule, arg_name="timer", run_on_startup=False, use_monitor=True)
async def purge_stale_uploads_timer(timer: func.TimerRequest) -> None:
    """Hourly: cancel uploads abandoned for longer than REGISTRY_UPLOAD_TTL_HOURS."""
    await PURGE_STALE_UPLOADS.run(load_settings())
