"""`make conformance`: both OCI distribution-spec conformance suites against this registry.

Starts Azurite and the registry as `make run` does (authentication on, the admin user logs in),
runs the v1.1.1 suite (pull, push, content discovery and content management) and the suite of
the spec's main branch (OCI_VERSION=1.1, sha512 and range cases included), and prints one line
per suite: passed, failed, skipped. With ``--replicated`` the registry is the home region of a
registry with a second region, which the home region replicates every change into and whose
copies its reads fall back on (what a client of one region sees while replication runs). The
suites are prebuilt binaries outside this repository;
OCI_CONFORMANCE_DIR names their folder (default: ../shared/tools/oci-conformance). Exit status 0
only when neither suite has a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.servers import Registry
from scripts.azurite import ROOT, Azurite

_DEFAULT_DIR = ROOT.parent / "shared" / "tools" / "oci-conformance"
_SUMMARY = re.compile(r"conformance: (\d+) passed, (\d+) failed, (\d+) skipped")


def suites_dir() -> Path | None:
    """The folder holding the prebuilt suites, or None when it is not on this machine."""
    folder = Path(os.environ.get("OCI_CONFORMANCE_DIR") or _DEFAULT_DIR)
    return folder if (folder / "run.sh").exists() and (folder / "conformance-head").exists() else None


def _login(registry: Registry) -> tuple[str, str]:
    assert registry.login is not None
    return registry.login


def run_v111(folder: Path, registry: Registry) -> tuple[int, int, int, list[str]]:
    """The v1.1.1 suite: (passed, failed, skipped, names of failed specs)."""
    user, password = _login(registry)
    env = {**os.environ, "OCI_ROOT_URL": registry.url, "OCI_NAMESPACE": "conformance/one",
           "OCI_CROSSMOUNT_NAMESPACE": "conformance/two", "OCI_USERNAME": user, "OCI_PASSWORD": password,
           "OCI_REPORT_DIR": "none"}
    done = subprocess.run([str(folder / "run.sh")], env=env, capture_output=True, text=True, check=False)
    output = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", done.stdout + done.stderr)
    match = _SUMMARY.search(output)
    if match is None:
        raise RuntimeError(f"the v1.1.1 suite printed no summary:\n{output[-3000:]}")
    failed = [line.strip()[len("[FAIL] "):] for line in output.splitlines() if line.strip().startswith("[FAIL] ")]
    return int(match[1]), int(match[2]), int(match[3]), failed


def run_head(folder: Path, registry: Registry) -> tuple[int, int, int, list[str]]:
    """The main-branch suite: (passed, failed, skipped incl. disabled, names of failed tests), counted
    from junit.xml as the suite's README says (its stdout also counts parent groups)."""
    user, password = _login(registry)
    with tempfile.TemporaryDirectory(prefix="conformance-") as results:
        env = {**os.environ, "OCI_REGISTRY": registry.host, "OCI_TLS": "disabled", "OCI_VERSION": "1.1",
               "OCI_REPO1": "conformance/h1", "OCI_REPO2": "conformance/h2", "OCI_USERNAME": user,
               "OCI_PASSWORD": password, "OCI_RESULTS_DIR": results}
        subprocess.run([str(folder / "conformance-head")], env=env, capture_output=True, check=False)
        root = ET.parse(Path(results) / "junit.xml").getroot()  # noqa: S314 - written by the suite we just ran
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        raise RuntimeError("the main-branch suite wrote no test suite to junit.xml")
    total, failures = int(suite.get("tests", 0)), int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0)) + int(suite.get("disabled", 0))
    failed = sorted({str(c.get("name")) for c in suite.iter("testcase")
                     if c.get("status") in ("failure", "failed", "error") or c.find("failure") is not None})
    return total - failures - skipped, failures, skipped, failed


def main() -> int:
    """Run both suites against a fresh registry; print the counts and the failures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicated", action="store_true", help="the home region of a two-region registry")
    args = parser.parse_args()
    folder = suites_dir()
    if folder is None:
        print("conformance suites not found: set OCI_CONFORMANCE_DIR to their folder", file=sys.stderr)
        return 2
    with Azurite() as azurite:
        if args.replicated:
            other = "conformance" + uuid.uuid4().hex[:12]
            os.environ["REGISTRY_REGION"] = "home"
            os.environ["REGISTRY_REGIONS"] = json.dumps([
                {"name": "home"}, {"name": "away", "connection_string": azurite.connection_string, "prefix": other}])
        with Registry(azurite) as registry:
            failures = _run_suites(folder, registry)
    return 1 if failures else 0


def _run_suites(folder: Path, registry: Registry) -> int:
    """Run both suites against ``registry``; the number of failures."""
    failures = 0
    for name, run in (("v1.1.1", run_v111), ("main (1.1)", run_head)):
        passed, failed, skipped, names = run(folder, registry)
        print(f"{name}: {passed} passed, {failed} failed, {skipped} skipped")
        for failure in names:
            print(f"  FAILED {failure}")
        failures += failed
    return failures


if __name__ == "__main__":
    sys.exit(main())
