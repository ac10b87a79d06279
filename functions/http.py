"""The HTTP trigger: the registry's ASGI app behind the ``azure-functions`` ASGI integration."""

from __future__ import annotations

import azure.functions as func

from shared.api.app import create_app

#: The one ASGI app; uvicorn serves the same object locally (`make run`).
asgi_app = create_app()


def function_app() -> func.AsgiFunctionApp:
    """A function app whose HTTP function (route ``{*route}``, anonymous) serves every request.

    The registry authenticates requests itself, so the function key is not used.
    """
    return func.AsgiFunctionApp(app=asgi_app, http_auth_level=func.AuthLevel.ANONYMOUS)
