"""Deterministic record batches for the crash tests: a batch's ids, vectors, documents
and metadata follow from its number and version alone, so the parent can check what a
killed child wrote without talking to it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

DIM = 16
COLLECTION = "durable"


@dataclass(frozen=True)
class Op:
    """One step of a writer's plan. kinds: add, update, delete_where, delete_ids, build."""

    kind: str
    batch: int = -1
    size: int = 0
    version: int = 1


@dataclass(frozen=True)
class Batch:
    ids: list[str]
    embeddings: npt.NDArray[np.float32]
    documents: list[str]
    metadatas: list[dict[str, Any]]


def batch_ids(batch: int, size: int) -> list[str]:
    return [f"b{batch}-{i}" for i in range(size)]


def batch_data(batch: int, size: int, version: int) -> Batch:
    """The records of `batch` as written by its `version`-th write (1: add)."""
    rng = np.random.default_rng([batch, version])
    vectors = rng.standard_normal((size, DIM)).astype(np.float32)
    docs = [f"batch {batch} v{version} record {i}" for i in range(size)]
    if version == 1:
        mds: list[dict[str, Any]] = [
            {"batch": batch, "i": i, "v": 1, "tags": [f"t{batch % 3}", "all"]} for i in range(size)
        ]
    else:
        mds = [{"batch": batch, "i": i, "v": version, "odd": i % 2 == 1} for i in range(size)]
    return Batch(batch_ids(batch, size), vectors, docs, mds)


def update_metadatas(batch: int, size: int, version: int) -> list[dict[str, Any]]:
    """What `update` sends to turn version 1 metadata into `version`'s (merge semantics:
    given keys replace, None removes `tags`, `batch` and `i` stay)."""
    return [{"v": version, "tags": None, "odd": i % 2 == 1} for i in range(size)]


def state_after(ops: list[Op], count: int) -> dict[int, tuple[int, int]]:
    """batch → (size, version) after the first `count` ops."""
    state: dict[int, tuple[int, int]] = {}
    for op in ops[:count]:
        if op.kind == "add":
            state[op.batch] = (op.size, 1)
        elif op.kind == "update":
            state[op.batch] = (state[op.batch][0], op.version)
        elif op.kind in ("delete_where", "delete_ids"):
            del state[op.batch]
    return state


def save_plan(path: Path, ops: list[Op]) -> None:
    path.write_text(json.dumps([asdict(op) for op in ops]))


def load_plan(path: Path) -> list[Op]:
    return [Op(**item) for item in json.loads(path.read_text())]
