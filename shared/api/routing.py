"""The route table compiled: Starlette's routes, what each request needs, and the per-route policies.

Everything here comes from the :class:`~shared.kernel.routes.RouteSpec` table the capabilities
registered: the routes Starlette serves, the scopes a request requires (:func:`need_of`, from the
route's access rule), and the policies of the route's operation, which run as the route's own
middleware, after authentication and before the handler (Harbor's per-route middleware). A
request that matches no route, or a route but not its method, requires ``registry:admin:*``
(deny by default) before the router answers 404 or 405.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.middleware import Middleware
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth.permissions import ADMIN, PULL, REGISTRY, REPOSITORY
from shared.kernel import routes
from shared.kernel.configurator import Application
from shared.kernel.container import Container
from shared.kernel.policy import Call, Policy
from shared.kernel.routes import Access, RouteSpec


@dataclass(frozen=True)
class Need:
    """What one request requires.

    ``public``: no credentials at all (the token endpoints). ``requirements``: every
    (type, name, action) the caller must hold; an empty tuple with ``public`` False means any
    caller who may do anything at all (the ``/v2/`` root). ``challenge_actions``: the actions a
    challenge asks for on the repository; ``also_asks``: scopes the challenge names besides (a
    mount's source) without requiring them.
    """

    requirements: tuple[tuple[str, str, str], ...] = ()
    public: bool = False
    challenge_actions: tuple[str, ...] = field(default=())
    also_asks: tuple[tuple[str, str, str], ...] = ()


ADMIN_NEED = Need(((REGISTRY, ADMIN, "*"),))


def route_path(scope: Scope) -> str:
    """The path the router matches: ``path`` without ``root_path``, as Starlette computes it
    (the Functions host may set ``root_path``), so both always see the same route."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root):]
    return path


def need_of(access: Access, params: Mapping[str, Any], query: str = "") -> Need:
    """What a request to a route with ``access`` and path parameters ``params`` requires.

    A cross-repository mount (``POST …/blobs/uploads/?mount=&from=<source>``) requires push on
    the target only, and also asks for ``repository:<source>:pull``, as the reference registry
    does: clients that take their scope from the challenge then get a token that may mount.
    """
    if access.kind == routes.PUBLIC:
        return Need(public=True)
    if access.kind == routes.ANY_CALLER:
        return Need()
    if access.kind == routes.REGISTRY:
        return Need(((REGISTRY, access.name, "*"),))
    name = str(params["name"])
    also_asks: tuple[tuple[str, str, str], ...] = ()
    if access.mount_source:
        wanted = dict(parse_qsl(query))
        if wanted.get("mount") and wanted.get("from"):
            also_asks = ((REPOSITORY, wanted["from"], PULL),)
    return Need(((REPOSITORY, name, access.action),), challenge_actions=access.challenge, also_asks=also_asks)


class RouteTable:
    """The Starlette routes of an :class:`Application`'s route table, each with its policies."""

    def __init__(self, application: Application) -> None:
        self.specs = application.routes
        self.routes = [_route(spec, application.policies_of(spec.operation)) for spec in self.specs]

    def match(self, scope: Scope) -> tuple[RouteSpec | None, dict[str, Any]]:
        """The route that will serve ``scope`` and its path parameters, as Starlette's router
        matches (a request it would redirect to the other form of its path counts as that
        path's); None when no route serves the path with this method."""
        found = self._full_match(scope)
        if found[0] is None and not any(r.matches(scope)[0] is Match.PARTIAL for r in self.routes):
            path: str = scope["path"]
            if path != "/":
                toggled = dict(scope, path=path[:-1] if path.endswith("/") else path + "/")
                return self._full_match(toggled)
        return found

    def _full_match(self, scope: Scope) -> tuple[RouteSpec | None, dict[str, Any]]:
        for route, spec in zip(self.routes, self.specs, strict=True):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return spec, dict(child["path_params"])
        return None, {}

    def need(self, scope: Scope) -> tuple[RouteSpec | None, Need]:
        """The route serving ``scope`` and what the request needs (deny by default)."""
        spec, params = self.match(scope)
        if spec is None:
            return None, ADMIN_NEED
        return spec, need_of(spec.access, params, scope.get("query_string", b"").decode("latin-1"))


def _route(spec: RouteSpec, policies: Sequence[Policy]) -> Route:
    middleware = [Middleware(PolicyChain, spec=spec, policies=tuple(policies))] if policies else None
    return Route(spec.path, spec.handler, methods=list(spec.methods), middleware=middleware)


class PolicyChain:
    """One route's middleware: the policies of its operation, in order, then its handler."""

    def __init__(self, app: ASGIApp, spec: RouteSpec, policies: tuple[Policy, ...]) -> None:
        self.app = app
        self.spec = spec
        self.policies = policies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        container: Container = await scope["app"].state.open_container()
        call = Call(self.spec, scope, container)
        for policy in self.policies:
            await policy(call)
        await self.app(scope, receive, send)
