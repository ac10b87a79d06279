"""The webhooks' errors: their domain errors, their wire codes, and the group that pairs them."""

from __future__ import annotations

from shared.errors import ErrorGroup, Invalid, NotFound, WireCode


class WebhookUnknown(NotFound):
    """No webhook of that name (or no dead letter of that event)."""


class WebhookInvalid(Invalid):
    """A webhook definition that cannot be (name, URI, headers, scope, actions, status)."""


class WebhookCode(WireCode):
    """The webhook API's own codes."""

    WEBHOOK_INVALID = ("WEBHOOK_INVALID", 400, "invalid webhook definition")
    WEBHOOK_UNKNOWN = ("WEBHOOK_UNKNOWN", 404, "webhook not found")


WEBHOOK_ERRORS = ErrorGroup("webhooks", WebhookCode, {
    WebhookUnknown: WebhookCode.WEBHOOK_UNKNOWN,
    WebhookInvalid: WebhookCode.WEBHOOK_INVALID,
})
