"""Durability: acknowledged writes survive SIGKILL, batches are atomic, index snapshots are
a disposable cache, and deleted data does not linger.

The crash tests run a real child process (tests/helpers/kill_writer.py) that prints a line
before and after every write; the parent kills it with SIGKILL right after reading a
chosen line, reopens the store and checks it against the plan the child followed.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest

import haima
from tests.helpers.batches import COLLECTION, DIM, Op, batch_data, make_plan, save_plan
from tests.helpers.crash_check import QUIET, Stream, verify
from tests.helpers.proc import spawn
from tests.helpers.reference import check_query_row

#: Lines of the writer after which a kill may land (see tests/helpers/kill_writer.py).
KILL_POINTS = ["begin", "txn", "write2", "write3", "commit", "after-commit", "acked"]


# -- the child process ------------------------------------------------------------------------


def child(args: list[str], log: Path) -> AbstractContextManager[subprocess.Popen[str]]:
    """The crash-test writer as a child process (see `spawn`)."""
    return spawn("tests.helpers.kill_writer", args, log)


def lines(stream: IO[str] | None) -> Iterator[tuple[str, int]]:
    """(word, number) for each line the child prints; ("eof", -1) when it stops."""
    assert stream is not None
    for line in stream:
        word, _, number = line.strip().partition(" ")
        yield word, int(number) if number else -1
    yield "eof", -1


def run_child(
    store: Path,
    plan: Path,
    start: int,
    index_type: str,
    interval: float,
    kill_at: tuple[str, int] | None,
) -> tuple[int, bool]:
    """Run the plan from step `start`; SIGKILL the child right after it prints
    `kill_at` (e.g. ("write3", 4): inside step 4's transaction; see kill_writer), or at
    its first line about a later step if it never prints that. ("after-commit", N) kills
    at the first line after step N's first COMMIT: once that commit is done, an engine
    that splits a step into several transactions is caught with part of it written.
    Returns the number of steps acknowledged (acked lines read) and whether the child
    was killed."""
    acked = start
    committed = False
    log = store.parent / "child-stderr.log"
    with child([str(store), str(plan), str(start), index_type, str(interval)], log) as proc:
        for word, number in lines(proc.stdout):
            if word == "acked":
                acked = number + 1
            hit = False
            if kill_at is not None:
                target_word, target = kill_at
                hit = number > target or (
                    committed if target_word == "after-commit" else (word, number) == kill_at
                )
                committed = committed or (word, number) == ("commit", target)
            if hit:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                # The child may have finished on its own just before the signal.
                assert proc.returncode in (-signal.SIGKILL, 0)
                return acked, proc.returncode != 0
            if word == "done":
                assert proc.wait() == 0
                return acked, False
            if word == "eof":
                pytest.fail(f"writer exited with {proc.wait()}:\n{log.read_text()}")
    raise AssertionError("unreachable")


# -- checking a store against the plan --------------------------------------------------------


def verify_store(store: Path, ops: list[Op], acked: int) -> int:
    """Reopen `store` and check it holds exactly the state after some m ≥ `acked` steps
    of `ops` (tests/helpers/crash_check.py: every batch whole, none partial, queries
    agree with brute force). Returns m."""
    with haima.PersistentClient(store, settings=QUIET) as client:
        return verify(client, [Stream(ops, acked, len(ops))], seed=acked).steps[0]


def crash_cycles(
    tmp_path: Path,
    ops: list[Op],
    index_type: str,
    interval: float,
    kills: Callable[[int], tuple[str, int]],
) -> list[tuple[int, bool]]:
    """Run the plan in a child, killing it at `kills(m)` (m: steps in the store) and
    restarting it from the state found, until a child finishes the plan. `interval` is
    the child's snapshot interval."""
    store = tmp_path / "store"
    plan = tmp_path / "plan.json"
    save_plan(plan, ops)
    m = 0
    history = []
    for cycle in range(12):
        kill_at = kills(m) if cycle < 6 and m < len(ops) else None
        acked, killed = run_child(store, plan, m, index_type, interval, kill_at)
        m = verify_store(store, ops, acked)
        history.append((acked, killed))
        if (kill_at is None or not killed) and m == len(ops):
            return history
    raise AssertionError(f"the plan never completed: {history}")


# -- crash tests ------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_sigkill_keeps_every_acknowledged_batch_whole(tmp_path: Path) -> None:
    """Kills at random moments, once in the middle of a 20k-record batch; every kill is
    followed by a full check, and the next child continues from what the store holds."""
    big_step = 3
    ops = make_plan(11, 26, [1, 2, 7, 40, 150, 600, 2500], {big_step: 20_000}, builds=False)
    rng = np.random.default_rng(2024)
    # Inside the 20k batch's transaction (its rows written, vectors being written), as
    # it commits, and once it has committed.
    planned = [("write3", big_step), ("commit", big_step), ("after-commit", big_step)]
    kills = kill_schedule(planned, rng, span=6, steps=len(ops))

    # Snapshots only when a process closes the store (here, after each check): a reopened
    # store must replay the deletions logged after its snapshot.
    history = crash_cycles(tmp_path, ops, "flat", 3600.0, kills)
    assert sum(killed for _, killed in history) >= 4, history


def kill_schedule(
    planned: list[tuple[str, int]], rng: np.random.Generator, span: int, steps: int
) -> Callable[[int], tuple[str, int]]:
    """Where the next child dies, given the step it starts at: the planned kill points
    first (those not yet passed), then seeded random ones within `span` steps."""

    def next_kill(start: int) -> tuple[str, int]:
        while planned:
            word, step = planned.pop(0)
            if step >= start:
                return word, step
        return str(rng.choice(KILL_POINTS)), int(rng.integers(start, min(start + span, steps)))

    return next_kill


@pytest.mark.timeout(300)
def test_sigkill_during_background_hnsw_indexing(tmp_path: Path) -> None:
    """An hnsw collection indexed by the background thread (and by build_index steps)
    is killed while indexing; reopened, it answers queries correctly."""
    ops = make_plan(5, 18, [50, 300, 1200, 2500], {1: 3000}, builds=True)
    builds = [n for n, op in enumerate(ops) if op.kind == "build"]
    assert builds, "the plan needs a build_index step"
    rng = np.random.default_rng(99)
    # While the background thread indexes the first 3000 vectors (a query after each step
    # loads the index and wakes it); inside build_index; once its snapshot is written and
    # the deletion log pruned.
    planned = [("txn", 2), ("begin", builds[0]), ("after-commit", builds[-1])]
    kills = kill_schedule(planned, rng, span=5, steps=len(ops))

    # Snapshots every 50 ms while the collection changes: kills also land around them.
    history = crash_cycles(tmp_path, ops, "hnsw", 0.05, kills)
    assert sum(killed for _, killed in history) >= 3, history
    # Finish the ANN index in this process and check once more, from its snapshot too.
    with haima.PersistentClient(tmp_path / "store", settings=QUIET) as client:
        client.get_collection(COLLECTION, embedding_function=None).build_index()
    verify_store(tmp_path / "store", ops, len(ops))


@pytest.mark.timeout(300)
def test_one_large_add_is_one_transaction(tmp_path: Path) -> None:
    """A reader polling count() while another process adds 200,000 records sees the old
    count or the new one, never anything between."""
    store = tmp_path / "store"
    total = 200_000
    with haima.PersistentClient(store, settings=QUIET) as reader:
        col = reader.create_collection("bulk", embedding_function=None)
        col.add(ids=[f"pre-{i}" for i in range(10)], embeddings=np.ones((10, 8), np.float32))
        old, new = 10, 10 + total
        observed: list[int] = []
        pairs: list[int] = []
        with child(["--bulk", str(store), str(total)], tmp_path / "bulk.log") as proc:
            stream = lines(proc.stdout)
            assert next(stream) == ("begin", -1), (tmp_path / "bulk.log").read_text()
            while True:
                observed.append(col.count())
                # One statement, one snapshot: both ends of the batch or neither.
                pairs.append(len(col.get(ids=["bulk-0", f"bulk-{total - 1}"])["ids"]))
                if observed[-1] != old or proc.poll() is not None:
                    observed.append(col.count())
                    break
            assert next(stream) == ("acked", -1), (tmp_path / "bulk.log").read_text()
            assert proc.wait() == 0
    assert set(observed) <= {old, new}, f"saw a partial batch: {sorted(set(observed))}"
    assert observed[-1] == new
    assert set(pairs) <= {0, 2}
    assert observed.count(old) >= 1  # the reader did look while the add was running


# -- the index snapshot is a cache ------------------------------------------------------------


def _corrupt(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "deleted":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "truncated_to_header":
        path.write_bytes(data[:12])
    elif how == "flipped_middle":
        middle = len(data) // 2
        data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
        path.write_bytes(data)
    elif how == "header_length":
        data[8:16] = (2**62).to_bytes(8, "little")  # an absurd header length
        path.write_bytes(data)
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    else:
        raise ValueError(how)


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
@pytest.mark.parametrize(
    "how",
    ["deleted", "truncated", "truncated_to_header", "flipped_middle", "header_length", "garbage"],
)
def test_lost_or_corrupt_snapshot_is_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, index_type: str, how: str
) -> None:
    store = tmp_path / "store"
    vectors = np.random.default_rng(3).standard_normal((2000, 8)).astype(np.float32)
    queries = np.random.default_rng(4).standard_normal((25, 8)).astype(np.float32)
    ids = [f"r{i}" for i in range(len(vectors))]
    with haima.PersistentClient(store, settings=QUIET) as client:
        col = client.create_collection(
            "snapshots", configuration={"index": {"type": index_type}}, embedding_function=None
        )
        col.add(ids=ids, embeddings=vectors, metadatas=[{"i": i} for i in range(len(ids))])
        col.delete(ids=ids[::7])
        col.build_index()
        col.delete(where={"i": {"$lt": 100}})
        before = col.query(query_embeddings=queries, n_results=10)
        collection_id = col.id
    snapshot = store / "indexes" / collection_id / "index.hidx"
    assert snapshot.is_file()
    live = {i: v for n, (i, v) in enumerate(zip(ids, vectors, strict=True)) if n % 7 and n >= 100}
    assert before["distances"] is not None
    for q, got, dists in zip(queries, before["ids"], before["distances"], strict=True):
        check_query_row(got, dists, q, live, 10)

    _corrupt(snapshot, how)
    caplog.set_level(logging.WARNING, logger="haima")
    with haima.PersistentClient(store, settings=QUIET) as client:
        col = client.get_collection("snapshots", embedding_function=None)
        after = col.query(query_embeddings=queries, n_results=10)
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "haima" and r.levelno == logging.WARNING
    ]
    assert any("snapshots" in w and "rebuild" in w for w in warnings), warnings
    assert after["ids"] == before["ids"]
    assert np.allclose(after["distances"], before["distances"], atol=1e-5)  # type: ignore[arg-type]

    # The rebuilt index was saved on close: the next open reads it without complaint.
    caplog.clear()
    with haima.PersistentClient(store, settings=QUIET) as client:
        col = client.get_collection("snapshots", embedding_function=None)
        col.build_index()
        again = col.query(query_embeddings=queries, n_results=10)
    assert not [r for r in caplog.records if r.name == "haima" and r.levelno >= logging.WARNING]
    assert again["ids"] == before["ids"]


def test_corrupt_snapshot_header_is_detected(tmp_path: Path) -> None:
    """A snapshot whose header claims a later seq than it covers must not be trusted:
    the deletions logged after its real seq would be skipped."""
    store = tmp_path / "store"
    plan = tmp_path / "plan.json"
    ops = [Op("add", 0, 100), Op("add", 1, 100), Op("delete_ids", 0, 100)]
    save_plan(plan, ops)
    # Two adds (the child dies before the delete); closing here writes a snapshot of seq 2.
    assert run_child(store, plan, 0, "flat", 3600.0, ("begin", 2)) == (2, True)
    with haima.PersistentClient(store, settings=QUIET) as client:
        col = client.get_collection(COLLECTION, embedding_function=None)
        col.query(query_embeddings=np.ones((1, DIM), np.float32))
        snapshot = store / "indexes" / col.id / "index.hidx"
    # The delete commits (seq 3) and the process dies before writing a snapshot.
    assert run_child(store, plan, 2, "flat", 3600.0, ("acked", 2)) == (3, True)
    data = snapshot.read_bytes()
    assert data.count(b'"seq": 2') == 1
    snapshot.write_bytes(data.replace(b'"seq": 2', b'"seq": 3'))  # one flipped bit
    with haima.PersistentClient(store, settings=QUIET) as client:
        col = client.get_collection(COLLECTION, embedding_function=None)
        assert col.count() == 100
        res = col.query(query_embeddings=batch_data(0, 100, 1).embeddings[:10], n_results=5)
    assert [len(row) for row in res["ids"]] == [5] * 10


# -- deletes: tombstones, compaction, reclaimed space ----------------------------------------


def _check_queries(col: haima.Collection, queries: np.ndarray, live: dict[str, Any]) -> float:
    res = col.query(query_embeddings=queries, n_results=10)
    assert res["distances"] is not None
    recalls = [
        check_query_row(ids, dists, q, live, 10, exact=False)
        for q, ids, dists in zip(queries, res["ids"], res["distances"], strict=True)
    ]
    return float(np.mean(recalls))


def test_tombstones_and_compaction_keep_hnsw_results_correct(tmp_path: Path) -> None:
    store = tmp_path / "store"
    n = 4000
    vectors = np.random.default_rng(8).standard_normal((n, DIM)).astype(np.float32)
    ids = [f"r{i}" for i in range(n)]
    rng = np.random.default_rng(9)
    doomed = rng.permutation(n)[: n * 3 // 4]
    by_ids, by_where = doomed[: len(doomed) // 2], doomed[len(doomed) // 2 :]
    groups = np.zeros(n, np.int64)
    groups[by_where] = 1
    kept = np.setdiff1d(np.arange(n), doomed)
    live = {ids[i]: vectors[i] for i in kept}
    queries = np.concatenate([vectors[doomed[:30]], vectors[rng.choice(kept, 30, replace=False)]])

    with haima.PersistentClient(store, settings=QUIET) as client:
        col = client.create_collection(
            "tombs", configuration={"index": {"type": "hnsw"}}, embedding_function=None
        )
        col.add(ids=ids, embeddings=vectors, metadatas=[{"g": int(g)} for g in groups])
        col.build_index()
        snapshot = store / "indexes" / col.id / "index.hidx"
        full_size = snapshot.stat().st_size

        col.delete(ids=[ids[i] for i in by_ids])
        col.delete(where={"g": 1})
        assert col.count() == len(live)
        # Tombstoned, not yet compacted: deleted records never come back, rows stay full.
        assert _check_queries(col, queries, live) >= 0.9
        assert not col.get(ids=[ids[i] for i in doomed[:50]])["ids"]

        col.build_index()  # compacts: the ANN part is rebuilt without the tombstones
        assert snapshot.stat().st_size < full_size / 2
        assert _check_queries(col, queries, live) >= 0.9

    with haima.PersistentClient(store, settings=QUIET) as client:
        col = client.get_collection("tombs", embedding_function=None)
        assert col.count() == len(live)
        assert _check_queries(col, queries, live) >= 0.9


def _store_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in store.glob("haima.sqlite3*"))


def _add_big_collection(client: haima.Client, n: int) -> None:
    big = client.create_collection("big", embedding_function=None)
    big.add(
        ids=[f"r{i}" for i in range(n)],
        embeddings=np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32),
        documents=[f"document number {i} about nothing" for i in range(n)],
        metadatas=[{"i": i, "tag": f"t{i % 10}"} for i in range(n)],
    )


def test_deleting_a_collection_reclaims_sqlite_space(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with haima.PersistentClient(store, settings=QUIET) as client:
        keep = client.create_collection("keep", embedding_function=None)
        keep.add(ids=[f"k{i}" for i in range(200)], embeddings=np.ones((200, 8), np.float32))
    baseline = _store_bytes(store)

    n = 20_000
    with haima.PersistentClient(store, settings=QUIET) as client:
        _add_big_collection(client, n)
    full = _store_bytes(store)
    assert full > baseline + 1_000_000

    with haima.PersistentClient(store, settings=QUIET) as client:
        client.delete_collection("big")
        assert client.get_collection("keep", embedding_function=None).count() == 200
    reclaimed = _store_bytes(store)
    # The deleted collection's pages are returned to the file system, not just freed.
    assert reclaimed < baseline + (full - baseline) // 4, (baseline, full, reclaimed)

    # And the space is reused: the same data again does not grow the file past before.
    with haima.PersistentClient(store, settings=QUIET) as client:
        _add_big_collection(client, n)
    assert _store_bytes(store) <= full * 1.1
