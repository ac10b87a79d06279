"""The local Event Grid: Event Grid's delivery semantics without Azure (make run, func start, tests).

Every subscription (one per Event Grid consumer the capabilities registered) gets the events its
filters select, delivered to its function: in-process (the same plain function the trigger
calls), or under ``func start`` through the host's ``/runtime/webhooks/eventgrid?functionName=``
endpoint. External subscriber URLs get every event after Event Grid's validation handshake.
Delivery is stacked from the pieces of :mod:`shared.events.retry`, as the webhook deliveries
are: the subscriptions' filters select the deliveries (:func:`routed`), each attempt's outcome
goes to a :class:`~shared.events.retry.RetryPolicy` whose backoff doubles per attempt (at most
:data:`MAX_DELAY`), whose scheduler waits in memory, and whose dead-letter sink writes Event
Grid's dead-letter format under ``deadletter/`` in the registry's container.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from shared.events.envelope import CLOUD_EVENT_SCHEMA, EVENT_TYPES, event_type, to_envelope
from shared.events.model import RegistryEvent, timestamp_now
from shared.events.retry import Backoff, InMemoryScheduler, Outcome, RetryPolicy, deliver
from shared.kernel.interfaces import EventHandler
from shared.kernel.jobs import Subscription
from shared.settings import Settings
from shared.storage import layout
from shared.storage.interfaces import Storage

log = logging.getLogger("registry.events.local")
_NO_RETRY = {400, 413}  # Event Grid dead-letters these at once
#: The longest wait between two attempts of one local delivery (seconds).
MAX_DELAY = 60.0


class DeliveryError(Exception):
    """One delivery attempt failed; ``retry`` is False when Event Grid would not try again."""

    def __init__(self, message: str, status: int | None = None, retry: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


@dataclass(frozen=True)
class Endpoint:
    """Where a subscription's events go: its function in-process (no URL), or a URL."""

    subscription: Subscription
    url: str  # empty: in-process
    external: bool = False


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one endpoint."""

    endpoint: Endpoint
    envelope: dict[str, Any]


def routed(endpoints: Sequence[Endpoint], envelope: Mapping[str, Any]) -> list[Endpoint]:
    """The filter piece: the endpoints whose subscription selects ``envelope``."""
    kind, subject = event_type(envelope), str(envelope.get("subject", ""))
    return [e for e in endpoints if e.subscription.matches(kind, subject)]


class BlobDeadLetters:
    """The dead-letter sink: Event Grid's dead-letter format, under ``deadletter/<subscription>/``."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def dead_letter(self, job: Delivery, attempt: int, outcome: Outcome) -> None:
        """Keep ``job``'s event with the reason it could not be delivered."""
        subscription = job.endpoint.subscription
        log.error("subscription %s: dead-lettering event %s after %d attempts: %s",
                  subscription.name, job.envelope["id"], attempt, outcome.reason)
        letter = {
            **job.envelope,
            "deadLetterReason": "MaxDeliveryAttemptsExceeded" if outcome.retry else "DeliveryFailed",
            "deliveryAttempts": attempt,
            "lastDeliveryOutcome": outcome.reason,
            "lastHttpStatusCode": outcome.status or 0,
            "lastDeliveryAttemptTime": timestamp_now(),
        }
        blob = self.storage.container.get_blob_client(layout.dead_letter_blob(subscription.name,
                                                                              str(job.envelope["id"])))
        await blob.upload_blob(json.dumps(letter).encode(), overwrite=True)


class LocalEventGrid:
    """Delivers events to the subscriptions as Event Grid would; one instance per container.

    ``handlers`` are the in-process functions by function name; ``subscriptions`` those of the
    registered consumers.
    """

    def __init__(self, settings: Settings, storage: Storage, handlers: Mapping[str, EventHandler],
                 subscriptions: Sequence[Subscription] = ()) -> None:
        self.settings = settings
        self.handlers = dict(handlers)
        self._session: aiohttp.ClientSession | None = None
        self._validated: set[str] = set()
        self.endpoints = [
            Endpoint(s, f"{settings.events.functions_url}/runtime/webhooks/eventgrid?functionName={s.function_name}"
                     if settings.events.functions_url else "")
            for s in subscriptions
        ]
        everything = tuple(EVENT_TYPES.values())
        self.endpoints += [
            Endpoint(Subscription(f"external-{i}", "", everything), url, external=True)
            for i, url in enumerate(settings.events.subscriber_urls)
        ]
        self.backoff = Backoff(settings.events.retry_ms / 1000, MAX_DELAY, settings.events.max_attempts)
        self.dead_letters = BlobDeadLetters(storage)

    async def publish(self, events: Sequence[RegistryEvent]) -> None:
        """Deliver each event to every matching subscription; returns when each delivered or dead-lettered."""
        deliveries = []
        for event in events:
            envelope = to_envelope(event, self.settings.events.schema, self.settings.registry.location,
                                   self.settings.registry.resource_id)
            deliveries += [self._deliver(Delivery(endpoint, envelope)) for endpoint in routed(self.endpoints, envelope)]
        await asyncio.gather(*deliveries)

    async def _deliver(self, job: Delivery) -> None:
        scheduler: InMemoryScheduler[Delivery] = InMemoryScheduler()
        await deliver(job, self._outcome, RetryPolicy(self.backoff, scheduler, self.dead_letters), scheduler)

    async def _outcome(self, job: Delivery) -> Outcome:
        """One attempt, as its outcome."""
        try:
            await self._attempt(job.endpoint, job.envelope)
        except DeliveryError as failure:
            return Outcome(False, str(failure), failure.retry, failure.status)
        except Exception as failure:  # a handler's own error: Event Grid sees a 500
            log.warning("subscription %s: handler failed: %r", job.endpoint.subscription.name, failure)
            return Outcome(False, repr(failure), True, 500)
        return Outcome(True)

    async def _attempt(self, endpoint: Endpoint, envelope: dict[str, Any]) -> None:
        if not endpoint.url:
            handler = self.handlers.get(endpoint.subscription.function_name)
            if handler is None:
                raise DeliveryError(f"no function {endpoint.subscription.function_name}", 404, retry=False)
            await handler(envelope)
            return
        if endpoint.external and endpoint.url not in self._validated:
            await self._validate(endpoint.url)
            self._validated.add(endpoint.url)
        cloud = self.settings.events.schema == CLOUD_EVENT_SCHEMA
        body = envelope if cloud else [envelope]
        headers = {
            "aeg-event-type": "Notification",
            "aeg-subscription-name": endpoint.subscription.name.upper(),
            "Content-Type": "application/cloudevents+json; charset=utf-8" if cloud else "application/json",
        }
        await self._post(endpoint.url, body, headers)

    async def _post(self, url: str, body: Any, headers: dict[str, str]) -> aiohttp.ClientResponse:
        session = await self._client()
        try:
            async with session.post(url, data=json.dumps(body), headers=headers, allow_redirects=False) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as failure:
            raise DeliveryError(f"{type(failure).__name__}: {failure}") from None
        if not 200 <= response.status < 300:
            raise DeliveryError(f"HTTP {response.status}", response.status, retry=response.status not in _NO_RETRY)
        return response

    async def _validate(self, url: str) -> None:
        """Event Grid's handshake: a validation event (Event Grid schema) or an OPTIONS (CloudEvents)."""
        session = await self._client()
        if self.settings.events.schema == CLOUD_EVENT_SCHEMA:
            origin = "eventgrid.azure.net"
            try:
                async with session.options(url, headers={"WebHook-Request-Origin": origin},
                                           allow_redirects=False) as response:
                    allowed = response.headers.get("WebHook-Allowed-Origin", "")
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as failure:
                raise DeliveryError(f"validation failed: {failure}") from None
            if status != 200 or allowed not in (origin, "*"):
                raise DeliveryError(f"validation refused (HTTP {status})", status)
            return
        code = str(uuid.uuid4())
        validation = [{
            "id": str(uuid.uuid4()), "topic": self.settings.registry.resource_id, "subject": "",
            "data": {"validationCode": code}, "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": timestamp_now(), "metadataVersion": "1", "dataVersion": "1",
        }]
        try:
            async with session.post(url, data=json.dumps(validation), allow_redirects=False,
                                    headers={"aeg-event-type": "SubscriptionValidation",
                                             "Content-Type": "application/json"}) as response:
                answer = await response.json(content_type=None) if response.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as failure:
            raise DeliveryError(f"validation failed: {failure}") from None
        if not isinstance(answer, dict) or answer.get("validationResponse") != code:
            raise DeliveryError("the subscriber did not echo the validation code")

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
