"""Request-time policies: checks attached to operations (``Configurator.add_policy``) that run,
in the order they were added, after authentication and before the route's handler.

A policy refuses a request by raising (a ``RegistryError``), or changes it through its ASGI
scope (the mount rewrite drops ``mount`` and ``from`` from the query string); what it learns for
the handler goes into the scope's ``state`` (the lock check's rows, say).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from shared.kernel.container import Container
from shared.kernel.routes import RouteSpec


@dataclass(frozen=True)
class Call:
    """A request as a policy sees it: its route, its ASGI scope and the process's container."""

    route: RouteSpec
    scope: MutableMapping[str, Any]
    container: Container

    @property
    def params(self) -> Mapping[str, Any]:
        """The path parameters of the route (``name``, ``reference``, ...)."""
        params: Mapping[str, Any] = self.scope.get("path_params", {})
        return params

    @property
    def state(self) -> dict[str, Any]:
        """The request's state (``request.state`` in handlers)."""
        state: dict[str, Any] = self.scope.setdefault("state", {})
        return state


class Policy(Protocol):
    """A request-time check of the operations it is attached to."""

    async def __call__(self, call: Call, /) -> None:
        """Raise to refuse ``call``; return to let it through (maybe changed)."""
        ...
