"""Run the ``replicate`` function for one event in a process of its own and print its resident
memory just before, its peak RSS after and the peak of the Python heap while it ran, in KiB:

    python -m tests.replication.replicate_process <settings JSON> <Event Grid envelope JSON>
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import tracemalloc

from shared.composition import load_settings, open_container
from shared.replication.consumer import Replicator, replicate
from shared.replication.regions import Regions


def _current_rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def _run(environ: dict[str, str], envelope: dict[str, object]) -> dict[str, int]:
    container = await open_container(load_settings(environ))
    try:
        await container.get(Replicator)
        regions = await container.get(Regions)
        for name in regions.others:
            await (await regions.storage(name)).container.get_container_properties()  # warmed up
        before = _current_rss_kib()  # not the peak so far: the work's memory could hide below the imports' peak
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()  # the Python heap's own peak while replicating, below any earlier RSS peak
        await replicate(container, envelope)
        _, heap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {"before_kib": before, "peak_before_kib": peak_before, "heap_peak_kib": heap_peak // 1024,
                "after_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    finally:
        await container.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_run(json.loads(sys.argv[1]), json.loads(sys.argv[2])))))
