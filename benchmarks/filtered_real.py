"""Filtered search on real sentence embeddings: Haima beside raw FAISS HNSW + IDSelector.

core.py's clustered vectors are kind to graph search; real embeddings are not. This embeds
the paragraphs of the Python 3.11 documentation (../shared/data/corpus_en_python311_docs)
with Haima's default model (once; the vectors are cached), holds out 200 paragraphs as
queries, and compares recall@10 and QPS at several filter selectivities:

* FAISS: `IndexHNSWFlat` (M=16, efConstruction=100) with `SearchParametersHNSW(efSearch=100,
  sel=IDSelectorBitmap)`, the filter's bitmap built once;
* Haima, first queries: the planner's scan or restricted graph (the filtered view is
  asked for on the third query and built meanwhile by the background indexer);
* Haima, repeated filter: after `build_index()` has finished the filtered view.

    python benchmarks/filtered_real.py            # about two minutes, most of it embedding

A script, not a test: it prints a table and asserts nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as in core.py: before faiss loads

import argparse
import hashlib
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import haima
from benchmarks.core import (
    EF_CONSTRUCTION,
    EF_SEARCH,
    HNSW_M,
    Floats,
    K,
    faiss_runner,
    ground_truth,
    haima_runner,
    hnsw_params,
    recall,
    timed_pair,
)
from haima.embeddings.default import default_embedding_function

CORPUS = Path("/work/shared/data/corpus_en_python311_docs/docs.jsonl")
CACHE = Path.home() / ".cache" / "haima" / "bench"
#: Filter `bucket < b` keeps b/1000 of the records.
SELECTIVITIES = {"30%": 300, "20%": 200, "10%": 100, "5%": 50, "1%": 10}


def paragraphs(path: Path) -> list[str]:
    """Distinct paragraphs of 40+ characters, cut to 300."""
    texts: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        for block in re.split(r"\n\s*\n", json.loads(line)["text"]):
            text = " ".join(block.split())
            if len(text) >= 40:
                texts.append(text[:300])
    return list(dict.fromkeys(texts))


def embedded(texts: list[str]) -> Floats:
    """The texts' default-model vectors, cached by the texts' digest."""
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cached = CACHE / f"python-docs-default-{digest}.npy"
    if cached.exists():
        return np.load(cached)  # type: ignore[no-any-return]
    model = default_embedding_function(progress=True)
    start = time.perf_counter()
    vectors = np.asarray(model(texts), dtype=np.float32)
    print(f"embedded {len(texts):,} paragraphs in {time.perf_counter() - start:.0f}s")
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cached, vectors)
    return vectors


def run(n_queries: int) -> None:
    if not CORPUS.exists():
        print(f"skipped: {CORPUS} is not here")
        return
    vectors = embedded(paragraphs(CORPUS))
    rng = np.random.default_rng(1)
    order = rng.permutation(len(vectors))
    queries = np.ascontiguousarray(vectors[order[:n_queries]])
    base = np.ascontiguousarray(vectors[order[n_queries:]])
    n, dim = base.shape
    bucket = np.random.default_rng(5).permutation(n) % 1000
    normalized = base / np.linalg.norm(base, axis=1, keepdims=True)
    queries_normalized = queries / np.linalg.norm(queries, axis=1, keepdims=True)

    client = haima.Client()
    col = client.create_collection(
        "python-docs",
        configuration={
            "index": {
                "type": "hnsw",
                "max_neighbors": HNSW_M,
                "ef_construction": EF_CONSTRUCTION,
                "ef_search": EF_SEARCH,
            },
            "metric": "cosine",
        },
        embedding_function=None,
    )
    for lo in range(0, n, 5_000):
        col.add(
            ids=[str(i) for i in range(lo, min(lo + 5_000, n))],
            embeddings=base[lo : lo + 5_000],
            metadatas=[{"bucket": int(b)} for b in bucket[lo : lo + 5_000]],
        )
    col.build_index()
    index: Any = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.add(np.ascontiguousarray(normalized, dtype=np.float32))
    unfiltered = ground_truth(normalized, queries_normalized, K, None)
    index.hnsw.efSearch = EF_SEARCH
    _, labels = index.search(queries_normalized, K)
    print(
        f"{n:,} paragraphs x {dim} dims, {n_queries} queries; unfiltered HNSW recall@10 "
        f"{recall(labels.tolist(), unfiltered):.3f} (ef {EF_SEARCH})\n"
    )
    print(
        f"{'filter':<8}{'matches':>8}  {'FAISS recall':>12}{'QPS':>7}  "
        f"{'Haima first: recall':>20}{'QPS':>7}  {'repeated: recall':>17}{'QPS':>7}"
    )
    for label, bound in SELECTIVITIES.items():
        mask = bucket < bound
        truth = ground_truth(normalized, queries_normalized, K, mask)
        bitmap = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
        run_faiss = faiss_runner(index, queries_normalized, hnsw_params(EF_SEARCH, selector))
        run_haima = haima_runner(col, queries, where={"bucket": {"$lt": bound}})
        run_haima(0)  # the plan
        first = timed_pair(run_haima, run_faiss, n_queries)
        col.build_index()  # the filtered view, if this filter qualifies
        again = timed_pair(run_haima, run_faiss, n_queries)
        print(
            f"{label:<8}{int(mask.sum()):>8}  {recall(again.faiss_found, truth):>12.3f}"
            f"{n_queries / sum(again.faiss_times):>7.0f}  "
            f"{recall(first.haima_found, truth):>20.3f}"
            f"{n_queries / sum(first.haima_times):>7.0f}  "
            f"{recall(again.haima_found, truth):>17.3f}"
            f"{n_queries / sum(again.haima_times):>7.0f}"
        )
    client.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    run(parser.parse_args(argv).queries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
