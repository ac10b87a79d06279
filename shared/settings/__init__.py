"""Every app setting of the registry: one declaration each, in frozen groups per capability.

A group is a frozen dataclass whose fields are declared with :func:`setting` (the environment
variable, its default, a description and its bounds: :mod:`shared.settings.groups`). From those
declarations come the group's ``from_env``, the settings table of docs/deploy.md
(``scripts/settings_table.py``) and the parity checks with ``local.settings.json.example`` and the
Bicep app settings. Booleans are strict (``true``/``false``/``1``/``0``) and a value that is
missing or out of bounds raises :class:`SettingsError` naming the setting.

The core groups (registry, storage, authentication, events, background jobs) are declared in
:mod:`shared.settings.core` and read as attributes: ``settings.storage.prefix``. A capability
declares its group in its own package and reads it with ``settings.group(WebhookSettings)``; this
package never imports a capability: whoever composes the process passes the groups to ``from_env``.
A group that can be switched off has a boolean field named ``enabled``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.settings.core import (
    AuthSettings,
    EventSettings,
    JobSettings,
    RegistrySettings,
    StorageSettings,
    is_emulator,
)
from shared.settings.groups import Declaration, G, MiB, SettingsError, SettingsGroup, env_names, setting

__all__ = ["CORE_GROUPS", "AuthSettings", "Declaration", "EventSettings", "JobSettings", "MiB", "RegistrySettings",
           "Settings", "SettingsError", "SettingsGroup", "StorageSettings", "env_names", "is_emulator", "setting"]

#: The core groups, always present, read as attributes of :class:`Settings`.
CORE_GROUPS: tuple[type[SettingsGroup], ...] = (
    RegistrySettings, StorageSettings, AuthSettings, EventSettings, JobSettings)


@dataclass(frozen=True)
class Settings:
    """The registry's configuration: the core groups, and the groups of the capabilities it runs."""

    registry: RegistrySettings = field(default_factory=RegistrySettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    events: EventSettings = field(default_factory=EventSettings)
    jobs: JobSettings = field(default_factory=JobSettings)
    capabilities: tuple[SettingsGroup, ...] = ()
    #: the settings' text as read (declared names only), so :meth:`with_env` can change a few
    source: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 groups: Sequence[type[SettingsGroup]] = ()) -> Settings:
        """Read the core groups and the capability ``groups`` from ``environ`` (default: the
        process environment) and validate them."""
        env = os.environ if environ is None else environ
        source = {name: env[name] for name in env_names((*CORE_GROUPS, *groups)) if name in env}
        return cls._of([group.from_env(source) for group in (*CORE_GROUPS, *groups)], source)

    @classmethod
    def _of(cls, groups: Sequence[SettingsGroup], source: Mapping[str, str]) -> Settings:
        core = groups[:len(CORE_GROUPS)]
        settings = cls(registry=_pick(core, RegistrySettings), storage=_pick(core, StorageSettings),
                       auth=_pick(core, AuthSettings), events=_pick(core, EventSettings),
                       jobs=_pick(core, JobSettings), capabilities=tuple(groups[len(CORE_GROUPS):]), source=source)
        settings.validate()
        return settings

    @property
    def groups(self) -> tuple[SettingsGroup, ...]:
        """Every group, the core ones first."""
        return (self.registry, self.storage, self.auth, self.events, self.jobs, *self.capabilities)

    def group(self, kind: type[G]) -> G:
        """The group ``kind`` (a capability's, or a core one); an error if these settings were read without it."""
        return _pick(self.groups, kind)

    def with_env(self, **changes: str) -> Settings:
        """These settings with some environment variables changed (tests, tools); a group none of
        ``changes`` belongs to is kept as it is."""
        unknown = set(changes) - set(env_names(type(g) for g in self.groups))
        if unknown:
            raise SettingsError(f"no such setting: {', '.join(sorted(unknown))}")
        source = {**self.source, **changes}
        renewed = [type(g).from_env(source) if {d.env for d in g.declarations().values()} & changes.keys() else g
                   for g in self.groups]
        return self._of(renewed, source)

    def validate(self) -> None:
        """Raise :class:`SettingsError` for a combination of groups that cannot work."""
        if not self.auth.enabled and not self.storage.emulator:
            raise SettingsError("setting REGISTRY_AUTH_ENABLED may be false only with the local storage emulator")
        if self.auth.enabled and not self.auth.token_signing_key and not self.storage.emulator:
            raise SettingsError("setting REGISTRY_TOKEN_SIGNING_KEY is required")


def _pick(groups: Sequence[SettingsGroup], kind: type[G]) -> G:
    for group in groups:
        if isinstance(group, kind):
            return group
    raise LookupError(f"settings group {kind.__name__} was not read: pass it to Settings.from_env")
