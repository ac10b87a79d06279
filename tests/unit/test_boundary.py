"""Which errors the API boundary answers 503 (storage unreachable or failing) and which stay 500."""

from __future__ import annotations

import aiohttp
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.api.boundary import is_unavailable
from shared.storage.clients import StorageTimeout


def _http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"status {status}")
    error.status_code = status
    return error


def _raised_from(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("wrapper") from cause
    except RuntimeError as error:
        return error


@pytest.mark.parametrize("error", [
    ServiceRequestError("connect call failed"),
    ServiceResponseError("connection reset"),
    StorageTimeout("no answer"),
    TimeoutError(),
    ConnectionResetError(),
    aiohttp.ServerDisconnectedError(),
    _http_error(503),
    _http_error(500),
    _raised_from(ServiceRequestError("connect call failed")),
    ExceptionGroup("blocks", [ServiceRequestError("a"), StorageTimeout("b")]),
], ids=repr)
def test_storage_unreachable_or_failing_is_unavailable(error: BaseException) -> None:
    assert is_unavailable(error)


@pytest.mark.parametrize("error", [
    ValueError("a bug"),
    KeyError("a bug"),
    ClientAuthenticationError("storage refused the credential"),  # misconfiguration: 500
    ResourceNotFoundError("not found"),
    _http_error(409),
    ExceptionGroup("blocks", [ServiceRequestError("a"), ValueError("b")]),
], ids=repr)
def test_other_errors_are_not_unavailable(error: BaseException) -> None:
    assert not is_unavailable(error)
