"""The ASGI application: assembled from an :class:`~shared.kernel.configurator.Application`'s route
table, serving from a :class:`~shared.kernel.container.Container` it is given the means to open.

The middleware, outermost first: the error boundary (which also sets the request context), the
guard (authentication, :mod:`shared.api.guard`), then Starlette's router, whose routes run the
policies of their operation before their handler (:mod:`shared.api.routing`). The entry point
(``shared.composition.create_app``) decides which container the app serves from.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from shared.api.boundary import ErrorBoundary, error_response
from shared.api.guard import Guard
from shared.api.routing import RouteTable
from shared.errors import Common, RegistryError
from shared.kernel.configurator import Application
from shared.kernel.container import Container
from shared.settings import Settings

#: Opens the container the app serves from, for the settings the app runs with.
Opener = Callable[[Settings], Awaitable[Container]]
#: Starts the process's background loops with the app's container, or returns None when there are none.
Background = Callable[[Starlette], "asyncio.Task[None] | None"]


async def _http_exception(request: Request, exc: Exception) -> Response:
    # Starlette's router raises these for unknown paths and methods; answer in the spec's shape.
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    error = RegistryError(Common.UNSUPPORTED if status == 405 else Common.NO_ROUTE)
    return error_response(error, request.method)


def assemble(application: Application, opener: Opener, settings: Settings | None = None,
             background: Background | None = None) -> Starlette:
    """The registry's ASGI app for ``application``'s routes, serving from the container ``opener``
    opens for ``settings`` (read from the environment when None) on the first request that needs it,
    so building the app, as the Functions host does when it indexes, needs neither."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = background(app) if background is not None else None
        yield
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # let it close its clients
        if app.state.container is not None:
            await app.state.container.close()
            app.state.container = None

    table = RouteTable(application)
    app = Starlette(
        routes=table.routes,
        lifespan=lifespan,
        # Inside Starlette's own error middleware, so nothing reaches its plain-text 500 page.
        middleware=[Middleware(ErrorBoundary, groups=application.error_groups), Middleware(Guard, table=table)],
        exception_handlers={HTTPException: _http_exception},
    )
    lock = asyncio.Lock()

    async def open_container() -> Container:
        """The app's container, opened (once) if it is not yet, or again if it was closed."""
        state = app.state
        if state.container is None or state.container.closed:
            async with lock:
                if state.container is None or state.container.closed:
                    if state.settings is None:
                        state.settings = Settings.from_env(None, application.settings_groups)
                    state.container = await opener(state.settings)
        container: Container = state.container
        return container

    app.state.settings = settings
    app.state.container = None
    app.state.open_container = open_container
    return app
