"""The OData filters of table queries, evaluated in memory as the Table service does.

A filter arrives with its ``@parameters`` already replaced by the SDK's own substitution, so the
literals are those the service parses: ``'text'`` (``''`` escapes a quote), ``true``/``false``,
``42`` (Edm.Int32), ``42L`` (Edm.Int64), ``1.5`` (Edm.Double), ``datetime'...'``, ``guid'...'``
and ``X'hex'``. A comparison holds only between a property and a literal of the same Edm type
(the service finds no Edm.Int64 row equal to ``5``, only to ``5L``); a missing property compares
false. ``and``, ``or``, ``not`` and parentheses combine comparisons.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

#: A property value with its Edm type (``Edm.String``, ``Edm.Int32`` ...).
Typed = tuple[str, Any]
Predicate = Callable[[Mapping[str, Typed]], bool]

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<open>\()|(?P<close>\))
    | (?P<typed>(?:datetime|guid|X|binary)'[^']*')
    | (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?L?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""", re.VERBOSE)
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le,
}


class FilterError(ValueError):
    """A filter the in-memory store cannot read (the service would answer 400)."""


def _tokens(query: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(query.rstrip()):
        match = _TOKEN.match(query, position)
        if match is None or match.lastgroup is None:
            raise FilterError(f"cannot read the filter at {query[position:position + 20]!r}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return tokens


def _datetime(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def literal(kind: str, raw: str) -> Typed:
    """The typed value of one literal token."""
    if kind == "string":
        return "Edm.String", raw[1:-1].replace("''", "'")
    if kind == "number":
        if raw.endswith("L"):
            return "Edm.Int64", int(raw[:-1])
        return ("Edm.Double", float(raw)) if "." in raw else ("Edm.Int32", int(raw))
    if kind == "typed":
        prefix, _, body = raw.partition("'")
        body = body[:-1]
        if prefix == "datetime":
            return "Edm.DateTime", _datetime(body)
        if prefix == "guid":
            return "Edm.Guid", body.lower()
        return "Edm.Binary", bytes.fromhex(body)
    if raw in ("true", "false"):
        return "Edm.Boolean", raw == "true"
    raise FilterError(f"not a literal: {raw!r}")


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too soon")
        self.position += 1
        return token

    def expression(self) -> Predicate:
        left = self.conjunction()
        while self.peek() == ("word", "or"):
            self.take()
            right = self.conjunction()
            left = (lambda a, b: lambda row: a(row) or b(row))(left, right)
        return left

    def conjunction(self) -> Predicate:
        left = self.negation()
        while self.peek() == ("word", "and"):
            self.take()
            right = self.negation()
            left = (lambda a, b: lambda row: a(row) and b(row))(left, right)
        return left

    def negation(self) -> Predicate:
        if self.peek() == ("word", "not"):
            self.take()
            inner = self.negation()
            return lambda row: not inner(row)
        if self.peek() == ("open", "("):
            self.take()
            inner = self.expression()
            if self.take() != ("close", ")"):
                raise FilterError("unbalanced parentheses")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        kind, name = self.take()
        op_kind, op = self.take()
        value = literal(*self.take())
        if kind != "word" or op_kind != "word" or op not in _COMPARISONS:
            raise FilterError(f"expected <property> <eq|ne|gt|ge|lt|le> <literal>, not {name} {op}")
        compare = _COMPARISONS[op]

        def holds(row: Mapping[str, Typed]) -> bool:
            stored = row.get(name)
            if stored is None or stored[0] != value[0]:
                return False
            return bool(compare(stored[1], value[1]))
        return holds


def parse(query: str) -> Predicate:
    """The predicate of an OData ``$filter`` over a row's typed properties."""
    parser = _Parser(_tokens(query))
    predicate = parser.expression()
    if parser.peek() is not None:
        raise FilterError(f"unexpected {parser.peek()!r} in the filter")
    return predicate
