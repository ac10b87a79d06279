"""Typed table values: sizes and offsets are always Edm.Int64.

The Tables SDK writes a Python ``int`` as Edm.Int32 and refuses one of 2^31 or more, and it reads
an Edm.Int64 back as an ``EntityProperty`` rather than an ``int``. Every size, offset or count a
row stores goes through :func:`int64` on the way in and :func:`read_int` on the way out, so a
200 GiB layer and a row written before this rule read the same way.
"""

from __future__ import annotations

from typing import Any

from azure.data.tables import EdmType, EntityProperty

INT64_MAX = 2**63 - 1


def int64(value: int) -> EntityProperty:
    """``value`` as an Edm.Int64 table property (0 .. 2^63-1)."""
    if isinstance(value, bool) or not 0 <= value <= INT64_MAX:
        raise ValueError(f"{value!r} is not a size a table can hold")
    return EntityProperty(int(value), EdmType.INT64)


def read_int(value: Any, default: int = 0) -> int:
    """An integer property as stored (Edm.Int32, Edm.Int64 or absent) as a plain ``int``."""
    if value is None:
        return default
    if isinstance(value, EntityProperty):
        return int(value.value)
    return int(value)
