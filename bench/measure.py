"""One measurement each: skopeo pushes and pulls, manifest request rates, concurrent pulls,
raw Azurite transfers and a streamed push. Each returns plain numbers (seconds, counts, bytes)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import httpx
from azure.storage.blob import BlobBlock, BlobSasPermissions, generate_blob_sas
from azure.storage.blob.aio import BlobServiceClient

from scripts.azurite import ACCOUNT, ACCOUNT_KEY

MiB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_SKOPEO = ["skopeo", "--insecure-policy"]


def _creds(flag: str, creds: str | None) -> list[str]:
    return [f"--{flag}-creds={creds}"] if creds else []


def skopeo_push(layout: Path, host: str, repository: str, creds: str | None = None) -> float:
    """Seconds skopeo takes to push the OCI layout's ``latest`` to ``host/repository:latest``."""
    started = time.perf_counter()
    subprocess.run(
        [*_SKOPEO, "copy", "--quiet", "--dest-tls-verify=false", *_creds("dest", creds), f"oci:{layout}:latest",
         f"docker://{host}/{repository}:latest"],
        check=True,
    )
    return time.perf_counter() - started


def skopeo_pull(host: str, repository: str, scratch: Path, creds: str | None = None) -> float:
    """Seconds skopeo takes to pull ``host/repository:latest`` into a fresh ``dir:`` (then deleted)."""
    target = Path(tempfile.mkdtemp(dir=scratch))
    try:
        started = time.perf_counter()
        subprocess.run(
            [*_SKOPEO, "copy", "--quiet", "--src-tls-verify=false", *_creds("src", creds),
                 f"docker://{host}/{repository}:latest",
             f"dir:{target}"],
            check=True,
        )
        return time.perf_counter() - started
    finally:
        shutil.rmtree(target, ignore_errors=True)


def concurrent_pulls(host: str, repository: str, scratch: Path, clients: int = 20,
                     creds: str | None = None) -> tuple[float, int]:
    """``clients`` skopeo pulls of one image at once: (seconds until the last ends, how many succeeded)."""
    targets = [Path(tempfile.mkdtemp(dir=scratch)) for _ in range(clients)]
    try:
        started = time.perf_counter()
        processes = [
            subprocess.Popen(
                [*_SKOPEO, "copy", "--quiet", "--src-tls-verify=false", *_creds("src", creds),
                 f"docker://{host}/{repository}:latest",
                 f"dir:{target}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            for target in targets
        ]
        failures = []
        for process in processes:
            _, err = process.communicate()
            if process.returncode != 0:
                failures.append(err.decode(errors="replace").strip()[-300:])
        elapsed = time.perf_counter() - started
        for failure in failures[:3]:
            print(f"    pull failed: {failure}", flush=True)
        return elapsed, clients - len(failures)
    finally:
        for target in targets:
            shutil.rmtree(target, ignore_errors=True)


async def _load(url: str, method: str, seconds: float, connections: int, limit: int,
                headers: dict[str, str]) -> float:
    deadline = time.perf_counter() + seconds
    done = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers={"Accept": OCI_MANIFEST, **headers}) as session:

        async def worker() -> None:
            nonlocal done
            while done < limit and time.perf_counter() < deadline:
                async with session.request(method, url) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{method} {url} answered {response.status}")
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return done / (time.perf_counter() - started)


def request_rate(url: str, method: str, seconds: float, connections: int = 16, limit: int = 50_000,
                 headers: dict[str, str] | None = None) -> float:
    """Requests per second with ``connections`` keep-alive connections, for ``seconds`` or ``limit``
    requests; every answer must be 200."""
    return asyncio.run(_load(url, method, seconds, connections, limit, headers or {}))


async def _raw_upload(connection_string: str, container: str, name: str, source: Path, block: int,
                      in_flight: int) -> float:
    async with BlobServiceClient.from_connection_string(connection_string) as service:
        blob = service.get_blob_client(container, name)
        started = time.perf_counter()
        ids: list[str] = []
        pending: set[asyncio.Task[object]] = set()
        with source.open("rb") as data:
            while chunk := data.read(block):
                if len(pending) >= in_flight:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
                ids.append(f"{len(ids):08x}")
                pending.add(asyncio.ensure_future(blob.stage_block(ids[-1], chunk, length=len(chunk))))
        await asyncio.gather(*pending)
        await blob.commit_block_list([BlobBlock(block_id=i) for i in ids])
        return time.perf_counter() - started


def raw_upload(connection_string: str, container: str, name: str, source: Path,
               block: int = 8 * MiB, in_flight: int = 2) -> float:
    """Seconds to upload ``source`` to Azurite as staged blocks plus a commit (azure-storage-blob)."""
    return asyncio.run(_raw_upload(connection_string, container, name, source, block, in_flight))


def create_container(connection_string: str, container: str) -> None:
    """Create a blob container for the raw transfers."""

    async def create() -> None:
        async with BlobServiceClient.from_connection_string(connection_string) as service:
            await service.create_container(container)

    asyncio.run(create())


def sas_url(blob_port: int, container: str, name: str) -> str:
    """A read-only SAS URL of one Azurite blob, like those the registry's redirects hand out."""
    token = generate_blob_sas(
        ACCOUNT, container, name, account_key=ACCOUNT_KEY,
        permission=BlobSasPermissions(read=True), expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"http://127.0.0.1:{blob_port}/{ACCOUNT}/{container}/{name}?{token}"


def curl_get(url: str, headers: dict[str, str] | None = None) -> tuple[float, int]:
    """Seconds and bytes of a plain GET with curl (redirects followed, body discarded)."""
    result = subprocess.run(
        ["curl", "-sS", "-L", "--fail", "-o", "/dev/null", "-w", "%{time_total} %{size_download}",
         "-H", "Accept: */*", *(a for k, v in (headers or {}).items() for a in ("-H", f"{k}: {v}")), url],
        check=True, capture_output=True, text=True,
    )
    seconds, size = result.stdout.split()
    return float(seconds), int(size)


async def _random_body(size: int, piece: int, sha: hashlib._Hash) -> AsyncIterator[bytes]:
    left = size
    while left:
        data = os.urandom(min(piece, left))
        sha.update(data)
        left -= len(data)
        yield data


async def _streamed_push(base: str, repository: str, size: int,
                         auth: tuple[str, str] | None) -> tuple[float, float, str]:
    sha = hashlib.sha256()
    async with httpx.AsyncClient(base_url=base, timeout=600, auth=auth) as http:
        started = await http.post(f"/v2/{repository}/blobs/uploads/")
        started.raise_for_status()
        location = started.headers["location"]
        t0 = time.perf_counter()
        # An async generator body: httpx sends it chunked, with no Content-Length.
        patched = await http.patch(location, content=_random_body(size, MiB, sha))
        patched.raise_for_status()
        t1 = time.perf_counter()
        digest = f"sha256:{sha.hexdigest()}"
        put = await http.put(patched.headers["location"], params={"digest": digest})
        put.raise_for_status()
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, digest


def streamed_push(base: str, repository: str, size: int, auth: tuple[str, str] | None = None) -> tuple[float, float]:
    """Push ``size`` random bytes as one chunked PATCH, then the PUT: (PATCH seconds, PUT seconds)."""
    patch, put, _ = asyncio.run(_streamed_push(base, repository, size, auth))
    return patch, put
