"""Every setting of ``shared.settings`` is in ``local.settings.json.example`` and the other way round."""

from __future__ import annotations

import json

from scripts.azurite import ROOT
from shared.composition import SETTINGS

FUNCTIONS_HOST_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "RegistryStorage",
                           "PYTHON_ENABLE_INIT_INDEXING", "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"}


def test_local_settings_example_lists_every_setting() -> None:
    example = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    assert set(example) - FUNCTIONS_HOST_SETTINGS == set(SETTINGS)
