"""The request being served, set once per request (a contextvar), so services read who asked
when they build events instead of every caller passing it down.

The HTTP app sets it as a request comes in (:func:`enter_request`) and adds the caller once
authentication has identified them (:func:`identify`); code outside a request (timers, queue
functions) sees None.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Caller:
    """Who is calling: the kind of principal (admin, token, entra, anonymous) and its id."""

    kind: str
    id: str


@dataclass(frozen=True)
class RequestContext:
    """The facts of one HTTP request: its id, ``Host``, method, ``User-Agent`` and caller."""

    id: str
    host: str
    method: str
    useragent: str
    caller: Caller | None = None


_current: ContextVar[RequestContext | None] = ContextVar("registry_request", default=None)


def current_request() -> RequestContext | None:
    """The request being served by this task, or None outside a request."""
    return _current.get()


def enter_request(context: RequestContext) -> Token[RequestContext | None]:
    """Make ``context`` the current request; pass the token to :func:`leave_request` when it ends."""
    return _current.set(context)


def leave_request(token: Token[RequestContext | None]) -> None:
    """The request that :func:`enter_request` began has ended."""
    _current.reset(token)


def identify(caller: Caller) -> None:
    """Record the caller of the current request (nothing outside a request)."""
    context = _current.get()
    if context is not None:
        _current.set(replace(context, caller=caller))
