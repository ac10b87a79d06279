"""Replication figures in the Prometheus text format (version 0.0.4), served at ``/acr/admin/metrics``.

The registry has no metrics pipeline of its own, so the figures are computed when scraped (one
read of each region's pending rows, as the status API does) rather than pushed: nothing is spent
between scrapes, and any Prometheus-compatible scraper (Azure Monitor's managed Prometheus
included) can read them with the admin credentials. A region whose storage did not answer has no
lag series (absent, not zero) and ``registry_replication_region_up`` 0.
"""

from __future__ import annotations

from datetime import datetime

from shared.replication.status import Outgoing
from shared.replication.switches import Switch

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_GAUGES = (
    ("registry_replication_pending", "Changes made in region source not yet replicated to region target."),
    ("registry_replication_oldest_pending_seconds",
     "Age in seconds of the oldest change made in source not yet replicated to target (0 when none)."),
    ("registry_replication_region_up", "1 when the region's storage answered the last status read, else 0."),
    ("registry_replication_endpoint_enabled", "1 when the region's endpoint serves registry requests, else 0."),
)


def render(names: tuple[str, ...], lag: dict[str, Outgoing], switches: dict[str, Switch], now: datetime) -> str:
    """The replication gauges of regions ``names`` from their pending changes and endpoint switches."""
    samples: dict[str, list[str]] = {name: [] for name, _ in _GAUGES}
    for source in names:
        out = lag[source]
        samples["registry_replication_region_up"].append(f'{{region="{source}"}} {0 if out.error else 1}')
        enabled = (switches.get(source) or Switch(source)).enabled
        samples["registry_replication_endpoint_enabled"].append(f'{{region="{source}"}} {int(enabled)}')
        if out.error:
            continue
        for target in names:
            if target == source:
                continue
            pair = f'{{source="{source}",target="{target}"}}'
            figures = out.lags.get(target)
            pending, age = (figures.pending, figures.age(now)) if figures else (0, 0.0)
            samples["registry_replication_pending"].append(f"{pair} {pending}")
            samples["registry_replication_oldest_pending_seconds"].append(f"{pair} {age:.3f}")
    lines: list[str] = []
    for name, help_text in _GAUGES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f"{name}{sample}" for sample in samples[name]]
    return "\n".join(lines) + "\n"
