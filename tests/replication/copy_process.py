"""Run one copy_blob in a process of its own and print its resident memory just
before (current), its peak RSS before and after, and the Python heap's peak while copying, in KiB:

    python -m tests.replication.copy_process <source connection> <source prefix> <target connection>
        <target prefix> <blob name> <size>
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import tracemalloc

from shared.replication.copy import copy_blob
from shared.storage.accounts import StorageAccount
from shared.storage.clients import StorageClients


def _current_rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def _copy(arguments: list[str]) -> dict[str, int]:
    source_connection, source_prefix, target_connection, target_prefix, name, size = arguments
    source = StorageClients(StorageAccount(prefix=source_prefix, connection_string=source_connection))
    target = StorageClients(StorageAccount(prefix=target_prefix, connection_string=target_connection))
    await target.ensure()
    await source.container.get_blob_client(name).get_blob_properties()  # connections and imports warmed up
    await target.container.get_container_properties()
    before = _current_rss_kib()  # not the peak so far: a copy's memory could hide below the imports' peak
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()  # the Python heap's own peak while copying, below any earlier RSS peak
    await copy_blob(source, name, target, name, int(size), metadata={"digest": "big"})
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    await source.close()
    await target.close()
    return {"before_kib": before, "peak_before_kib": peak_before, "heap_peak_kib": heap_peak // 1024,
            "after_kib": after}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_copy(sys.argv[1:]))))
