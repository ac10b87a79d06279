"""The seams services take their collaborators by: protocols only, no implementations.

Each has more than one implementation: the outbox and a null sink (:class:`EventSink`), Event
Grid and the local Event Grid (:class:`EventPublisher`), the consumers' plain functions and test
recorders (:class:`EventHandler`). Events are generic here: the kernel knows no event model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

Event_contra = TypeVar("Event_contra", contravariant=True)

#: One operation of an entity-group transaction, as ``TableClient.submit_transaction`` takes it.
TransactionOperation = tuple[Any, ...]


class EventSink(Protocol[Event_contra]):
    """Where a service puts the events its commits cause: stored with the commit, published after."""

    def operations(self, partition: str, events: Sequence[Event_contra]) -> list[TransactionOperation]:
        """The operations that store ``events`` in the transaction committing them (in ``partition``)."""
        ...

    def committed(self, partition: str, events: Sequence[Event_contra]) -> None:
        """The transaction holding ``events`` committed: hand them on (without waiting for delivery)."""
        ...


class EventPublisher(Protocol[Event_contra]):
    """Publishes events after the commit they describe."""

    async def publish(self, events: Sequence[Event_contra]) -> None:
        """Hand ``events`` over for delivery; return only once they are accepted, raise if not.

        Accepted means Event Grid answered 200 (it then owns the retries), or, locally, that every
        subscription got the event or dead-lettered it. Callers delete outbox rows only after this.
        """
        ...

    async def close(self) -> None:
        """Release connections (not part of publishing: called once when the process's container closes)."""
        ...


class EventHandler(Protocol):
    """The plain function an Event Grid-triggered function calls with one delivered event."""

    async def __call__(self, envelope: Mapping[str, Any], /) -> object:
        """Handle one event (Event Grid schema or CloudEvents); raise to have it delivered again."""
        ...
