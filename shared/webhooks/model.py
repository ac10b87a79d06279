"""A webhook as ACR defines it, its validation and its scope semantics.

Scope (ACR): ``foo:bar`` is that tag; ``foo:*`` every tag of foo; ``foo`` means ``foo:latest``;
empty means every event. Events without a tag (a delete, a push by digest) match only scopes
whose tag part is ``*`` and the empty scope, since they are not about any one tag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared.events.model import ACR_ACTIONS, RegistryEvent
from shared.webhooks.errors import WebhookInvalid
from shared.webhooks.outbound import header_problem
from shared.webhooks.targets import parse_service_uri

ENABLED = "enabled"
DISABLED = "disabled"
_NAME = re.compile(r"[A-Za-z0-9]{5,50}")


@dataclass(frozen=True)
class Webhook:
    """One webhook of the registry."""

    name: str
    service_uri: str
    actions: tuple[str, ...]
    custom_headers: Mapping[str, str] = field(default_factory=dict)
    status: str = ENABLED
    scope: str = ""

    def matches(self, event: RegistryEvent) -> bool:
        """Whether this webhook is called for ``event``."""
        return (self.status == ENABLED and event.action in self.actions
                and scope_matches(self.scope, event.target.repository, event.target.tag))

    def resource(self, registry_id: str, location: str) -> dict[str, Any]:
        """The webhook as ARM shows it: the URI and headers are secrets, read via getCallbackConfig."""
        return {
            "id": f"{registry_id}/webhooks/{self.name}",
            "name": self.name,
            "type": "Microsoft.ContainerRegistry/registries/webhooks",
            "location": location,
            "properties": {"status": self.status, "scope": self.scope, "actions": list(self.actions),
                           "provisioningState": "Succeeded"},
        }

    def callback_config(self) -> dict[str, Any]:
        """``getCallbackConfig``: where and with which headers the webhook is called."""
        return {"serviceUri": self.service_uri, "customHeaders": dict(self.custom_headers)}


def scope_matches(scope: str, repository: str, tag: str | None) -> bool:
    """ACR's scope rule (see the module docstring)."""
    if not scope:
        return True
    repo, _, wanted = scope.partition(":")
    wanted = wanted or "latest"
    if repo != repository:
        return False
    return wanted == "*" or (tag is not None and tag == wanted)


def _invalid(message: str) -> WebhookInvalid:
    return WebhookInvalid(message)


def validate_name(name: str) -> str:
    """A webhook name: 5-50 letters and digits."""
    if not _NAME.fullmatch(name):
        raise _invalid("a webhook name is 5-50 letters and digits")
    return name


def _service_uri(value: Any) -> str:
    if not isinstance(value, str):
        raise _invalid("serviceUri must be a string")
    parse_service_uri(value)  # its address is checked by check_service_uri (it needs DNS)
    return value


def _actions(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(a in ACR_ACTIONS for a in value):
        raise _invalid(f"actions must be a non-empty list of {', '.join(ACR_ACTIONS)}")
    return tuple(dict.fromkeys(value))


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _invalid("customHeaders must be an object of strings")
    if len(value) > 64 or sum(len(k) + len(v) for k, v in value.items()) > 16384:
        raise _invalid("customHeaders holds more than 64 headers or 16 KiB")
    for name, text in value.items():
        if problem := header_problem(name, text):
            raise _invalid(f"customHeaders: {problem}")
    return dict(value)


def _status(value: Any) -> str:
    if value not in (ENABLED, DISABLED):
        raise _invalid("status must be enabled or disabled")
    return str(value)


def _scope(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 256 or value.count(":") > 1:
        raise _invalid("scope must be empty, repo, repo:tag or repo:*")
    return value


def webhook_from_body(name: str, body: Any, current: Webhook | None) -> Webhook:
    """A webhook from an ARM-style body ``{"properties": {...}}`` (or the properties alone).

    Without ``current`` it is a create: ``serviceUri`` and ``actions`` are required. With it, an
    update: only the given properties change.
    """
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    props = body.get("properties", body)
    if not isinstance(props, dict):
        raise _invalid("properties must be an object")
    if current is None:
        if "serviceUri" not in props or "actions" not in props:
            raise _invalid("serviceUri and actions are required")
        current = Webhook(validate_name(name), _service_uri(props["serviceUri"]), _actions(props["actions"]))
    changes: dict[str, Any] = {}
    if "serviceUri" in props:
        changes["service_uri"] = _service_uri(props["serviceUri"])
    if "actions" in props:
        changes["actions"] = _actions(props["actions"])
    if "customHeaders" in props:
        changes["custom_headers"] = _headers(props["customHeaders"] or {})
    if "status" in props:
        changes["status"] = _status(props["status"])
    if "scope" in props:
        changes["scope"] = _scope(props["scope"] or "")
    return replace(current, **changes)
