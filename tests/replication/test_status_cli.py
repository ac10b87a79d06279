"""``python -m shared.cli replications``: list, show, disable, enable and show-image against two live
region processes (uvicorn), the switch taking effect on the disabled region's own endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from scripts.azurite import Azurite, free_port
from shared import cli
from shared.replication.switches import CACHE_SECONDS
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, start_registry
from tests.replication.regions import region_settings


@pytest.fixture
def live_regions(azurite: Azurite) -> Iterator[dict[str, str]]:
    """East (home) and west as two registry processes; their URLs by region."""
    ports = {"east": free_port(), "west": free_port()}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    settings = region_settings(azurite, ("east", "west"), endpoints=(urls["east"], urls["west"]))
    processes = [start_registry(settings[name], ports[name]) for name in ("east", "west")]
    yield urls
    for process in processes:
        process.terminate()
        process.wait(10)


def _cli(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> object:
    assert cli.main(["--registry", url, "-u", ADMIN_USER, "-p", ADMIN_PASSWORD, "replications", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_replications_commands_switch_a_live_region(live_regions: dict[str, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    east, west = live_regions["east"], live_regions["west"]
    listed = _cli(capsys, west, "list")
    assert isinstance(listed, dict)
    assert [(r["name"], r["properties"]["status"]["displayStatus"]) for r in listed["value"]] == [
        ("east", "Ready"), ("west", "Ready")]

    disabled = _cli(capsys, east, "disable", "west")
    assert isinstance(disabled, dict) and disabled["properties"]["regionEndpointEnabled"] is False
    with httpx.Client(auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        deadline = time.monotonic() + CACHE_SECONDS + 5
        response = http.get(f"{west}/v2/")
        while response.status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.2)  # west sees a switch set elsewhere once its cache expires
            response = http.get(f"{west}/v2/")
        assert response.status_code == 503, "west kept serving with its endpoint disabled"
        assert response.headers["retry-after"] == "30"
        assert http.get(f"{east}/v2/").status_code == 200

        shown = _cli(capsys, west, "show", "west")
        assert isinstance(shown, dict) and shown["properties"]["status"]["displayStatus"] == "Disabled"
        with pytest.raises(SystemExit, match="400"):
            cli.main(["--registry", west, "-u", ADMIN_USER, "-p", ADMIN_PASSWORD, "replications", "disable", "east"])

        enabled = _cli(capsys, west, "enable", "west")
        assert isinstance(enabled, dict) and enabled["properties"]["regionEndpointEnabled"] is True
        assert http.get(f"{west}/v2/").status_code == 200  # the process that switched it sees it at once

    image = _cli(capsys, west, "show-image", "team/app", "sha256:" + "0" * 64)
    assert image == {"repository": "team/app", "reference": "sha256:" + "0" * 64, "digest": "sha256:" + "0" * 64,
                     "regions": {"east": {"present": False, "missing": ["sha256:" + "0" * 64]},
                                 "west": {"present": False, "missing": ["sha256:" + "0" * 64]}}}
