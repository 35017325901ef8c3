"""Haima's server beside Chroma's, with Chroma's own client, on the same data.

    python benchmarks/server_vs_chroma.py [--n 20000] [--dim 384] [--queries 500] [--repeats 3]

Chroma 1.5.9's `chroma run` (from the `chromadb` package) and `haima run` run on loopback,
each in a fresh folder, driven by the official `chromadb.HttpClient` with the same vectors,
metadata and queries. Rows: start → first heartbeat; ingest; the first N unfiltered
queries right after ingest (QPS, p50, p99, max) and the same once settled; filtered
queries at 10% and 1%; four client threads; `get` of 100 ids; a mixed workload (one client
adding batches while another queries: the reader's p99 and max); restart → first answer;
disk size; server memory (resident, with children) once settled and right after the mixed
writes, when Haima's indexer is still extending its HNSW part on a copy.

The two are measured in turn, never at once: both servers stay up, each query phase
sends blocks of BLOCK requests to each in turn, and the four-thread rounds, the starts
and the restarts alternate too. This VM's speed drifts by ±20-50% from one minute to the
next; measured one whole run after the other, that drift decided the close rows. Chroma
ingests first, so that Haima's first queries come right after its own ingest and Chroma's
1-2 s after its own. The mixed workload runs on one server at a time.

The last column is Haima's advantage: Haima/Chroma for rates, Chroma/Haima for times and
sizes (above 1: Haima is better). Prints numbers; asserts nothing.
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


def stats(ms: list[float]) -> dict[str, float]:
    a = np.array(ms)
    return {"qps": 1000 * len(a) / a.sum(), "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}  # fmt: skip


def top_k(collection: Any, vector: np.ndarray, where: Any = None) -> Any:
    """The benchmark's query: the K nearest to `vector`, distances only."""
    return collection.query(query_embeddings=vector[None, :], n_results=K, where=where,
                            include=["distances"])  # fmt: skip


class Peer:
    """One server under test, its client and its collection."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.server = Server(kind, folder)
        self.col: Any = None

    def query(self, vector: np.ndarray, where: Any = None) -> Any:
        return top_k(self.col, vector, where)


#: Calls made on one peer before the other's turn: few enough that both meet the machine
#: as it is at that moment (its speed drifts within a minute), enough that each serves
#: mostly from its own warm caches, as a server does beside its clients.
BLOCK = 25


def alternate(
    peers: list[Peer], calls: int, fn: Callable[[Peer, int], Any]
) -> dict[str, list[float]]:
    """Milliseconds of `calls` calls of `fn` on each peer, BLOCK calls at a time, the
    peers taking turns (which goes first alternating)."""
    out: dict[str, list[float]] = {peer.kind: [] for peer in peers}
    for turn, lo in enumerate(range(0, calls, BLOCK)):
        for peer in peers if turn % 2 == 0 else peers[::-1]:
            for i in range(lo, min(lo + BLOCK, calls)):
                start = time.perf_counter()
                fn(peer, i)
                out[peer.kind].append((time.perf_counter() - start) * 1000)
    return out


def started_fresh(kind: str) -> float:
    """Seconds from a server's start in an empty folder to its first heartbeat."""
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(kind, Path(tmp) / "store")
        try:
            return server.start()
        finally:
            server.stop()


def restarted(peer: Peer, query: np.ndarray) -> float:
    """Seconds from a start on the peer's full store to the first query's answer."""
    begin = time.perf_counter()
    peer.server.start()
    try:
        again = peer.server.client().get_collection("bench", embedding_function=None)
        again.query(query_embeddings=query[None, :], n_results=K)
        return time.perf_counter() - begin
    finally:
        peer.server.stop()


def run_both(
    data: np.ndarray, queries: np.ndarray, n_queries: int, repeats: int
) -> dict[str, dict[str, float]]:
    """Every row for Chroma and Haima, measured in turn (see the module docstring)."""
    out: dict[str, dict[str, float]] = {"chroma": {}, "haima": {}}
    n = len(data)
    ids = [f"r{i}" for i in range(n)]
    metadatas = [{"bucket": i % 100, "name": f"record {i}"} for i in range(n)]
    kinds = list(out)

    def put(key: str, measured: dict[str, float]) -> None:
        for kind, value in measured.items():
            out[kind][key] = value

    def both(fn: Callable[[str], float]) -> dict[str, float]:
        """The median of `repeats` measurements of each kind, taken in turn."""
        taken: dict[str, list[float]] = {kind: [] for kind in kinds}
        for r in range(repeats):
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                taken[kind].append(fn(kind))
        return {kind: float(np.median(values)) for kind, values in taken.items()}

    put("start → heartbeat (s)", both(started_fresh))
    with tempfile.TemporaryDirectory() as tmp:
        peers = [Peer(kind, Path(tmp) / kind) for kind in kinds]
        for peer in peers:
            peer.server.start()
            peer.col = peer.server.client().create_collection(
                "bench", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
            )
        # Chroma's ingest first: Haima's queries then start right after its own ingest,
        # while Chroma's start 1-2 s after its ingest (no less settled than right after).
        for peer in peers:
            start = time.perf_counter()
            for lo in range(0, n, 1000):
                peer.col.add(ids=ids[lo : lo + 1000], embeddings=data[lo : lo + 1000],
                             metadatas=metadatas[lo : lo + 1000])  # fmt: skip
            out[peer.kind]["ingest (s)"] = time.perf_counter() - start

        def query(peer: Peer, i: int) -> Any:
            return peer.query(queries[i % len(queries)])

        for phase in (f"first {n_queries} after ingest", "later"):
            if phase == "later":
                time.sleep(10)  # let background indexing settle: "later" means settled
            for kind, ms in alternate(peers, n_queries, query).items():
                for key, value in stats(ms).items():
                    out[kind][f"{phase}: {key}"] = value
        for share, where in (("10%", {"bucket": {"$lt": 10}}), ("1%", {"bucket": 0})):
            timed_ = alternate(peers, 200, lambda peer, i, w=where: peer.query(queries[i], w))
            for kind, ms in timed_.items():
                s = stats(ms)
                out[kind][f"filtered {share}: qps"] = s["qps"]
                out[kind][f"filtered {share}: p50"] = s["p50"]
        # four client threads, each with its own client; two rounds of 400 queries each,
        # the peers in turn
        busy: dict[str, float] = dict.fromkeys(kinds, 0.0)
        for round_ in range(2):
            for peer in peers if round_ == 0 else peers[::-1]:
                busy[peer.kind] += four_threads(peer, queries, 100)
        put("4 threads: qps", {kind: 800 / seconds for kind, seconds in busy.items()})
        got = alternate(
            peers, 200, lambda peer, i: peer.col.get(ids=ids[(i * 100) % n : (i * 100) % n + 100])
        )
        put("get 100 ids: p50", {kind: stats(ms)["p50"] for kind, ms in got.items()})
        put("server memory, settled (MB)", {p.kind: p.server.rss_mb() for p in peers})
        for peer in peers:  # alone: a writer and a reader on one server
            reader = mixed(peer, queries, data.shape[1])
            out[peer.kind]["mixed, reader: p99"] = reader["p99"]
            out[peer.kind]["mixed, reader: max"] = reader["max"]
            out[peer.kind]["server memory right after the mixed writes (MB)"] = peer.server.rss_mb()
        for peer in peers:
            peer.server.stop()
        put("disk (MB)", {p.kind: folder_mb(p.server.folder) for p in peers})
        by_kind = {p.kind: p for p in peers}
        put("restart → first answer (s)", both(lambda kind: restarted(by_kind[kind], queries[0])))
    return out


def four_threads(peer: Peer, queries: np.ndarray, each: int) -> float:
    """Seconds for four client threads, each with its own client, to make `each` queries."""

    def worker(seed: int) -> None:
        mine = peer.server.client().get_collection("bench", embedding_function=None)
        for i in range(each):
            top_k(mine, queries[(seed * each + i) % len(queries)])

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def mixed(peer: Peer, queries: np.ndarray, dim: int) -> dict[str, float]:
    """A writer adds batches of 500 while this thread queries: the reader's figures."""
    extra = np.random.default_rng(9).standard_normal((10_000, dim)).astype(np.float32)
    writing = threading.Event()
    writing.set()

    def writer() -> None:
        mine = peer.server.client().get_collection("bench", embedding_function=None)
        for lo in range(0, len(extra), 500):
            mine.add(ids=[f"m{i}" for i in range(lo, lo + 500)], embeddings=extra[lo : lo + 500])
        writing.clear()

    thread = threading.Thread(target=writer)
    thread.start()
    reader: list[float] = []
    i = 0
    while writing.is_set():
        start = time.perf_counter()
        peer.query(queries[i % len(queries)])
        reader.append((time.perf_counter() - start) * 1000)
        i += 1
    thread.join()
    return stats(reader)


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
    parser.add_argument("--repeats", type=int, default=3,
                        help="starts and restarts of each server; their medians are printed")  # fmt: skip
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    queries = rng.standard_normal((1000, args.dim)).astype(np.float32)
    compile_haima()
    measured = run_both(data, queries, args.queries, args.repeats)
    haima, chroma = measured["haima"], measured["chroma"]
    print(f"{args.n:,} x {args.dim} cosine, official chromadb client, 2 cores; load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| row | Haima | Chroma | Haima's advantage |\n|---|---|---|---|")
    for key in haima:
        h, c = haima[key], chroma[key]
        better = h / c if any(w in key for w in HIGHER_IS_BETTER) else c / h
        print(f"| {key} | {h:,.2f} | {c:,.2f} | {better:.2f}x |")


if __name__ == "__main__":
    main()
