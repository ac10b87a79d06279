"""``python -m shared.cli``: manage a registry's tokens, scope maps, role assignments, options,
webhooks (their dead letters included) and geo-replicas through its admin API (``/acr/admin``), as
the admin user or any principal allowed ``registry:admin``.

    python -m shared.cli --registry http://127.0.0.1:7071 -u localregistry -p PASSWORD tokens list

The registry, username and password may also come from REGISTRY_URL, REGISTRY_USERNAME and
REGISTRY_PASSWORD. Answers are printed as JSON; a new password is shown once.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode


class AdminClient:
    """A minimal client of the admin API (standard library only)."""

    def __init__(self, registry: str, username: str, password: str, cafile: str | None = None) -> None:
        self.base = registry.rstrip("/")
        self.auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.context = ssl.create_default_context(cafile=cafile) if cafile else None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request; returns the decoded JSON answer (None when empty)."""
        data = json.dumps(body).encode() if body is not None else None
        if not self.base.startswith(("http://", "https://")):
            raise SystemExit("--registry must be an http:// or https:// URL")
        request = urllib.request.Request(f"{self.base}/acr/admin{path}", data=data, method=method,  # noqa: S310
                                         headers={"Authorization": self.auth, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise SystemExit(f"{error.code}: {error.read().decode(errors='replace')}") from None
        return json.loads(raw) if raw else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", default=os.environ.get("REGISTRY_URL", "http://127.0.0.1:7071"))
    parser.add_argument("-u", "--username", default=os.environ.get("REGISTRY_USERNAME", "localregistry"))
    parser.add_argument("-p", "--password", default=os.environ.get("REGISTRY_PASSWORD", ""))
    parser.add_argument("--cacert", help="CA bundle to verify the registry's certificate")
    groups = parser.add_subparsers(dest="group", required=True)

    options = groups.add_parser("options", help="registry options").add_subparsers(dest="command", required=True)
    options.add_parser("show")
    update = options.add_parser("set")
    update.add_argument("--anonymous-pull", choices=["on", "off"])
    update.add_argument("--mode", choices=["rbac", "abac"], help="role assignment mode")

    maps = groups.add_parser("scopemaps", help="scope maps").add_subparsers(dest="command", required=True)
    maps.add_parser("list")
    for name in ("show", "delete"):
        maps.add_parser(name).add_argument("name")
    create = maps.add_parser("create", help="create or replace")
    create.add_argument("name")
    create.add_argument("--action", action="append", required=True,
                        help="repositories/<repo or prefix/*>/content/read|write|delete, metadata/read|write")
    create.add_argument("--description", default="")

    tokens = groups.add_parser("tokens", help="repository-scoped tokens").add_subparsers(dest="command",
                                                                                          required=True)
    tokens.add_parser("list")
    for name in ("show", "delete", "enable", "disable"):
        tokens.add_parser(name).add_argument("name")
    token = tokens.add_parser("create", help="create a token and its first password")
    token.add_argument("name")
    token.add_argument("--scope-map", required=True)
    token.add_argument("--expiry", help="ISO 8601 expiry of the password")
    password = tokens.add_parser("password", help="generate (rotate) one of a token's passwords")
    password.add_argument("name")
    password.add_argument("--which", choices=["password1", "password2"], default="password1")
    password.add_argument("--expiry", help="ISO 8601 expiry")

    roles = groups.add_parser("roles", help="Entra ID role assignments").add_subparsers(dest="command",
                                                                                       required=True)
    roles.add_parser("list").add_argument("--principal")
    assign = roles.add_parser("assign")
    assign.add_argument("principal", help="object id of the user, group or service principal")
    assign.add_argument("role", help="e.g. AcrPull, AcrPush, 'Container Registry Repository Reader'")
    assign.add_argument("--repository", help="repository or prefix/* (repository-permission roles)")
    roles.add_parser("remove").add_argument("id")
    _webhook_commands(groups)
    _replication_commands(groups)
    return parser


def _webhook_commands(groups: Any) -> None:
    hooks = groups.add_parser("webhooks", help="webhooks and their dead letters").add_subparsers(
        dest="command", required=True)
    hooks.add_parser("list")
    for name in ("show", "delete", "ping", "events", "deadletters"):
        hooks.add_parser(name).add_argument("name")
    create = hooks.add_parser("create", help="create or replace")
    create.add_argument("name")
    create.add_argument("--uri", required=True, help="serviceUri the events are POSTed to")
    create.add_argument("--action", action="append", required=True,
                        help="push, delete, quarantine, chart_push or chart_delete (repeat for several)")
    create.add_argument("--scope", default="", help="repo, repo:tag or repo:* (empty: every repository)")
    create.add_argument("--header", action="append", default=[], help="custom header Name:Value (repeatable)")
    create.add_argument("--disabled", action="store_true")
    redeliver = hooks.add_parser("redeliver", help="deliver dead letters again from the first attempt")
    redeliver.add_argument("name")
    redeliver.add_argument("--event", help="only this event id (default: every dead letter)")


def _webhooks(args: argparse.Namespace, client: AdminClient, name: str) -> Any:
    command = args.command
    if command == "list":
        return client.call("GET", "/webhooks")
    if command == "create":
        headers = dict(h.split(":", 1) for h in args.header if ":" in h)
        properties = {"serviceUri": args.uri, "actions": args.action, "scope": args.scope,
                      "customHeaders": {k.strip(): v.strip() for k, v in headers.items()},
                      "status": "disabled" if args.disabled else "enabled"}
        return client.call("PUT", f"/webhooks/{name}", {"properties": properties})
    if command == "redeliver":
        event = f"/deadLetters/{quote(args.event, safe='')}" if args.event else ""
        return client.call("POST", f"/webhooks/{name}{event}/redeliver")
    method, suffix = {"show": ("GET", ""), "delete": ("DELETE", ""), "ping": ("POST", "/ping"),
                      "events": ("POST", "/listEvents"), "deadletters": ("GET", "/deadLetters")}[command]
    return client.call(method, f"/webhooks/{name}{suffix}")


def _replication_commands(groups: Any) -> None:
    replicas = groups.add_parser("replications", help="regions: status, lag, endpoint switch, image presence"
                                 ).add_subparsers(dest="command", required=True)
    replicas.add_parser("list", help="every region with its status and lag")
    for name, text in (("show", "one region"), ("enable", "switch the region's endpoint on"),
                       ("disable", "switch the region's endpoint off (not the home region's)")):
        replicas.add_parser(name, help=text).add_argument("name", help="region")
    image = replicas.add_parser("show-image", help="which regions hold an image")
    image.add_argument("repository")
    image.add_argument("reference", help="tag or digest")


def _replications(args: argparse.Namespace, client: AdminClient, name: str) -> Any:
    command = args.command
    if command == "list":
        return client.call("GET", "/replications")
    if command == "show-image":
        return client.call("GET", f"/replications/images/{quote(args.repository, safe='/')}/"
                                  f"{quote(args.reference, safe='')}")
    if command in ("enable", "disable"):
        return client.call("PATCH", f"/replications/{name}",
                           {"properties": {"regionEndpointEnabled": command == "enable"}})
    return client.call("GET", f"/replications/{name}")


def run(args: argparse.Namespace, client: AdminClient) -> Any:
    """Carry out one parsed command; returns what to print."""
    group, command = args.group, args.command
    name = quote(getattr(args, "name", "") or "", safe="")
    if group == "options":
        if command == "show":
            return client.call("GET", "/options")
        body: dict[str, Any] = {}
        if args.anonymous_pull:
            body["anonymousPullEnabled"] = args.anonymous_pull == "on"
        if args.mode:
            body["roleAssignmentMode"] = args.mode
        return client.call("PATCH", "/options", body)
    if group == "scopemaps":
        if command == "list":
            return client.call("GET", "/scopemaps")
        if command == "create":
            return client.call("PUT", f"/scopemaps/{name}", {"actions": args.action, "description": args.description})
        return client.call("GET" if command == "show" else "DELETE", f"/scopemaps/{name}")
    if group == "tokens":
        if command == "list":
            return client.call("GET", "/tokens")
        if command == "create":
            created = client.call("PUT", f"/tokens/{name}", {"scopeMap": args.scope_map})
            secret = client.call("POST", f"/tokens/{name}/passwords", {"name": "password1", "expiry": args.expiry})
            return {**created, "password1": secret["value"]}
        if command in ("enable", "disable"):
            return client.call("PATCH", f"/tokens/{name}", {"status": f"{command}d"})
        if command == "password":
            return client.call("POST", f"/tokens/{name}/passwords", {"name": args.which, "expiry": args.expiry})
        return client.call("GET" if command == "show" else "DELETE", f"/tokens/{name}")
    if group == "webhooks":
        return _webhooks(args, client, name)
    if group == "replications":
        return _replications(args, client, name)
    if command == "list":
        query = f"?{urlencode({'principalId': args.principal})}" if args.principal else ""
        return client.call("GET", f"/roleassignments{query}")
    if command == "assign":
        return client.call("POST", "/roleassignments",
                           {"principalId": args.principal, "role": args.role, "repository": args.repository})
    return client.call("DELETE", f"/roleassignments/{quote(args.id, safe='')}")


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    client = AdminClient(args.registry, args.username, args.password, args.cacert)
    result = run(args, client)
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
