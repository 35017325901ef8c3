"""Do queries wait for the indexer? Query latency while a bulk `add` runs, in the seconds
right after it (when the `auto` index switches to HNSW and the indexer builds it and
writes its snapshot), and in steady state; raw FAISS HNSW on the same vectors as the
floor.

    python benchmarks/stall.py [--n 20000] [--dim 384] [--batch 1000] [--after 6]

One process: a persistent store in a temporary folder, a reader thread querying top-10
without pause, the main thread adding batches. Prints p50/p99/max per phase and the
ratios the targets are about: after-add p99 / steady p99 (target ≤ 2) and the reader's
maximum while adding (target ≤ 50 ms). Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

import haima
from haima.settings import Settings


@dataclass
class Phase:
    name: str
    latencies_ms: list[float] = field(default_factory=list)

    def line(self) -> str:
        if not self.latencies_ms:
            return f"{self.name:<22} no queries"
        values = np.array(self.latencies_ms)
        return (
            f"{self.name:<22} {len(values):>6} queries  p50 {np.percentile(values, 50):7.2f} ms"
            f"  p99 {np.percentile(values, 99):8.2f} ms  max {values.max():8.2f} ms"
        )

    def p99(self) -> float:
        return float(np.percentile(self.latencies_ms, 99)) if self.latencies_ms else float("nan")

    def max(self) -> float:
        return float(max(self.latencies_ms)) if self.latencies_ms else float("nan")


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray[Any, Any]:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def measure(n: int, dim: int, batch: int, after_s: float, steady: int) -> dict[str, Phase]:
    data = unit_vectors(n, dim, 0)
    queries = unit_vectors(512, dim, 1)
    phases = {name: Phase(name) for name in ("during add", "after add", "steady")}
    current = ["during add"]
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as folder:
        client = haima.PersistentClient(folder, Settings())
        col = client.create_collection("stall", embedding_function=None)
        col.add(ids=["warm"], embeddings=data[:1])

        def reader() -> None:
            i = 0
            while not stop.is_set():
                q = queries[i % len(queries)][None, :]
                start = time.perf_counter()
                col.query(query_embeddings=q, n_results=10, include=[])
                phases[current[0]].latencies_ms.append((time.perf_counter() - start) * 1000)
                i += 1

        thread = threading.Thread(target=reader)
        thread.start()
        for lo in range(1, n, batch):
            hi = min(lo + batch, n)
            col.add(ids=[f"r{i}" for i in range(lo, hi)], embeddings=data[lo:hi])
        current[0] = "after add"
        time.sleep(after_s)  # the phase's length: the reader measures meanwhile
        stop.set()
        thread.join()
        col.build_index()  # whatever the indexer has left, then steady state
        for i in range(steady):
            start = time.perf_counter()
            col.query(query_embeddings=queries[i % len(queries)][None, :], n_results=10, include=[])
            phases["steady"].latencies_ms.append((time.perf_counter() - start) * 1000)
        client.close()
    return phases


def faiss_floor(n: int, dim: int, count: int) -> Phase:
    data = unit_vectors(n, dim, 0)
    queries = unit_vectors(512, dim, 1)
    index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 100
    index.add(data)
    index.hnsw.efSearch = 64
    phase = Phase("raw FAISS HNSW")
    for i in range(count):
        start = time.perf_counter()
        index.search(queries[i % len(queries)][None, :], 10)
        phase.latencies_ms.append((time.perf_counter() - start) * 1000)
    return phase


def report(n: int, dim: int, batch: int, after_s: float, steady: int = 500) -> list[str]:
    phases = measure(n, dim, batch, after_s, steady)
    floor = faiss_floor(n, dim, steady)
    lines = [
        f"{n:,} x {dim} cosine, add() batches of {batch:,}, auto index; reader: top-10 "
        f"unfiltered queries back to back; load average {os.getloadavg()[0]:.1f}",
        *(p.line() for p in phases.values()),
        floor.line(),
        f"after-add p99 / steady p99: {phases['after add'].p99() / phases['steady'].p99():.2f}x"
        " (target <= 2)",
        f"reader's max while adding: {phases['during add'].max():.1f} ms (target <= 50)",
        f"steady p50 / raw FAISS p50: "
        f"{np.percentile(phases['steady'].latencies_ms, 50) / np.percentile(floor.latencies_ms, 50):.2f}x",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--after", type=float, default=6.0, help="seconds measured after add")
    args = parser.parse_args()
    for line in report(args.n, args.dim, args.batch, args.after):
        print(line)


if __name__ == "__main__":
    main()
