"""What a principal may do: actions on repositories, scope maps, Entra ID roles and requested scopes.

Registry actions are ACR's token actions: ``pull``, ``push``, ``delete``, ``metadata_read`` and
``metadata_write`` on a repository, ``*`` on ``registry:catalog``, and ``*`` on ``registry:admin``
(the admin API). Scope maps name them ``repositories/<repo>/content/read`` and so on, where
``<repo>`` is a name, ``prefix/*`` or ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.errors import InvalidName
from shared.oci.names import NAME_RE

PULL, PUSH, DELETE, META_READ, META_WRITE = "pull", "push", "delete", "metadata_read", "metadata_write"
REPOSITORY_ACTIONS = frozenset({PULL, PUSH, DELETE, META_READ, META_WRITE})
REPOSITORY, REGISTRY, CATALOG, ADMIN = "repository", "registry", "catalog", "admin"

#: scope map action -> registry action
SCOPE_MAP_ACTIONS = {
    "content/read": PULL, "content/write": PUSH, "content/delete": DELETE,
    "metadata/read": META_READ, "metadata/write": META_WRITE,
}
_ALL_SCOPE_MAP_ACTIONS = [f"repositories/*/{a}" for a in SCOPE_MAP_ACTIONS]
#: ACR's built-in scope maps, which every registry has and nobody can change.
SYSTEM_SCOPE_MAPS: dict[str, list[str]] = {
    "_repositories_pull": ["repositories/*/content/read"],
    "_repositories_pull_metadata_read": ["repositories/*/content/read", "repositories/*/metadata/read"],
    "_repositories_push": ["repositories/*/content/read", "repositories/*/content/write"],
    "_repositories_push_metadata_write": ["repositories/*/content/read", "repositories/*/content/write",
                                          "repositories/*/metadata/read", "repositories/*/metadata/write"],
    "_repositories_admin": _ALL_SCOPE_MAP_ACTIONS,
}
_SCOPE_MAP_ACTION_RE = re.compile(
    r"repositories/(?P<repo>.+)/(?P<action>content/(?:read|write|delete)|metadata/(?:read|write))"
)


@dataclass(frozen=True)
class Rule:
    """Actions allowed on the repositories a pattern (``name``, ``prefix/*`` or ``*``) matches."""

    pattern: str
    actions: frozenset[str]

    def matches(self, name: str) -> bool:
        """True when the pattern covers repository ``name``."""
        if self.pattern == "*":
            return True
        if self.pattern.endswith("/*"):
            return name.startswith(self.pattern[:-1])
        return name == self.pattern


def validate_pattern(pattern: str) -> str:
    """Return a repository pattern (``name``, ``prefix/*`` or ``*``) or raise InvalidName."""
    base = pattern[:-2] if pattern.endswith("/*") else pattern
    if pattern != "*" and not NAME_RE.fullmatch(base):
        raise InvalidName("invalid repository pattern", detail={"pattern": pattern[:256]})
    return pattern


def scope_map_rules(actions: Iterable[str]) -> list[Rule]:
    """The rules of a scope map's actions; InvalidName for one that is not ``repositories/<repo>/<action>``."""
    rules = []
    for raw in actions:
        match = _SCOPE_MAP_ACTION_RE.fullmatch(raw)
        if match is None:
            raise InvalidName("invalid scope map action", detail={"action": raw[:300]})
        rules.append(Rule(validate_pattern(match["repo"]), frozenset({SCOPE_MAP_ACTIONS[match["action"]]})))
    return rules


@dataclass(frozen=True)
class RoleDefinition:
    """What an Entra ID role grants; ``abac`` roles may be conditioned on a repository pattern."""

    actions: frozenset[str]
    catalog: bool = False
    admin: bool = False
    abac: bool = False


_READ = frozenset({PULL, META_READ})
ROLES: dict[str, RoleDefinition] = {
    "AcrPull": RoleDefinition(_READ, catalog=True),
    "AcrPush": RoleDefinition(_READ | {PUSH}, catalog=True),
    "AcrDelete": RoleDefinition(frozenset({DELETE, META_READ})),
    "AcrImageSigner": RoleDefinition(frozenset()),
    "Reader": RoleDefinition(_READ, catalog=True),
    "Contributor": RoleDefinition(REPOSITORY_ACTIONS, catalog=True, admin=True),
    "Owner": RoleDefinition(REPOSITORY_ACTIONS, catalog=True, admin=True),
    "Container Registry Repository Reader": RoleDefinition(_READ, abac=True),
    "Container Registry Repository Writer": RoleDefinition(_READ | {PUSH, META_WRITE}, abac=True),
    "Container Registry Repository Contributor": RoleDefinition(REPOSITORY_ACTIONS, abac=True),
    "Container Registry Repository Catalog Lister": RoleDefinition(frozenset(), catalog=True, abac=True),
}
#: Roles that repository-permission (ABAC) mode ignores, as ACR does.
NOT_IN_ABAC_MODE = frozenset({"AcrPull", "AcrPush", "AcrDelete"})


@dataclass(frozen=True)
class Scope:
    """One requested scope: ``repository:<name>:pull,push`` or ``registry:catalog:*``."""

    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scopes(raw: Iterable[str]) -> list[Scope]:
    """Parse ``scope`` parameters (each may hold several space-separated scopes); skip malformed ones."""
    scopes = []
    for value in raw:
        for item in value.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            kind = kind.split("(")[0]  # docker's "repository(plugin)" form
            if kind in (REPOSITORY, REGISTRY) and name and actions:
                scopes.append(Scope(kind, name, frozenset(a for a in actions.split(",") if a)))
    return scopes


@dataclass(frozen=True)
class Permissions:
    """Everything one principal may do."""

    rules: tuple[Rule, ...] = ()
    catalog: bool = False
    admin: bool = False

    def allowed(self, scope: Scope) -> frozenset[str]:
        """The subset of ``scope``'s actions this principal may perform (``*`` asks for all)."""
        if scope.type == REGISTRY:
            granted = (scope.name == CATALOG and self.catalog) or (scope.name == ADMIN and self.admin)
            return frozenset({"*"}) if granted and "*" in scope.actions else frozenset()
        held: set[str] = set()
        for rule in self.rules:
            if rule.matches(scope.name):
                held |= rule.actions
        wanted = REPOSITORY_ACTIONS if "*" in scope.actions else scope.actions
        return frozenset(held & wanted)

    def can(self, kind: str, name: str, action: str) -> bool:
        """True when the principal may perform ``action`` on ``kind:name``."""
        return action in self.allowed(Scope(kind, name, frozenset({action})))

    def grant(self, scopes: Iterable[Scope]) -> list[dict[str, Any]]:
        """The ``access`` entries of a token for the requested scopes, keeping only what is allowed."""
        entries = []
        for scope in scopes:
            actions = self.allowed(scope)
            if actions:
                entries.append({"type": scope.type, "name": scope.name, "actions": sorted(actions)})
        return entries

    def union(self, other: Permissions) -> Permissions:
        """Both principals' permissions together."""
        return Permissions(self.rules + other.rules, self.catalog or other.catalog, self.admin or other.admin)


EVERYTHING = Permissions((Rule("*", REPOSITORY_ACTIONS),), catalog=True, admin=True)
NOTHING = Permissions()
ANONYMOUS_PULL = Permissions((Rule("*", _READ),), catalog=True)


def role_permissions(role: str, repository: str | None, abac_mode: bool) -> Permissions:
    """What one role assignment grants (a repository condition applies to ABAC roles only)."""
    definition = ROLES[role]
    if abac_mode and role in NOT_IN_ABAC_MODE:
        return NOTHING
    pattern = repository if definition.abac and repository else "*"
    rules = (Rule(pattern, definition.actions),) if definition.actions else ()
    return Permissions(rules, definition.catalog, definition.admin)


@dataclass(frozen=True)
class Grant:
    """The access entries of a verified access token."""

    entries: tuple[tuple[str, str, frozenset[str]], ...]

    @classmethod
    def from_claims(cls, access: object) -> Grant:
        """Read the ``access`` claim; anything malformed grants nothing."""
        entries = []
        if isinstance(access, list):
            for item in access:
                if isinstance(item, dict) and isinstance(item.get("actions"), list):
                    entries.append((str(item.get("type")), str(item.get("name")),
                                    frozenset(str(a) for a in item["actions"])))
        return cls(tuple(entries))

    def can(self, kind: str, name: str, action: str) -> bool:
        """True when an entry allows ``action`` on ``kind:name``."""
        return any(t == kind and n == name and (action in a or "*" in a) for t, n, a in self.entries)
