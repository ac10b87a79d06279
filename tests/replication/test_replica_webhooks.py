"""Webhooks per replica: a webhook belongs to the region whose endpoint created it and fires when
content arrives there, pushed there by a client or replicated there from another region."""

from __future__ import annotations

import json
from datetime import timedelta

from scripts.azurite import Azurite
from tests.oci import push_image
from tests.receiver import Receiver
from tests.replication.harness import regions_of
from tests.webhooks.queue import drain, queued


def _hook(receiver: Receiver, path: str) -> dict[str, object]:
    return {"properties": {"serviceUri": f"{receiver.url}{path}", "actions": ["push"]}}


async def test_a_replicas_webhook_fires_when_the_content_arrives_in_that_region(
    azurite: Azurite, receiver: Receiver
) -> None:
    async with regions_of(azurite, REGISTRY_WEBHOOK_ALLOW_PRIVATE="true") as regions:
        east, west = regions["east"], regions["west"]
        assert (await east.client.put("/acr/admin/webhooks/easthook", json=_hook(receiver, "/east"))).status_code == 201
        assert (await west.client.put("/acr/admin/webhooks/westhook", json=_hook(receiver, "/west"))).status_code == 201

        digest, _ = await push_image(east.client, "team/web", "v1")
        await east.settle()  # published in east: east's fan-out, and the replicator brings it to west
        assert await drain(east.settings, east.probe.clients) == 1
        assert [json.loads(r.body)["target"]["digest"] for r in receiver.at("/east")] == [digest]
        assert receiver.at("/west") == [] and await queued(west.probe.clients) == 0
        assert f"m|{digest}" in await west.rows("team/web")  # it has arrived in west ...

        # ... with its arrival event in west's outbox, which west publishes (its outbox timer).
        assert await west.registry.outbox.republish(timedelta(0)) == 1
        await west.settle()
        assert await drain(west.settings, west.probe.clients) == 1
        [delivered] = receiver.at("/west")
        payload = json.loads(delivered.body)
        assert payload["action"] == "push" and payload["target"]["digest"] == digest
        assert payload["target"]["tag"] == "v1" and payload["target"]["repository"] == "team/web"
        assert "origin" not in payload  # ACR's payload, unchanged
        assert len(receiver.at("/east")) == 1  # east's webhook did not fire again for the arrival
