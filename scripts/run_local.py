"""`make run`: Azurite and the registry on loopback, stopped together on Ctrl-C.

Azurite listens on its usual ports (10000-10002) so that `UseDevelopmentStorage=true` reaches it,
as it does for `func start`; its data stays in ./.azurite between runs. The admin user is on
(username REGISTRY_NAME, password REGISTRY_ADMIN_PASSWORD, generated and printed when unset);
anonymous pull stays off. The timer functions and the webhook queue consumer run in the registry
process on the schedules the Functions host uses (REGISTRY_BACKGROUND_JOBS: the timers and queue
jobs the capabilities register).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping

from scripts.azurite import ROOT, Azurite
from shared.auth.passwords import generate_password
from shared.auth.tokens import generate_signing_key


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def local_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The registry's environment under ``make run``: Azurite, the admin user, and the background
    functions (timers on their schedules, the webhook queue consumer) run by the web process, as
    the Functions host runs them in Azure. ``environ`` overrides any of these."""
    return {"REGISTRY_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", "REGISTRY_ADMIN_ENABLED": "true",
            "REGISTRY_BACKGROUND_JOBS": "true", **environ}


def main() -> int:
    """Start Azurite (unless one already runs) and uvicorn, and wait for either to end."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "7071")))
    parser.add_argument("--ssl-certfile", default=os.environ.get("TLS_CERT"), help="serve HTTPS with this certificate")
    parser.add_argument("--ssl-keyfile", default=os.environ.get("TLS_KEY"), help="... and this key")
    args = parser.parse_args()
    azurite = None
    if _listening(10000):
        print("Using the Azurite already listening on 127.0.0.1:10000")
    else:
        (ROOT / ".azurite").mkdir(exist_ok=True)
        azurite = Azurite(10000, 10001, 10002, location=str(ROOT / ".azurite")).start()
    env = local_environment(os.environ)
    username = env.get("REGISTRY_NAME") or "localregistry"
    password = env.get("REGISTRY_ADMIN_PASSWORD") or generate_password()
    generated = not env.get("REGISTRY_ADMIN_PASSWORD")
    env["REGISTRY_ADMIN_PASSWORD"] = password
    env.setdefault("REGISTRY_TOKEN_SIGNING_KEY", generate_signing_key())
    command = [sys.executable, "-m", "uvicorn", "--factory", "shared.composition:create_app",
               "--host", "127.0.0.1", "--port", str(args.port), "--no-access-log", "--timeout-keep-alive", "75"]
    if args.ssl_certfile and args.ssl_keyfile:
        command += ["--ssl-certfile", args.ssl_certfile, "--ssl-keyfile", args.ssl_keyfile]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    host = f"127.0.0.1:{args.port}"
    scheme = "https" if args.ssl_certfile and args.ssl_keyfile else "http"
    shown = password if generated else "<REGISTRY_ADMIN_PASSWORD>"
    print(
        f"\nRegistry on {scheme}://{host} (storage: Azurite, data in .azurite/).\n"
        f"Admin user: {username}  password: {shown}"
        f"{'  (generated for this run; set REGISTRY_ADMIN_PASSWORD to choose one)' if generated else ''}\n"
        "Try:\n"
        f"  skopeo login --tls-verify=false -u {username} -p '{shown}' {host}\n"
        f"  skopeo copy --dest-tls-verify=false docker://docker.io/library/alpine:latest docker://{host}/alpine:latest\n"
        f"  oras login --plain-http -u {username} -p '{shown}' {host}\n"
        f"  oras push --plain-http {host}/hello:v1 ./file.txt\n"
        f"  docker login {host} -u {username}   (add {host} to the daemon's insecure-registries)\n"
        f"  python -m shared.cli --registry {scheme}://{host} -u {username} -p '{shown}' tokens list\n"
        f"  curl -u {username}:'{shown}' -X PUT {scheme}://{host}/acr/admin/webhooks/myhook "
        "-H 'Content-Type: application/json' \\\n"
        "    -d '{\"properties\":{\"serviceUri\":\"https://example.com/hook\",\"actions\":[\"push\",\"delete\"]}}'\n"
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
