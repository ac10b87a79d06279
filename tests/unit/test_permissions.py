"""What scope maps, roles, requested scopes and token claims allow, decided without storage.

These pin the boundaries mutation testing found unguarded: the ``prefix/*`` boundary of a
pattern, the validation of patterns and scope map actions, the parsing of requested scopes, the
union of two principals' rights, role conditions and what a token's ``access`` claim grants.
"""

from __future__ import annotations

import pytest

from shared.auth.permissions import (
    ADMIN,
    CATALOG,
    DELETE,
    META_READ,
    META_WRITE,
    PULL,
    PUSH,
    REGISTRY,
    REPOSITORY,
    Grant,
    Permissions,
    Rule,
    Scope,
    parse_scopes,
    role_permissions,
    scope_map_rules,
    validate_pattern,
)
from shared.errors import InvalidName


@pytest.mark.parametrize(("pattern", "inside", "outside"), [
    ("team/*", ["team/a", "team/a/b"], ["teamx/a", "team", "tea/m", "t", "xteam/a"]),
    ("a/*", ["a/b"], ["ab", "a", "b/a"]),
    ("team/app", ["team/app"], ["team/app2", "team/ap", "team/app/x"]),
    ("*", ["team/app", "x"], []),
])
def test_a_prefix_pattern_covers_its_prefix_and_nothing_that_only_starts_alike(
        pattern: str, inside: list[str], outside: list[str]) -> None:
    rule = Rule(pattern, frozenset({PULL}))
    assert [name for name in inside if rule.matches(name)] == inside
    assert [name for name in outside if rule.matches(name)] == []


@pytest.mark.parametrize("pattern", ["*", "team/*", "a/b/c/*", "team/app", "a"])
def test_valid_patterns_are_returned_as_given(pattern: str) -> None:
    assert validate_pattern(pattern) == pattern


@pytest.mark.parametrize("pattern", ["Team/*", "a/B/*", "ab/CD/*", "a//*", "team/", "/*", "team/**", "", "a b",
                                     "x" * 300 + "/Y/*"])
def test_invalid_patterns_are_name_invalid_and_say_which(pattern: str) -> None:
    with pytest.raises(InvalidName) as raised:
        validate_pattern(pattern)
    assert raised.value.message == "invalid repository pattern"
    assert raised.value.detail == {"pattern": pattern[:256]}


def test_scope_map_actions_become_rules_one_action_each() -> None:
    rules = scope_map_rules(["repositories/team/*/content/read", "repositories/app/content/write",
                             "repositories/*/content/delete", "repositories/x/metadata/read",
                             "repositories/x/metadata/write"])
    assert rules == [Rule("team/*", frozenset({PULL})), Rule("app", frozenset({PUSH})),
                     Rule("*", frozenset({DELETE})), Rule("x", frozenset({META_READ})),
                     Rule("x", frozenset({META_WRITE}))]


@pytest.mark.parametrize("action", ["repositories/x/content/admin", "repository/x/content/read",
                                    "repositories//content/read", "repositories/x/content/read/",
                                    "x" * 400])
def test_malformed_scope_map_actions_are_name_invalid_and_say_which(action: str) -> None:
    with pytest.raises(InvalidName) as raised:
        scope_map_rules(["repositories/ok/content/read", action])
    assert raised.value.message == "invalid scope map action"
    assert raised.value.detail == {"action": action[:300]}


def test_a_scope_map_action_of_an_invalid_pattern_is_refused() -> None:
    with pytest.raises(InvalidName) as raised:
        scope_map_rules(["repositories/Bad/*/content/read"])
    assert raised.value.detail == {"pattern": "Bad/*"}


def test_requested_scopes_are_parsed_with_their_actions() -> None:
    assert parse_scopes(["repository:team/app:pull,push registry:catalog:*",
                         "repository(plugin):plug/in:pull", "repository:host:5000/x:pull"]) == [
        Scope(REPOSITORY, "team/app", frozenset({PULL, PUSH})),
        Scope(REGISTRY, CATALOG, frozenset({"*"})),
        Scope(REPOSITORY, "plug/in", frozenset({PULL})),
        Scope(REPOSITORY, "host:5000/x", frozenset({PULL})),  # the last colon separates the actions
    ]
    assert parse_scopes(["repository:a:pull,,push"]) == [Scope(REPOSITORY, "a", frozenset({PULL, PUSH}))]
    assert str(Scope(REPOSITORY, "team/app", frozenset({PUSH, PULL}))) == "repository:team/app:pull,push"


@pytest.mark.parametrize("raw", ["repository:a", "repository::pull", "repository:a:", "other:a:pull", ":a:pull",
                                 "repositoryx:a:pull", "registry", ""])
def test_malformed_requested_scopes_are_skipped(raw: str) -> None:
    assert parse_scopes([raw, "repository:ok:pull"]) == [Scope(REPOSITORY, "ok", frozenset({PULL}))]


def test_a_star_asks_for_every_repository_action_held_and_no_other() -> None:
    permissions = Permissions((Rule("team/*", frozenset({PULL, PUSH})), Rule("*", frozenset({META_READ}))))
    assert permissions.allowed(Scope(REPOSITORY, "team/app", frozenset({"*"}))) == {PULL, PUSH, META_READ}
    assert permissions.allowed(Scope(REPOSITORY, "team/app", frozenset({PULL, DELETE}))) == {PULL}
    assert permissions.allowed(Scope(REPOSITORY, "teamx/app", frozenset({"*"}))) == {META_READ}
    assert permissions.allowed(Scope(REGISTRY, CATALOG, frozenset({"*"}))) == frozenset()
    assert permissions.grant([Scope(REPOSITORY, "team/app", frozenset({PULL, DELETE})),
                              Scope(REPOSITORY, "other", frozenset({PUSH}))]) == [
        {"type": REPOSITORY, "name": "team/app", "actions": [PULL]}]


def test_the_union_of_two_principals_keeps_each_ones_rights() -> None:
    reader = Permissions((Rule("a", frozenset({PULL})),), catalog=True)
    admin = Permissions((Rule("b", frozenset({PUSH})),), admin=True)
    for union in (reader.union(admin), admin.union(reader)):
        assert union.can(REPOSITORY, "a", PULL) and union.can(REPOSITORY, "b", PUSH)
        assert not union.can(REPOSITORY, "a", PUSH)
        assert union.catalog and union.admin
    assert not reader.union(reader).admin and not admin.union(admin).catalog


def test_roles_grant_their_actions_conditioned_on_a_repository_only_in_abac() -> None:
    writer = role_permissions("Container Registry Repository Writer", "team/*", abac_mode=True)
    assert writer.can(REPOSITORY, "team/app", PUSH) and not writer.can(REPOSITORY, "other", PULL)
    assert not writer.catalog and not writer.admin
    push = role_permissions("AcrPush", "team/*", abac_mode=False)  # not an ABAC role: the condition is ignored
    assert push.can(REPOSITORY, "other", PUSH) and push.catalog and not push.admin
    assert role_permissions("AcrPush", None, abac_mode=True) == Permissions()
    owner = role_permissions("Owner", None, abac_mode=True)
    assert owner.admin and owner.catalog and owner.can(REPOSITORY, "any", DELETE)
    lister = role_permissions("Container Registry Repository Catalog Lister", None, abac_mode=True)
    assert lister == Permissions(catalog=True)
    signer = role_permissions("AcrImageSigner", None, abac_mode=False)
    assert signer.rules == () and not signer.can(REPOSITORY, "x", PULL)
    assert role_permissions("Container Registry Repository Reader", None, abac_mode=True).can(
        REPOSITORY, "any", PULL)


def test_a_token_grants_exactly_its_access_entries() -> None:
    grant = Grant.from_claims([
        {"type": "repository", "name": "team/app", "actions": ["pull"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
        {"type": "repository", "name": "broken", "actions": "pull"},  # not a list: ignored
        "junk",
    ])
    assert grant.can(REPOSITORY, "team/app", PULL)
    assert not grant.can(REPOSITORY, "team/app", PUSH)
    assert not grant.can(REPOSITORY, "team/app2", PULL) and not grant.can(REGISTRY, "team/app", PULL)
    assert grant.can(REGISTRY, CATALOG, "*") and grant.can(REGISTRY, CATALOG, "anything")
    assert not grant.can(REGISTRY, ADMIN, "*")
    assert not grant.can(REPOSITORY, "broken", PULL)
    assert Grant.from_claims(None).entries == () and Grant.from_claims({"a": 1}).entries == ()
