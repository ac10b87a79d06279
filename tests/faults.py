"""Faults the end-to-end tests inject into a registry process: ``python -m tests.faults <fault>
<uvicorn arguments>`` installs the fault, then runs uvicorn as ``python -m uvicorn`` would.

Production code knows nothing of them: each fault wraps a function of the process it runs in.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn

from shared.events.outbox import Outbox


def kill_after_commit() -> None:
    """SIGKILL the process right after a transaction that committed events (a manifest and its
    outbox rows), before they are published, to prove the outbox loses nothing."""
    committed = Outbox.committed

    def killing(self: Outbox, partition: str, events: Sequence[Any]) -> None:
        if events:
            os.kill(os.getpid(), signal.SIGKILL)
        committed(self, partition, events)

    Outbox.committed = killing  # type: ignore[method-assign]


def kill_mid_replication(copies: int = 2) -> None:
    """SIGKILL the process once geo-replication has copied ``copies`` blobs into another region,
    in the middle of replicating an image of more blobs than that."""
    from shared.replication import transfer

    copy = transfer.copy_blob
    done = 0

    async def killing(*args: Any, **kwargs: Any) -> None:
        nonlocal done
        await copy(*args, **kwargs)
        done += 1
        if done >= copies:
            os.kill(os.getpid(), signal.SIGKILL)

    transfer.copy_blob = killing  # type: ignore[assignment]


FAULTS: dict[str, Callable[[], None]] = {"kill_after_commit": kill_after_commit,
                                         "kill_mid_replication": kill_mid_replication}


if __name__ == "__main__":
    FAULTS[sys.argv[1]]()
    uvicorn.main(sys.argv[2:])
