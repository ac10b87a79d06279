"""The Event Grid subscriptions of the registry's topic: the one definition.

Bicep (infra) creates exactly these subscriptions on the Event Grid topic, each delivering to an
Event Grid-triggered function of this app; the local Event Grid (``shared.events.local``) reads
the same list, so filters behave the same with and without Azure. Print them as JSON for the
infrastructure with ``python -m shared.events.subscriptions``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from shared.events.envelope import CHART_DELETED, CHART_PUSHED, IMAGE_DELETED, IMAGE_PUSHED, IMAGE_QUARANTINED


@dataclass(frozen=True)
class Subscription:
    """An Event Grid event subscription whose endpoint is an Azure Function of this app."""

    name: str  # the event subscription's name (3-64 letters, digits, hyphens)
    function_name: str  # the Event Grid-triggered function it delivers to
    included_event_types: tuple[str, ...]
    subject_begins_with: str = ""
    subject_ends_with: str = ""
    max_delivery_attempts: int = 30
    event_time_to_live_minutes: int = 1440
    dead_letter: bool = True  # dead-letter to the registry's container, under deadletter/

    def matches(self, event_type: str, subject: str) -> bool:
        """Whether Event Grid would deliver an event of this type and subject here."""
        return (
            event_type in self.included_event_types
            and subject.startswith(self.subject_begins_with)
            and subject.endswith(self.subject_ends_with)
        )


WEBHOOK_FANOUT = "webhook_fanout"

SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription(
        name="webhooks",
        function_name=WEBHOOK_FANOUT,
        included_event_types=(IMAGE_PUSHED, IMAGE_DELETED, CHART_PUSHED, CHART_DELETED, IMAGE_QUARANTINED),
    ),
)


def main() -> None:
    """Print the subscriptions as JSON (for Bicep parameter files and reviewers)."""
    print(json.dumps([asdict(s) for s in SUBSCRIPTIONS], indent=2))


if __name__ == "__main__":
    main()
