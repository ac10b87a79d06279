"""Read locks set through another instance take effect within READ_CACHE_SECONDS; write locks at once."""

from __future__ import annotations

import asyncio

import httpx

from shared.composition import create_app
from shared.registry.locks import READ_CACHE_SECONDS
from shared.settings import Settings
from tests.auth_helpers import push_image
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER


async def test_a_second_instance_sees_read_locks_soon_and_write_locks_at_once(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    other_app = create_app(settings)  # another instance over the same storage
    transport = httpx.ASGITransport(app=other_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test",
                                 auth=(ADMIN_USER, ADMIN_PASSWORD)) as other:
        digest = await push_image(client, "cached/repo", "v1")
        first = await other.get(f"/v2/cached/repo/manifests/{digest}")  # its flags are now cached there
        assert first.status_code == 200
        patched = await client.patch(f"/acr/v1/cached/repo/_manifests/{digest.replace(':', '%3A')}",
                                     json={"readEnabled": False, "writeEnabled": False})
        assert patched.status_code == 200
        assert (await client.get(f"/v2/cached/repo/manifests/{digest}")).status_code == 403  # this instance: now
        rewrite = await other.put(f"/v2/cached/repo/manifests/{digest}", content=first.content,
                                  headers={"Content-Type": first.headers["content-type"]})
        assert rewrite.status_code == 403  # the other instance: write locks at once
        await asyncio.sleep(READ_CACHE_SECONDS + 0.2)
        refused = await other.get(f"/v2/cached/repo/manifests/{digest}")
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["code"] == "DENIED"
    await other_app.state.registry.close()
