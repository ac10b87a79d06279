"""Replication management (ARM's operations on ``registries/replications``), under
``/acr/admin/replications`` (routes in :mod:`shared.replication.capability`), admin only.

``GET`` lists every region (``{"value": [...]}``) or shows one, as ACR's replication resource
plus ``properties.lag`` (per source region: ``{pending, oldestPendingAge}``, None when that
region's storage did not answer). ``PATCH`` with ``{"properties": {"regionEndpointEnabled": false}}``
switches a region's endpoint off (the home region's cannot be), ``true`` on again. Beyond ARM:
``GET images/<repository>/<tag or digest>`` says which regions hold an image, and
``GET /acr/admin/metrics`` serves the lag as Prometheus gauges, and ``GET /acr/health`` (anonymous)
answers 200 while the region serves (the routing front's health probe; the endpoint switch makes
it 503 while the region is switched off).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.api.http import read_json, service
from shared.errors import Invalid, Management
from shared.replication import metrics
from shared.replication.presence import image_regions
from shared.replication.regions import Regions
from shared.replication.status import ReplicationStatus

_BODY_LIMIT = 16 * 1024
_PROPERTIES = frozenset({"regionEndpointEnabled"})


async def list_replications(request: Request) -> Response:
    """Every region: ``{"value": [...]}``, home first."""
    status = await service(request, ReplicationStatus)
    return JSONResponse({"value": await status.resources()})


async def get_replication(request: Request) -> Response:
    """One region's replication resource."""
    status = await service(request, ReplicationStatus)
    return JSONResponse(await status.resource(request.path_params["region"]))


async def update_replication(request: Request) -> Response:
    """Switch a region's endpoint on or off (``properties.regionEndpointEnabled``)."""
    status = await service(request, ReplicationStatus)
    name = status.check(request.path_params["region"])
    body = await read_json(request, _BODY_LIMIT, Management.BODY_TOO_LARGE, Management.INVALID_REQUEST)
    enabled = _endpoint_enabled(body)
    if enabled is None:
        return JSONResponse(await status.resource(name))
    return JSONResponse(await status.set_endpoint(name, enabled))


def _endpoint_enabled(body: Any) -> bool | None:
    """``properties.regionEndpointEnabled`` of a PATCH body (None when absent); Invalid otherwise."""
    if not isinstance(body, dict) or not isinstance(body.get("properties", {}), dict):
        raise Invalid('the body must be {"properties": {"regionEndpointEnabled": true|false}}')
    properties = body.get("properties", {})
    unknown = sorted(set(properties) - _PROPERTIES)
    if unknown:
        raise Invalid("only regionEndpointEnabled can be changed", detail={"properties": unknown[:10]})
    value = properties.get("regionEndpointEnabled")
    if value is not None and not isinstance(value, bool):
        raise Invalid("regionEndpointEnabled must be true or false")
    return value


async def image(request: Request) -> Response:
    """Which regions hold the manifest a tag or digest names: ``{repository, reference, digest, regions}``."""
    regions = await service(request, Regions)
    params = request.path_params
    return JSONResponse(await image_regions(regions, params["name"], params["reference"]))


async def metrics_text(request: Request) -> Response:
    """The replication gauges, in the Prometheus text format."""
    status = await service(request, ReplicationStatus)
    lag, switches = await asyncio.gather(status.lag(), status.regions.switches.cached())
    text = metrics.render(status.regions.names, lag, switches, status.clock())
    return Response(text, media_type=metrics.CONTENT_TYPE)


async def health(request: Request) -> Response:
    """200 with this region's name while it serves: the request-time endpoint switch answers 503
    before this runs when the region is switched off."""
    regions = await service(request, Regions)
    return JSONResponse({"region": regions.local, "status": "serving"})
