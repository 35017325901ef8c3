"""Haima beside raw FAISS: ingest, unfiltered latency and recall, filtered QPS and recall,
reopen time. A script, not a test: it prints numbers, ratios and targets; it asserts nothing.

    python benchmarks/core.py --n 100000 --dim 384     # the reference run (several minutes)
    python benchmarks/core.py --quick                  # 30k x 128, about a minute

See benchmarks/README.md for how to read the table.
"""

from __future__ import annotations

import os

# FAISS's OpenMP threads spin while they wait; the engine sets the same policy. Both must
# precede the first import of faiss (haima imports it too).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import haima  # noqa: E402
from benchmarks.profiling import profiled  # noqa: E402

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

K = 10
#: HNSW parameters shared by Haima's defaults and the raw FAISS baseline.
HNSW_M = 16
EF_CONSTRUCTION = 100
EF_SEARCH = 100
#: Filter `bucket < b` keeps b/1000 of the records.
SELECTIVITIES: dict[str, int] = {"50%": 500, "10%": 100, "1%": 10, "0.1%": 1}
SIFT_DIR = Path("/work/shared/data/ann_sift5k")

INGEST_TARGET = 25_000.0
LATENCY_RATIO_TARGET = 1.3
FILTERED_RECALL_TARGET = 0.95
REOPEN_TARGET_S = 1.0


# -- data ---------------------------------------------------------------------------------


@dataclass
class Data:
    vectors: Floats  # (n, dim), as given to Haima
    normalized: Floats  # what FAISS gets (cosine = inner product of unit vectors)
    queries: Floats
    queries_normalized: Floats
    bucket: Ints  # int field in [0, 1000), independent of the vectors
    cluster: Ints


def normalize(x: Floats) -> Floats:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def make_data(n: int, dim: int, n_queries: int, seed: int, spread: float) -> Data:
    """Gaussian clusters (about one per 1,000 records, sizes varying ~3x) and held-out
    queries drawn around the same centres."""
    rng = np.random.default_rng(seed)
    n_clusters = max(10, n // 1_000)
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    weights = rng.uniform(1.0, 3.0, n_clusters)
    cluster = rng.choice(n_clusters, size=n, p=weights / weights.sum()).astype(np.int64)
    vectors = np.empty((n, dim), np.float32)
    for lo in range(0, n, 20_000):
        hi = min(lo + 20_000, n)
        noise = rng.standard_normal((hi - lo, dim)).astype(np.float32) * np.float32(spread)
        vectors[lo:hi] = centers[cluster[lo:hi]] + noise
    picked = rng.integers(0, n_clusters, n_queries)
    queries = centers[picked] + rng.standard_normal((n_queries, dim)).astype(
        np.float32
    ) * np.float32(spread)
    bucket = (rng.permutation(n) % 1_000).astype(np.int64)
    return Data(vectors, normalize(vectors), queries, normalize(queries), bucket, cluster)


def ground_truth(base: Floats, queries: Floats, k: int, mask: npt.NDArray[np.bool_] | None) -> Ints:
    """Exact top-k by inner product (numpy, float32), restricted to `mask`; -1 pads."""
    scores = queries @ base.T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    k_eff = min(k, base.shape[0])
    top = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    rows = np.take_along_axis(top, order, axis=1).astype(np.int64)
    rows[~np.isfinite(np.take_along_axis(scores, rows, axis=1))] = -1
    return rows


def recall(found: Sequence[Sequence[int]], truth: Ints) -> float:
    scores = []
    for got, row in zip(found, truth, strict=True):
        want = {int(t) for t in row if t >= 0}
        if want:
            scores.append(len(want.intersection(int(g) for g in got)) / len(want))
    return float(np.mean(scores)) if scores else 1.0


# -- reporting ----------------------------------------------------------------------------


@dataclass
class Line:
    section: str
    what: str
    unit: str
    haima: float | None
    faiss: float | None = None
    target: str = ""
    status: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.haima is None or self.faiss is None or self.faiss == 0:
            return None
        return self.haima / self.faiss


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def add(self, line: Line) -> None:
        self.lines.append(line)
        print(format_line(line), flush=True)

    def header(self, title: str) -> None:
        print(f"\n== {title} " + "=" * max(0, 108 - len(title)), flush=True)
        print(
            f"{'measure':<34}{'unit':<11}{'Haima':>12}{'FAISS':>12}{'Haima/FAISS':>13}"
            f"  {'target':<24}{'status':<6}",
            flush=True,
        )


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1_000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_line(line: Line) -> str:
    ratio = "-" if line.ratio is None else f"{line.ratio:.2f}x"
    text = (
        f"{line.what:<34}{line.unit:<11}{fmt(line.haima):>12}{fmt(line.faiss):>12}{ratio:>13}"
        f"  {line.target:<24}{line.status:<6}"
    )
    return text + (f"  {line.note}" if line.note else "")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def timed_single(fn: Callable[[int], list[int]], count: int) -> tuple[list[float], list[list[int]]]:
    """Calls fn(i) for i in range(count), one at a time: seconds per call, and results."""
    times: list[float] = []
    results: list[list[int]] = []
    for i in range(count):
        start = time.perf_counter()
        results.append(fn(i))
        times.append(time.perf_counter() - start)
    return times, results


@dataclass
class Paired:
    haima_times: list[float]
    haima_found: list[list[int]]
    faiss_times: list[float]
    faiss_found: list[list[int]]


def timed_pair(
    haima_fn: Callable[[int], list[int]], faiss_fn: Callable[[int], list[int]], count: int
) -> Paired:
    """Query i on both sides back to back (alternating which goes first), so that both
    see the same machine: on a shared 2-core box the load moves under a long run."""
    out = Paired([], [], [], [])
    for i in range(count):
        order = [(haima_fn, out.haima_times, out.haima_found)]
        order.append((faiss_fn, out.faiss_times, out.faiss_found))
        if i % 2:
            order.reverse()
        for fn, times, found in order:
            start = time.perf_counter()
            found.append(fn(i))
            times.append(time.perf_counter() - start)
    return out


def p50_ms(times: Sequence[float]) -> float:
    return statistics.median(times) * 1_000


def p95_ms(times: Sequence[float]) -> float:
    return float(np.percentile(np.asarray(times), 95)) * 1_000


# -- Haima helpers ------------------------------------------------------------------------


def haima_ingest(
    client: haima.Client, name: str, index_type: str, data: Data, batch: int
) -> tuple[haima.Collection, float]:
    """Add every record in batches like a user would; returns the collection and seconds."""
    col = client.create_collection(
        name,
        configuration={
            "index": {
                "type": index_type,
                "max_neighbors": HNSW_M,
                "ef_construction": EF_CONSTRUCTION,
                "ef_search": EF_SEARCH,
            },
            "metric": "cosine",
        },
        embedding_function=None,
    )
    n = len(data.vectors)
    sources = ("web", "pdf", "wiki", "mail", "chat")
    # The caller's lists are built before the clock starts, as FAISS's input is: the
    # timing is of `add` alone.
    batches = [
        (
            [str(i) for i in range(lo, min(lo + batch, n))],
            data.vectors[lo : lo + batch],
            [
                f"record {i}: notes on topic {int(data.cluster[i])} from the archive"
                for i in range(lo, min(lo + batch, n))
            ],
            [
                {"bucket": int(data.bucket[i]), "source": sources[i % len(sources)]}
                for i in range(lo, min(lo + batch, n))
            ],
        )
        for lo in range(0, n, batch)
    ]
    start = time.perf_counter()
    for ids, vectors, documents, metadatas in batches:
        col.add(ids=ids, embeddings=vectors, documents=documents, metadatas=metadatas)
    return col, time.perf_counter() - start


def haima_query(
    col: haima.Collection,
    query: Floats,
    where: dict[str, Any] | None = None,
    include: Sequence[str] = ("distances",),
) -> list[int]:
    result = col.query(
        query_embeddings=query[None, :],
        n_results=K,
        where=where,
        include=list(include),  # type: ignore[arg-type]
    )
    return [int(i) for i in result["ids"][0]]


def faiss_search(index: Any, query: Floats, params: Any = None) -> list[int]:
    _, labels = index.search(query[None, :], K, params=params)
    return [int(i) for i in labels[0] if i >= 0]


def haima_runner(
    col: haima.Collection,
    queries: Floats,
    where: dict[str, Any] | None = None,
    include: Sequence[str] = ("distances",),
) -> Callable[[int], list[int]]:
    """fn(i): query i against the collection, its result ids as row numbers."""

    def run(i: int) -> list[int]:
        return haima_query(col, queries[i], where, include)

    return run


def faiss_runner(index: Any, queries: Floats, params: Any = None) -> Callable[[int], list[int]]:
    def run(i: int) -> list[int]:
        return faiss_search(index, queries[i], params)

    return run


def hnsw_params(ef_search: int, selector: Any) -> Any:
    """SearchParametersHNSW (FAISS's SWIG module is untyped)."""
    module: Any = faiss
    params = module.SearchParametersHNSW()
    params.efSearch = ef_search
    params.sel = selector
    return params


# -- sections -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> Report:
    report = Report()
    wanted = set(args.profile)
    profile_dir = Path(args.profile_dir) if args.profile_dir else None
    print(
        f"Haima {haima.__version__} vs FAISS {faiss.__version__}: n={args.n:,} dim={args.dim} "
        f"queries={args.queries} batch={args.batch:,} cores={os.cpu_count()} "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} "
        f"faiss threads={faiss.omp_get_max_threads()} load average={load_average()}",
        flush=True,
    )
    t0 = time.perf_counter()
    data = make_data(args.n, args.dim, args.queries, args.seed, args.spread)
    truth = ground_truth(data.normalized, data.queries_normalized, K, None)
    print(f"data and ground truth: {time.perf_counter() - t0:.1f}s", flush=True)
    nq = args.queries

    workdir = Path(tempfile.mkdtemp(prefix="haima-bench-"))
    try:
        store = workdir / "store"
        client = haima.PersistentClient(store)

        # -- ingest ------------------------------------------------------------------------
        report.header("ingest (PersistentClient, document + 2 metadata fields per record)")
        flat_faiss = faiss.IndexFlatIP(args.dim)
        start = time.perf_counter()
        for lo in range(0, args.n, args.batch):
            flat_faiss.add(data.normalized[lo : lo + args.batch])
        faiss_flat_rate = args.n / (time.perf_counter() - start)
        collections: dict[str, haima.Collection] = {}
        haima_build = 0.0
        auto_ingest = 0.0
        for index_type in ("flat", "auto"):
            with profiled(f"ingest-{index_type}", wanted, profile_dir):
                col, seconds = haima_ingest(
                    client, f"bench-{index_type}", index_type, data, args.batch
                )
            collections[index_type] = col
            if index_type == "flat":
                # Write its snapshot now: the indexer would otherwise write 150 MB at a
                # random moment of the measurements below (after snapshot_interval).
                col.build_index()
            if index_type == "auto":
                # Finish what the background indexer has not done yet, before anything
                # else runs, so that neither side's timings include the other's work.
                auto_ingest = seconds
                with profiled("build", wanted, profile_dir):
                    start = time.perf_counter()
                    col.build_index()
                    haima_build = time.perf_counter() - start
            rate = args.n / seconds
            report.add(
                Line(
                    "ingest",
                    f"add {index_type} ({args.batch:,}/call)",
                    "records/s",
                    rate,
                    faiss_flat_rate,
                    f">= {INGEST_TARGET:,.0f}",
                    verdict(rate >= INGEST_TARGET),
                    "FAISS: IndexFlatIP.add (vectors only)",
                )
            )

        # -- build HNSW --------------------------------------------------------------------
        hnsw_faiss = faiss.IndexHNSWFlat(args.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw_faiss.hnsw.efConstruction = EF_CONSTRUCTION
        hnsw_faiss.hnsw.efSearch = EF_SEARCH
        start = time.perf_counter()
        hnsw_faiss.add(data.normalized)
        faiss_build = time.perf_counter() - start
        report.add(
            Line(
                "ingest",
                "auto: add all + build_index()",
                "s",
                auto_ingest + haima_build,
                faiss_build,
                note=f"build_index() after the last add: {haima_build:.1f}s; "
                "FAISS: IndexHNSWFlat.add (vectors only)",
            )
        )

        # -- unfiltered --------------------------------------------------------------------
        report.header("unfiltered single queries, k=10")
        cases = [
            ("flat", collections["flat"], flat_faiss, None),
            ("hnsw (auto)", collections["auto"], hnsw_faiss, None),
        ]
        for label, col, index, params in cases:
            for include in (("distances",), ("documents", "metadatas", "distances")):
                for i in range(min(5, nq)):  # warm up: caches, first-touch of the index
                    haima_query(col, data.queries[i], include=include)
                    faiss_search(index, data.queries_normalized[i], params)
                flavour = "ids" if len(include) == 1 else "full"
                with profiled(f"unfiltered-{label.split()[0]}-{flavour}", wanted, profile_dir):
                    pair = timed_pair(
                        haima_runner(col, data.queries, include=include),
                        faiss_runner(index, data.queries_normalized, params),
                        nq,
                    )
                h_times, found = pair.haima_times, pair.haima_found
                f_times, f_found = pair.faiss_times, pair.faiss_found
                h_p50, f_p50 = p50_ms(h_times), p50_ms(f_times)
                h_rec, f_rec = recall(found, truth), recall(f_found, truth)
                same_recall = h_rec >= f_rec - 0.01
                spread = f"p95 {p95_ms(h_times):.2f} vs {p95_ms(f_times):.2f} ms"
                if len(include) == 1:
                    # Like for like: FAISS answers with ids and distances too.
                    line = Line(
                        "unfiltered",
                        f"{label} p50 (ids+dist)",
                        "ms",
                        h_p50,
                        f_p50,
                        f"<= {LATENCY_RATIO_TARGET}x FAISS",
                        verdict(h_p50 <= LATENCY_RATIO_TARGET * f_p50 and same_recall),
                        spread,
                    )
                else:
                    # FAISS holds no documents: this line shows what reading them costs.
                    line = Line(
                        "unfiltered",
                        f"{label} p50 (docs+meta+dist)",
                        "ms",
                        h_p50,
                        f_p50,
                        note=f"{spread}; FAISS: ids only (it holds no documents)",
                    )
                report.add(line)
                if len(include) == 1:
                    report.add(Line("unfiltered", f"{label} recall@10", "", h_rec, f_rec))

        # -- filtered ----------------------------------------------------------------------
        report.header(
            "filtered single queries, k=10: Haima auto/HNSW collection vs IndexHNSWFlat + "
            "IDSelectorBitmap (same filter, same queries)"
        )
        hnsw_col = collections["auto"]
        for label, bound in SELECTIVITIES.items():
            where = {"bucket": {"$lt": bound}}
            mask = data.bucket < bound
            f_truth = ground_truth(data.normalized, data.queries_normalized, K, mask)
            run_haima_f = haima_runner(hnsw_col, data.queries, where=where)
            cold = timed_single(run_haima_f, 1)[0][0]  # SQL for the matching rids + plan
            start = time.perf_counter()
            bitmap = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(args.n, faiss.swig_ptr(bitmap))
            run_faiss_f = faiss_runner(
                hnsw_faiss, data.queries_normalized, hnsw_params(EF_SEARCH, selector)
            )
            run_faiss_f(0)
            f_cold = time.perf_counter() - start
            # The first queries: a plan that scans or walks the shared graph. The third
            # asks for a filtered view (2,000+ matches, at most half), which the background
            # indexer builds while these run, on one core.
            pair = timed_pair(run_haima_f, run_faiss_f, nq)
            early_qps = nq / sum(pair.haima_times), nq / sum(pair.faiss_times)
            start = time.perf_counter()
            hnsw_col.build_index()  # the view, if the indexer has not finished it yet
            view_wait = time.perf_counter() - start
            with profiled(f"filtered-{label}", wanted, profile_dir):
                pair = timed_pair(run_haima_f, run_faiss_f, nq)
            h_times, found = pair.haima_times, pair.haima_found
            f_times, f_found = pair.faiss_times, pair.faiss_found
            h_qps, f_qps = nq / sum(h_times), nq / sum(f_times)
            h_rec, f_rec = recall(found, f_truth), recall(f_found, f_truth)
            short = sum(len(f) < min(K, int(mask.sum())) for f in found)
            qps_target = bound <= 100
            report.add(
                Line(
                    "filtered",
                    f"{label} recall@10",
                    "",
                    h_rec,
                    f_rec,
                    f">= {FILTERED_RECALL_TARGET}",
                    verdict(h_rec >= FILTERED_RECALL_TARGET and short == 0),
                    f"{int(mask.sum()):,} matches" + (f"; {short} short rows" if short else ""),
                )
            )
            report.add(
                Line(
                    "filtered",
                    f"{label} QPS, first {nq} queries",
                    "queries/s",
                    early_qps[0],
                    early_qps[1],
                    note=f"first query {cold * 1e3:.1f} vs {f_cold * 1e3:.1f} ms (incl. filter)",
                )
            )
            report.add(
                Line(
                    "filtered",
                    f"{label} QPS, next {nq} queries",
                    "queries/s",
                    h_qps,
                    f_qps,
                    ">= FAISS" if qps_target else "",
                    verdict(h_qps >= f_qps) if qps_target else "",
                    f"waited {view_wait:.2f}s for the filtered view" if view_wait >= 0.01 else "",
                )
            )

        # -- reopen ------------------------------------------------------------------------
        report.header("reopen: close the client, open a new PersistentClient, first query")
        ids = {name: c.name for name, c in collections.items()}
        client.close()
        del client, collections, hnsw_col
        gc.collect()
        for index_type in ("flat", "auto"):
            with profiled(f"reopen-{index_type}", wanted, profile_dir):
                start = time.perf_counter()
                again = haima.PersistentClient(store)
                reopened = again.get_collection(ids[index_type], embedding_function=None)
                haima_query(reopened, data.queries[0])
                seconds = time.perf_counter() - start
            faiss_index = flat_faiss if index_type == "flat" else hnsw_faiss
            blob = workdir / f"faiss-{index_type}.index"
            faiss.write_index(faiss_index, str(blob))
            start = time.perf_counter()
            loaded = faiss.read_index(str(blob))
            faiss_search(loaded, data.queries_normalized[0])
            f_seconds = time.perf_counter() - start
            del loaded
            report.add(
                Line(
                    "reopen",
                    f"{index_type} ({args.n:,}) to first query",
                    "s",
                    seconds,
                    f_seconds,
                    f"<= {REOPEN_TARGET_S:g} s",
                    verdict(seconds <= REOPEN_TARGET_S),
                    "FAISS: read_index + search (warm page cache for both)",
                )
            )
            again.close()

        # -- SIFT ----------------------------------------------------------------------------
        if not args.no_sift:
            sift_section(report, nq)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def read_vecs(path: Path, dtype: str) -> npt.NDArray[Any]:
    raw = np.fromfile(path, dtype=dtype)
    dim = raw[:1].view(np.int32)[0]
    return raw.reshape(-1, dim + 1)[:, 1:].copy()


def sift_section(report: Report, nq: int) -> None:
    """Real data: SIFT 5k (4,900 x 128, l2), against its own brute-force ground truth."""
    base_path = SIFT_DIR / "sift5k_base.fvecs"
    if not base_path.exists():
        print(f"\n(SIFT section skipped: {base_path} not found)")
        return
    base = read_vecs(base_path, "float32").astype(np.float32)
    queries = read_vecs(SIFT_DIR / "sift5k_query.fvecs", "float32").astype(np.float32)
    gt = read_vecs(SIFT_DIR / "sift5k_groundtruth.ivecs", "int32")[:, :K].astype(np.int64)
    report.header(f"SIFT 5k (real, l2): {len(base):,} x {base.shape[1]}, {len(queries)} queries")
    client = haima.Client(haima.Settings(background_indexing=False))
    for index_type in ("flat", "hnsw"):
        col = client.create_collection(
            f"sift-{index_type}",
            configuration={"index": {"type": index_type}, "metric": "l2"},
            embedding_function=None,
        )
        for lo in range(0, len(base), 1_000):
            chunk = base[lo : lo + 1_000]
            col.add(ids=[str(i) for i in range(lo, lo + len(chunk))], embeddings=chunk)
        col.build_index()
        if index_type == "flat":
            index: Any = faiss.IndexFlatL2(base.shape[1])
        else:
            index = faiss.IndexHNSWFlat(base.shape[1], HNSW_M, faiss.METRIC_L2)
            index.hnsw.efConstruction = EF_CONSTRUCTION
            index.hnsw.efSearch = EF_SEARCH
        index.add(base)
        pair = timed_pair(haima_runner(col, queries), faiss_runner(index, queries), len(queries))
        h_times, found = pair.haima_times, pair.haima_found
        f_times, f_found = pair.faiss_times, pair.faiss_found
        report.add(
            Line("sift", f"{index_type} recall@10", "", recall(found, gt), recall(f_found, gt))
        )
        report.add(
            Line("sift", f"{index_type} p50 (ids+dist)", "ms", p50_ms(h_times), p50_ms(f_times))
        )
    client.close()


def load_average() -> str:
    """The 1-minute load average: above ~0.5 on 2 cores, other work skews the timings."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def summary(report: Report) -> None:
    targeted = [line for line in report.lines if line.status]
    missed = [line for line in targeted if line.status == "MISS"]
    print(
        f"\n{len(targeted) - len(missed)} of {len(targeted)} targets met"
        + (": missed " + "; ".join(f"{m.section}/{m.what}" for m in missed) if missed else "")
        + f"  (total {time.perf_counter() - report.started:.0f}s, load average {load_average()})"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000, help="records (default 100,000)")
    parser.add_argument("--dim", type=int, default=384, help="dimensions (default 384)")
    parser.add_argument("--queries", type=int, default=200, help="queries per measurement")
    parser.add_argument("--batch", type=int, default=5_000, help="records per add() call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--spread", type=float, default=0.6, help="per-coordinate std-dev around a cluster centre"
    )
    parser.add_argument("--quick", action="store_true", help="a small run: 30,000 x 128")
    parser.add_argument("--no-sift", action="store_true", help="skip the SIFT 5k section")
    parser.add_argument("--json", help="also write the lines as JSON to this file")
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="SECTION",
        help="cProfile a section: ingest-flat, ingest-auto, build, unfiltered-flat-ids, "
        "unfiltered-flat-full, unfiltered-hnsw-ids, unfiltered-hnsw-full, filtered-50%%, "
        "filtered-10%%, filtered-1%%, filtered-0.1%%, reopen-flat, reopen-auto (repeatable)",
    )
    parser.add_argument("--profile-dir", help="write .prof files of profiled sections here")
    parser.add_argument(
        "--only-stall",
        action="store_true",
        help="only the row of queries during and right after a bulk add (benchmarks/stall.py "
        "at 20,000 x 384, where the auto index switches to HNSW)",
    )
    parser.add_argument("--no-stall", action="store_true", help="skip that row")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.dim, args.queries = 30_000, 128, 100
    return args


def stall_section() -> None:
    """Queries while a bulk add runs and right after it, beside raw FAISS (stall.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from stall import report as stall_report

    print("\n== queries during and right after a bulk add (20,000 x 384, auto index) ==")
    for line in stall_report(20_000, 384, 1_000, 6.0):
        print(line)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only_stall:
        stall_section()
        return 0
    report = run(args)
    summary(report)
    if not args.no_stall:
        stall_section()
    if args.json:
        Path(args.json).write_text(
            json.dumps([asdict(line) | {"ratio": line.ratio} for line in report.lines], indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
