"""`make run`: Azurite and the registry on loopback, stopped together on Ctrl-C or SIGTERM.

Azurite listens on its usual ports (10000-10002) so that `UseDevelopmentStorage=true` reaches it,
as it does for `func start`; its data stays in ./.azurite between runs. (Given another
REGISTRY_STORAGE_CONNECTION_STRING, the registry uses that storage and no Azurite is started.)
The admin user is on (username REGISTRY_NAME, password REGISTRY_ADMIN_PASSWORD, generated and
printed when unset); anonymous pull stays off. The timer functions and the webhook queue consumer
run in the registry process on the schedules the Functions host uses (REGISTRY_BACKGROUND_JOBS: the
timers and queue jobs the capabilities register).

With ``--regions N`` (``make run REGIONS=2``) the registry runs in N regions, one uvicorn process
each, region k on port PORT+k-1: every region has its own storage prefix on the one Azurite (the
layout is per prefix, so a prefix stands for a storage account), all share REGISTRY_REGIONS, the
admin password and the token-signing key, and each has its own REGISTRY_REGION.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from types import FrameType

from scripts.azurite import ROOT, Azurite, stop_process
from shared.auth.passwords import generate_password
from shared.auth.tokens import generate_signing_key

DEV_STORAGE = "UseDevelopmentStorage=true"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def local_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The registry's environment under ``make run``: Azurite, the admin user, and the background
    functions (timers on their schedules, the webhook queue consumer) run by the web process, as
    the Functions host runs them in Azure. ``environ`` overrides any of these."""
    return {"REGISTRY_STORAGE_CONNECTION_STRING": DEV_STORAGE, "REGISTRY_ADMIN_ENABLED": "true",
            "REGISTRY_BACKGROUND_JOBS": "true", **environ}


def region_name(index: int) -> str:
    """The name of the ``index``-th region (from 0) under ``make run``."""
    return f"region{index + 1}"


def region_environments(env: Mapping[str, str], regions: int, port: int, scheme: str = "http") -> list[dict[str, str]]:
    """The environment of each region's process, home first: ``env`` (see :func:`local_environment`)
    with, for two or more regions, the region's own REGISTRY_REGION and storage prefix and the
    REGISTRY_REGIONS that lists every region's storage and endpoint (PORT, PORT+1, ...)."""
    if regions < 2:
        return [dict(env)]
    base = env.get("REGISTRY_STORAGE_PREFIX") or "registry"
    prefixes = [base if i == 0 else f"{base[:29]}{i + 1}" for i in range(regions)]
    listed = json.dumps([
        {"name": region_name(i), "connection_string": env["REGISTRY_STORAGE_CONNECTION_STRING"],
         "prefix": prefixes[i], "endpoint": f"{scheme}://127.0.0.1:{port + i}"}
        for i in range(regions)
    ])
    return [{**env, "REGISTRY_REGION": region_name(i), "REGISTRY_STORAGE_PREFIX": prefixes[i],
             "REGISTRY_REGIONS": listed} for i in range(regions)]


class _Stop(Exception):
    """SIGTERM arrived: stop like Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _wait_all(servers: list[subprocess.Popen[bytes]]) -> int:
    """Wait until one server ends (or Ctrl-C/SIGTERM); return its status."""
    while True:
        for server in servers:
            status = server.poll()
            if status is not None:
                return status
        time.sleep(0.2)


def main() -> int:
    """Start Azurite (unless one already runs) and uvicorn per region, and wait for any to end."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "7071")))
    parser.add_argument("--regions", type=int, default=int(os.environ.get("REGIONS") or "1"),
                        help="number of regions, on PORT, PORT+1, ... (default 1: no replication)")
    parser.add_argument("--ssl-certfile", default=os.environ.get("TLS_CERT"), help="serve HTTPS with this certificate")
    parser.add_argument("--ssl-keyfile", default=os.environ.get("TLS_KEY"), help="... and this key")
    args = parser.parse_args()
    if args.regions < 1:
        parser.error("--regions must be at least 1")
    signal.signal(signal.SIGTERM, _on_sigterm)
    env = local_environment(os.environ)
    azurite = None
    servers: list[subprocess.Popen[bytes]] = []
    try:
        if env["REGISTRY_STORAGE_CONNECTION_STRING"] != DEV_STORAGE:
            print("Using the storage of REGISTRY_STORAGE_CONNECTION_STRING")
        elif _listening(10000):
            print("Using the Azurite already listening on 127.0.0.1:10000")
        else:
            (ROOT / ".azurite").mkdir(exist_ok=True)
            azurite = Azurite(10000, 10001, 10002, location=str(ROOT / ".azurite")).start()
        username = env.get("REGISTRY_NAME") or "localregistry"
        password = env.get("REGISTRY_ADMIN_PASSWORD") or generate_password()
        generated = not env.get("REGISTRY_ADMIN_PASSWORD")
        env["REGISTRY_ADMIN_PASSWORD"] = password
        env.setdefault("REGISTRY_TOKEN_SIGNING_KEY", generate_signing_key())
        tls = bool(args.ssl_certfile and args.ssl_keyfile)
        scheme = "https" if tls else "http"
        for i, region_env in enumerate(region_environments(env, args.regions, args.port, scheme)):
            command = [sys.executable, "-m", "uvicorn", "--factory", "shared.composition:create_app",
                       "--host", "127.0.0.1", "--port", str(args.port + i), "--no-access-log",
                       "--timeout-keep-alive", "75"]
            if tls:
                command += ["--ssl-certfile", args.ssl_certfile, "--ssl-keyfile", args.ssl_keyfile]
            servers.append(subprocess.Popen(command, env=region_env, cwd=ROOT))
        _print_banner(args.port, args.regions, scheme, username, password if generated else "<REGISTRY_ADMIN_PASSWORD>",
                      generated)
        return _wait_all(servers)
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        _stop_servers(servers)
        if azurite is not None:
            azurite.stop()


def _stop_servers(servers: list[subprocess.Popen[bytes]]) -> None:
    """Ask every server still running to shut down (uvicorn's graceful SIGINT), then wait for each,
    killing one that has not ended within 10 s."""
    for server in servers:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
    for server in servers:
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            stop_process(server, timeout=1)


def _print_banner(port: int, regions: int, scheme: str, username: str, shown: str, generated: bool) -> None:
    host = f"127.0.0.1:{port}"
    where = "".join(f"\n  {region_name(i)}: {scheme}://127.0.0.1:{port + i}" for i in range(regions))
    print(
        f"\nRegistry on {scheme}://{host} (storage: Azurite, data in .azurite/).\n"
        + (f"Regions (each with its own storage prefix, replicating to the others):{where}\n" if regions > 1 else "")
        + f"Admin user: {username}  password: {shown}"
        f"{'  (generated for this run; set REGISTRY_ADMIN_PASSWORD to choose one)' if generated else ''}\n"
        "Try:\n"
        f"  skopeo login --tls-verify=false -u {username} -p '{shown}' {host}\n"
        f"  skopeo copy --dest-tls-verify=false docker://docker.io/library/alpine:latest docker://{host}/alpine:latest\n"
        + (f"  skopeo copy --src-tls-verify=false --src-creds {username}:'{shown}' "
           f"docker://127.0.0.1:{port + 1}/alpine:latest oci:/tmp/alpine:latest   (from {region_name(1)})\n"
           if regions > 1 else "")
        + f"  oras login --plain-http -u {username} -p '{shown}' {host}\n"
        f"  oras push --plain-http {host}/hello:v1 ./file.txt\n"
        f"  docker login {host} -u {username}   (add {host} to the daemon's insecure-registries)\n"
        f"  python -m shared.cli --registry {scheme}://{host} -u {username} -p '{shown}' tokens list\n"
        f"  curl -u {username}:'{shown}' -X PUT {scheme}://{host}/acr/admin/webhooks/myhook "
        "-H 'Content-Type: application/json' \\\n"
        "    -d '{\"properties\":{\"serviceUri\":\"https://example.com/hook\",\"actions\":[\"push\",\"delete\"]}}'\n"
        "Ctrl-C stops the registry and Azurite.\n",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
