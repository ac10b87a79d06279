"""Every administrative route (the registry's management plane), in one list.

The data-plane API (``/v2``) is in ``app.ROUTES``. Admin routes are kept apart so that one
wrapper (the auth layer) can protect them all at once.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from shared.api import webhooks

ADMIN_ROUTES: list[BaseRoute] = [*webhooks.ROUTES]
