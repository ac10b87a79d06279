"""The ASGI application: routes of the distribution API over the registry services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.api import blobs, discovery, manifests, metadata, oauth
from shared.api.admin import ADMIN_ROUTES
from shared.api.boundary import ErrorBoundary, error_response
from shared.api.events import start_background
from shared.api.guard import Guard
from shared.api.http import new_lock
from shared.capabilities import ERROR_GROUPS
from shared.errors import Common, RegistryError
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
]
# ACR's token service, metadata API and the admin API; who may call what is decided by the one
# table in shared/api/access.py, enforced by the Guard middleware before any handler runs.
_ACR = "/acr/v1/{name:path}"
ROUTES += [
    Route("/oauth2/token", oauth.get_token, methods=["GET"]),
    Route("/oauth2/token", oauth.post_token, methods=["POST"]),
    Route("/oauth2/exchange", oauth.exchange, methods=["POST"]),
    Route("/acr/v1/_catalog", metadata.catalog, methods=["GET"]),
    Route(_ACR + "/_tags", metadata.list_tags, methods=["GET"]),
    Route(_ACR + "/_tags/{reference}", metadata.tag_properties, methods=["GET"]),
    Route(_ACR + "/_tags/{reference}", metadata.update_tag, methods=["PATCH"]),
    Route(_ACR + "/_tags/{reference}", metadata.delete_tag, methods=["DELETE"]),
    Route(_ACR + "/_manifests", metadata.list_manifests, methods=["GET"]),
    Route(_ACR + "/_manifests/{reference}", metadata.manifest_properties, methods=["GET"]),
    Route(_ACR + "/_manifests/{reference}", metadata.update_manifest, methods=["PATCH"]),
    Route(_ACR + "/_manifests/{reference}", metadata.delete_manifest, methods=["DELETE"]),
    *ADMIN_ROUTES,
    Route(_ACR, metadata.repository_properties, methods=["GET"]),
    Route(_ACR, metadata.update_repository, methods=["PATCH"]),
    Route(_ACR, metadata.delete_repository, methods=["DELETE"]),
]


async def _http_exception(request: Request, exc: Exception) -> Response:
    # Starlette's router raises these for unknown paths and methods; answer in the spec's shape.
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    error = RegistryError(Common.UNSUPPORTED if status == 405 else Common.NO_ROUTE)
    return error_response(error, request.method)


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the registry's ASGI app.

    Settings (from the environment unless given) are read and storage is connected on the first
    request, so building the app, as the Functions host does when it indexes, needs neither.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        background = start_background(app)
        yield
        if background is not None:
            background.cancel()
            await asyncio.gather(background, return_exceptions=True)  # let it close its clients
        if app.state.registry is not None:
            await app.state.registry.close()
            app.state.registry = None

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        # Inside Starlette's own error middleware, so nothing reaches its plain-text 500 page.
        middleware=[Middleware(ErrorBoundary, groups=ERROR_GROUPS), Middleware(Guard)],
        exception_handlers={HTTPException: _http_exception},
    )
    app.state.settings = settings
    app.state.registry = None
    app.state.registry_lock = new_lock()
    return app
