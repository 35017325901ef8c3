"""Torture, server: four clients write whole batches to `haima run` at once, the server is
SIGKILLed at a random moment, restarted on the same store, and checked over HTTP against
what each client had acknowledged (a call that returned 2xx): every acknowledged batch
whole, each client's call in flight whole or absent, and vector, filtered and keyword
queries that agree with brute force over what is stored (tests/helpers/crash_check.py).
The clients then carry on from what the store holds.

A few rounds here; `make torture` runs more (HAIMA_TORTURE_SERVER_ROUNDS).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")

import haima
from tests.helpers.batches import TORTURE_COLLECTIONS, Op, apply, make_plan
from tests.helpers.crash_check import Stream, verify
from tests.helpers.server import ServerProcess
from tests.helpers.torture import SIZES, Tally, rounds

ROUNDS = rounds(3, "HAIMA_TORTURE_SERVER_ROUNDS")
WRITERS = 4
SEED = 1900
#: Steps planned per writer and round: more than one gets through before the kill.
STEPS_PER_ROUND = 300
#: Live records per writer's plan.
MAX_RECORDS = 5_000
SERVER_ARGS = ("--no-preload", "--no-access-log")


class Writer(threading.Thread):
    """One client running its plan from step `start` until the server goes away;
    `acked` counts the steps whose call returned."""

    def __init__(self, url: str, ops: list[Op], start: int) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ops = ops
        self.acked = start
        self.error: BaseException | None = None
        self.finished = False

    def run(self) -> None:
        try:
            with haima.HttpClient.from_url(self.url) as client:
                collections = {
                    name: client.get_collection(name, embedding_function=None)
                    for name in TORTURE_COLLECTIONS
                }
                for n in range(self.acked, len(self.ops)):
                    apply(collections[self.ops[n].collection], self.ops[n])
                    self.acked = n + 1
            self.finished = True
        except haima.ServerUnavailableError:
            pass  # the server was killed: this writer's round is over
        except BaseException as exc:  # reported by the test
            self.error = exc


def write_until_killed(
    server: ServerProcess, plans: list[list[Op]], starts: list[int], delay: float
) -> list[int]:
    """Run every writer from its start step, SIGKILL the server `delay` seconds later,
    and return each writer's acknowledged steps."""
    writers = [Writer(server.url, ops, start) for ops, start in zip(plans, starts, strict=True)]
    for writer in writers:
        writer.start()
    deadline = time.monotonic() + delay
    for writer in writers:  # the kill comes at the deadline, or earlier if one stops
        writer.join(timeout=max(0.0, deadline - time.monotonic()))
    early = [w for w in writers if not w.is_alive()]
    server.kill()
    for writer in writers:
        writer.join(timeout=120)
        assert not writer.is_alive(), "a writer did not notice the server's death"
        assert writer.error is None, f"a write failed: {writer.error!r}"
    assert not early, f"{len(early)} writers stopped before the kill (plan too short?)"
    return [w.acked for w in writers]


@pytest.mark.timeout(1800)
def test_server_sigkills_under_four_writers_keep_acknowledged_batches(tmp_path: Path) -> None:
    store = tmp_path / "store"
    plans = [
        make_plan(
            SEED + w,
            ROUNDS * STEPS_PER_ROUND,
            SIZES,
            {},
            builds=True,
            upserts=True,
            collections=list(TORTURE_COLLECTIONS),
            max_records=MAX_RECORDS,
            first_batch=w,
            batch_stride=WRITERS,
        )
        for w in range(WRITERS)
    ]
    server = ServerProcess(store, *SERVER_ARGS).start()
    try:
        with haima.HttpClient.from_url(server.url) as client:
            for name, configuration in TORTURE_COLLECTIONS.items():
                client.create_collection(name, configuration, embedding_function=None)
        rng = np.random.default_rng(SEED)
        tally = Tally()
        steps = [0] * WRITERS
        for round_ in range(ROUNDS):
            acked = write_until_killed(server, plans, steps, float(rng.uniform(0.5, 4.0)))
            tally.kills += 1
            server = ServerProcess(store, *SERVER_ARGS).start()  # on the same store
            with haima.HttpClient.from_url(server.url) as client:
                streams = [Stream(ops, n, n + 1) for ops, n in zip(plans, acked, strict=True)]
                result = verify(client, streams, seed=round_)
            for ops, start, n, step in zip(plans, steps, acked, result.steps, strict=True):
                tally.writer(ops, start, n, step)
            tally.checked(result)
            steps = result.steps
    finally:
        server.kill()
    print(tally)
    assert tally.acknowledged >= ROUNDS * WRITERS, tally
