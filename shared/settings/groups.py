"""The settings mechanism: a declaration per setting, and groups of declared settings.

A group is a frozen dataclass whose fields are declared with :func:`setting`; :meth:`SettingsGroup.from_env`
reads it, and the settings table and parity checks read :meth:`SettingsGroup.declarations`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

MiB = 1024 * 1024

#: How an unresolved Key Vault reference reads (lowercase), e.g. ``@Microsoft.KeyVault(VaultName=…)``.
_KEY_VAULT_REFERENCE = "@microsoft.keyvault("
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_DECLARATION = "registry.setting"


class SettingsError(ValueError):
    """A setting is missing or malformed."""


@dataclass(frozen=True)
class Declaration:
    """One setting: its environment variable, default, description and bounds.

    ``default`` is the typed value (its type is the setting's: str, bool, int or a tuple of
    strings read as comma-separated text); ``scale`` multiplies an integer as read (MiB → bytes).
    """

    env: str
    default: Any
    description: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    pattern: str = ""
    pattern_text: str = ""
    scale: int = 1
    secret: bool = False
    strip: str = ""

    @property
    def text_default(self) -> str:
        """The default as the text of an app setting."""
        value = self.default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value // self.scale)
        if isinstance(value, tuple):
            return ",".join(value)
        return str(value)

    @property
    def bounds(self) -> str:
        """The bounds in words (empty when there are none)."""
        parts = []
        if self.minimum is not None:
            parts.append(f"at least {self.minimum}")
        if self.maximum is not None:
            parts.append(f"at most {self.maximum}")
        if self.choices:
            parts.append("one of " + ", ".join(f"`{c}`" for c in self.choices))
        if self.pattern_text:
            parts.append(self.pattern_text)
        return ", ".join(parts)

    def parse(self, raw: str) -> Any:
        """``raw`` (stripped; empty means unset) as the setting's typed value."""
        if not raw:
            return self.default
        kind = type(self.default)
        if kind is bool:
            value = raw.lower()
            if value in _TRUE or value in _FALSE:
                return value in _TRUE
            raise SettingsError(f"setting {self.env} must be true or false, not {raw!r}")
        if kind is int:
            return self._integer(raw) * self.scale
        if kind is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw.rstrip(self.strip) if self.strip else raw

    def check(self, value: Any) -> None:
        """Raise :class:`SettingsError` naming the setting when a text ``value`` is out of bounds."""
        if self.choices and value not in self.choices:
            raise SettingsError(f"setting {self.env} must be one of {', '.join(self.choices)}, not {value!r}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise SettingsError(f"setting {self.env} must be {self.pattern_text}")

    def _integer(self, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"setting {self.env} must be an integer, not {raw!r}") from None
        if self.minimum is not None and value < self.minimum:
            raise SettingsError(f"setting {self.env} must be at least {self.minimum}, not {value}")
        if self.maximum is not None and value > self.maximum:
            raise SettingsError(f"setting {self.env} must be at most {self.maximum}, not {value}")
        return value


def setting(env: str, default: Any, description: str, *, minimum: int | None = None, maximum: int | None = None,
            choices: tuple[str, ...] = (), pattern: str = "", pattern_text: str = "", scale: int = 1,
            secret: bool = False, strip: str = "") -> Any:
    """Declare a field of a settings group as the setting ``env`` (see :class:`Declaration`)."""
    declaration = Declaration(env, default, description, minimum, maximum, choices, pattern, pattern_text, scale,
                              secret, strip)
    return field(default=default, repr=not secret, metadata={_DECLARATION: declaration})


def read(environ: Mapping[str, str], name: str) -> str:
    """The stripped text of setting ``name`` (empty when unset); refuses an unresolved Key Vault reference."""
    value = environ.get(name, "").strip()
    if value.lower().startswith(_KEY_VAULT_REFERENCE):
        # App Service passes a reference it could not resolve on as its own text; as a password
        # that text would be a guessable credential, so refuse to start instead.
        raise SettingsError(
            f"setting {name} is a Key Vault reference App Service could not resolve: check that "
            "the secret exists and that the app's identity may read it (docs/deploy.md)"
        )
    return value


@dataclass(frozen=True)
class SettingsGroup:
    """Base of a group of settings: subclasses are ``@dataclass(frozen=True)`` with fields from :func:`setting`."""

    #: The group's heading in the settings table.
    title: ClassVar[str] = ""

    @classmethod
    def declarations(cls) -> dict[str, Declaration]:
        """Field name -> declaration, in declaration order."""
        return {f.name: f.metadata[_DECLARATION] for f in dataclasses.fields(cls) if _DECLARATION in f.metadata}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read the group from ``environ`` (default: the process environment) and check it."""
        env = os.environ if environ is None else environ
        values = {}
        for name, declaration in cls.declarations().items():
            values[name] = declaration.parse(read(env, declaration.env))
            if isinstance(values[name], str):
                declaration.check(values[name])
        group = cls(**values)
        group.check()
        return group

    def check(self) -> None:
        """Raise :class:`SettingsError` for values of this group that cannot work together."""


G = TypeVar("G", bound=SettingsGroup)


def env_names(groups: Iterable[type[SettingsGroup]]) -> dict[str, Declaration]:
    """Environment variable -> declaration, over ``groups``; a name declared twice is an error."""
    names: dict[str, Declaration] = {}
    for group in groups:
        for declaration in group.declarations().values():
            if declaration.env in names:
                raise SettingsError(f"setting {declaration.env} is declared twice")
            names[declaration.env] = declaration
    return names
