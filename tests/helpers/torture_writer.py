"""Child process for the embedded torture test: runs a plan of writes (whole batches,
tests/helpers/batches.py) against a store until it is killed, and appends the number of
each step to an ack log once the call has returned, fsynced before the next call. The
parent SIGKILLs it at a random moment and checks the store against the log.

    python -m tests.helpers.torture_writer STORE PLAN.json START ACKLOG

Prints `start` once the store is open and `done` if the plan ends first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

import haima
from tests.helpers.batches import DIM, TORTURE_COLLECTIONS, apply, load_plan

#: Index in the background as soon as a collection pauses, and snapshot often, so that
#: kills also land in indexing steps and snapshot writes (and the deletion-log pruning
#: that follows them).
SETTINGS = haima.Settings(
    background_indexing=True, index_delay=0.05, max_unindexed=2_000, snapshot_interval=0.2
)


def main(store: str, plan: str, start: int, ack_log: str) -> None:
    ops = load_plan(Path(plan))
    client = haima.PersistentClient(store, settings=SETTINGS)
    collections = {
        name: client.get_collection(name, embedding_function=None) for name in TORTURE_COLLECTIONS
    }
    probe = np.ones((1, DIM), np.float32)
    acks = os.open(ack_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    print("start", flush=True)
    for n in range(start, len(ops)):
        col = collections[ops[n].collection]
        apply(col, ops[n])
        os.write(acks, f"{n}\n".encode())
        os.fsync(acks)
        # Reads between writes: the index is loaded and kept current in this process,
        # and the background indexer has work.
        col.query(query_embeddings=probe, n_results=1)
    print("done", flush=True)
    client.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
