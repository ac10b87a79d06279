"""The endpoint switch at request time: a region whose endpoint is switched off serves no registry
requests.

Every operation but the management plane (``/acr/admin``) and the token service answers
UNAVAILABLE/503 with ``Retry-After`` in a disabled region, ``GET /v2/`` included: that is what
a routing front's health probe of ``/v2/`` sees, so it stops sending clients there (ACR's Traffic
Manager likewise stops routing to a disabled replica). The admin API keeps serving so the region
can be switched back on through its own endpoint; tokens keep being issued because they are valid
in every region. Replication into a disabled region goes on, so it is caught up when re-enabled.
"""

from __future__ import annotations

from shared.errors import Unavailable
from shared.kernel.operations import Operation
from shared.kernel.policy import Call
from shared.replication.regions import Regions

#: What a client of a disabled region is asked to wait before retrying (seconds).
RETRY_AFTER = 30
#: The operations a disabled region refuses: all but the management plane and the token service.
SWITCHED_OPERATIONS = tuple(op for op in Operation if op not in (Operation.ADMIN, Operation.LOGIN))


class RegionDisabled(Unavailable):
    """This region's endpoint is switched off; another region serves the registry."""


async def endpoint_switch(call: Call) -> None:
    """Refuse the request when this region's endpoint is switched off (read from a short cache)."""
    regions = await call.container.get(Regions)
    if await regions.is_enabled(regions.local):
        return
    others = [name for name in regions.others if await regions.is_enabled(name)]
    raise RegionDisabled(f"the endpoint of region {regions.local} is disabled; use another region's endpoint",
                         detail={"region": regions.local, "enabledRegions": others}, retry_after=RETRY_AFTER)
