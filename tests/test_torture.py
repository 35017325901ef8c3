"""Torture, embedded: a writer process is SIGKILLed at random moments, round after round,
on one store; after each kill a fresh process reopens the store and checks it against the
writer's fsynced ack log (tests/helpers/crash_check.py): every acknowledged batch whole,
the batch in flight whole or absent, and vector, filtered and keyword queries that agree
with brute force over what is stored.

A handful of rounds here; `make torture` runs 100 (HAIMA_TORTURE_ROUNDS).
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

import haima
from tests.helpers.batches import (
    TORTURE_COLLECTIONS,
    Op,
    apply,
    batch_data,
    make_plan,
    save_plan,
    state_after,
)
from tests.helpers.crash_check import QUIET, Stream, Verified, verify
from tests.helpers.proc import spawn
from tests.helpers.torture import SIZES, Tally, rounds

ROUNDS = rounds(5)
SEED = 19
#: Steps planned per round: more than a writer gets through before its kill (about 40
#: per second here), so a plan never runs out.
STEPS_PER_ROUND = 400
#: Live records the plan keeps to, so that 100 rounds stay quick to check.
MAX_RECORDS = 20_000


def read_acks(log: Path, start: int) -> int:
    """The steps acknowledged: the writer appends start, start + 1, … one per line."""
    if not log.exists():
        return start
    numbers = [int(line) for line in log.read_text().split("\n")[:-1]]  # whole lines
    assert numbers == list(range(start, start + len(numbers))), numbers
    return start + len(numbers)


def write_until_killed(store: Path, plan: Path, start: int, delay: float, tmp: Path) -> int:
    """Run the writer from step `start` and SIGKILL it `delay` seconds after it starts
    (a moment chosen at random: while Python starts, while the store opens, or while
    it writes). Returns the steps acknowledged."""
    acks = tmp / f"acks-{start}.log"
    log = tmp / "writer.log"
    args = [str(store), str(plan), str(start), str(acks)]
    with spawn("tests.helpers.torture_writer", args, log) as proc:
        try:
            code = proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            code = proc.wait()
    assert code == -signal.SIGKILL, f"the writer ended by itself ({code}):\n{log.read_text()}"
    return read_acks(acks, start)


def check_in_fresh_process(store: Path, plan: Path, acked: int, seed: int, tmp: Path) -> Verified:
    """crash_check in a new process: the store holds the state after `acked` or
    `acked + 1` steps (the ack is logged before the next call starts)."""
    log = tmp / "check.log"
    args = [str(store), str(plan), str(acked), str(acked + 1), str(seed)]
    with spawn("tests.helpers.crash_check", args, log) as proc:
        assert proc.stdout is not None
        out = proc.stdout.read()
        code = proc.wait()
    assert code == 0, f"check after {acked} acknowledged steps failed:\n{log.read_text()}"
    return Verified(**json.loads(out))


@pytest.mark.timeout(1800)
def test_random_sigkills_keep_acknowledged_batches_whole(tmp_path: Path) -> None:
    store = tmp_path / "store"
    plan = tmp_path / "plan.json"
    ops: list[Op] = make_plan(
        SEED,
        ROUNDS * STEPS_PER_ROUND,
        SIZES,
        {},
        builds=True,
        upserts=True,
        collections=list(TORTURE_COLLECTIONS),
        max_records=MAX_RECORDS,
    )
    save_plan(plan, ops)
    with haima.PersistentClient(store, settings=QUIET) as client:
        for name, configuration in TORTURE_COLLECTIONS.items():
            client.create_collection(name, configuration, embedding_function=None)

    rng = np.random.default_rng(SEED)
    tally = Tally()
    step = 0
    for round_ in range(ROUNDS):
        acked = write_until_killed(store, plan, step, float(rng.uniform(0.3, 4.0)), tmp_path)
        tally.kills += 1
        result = check_in_fresh_process(store, plan, acked, round_, tmp_path)
        tally.writer(ops, step, acked, result.steps[0])
        tally.checked(result)
        step = result.steps[0]
    print(tally)
    # The kills landed among writes, not only before the first one.
    assert tally.acknowledged >= ROUNDS, tally


def test_the_check_catches_partial_and_unacknowledged_batches(tmp_path: Path) -> None:
    """The torture's check fails on the damage it looks for: a batch missing a record, a
    batch half updated, and more steps in the store than the writer could have reached."""
    ops = make_plan(
        7, 30, [3, 10, 40], {}, builds=False, upserts=True, collections=list(TORTURE_COLLECTIONS)
    )
    with haima.PersistentClient(tmp_path / "store", settings=QUIET) as client:
        cols = {
            name: client.create_collection(name, configuration, embedding_function=None)
            for name, configuration in TORTURE_COLLECTIONS.items()
        }
        for op in ops[:20]:
            apply(cols[op.collection], op)
        assert verify(client, [Stream(ops, 20, 21)], seed=0).steps == [20]
        with pytest.raises(AssertionError, match="not the state after any"):
            verify(client, [Stream(ops, 18, 19)], seed=0)  # two steps past the last ack

        live = state_after(ops, 20)
        batch, (size, version) = max(live.items(), key=lambda item: item[1][0])
        home = cols[next(op.collection for op in ops if op.batch == batch)]
        data = batch_data(batch, size, version + 1)
        home.update(ids=data.ids[:1], metadatas=[{"v": version + 1}])
        with pytest.raises(AssertionError, match="partly updated"):
            verify(client, [Stream(ops, 20, 21)], seed=0)
        home.update(ids=data.ids[:1], metadatas=[{"v": version}])
        home.delete(ids=data.ids[:1])
        with pytest.raises(AssertionError, match="not the state after any"):
            verify(client, [Stream(ops, 20, 21)], seed=0)
