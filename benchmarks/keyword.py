"""The keyword (BM25) index: what it costs at ingestion and what its queries take.
A script, not a test: it prints numbers, ratios and targets; it asserts nothing.

    python benchmarks/keyword.py              # 100,000 chunks x 384 dims (a few minutes)
    python benchmarks/keyword.py --quick      # 20,000 chunks

Sections:

- ingest, Chinese: 100-character chunks (from /work/shared/data/cmrc2018_zh when present,
  else from a built-in sentence pool), random float32 embeddings, `add` of --batch
  records per call into a PersistentClient, keyword index off vs on. Target: >= 10,000
  chunks/s with the index on.
- ingest, core.py-style: the short English documents and metadata of benchmarks/core.py,
  off vs on: the basis of the default (off when the index costs more than 10%).
- enable: `modify(configuration={"keyword": {"enabled": True}})` over the Chinese
  collection built without it (segmenting and indexing what is stored).
- queries: keyword and hybrid p50 beside vector, sequential single queries.
- retrieval sanity (cmrc2018_zh present): keyword Recall@10 and MRR@10 of its questions
  over its 1,104 paragraphs, for the segmentation to be judged by what it finds.

Collections use the `flat` index so that no HNSW build runs in the background: the
numbers are the database's, not FAISS's.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the engine sets it (see core.py)

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import haima  # noqa: E402
from benchmarks.profiling import profiled  # noqa: E402
from haima import text  # noqa: E402

CMRC = Path("/work/shared/data/cmrc2018_zh")
CHUNK_CHARS = 100
INGEST_TARGET = 10_000.0
#: Above this ingestion cost the keyword index is off by default (the brief's rule).
DEFAULT_ON_MAX_COST = 0.10

#: Fallback text: sentences of the kind a Chinese knowledge base holds.
SENTENCES = [
    "向量数据库把文本转换成高维向量后存储起来，检索时按照相似度返回最接近的结果。",
    "检索增强生成先从知识库中找出相关段落，再把它们交给大语言模型生成回答。",
    "北京是中国的首都，也是全国的政治、文化和国际交往中心。",
    "上海位于长江入海口，是中国最大的经济中心城市之一。",
    "深度学习模型需要大量的训练数据，数据质量往往比模型结构更重要。",
    "倒排索引记录每个词出现在哪些文档中，是全文检索引擎的核心数据结构。",
    "中文分词把连续的汉字切分成词语，例如把“自然语言处理”切成三个词。",
    "机器学习系统上线后需要持续监控，防止数据分布变化导致效果下降。",
    "长江是中国第一长河，全长约六千三百公里，流经十一个省级行政区。",
    "这款型号为XJ-9000-B的工业机器人可以连续工作七十二小时。",
    "用户可以通过HTTP接口上传文档，系统会自动完成切分和向量化。",
    "混合检索同时使用关键词匹配和语义向量，再用倒数排序融合两份结果。",
    "故宫博物院收藏了大量明清两代的文物，每年接待游客超过一千万人次。",
    "如果查询中包含罕见的产品编号或人名，关键词检索往往比向量检索更准确。",
    "数据库的事务保证多条写操作要么全部生效，要么全部不生效。",
    "黄山以奇松、怪石、云海和温泉闻名，被誉为天下第一奇山。",
]


# -- data ---------------------------------------------------------------------------------


def chinese_chunks(n: int, seed: int) -> tuple[list[str], str]:
    """n chunks of CHUNK_CHARS characters, and where they came from."""
    if (CMRC / "corpus.jsonl").exists():
        texts = [
            json.loads(line)["text"]
            for line in (CMRC / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        source = f"{CMRC.name} paragraphs"
    else:
        rng = random.Random(seed)
        texts = ["".join(rng.sample(SENTENCES, len(SENTENCES))) for _ in range(200)]
        source = "built-in sentence pool"
    chunks: list[str] = []
    offset = 0
    while len(chunks) < n:  # later passes start at other offsets: distinct chunks
        for paragraph in texts:
            for start in range(offset, len(paragraph) - CHUNK_CHARS // 2, CHUNK_CHARS):
                chunks.append(paragraph[start : start + CHUNK_CHARS])
        offset = (offset + 17) % CHUNK_CHARS
    return chunks[:n], source


def core_documents(n: int, seed: int) -> tuple[list[str], list[dict[str, Any]]]:
    """benchmarks/core.py's documents and metadata."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, max(10, n // 1_000), n)
    bucket = rng.permutation(n) % 1_000
    sources = ("web", "pdf", "wiki", "mail", "chat")
    docs = [f"record {i}: notes on topic {int(cluster[i])} from the archive" for i in range(n)]
    mds = [{"bucket": int(bucket[i]), "source": sources[i % 5]} for i in range(n)]
    return docs, mds


def random_vectors(n: int, dim: int, seed: int) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Ingest:
    rate: float  # records per second (wall clock)
    cpu_us: float  # CPU time per record, every thread of the process: load-independent


def ingest(
    client: haima.Client,
    name: str,
    keyword: bool,
    docs: Sequence[str],
    mds: Sequence[dict[str, Any]] | None,
    vectors: npt.NDArray[np.float32],
    batch: int,
) -> Ingest:
    """`add` calls of `batch` records into a new collection."""
    col = client.create_collection(
        name,
        configuration={"index": {"type": "flat"}, "keyword": {"enabled": keyword}},
        embedding_function=None,
    )
    start, cpu = time.perf_counter(), time.process_time()
    for lo in range(0, len(docs), batch):
        hi = min(lo + batch, len(docs))
        col.add(
            ids=[str(i) for i in range(lo, hi)],
            embeddings=vectors[lo:hi],
            documents=list(docs[lo:hi]),
            metadatas=None if mds is None else list(mds[lo:hi]),
        )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Ingest(len(docs) / seconds, cpu / len(docs) * 1e6)


def p50_ms(times: Sequence[float]) -> float:
    return statistics.median(times) * 1_000


def query_times(col: haima.Collection, calls: Sequence[dict[str, Any]]) -> list[float]:
    times = []
    for kwargs in calls:
        start = time.perf_counter()
        col.query(n_results=10, **kwargs)
        times.append(time.perf_counter() - start)
    return times


# -- sections -----------------------------------------------------------------------------


def row(what: str, unit: str, off: float | None, on: float | None, note: str = "") -> None:
    ratio = "-" if off is None or on is None or off == 0 else f"{on / off:.2f}x"
    cells = [f"{v:>12,.1f}" if v is not None else f"{'-':>12}" for v in (off, on)]
    print(f"{what:<34}{unit:<10}{cells[0]}{cells[1]}{ratio:>10}  {note}", flush=True)


def header(title: str) -> None:
    print(f"\n== {title}")
    print(f"{'measure':<34}{'unit':<10}{'off':>12}{'on':>12}{'on/off':>10}  note")


def ingest_section(
    root: Path, args: argparse.Namespace, label: str, docs: Sequence[str], mds: Any
) -> tuple[Ingest, Ingest]:
    """The keyword index off and on, `--repeat` times each in alternating order (off,
    on, on, off, …: the first run of a process is slower), each in a new store; the
    medians. The last stores stay in `root` for the sections after. rjieba is loaded
    first, so that its one-time start is not measured."""
    text.segmenter_version()
    vectors = random_vectors(len(docs), args.dim, args.seed)
    runs: dict[bool, list[Ingest]] = {False: [], True: []}
    for repeat in range(args.repeat):
        for keyword in (False, True) if repeat % 2 == 0 else (True, False):
            path = root / f"{label}-{'on' if keyword else 'off'}"
            shutil.rmtree(path, ignore_errors=True)
            name = f"{label}-{keyword}"
            with haima.PersistentClient(path) as client, profiled(name, args.profile):
                runs[keyword].append(
                    ingest(client, "bench", keyword, docs, mds, vectors, args.batch)
                )
    return _median(runs[False]), _median(runs[True])


def _median(runs: list[Ingest]) -> Ingest:
    return Ingest(
        statistics.median(r.rate for r in runs), statistics.median(r.cpu_us for r in runs)
    )


def enable_section(root: Path, label: str, count: int) -> None:
    path = root / f"{label}-off"
    with haima.PersistentClient(path) as client:
        col = client.get_collection("bench", embedding_function=None)
        start = time.perf_counter()
        col.modify(configuration={"keyword": {"enabled": True}})
        seconds = time.perf_counter() - start
    row(f"enable on {count:,} stored chunks", "chunks/s", None, count / seconds, f"{seconds:.1f} s")


def query_section(root: Path, label: str, queries: Sequence[str], dim: int) -> None:
    header(f"queries: sequential, n_results=10, {len(queries)} queries ({label}, keyword on)")
    with haima.PersistentClient(root / f"{label}-on") as client:
        col = client.get_collection("bench", embedding_function=None)
        vectors = random_vectors(len(queries), dim, 99)
        vector_calls = [{"query_embeddings": vectors[i : i + 1]} for i in range(len(queries))]
        keyword_calls = [{"query_texts": [q], "mode": "keyword"} for q in queries]
        hybrid_calls = [
            {"query_texts": [q], "query_embeddings": vectors[i : i + 1], "mode": "hybrid"}
            for i, q in enumerate(queries)
        ]
        query_times(col, keyword_calls[:5])  # warm: segmenter loaded, pages cached
        vector = p50_ms(query_times(col, vector_calls))
        keyword = p50_ms(query_times(col, keyword_calls))
        hybrid = p50_ms(query_times(col, hybrid_calls))
    print(f"{'vector p50':<34}{'ms':<10}{vector:>12.2f}")
    print(f"{'keyword p50':<34}{'ms':<10}{keyword:>12.2f}")
    print(f"{'hybrid p50':<34}{'ms':<10}{hybrid:>12.2f}  (vector + keyword on 50 candidates each)")


def sanity_section() -> None:
    """Keyword retrieval on cmrc2018_zh: each question's own paragraph in the top 10?"""
    if not (CMRC / "corpus.jsonl").exists():
        print(f"\n(retrieval sanity skipped: {CMRC} not found)")
        return
    corpus = [json.loads(line) for line in (CMRC / "corpus.jsonl").open(encoding="utf-8")]
    queries = {
        q["_id"]: q["text"]
        for q in map(json.loads, (CMRC / "queries.jsonl").open(encoding="utf-8"))
    }
    qrels = [
        line.split("\t")[:2] for line in (CMRC / "qrels" / "test.tsv").read_text().splitlines()[1:]
    ]
    client = haima.Client()
    col = client.create_collection(
        "cmrc", configuration={"keyword": {"enabled": True}}, embedding_function=None
    )
    col.add(
        ids=[d["_id"] for d in corpus],
        embeddings=random_vectors(len(corpus), 8, 0),
        documents=[f"{d['title']} {d['text']}" for d in corpus],
    )
    hits, reciprocal = 0, 0.0
    start = time.perf_counter()
    for query_id, doc_id in qrels:
        found = col.query(query_texts=[queries[query_id]], mode="keyword", include=[])["ids"][0]
        if doc_id in found:
            hits += 1
            reciprocal += 1 / (found.index(doc_id) + 1)
    seconds = time.perf_counter() - start
    print(
        f"\n== retrieval sanity: cmrc2018_zh test questions ({len(qrels):,}) over {len(corpus):,} paragraphs"
    )
    print(
        f"keyword Recall@10 {hits / len(qrels):.3f}   MRR@10 {reciprocal / len(qrels):.3f}"
        f"   ({seconds / len(qrels) * 1_000:.2f} ms per query)"
    )
    client.close()


def run(args: argparse.Namespace) -> None:
    print(
        f"keyword index benchmark: n={args.n:,} dim={args.dim} batch={args.batch:,} "
        f"cores={os.cpu_count()} load={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    root = Path(tempfile.mkdtemp(prefix="haima-kw-"))
    try:
        chunks, source = chinese_chunks(args.n, args.seed)
        header(f"ingest: {args.n:,} Chinese chunks of {CHUNK_CHARS} chars ({source}), persistent")
        off, on = ingest_section(root, args, "zh", chunks, None)
        status = "PASS" if on.rate >= INGEST_TARGET else "MISS"
        row("add", "chunks/s", off.rate, on.rate, f"target on >= {INGEST_TARGET:,.0f}: {status}")
        row("add, CPU per chunk (all threads)", "µs", off.cpu_us, on.cpu_us)
        enable_section(root, "zh", len(chunks))

        docs, mds = core_documents(args.n, args.seed)
        header(f"ingest: {args.n:,} core.py-style records (short English documents, metadata)")
        core_off, core_on = ingest_section(root, args, "core", docs, mds)
        cost = core_off.rate / core_on.rate - 1
        decision = "off" if cost > DEFAULT_ON_MAX_COST else "on"
        row(
            "add",
            "records/s",
            core_off.rate,
            core_on.rate,
            f"costs {cost:+.0%} of the time (rule: default on only if <= +10%: {decision})",
        )
        row("add, CPU per record (all threads)", "µs", core_off.cpu_us, core_on.cpu_us)
        step = max(1, len(chunks) // 200)
        query_section(root, "zh", [c[:12] for c in chunks[::step]][:200], args.dim)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if not args.no_sanity:
        sanity_section()
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000, help="records (default 100,000)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch", type=int, default=5_000, help="records per add() call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeat", type=int, default=3, help="ingest runs per side, medians (default 3)"
    )
    parser.add_argument("--quick", action="store_true", help="20,000 records, 1 run per side")
    parser.add_argument("--no-sanity", action="store_true", help="skip the cmrc2018 section")
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="SECTION",
        help="cProfile an ingest: zh-True, zh-False, core-True, core-False (repeatable)",
    )
    args = parser.parse_args(argv)
    args.profile = set(args.profile)
    if args.quick:
        args.n, args.repeat = 20_000, 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
