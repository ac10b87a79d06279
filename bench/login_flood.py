"""How a flood of unknown-user Basic logins (one scrypt computation each) affects a scoped
token's pulls: the latency of its manifest GET alone, then while N clients log in as unknown
users as fast as they can, all from one address and from a new address each time.

    python -m bench.login_flood [--clients 64] [--gets 40]

The registry runs under uvicorn on Azurite as `make run` starts it; uvicorn trusts
``X-Forwarded-For`` from loopback, which is how the spread-out flood gets its addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.servers import Registry
from scripts.azurite import Azurite

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def _prepare(registry: Registry) -> tuple[str, str]:
    """Push a small image and make a token that may pull it; returns (token name, password)."""
    with httpx.Client(base_url=registry.url, auth=registry.login, timeout=60) as admin:
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        digest = "sha256:" + hashlib.sha256(config).hexdigest()
        admin.post("/v2/bench/app/blobs/uploads/", params={"digest": digest}, content=config).raise_for_status()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "layers": [], "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": len(config)}})
        admin.put("/v2/bench/app/manifests/v1", content=manifest,
                  headers={"Content-Type": MANIFEST_TYPE}).raise_for_status()
        admin.put("/acr/admin/scopemaps/bench-pull",
                  json={"actions": ["repositories/bench/app/content/read"]}).raise_for_status()
        admin.put("/acr/admin/tokens/benchpull", json={"scopeMap": "bench-pull"}).raise_for_status()
        answer = admin.post("/acr/admin/tokens/benchpull/passwords", json={"name": "password1"})
        answer.raise_for_status()
        return "benchpull", str(answer.json()["value"])


def _pull_latencies(registry: Registry, login: tuple[str, str], count: int) -> list[float]:
    """Seconds each of ``count`` manifest GETs took, with the token's Basic credentials."""
    times = []
    # from an address of its own (uvicorn takes it from X-Forwarded-For), as a real client would be
    headers = {"X-Forwarded-For": "192.0.2.1"}
    with httpx.Client(base_url=registry.url, auth=login, timeout=120, headers=headers) as reader:
        reader.get("/v2/bench/app/manifests/v1").raise_for_status()  # the password is verified once
        for _ in range(count):
            started = time.perf_counter()
            reader.get("/v2/bench/app/manifests/v1").raise_for_status()
            times.append(time.perf_counter() - started)
    return times


@dataclass
class Flood:
    """``clients`` tasks sending unknown-user Basic logins until stopped, in a thread of their own."""

    url: str
    clients: int
    spread: bool
    answers: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    async def _client(self, http: httpx.AsyncClient, number: int) -> None:
        rng = random.Random(number)
        while not self._stop.is_set():
            address = "10.0.0.1"
            if self.spread:
                address = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
            headers = {"X-Forwarded-For": address}
            try:
                answer = await http.get("/v2/", auth=(f"nobody{rng.randrange(10**9)}", "wrong"), headers=headers)
                self.answers[answer.status_code] += 1
            except httpx.HTTPError:
                self.answers[0] += 1

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.clients, max_keepalive_connections=self.clients)
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=120) as http:
            await asyncio.gather(*(self._client(http, n) for n in range(self.clients)))

    def __enter__(self) -> Flood:
        self.seconds = time.perf_counter()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)
        self._thread.start()
        time.sleep(2)  # let the flood fill the server's queues
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=180)
        self.seconds = time.perf_counter() - self.seconds


def _row(label: str, times: list[float], flood: Flood | None = None) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    text = f"{label:<34} median {statistics.median(ms):8.1f} ms   p95 {p95:8.1f} ms   max {ms[-1]:8.1f} ms"
    if flood is not None:
        total = sum(flood.answers.values())
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(flood.answers.items()))
        text += f"   flood {total / flood.seconds:6.0f} answers/s ({statuses})"
    return text


def main() -> None:
    """Print the pull latency alone and under both floods."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--gets", type=int, default=40)
    args = parser.parse_args()
    with Azurite() as azurite, Registry(azurite) as registry:
        login = _prepare(registry)
        print(_row("scoped token pull, no flood", _pull_latencies(registry, login, args.gets)))
        for spread, label in ((False, "one address"), (True, "a new address each")):
            with Flood(registry.url, args.clients, spread) as flood:
                times = _pull_latencies(registry, login, args.gets)
            print(_row(f"during {args.clients}-client flood, {label}", times, flood))


if __name__ == "__main__":
    main()
