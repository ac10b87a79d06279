"""Mutation testing of the security- and integrity-critical modules with mutmut (``make mutation``).

Each module is mutated on its own, in a folder of its own under ``.mutation/`` (mutmut keeps its
mutants and results in ``./mutants``, so separate folders keep each module's cache), and only
the tests that exercise it run against its mutants; mutmut then narrows that set per mutated
function to the tests that called it. One Azurite serves every test session of the run
(``REGISTRY_TEST_AZURITE``). Prints, per module, the time taken, the counts and every surviving
mutant with its diff.

    python -m scripts.mutation                                  # every module below
    python -m scripts.mutation shared/auth/permissions.py       # one (or several) of them
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from scripts.azurite import ROOT, Azurite

_AUTH_TESTS = ["tests/unit/test_permissions.py", "tests/auth/", "tests/test_token_service.py",
               "tests/test_auth_security.py"]
_UPLOAD_TESTS = ["tests/unit/registry/test_upload_claims.py", "tests/api/test_uploads.py",
                 "tests/api/test_upload_races.py", "tests/api/test_upload_storage.py",
                 "tests/api/test_maintenance.py", "tests/api/test_blob_pull.py", "tests/api/test_inputs.py"]
_MANIFEST_TESTS = ["tests/unit/registry/test_tag_commit.py", "tests/unit/registry/test_lock_checks.py",
                   "tests/api/test_manifests.py", "tests/api/test_manifest_rules.py",
                   "tests/api/test_manifest_validation.py", "tests/api/test_manifest_digests.py",
                   "tests/api/test_manifest_delete_races.py", "tests/api/test_manifest_contention.py",
                   "tests/api/test_discovery.py", "tests/test_metadata_api.py", "tests/events/test_outbox.py",
                   "tests/test_lock_cache.py"]
#: authentication, the route table and the request-time policies
_GUARD_TESTS = [*_AUTH_TESTS, "tests/test_lock_cache.py", "tests/test_metadata_api.py", "tests/api/test_uploads.py",
                "tests/api/test_policies.py"]
#: replication's decisions: what to copy, last writer wins, tombstones
_REPLICATION_TESTS = ["tests/replication/test_sync.py", "tests/replication/test_sync_failures.py",
                      "tests/replication/test_tombstones.py", "tests/replication/test_blob_deletes.py",
                      "tests/replication/test_serving.py"]
#: module -> the tests that exercise it (slow-marked ones are left out); uploads and manifests
#: each span three modules (the service, its commit, and its content or reference checks)
MODULES: dict[str, list[str]] = {
    "shared/auth/permissions.py": _AUTH_TESTS,
    "shared/auth/tokens.py": _AUTH_TESTS,
    "shared/auth/passwords.py": _AUTH_TESTS,
    "shared/auth/entra.py": _AUTH_TESTS,
    "shared/auth/service.py": _AUTH_TESTS,
    "shared/auth/throttle.py": _AUTH_TESTS,
    "shared/auth/store.py": [*_AUTH_TESTS, "tests/test_metadata_api.py"],
    "shared/api/guard.py": _GUARD_TESTS,
    "shared/api/policies.py": _GUARD_TESTS,
    "shared/api/routing.py": _GUARD_TESTS,
    "shared/registry/uploads.py": _UPLOAD_TESTS,
    "shared/registry/content.py": _UPLOAD_TESTS,
    "shared/registry/manifests.py": _MANIFEST_TESTS,
    "shared/registry/commit.py": _MANIFEST_TESTS,
    "shared/registry/references.py": _MANIFEST_TESTS,
    "shared/replication/sync.py": _REPLICATION_TESTS,
    "shared/replication/arrive.py": _REPLICATION_TESTS,
    "shared/replication/tombstones.py": _REPLICATION_TESTS,
    "shared/replication/blob_deletes.py": _REPLICATION_TESTS,
}
WORK = ROOT / ".mutation"
MUTMUT = [sys.executable, "-m", "mutmut"]


def _config(module: str, tests: list[str]) -> str:
    """The project's pyproject.toml plus a [tool.mutmut] section for ``module``."""
    quoted = ", ".join(f'"{t}"' for t in tests)
    return (ROOT / "pyproject.toml").read_text() + f"""
[tool.mutmut]
source_paths = ["shared"]
only_mutate = ["{module}"]
also_copy = ["scripts/"]
pytest_add_cli_args_test_selection = [{quoted}]
# A test that a mutant makes hang fails after 30 s (pytest-timeout): every test here takes under 2 s.
pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "not slow", "-W", "ignore::DeprecationWarning", "--timeout=30"]
use_git_change_detection = false
# A mutant whose tests use more than 2 x (estimate + 1 s) x this of CPU counts as a timeout, which
# mutmut scores as killed: generous, so that a busy machine does not pass survivors off as kills.
timeout_multiplier = 10.0
"""


def _workspace(module: str, tests: list[str]) -> Path:
    """A folder where mutmut sees the project (links) with ``module``'s configuration."""
    folder = WORK / module.replace("/", "_").removesuffix(".py")
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("shared", "tests", "scripts"):
        link = folder / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    config = folder / "pyproject.toml"
    text = _config(module, tests)
    if not config.exists() or config.read_text() != text:
        config.write_text(text)
    return folder


def run(module: str, workers: int) -> tuple[float, list[str]]:
    """Mutate ``module``, run its tests against every mutant; (seconds, surviving mutant names)."""
    folder = _workspace(module, [t for t in MODULES[module] if (ROOT / t).exists()])
    started = time.monotonic()
    subprocess.run([*MUTMUT, "run", "--max-children", str(workers)], cwd=folder, check=True)
    elapsed = time.monotonic() - started
    results = subprocess.run([*MUTMUT, "results"], cwd=folder, check=True, capture_output=True, text=True).stdout
    # A mutant no test runs into survives as surely as one the tests run and miss.
    survivors = [line.split(":")[0].strip() for line in results.splitlines()
                 if line.strip().endswith((": survived", ": no tests"))]
    print(f"\n=== {module}: {elapsed:.0f} s, {len(survivors)} surviving mutant(s) (survived or no tests)")
    print(results)
    for name in survivors:
        print(subprocess.run([*MUTMUT, "show", name], cwd=folder, capture_output=True, text=True).stdout)
    return elapsed, survivors


def main(argv: list[str] | None = None) -> int:
    """Run mutation testing of the named modules (all of :data:`MODULES` by default)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help=f"modules to mutate (default: all): {', '.join(MODULES)}")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="mutants run at once")
    args = parser.parse_args(argv)
    unknown = set(args.modules) - set(MODULES)
    if unknown:
        parser.error(f"not a module of this run: {', '.join(sorted(unknown))}")
    summary = []
    with Azurite() as azurite:
        os.environ["REGISTRY_TEST_AZURITE"] = azurite.connection_string
        for module in args.modules or list(MODULES):
            elapsed, survivors = run(module, args.workers)
            summary.append(f"{module}: {elapsed:.0f} s, {len(survivors)} survived: {' '.join(survivors) or '-'}")
    print("\n".join(["", "Surviving mutants per module:", *summary]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
