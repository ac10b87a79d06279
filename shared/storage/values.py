"""Typed table values: sizes and offsets are always Edm.Int64.

The Tables SDK writes a Python ``int`` as Edm.Int32 and refuses one of 2^31 or more, and it reads
an Edm.Int64 back as an ``EntityProperty`` rather than an ``int``. Every size, offset or count a
row stores goes through :func:`int64` on the way in and :func:`read_int` on the way out, so a
200 GiB layer and a row written before this rule read the same way.
"""

from __future__ import annotations

import re
from typing import Any

from azure.data.tables import EdmType, EntityProperty

INT64_MAX = 2**63 - 1
_DECIMAL = re.compile(r"[0-9]+")  # ASCII only: str.isdigit and \d also accept "²" and "٣"


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


def parse_int64(text: str) -> int | None:
    """``text`` as a non-negative Int64 written in ASCII digits, or None for anything else
    (signs, spaces, other scripts' digits, values past 2^63-1, however many digits they have)."""
    if not _DECIMAL.fullmatch(text):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(INT64_MAX)):  # before int(): it refuses strings of 4,300+ digits
        return None
    value = int(digits)
    return value if value <= INT64_MAX else None
