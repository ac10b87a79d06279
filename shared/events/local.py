"""The local Event Grid: Event Grid's delivery semantics without Azure (make run, func start, tests).

Every subscription of :mod:`shared.events.subscriptions` gets the events its filters select,
delivered to its function: in-process (the same plain function the trigger calls), or under
``func start`` through the host's ``/runtime/webhooks/eventgrid?functionName=`` endpoint. External
subscriber URLs get every event after Event Grid's validation handshake. Failed deliveries are
retried with exponential backoff, then dead-lettered to ``deadletter/`` in the registry's container,
in Event Grid's dead-letter format.
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

from shared.events.envelope import CLOUD_EVENT_SCHEMA, EVENT_TYPES, to_envelope
from shared.events.model import RegistryEvent, timestamp_now
from shared.events.publisher import EventHandler
from shared.events.subscriptions import SUBSCRIPTIONS, Subscription
from shared.settings import Settings
from shared.storage import layout
from shared.storage.interfaces import Storage

log = logging.getLogger("registry.events.local")
_NO_RETRY = {400, 413}  # Event Grid dead-letters these at once
_MAX_DELAY = 60.0


class DeliveryError(Exception):
    """One delivery attempt failed; ``retry`` is False when Event Grid would not try again."""

    def __init__(self, message: str, status: int | None = None, retry: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


@dataclass(frozen=True)
class _Endpoint:
    subscription: Subscription
    url: str  # empty: in-process
    external: bool = False


class LocalEventGrid:
    """Delivers events to the subscriptions as Event Grid would; one instance per registry."""

    def __init__(self, settings: Settings, storage: Storage, handlers: Mapping[str, EventHandler]) -> None:
        self.settings = settings
        self.storage = storage
        self.handlers = dict(handlers)
        self._session: aiohttp.ClientSession | None = None
        self._validated: set[str] = set()
        self.endpoints = [
            _Endpoint(s, f"{settings.events.functions_url}/runtime/webhooks/eventgrid?functionName={s.function_name}"
                      if settings.events.functions_url else "")
            for s in SUBSCRIPTIONS
        ]
        everything = tuple(EVENT_TYPES.values())
        self.endpoints += [
            _Endpoint(Subscription(f"external-{i}", "", everything), url, external=True)
            for i, url in enumerate(settings.events.subscriber_urls)
        ]

    async def publish(self, events: Sequence[RegistryEvent]) -> None:
        """Deliver each event to every matching subscription; returns when each delivered or dead-lettered."""
        deliveries = []
        for event in events:
            envelope = to_envelope(event, self.settings.events.schema, self.settings.registry.location,
                                   self.settings.registry.resource_id)
            event_type = str(envelope.get("eventType") or envelope.get("type"))
            for endpoint in self.endpoints:
                if endpoint.subscription.matches(event_type, str(envelope["subject"])):
                    deliveries.append(self._deliver(endpoint, envelope))
        await asyncio.gather(*deliveries)

    async def _deliver(self, endpoint: _Endpoint, envelope: dict[str, Any]) -> None:
        attempts = self.settings.events.max_attempts
        error = DeliveryError("not attempted")
        for attempt in range(1, attempts + 1):
            try:
                await self._attempt(endpoint, envelope)
                return
            except DeliveryError as failure:
                error = failure
            except Exception as failure:  # a handler's own error: Event Grid sees a 500
                log.warning("subscription %s: handler failed: %r", endpoint.subscription.name, failure)
                error = DeliveryError(repr(failure), 500)
            if not error.retry or attempt == attempts:
                break
            await asyncio.sleep(min(self.settings.events.retry_ms / 1000 * 2 ** (attempt - 1), _MAX_DELAY))
        await self._dead_letter(endpoint.subscription, envelope, error, attempt)

    async def _attempt(self, endpoint: _Endpoint, envelope: dict[str, Any]) -> None:
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

    async def _dead_letter(self, subscription: Subscription, envelope: dict[str, Any], error: DeliveryError,
                           attempts: int) -> None:
        log.error("subscription %s: dead-lettering event %s after %d attempts: %s",
                  subscription.name, envelope["id"], attempts, error)
        letter = {
            **envelope,
            "deadLetterReason": "MaxDeliveryAttemptsExceeded" if error.retry else "DeliveryFailed",
            "deliveryAttempts": attempts,
            "lastDeliveryOutcome": str(error),
            "lastHttpStatusCode": error.status or 0,
            "lastDeliveryAttemptTime": timestamp_now(),
        }
        blob = self.storage.container.get_blob_client(layout.dead_letter_blob(subscription.name, str(envelope["id"])))
        await blob.upload_blob(json.dumps(letter).encode(), overwrite=True)

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
