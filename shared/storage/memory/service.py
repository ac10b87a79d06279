"""The state of an in-memory storage account, its clock, and the errors its clients raise."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import HttpResponseError

Clock = Callable[[], datetime]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def wall_clock() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


def storage_error(kind: type[HttpResponseError], code: Any, message: str, status: int) -> HttpResponseError:
    """An SDK error as the Azure clients raise it: ``error_code`` and ``status_code`` set."""
    error = kind(message=f"{message}\nErrorCode:{code}")
    setattr(error, "error_code", code)  # noqa: B010 - not declared on every HttpResponseError
    error.status_code = status
    return error


@dataclass
class MemoryService:
    """Everything one in-memory storage account holds: tables, blob containers and queues, by name.

    ``clock`` gives the time of every write (row timestamps, blob modification times, queue
    visibility); a test may pass a clock it moves itself. Each write gets a distinct, increasing
    time, so ETags (derived from it, as the Table service does) never repeat.
    """

    clock: Clock = wall_clock
    tables: dict[str, dict[tuple[str, str], Any]] = field(default_factory=dict)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, list[Any]] = field(default_factory=dict)
    _last: datetime = _EPOCH
    _serial: int = 0

    def stamp(self) -> datetime:
        """The time of a write: now, or just after the previous write's when the clock has not moved."""
        now = self.clock()
        self._last = max(now, self._last + timedelta(microseconds=1))
        return self._last

    def etag(self, moment: datetime) -> str:
        """The ETag of what was written at ``moment``, in the Table service's form."""
        text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
        return f"W/\"datetime'{quote(text)}'\""

    def blob_etag(self) -> str:
        """A fresh blob ETag (``"0x..."``, as the Blob service writes them)."""
        self._serial += 1
        return f'"0x8D{self._serial:013X}"'


async def pause() -> None:
    """Let other tasks run, as a network call would: concurrent requests interleave at each call."""
    await asyncio.sleep(0)
