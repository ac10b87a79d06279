"""Start and stop Azurite (installed from npm into ./node_modules) on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """Terminate ``process`` (if it still runs), killing it when it does not end in ``timeout`` s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_for(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Azurite exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"Azurite did not listen on port {port} within {timeout} s")


class Azurite:
    """Azurite's blob, queue and table services on loopback, with data in a folder of their own."""

    def __init__(self, blob_port: int = 0, queue_port: int = 0, table_port: int = 0,
                 location: str | None = None, quiet: bool = True) -> None:
        self.blob_port = blob_port or free_port()
        self.queue_port = queue_port or free_port()
        self.table_port = table_port or free_port()
        self._own_location = location is None
        self.location = location or tempfile.mkdtemp(prefix="azurite-")
        self.quiet = quiet
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        """A connection string for the running services."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.blob_port}/{ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{self.queue_port}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{self.table_port}/{ACCOUNT};"
        )

    def start(self) -> Azurite:
        """Start Azurite and wait until all three services listen."""
        binary = ROOT / "node_modules" / ".bin" / "azurite"
        if not binary.exists():
            raise RuntimeError("Azurite is not installed: run `npm ci` (make setup does) in the project folder")
        command = [
            str(binary), "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry",
            "--location", self.location,
            "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
            "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
            "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
        ]
        Path(self.location).mkdir(parents=True, exist_ok=True)
        output = subprocess.DEVNULL if self.quiet else None
        self.process = subprocess.Popen(command, stdout=output, stderr=output, cwd=self.location)
        for port in (self.blob_port, self.queue_port, self.table_port):
            _wait_for(port, self.process, timeout=60)
        return self

    def stop(self) -> None:
        """Stop Azurite and remove its data folder if it made one."""
        stop_process(self.process)
        self.process = None
        if self._own_location:
            shutil.rmtree(self.location, ignore_errors=True)

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
