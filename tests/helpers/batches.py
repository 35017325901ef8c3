"""Deterministic record batches for the crash tests: a batch's ids, vectors, documents
and metadata follow from its number and version alone, so the parent can check what a
killed child wrote without talking to it.

A plan is a list of steps (`Op`), each one write call over one whole batch; `apply` runs
a step against a collection, `state_after` says what the store holds after the first m
steps."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import haima

DIM = 16
COLLECTION = "durable"

#: The torture tests' collections: an HNSW one (indexed in the background while writes
#: go on) and an exact one with the keyword index (FTS5 rows written in the same
#: transaction as the records).
TORTURE_COLLECTIONS: dict[str, dict[str, Any]] = {
    "torture-hnsw": {"index": {"type": "hnsw", "ef_construction": 40}},
    "torture-kw": {"index": {"type": "flat"}, "keyword": {"enabled": True}},
}


@dataclass(frozen=True)
class Op:
    """One step of a writer's plan. kinds: add, upsert (version 1: new records, else a
    new version of existing ones), update, delete_where, delete_ids, build."""

    kind: str
    batch: int = -1
    size: int = 0
    version: int = 1
    collection: str = COLLECTION


@dataclass(frozen=True)
class Batch:
    ids: list[str]
    embeddings: npt.NDArray[np.float32]
    documents: list[str]
    metadatas: list[dict[str, Any]]


def batch_ids(batch: int, size: int) -> list[str]:
    return [f"b{batch}-{i}" for i in range(size)]


def keyword_of(batch: int, version: int) -> str:
    """A word found in the documents of exactly one version of one batch."""
    return f"b{batch}v{version}"


def batch_data(batch: int, size: int, version: int) -> Batch:
    """The records of `batch` as written by its `version`-th write (1: add)."""
    rng = np.random.default_rng([batch, version])
    vectors = rng.standard_normal((size, DIM)).astype(np.float32)
    word = keyword_of(batch, version)
    docs = [f"batch {batch} v{version} record {i} {word}" for i in range(size)]
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


def apply(col: haima.Collection, op: Op) -> None:
    """Run one step as one write call."""
    if op.kind == "add" or (op.kind == "upsert" and op.version == 1):
        data = batch_data(op.batch, op.size, 1)
        write = col.add if op.kind == "add" else col.upsert
        write(
            ids=data.ids,
            embeddings=data.embeddings,
            documents=data.documents,
            metadatas=data.metadatas,
        )
    elif op.kind in ("update", "upsert"):
        data = batch_data(op.batch, op.size, op.version)
        write = col.update if op.kind == "update" else col.upsert
        write(
            ids=data.ids,
            embeddings=data.embeddings,
            documents=data.documents,
            metadatas=update_metadatas(op.batch, op.size, op.version),
        )
    elif op.kind == "delete_where":
        col.delete(where={"batch": op.batch})
    elif op.kind == "delete_ids":
        col.delete(ids=batch_ids(op.batch, op.size))
    elif op.kind == "build":
        col.build_index()
    else:
        raise ValueError(f"unknown op {op.kind!r}")


def state_after(ops: list[Op], count: int) -> dict[int, tuple[int, int]]:
    """batch → (size, version) after the first `count` ops."""
    state: dict[int, tuple[int, int]] = {}
    for op in ops[:count]:
        if op.kind in ("add", "upsert"):
            state[op.batch] = (op.size, op.version)
        elif op.kind == "update":
            state[op.batch] = (state[op.batch][0], op.version)
        elif op.kind in ("delete_where", "delete_ids"):
            del state[op.batch]
    return state


def gone_vectors(ops: list[Op], count: int) -> dict[str, npt.NDArray[np.float32]]:
    """Per collection, the vectors the first `count` ops removed: deleted batches and
    replaced versions."""
    out: dict[str, list[npt.NDArray[np.float32]]] = {}
    state: dict[int, tuple[int, int]] = {}
    for op in ops[:count]:
        if op.kind in ("update", "upsert", "delete_where", "delete_ids") and op.batch in state:
            size, version = state.pop(op.batch)
            out.setdefault(op.collection, []).append(batch_data(op.batch, size, version).embeddings)
        if op.kind in ("add", "upsert", "update"):
            state[op.batch] = (op.size, op.version)
    return {name: np.concatenate(parts) for name, parts in out.items()}


def make_plan(
    seed: int,
    steps: int,
    sizes: list[int],
    big: dict[int, int],
    builds: bool,
    *,
    upserts: bool = False,
    collections: Sequence[str] = (COLLECTION,),
    max_records: int | None = None,
    first_batch: int = 0,
    batch_stride: int = 1,
) -> list[Op]:
    """A random plan of adds, updates and deletes (by where and by ids) of whole batches;
    `big` puts a batch of a given size at a given step; `builds` adds build_index steps.
    `upserts`: some adds and updates are upserts. New batches go to one of `collections`
    at random. Past `max_records` live records the plan deletes instead of growing.
    Batch numbers are first_batch, first_batch + batch_stride, ... (writers that share a
    store get disjoint ones)."""
    rng = np.random.default_rng(seed)
    ops: list[Op] = []
    live: dict[int, tuple[int, int, str]] = {}
    next_batch = first_batch
    records = 0
    for step in range(steps):
        roll = rng.random()
        crowded = max_records is not None and records > max_records
        if step in big or not live or (roll < 0.55 and not crowded):
            size = big.get(step, int(rng.choice(sizes)))
            home = collections[0] if len(collections) == 1 else str(rng.choice(collections))
            kind = "upsert" if upserts and rng.random() < 0.3 else "add"
            ops.append(Op(kind, next_batch, size, 1, home))
            live[next_batch] = (size, 1, home)
            records += size
            next_batch += batch_stride
            continue
        batch = int(rng.choice(sorted(live)))
        size, version, home = live[batch]
        if roll < 0.7 and not crowded:
            kind = "upsert" if upserts and rng.random() < 0.5 else "update"
            ops.append(Op(kind, batch, size, version + 1, home))
            live[batch] = (size, version + 1, home)
        elif crowded or roll < 0.85 or not builds:
            kind = str(rng.choice(["delete_where", "delete_ids"]))
            ops.append(Op(kind, batch, size, version, home))
            del live[batch]
            records -= size
        else:
            ops.append(Op("build", collection=home))
    return ops


def save_plan(path: Path, ops: list[Op]) -> None:
    path.write_text(json.dumps([asdict(op) for op in ops]))


def load_plan(path: Path) -> list[Op]:
    return [Op(**item) for item in json.loads(path.read_text())]
