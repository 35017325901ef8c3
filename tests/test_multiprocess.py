"""Two processes on one store: a writer child adds, updates, upserts and deletes in steps;
this process, with one PersistentClient opened before any write, sees every step in `get`
and `query` without reopening. Steps are coordinated through the child's stdin/stdout."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import haima
from tests.helpers.proc import spawn
from tests.helpers.reference import check_query_row
from tests.helpers.step_writer import COLLECTION

DIM = 16


@dataclass
class Model:
    """What the store should hold: id → (vector, document, metadata)."""

    records: dict[str, tuple[np.ndarray, str | None, dict[str, Any] | None]] = field(
        default_factory=dict
    )
    #: Vectors that no longer belong to any record (deleted or replaced).
    gone: list[np.ndarray] = field(default_factory=list)

    def apply(self, command: dict[str, Any]) -> None:
        op = command["op"]
        ids: list[str] = command.get("ids") or []
        if op == "delete":
            doomed = set(ids)
            where = command.get("where")
            if where is not None:
                ((key, value),) = where.items()
                doomed |= {
                    i for i, (_, _, md) in self.records.items() if md and md.get(key) == value
                }
            for record_id in doomed & set(self.records):
                self.gone.append(self.records.pop(record_id)[0])
            return
        if op not in ("add", "update", "upsert"):
            return
        embeddings = command.get("embeddings")
        documents = command.get("documents")
        metadatas = command.get("metadatas")
        for n, record_id in enumerate(ids):
            vector = np.asarray(embeddings[n], np.float32) if embeddings is not None else None
            doc = documents[n] if documents is not None else None
            change = metadatas[n] if metadatas is not None else None
            old = self.records.get(record_id)
            if old is None:
                assert vector is not None
                md = {k: v for k, v in (change or {}).items() if v is not None}
                self.records[record_id] = (vector, doc, md or None)
                continue
            merged = dict(old[2] or {})
            for key, value in (change or {}).items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            if vector is not None:
                self.gone.append(old[0])
            self.records[record_id] = (
                vector if vector is not None else old[0],
                doc if doc is not None else old[1],
                merged or None,
            )


class Writer:
    """The child process: send a command, wait for its answer."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        assert self.read() == "ready"

    def read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"writer exited with {self.proc.wait()}"
        return line.strip()

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        answer = self.read()
        assert answer == "ok", f"{command['op']}: {answer}"


def records(prefix: str, rows: range, seed: int, step: int) -> dict[str, Any]:
    vectors = np.random.default_rng(seed).standard_normal((len(rows), DIM)).astype(np.float32)
    return {
        "ids": [f"{prefix}-{i}" for i in rows],
        "embeddings": vectors.tolist(),
        "documents": [f"{prefix} record {i} written at step {step}" for i in rows],
        "metadatas": [{"step": step, "grp": i % 4} for i in rows],
    }


def check(col: haima.Collection, model: Model, exact: bool, seed: int) -> None:
    """Everything the reader sees equals the model: get, count and query."""
    got = col.get(include=["embeddings", "documents", "metadatas"])
    assert got["embeddings"] is not None and got["documents"] is not None
    assert got["metadatas"] is not None
    assert sorted(got["ids"]) == sorted(model.records)
    assert col.count() == len(model.records)
    for n, record_id in enumerate(got["ids"]):
        vector, doc, md = model.records[record_id]
        assert np.array_equal(got["embeddings"][n], vector), record_id
        assert got["documents"][n] == doc, record_id
        assert got["metadatas"][n] == md, record_id

    live = {i: r[0] for i, r in model.records.items()}
    rng = np.random.default_rng(seed)
    names = list(live)
    own = [names[i] for i in rng.choice(len(names), min(25, len(names)), replace=False)]
    queries = [live[i] for i in own]
    gone = [model.gone[i] for i in rng.choice(len(model.gone), min(25, len(model.gone)))]
    queries += gone
    res = col.query(query_embeddings=np.stack(queries), n_results=8)
    assert res["distances"] is not None
    recalls = []
    for n, (ids, dists) in enumerate(zip(res["ids"], res["distances"], strict=True)):
        # Deleted and replaced vectors never answer; the rows stay full.
        recalls.append(check_query_row(ids, dists, queries[n], live, 8, exact=exact))
        if n < len(own):
            assert ids[0] == own[n] and dists[0] < 1e-5, (own[n], ids[:3], dists[:3])
    assert np.mean(recalls) >= 0.95

    # A filtered query sees the newest metadata too.
    step = max(md["step"] for _, _, md in model.records.values() if md and "step" in md)
    members = {i: r[0] for i, r in model.records.items() if r[2] and r[2].get("step") == step}
    res = col.query(query_embeddings=queries[:3], n_results=5, where={"step": step})
    assert res["distances"] is not None
    for q, ids, dists in zip(queries[:3], res["ids"], res["distances"], strict=True):
        check_query_row(ids, dists, q, members, 5, exact=exact)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_reader_sees_each_step_of_another_process(tmp_path: Path, index_type: str) -> None:
    store = tmp_path / "store"
    exact = index_type == "flat"
    model = Model()
    settings = haima.Settings(background_indexing=False)
    with (
        haima.PersistentClient(store, settings=settings) as reader,
        spawn("tests.helpers.step_writer", [str(store), index_type], tmp_path / "w.log") as proc,
    ):
        writer = Writer(proc)
        col = reader.get_collection(COLLECTION, embedding_function=None)
        assert col.count() == 0

        def step(command: dict[str, Any]) -> None:
            writer.send(command)
            model.apply(command)

        step({"op": "add", **records("a", range(400), 1, 1)})
        check(col, model, exact, 1)

        # Update: new vectors (the opposite direction) for some, metadata merges (a key
        # removed, one changed) for others, new documents for a third group.
        moved = [f"a-{i}" for i in range(60)]
        flipped = [(-np.asarray(model.records[i][0])).tolist() for i in moved]
        step({"op": "update", "ids": moved, "embeddings": flipped})
        step(
            {
                "op": "update",
                "ids": [f"a-{i}" for i in range(60, 120)],
                "metadatas": [{"step": 2, "grp": None, "note": "x"}] * 60,
            }
        )
        step(
            {
                "op": "update",
                "ids": [f"a-{i}" for i in range(120, 150)],
                "documents": [f"rewritten {i}" for i in range(30)],
            }
        )
        check(col, model, exact, 2)
        assert col.get(ids=["a-60"])["metadatas"] == [{"step": 2, "note": "x"}]

        step({"op": "delete", "ids": [f"a-{i}" for i in range(200, 260)]})
        step({"op": "delete", "where": {"grp": 3}})
        check(col, model, exact, 3)
        assert not col.get(ids=["a-200", "a-203", "a-7"])["ids"]

        # Upsert: half existing (replaced vector, merged metadata), half new.
        upsert = records("a", range(300, 330), 4, 4)
        fresh = records("u", range(30), 5, 4)
        step({"op": "upsert", **{k: upsert[k] + fresh[k] for k in upsert}})
        check(col, model, exact, 4)

        # The writer builds and saves its index, which prunes the deletion log below the
        # reader's index: the reader must rebuild rather than miss deletions.
        step({"op": "add", **records("b", range(2500), 6, 5)})
        step({"op": "delete", "ids": [f"a-{i}" for i in range(270, 290)]})
        step({"op": "build"})
        check(col, model, exact, 5)
        step({"op": "delete", "where": {"grp": 1}})
        replaced = records("b", range(200), 7, 6)["embeddings"]
        step({"op": "update", "ids": [f"b-{i}" for i in range(0, 400, 2)], "embeddings": replaced})
        check(col, model, exact, 6)

        # Now the reader builds and saves (pruning the log under the writer), and the
        # writer carries on.
        col.build_index()
        step({"op": "delete", "ids": [f"b-{i}" for i in range(1000, 1600)]})
        step({"op": "add", **records("c", range(300), 8, 7)})
        check(col, model, exact, 7)

        writer.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")  # type: ignore[union-attr]
        writer.proc.stdin.flush()  # type: ignore[union-attr]
        assert proc.wait() == 0, (tmp_path / "w.log").read_text()
        check(col, model, exact, 8)

    # A fresh open agrees as well.
    with haima.PersistentClient(store, settings=settings) as again:
        check(again.get_collection(COLLECTION, embedding_function=None), model, exact, 9)
