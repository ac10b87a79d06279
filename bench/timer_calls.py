"""The storage calls of a cold and a warm run of each timer function, driven through the indexed
function app as the Functions host calls it, on a fresh Azurite:

    python -m bench.timer_calls

A cold run is the process's first (it builds the container: creates the blob container, tables
and queues if missing); a warm run reuses it and makes only the calls its work needs.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

from azure.functions.timer import TimerRequest

from scripts.azurite import Azurite
from shared.storage import clients


async def _count(names: list[str]) -> list[tuple[str, int, int]]:
    import function_app  # after the environment is set: indexing reads the settings

    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    calls: list[str] = []
    send = clients.BoundedTransport.send

    async def counted(self: Any, request: Any, **kwargs: Any) -> Any:
        calls.append(request.method)
        return await send(self, request, **kwargs)

    clients.BoundedTransport.send = counted  # type: ignore[method-assign]
    counts = []
    for name in names:
        runs = []
        for _ in range(2):
            calls.clear()
            await functions[name].get_user_function()(TimerRequest(past_due=False))
            runs.append(len(calls))
        counts.append((name, runs[0], runs[1]))
    return counts


def main() -> None:
    """Print the calls of each timer's first and second run in one process."""
    with Azurite() as azurite:
        os.environ["REGISTRY_STORAGE_CONNECTION_STRING"] = azurite.connection_string
        os.environ["REGISTRY_STORAGE_PREFIX"] = "t" + uuid.uuid4().hex[:8]
        from shared.composition import TIMERS

        for name, cold, warm in asyncio.run(_count([t.name for t in TIMERS])):
            print(f"{name}: first run {cold} storage calls, next run {warm}")


if __name__ == "__main__":
    main()
