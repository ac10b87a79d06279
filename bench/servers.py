"""The two registries under test, started side by side on loopback, and a peak-RSS sampler."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from scripts.azurite import ROOT, Azurite, free_port, stop_process
from shared.auth.tokens import generate_signing_key


def _wait_until_up(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code in (200, 401):
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer at {url} within {timeout} s")


class Server:
    """A registry process on loopback: ``host`` is ``127.0.0.1:port``."""

    name = "server"
    #: (username, password) clients log in with; None when the server asks for none.
    login: tuple[str, str] | None = None

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def creds(self) -> str | None:
        """``user:password`` for skopeo's ``--src-creds``/``--dest-creds``."""
        return f"{self.login[0]}:{self.login[1]}" if self.login else None

    def headers(self, repository: str) -> dict[str, str]:
        """What a client sends to pull from ``repository``: a bearer token from the token service,
        fetched with the login as docker does (nothing for a server without a login)."""
        if self.login is None:
            return {}
        answer = httpx.get(f"{self.url}/oauth2/token", auth=self.login,
                           params={"service": self.host, "scope": f"repository:{repository}:pull"})
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    @property
    def host(self) -> str:
        """``host:port`` as clients such as skopeo name it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://{self.host}"

    @property
    def pid(self) -> int:
        """The process id of the server."""
        assert self.process is not None
        return self.process.pid

    @property
    def pids(self) -> tuple[int, ...]:
        """Every process serving requests: the server and, for this registry, its storage."""
        return (self.pid,)

    def start(self) -> None:
        """Start the server and wait until ``/v2/`` answers."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server and remove what it stored."""
        stop_process(self.process)
        self.process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class ReferenceRegistry(Server):
    """The CNCF reference registry (distribution) with filesystem storage in a folder of its own."""

    name = "reference"

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="bench-distribution-"))

    def start(self) -> None:
        """Write its config and start ``/usr/bin/docker-registry``."""
        config = self.folder / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: error, accesslog: {disabled: true}}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.folder / 'data'}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: '{self.host}'}}\n"
        )
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        self.process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_until_up(f"{self.url}/v2/", self.process, "the reference registry")

    def stop(self) -> None:
        """Stop it and delete its storage."""
        super().stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class Registry(Server):
    """This registry, started the way `make run` starts it: uvicorn on Azurite, own storage prefix."""

    name = "registry"

    def __init__(self, azurite: Azurite) -> None:
        super().__init__()
        self.azurite = azurite
        self.prefix = "bench" + uuid.uuid4().hex[:12]
        self.password = "bench-" + uuid.uuid4().hex
        self.login = ("localregistry", self.password)

    @property
    def storage_pid(self) -> int:
        """The process id of the Azurite the registry stores into."""
        assert self.azurite.process is not None
        return self.azurite.process.pid

    @property
    def pids(self) -> tuple[int, ...]:
        """The registry and its Azurite."""
        return (self.pid, self.storage_pid)

    def start(self) -> None:
        """Start uvicorn with the settings of ``make run`` (redirected blob GETs)."""
        env = {
            **os.environ,
            "REGISTRY_STORAGE_CONNECTION_STRING": self.azurite.connection_string,
            "REGISTRY_STORAGE_PREFIX": self.prefix,
            # As `make run`: authentication on, the admin user logs in.
            "REGISTRY_ADMIN_ENABLED": "true",
            "REGISTRY_ADMIN_PASSWORD": self.password,
            "REGISTRY_TOKEN_SIGNING_KEY": generate_signing_key(),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "shared.composition:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log", "--timeout-keep-alive", "75"],
            env=env, cwd=ROOT,
        )
        _wait_until_up(f"{self.url}/v2/", self.process, "the registry")


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of ``pid`` from /proc (``VmRSS`` now, ``VmHWM`` the peak so far), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not found for process {pid}")


class PeakRss:
    """Samples a process' RSS every few milliseconds while in use; ``peak`` is the highest seen."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid = pid
        self.interval = interval
        self.before = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self.before = rss_bytes(self.pid)
        self.peak = self.before
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))


def cpu_seconds(*pids: int) -> float:
    """User plus system CPU time the processes ``pids`` have used so far, in seconds."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    return total / os.sysconf("SC_CLK_TCK")
