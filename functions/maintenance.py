"""Timer-triggered housekeeping functions."""

from __future__ import annotations

import azure.functions as func

from shared.maintenance import purge_stale_uploads
from shared.settings import Settings

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name("purge_stale_uploads")
@bp.timer_trigger(schedule="0 17 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def purge_stale_uploads_timer(timer: func.TimerRequest) -> None:
    """Hourly: cancel uploads abandoned for longer than REGISTRY_UPLOAD_TTL_HOURS."""
    await purge_stale_uploads(Settings.from_env())
