"""Writes tests/data/store_v1: a small store made by Haima 0.1 (schema version 1).

Kept in the repository so that every later schema migration is tested against a store
an older release really wrote. Run it only to create the fixture, never to update it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

import haima

TARGET = Path(__file__).parent / "data" / "store_v1"


def main() -> None:
    if TARGET.exists():
        sys.exit(f"{TARGET} exists: fixtures are written once")
    with haima.PersistentClient(TARGET) as client:
        col = client.create_collection(
            "fixture-docs", metadata={"made_by": "haima 0.1"}, embedding_function=None
        )
        vectors = np.eye(8, dtype=np.float32)[:6] + 0.01
        col.add(
            ids=[f"doc{i}" for i in range(6)],
            embeddings=vectors,
            documents=[f"第{i}号文档 document {i}" for i in range(6)],
            metadatas=[{"i": i, "tags": ["a", "b"] if i % 2 else ["c"]} for i in range(6)],
        )
        col.delete(ids=["doc5"])
    shutil.rmtree(TARGET / "indexes", ignore_errors=True)  # a cache; rebuilt on open


if __name__ == "__main__":
    main()
