"""The request-time policies of the core API, each attached to operations in one place
(:func:`shared.api.capability.register`): authorization (every operation), the mount rewrite
(starting an upload) and lock checks (what ``changeableAttributes`` govern)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request

from shared.api.guard import Authenticated, authorize, unauthorized
from shared.api.routing import Need
from shared.auth.permissions import PULL, REPOSITORY, Grant, Permissions
from shared.auth.service import AuthService, principal_of
from shared.kernel.policy import Call
from shared.oci.digest import Digest
from shared.oci.errors import InvalidDigest
from shared.oci.names import NAME_RE, TAG_RE, is_tag
from shared.registry.locks import LockService


def _authenticated(call: Call) -> tuple[Authenticated, Need] | None:
    """What the guard found out about the caller, when authentication is on."""
    caller = call.state.get("caller")
    return None if caller is None else (caller, call.state["need"])


async def authorization(call: Call) -> None:
    """Refuse a caller who lacks a scope the route's access rule requires."""
    found = _authenticated(call)
    if found is not None:
        authorize(Request(call.scope), call.container.settings, *found)


async def mount_rewrite(call: Call) -> None:
    """Turn a cross-repository mount the caller may not read from into a plain upload.

    A mount names its source in ``from``; without it the blob could come from any repository,
    so it is only honoured for callers who may read every repository. An access token that
    lacks the source's pull, held by someone who may read the source (a client that reused
    the token of an earlier push), gets the challenge naming the source, as distribution
    does, so the client fetches a token for both and mounts.
    """
    found = _authenticated(call)
    if found is None:
        return
    caller, need = found
    scope = call.scope
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    params = dict(query)
    if "mount" not in params:
        return
    source = params.get("from")
    allowed = _may_mount(caller.checker, source)
    if not allowed and caller.claims is not None:
        auth = await call.container.get(AuthService)
        holder = await auth.permissions(principal_of(caller.claims))
        if _may_mount(holder, source):
            if source:
                raise unauthorized(Request(scope), call.container.settings, need, "insufficient scope",
                                   "insufficient_scope")
            allowed = True  # may read every repository: the token's own scope is enough
    if not allowed:
        kept = [(k, v) for k, v in query if k not in ("mount", "from")]
        scope["query_string"] = urlencode(kept).encode("latin-1")


def _may_mount(checker: Grant | Permissions, source: str | None) -> bool:
    if source:
        return checker.can(REPOSITORY, source, PULL)
    return isinstance(checker, Permissions) and any(r.pattern == "*" and PULL in r.actions for r in checker.rules)


async def lock_check(call: Call) -> None:
    """Refuse what a lock flag of the repository, tag or manifest forbids (LOCKED); the rows read
    go to ``state.lock_rows`` for the handler (a GET by tag reads its tag row only once)."""
    repository = str(call.params.get("name", ""))
    reference = str(call.params.get("reference", ""))
    if not _checkable(repository, reference):
        return  # the handler reports the malformed name or reference
    seen: dict[str, Any] = {}
    locks = await call.container.get(LockService)
    await locks.check(call.route.operation, repository, reference, seen)
    call.state["lock_rows"] = seen


def _checkable(repository: str, reference: str) -> bool:
    """True when the repository and reference are well-formed."""
    if not NAME_RE.fullmatch(repository):
        return False
    if not reference:
        return True
    if is_tag(reference):
        return TAG_RE.fullmatch(reference) is not None
    try:
        Digest.parse(reference)
    except InvalidDigest:
        return False
    return True
