"""Query throughput and latency over HTTP beside the same queries in process.

A script, not a test: it prints a table and asserts nothing.

    python benchmarks/server.py                       # 50k x 384, HNSW, 1/4/16 clients
    python benchmarks/server.py --n 20000 --dim 128   # quicker

One store is built in process, then `haima run` serves it from a child process while this
process opens the same store directly (SQLite WAL lets both read it). Each concurrency
level runs the same queries with N client threads, each with its own client.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import haima  # noqa: E402
from tests.helpers.server import ServerProcess  # noqa: E402

K = 10


def build_store(path: Path, n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((64, dim)).astype(np.float32)
    vectors = centers[rng.integers(0, 64, n)] + 0.3 * rng.standard_normal((n, dim)).astype(
        np.float32
    )
    with haima.PersistentClient(path) as client:
        col = client.create_collection(
            "bench", configuration={"index": {"type": "hnsw"}}, embedding_function=None
        )
        step = 10_000
        for start in range(0, n, step):
            stop = min(start + step, n)
            col.add(
                ids=[f"r{i}" for i in range(start, stop)],
                embeddings=vectors[start:stop],
                documents=[f"document {i}" for i in range(start, stop)],
                metadatas=[{"bucket": i % 100} for i in range(start, stop)],
            )
        col.build_index()
    queries: np.ndarray = vectors[rng.integers(0, n, 2000)] + 0.1 * rng.standard_normal(
        (2000, dim)
    ).astype(np.float32)
    return queries


def run_level(
    make_query: Callable[[], Callable[[np.ndarray], object]],
    queries: np.ndarray,
    threads: int,
    per_thread: int,
) -> tuple[float, float, float]:
    """QPS, p50 ms and p99 ms with `threads` clients, each from `make_query()`."""
    latencies: list[float] = []
    lock = threading.Lock()
    ready = threading.Barrier(threads + 1)

    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            query = make_query()
        except BaseException as exc:
            errors.append(exc)
            ready.abort()
            return
        mine = []
        ready.wait()
        try:
            for i in range(per_thread):
                q = queries[(offset * per_thread + i) % len(queries)]
                start = time.perf_counter()
                query(q)
                mine.append(time.perf_counter() - start)
        except BaseException as exc:
            errors.append(exc)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    elapsed = time.perf_counter() - start
    latencies.sort()
    qps = len(latencies) / elapsed
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000
    return qps, p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=400, help="per concurrency level")
    parser.add_argument("--levels", default="1,4,16")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        print(f"building {args.n} x {args.dim} (hnsw) ...", flush=True)
        queries = build_store(store, args.n, args.dim, seed=7)
        local = haima.PersistentClient(store)
        local_col = local.get_collection("bench", embedding_function=None)

        def local_query() -> Callable[[np.ndarray], object]:
            return lambda q: local_col.query(query_embeddings=q[None, :], n_results=K)

        with ServerProcess(store, "--no-preload", "--no-access-log") as server:

            def http_query() -> Callable[[np.ndarray], object]:
                client = haima.HttpClient.from_url(server.url)
                col = client.get_collection("bench", embedding_function=None)
                return lambda q: col.query(query_embeddings=q[None, :], n_results=K)

            # Warm both paths (index load, connection pools).
            run_level(local_query, queries, 1, 50)
            run_level(http_query, queries, 1, 50)
            rows = []
            for threads in levels:
                per_thread = max(args.queries // threads, 10)
                in_proc = run_level(local_query, queries, threads, per_thread)
                over_http = run_level(http_query, queries, threads, per_thread)
                rows.append((threads, in_proc, over_http))
        local.close()

    print(f"\nquery top-{K}, {args.n} x {args.dim}, hnsw; documents+metadatas+distances\n")
    header = (
        f"{'clients':>7} | {'in-process QPS':>14} {'p50 ms':>7} {'p99 ms':>7} | "
        f"{'HTTP QPS':>9} {'p50 ms':>7} {'p99 ms':>7} | {'HTTP/in-proc QPS':>16}"
    )
    print(header)
    print("-" * len(header))
    for threads, (lq, l50, l99), (hq, h50, h99) in rows:
        print(
            f"{threads:>7} | {lq:>14.0f} {l50:>7.2f} {l99:>7.2f} | "
            f"{hq:>9.0f} {h50:>7.2f} {h99:>7.2f} | {hq / lq:>16.2f}"
        )


if __name__ == "__main__":
    main()
