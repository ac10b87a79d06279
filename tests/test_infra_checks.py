"""Static checks of the Bicep: every file parses with pycep-parser, and checkov (framework bicep)
reports no failed check, every skip carrying its reason inline. Both tools come from the tools
venv; a missing tool fails these tests rather than skipping them."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from tests.infra import INFRA, ROOT, bicep_files, parse_all, tool

SKIP_COMMENT = re.compile(r"checkov:skip=(CKV2?_[A-Z]+_\d+):(.*)")


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    """checkov's JSON report of infra/ (offline: --skip-download fetches no guidelines)."""
    result = subprocess.run(
        [str(tool("checkov")), "--framework", "bicep", "--directory", str(INFRA), "--output", "json",
         "--skip-download", "--compact"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.stdout.startswith("{"), f"checkov printed no report ({result.returncode}): {result.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_every_bicep_file_parses_with_pycep() -> None:
    trees, status, stderr = parse_all()
    assert status == 0, stderr
    assert sorted(trees) == [str(path.relative_to(ROOT)) for path in bicep_files()]
    assert len(trees) >= 7


def test_checkov_reports_no_failed_check(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for check in checkov_report["results"]["failed_checks"]
    ]
    assert failed == []
    assert summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0
    assert summary["resource_count"] >= 20


def test_every_checkov_skip_is_justified_inline(checkov_report: dict[str, Any]) -> None:
    skipped = checkov_report["results"]["skipped_checks"]
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "").strip()
        assert len(reason) >= 20, f"{check['check_id']} on {check['resource']} is skipped without a reason"


def test_every_skip_comment_suppresses_a_check_checkov_runs(checkov_report: dict[str, Any]) -> None:
    """A skip comment naming a check that no longer applies is a stale justification."""
    applied = {(check["file_abs_path"], check["check_id"]) for check in checkov_report["results"]["skipped_checks"]}
    for path in bicep_files():
        for match in SKIP_COMMENT.finditer(path.read_text()):
            stale = f"{path.name}: {match.group(1)} is not a check checkov runs here"
            assert (str(path), match.group(1)) in applied, stale
