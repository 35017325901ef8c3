"""The server under concurrent clients, and after being killed mid-write."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")

import haima
from haima.backends.http import ServerUnavailableError
from tests.helpers.server import ServerProcess

DIM = 16
CLIENTS = 8
REQUESTS_PER_CLIENT = 30
BATCH = 5


def _vectors(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def test_concurrent_clients_mixed_add_and_query(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "store", "--no-preload", "--no-access-log") as server:
        with haima.HttpClient.from_url(server.url) as setup:
            setup.create_collection("load", embedding_function=None)

        def work(worker: int) -> list[str]:
            acknowledged: list[str] = []
            with haima.HttpClient.from_url(server.url) as client:
                col = client.get_collection("load", embedding_function=None)
                for step in range(REQUESTS_PER_CLIENT):
                    if step % 2 == 0:
                        ids = [f"w{worker}-{step}-{i}" for i in range(BATCH)]
                        col.add(
                            ids=ids,
                            embeddings=_vectors(worker * 1000 + step, BATCH),
                            metadatas=[{"worker": worker, "step": step}] * BATCH,
                        )
                        acknowledged += ids
                    else:
                        hits = col.query(
                            query_embeddings=_vectors(step, 1),
                            n_results=3,
                            where={"worker": worker},
                        )
                        # Only this worker's records, and it has written some already.
                        assert hits["ids"][0]
                        assert all(i.startswith(f"w{worker}-") for i in hits["ids"][0])
            return acknowledged

        with ThreadPoolExecutor(CLIENTS) as pool:
            written = [i for ids in pool.map(work, range(CLIENTS)) for i in ids]

        with haima.HttpClient.from_url(server.url) as check:
            col = check.get_collection("load", embedding_function=None)
            assert col.count() == len(written) == CLIENTS * REQUESTS_PER_CLIENT // 2 * BATCH
            assert sorted(col.get(ids=written)["ids"]) == sorted(written)


def test_sigkill_during_writes_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    store = tmp_path / "store"
    server = ServerProcess(store, "--no-preload", "--no-access-log").start()
    acknowledged: list[list[str]] = []
    enough = threading.Event()
    stopped = threading.Event()

    def writer() -> None:
        with haima.HttpClient.from_url(server.url) as client:
            col = client.get_or_create_collection("crash", embedding_function=None)
            batch = 0
            while True:
                ids = [f"b{batch}-{i}" for i in range(50)]
                try:
                    col.add(ids=ids, embeddings=_vectors(batch, 50))
                except ServerUnavailableError:
                    break
                acknowledged.append(ids)
                batch += 1
                if batch >= 20:
                    enough.set()
        stopped.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert enough.wait(120), "the writer made no progress"
        server.kill()  # SIGKILL while the writer keeps sending
        assert stopped.wait(120)
    finally:
        server.kill()
        thread.join()

    with ServerProcess(store, "--no-preload") as again, haima.HttpClient.from_url(again.url) as c:
        col = c.get_collection("crash", embedding_function=None)
        stored = set(col.get()["ids"])
        for ids in acknowledged:
            assert set(ids) <= stored
        # Whatever was in flight is there whole or not at all.
        batches = {i.split("-")[0] for i in stored}
        for name in batches:
            assert sum(1 for i in stored if i.startswith(f"{name}-")) == 50
