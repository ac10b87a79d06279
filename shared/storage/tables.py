"""Named shortcuts to a storage handle's tables (``storage.repos``), for both backends."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

from shared.storage.layout import TableSpec

T = TypeVar("T")


class TableSlot(Generic[T]):
    """The client of one table of :data:`shared.storage.layout.TABLES`, read from the handle's
    ``tables`` mapping. Assignable, so that a test can put a wrapper in its place and every service
    of the handle then goes through it."""

    def __init__(self, spec: TableSpec) -> None:
        self.name = spec.name

    @overload
    def __get__(self, handle: None, owner: type) -> TableSlot[T]: ...

    @overload
    def __get__(self, handle: object, owner: type) -> T: ...

    def __get__(self, handle: Any, owner: type) -> T | TableSlot[T]:
        if handle is None:
            return self
        table: T = handle.tables[self.name]
        return table

    def __set__(self, handle: Any, table: T) -> None:
        handle.tables[self.name] = table
