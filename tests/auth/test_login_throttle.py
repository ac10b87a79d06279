"""Failed logins are throttled per identity and per client address: 429 TOOMANYREQUESTS with
Retry-After, on Basic at any endpoint and on the token endpoints, without telling a right
password from a wrong one; a client that logged in before keeps working."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette

from shared.composition import create_app
from shared.settings import Settings
from tests.auth.helpers import SERVICE, client_from, scoped_token
from tests.auth_helpers import basic
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.storage import StorageProbe

#: the budgets docs/identity-and-access.md documents
IDENTITY_BURST = 10
ADDRESS_BURST = 30


class Clock:
    """A clock for the throttle that moves only when told, so refills happen when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _stop_clock(app: Starlette) -> Clock:
    clock = Clock()
    app.state.registry.auth.throttle.clock = clock
    return clock


def _throttled(response: httpx.Response) -> bool:
    if response.status_code != 429:
        return False
    assert response.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert int(response.headers["retry-after"]) >= 1
    return True


async def test_a_burst_of_wrong_admin_passwords_is_cut_off_at_the_identity_budget(
        app: Starlette, storage: StorageProbe) -> None:
    async with client_from(app, "203.0.113.7") as owner, client_from(app, "198.51.100.1") as attacker, \
            client_from(app, "198.51.100.2") as stranger:
        assert (await owner.get("/v2/", headers=basic(ADMIN_USER, ADMIN_PASSWORD))).status_code == 200
        _stop_clock(app)
        before = await storage.rows("auth")
        guesses = [attacker.get("/v2/", headers=basic(ADMIN_USER, f"guess-{i}")) for i in range(300)]
        answers = await asyncio.gather(*guesses)
        statuses = [a.status_code for a in answers]
        assert statuses.count(401) <= IDENTITY_BURST, statuses
        assert sum(_throttled(a) for a in answers) >= 300 - IDENTITY_BURST
        # the right password from a new address is refused like a wrong one: no oracle
        assert _throttled(await stranger.get("/v2/", headers=basic(ADMIN_USER, ADMIN_PASSWORD)))
        assert _throttled(await attacker.get("/oauth2/token", params={"service": SERVICE},
                                             headers=basic(ADMIN_USER, ADMIN_PASSWORD)))
        form = {"grant_type": "password", "service": SERVICE, "username": ADMIN_USER, "password": ADMIN_PASSWORD}
        assert _throttled(await attacker.post("/oauth2/token", data=form))
        # the owner, who logged in from its address before, is not locked out
        assert (await owner.get("/v2/", headers=basic(ADMIN_USER, ADMIN_PASSWORD))).status_code == 200
        assert await storage.rows("auth") == before


async def test_an_address_guessing_many_names_is_throttled(app: Starlette, client: httpx.AsyncClient) -> None:
    [password] = await scoped_token(client, "victim", ["repositories/a/content/read"])
    clock = _stop_clock(app)
    async with client_from(app, "198.51.100.9") as sprayer, client_from(app, "203.0.113.8") as other:
        statuses = []
        for i in range(ADDRESS_BURST + 5):
            response = await sprayer.get("/v2/a/tags/list", headers=basic(f"name{i:04d}", "wrong"))
            statuses.append(429 if _throttled(response) else response.status_code)
        assert statuses == [401] * ADDRESS_BURST + [429] * 5
        # a fresh name, and a right password, from that address: throttled
        assert _throttled(await sprayer.get("/v2/", headers=basic("victim", password)))
        refresh = {"grant_type": "refresh_token", "service": SERVICE, "refresh_token": "not.a.token"}
        assert _throttled(await sprayer.post("/oauth2/token", data=refresh))
        # other addresses are not
        assert (await other.get("/v2/a/tags/list", headers=basic("victim", password))).status_code == 404
        # one attempt comes back every 2 seconds
        throttled = await sprayer.get("/v2/", headers=basic("victim", password))
        assert throttled.headers["retry-after"] == "2"
        clock.now += 2
        assert (await sprayer.get("/v2/a/tags/list", headers=basic("victim", password))).status_code == 404
        assert (await sprayer.get("/v2/", headers=basic("another", "wrong"))).status_code == 401
        assert _throttled(await sprayer.get("/v2/", headers=basic("another", "wrong")))


async def test_a_burst_of_parallel_requests_with_right_credentials_is_never_throttled(
        settings: Settings, client: httpx.AsyncClient) -> None:
    # A client's first requests often go out together (parallel layer pushes with Basic): they are
    # one login each, checked once, not IDENTITY_BURST * 5 guesses. A fresh instance makes the admin
    # user's hashes at its first login, for all of these requests at once.
    [password] = await scoped_token(client, "burster", ["repositories/burst/*/content/read"])
    fresh = create_app(settings)
    try:
        async with client_from(fresh, "192.0.2.7") as burst:
            answers = await asyncio.gather(*(burst.get("/v2/", headers=basic(user, secret))
                                             for _ in range(IDENTITY_BURST * 5)
                                             for user, secret in ((ADMIN_USER, ADMIN_PASSWORD), ("burster", password))))
    finally:
        if fresh.state.registry is not None:
            await fresh.state.registry.close()
    assert [a.status_code for a in answers] == [200] * len(answers), {a.status_code for a in answers}
