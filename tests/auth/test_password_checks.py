"""Password checks: one scrypt computation for every Basic check whatever the name and however
many passwords it has (so the time tells no token names), computed on a small pool of their own
so that unauthenticated logins cannot starve anyone else; a recently verified password costs none."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette

from shared.auth import passwords
from tests.auth.helpers import client_from, counting_scrypt, scoped_token
from tests.auth_helpers import basic, push_image
from tests.conftest import ADMIN_USER
from tests.storage import StorageProbe

#: what docs/identity-and-access.md promises: half the CPUs, at least one
HASHING_THREADS = max(1, (os.cpu_count() or 2) // 2)


def _salt(stored: str) -> str:
    scheme, _n, _r, _p, salt, _digest = stored.split("$")
    assert scheme == "scrypt"
    return salt


async def test_every_basic_check_costs_one_scrypt_whatever_the_name(
        app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, storage: StorageProbe) -> None:
    actions = ["repositories/a/content/read"]
    await scoped_token(client, "onepass", actions, "password1")
    await scoped_token(client, "twopass", actions, "password1", "password2")
    await client.put("/acr/admin/scopemaps/bare-map", json={"actions": actions})
    assert (await client.put("/acr/admin/tokens/nopass", json={"scopeMap": "bare-map"})).status_code == 200
    [right] = await scoped_token(client, "sleeper", actions, "password2")
    await client.patch("/acr/admin/tokens/sleeper", json={"status": "disabled"})
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    await client.post("/acr/admin/tokens/onepass/passwords", json={"name": "password2", "expiry": past})
    rows = {r["RowKey"]: r for r in await storage.rows("auth") if r["PartitionKey"] == "token"}
    # the passwords of one token share its salt, so one computation checks both
    assert _salt(rows["twopass"]["password1"]) == _salt(rows["twopass"]["password2"])
    assert _salt(rows["onepass"]["password1"]) == _salt(rows["onepass"]["password2"])
    assert _salt(rows["onepass"]["password1"]) != _salt(rows["twopass"]["password1"])
    attempts = {
        "unknown token": ("nosuchtoken", "wrong"),
        "one password": ("onepass", "wrong"),
        "two passwords": ("twopass", "wrong"),
        "no password": ("nopass", "wrong"),
        "disabled, right password": ("sleeper", right),
        "admin": (ADMIN_USER, "wrong"),
        "not a token name": ("a/b", "wrong"),
    }
    costs = {}
    for number, (case, (username, password)) in enumerate(attempts.items()):
        async with client_from(app, f"192.0.2.{number + 1}") as caller:
            with counting_scrypt(monkeypatch) as calls:
                response = await caller.get("/v2/a/tags/list", headers=basic(username, password))
            assert response.status_code == 401, (case, response.text)
            costs[case] = calls.count
    assert costs == dict.fromkeys(attempts, 1)


async def test_scrypt_runs_on_a_bounded_pool_of_its_own(app: Starlette, client: httpx.AsyncClient,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await client.get("/v2/")).status_code == 200

    async def login(number: int) -> int:
        async with client_from(app, f"192.0.2.{number + 10}") as caller:
            response = await caller.get("/v2/", headers=basic(f"stranger{number:03d}", "wrong"))
            return response.status_code

    with counting_scrypt(monkeypatch) as calls:
        statuses = await asyncio.gather(*(login(n) for n in range(12)))
    assert set(statuses) == {401}
    assert calls.count == 12
    assert calls.most_at_once <= HASHING_THREADS
    assert not any(name.startswith("asyncio") for name in calls.threads), calls.threads  # not the default pool


async def test_a_recently_verified_password_is_checked_without_any_worker_thread(
        app: Starlette, client: httpx.AsyncClient) -> None:
    await push_image(client, "team/app", "v1")
    [password] = await scoped_token(client, "reader", ["repositories/team/app/content/read"])
    async with client_from(app, "203.0.113.20") as reader:
        assert (await reader.get("/v2/team/app/manifests/v1", headers=basic("reader", password))).status_code == 200
        loop = asyncio.get_running_loop()
        gate = threading.Event()
        # every thread of the default executor busy (as with uploads hashing their blocks) ...
        blocked = [loop.run_in_executor(None, gate.wait, 30) for _ in range(64)]
        try:
            started = time.monotonic()
            answer = await asyncio.wait_for(
                reader.get("/v2/team/app/manifests/v1", headers=basic("reader", password)), timeout=10)
            elapsed = time.monotonic() - started
        finally:
            gate.set()
            await asyncio.gather(*blocked)
        # ... and the scoped token's pull is still served at once
        assert answer.status_code == 200
        assert elapsed < 2, elapsed


#: what docs/identity-and-access.md promises: at most this many checks wait for a hashing thread
HASHING_WAITING = 32


async def test_checks_beyond_the_waiting_bound_are_refused_at_once(app: Starlette, client: httpx.AsyncClient,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await client.get("/v2/")).status_code == 200
    gate = threading.Event()

    def held_scrypt(password: bytes, **kwargs: int) -> bytes:
        gate.wait(30)
        return b"\0" * kwargs["dklen"]  # a wrong answer, at no cost

    monkeypatch.setattr("hashlib.scrypt", held_scrypt)

    async def login(number: int) -> httpx.Response:
        async with client_from(app, f"10.9.{number // 250}.{number % 250 + 1}") as caller:
            return await caller.get("/v2/", headers=basic(f"crowd{number:04d}", "wrong"))

    tasks = [asyncio.ensure_future(login(n)) for n in range(HASHING_THREADS + HASHING_WAITING + 2)]
    try:
        finished: set[asyncio.Future[httpx.Response]] = set()
        waiting = set(tasks)
        while len(finished) < 2:  # the two beyond the bound answer while every other one waits
            done, waiting = await asyncio.wait(waiting, timeout=20, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                break
            finished |= done
        refused = [t.result() for t in finished]
    finally:
        gate.set()
        answers = await asyncio.gather(*tasks)
    assert len(refused) == 2
    for answer in refused:
        assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
        assert answer.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert sorted(a.status_code for a in answers) == [401] * (HASHING_THREADS + HASHING_WAITING) + [429, 429]


async def test_hashes_of_different_salts_cost_one_computation_each(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = passwords.hash_password("first-secret"), passwords.hash_password("second-secret")
    shared = await passwords.hash_new("third-secret", [first])
    assert _salt(shared) == _salt(first) != _salt(second)
    with counting_scrypt(monkeypatch) as calls:
        assert await passwords.match("second-secret", [first, second]) == 1
    assert calls.count == 2  # written before passwords shared a salt
    with counting_scrypt(monkeypatch) as calls:
        assert await passwords.match("third-secret", [first, shared]) == 1
        assert await passwords.match("nothing", [first, shared]) is None
    assert calls.count == 2  # one each
    with counting_scrypt(monkeypatch) as calls:
        assert await passwords.match("third-secret", [first, shared]) == 1  # remembered
        assert passwords.cached_match("third-secret", [shared]) == 0
        assert passwords.cached_match("third-secret", [first]) is None
    assert calls.count == 0
    broken = ["garbage", "scrypt$16384$8$1$!!$!!", "bcrypt$x$y$z$a$b", "scrypt$0$8$1$AAAA$AAAA", ""]
    with counting_scrypt(monkeypatch) as calls:
        assert await passwords.match("garbage", broken) is None
    assert calls.count == 1  # the dummy hash, as for a name without passwords
