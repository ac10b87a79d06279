"""docs/deploy.md stays in step with the code: the generated settings table, and every Bicep
parameter and host setting is documented."""

from __future__ import annotations

from scripts.settings_table import DOC, bicep_values, rewrite
from tests.infra import tree, variable
from tests.test_infra import BICEP_HOST_SETTINGS, LOCAL_HOST_SETTINGS


def test_settings_table_is_rendered_from_the_settings_module() -> None:
    text = DOC.read_text()
    assert rewrite(text) == text, "docs/deploy.md is stale: run `.venv/bin/python -m scripts.settings_table`"


def test_every_main_bicep_parameter_is_documented() -> None:
    text = DOC.read_text()
    for name in tree("infra/main.bicep")["parameters"]:
        assert f"| `{name}` |" in text, name


def test_every_host_setting_is_documented() -> None:
    text = DOC.read_text()
    for name in BICEP_HOST_SETTINGS.keys() | LOCAL_HOST_SETTINGS:
        assert f"| `{name}` |" in text, name


def test_the_table_reads_every_bicep_registry_setting() -> None:
    assert set(bicep_values()) == set(variable("infra/main.bicep", "registrySettings"))
