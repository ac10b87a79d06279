"""The permission rules on their own: patterns, scope map actions, requested scopes, roles and the
access entries of a token, with every expected answer written out by hand."""

from __future__ import annotations

import pytest

from shared.auth.permissions import (
    EVERYTHING,
    NOTHING,
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

ALL = ["delete", "metadata_read", "metadata_write", "pull", "push"]


def test_rule_patterns_match_a_name_a_prefix_or_everything() -> None:
    cases = {
        "*": {"a": True, "team/app": True},
        "team/*": {"team/app": True, "team/a/b": True, "team": False, "teamx/app": False,
                   "x/team/app": False},
        "team/app": {"team/app": True, "team/app2": False, "team/app/x": False, "team": False},
    }
    for pattern, names in cases.items():
        rule = Rule(pattern, frozenset({"pull"}))
        assert {name: rule.matches(name) for name in names} == names, pattern


def test_patterns_must_be_names_prefixes_or_a_star() -> None:
    for good in ("*", "team/*", "team/app", "a"):
        assert validate_pattern(good) == good
    for bad in ("team*", "Team/*", "team/**", "*/app", "", "team//*", "/*", "team/ app"):
        with pytest.raises(InvalidName):
            validate_pattern(bad)


def test_scope_map_actions_become_rules() -> None:
    rules = scope_map_rules(["repositories/team/*/content/read", "repositories/a/content/write",
                             "repositories/*/content/delete", "repositories/b/metadata/read",
                             "repositories/b/metadata/write"])
    assert rules == [Rule("team/*", frozenset({"pull"})), Rule("a", frozenset({"push"})),
                     Rule("*", frozenset({"delete"})), Rule("b", frozenset({"metadata_read"})),
                     Rule("b", frozenset({"metadata_write"}))]
    for bad in ("repositories/a/content/steal", "repository/a/content/read", "repositories//content/read",
                "repositories/a/content/read/x", "repositories/A/content/read"):
        with pytest.raises(InvalidName):
            scope_map_rules([bad])


def test_requested_scopes_are_parsed_and_malformed_ones_skipped() -> None:
    parsed = parse_scopes(["repository:a/b:pull,push registry:catalog:*", "repository(plugin):c:pull",
                           "repository:d:", "thing:x:pull", "repository::pull", "repository:e:pull,,push",
                           "repository:host:5000/f:pull"])
    assert parsed == [Scope("repository", "a/b", frozenset({"pull", "push"})),
                      Scope("registry", "catalog", frozenset({"*"})),
                      Scope("repository", "c", frozenset({"pull"})),
                      Scope("repository", "e", frozenset({"pull", "push"})),
                      Scope("repository", "host:5000/f", frozenset({"pull"}))]
    assert str(parsed[0]) == "repository:a/b:pull,push"


def test_allowed_keeps_only_what_the_rules_grant() -> None:
    reader = Permissions((Rule("team/*", frozenset({"pull"})), Rule("team/app", frozenset({"push"}))))
    assert reader.allowed(Scope("repository", "team/app", frozenset({"pull", "push", "delete"}))) == {"pull", "push"}
    assert reader.allowed(Scope("repository", "team/app", frozenset({"pull"}))) == {"pull"}  # no more than asked
    assert reader.allowed(Scope("repository", "team/other", frozenset({"*"}))) == {"pull"}
    assert reader.allowed(Scope("repository", "teamx/app", frozenset({"pull"}))) == frozenset()
    assert sorted(EVERYTHING.allowed(Scope("repository", "x", frozenset({"*"})))) == ALL
    assert reader.allowed(Scope("registry", "catalog", frozenset({"*"}))) == frozenset()
    assert reader.can("repository", "team/app", "push") and not reader.can("repository", "team/b", "push")


def test_registry_scopes_need_the_flag_and_a_star() -> None:
    catalog = Permissions(catalog=True)
    admin = Permissions(admin=True)
    assert catalog.allowed(Scope("registry", "catalog", frozenset({"*"}))) == {"*"}
    assert catalog.allowed(Scope("registry", "catalog", frozenset({"pull"}))) == frozenset()
    assert catalog.allowed(Scope("registry", "admin", frozenset({"*"}))) == frozenset()
    assert admin.allowed(Scope("registry", "admin", frozenset({"*"}))) == {"*"}
    assert admin.allowed(Scope("registry", "catalog", frozenset({"*"}))) == frozenset()
    assert admin.allowed(Scope("registry", "other", frozenset({"*"}))) == frozenset()
    assert catalog.can("registry", "catalog", "*") and not admin.can("registry", "catalog", "*")


def test_grant_lists_only_scopes_with_some_action_allowed() -> None:
    reader = Permissions((Rule("a", frozenset({"pull"})),), catalog=True)
    scopes = [Scope("repository", "a", frozenset({"pull", "push"})), Scope("repository", "b", frozenset({"pull"})),
              Scope("registry", "catalog", frozenset({"*"})), Scope("registry", "admin", frozenset({"*"}))]
    assert reader.grant(scopes) == [{"type": "repository", "name": "a", "actions": ["pull"]},
                                    {"type": "registry", "name": "catalog", "actions": ["*"]}]
    assert NOTHING.grant(scopes) == []


def test_union_keeps_both_sides() -> None:
    left = Permissions((Rule("a", frozenset({"pull"})),), catalog=True)
    right = Permissions((Rule("b", frozenset({"push"})),), admin=True)
    both = left.union(right)
    assert both == Permissions((Rule("a", frozenset({"pull"})), Rule("b", frozenset({"push"}))), True, True)
    assert right.union(left).catalog and left.union(right).admin
    assert left.union(NOTHING) == left and NOTHING.union(NOTHING) == NOTHING


def test_role_permissions_by_mode_and_condition() -> None:
    pull = frozenset({"pull", "metadata_read"})
    assert role_permissions("AcrPull", "team/*", abac_mode=False) == Permissions((Rule("*", pull),), catalog=True)
    assert role_permissions("AcrPull", None, abac_mode=True) == NOTHING
    assert role_permissions("AcrDelete", None, abac_mode=True) == NOTHING
    writer = role_permissions("Container Registry Repository Writer", "team/*", abac_mode=True)
    assert writer == Permissions((Rule("team/*", pull | {"push", "metadata_write"}),))
    assert role_permissions("Container Registry Repository Reader", None, abac_mode=False) == \
        Permissions((Rule("*", pull),))
    assert role_permissions("AcrImageSigner", None, abac_mode=False) == NOTHING
    assert role_permissions("Container Registry Repository Catalog Lister", "x", abac_mode=True) == \
        Permissions(catalog=True)
    owner = role_permissions("Owner", None, abac_mode=True)
    assert owner.admin and owner.catalog and sorted(owner.rules[0].actions) == ALL


def test_grant_of_an_access_claim() -> None:
    grant = Grant.from_claims([{"type": "repository", "name": "a", "actions": ["pull"]},
                               {"type": "registry", "name": "catalog", "actions": ["*"]},
                               {"type": "repository", "name": "b", "actions": "push"},
                               "junk", {"type": "repository", "name": "c"}])
    assert grant.can("repository", "a", "pull")
    assert not grant.can("repository", "a", "push")
    assert not grant.can("repository", "b", "push")  # actions not a list: ignored
    assert grant.can("registry", "catalog", "*") and grant.can("registry", "catalog", "anything")
    assert not grant.can("repository", "catalog", "pull") and not grant.can("registry", "a", "pull")
    assert Grant.from_claims("junk").entries == () and Grant.from_claims(None).entries == ()
