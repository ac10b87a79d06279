"""What the capability packages declare for the layers below them, which may not import them:
their settings groups and their error groups.

This is the one list of them until the composition root (``shared/composition.py``) collects them
from each capability's registration; the entry points read their settings through
:func:`load_settings`, so every process reads and checks the same groups at start.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.errors import ErrorGroup
from shared.settings import CORE_GROUPS, Declaration, Settings, SettingsGroup, env_names
from shared.webhooks.errors import WEBHOOK_ERRORS
from shared.webhooks.settings import WebhookSettings

#: The capabilities' settings groups, in the order of the settings table.
SETTINGS_GROUPS: tuple[type[SettingsGroup], ...] = (WebhookSettings,)
#: The capabilities' error groups, consulted before the API's own.
ERROR_GROUPS: tuple[ErrorGroup, ...] = (WEBHOOK_ERRORS,)
#: Every setting (environment variable -> declaration): core groups first, then the capabilities'.
SETTINGS: dict[str, Declaration] = env_names((*CORE_GROUPS, *SETTINGS_GROUPS))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of a process running every capability, from ``environ`` (default: the environment)."""
    return Settings.from_env(environ, SETTINGS_GROUPS)
