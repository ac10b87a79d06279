"""Webhook targets: private, loopback, link-local, CGNAT, unique-local and metadata addresses are
refused at creation, at update and on every connection, however the host is written; stored
headers with control characters make a failed delivery, never a 500. Real listeners on loopback
show that nothing reaches them."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from scripts.azurite import Azurite
from shared.composition import create_app
from shared.settings import Settings
from shared.storage import layout
from shared.webhooks.outbound import WebhookSender
from shared.webhooks.targets import forbidden, guarded_socket
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, test_settings
from tests.receiver import Receiver
from tests.storage import StorageProbe

#: Ways to write the receiver's loopback address (``{port}``): each must be refused.
LOOPBACK_TRICKS = [
    "http://127.0.0.1:{port}/hook",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{port}/hook",  # fullwidth digits
    "http://127\u30020\u30020\u30021:{port}/hook",  # ideographic full stops
    "http://127\uff0e0\uff0e0\uff0e1:{port}/hook",  # fullwidth full stops
    "http://2130706433:{port}/hook",  # decimal
    "http://0x7f000001:{port}/hook",  # hexadecimal
    "http://0x7f.0.0.1:{port}/hook",
    "http://0177.0.0.1:{port}/hook",  # octal
    "http://127.1:{port}/hook",
    "http://0:{port}/hook",
    "http://0.0.0.0:{port}/hook",
    "http://127.0.0.1.:{port}/hook",  # trailing dot
    "http://[::ffff:127.0.0.1]:{port}/hook",
    "http://[::ffff:7f00:1]:{port}/hook",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/hook",
    "http://[::1]:{port}/hook",
    "http://[::]:{port}/hook",
    "http://[::127.0.0.1]:{port}/hook",  # IPv4-compatible
    "http://[64:ff9b::7f00:1]:{port}/hook",  # NAT64
    "http://[2002:7f00:1::]:{port}/hook",  # 6to4
    "http://localhost:{port}/hook",
    "http://LOCALHOST.:{port}/hook",
    "http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3:{port}/hook",  # circled letters: localhost
    "http://a.localhost:{port}/hook",
    "http://user:pass@127.0.0.1:{port}/hook",  # userinfo
    "http://example.com@127.0.0.1:{port}/hook",
    "http://127.0.0.1:{port}#@example.com/hook",
    "http://127.0.0.1:{port}?@example.com/hook",
    "http://%31%32%37.0.0.1:{port}/hook",  # percent-encoded host
    "HTTP://127.0.0.1:{port}/hook",
]
#: Other refused networks (nothing listens there; the point is that nothing is tried).
OTHER_REFUSED = [
    "http://10.0.0.1/", "http://172.16.0.1/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/", "http://100.100.100.200/", "http://168.63.129.16/", "http://[fd00:ec2::254]/",
    "http://[fc00::1]/", "http://[fe80::1]/", "http://224.0.0.1/", "http://255.255.255.255/",
    "http://[::ffff:169.254.169.254]/", "http://[64:ff9b::a9fe:a9fe]/", "http://198.18.0.1/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo whose client is 192.0.2.45
]
MALFORMED = ["ftp://example.com/x", "http://", "http:///x", "http://exa mple.com/", "http://ex\\@ample.com/",
             "http://example.com/\r\nX: y", "//example.com/x"]


@pytest.fixture
def settings(azurite: Azurite) -> Settings:
    """Webhooks may not call private addresses (the production default)."""
    return test_settings(azurite)


def _body(uri: str, **properties: object) -> dict[str, object]:
    return {"properties": {"serviceUri": uri, "actions": ["push"], **properties}}


async def _stored_webhooks(storage: StorageProbe) -> list[str]:
    return [str(r["RowKey"]) for r in await storage.rows("webhooks")]


@pytest.mark.parametrize("template", LOOPBACK_TRICKS)
async def test_loopback_in_any_spelling_is_refused_at_creation(
    client: httpx.AsyncClient, receiver: Receiver, storage: StorageProbe, template: str
) -> None:
    response = await client.put("/acr/admin/webhooks/sneaky1", json=_body(template.format(port=receiver.port)))
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "WEBHOOK_INVALID"
    assert await _stored_webhooks(storage) == []
    assert receiver.received == []


@pytest.mark.parametrize("uri", OTHER_REFUSED + MALFORMED)
async def test_private_metadata_and_malformed_targets_are_refused_at_creation(
    client: httpx.AsyncClient, storage: StorageProbe, uri: str
) -> None:
    response = await client.put("/acr/admin/webhooks/sneaky1", json=_body(uri))
    assert response.status_code == 400, response.text
    assert await _stored_webhooks(storage) == []


async def test_an_update_to_a_refused_target_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, receiver: Receiver, storage: StorageProbe
) -> None:
    assert (await client.put("/acr/admin/webhooks/moving1", json=_body("http://8.8.8.8/hook"))).status_code == 201
    for template in ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{port}/", "http://[::ffff:7f00:1]:{port}/"):
        response = await client.patch("/acr/admin/webhooks/moving1",
                                      json={"properties": {"serviceUri": template.format(port=receiver.port)}})
        assert response.status_code == 400
    [row] = await storage.rows("webhooks")
    assert row["service_uri"] == "http://8.8.8.8/hook"
    # other properties of a webhook can still change without touching its URI
    assert (await client.patch("/acr/admin/webhooks/moving1", json={"properties": {"status": "disabled"}})
            ).status_code == 200


@pytest.mark.parametrize("template", LOOPBACK_TRICKS)
async def test_a_stored_loopback_target_is_never_connected_to(
    client: httpx.AsyncClient, receiver: Receiver, storage: StorageProbe, template: str
) -> None:
    """A webhook stored before these checks existed (written to the table directly) is pinged."""
    uri = template.format(port=receiver.port)
    await _store_raw(storage, "legacy1", uri, {})
    ping = await client.post("/acr/admin/webhooks/legacy1/ping")
    assert ping.status_code == 200
    [event] = (await client.post("/acr/admin/webhooks/legacy1/listEvents")).json()["value"]
    assert event["eventResponseMessage"]["statusCode"] is None
    assert event["eventResponseMessage"]["content"] == ""  # the internal answer's body never comes back
    assert event["eventResponseMessage"]["reasonPhrase"].startswith("not sent: ")
    assert receiver.received == []


@pytest.mark.parametrize("value", ["a\x00b", "a\r\nInjected: 1", "a\nb", "a\rb", "a\x7fb", "a\x0bb", "a\x1bb"])
async def test_header_values_with_control_characters_are_refused_at_creation(
    client: httpx.AsyncClient, storage: StorageProbe, value: str
) -> None:
    response = await client.put("/acr/admin/webhooks/headers1",
                                json=_body("http://8.8.8.8/", customHeaders={"X-Token": value}))
    assert response.status_code == 400
    assert "control character" in response.json()["errors"][0]["message"]
    assert await _stored_webhooks(storage) == []


async def test_a_stored_header_with_nul_makes_ping_a_failed_delivery_not_a_500(
    azurite: Azurite, receiver: Receiver
) -> None:
    settings = test_settings(azurite, REGISTRY_WEBHOOK_ALLOW_PRIVATE="true")  # only the header is wrong
    app = create_app(settings)
    probe = StorageProbe(settings)
    try:
        await _store_raw(probe, "nulhook1", f"{receiver.url}/hook", {"X-Token": "a\x00b"})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry.test",
                                     auth=(ADMIN_USER, ADMIN_PASSWORD)) as client:
            ping = await client.post("/acr/admin/webhooks/nulhook1/ping")
            assert ping.status_code == 200, ping.text
            [event] = (await client.post("/acr/admin/webhooks/nulhook1/listEvents")).json()["value"]
    finally:
        await probe.close()
        if app.state.registry is not None:
            await app.state.registry.close()
    assert event["eventResponseMessage"]["statusCode"] is None
    assert event["eventResponseMessage"]["reasonPhrase"] == (
        "not sent: invalid webhook definition: header X-Token holds a control character (CR, LF, NUL, ...)")
    assert receiver.received == []


async def _store_raw(storage: StorageProbe, name: str, uri: str, headers: dict[str, str]) -> None:
    await storage.clients.ensure()
    await storage.clients.webhooks.create_entity({
        "PartitionKey": layout.WEBHOOKS_PARTITION, "RowKey": name, "service_uri": uri,
        "custom_headers": json.dumps(headers), "status": "enabled", "scope": "", "actions": "push"})


async def test_private_targets_are_allowed_when_configured(azurite: Azurite, receiver: Receiver) -> None:
    settings = test_settings(azurite, REGISTRY_WEBHOOK_ALLOW_PRIVATE="true")
    sender = WebhookSender(settings)
    try:
        delivery = await sender.post(f"http://localhost:{receiver.port}/ok", b"{}", {})
    finally:
        await sender.close()
    assert delivery.ok and len(receiver.at("/ok")) == 1


class _Rebinding(AbstractResolver):
    """DNS whose answer for any name is loopback (a name re-pointed after the webhook was created)."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        return None


async def test_a_name_that_resolves_to_loopback_is_refused_on_connect(settings: Settings, receiver: Receiver) -> None:
    sender = WebhookSender(settings, resolver=_Rebinding())
    try:
        named = await sender.post(f"http://hooks.example.com:{receiver.port}/x", b"{}", {})
    finally:
        await sender.close()
    assert not named.ok and named.permanent
    assert "RefusedAddress: 127.0.0.1 is loopback" in named.error
    assert receiver.received == []


async def test_a_name_that_resolves_to_loopback_is_refused_at_creation(
    client: httpx.AsyncClient, receiver: Receiver, storage: StorageProbe
) -> None:
    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    assert addresses and all(forbidden(str(a)) for a in addresses), f"{name} resolves to {addresses}"
    response = await client.put("/acr/admin/webhooks/named1", json=_body(f"http://{name}:{receiver.port}/hook"))
    assert response.status_code == 400 and "resolves to" in response.json()["errors"][0]["message"]
    assert await _stored_webhooks(storage) == []


@pytest.mark.parametrize(("address", "refused"), [
    ("127.0.0.1", True), ("10.1.2.3", True), ("192.168.0.1", True), ("172.16.0.1", True), ("169.254.169.254", True),
    ("100.64.0.1", True), ("100.127.255.255", True), ("168.63.129.16", True), ("0.0.0.0", True),  # noqa: S104
    ("::1", True), ("fd00::1", True), ("fc00::1", True), ("fe80::1%1", True), ("::ffff:127.0.0.1", True),
    ("::ffff:10.0.0.1", True), ("64:ff9b::a00:1", True), ("2002:c0a8:1::", True), ("::", True),
    ("8.8.8.8", False), ("100.128.0.1", False), ("2606:4700:4700::1111", False), ("64:ff9b::808:808", False),
    ("2002:808:808::", False),
])
def test_the_address_policy(address: str, refused: bool) -> None:
    assert forbidden(address) is refused


def test_the_socket_factory_refuses_before_connecting() -> None:
    with pytest.raises(OSError, match="may not call"):
        guarded_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)))
    sock = guarded_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 80)))
    sock.close()
