"""The HTTP trigger: the registry's ASGI app behind the ``azure-functions`` ASGI integration."""

from __future__ import annotations

import azure.functions as func
from starlette.applications import Starlette

from shared.api.app import create_app

#: The one ASGI app; uvicorn serves the same object locally (`make run`).
asgi_app = create_app()


def function_app(app: Starlette | None = None) -> func.AsgiFunctionApp:
    """A function app whose HTTP function (route ``{*route}``, anonymous) serves every request
    with ``app`` (default: :data:`asgi_app`).

    The registry authenticates requests itself, so the function key is not used.
    """
    return func.AsgiFunctionApp(app=app or asgi_app, http_auth_level=func.AuthLevel.ANONYMOUS)
