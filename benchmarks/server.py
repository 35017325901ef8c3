"""Query throughput and latency over HTTP beside the same queries in process.

A script, not a test: it prints a table and asserts nothing.

    python benchmarks/server.py                       # 50k x 384, HNSW, 1/4/16 clients
    python benchmarks/server.py --n 20000 --dim 128   # quicker
    python benchmarks/server.py --breakdown           # where a request's time goes

One store is built in process, then `haima run` serves it from a child process while this
process opens the same store directly (SQLite WAL lets both read it). Each concurrency
level runs the same queries with N client threads, each with its own client.

`--breakdown` times one top-10 query (p50 of sequential requests) layer by layer: the
engine (`Collection.query`), the route's work without HTTP (parsing the body, validation,
the engine, the answer's JSON), the whole application called in process (middleware,
routing, where the engine call runs), then over loopback HTTP: `haima run`'s heartbeat
(uvicorn, the socket and the client: the floor of any request), the query with a raw
httpx client, and with the official chromadb client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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


def _p50_ms(call: Callable[[int], object], n: int) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def breakdown(store: Path, queries: np.ndarray, n: int) -> list[tuple[str, float]]:
    """(layer, p50 ms) for a top-10 query, innermost first (see the module's doc)."""
    from haima.server import routes_chroma
    from haima.server.app import create_app
    from haima.server.http_io import parse_json
    from haima.server.state import ServerConfig

    bodies = [
        json.dumps(
            {
                "query_embeddings": [q.tolist()],
                "n_results": K,
                "include": ["documents", "metadatas", "distances"],
            }
        ).encode()
        for q in queries[:n]
    ]
    app = create_app(ServerConfig(path=store, preload_embeddings=False))
    rows: list[tuple[str, float]] = []

    async def in_process() -> str:
        async with app.router.lifespan_context(app):
            state = app.state.haima
            model = state.backend.get_collection("default_tenant", "default_database", "bench")
            col = state.collection("default_tenant", "default_database", model.id)
            for _ in range(2):  # the first pass warms up: caches, the learnt quick calls
                engine = _p50_ms(lambda i: col.query(query_embeddings=queries[i], n_results=K), n)
                route = _p50_ms(lambda i: routes_chroma._query(col, parse_json(bodies[i])), n)
                path = (
                    "/api/v2/tenants/default_tenant/databases/default_database/collections/"
                    f"{model.id}/query"
                )
                whole = await _asgi_p50_ms(app, path, bodies)
            rows.extend(
                [
                    ("engine: Collection.query", engine),
                    ("route without HTTP (parsing, validation, engine, result)", route),
                    ("application in process (ASGI call)", whole),
                ]
            )
            return str(path)

    path = asyncio.run(in_process())
    with ServerProcess(store, "--no-preload", "--no-access-log") as server:
        import chromadb
        import httpx

        with httpx.Client(base_url=server.url) as http:
            headers = {"content-type": "application/json"}
            for _ in range(2):
                heartbeat = _p50_ms(lambda i: http.get("/api/v2/heartbeat"), n)
                raw = _p50_ms(lambda i: http.post(path, content=bodies[i], headers=headers), n)
        chroma = chromadb.HttpClient(host="127.0.0.1", port=server.port)
        chroma_col = chroma.get_collection("bench")
        for _ in range(2):
            official = _p50_ms(
                lambda i: chroma_col.query(query_embeddings=[queries[i]], n_results=K), n
            )
    rows += [
        ("HTTP heartbeat (uvicorn + loopback + httpx: the floor)", heartbeat),
        ("HTTP query, raw httpx", raw),
        ("HTTP query, official chromadb client", official),
    ]
    return rows


async def _asgi_p50_ms(app: object, path: str, bodies: list[bytes]) -> float:
    """p50 of calling the ASGI app directly, as uvicorn would, one request at a time."""
    times = []
    for body in bodies:
        sent = False

        async def receive(body: bytes = body) -> dict[str, object]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        statuses: list[int] = []

        async def send(message: dict[str, object], statuses: list[int] = statuses) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))  # type: ignore[call-overload]

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        start = time.perf_counter()
        await app(scope, receive, send)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
        if statuses != [200]:
            raise RuntimeError(f"the query answered {statuses}")
    return statistics.median(times) * 1000


def print_breakdown(rows: list[tuple[str, float]], n: int, dim: int) -> None:
    print(f"\nwhere a top-{K} query's time goes ({n} x {dim}, hnsw), p50 ms\n")
    width = max(len(name) for name, _ in rows)
    for name, ms in rows:
        print(f"{name:<{width}} | {ms:6.3f}")
    values = dict(rows)
    engine = values["engine: Collection.query"]
    app_ms = values["application in process (ASGI call)"]
    heartbeat = values["HTTP heartbeat (uvicorn + loopback + httpx: the floor)"]
    raw = values["HTTP query, raw httpx"]
    print(
        f"\nserver handling above the engine: {app_ms - engine:.3f} ms in process; "
        f"{raw - heartbeat - engine:.3f} ms over HTTP (the query's round trip less the "
        "heartbeat's and the engine's)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=400, help="per concurrency level")
    parser.add_argument("--levels", default="1,4,16")
    parser.add_argument("--breakdown", action="store_true", help="time each layer instead")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    if args.breakdown:
        with tempfile.TemporaryDirectory() as tmp:
            store = Path(tmp) / "store"
            print(f"building {args.n} x {args.dim} (hnsw) ...", flush=True)
            queries = build_store(store, args.n, args.dim, seed=7)
            rows = breakdown(store, queries, min(args.queries, len(queries)))
        print_breakdown(rows, args.n, args.dim)
        return

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
