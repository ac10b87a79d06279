"""The ASGI application: routes of the distribution API over the registry services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.api import blobs, discovery, manifests
from shared.api.admin import ADMIN_ROUTES
from shared.api.boundary import ErrorBoundary, error_response
from shared.api.events import start_outbox_sweeper
from shared.api.http import new_lock
from shared.errors import ErrorCode, RegistryError
from shared.settings import Settings

_NAME = "/v2/{name:path}"
ROUTES = [
    Route("/v2/", discovery.api_root, methods=["GET", "HEAD"]),
    Route("/v2/_catalog", discovery.catalog, methods=["GET"]),
    Route(_NAME + "/manifests/{reference}", manifests.get_manifest, methods=["GET", "HEAD"]),
    Route(_NAME + "/manifests/{reference}", manifests.put_manifest, methods=["PUT"]),
    Route(_NAME + "/manifests/{reference}", manifests.delete_manifest, methods=["DELETE"]),
    Route(_NAME + "/blobs/uploads/", blobs.start_upload, methods=["POST"]),
    Route(_NAME + "/blobs/uploads/{upload_id}", blobs.upload_status, methods=["GET"]),
    Route(_NAME + "/blobs/uploads/{upload_id}", blobs.patch_upload, methods=["PATCH"]),
    Route(_NAME + "/blobs/uploads/{upload_id}", blobs.finish_upload, methods=["PUT"]),
    Route(_NAME + "/blobs/uploads/{upload_id}", blobs.cancel_upload, methods=["DELETE"]),
    Route(_NAME + "/blobs/{digest}", blobs.get_blob, methods=["GET", "HEAD"]),
    Route(_NAME + "/blobs/{digest}", blobs.delete_blob, methods=["DELETE"]),
    Route(_NAME + "/tags/list", discovery.list_tags, methods=["GET"]),
    Route(_NAME + "/referrers/{digest}", discovery.referrers, methods=["GET"]),
    *ADMIN_ROUTES,
]


async def _http_exception(request: Request, exc: Exception) -> Response:
    # Starlette's router raises these for unknown paths and methods; answer in the spec's shape.
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    error = RegistryError(ErrorCode.UNSUPPORTED if status == 405 else ErrorCode.NOT_FOUND)
    return error_response(error, request.method)


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the registry's ASGI app.

    Settings (from the environment unless given) are read and storage is connected on the first
    request, so building the app, as the Functions host does when it indexes, needs neither.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sweeper = start_outbox_sweeper(app)
        yield
        if sweeper is not None:
            sweeper.cancel()
        if app.state.registry is not None:
            await app.state.registry.close()
            app.state.registry = None

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        # Inside Starlette's own error middleware, so nothing reaches its plain-text 500 page.
        middleware=[Middleware(ErrorBoundary)],
        exception_handlers={HTTPException: _http_exception},
    )
    app.state.settings = settings
    app.state.registry = None
    app.state.registry_lock = new_lock()
    return app
