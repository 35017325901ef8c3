"""Child process for the crash tests: runs a plan of writes against a store and prints
`begin N` before and `acked N` after each step (flushed), so the parent can SIGKILL it at
chosen moments and then check what survived.

Inside a step it also reports how far the SQLite transaction has got, from a trace of the
statements this thread runs: `txn N` when it begins, `writeK N` when the K-th distinct
writing statement starts (write2 is after the first one finished: the transaction has
changed rows) and `commit N` when COMMIT starts. Killing right after one of those lines
lands inside the transaction or its commit.

    python -m tests.helpers.kill_writer PATH PLAN.json START INDEX_TYPE SNAPSHOT_INTERVAL

Also `python -m tests.helpers.kill_writer --bulk PATH N`: one `add` of N records (dim 8)
to the collection `bulk`, with `begin` / `acked` around it.
"""

from __future__ import annotations

import re
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

import haima
from tests.helpers.batches import COLLECTION, DIM, apply, load_plan


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Tracer:
    """Reports transaction progress of the current step (main thread only: the
    background indexer shares the connection)."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.writes: list[str] = []

    def start(self, step: int | None) -> None:
        self.step = step
        self.writes = []

    def __call__(self, statement: str) -> None:
        if self.step is None or threading.current_thread() is not threading.main_thread():
            return
        head = statement.lstrip().upper()
        if head.startswith("BEGIN IMMEDIATE"):
            emit(f"txn {self.step}")
        elif head.startswith("COMMIT"):
            emit(f"commit {self.step}")
        elif head.startswith(("INSERT", "UPDATE", "DELETE")):
            # The statement's first words name it; the rest holds the (expanded) values.
            key = " ".join(re.split(r"[\s(]+", head, maxsplit=3)[:3])
            if key not in self.writes:
                self.writes.append(key)
                emit(f"write{len(self.writes)} {self.step}")


TRACER = Tracer()
_connect = sqlite3.connect


def _traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    conn: sqlite3.Connection = _connect(*args, **kwargs)
    conn.set_trace_callback(TRACER)
    return conn


sqlite3.connect = _traced_connect  # type: ignore[assignment]  # before haima opens its store


def run_plan(path: str, plan: str, start: int, index_type: str, interval: float) -> None:
    ops = load_plan(Path(plan))
    # A short snapshot interval makes the background thread write snapshots (and prune
    # the deletion log) between steps, so kills also land around snapshot writes.
    settings = haima.Settings(background_indexing=True, snapshot_interval=interval)
    client = haima.PersistentClient(path, settings=settings)
    col = client.get_or_create_collection(
        COLLECTION,
        configuration={"index": {"type": index_type, "ef_construction": 40}},
        embedding_function=None,
    )
    probe = np.ones((1, DIM), np.float32)
    emit(f"start {start}")
    for n in range(start, len(ops)):
        emit(f"begin {n}")
        TRACER.start(n)
        apply(col, ops[n])
        TRACER.start(None)
        emit(f"acked {n}")
        # Reading loads the collection's index, so later writes also go to it and the
        # background indexer has work.
        col.query(query_embeddings=probe, n_results=1)
    emit("done")
    client.close()


def run_bulk(path: str, count: int) -> None:
    client = haima.PersistentClient(path, settings=haima.Settings(background_indexing=False))
    col = client.get_collection("bulk", embedding_function=None)
    vectors = np.random.default_rng(7).standard_normal((count, 8)).astype(np.float32)
    ids = [f"bulk-{i}" for i in range(count)]
    emit("begin")
    col.add(ids=ids, embeddings=vectors)
    emit("acked")
    client.close()


def main(argv: list[str]) -> None:
    if argv[0] == "--bulk":
        run_bulk(argv[1], int(argv[2]))
    else:
        run_plan(argv[0], argv[1], int(argv[2]), argv[3], float(argv[4]))


if __name__ == "__main__":
    main(sys.argv[1:])
