"""Haima's server beside Chroma's, with Chroma's own client, on the same data.

    python benchmarks/server_vs_chroma.py [--n 20000] [--dim 384] [--queries 500]

Chroma 1.5.9's `chroma run` (from the `chromadb` package) and `haima run` are started one
after the other on loopback, each with a fresh folder, and driven by the official
`chromadb.HttpClient` with the same vectors, metadata and queries. Rows: start → first
heartbeat; ingest; the first N unfiltered queries right after ingest (QPS, p50, p99,
max) and the same once settled; filtered queries at 10% and 1%; four client threads; `get`
of 100 ids; a mixed workload (one client adding batches while another queries: the
reader's p99 and max); restart → first answer; disk size; server memory (resident, with
children) once settled and right after the mixed writes, when Haima's indexer is still
extending its HNSW part on a copy. The last column
is Haima's advantage: Haima/Chroma for rates, Chroma/Haima for times and sizes (above 1:
Haima is better). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import compileall
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
K = 10


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        if self.kind == "chroma":
            return [str(BIN / "chroma"), "run", "--path", str(self.folder), "--host",
                    "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        return [sys.executable, "-c", "from haima.cli import main; main()", "run", "--path",
                str(self.folder), "--port", str(self.port), "--no-access-log"]  # fmt: skip

    def start(self) -> float:
        """Start; seconds until the heartbeat answers."""
        begin = time.perf_counter()
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        url = f"http://127.0.0.1:{self.port}/api/v2/heartbeat"
        while True:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return time.perf_counter() - begin
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited")
            time.sleep(0.005)  # polling for readiness

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(60)

    def rss_mb(self) -> float:
        """Resident memory of the server process and its children."""
        assert self.process is not None
        pids = [self.process.pid]
        try:
            children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True,
                                      text=True).stdout.split()  # fmt: skip
            pids += [int(p) for p in children]
        except FileNotFoundError:
            pass
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def client(self) -> Any:
        import chromadb

        return chromadb.HttpClient(host="127.0.0.1", port=self.port)


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def timed(calls: int, fn: Callable[[int], Any]) -> list[float]:
    out = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def stats(ms: list[float]) -> dict[str, float]:
    a = np.array(ms)
    return {"qps": 1000 * len(a) / a.sum(), "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}  # fmt: skip


def run_one(kind: str, data: np.ndarray, queries: np.ndarray, n_queries: int) -> dict[str, float]:
    out: dict[str, float] = {}
    n = len(data)
    ids = [f"r{i}" for i in range(n)]
    metadatas = [{"bucket": i % 100, "name": f"record {i}"} for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "store"
        server = Server(kind, folder)
        out["start → heartbeat (s)"] = server.start()
        client = server.client()
        col = client.create_collection(
            "bench", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )
        start = time.perf_counter()
        for lo in range(0, n, 1000):
            col.add(ids=ids[lo : lo + 1000], embeddings=data[lo : lo + 1000],
                    metadatas=metadatas[lo : lo + 1000])  # fmt: skip
        out["ingest (s)"] = time.perf_counter() - start

        def query(i: int, where: Any = None) -> Any:
            return col.query(query_embeddings=queries[i % len(queries)][None, :], n_results=K,
                             where=where, include=["distances"])  # fmt: skip

        first = stats(timed(n_queries, query))
        for key, value in first.items():
            out[f"first {n_queries} after ingest: {key}"] = value
        time.sleep(10)  # let background indexing settle: "later" means settled
        later = stats(timed(n_queries, query))
        for key, value in later.items():
            out[f"later: {key}"] = value
        for share, where in (("10%", {"bucket": {"$lt": 10}}), ("1%", {"bucket": 0})):
            s = stats(timed(200, lambda i, w=where: query(i, w)))
            out[f"filtered {share}: qps"] = s["qps"]
            out[f"filtered {share}: p50"] = s["p50"]
        # four client threads, each with its own client
        done: list[float] = []

        def worker(seed: int) -> None:
            mine = server.client().get_collection("bench", embedding_function=None)
            for i in range(200):
                mine.query(query_embeddings=queries[(seed * 200 + i) % len(queries)][None, :],
                           n_results=K, include=["distances"])  # fmt: skip
            done.append(time.perf_counter())

        start = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out["4 threads: qps"] = 800 / (time.perf_counter() - start)
        get_ms = timed(200, lambda i: col.get(ids=ids[(i * 100) % n : (i * 100) % n + 100]))
        out["get 100 ids: p50"] = stats(get_ms)["p50"]
        out["server memory, settled (MB)"] = server.rss_mb()
        # mixed: a writer adds batches while this thread queries
        extra = np.random.default_rng(9).standard_normal((10_000, data.shape[1])).astype(np.float32)
        writing = threading.Event()
        writing.set()

        def writer() -> None:
            mine = server.client().get_collection("bench", embedding_function=None)
            for lo in range(0, len(extra), 500):
                mine.add(
                    ids=[f"m{i}" for i in range(lo, lo + 500)], embeddings=extra[lo : lo + 500]
                )
            writing.clear()

        thread = threading.Thread(target=writer)
        thread.start()
        reader: list[float] = []
        i = 0
        while writing.is_set():
            start = time.perf_counter()
            query(i)
            reader.append((time.perf_counter() - start) * 1000)
            i += 1
        thread.join()
        mixed = stats(reader)
        out["mixed, reader: p99"] = mixed["p99"]
        out["mixed, reader: max"] = mixed["max"]
        out["server memory right after the mixed writes (MB)"] = server.rss_mb()
        server.stop()
        out["disk (MB)"] = folder_mb(folder)
        begin = time.perf_counter()
        server.start()
        again = server.client().get_collection("bench", embedding_function=None)
        again.query(query_embeddings=queries[:1], n_results=K)
        out["restart → first answer (s)"] = time.perf_counter() - begin
        server.stop()
    return out


HIGHER_IS_BETTER = ("qps",)


def compile_haima() -> None:
    """Haima's modules compiled, as a wheel's are when pip installs it (Chroma's were). An
    editable install compiles nothing, and where PYTHONDONTWRITEBYTECODE is set (this
    machine's shells) no import writes them either: every start compiled ~80 modules,
    0.25-0.3 s of start → heartbeat."""
    compileall.compile_dir(ROOT / "haima", quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    queries = rng.standard_normal((1000, args.dim)).astype(np.float32)
    compile_haima()
    chroma = run_one("chroma", data, queries, args.queries)
    haima = run_one("haima", data, queries, args.queries)
    print(f"{args.n:,} x {args.dim} cosine, official chromadb client, 2 cores; load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| row | Haima | Chroma | Haima's advantage |\n|---|---|---|---|")
    for key in haima:
        h, c = haima[key], chroma[key]
        better = h / c if any(w in key for w in HIGHER_IS_BETTER) else c / h
        print(f"| {key} | {h:,.2f} | {c:,.2f} | {better:.2f}x |")


if __name__ == "__main__":
    main()
