"""Errors registered per group: domain errors below the API, wire errors answered at the boundary with
the groups of the request's API (and those capabilities add)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.api.boundary import ErrorBoundary
from shared.api.errors import MANAGEMENT_API, V2_API
from shared.composition import ERROR_GROUPS
from shared.errors import (
    DomainError,
    Locked,
    ResourceNotFound,
    Throttled,
    Unauthenticated,
    Unavailable,
    WireCode,
    translate,
)
from shared.registry.errors import BlobUnknown, ManifestUnknown, UploadOutOfOrder
from shared.webhooks.errors import WebhookUnknown

ROOT = Path(__file__).resolve().parents[2]
#: The packages below the API (and the webhooks capability), which raise domain errors only; a
#: capability declares its own wire codes in its ``errors`` module, for the boundary.
BELOW_THE_API = ("oci", "registry", "auth", "events", "webhooks", "storage")
WIRE_NAMES = {"RegistryError", "WireCode", "Common", "Oci", "Management", "ErrorCode"}


def _domain_errors() -> list[type[DomainError]]:
    """Every domain error the registry declares (the modules declaring them imported)."""
    for module in ("shared.oci.errors", "shared.registry.errors", "shared.webhooks.errors"):
        importlib.import_module(module)
    found: list[type[DomainError]] = []
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending += kind.__subclasses__()
    return [k for k in found if k.__module__.startswith("shared.") and k is not DomainError]


def test_no_package_below_the_api_names_a_wire_error() -> None:
    offenders = []
    for package in BELOW_THE_API:
        for path in sorted((ROOT / "shared" / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module == "shared.errors":
                    wire = WIRE_NAMES - ({"WireCode"} if path.name == "errors.py" else set())
                    offenders += [f"{path.relative_to(ROOT)}: {a.name}" for a in node.names if a.name in wire]
    assert offenders == []


def test_every_domain_error_has_an_answer_in_each_api_that_can_meet_it() -> None:
    for kind in _domain_errors():
        error = kind("x", "y") if kind is ResourceNotFound else kind(size=0) if kind is UploadOutOfOrder else kind()
        assert translate(error, (*ERROR_GROUPS, *MANAGEMENT_API)) is not None, kind
        if kind.__module__ in ("shared.oci.errors", "shared.registry.errors") or kind in (
                Locked, Throttled, Unauthenticated, Unavailable):
            assert translate(error, V2_API) is not None, kind


def test_each_group_answers_only_with_its_own_codes() -> None:
    for group in (*ERROR_GROUPS, *V2_API, *MANAGEMENT_API):
        codes = [answer for answer in group.answers.values() if isinstance(answer, WireCode)]
        assert codes and all(isinstance(code, group.codes) for code in codes), group.name


@pytest.mark.parametrize(("error", "groups", "answer"), [
    (BlobUnknown(detail={"digest": "d"}), V2_API,
     ("BLOB_UNKNOWN", 404, "blob unknown to registry", {}, {"digest": "d"})),
    (ManifestUnknown(), MANAGEMENT_API, ("MANIFEST_UNKNOWN", 404, "manifest unknown to registry", {}, None)),
    (Locked(), V2_API, ("DENIED", 403, "The operation is disallowed on this registry, repository or image.", {}, None)),
    (Locked(), MANAGEMENT_API,
     ("DENIED", 403, "The operation is disallowed on this registry, repository or image.", {}, None)),
    (Throttled("slow down", retry_after=7), V2_API, ("TOOMANYREQUESTS", 429, "slow down", {"Retry-After": "7"}, None)),
    (Unavailable("busy", retry_after=1), MANAGEMENT_API, ("UNAVAILABLE", 503, "busy", {"Retry-After": "1"}, None)),
    (UploadOutOfOrder(5), V2_API,
     ("BLOB_UPLOAD_INVALID", 416, "chunk does not start at the upload's offset", {"Range": "0-4"}, None)),
    (UploadOutOfOrder(0), V2_API,
     ("BLOB_UPLOAD_INVALID", 416, "chunk does not start at the upload's offset", {"Range": "0-0"}, None)),
    (Unauthenticated("no"), MANAGEMENT_API, ("UNAUTHORIZED", 401, "no", {}, None)),
    (ResourceNotFound("token", "t1"), MANAGEMENT_API,
     ("NOT_FOUND", 404, "token not found", {}, {"resource": "token", "name": "t1"})),
    (WebhookUnknown(detail={"name": "h"}), (*ERROR_GROUPS, *MANAGEMENT_API),
     ("WEBHOOK_UNKNOWN", 404, "webhook not found", {}, {"name": "h"})),
    (WebhookUnknown(detail={"name": "h"}), MANAGEMENT_API, ("NOT_FOUND", 404, "resource not found", {}, {"name": "h"})),
])
def test_domain_errors_become_the_wire_errors_of_their_api(
        error: DomainError, groups: tuple[object, ...], answer: tuple[object, ...]) -> None:
    wire = translate(error, groups)  # type: ignore[arg-type]
    assert wire is not None
    assert (wire.code.code, wire.code.status, wire.message, wire.headers, wire.detail) == answer


@pytest.mark.parametrize(("path", "groups", "status", "code"), [
    ("/v2/x", (), 500, "UNKNOWN"),
    ("/acr/admin/webhooks/hook1", (), 404, "NOT_FOUND"),
    ("/acr/admin/webhooks/hook1", ERROR_GROUPS, 404, "WEBHOOK_UNKNOWN"),
])
async def test_the_boundary_answers_with_the_groups_it_was_given(
        path: str, groups: tuple[object, ...], status: int, code: str) -> None:
    class Unheard(DomainError):
        pass

    async def raising(request: Request) -> Response:
        raise Unheard("only this test raises it")

    async def missing(request: Request) -> Response:
        raise WebhookUnknown(detail={"name": "hook1"})

    app = Starlette(routes=[Route("/v2/x", raising), Route("/acr/admin/webhooks/hook1", missing)],
                    middleware=[Middleware(ErrorBoundary, groups=groups)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as http:
        response = await http.get(path)
    assert response.status_code == status
    [error] = response.json()["errors"]
    assert error["code"] == code
    if code == "UNKNOWN":
        assert error["message"] == "unknown error" and set(error["detail"]) == {"requestId"}
        assert response.headers["x-request-id"] == error["detail"]["requestId"]
