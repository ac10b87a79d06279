"""Route declarations: the one table the HTTP app, its access rules, its policies and its
triggers' bindings are all derived from.

A :class:`RouteSpec` names its path (Starlette syntax), methods, handler, :class:`Operation` and
:class:`Access` (the scope rule: who may call it). The HTTP layer builds Starlette's routes from
the specs, asks each route's access rule what a request needs, and runs the policies attached to
the route's operation before its handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from shared.kernel.operations import Operation

#: The kinds of :class:`Access`.
PUBLIC = "public"  # no credentials at all (the token service)
ANY_CALLER = "any"  # any caller who may do anything at all (the /v2/ root)
REGISTRY = "registry"  # a registry-wide scope: ``registry:<name>:*``
REPOSITORY = "repository"  # an action on the repository the path names: ``repository:<name>:<action>``

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Access:
    """The scope rule of a route.

    ``name`` is the registry scope (``catalog``, ``admin``) of a :data:`REGISTRY` rule; ``action``
    the repository action of a :data:`REPOSITORY` rule (the repository is the path's ``name``),
    ``challenge`` the actions a challenge asks for (default: ``action``), and ``mount_source``
    says that a ``?mount=&from=<source>`` request also asks for pull on the source.
    """

    kind: str
    name: str = ""
    action: str = ""
    challenge: tuple[str, ...] = ()
    mount_source: bool = False

    @classmethod
    def public(cls) -> Access:
        """Anyone, without credentials."""
        return cls(PUBLIC)

    @classmethod
    def any_caller(cls) -> Access:
        """Any authenticated caller."""
        return cls(ANY_CALLER)

    @classmethod
    def registry(cls, name: str) -> Access:
        """Callers holding ``registry:<name>:*``."""
        return cls(REGISTRY, name=name)

    @classmethod
    def repository(cls, action: str, challenge: tuple[str, ...] = (), mount_source: bool = False) -> Access:
        """Callers who may do ``action`` on the repository named by the path."""
        return cls(REPOSITORY, action=action, challenge=challenge or (action,), mount_source=mount_source)


@dataclass(frozen=True)
class RouteSpec:
    """One route: ``methods`` of ``path`` are served by ``handler``, which does ``operation`` and
    may be called by whoever ``access`` admits."""

    path: str
    methods: tuple[str, ...]
    handler: Handler
    operation: Operation
    access: Access
