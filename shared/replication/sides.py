"""What every kind of reconciliation shares: the two regions, the arrival event, times and conflicts."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableTransactionError

from shared.events.model import RegistryEvent
from shared.storage.interfaces import Storage

#: How many times one item's rows are re-read and re-decided after a concurrent writer changed them.
ATTEMPTS = 8
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
IF_UNCHANGED = MatchConditions.IfNotModified
_CONFLICTS = frozenset({"EntityAlreadyExists", "UpdateConditionNotSatisfied", "ResourceNotFound"})


class ReplicationIncomplete(Exception):
    """The target could not be brought to the source's state this time (retried later)."""


@dataclass(frozen=True)
class Sides:
    """The two regions of one reconciliation: where the change was made, and where it goes."""

    source: Storage
    target: Storage
    source_region: str
    target_region: str


def arrival(event: RegistryEvent, sides: Sides, **target: Any) -> RegistryEvent:
    """The event announcing in the target that ``event``'s change arrived there (``target``
    overrides fields of the event's target); its id is the same for every attempt."""
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"replication:{event.id}:{sides.target_region}"))
    changed = replace(event.target, **target) if target else event.target
    return replace(event, id=event_id, target=changed, origin=sides.source_region)


def event_time(event: RegistryEvent) -> datetime:
    """The event's ``timestamp`` as a UTC datetime."""
    moment = datetime.fromisoformat(event.timestamp.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def when(moment: datetime | None) -> datetime:
    """A row's time, the epoch when it has none (rows written before times were kept)."""
    return moment if moment is not None else EPOCH


def conflict(error: TableTransactionError) -> bool:
    """Whether a transaction failed because a row changed since it was read (decide again)."""
    return str(getattr(error, "error_code", "")) in _CONFLICTS


def verbatim(entity: Mapping[str, Any]) -> dict[str, Any]:
    """A row as read, to be written as it is into another region (its service metadata left behind)."""
    return dict(entity)
