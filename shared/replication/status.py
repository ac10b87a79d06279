"""Replication status: each region as ACR's ``registries/replications`` resource, plus its lag.

Lag is read from the changes not yet replicated: the rows ``q|<target>`` of each source region's
``replication`` table (:mod:`shared.storage.layout`), which the replicator deletes once a change
reached the target. One query per region reads them (only their partition key and queue time), so
the cost is one row read per pending change, never a scan of repositories or blobs.

A region's ``displayStatus`` is, in this order: ``Unavailable`` when its storage did not answer,
``Disabled`` when its endpoint is switched off (replication into it goes on), ``Syncing`` when
changes made in another region have not reached it yet, ``Ready`` otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from shared.errors import Invalid, ResourceNotFound
from shared.replication.regions import Regions, UnknownRegion
from shared.replication.switches import Switch
from shared.settings import Settings
from shared.storage import layout
from shared.storage.queries import range_end

#: How long a region may take to answer (its first rows, then each further page) before it counts
#: as unavailable (seconds): a long backlog is slow to count but is not an outage.
READ_TIMEOUT = 10.0
#: Pending rows counted per region at most; past it ``pending`` is a lower bound (``capped``).
COUNT_LIMIT = 50_000
_QUEUE = layout.replication_partition("")  # every target's partition starts with this


@dataclass(frozen=True)
class Lag:
    """The changes made in one region and not yet replicated to another: how many, and the oldest."""

    pending: int = 0
    oldest: datetime | None = None
    capped: bool = False  # more were pending than were counted

    def add(self, queued: datetime) -> Lag:
        """This lag with one more change, queued at ``queued``."""
        return Lag(self.pending + 1, queued if self.oldest is None else min(self.oldest, queued))

    def age(self, now: datetime) -> float:
        """Seconds since the oldest pending change was queued (0 with none)."""
        return 0.0 if self.oldest is None else max((now - self.oldest).total_seconds(), 0.0)


@dataclass(frozen=True)
class Outgoing:
    """What one region has not replicated yet, per target; ``error`` when its storage did not answer."""

    lags: dict[str, Lag]
    error: str = ""


class ReplicationStatus:
    """The replication resources of the registry's regions, their lag and their endpoint switches."""

    def __init__(self, regions: Regions, settings: Settings,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.regions = regions
        self.settings = settings
        self.clock = clock

    def check(self, name: str) -> str:
        """``name`` when it is one of the registry's regions; ResourceNotFound otherwise."""
        try:
            self.regions.region(name)
        except UnknownRegion:
            raise ResourceNotFound("replication", name) from None
        return name

    async def outgoing(self, source: str) -> Outgoing:
        """The changes made in ``source`` not yet replicated, per target region."""
        try:
            return Outgoing(await self._pending(source))
        except Exception as error:  # any failure means the region cannot be read now
            return Outgoing({}, type(error).__name__)

    async def _pending(self, source: str) -> dict[str, Lag]:
        table = (await self.regions.storage(source)).table(layout.REPLICATION.name)
        lags: dict[str, Lag] = {}
        rows = table.query_entities("PartitionKey gt @start and PartitionKey lt @end",
                                    parameters={"start": _QUEUE, "end": range_end(_QUEUE)},
                                    select=["PartitionKey", "queued"])
        counted = 0
        async with asyncio.timeout(READ_TIMEOUT) as budget:
            async for row in rows:
                counted += 1
                if counted % 500 == 0:  # storage is answering: the next page gets its own time
                    budget.reschedule(asyncio.get_running_loop().time() + READ_TIMEOUT)
                if counted > COUNT_LIMIT:
                    return {target: replace(lag, capped=True) for target, lag in lags.items()}
                target = str(row["PartitionKey"])[len(_QUEUE):]
                lags[target] = lags.get(target, Lag()).add(_queued(row))
        return lags

    async def lag(self) -> dict[str, Outgoing]:
        """What every region has not replicated yet (the regions are read at once)."""
        names = self.regions.names
        found = await asyncio.gather(*(self.outgoing(name) for name in names))
        return dict(zip(names, found, strict=True))

    async def switches(self) -> dict[str, Switch]:
        """The endpoint switches read now, or the last known ones when the home region does not answer."""
        try:
            return await asyncio.wait_for(self.regions.switches.read(), READ_TIMEOUT)
        except Exception:  # the home region's outage: its status says Unavailable
            return await self.regions.switches.cached()

    async def resources(self) -> list[dict[str, Any]]:
        """Every region as a replication resource, home first."""
        lag, switches = await asyncio.gather(self.lag(), self.switches())
        now = self.clock()
        return [self._resource(name, lag, switches.get(name) or Switch(name), now) for name in self.regions.names]

    async def resource(self, name: str) -> dict[str, Any]:
        """Region ``name`` as a replication resource; ResourceNotFound when there is none."""
        self.check(name)
        lag, switches = await asyncio.gather(self.lag(), self.switches())
        return self._resource(name, lag, switches.get(name) or Switch(name), self.clock())

    async def set_endpoint(self, name: str, enabled: bool) -> dict[str, Any]:
        """Switch region ``name``'s endpoint on or off; the home region's cannot be switched off."""
        self.check(name)
        if not enabled and name == self.regions.home:
            raise Invalid("the home region's endpoint cannot be disabled", detail={"region": name})
        await self.regions.switches.set(name, enabled)
        return await self.resource(name)

    def _resource(self, name: str, lag: dict[str, Outgoing], switch: Switch, now: datetime) -> dict[str, Any]:
        incoming = {source: lag[source] for source in self.regions.names if source != name}
        figures: dict[str, Any] = {
            source: None if out.error else _figures(out.lags.get(name, Lag()), now)
            for source, out in incoming.items()
        }
        return {
            "id": f"{self.settings.registry.resource_id}/replications/{name}",
            "name": name,
            "type": "Microsoft.ContainerRegistry/registries/replications",
            "location": name,
            "properties": {
                "provisioningState": "Succeeded",
                "status": _status(lag[name], switch, incoming, name, now),
                "regionEndpointEnabled": switch.enabled,
                "zoneRedundancy": "Disabled",
                "lag": figures,
            },
        }


def _figures(lag: Lag, now: datetime) -> dict[str, Any]:
    shown: dict[str, Any] = {"pending": lag.pending, "oldestPendingAge": round(lag.age(now), 3)}
    if lag.capped:
        shown["capped"] = True  # at least this many; the oldest among those counted
    return shown


def _status(own: Outgoing, switch: Switch, incoming: dict[str, Outgoing], name: str,
            now: datetime) -> dict[str, Any]:
    """ACR's ``{displayStatus, message, timestamp}`` of region ``name``."""
    if own.error:
        return _shown("Unavailable", f"the region's storage did not answer ({own.error})", now)
    if not switch.enabled:
        return _shown("Disabled", "the region's endpoint is disabled; replication into it continues",
                      switch.updated or now)
    behind = {source: out.lags[name] for source, out in incoming.items() if name in out.lags}
    unread = sorted(source for source, out in incoming.items() if out.error)
    note = f"; no figures from {', '.join(unread)} (storage did not answer)" if unread else ""
    if behind:
        oldest = min(lag.oldest for lag in behind.values() if lag.oldest is not None)
        parts = ", ".join(f"{lag.pending} from {source}" for source, lag in sorted(behind.items()))
        return _shown("Syncing", f"changes not replicated here yet: {parts}{note}", oldest)
    return _shown("Ready", f"in step with every other region{note}", now)


def _shown(display: str, message: str, when: datetime) -> dict[str, Any]:
    return {"displayStatus": display, "message": message, "timestamp": when.astimezone(UTC).isoformat()}


def _queued(row: Any) -> datetime:
    """When a pending change was queued: its ``queued`` property, else the row's own timestamp."""
    queued = row.get("queued")
    if isinstance(queued, datetime):
        return queued if queued.tzinfo else queued.replace(tzinfo=UTC)
    if isinstance(queued, str):
        try:
            parsed = datetime.fromisoformat(queued)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    stamp = getattr(row, "metadata", {}).get("timestamp")
    return stamp if isinstance(stamp, datetime) else datetime.now(UTC)
