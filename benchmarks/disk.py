"""The store's size on disk beside Chroma's, for the same records.

    python benchmarks/disk.py [--n 20000] [--dim 384]

Writes the same vectors (cosine), ids and two metadata fields in batches of 1,000 into
Haima with a flat index, Haima with HNSW, and Chroma 1.5.9's `PersistentClient` (the
`chromadb` package), closes each (so snapshots and checkpoints are done), and prints the
folders' sizes, what the raw vectors take, and Chroma/Haima (above 1: Haima smaller).
Asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import haima


def folder_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def records(n: int, dim: int) -> tuple[list[str], Any, list[dict[str, Any]]]:
    vectors = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    ids = [f"r{i}" for i in range(n)]
    metadatas = [{"bucket": i % 100, "name": f"record {i}"} for i in range(n)]
    return ids, vectors, metadatas


def fill(col: Any, ids: list[str], vectors: Any, metadatas: list[dict[str, Any]]) -> None:
    for lo in range(0, len(ids), 1000):
        col.add(ids=ids[lo : lo + 1000], embeddings=vectors[lo : lo + 1000],
                metadatas=metadatas[lo : lo + 1000])  # fmt: skip


def haima_size(folder: Path, index: str, data: tuple[Any, Any, Any]) -> float:
    with haima.PersistentClient(folder / "store") as client:
        col = client.create_collection(
            "disk", configuration={"index": {"type": index}, "metric": "cosine"},
            embedding_function=None,
        )  # fmt: skip
        fill(col, *data)
        col.build_index()
    return folder_mib(folder / "store")


def chroma_size(folder: Path, data: tuple[Any, Any, Any]) -> float:
    import chromadb

    client = chromadb.PersistentClient(path=str(folder / "chroma"))
    col = client.create_collection(
        "disk", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )
    fill(col, *data)
    del col, client
    gc.collect()
    return folder_mib(folder / "chroma")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    data = records(args.n, args.dim)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sizes = {
            "Haima, flat": haima_size(root / "flat", "flat", data),
            "Haima, HNSW": haima_size(root / "hnsw", "hnsw", data),
        }
        chroma = chroma_size(root, data)
    raw = data[1].nbytes / 2**20
    print(f"{args.n:,} x {args.dim} cosine, 2 metadata fields; raw vectors {raw:.1f} MiB")
    print(f"| store | MiB | Chroma / Haima |\n|---|---|---|\n| Chroma (HNSW) | {chroma:.1f} | |")
    for name, size in sizes.items():
        print(f"| {name} | {size:.1f} | {chroma / size:.2f}x |")


if __name__ == "__main__":
    main()
