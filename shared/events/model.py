"""ACR's event payloads as frozen dataclasses, serialised with ACR's exact field names.

A webhook receives :meth:`RegistryEvent.to_payload` as its body; Event Grid carries the same
document (plus ``location``) as ``data``. Which keys a payload has depends on its action, as ACR
documents: push has ``size`` and ``length``, delete only ``mediaType``, ``digest`` and
``repository``; chart events carry ``name`` and ``version`` and no ``request``; quarantine is a
push without ``target.mediaType`` and ``request.useragent``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.kernel.context import current_request

PUSH = "push"
DELETE = "delete"
QUARANTINE = "quarantine"
CHART_PUSH = "chart_push"
CHART_DELETE = "chart_delete"
#: This project's own actions (ACR has no event for them; they never reach webhooks): a tag
#: deleted alone, and lock flags (``changeableAttributes``) changed. Geo-replication needs both.
UNTAG = "untag"
ATTRIBUTES = "attributes"
#: The actions of ACR's webhooks.
ACR_ACTIONS = (PUSH, DELETE, QUARANTINE, CHART_PUSH, CHART_DELETE)
ACTIONS = (*ACR_ACTIONS, UNTAG, ATTRIBUTES)

#: The config media type of a Helm chart stored as an OCI artifact (Helm 3.8+).
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
#: The media type ACR reports in chart events.
ACR_CHART = "application/vnd.acr.helm.chart"
_TITLE = "org.opencontainers.image.title"
_VERSION = "org.opencontainers.image.version"


def timestamp_now() -> str:
    """The current UTC time in the RFC 3339 form ACR uses (``...Z``)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class RequestInfo:
    """The facts of the HTTP request that caused an event."""

    id: str
    host: str
    method: str
    useragent: str

    def to_json(self, with_useragent: bool = True) -> dict[str, str]:
        """The ``request`` object of a payload."""
        doc = {"id": self.id, "host": self.host, "method": self.method}
        if with_useragent:
            doc["useragent"] = self.useragent
        return doc


def current_request_info() -> RequestInfo | None:
    """The ``request`` of an event caused now: the current request (None outside one)."""
    context = current_request()
    if context is None:
        return None
    return RequestInfo(context.id, context.host, context.method, context.useragent)


@dataclass(frozen=True)
class Target:
    """What an event is about. Optional fields are left out of the payload when None."""

    repository: str
    digest: str
    media_type: str | None = None
    size: int | None = None
    tag: str | None = None
    name: str | None = None  # charts only
    version: str | None = None  # charts only


@dataclass(frozen=True)
class RegistryEvent:
    """One ACR event: the webhook payload, and the ``data`` of the Event Grid event."""

    id: str
    timestamp: str
    action: str
    target: Target
    request: RequestInfo | None = None
    #: The region a replicated change came from (None: a client made the change in this region).
    #: Carried in Event Grid ``data``, never in a webhook's payload.
    origin: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """The JSON document ACR POSTs to a webhook for this event (the outbox stores it with
        ``origin``: see :meth:`to_stored`)."""
        t = self.target
        target: dict[str, Any] = {}
        if t.media_type is not None and self.action != QUARANTINE:
            target["mediaType"] = t.media_type
        if t.size is not None:
            target["size"] = t.size
        target["digest"] = t.digest
        if t.size is not None and self.action in (PUSH, QUARANTINE):
            target["length"] = t.size
        target["repository"] = t.repository
        for key, value in (("tag", t.tag), ("name", t.name), ("version", t.version)):
            if value is not None:
                target[key] = value
        doc: dict[str, Any] = {"id": self.id, "timestamp": self.timestamp, "action": self.action, "target": target}
        if self.request is not None and self.action not in (CHART_PUSH, CHART_DELETE):
            doc["request"] = self.request.to_json(with_useragent=self.action != QUARANTINE)
        return doc

    def to_stored(self) -> dict[str, Any]:
        """The payload plus ``origin`` when set: what the outbox and Event Grid ``data`` carry."""
        doc = self.to_payload()
        if self.origin is not None:
            doc["origin"] = self.origin
        return doc

    @classmethod
    def from_payload(cls, doc: Mapping[str, Any]) -> RegistryEvent:
        """The event a payload (or Event Grid ``data``) describes; KeyError/ValueError if malformed."""
        action = str(doc["action"])
        if action not in ACTIONS:
            raise ValueError(f"unknown event action {action!r}")
        t = doc["target"]
        target = Target(
            repository=str(t["repository"]), digest=str(t["digest"]), media_type=t.get("mediaType"),
            size=t.get("size"), tag=t.get("tag"), name=t.get("name"), version=t.get("version"),
        )
        r = doc.get("request")
        request = None if r is None else RequestInfo(
            str(r.get("id", "")), str(r.get("host", "")), str(r.get("method", "")), str(r.get("useragent", ""))
        )
        origin = doc.get("origin")
        return cls(str(doc["id"]), str(doc["timestamp"]), action, target, request,
                   None if origin is None else str(origin))


@dataclass(frozen=True)
class Chart:
    """The name and version of a Helm chart."""

    name: str
    version: str


def chart_of(config_media_type: str | None, annotations: Mapping[str, str], repository: str,
             tag: str | None) -> Chart | None:
    """The chart a manifest holds, or None when it is not a Helm chart.

    Helm writes the chart's name and version as the manifest's title and version annotations;
    without them, the last path segment of the repository and the tag stand in.
    """
    if config_media_type != HELM_CONFIG:
        return None
    name = annotations.get(_TITLE) or repository.rsplit("/", 1)[-1]
    return Chart(name, annotations.get(_VERSION) or tag or "")


def push_event(repository: str, digest: str, media_type: str, size: int, tag: str | None,
               request: RequestInfo | None, chart: Chart | None = None, quarantined: bool = False) -> RegistryEvent:
    """The event of a manifest PUT (a tag move is a push too): push, chart_push or quarantine."""
    if chart is not None:
        target = Target(repository, digest, ACR_CHART, size, tag, chart.name, chart.version)
        return RegistryEvent(str(uuid.uuid4()), timestamp_now(), CHART_PUSH, target)
    action = QUARANTINE if quarantined else PUSH
    return RegistryEvent(str(uuid.uuid4()), timestamp_now(), action,
                         Target(repository, digest, media_type, size, tag), request)


def delete_event(repository: str, digest: str, media_type: str, request: RequestInfo | None,
                 size: int | None = None, chart: Chart | None = None) -> RegistryEvent:
    """The event of a manifest delete (never of a tag-only delete): delete or chart_delete."""
    if chart is not None:
        target = Target(repository, digest, ACR_CHART, size, None, chart.name, chart.version)
        return RegistryEvent(str(uuid.uuid4()), timestamp_now(), CHART_DELETE, target)
    return RegistryEvent(str(uuid.uuid4()), timestamp_now(), DELETE, Target(repository, digest, media_type), request)


def untag_event(repository: str, tag: str, digest: str, request: RequestInfo | None) -> RegistryEvent:
    """The event of a tag deleted alone (the manifest stays): this project's, not ACR's."""
    return RegistryEvent(str(uuid.uuid4()), timestamp_now(), UNTAG, Target(repository, digest, tag=tag), request)


def attributes_event(repository: str, digest: str, tag: str | None, request: RequestInfo | None) -> RegistryEvent:
    """The event of lock flags changed on a repository (``digest`` empty, no tag), a tag or a manifest."""
    return RegistryEvent(str(uuid.uuid4()), timestamp_now(), ATTRIBUTES, Target(repository, digest, tag=tag), request)


def repository_delete_events(repository: str, manifests: Iterable[tuple[str, str]],
                             request: RequestInfo | None) -> list[RegistryEvent]:
    """The events of a repository delete: one delete per ``(digest, media_type)`` it removed.

    For the repository DELETE of the metadata API: add each event's outbox row
    (``Outbox.row``) to the transaction that deletes that manifest, then call ``Outbox.committed``.
    """
    return [delete_event(repository, digest, media_type, request) for digest, media_type in manifests]
