"""The webhooks' settings group: how often and how long deliveries are tried, and where they may go."""

from __future__ import annotations

from dataclasses import dataclass

from shared.events.retry import Backoff
from shared.settings import SettingsGroup, setting


@dataclass(frozen=True)
class WebhookSettings(SettingsGroup):
    """Webhook deliveries: attempts, backoff, timeout, and whether private addresses may be called."""

    title = "Webhooks"

    enabled: bool = setting(
        "REGISTRY_WEBHOOKS_ENABLED", True, "`false` switches webhooks off: no webhook admin API, no fan-out "
        "consumer, no delivery functions (in Azure, also drop the `webhooks` Event Grid subscription).")

    max_attempts: int = setting(
        "REGISTRY_WEBHOOK_MAX_ATTEMPTS", 30, "Attempts per webhook delivery (the first plus retries); after the last "
        "the delivery is dead-lettered, listed and re-deliverable (admin API, CLI).", minimum=1)
    retry_ms: int = setting(
        "REGISTRY_WEBHOOK_RETRY_MS", 30_000, "Delay before the first webhook retry (ms, whole seconds: it is a queue "
        "message's visibility timeout); doubles per attempt up to REGISTRY_WEBHOOK_RETRY_MAX_SECONDS.", minimum=0)
    retry_max_seconds: int = setting(
        "REGISTRY_WEBHOOK_RETRY_MAX_SECONDS", 3600, "Longest delay between two webhook attempts. With the defaults "
        "(30 attempts, 30 s doubling to 1 h) a delivery is retried for about 23 hours.", minimum=1)
    timeout_seconds: int = setting("REGISTRY_WEBHOOK_TIMEOUT_SECONDS", 10,
                                   "Timeout of one webhook call (connect to last byte).", minimum=1)
    allow_private: bool = setting(
        "REGISTRY_WEBHOOK_ALLOW_PRIVATE", False, "`true`: webhooks may call loopback, link-local and private "
        "addresses (tests, local networks). Never in production.")

    @property
    def backoff(self) -> Backoff:
        """The schedule of a delivery's attempts."""
        return Backoff(self.retry_ms / 1000, self.retry_max_seconds, self.max_attempts)
