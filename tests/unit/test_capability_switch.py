"""A capability switched off by its settings group's ``enabled`` flag registers nothing but its
settings: no routes, consumers (so no Event Grid subscription), queue jobs or services."""

from __future__ import annotations

import pytest

from shared.composition import configure, load_settings
from shared.events.subscriptions import subscriptions_of
from shared.settings import SettingsError
from shared.webhooks.fanout import WebhookService
from shared.webhooks.settings import WebhookSettings


def _webhook_parts(environ: dict[str, str]) -> dict[str, list[str]]:
    application = configure(environ=environ)
    return {
        "routes": [r.path for r in application.routes if r.path.startswith("/acr/admin/webhooks")],
        "consumers": [c.function_name for c in application.consumers],
        "subscriptions": [s.name for s in subscriptions_of(application.consumers)],
        "queue_jobs": [j.name for j in application.queue_jobs],
        "services": [k.__name__ for k in application.services if k is WebhookService],
        "settings": [g.__name__ for g in application.settings_groups if g is WebhookSettings],
    }


def test_webhooks_are_on_unless_switched_off() -> None:
    on = _webhook_parts({})
    assert len(on["routes"]) == 11 and on["consumers"] == ["webhook_fanout"] and on["subscriptions"] == ["webhooks"]
    assert on["queue_jobs"] == ["webhook_delivery", "webhook_delivery_poison"] and on["services"] == ["WebhookService"]
    assert _webhook_parts({"REGISTRY_WEBHOOKS_ENABLED": "true"}) == on


def test_webhooks_switched_off_register_only_their_settings() -> None:
    off = _webhook_parts({"REGISTRY_WEBHOOKS_ENABLED": "false"})
    assert off == {"routes": [], "consumers": [], "subscriptions": [], "queue_jobs": [], "services": [],
                   "settings": [WebhookSettings.__name__]}


def test_a_malformed_switch_is_reported_when_the_settings_are_read_not_at_import() -> None:
    assert _webhook_parts({"REGISTRY_WEBHOOKS_ENABLED": "maybe"})["consumers"] == ["webhook_fanout"]
    with pytest.raises(SettingsError, match="REGISTRY_WEBHOOKS_ENABLED"):
        load_settings({"REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
                       "REGISTRY_WEBHOOKS_ENABLED": "maybe"})
