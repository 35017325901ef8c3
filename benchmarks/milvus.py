"""Haima on Milvus Lite beside raw pymilvus on the same Milvus Lite, in one run.

    python benchmarks/milvus.py [--n 20000] [--dim 128] [--queries 200]

Both write the same clustered vectors (cosine) with an integer `bucket` (0-999) in
batches of 1,000 into an HNSW index (M 16, efConstruction 100, ef 100), then answer the
same top-10 queries: unfiltered and filtered to 50/10/1/0.1% of the records by `bucket`.
Raw pymilvus runs twice: with what a Milvus user would write for a known schema (an
INT64 `bucket` field, `bucket < k`) and with metadata in a JSON field, as Haima keeps it
(`metadata["bucket"] < k`): the second isolates Haima's own layer. Haima compiles its
`where` to an expression over its JSON field and ranks filtered sets of at most 512
records exactly. Prints QPS, recall@10 against exact search, and Haima/raw ratios (QPS above 1:
Haima faster; ingest above 1: Haima faster). Asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import haima

SELECTIVITIES = [None, 0.5, 0.1, 0.01, 0.001]


def data(n: int, dim: int, queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((64, dim)).astype(np.float32)
    vectors = centers[rng.integers(0, 64, n)] + 0.4 * rng.standard_normal((n, dim))
    probes = centers[rng.integers(0, 64, queries)] + 0.4 * rng.standard_normal((queries, dim))
    buckets = rng.permutation(np.arange(n) % 1000)
    return vectors.astype(np.float32), probes.astype(np.float32), buckets


def exact_top10(vectors: np.ndarray, probes: np.ndarray, mask: np.ndarray) -> list[set[int]]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = probes / np.linalg.norm(probes, axis=1, keepdims=True)
    scores = q @ unit[mask].T
    members = np.flatnonzero(mask)
    return [set(members[np.argsort(-row)[:10]].tolist()) for row in scores]


def recall(found: list[list[int]], truth: list[set[int]]) -> float:
    hits = sum(len(set(f) & t) for f, t in zip(found, truth, strict=True))
    return hits / sum(min(10, len(t)) for t in truth)


def run_raw(
    path: str, vectors: np.ndarray, probes: np.ndarray, buckets: np.ndarray, json: bool
) -> dict[str, Any]:
    """Raw pymilvus: `bucket` as an INT64 field, or (`json`) in a JSON metadata field."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(path)
    start = time.perf_counter()  # ingest counts creating the collection, as Haima's does
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
    schema.add_field("metadata" if json else "bucket", DataType.JSON if json else DataType.INT64)
    params = client.prepare_index_params()
    params.add_index("embedding", index_type="HNSW", metric_type="COSINE",
                     params={"M": 16, "efConstruction": 100})  # fmt: skip
    client.create_collection("raw", schema=schema, index_params=params, consistency_level="Strong")
    for lo in range(0, len(vectors), 1000):
        rows = [{"id": i, "embedding": vectors[i].tolist(),
                 **({"metadata": {"bucket": int(buckets[i])}} if json else {"bucket": int(buckets[i])})}
                for i in range(lo, min(lo + 1000, len(vectors)))]  # fmt: skip
        client.insert("raw", rows)
    out: dict[str, Any] = {"ingest": time.perf_counter() - start}
    for sel in SELECTIVITIES:
        field = 'metadata["bucket"]' if json else "bucket"
        expression = "" if sel is None else f"{field} < {int(1000 * sel)}"
        found = []
        start = time.perf_counter()
        for q in probes:
            answer = client.search("raw", data=[q.tolist()], anns_field="embedding", limit=10,
                                   filter=expression, output_fields=["id"],
                                   search_params={"metric_type": "COSINE", "params": {"ef": 100}})  # fmt: skip
            found.append([h["id"] for h in answer[0]])
        out[sel] = (len(probes) / (time.perf_counter() - start), found)
    client.close()
    return out


def run_haima(
    path: str, vectors: np.ndarray, probes: np.ndarray, buckets: np.ndarray
) -> dict[str, Any]:
    client = haima.MilvusClient(path)
    start = time.perf_counter()  # the Milvus collection is made by the first add
    col = client.create_collection(
        "haima",
        configuration={"index": {"type": "hnsw", "max_neighbors": 16, "ef_construction": 100,
                                 "ef_search": 100}, "metric": "cosine"},
        embedding_function=None,
    )  # fmt: skip
    ids = [str(i) for i in range(len(vectors))]
    for lo in range(0, len(vectors), 1000):
        hi = min(lo + 1000, len(vectors))
        col.add(ids=ids[lo:hi], embeddings=vectors[lo:hi],
                metadatas=[{"bucket": int(b)} for b in buckets[lo:hi]])  # fmt: skip
    out: dict[str, Any] = {"ingest": time.perf_counter() - start}
    for sel in SELECTIVITIES:
        where = None if sel is None else {"bucket": {"$lt": int(1000 * sel)}}
        found = []
        start = time.perf_counter()
        for q in probes:
            answer = col.query(query_embeddings=q, n_results=10, where=where, include=[])
            found.append([int(i) for i in answer["ids"][0]])
        out[sel] = (len(probes) / (time.perf_counter() - start), found)
    client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    vectors, probes, buckets = data(args.n, args.dim, args.queries)
    with tempfile.TemporaryDirectory() as tmp:
        raw = run_raw(str(Path(tmp) / "raw.db"), vectors, probes, buckets, json=False)
        raw_json = run_raw(str(Path(tmp) / "raw_json.db"), vectors, probes, buckets, json=True)
        ours = run_haima(str(Path(tmp) / "haima.db"), vectors, probes, buckets)
    print(
        f"Milvus Lite, {args.n} x {args.dim} cosine, HNSW M16 ef100, {args.queries} top-10 queries\n"
    )
    print(f"ingest: raw pymilvus {raw['ingest']:.2f} s (JSON field: {raw_json['ingest']:.2f} s), "
          f"Haima {ours['ingest']:.2f} s; Haima/raw speed {raw['ingest'] / ours['ingest']:.2f}x "
          f"(JSON: {raw_json['ingest'] / ours['ingest']:.2f}x)\n")  # fmt: skip
    print("raw: bucket as an INT64 field; raw JSON: in a JSON field, as Haima keeps metadata\n")
    print("| filter | raw QPS | raw JSON QPS | Haima QPS | Haima/raw | Haima/raw JSON "
          "| recall@10 raw | raw JSON | Haima |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for sel in SELECTIVITIES:
        mask = np.ones(len(vectors), bool) if sel is None else buckets < int(1000 * sel)
        truth = exact_top10(vectors, probes, mask)
        raw_qps, raw_found = raw[sel]
        json_qps, json_found = raw_json[sel]
        our_qps, our_found = ours[sel]
        label = "none" if sel is None else f"{sel:.1%}"
        print(f"| {label} | {raw_qps:.1f} | {json_qps:.1f} | {our_qps:.1f} | "
              f"{our_qps / raw_qps:.2f}x | {our_qps / json_qps:.2f}x | "
              f"{recall(raw_found, truth):.3f} | {recall(json_found, truth):.3f} | "
              f"{recall(our_found, truth):.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
