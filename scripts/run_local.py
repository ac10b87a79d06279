"""`make run`: Azurite and the registry on loopback, stopped together on Ctrl-C.

Azurite listens on its usual ports (10000-10002) so that `UseDevelopmentStorage=true` reaches it,
as it does for `func start`; its data stays in ./.azurite between runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys

from scripts.azurite import ROOT, Azurite


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def main() -> int:
    """Start Azurite (unless one already runs) and uvicorn, and wait for either to end."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "7071")))
    args = parser.parse_args()
    azurite = None
    if _listening(10000):
        print("Using the Azurite already listening on 127.0.0.1:10000")
    else:
        azurite = Azurite(10000, 10001, 10002, location=str(ROOT / ".azurite")).start()
    # No timer functions under uvicorn: the web process republishes what its outbox kept.
    env = {"REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
           "REGISTRY_OUTBOX_SWEEP_SECONDS": "30", **os.environ}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "shared.api.app:create_app",
         "--host", "127.0.0.1", "--port", str(args.port), "--no-access-log", "--timeout-keep-alive", "75"],
        env=env, cwd=ROOT,
    )
    host = f"127.0.0.1:{args.port}"
    print(
        f"\nRegistry on http://{host} (storage: Azurite, data in .azurite/). Try:\n"
        f"  skopeo copy --dest-tls-verify=false docker://docker.io/library/alpine:latest docker://{host}/alpine:latest\n"
        f"  oras push --plain-http {host}/hello:v1 ./file.txt\n"
        f"  docker push {host}/myimage:v1   (add {host} to the daemon's insecure-registries)\n"
        f"  curl -X PUT http://{host}/_admin/webhooks/myhook -H 'Content-Type: application/json' \\\n"
        "    -d '{\"properties\":{\"serviceUri\":\"https://example.com/hook\",\"actions\":[\"push\",\"delete\"]}}'\n"
        "  (webhooks to localhost need REGISTRY_WEBHOOK_ALLOW_PRIVATE=true)\n"
        "Ctrl-C stops the registry and Azurite.\n",
        flush=True,
    )
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.send_signal(signal.SIGINT)
        return server.wait()
    finally:
        if azurite is not None:
            azurite.stop()


if __name__ == "__main__":
    sys.exit(main())
