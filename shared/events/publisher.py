"""The Event Grid publisher: hands committed events to an Event Grid topic.

It is one :class:`~shared.kernel.interfaces.EventPublisher`; the other is the local Event Grid
(:mod:`shared.events.local`). The events capability (:mod:`shared.events.capability`) picks one
from the settings: a topic endpoint means Azure Event Grid, none means the local delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.events.envelope import CLOUD_EVENT_SCHEMA, DATA_VERSION, EVENT_TYPES, event_data, subject
from shared.events.model import RegistryEvent
from shared.settings import Settings


def _time(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


class EventGridPublisher:
    """Publishes to an Event Grid topic with ``azure-eventgrid``'s ``EventGridPublisherClient``.

    The credential is the topic key (sent as ``aeg-sas-key``) when REGISTRY_EVENTGRID_KEY is set,
    else ``DefaultAzureCredential`` (a token for ``https://eventgrid.azure.net/.default``).
    """

    def __init__(self, settings: Settings) -> None:
        from azure.eventgrid.aio import EventGridPublisherClient

        self.settings = settings
        self._credential: Any
        if settings.events.eventgrid_key:
            from azure.core.credentials import AzureKeyCredential

            self._credential = AzureKeyCredential(settings.events.eventgrid_key)
            self._owns_credential = False
        else:
            from azure.identity.aio import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
            self._owns_credential = True
        self.client = EventGridPublisherClient(settings.events.eventgrid_endpoint, self._credential)

    async def publish(self, events: Sequence[RegistryEvent]) -> None:
        """Send ``events`` in one request, in the configured schema."""
        if not events:
            return
        location = self.settings.registry.location
        if self.settings.events.schema == CLOUD_EVENT_SCHEMA:
            from azure.core.messaging import CloudEvent

            await self.client.send([
                CloudEvent(source=self.settings.registry.resource_id, type=EVENT_TYPES[e.action],
                           data=event_data(e, location), subject=subject(e), id=e.id, time=_time(e.timestamp))
                for e in events
            ])
            return
        from azure.eventgrid import EventGridEvent

        # No topic: Event Grid sets it to the topic's own resource id.
        await self.client.send([
            EventGridEvent(subject=subject(e), event_type=EVENT_TYPES[e.action], data=event_data(e, location),
                           data_version=DATA_VERSION, id=e.id, event_time=_time(e.timestamp))
            for e in events
        ])

    async def close(self) -> None:
        """Close the client (and the credential it created)."""
        await self.client.close()
        if self._owns_credential:
            await self._credential.close()
