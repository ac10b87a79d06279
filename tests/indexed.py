"""The functions ``function_app.app`` indexes, by name. ``get_functions()`` may run once per app
object (a second call refuses the "duplicate" HTTP function), so every test shares this index."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def indexed_functions() -> dict[str, Any]:
    """Function name -> the indexed function (``get_user_function()``, ``get_trigger()``, ...)."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}
