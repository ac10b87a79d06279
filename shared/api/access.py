"""What each route needs: the one table mapping a request to the scopes it requires.

Every path of the app is classified here, and anything not listed needs ``registry:admin:*``
(deny by default). To protect a new admin route (e.g. webhook management), put it under
``/acr/admin/`` or add a line to :data:`RULES` naming the scope it needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl

from shared.auth.permissions import ADMIN, CATALOG, DELETE, META_READ, META_WRITE, PULL, PUSH, REGISTRY, REPOSITORY

READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Need:
    """What one request requires.

    ``public``: no credentials at all (the token endpoints). ``requirements``: every
    (type, name, action) the caller must hold; an empty tuple with ``public`` False means any
    caller who may do anything at all (the ``/v2/`` root). ``operation`` and ``reference`` tell
    the lock check what is being done to which repository, tag or manifest. ``also_asks``:
    scopes the challenge names besides (a mount's source) without requiring them.
    """

    requirements: tuple[tuple[str, str, str], ...] = ()
    public: bool = False
    operation: str = ""
    repository: str = ""
    reference: str = ""
    challenge_actions: tuple[str, ...] = field(default=())
    also_asks: tuple[tuple[str, str, str], ...] = ()


def _repo(action: str, operation: str, challenge: tuple[str, ...] | None = None) -> Callable[[re.Match[str]], Need]:
    def need(match: re.Match[str]) -> Need:
        groups = match.groupdict()
        name = groups["name"]
        return Need(((REPOSITORY, name, action),), operation=operation, repository=name,
                    reference=groups.get("ref") or "", challenge_actions=challenge or (action,))
    return need


def _registry(name: str) -> Callable[[re.Match[str]], Need]:
    return lambda _: Need(((REGISTRY, name, "*"),), operation=name)


def _public(_: re.Match[str]) -> Need:
    return Need(public=True)


def _any_caller(_: re.Match[str]) -> Need:
    return Need()


_N = r"/(?P<name>.+)"
_PUSH = (PULL, PUSH)
#: (path pattern, {method: need}); the first pattern that matches decides.
RULES: list[tuple[re.Pattern[str], dict[str, Callable[[re.Match[str]], Need]]]] = [
    (re.compile(r"/oauth2/(?:token|exchange)"), {"GET": _public, "POST": _public}),
    (re.compile(r"/v2/?"), {"GET": _any_caller, "HEAD": _any_caller}),
    (re.compile(r"/v2/_catalog"), {"GET": _registry(CATALOG)}),
    (re.compile(rf"/v2{_N}/manifests/(?P<ref>[^/]+)"), {
        "GET": _repo(PULL, "read_manifest"), "HEAD": _repo(PULL, "read_manifest"),
        "PUT": _repo(PUSH, "write_manifest", _PUSH), "DELETE": _repo(DELETE, "delete_manifest")}),
    (re.compile(rf"/v2{_N}/blobs/uploads/(?P<upload>[^/]*)"), {
        m: _repo(PUSH, "write_blob", _PUSH) for m in ("GET", "POST", "PATCH", "PUT", "DELETE")}),
    (re.compile(rf"/v2{_N}/blobs/(?P<digest>[^/]+)"), {
        "GET": _repo(PULL, "read_blob"), "HEAD": _repo(PULL, "read_blob"), "DELETE": _repo(DELETE, "delete_blob")}),
    (re.compile(rf"/v2{_N}/tags/list"), {"GET": _repo(PULL, "list")}),
    (re.compile(rf"/v2{_N}/referrers/(?P<digest>[^/]+)"), {"GET": _repo(PULL, "list")}),
    (re.compile(r"/acr/v1/_catalog"), {"GET": _registry(CATALOG)}),
    (re.compile(rf"/acr/v1{_N}/_tags/(?P<ref>[^/]+)"), {
        "GET": _repo(META_READ, "metadata"), "PATCH": _repo(META_WRITE, "metadata"),
        "DELETE": _repo(DELETE, "delete_tag")}),
    (re.compile(rf"/acr/v1{_N}/_tags"), {"GET": _repo(META_READ, "metadata")}),
    (re.compile(rf"/acr/v1{_N}/_manifests/(?P<ref>[^/]+)"), {
        "GET": _repo(META_READ, "metadata"), "PATCH": _repo(META_WRITE, "metadata"),
        "DELETE": _repo(DELETE, "delete_manifest")}),
    (re.compile(rf"/acr/v1{_N}/_manifests"), {"GET": _repo(META_READ, "metadata")}),
    (re.compile(r"/acr/admin(?:/.*)?"), {}),  # every method: registry:admin:*
    (re.compile(rf"/acr/v1{_N}"), {
        "GET": _repo(META_READ, "metadata"), "PATCH": _repo(META_WRITE, "metadata"),
        "DELETE": _repo(DELETE, "delete_repository")}),
]
ADMIN_NEED = Need(((REGISTRY, ADMIN, "*"),), operation=ADMIN)


def classify(method: str, path: str, query: str = "") -> Need:
    """The :class:`Need` of a request; admin rights for any path or method not in :data:`RULES`.

    A cross-repository mount (``POST …/blobs/uploads/?mount=&from=<source>``) requires push on
    the target only, and also asks for ``repository:<source>:pull``, as the reference registry
    does: clients that take their scope from the challenge then get a token that may mount.
    """
    for pattern, methods in RULES:
        match = pattern.fullmatch(path)
        if match is not None:
            handler = methods.get(method)
            need = handler(match) if handler is not None else ADMIN_NEED
            if method == "POST" and need.operation == "write_blob":
                params = dict(parse_qsl(query))
                if params.get("mount") and params.get("from"):
                    need = replace(need, also_asks=((REPOSITORY, params["from"], PULL),))
            return need
    return ADMIN_NEED
