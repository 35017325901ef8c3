"""Random sequences of writes and reads against a plain Python model of a collection.

The model is a dict id → (vector, document, metadata) plus each record's position in
insertion order (a record whose vector changes moves to the end, as `get` reports
records in the order their current vectors were written). Queries are checked against
exact nearest neighbours in numpy over a flat index, allowing any order among ties. The
persistent variant also closes and reopens the client and checks everything again.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import haima
from tests.helpers.reference import check_query_row

DIM = 4
NAME = "machine"
ID_POOL = [f"id{i}" for i in range(16)]

Record = tuple[np.ndarray, str | None, dict[str, Any] | None]

# -- strategies -------------------------------------------------------------------------------

# Small integer coordinates make exact ties (and zero vectors) common.
vectors = st.lists(st.integers(-3, 3), min_size=DIM, max_size=DIM).map(
    lambda v: np.asarray(v, np.float32)
)
documents = st.one_of(st.none(), st.sampled_from(["alpha", "beta gamma", "北京 天气", ""]))
values: dict[str, st.SearchStrategy[Any]] = {
    "n": st.integers(0, 3),
    "s": st.sampled_from(["x", "y"]),
    "b": st.booleans(),
    "f": st.sampled_from([0.5, 1.5, 2.0]),
}
#: Metadata for add: keys with values (None values are dropped by add).
metadata_in = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional=values),
)
#: A metadata change for update/upsert: None removes the key.
metadata_change = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={k: st.one_of(st.none(), v) for k, v in values.items()}),
)

# `where` filters and their reference semantics (see haima/filters.py): a comparison only
# matches a present value of its type; $ne and $nin also match records without the key.
Where = tuple[dict[str, Any], Callable[[dict[str, Any] | None], bool]]


def _where_strategy() -> st.SearchStrategy[Where]:
    def eq(key: str) -> st.SearchStrategy[Where]:
        return values[key].map(
            lambda v: ({key: v}, lambda md: bool(md) and key in md and _same(md[key], v))
        )

    gte = st.integers(0, 3).map(
        lambda v: (
            {"n": {"$gte": v}},
            lambda md: bool(md) and isinstance(md.get("n"), int) and md["n"] >= v,
        )
    )
    ne = st.sampled_from(["x", "y"]).map(
        lambda v: ({"s": {"$ne": v}}, lambda md: not (md and md.get("s") == v))
    )
    isin = st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True).map(
        lambda vs: (
            {"n": {"$in": vs}},
            lambda md: bool(md) and isinstance(md.get("n"), int) and md["n"] in vs,
        )
    )
    leaf = st.one_of(eq("n"), eq("s"), eq("b"), eq("f"), gte, ne, isin)

    def combine(parts: list[Where], op: str) -> Where:
        test = all if op == "$and" else any
        return ({op: [p[0] for p in parts]}, lambda md: test(p[1](md) for p in parts))

    both = st.tuples(st.lists(leaf, min_size=2, max_size=3), st.sampled_from(["$and", "$or"]))
    return st.one_of(leaf, both.map(lambda a: combine(*a)))


def _same(stored: Any, wanted: Any) -> bool:
    """Equality as filters define it: a bool only equals a bool."""
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored == wanted
    return bool(stored == wanted)


wheres = _where_strategy()


# -- the machine ------------------------------------------------------------------------------


class CollectionMachine(RuleBasedStateMachine):
    persistent = False

    def __init__(self) -> None:
        super().__init__()
        self.path: Path | None = None
        self.client = self._open()
        self.col = self.client.create_collection(
            NAME, configuration={"index": {"type": "flat"}}, embedding_function=None
        )
        self.model: dict[str, Record] = {}
        #: id → insertion position of its current vector (get's order).
        self.order: dict[str, int] = {}
        self.clock = 0

    def _open(self) -> haima.Client:
        if not self.persistent:
            return haima.Client()
        if self.path is None:
            self.path = Path(tempfile.mkdtemp(prefix="haima-machine-"))
        return haima.PersistentClient(self.path)

    def teardown(self) -> None:
        self.client.close()
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)

    # -- model helpers ----------------------------------------------------------------------

    def _draw_ids(self, data: st.DataObject, kind: str, max_size: int = 5) -> list[str]:
        """Ids for a write: mostly new ones (add) or existing ones (update, delete), with
        now and then any ids from the pool, so that errors and no-ops happen too."""
        pool = ID_POOL
        if kind != "any" and data.draw(st.integers(0, 9)) > 0:
            existing = sorted(self.model)
            pool = existing if kind == "existing" else [i for i in ID_POOL if i not in self.model]
            if not pool:
                pool = ID_POOL
        return data.draw(
            st.lists(st.sampled_from(pool), min_size=1, max_size=max_size, unique=True)
        )

    def _put(self, record_id: str, record: Record, new_vector: bool) -> None:
        self.model[record_id] = record
        if new_vector:
            self.order[record_id] = self.clock
            self.clock += 1

    def _remove(self, record_id: str) -> None:
        self.model.pop(record_id, None)
        self.order.pop(record_id, None)

    @staticmethod
    def _merge(old: dict[str, Any] | None, change: dict[str, Any] | None) -> dict[str, Any] | None:
        if change is None:
            return old
        merged = dict(old or {})
        for key, value in change.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged or None

    # -- writes -----------------------------------------------------------------------------

    @rule(data=st.data())
    def add(self, data: st.DataObject) -> None:
        ids = self._draw_ids(data, "new")
        vecs = [data.draw(vectors) for _ in ids]
        docs = [data.draw(documents) for _ in ids]
        mds = [data.draw(metadata_in) for _ in ids]
        self.col.add(ids=ids, embeddings=np.stack(vecs), documents=docs, metadatas=mds)
        for i, v, d, m in zip(ids, vecs, docs, mds, strict=True):
            if i not in self.model:  # Chroma's rule: a stored id is skipped, not replaced
                self._put(i, (v, d, m or None), new_vector=True)

    @rule(data=st.data(), with_docs=st.booleans(), with_mds=st.booleans())
    def upsert(self, data: st.DataObject, with_docs: bool, with_mds: bool) -> None:
        ids = self._draw_ids(data, "any")
        vecs = [data.draw(vectors) for _ in ids]
        docs = [data.draw(documents) for _ in ids] if with_docs else None
        mds = [data.draw(metadata_change) for _ in ids] if with_mds else None
        self.col.upsert(ids=ids, embeddings=np.stack(vecs), documents=docs, metadatas=mds)
        for n, record_id in enumerate(ids):
            doc = docs[n] if docs is not None else None
            change = mds[n] if mds is not None else None
            old = self.model.get(record_id)
            if old is None:
                md = {k: v for k, v in (change or {}).items() if v is not None}
                self._put(record_id, (vecs[n], doc, md or None), new_vector=True)
            else:
                new_doc = doc if doc is not None else old[1]
                self._put(record_id, (vecs[n], new_doc, self._merge(old[2], change)), True)

    @rule(
        data=st.data(),
        fields=st.sets(st.sampled_from(["embeddings", "documents", "metadatas"]), min_size=1),
    )
    def update(self, data: st.DataObject, fields: set[str]) -> None:
        ids = self._draw_ids(data, "existing")
        vecs = [data.draw(vectors) for _ in ids] if "embeddings" in fields else None
        docs = [data.draw(documents) for _ in ids] if "documents" in fields else None
        mds = [data.draw(metadata_change) for _ in ids] if "metadatas" in fields else None
        kwargs: dict[str, Any] = {"documents": docs, "metadatas": mds}
        if vecs is not None:
            kwargs["embeddings"] = np.stack(vecs)
        if any(i not in self.model for i in ids):
            snapshot = self.col.get(ids=ids, include=["embeddings", "documents", "metadatas"])
            with pytest.raises(haima.NotFoundError):
                self.col.update(ids=ids, **kwargs)
            after = self.col.get(ids=ids, include=["embeddings", "documents", "metadatas"])
            assert after["ids"] == snapshot["ids"]
            assert after["documents"] == snapshot["documents"]
            assert after["metadatas"] == snapshot["metadatas"]
            assert np.array_equal(after["embeddings"], snapshot["embeddings"])  # type: ignore[arg-type]
            return
        self.col.update(ids=ids, **kwargs)
        for n, record_id in enumerate(ids):
            vector, doc, md = self.model[record_id]
            if docs is not None and docs[n] is not None:
                doc = docs[n]
            if mds is not None:
                md = self._merge(md, mds[n])
            self._put(record_id, (vecs[n] if vecs else vector, doc, md), vecs is not None)

    @rule(data=st.data())
    def delete_ids(self, data: st.DataObject) -> None:
        ids = self._draw_ids(data, "existing", max_size=3)
        self.col.delete(ids=ids)
        for record_id in ids:
            self._remove(record_id)

    @rule(where=wheres)
    def delete_where(self, where: Where) -> None:
        condition, test = where
        self.col.delete(where=condition)
        for record_id in [i for i, (_, _, md) in self.model.items() if test(md)]:
            self._remove(record_id)

    # -- reads ------------------------------------------------------------------------------

    @rule()
    def get_all(self) -> None:
        self._check_everything()

    @rule(ids=st.lists(st.sampled_from(ID_POOL), min_size=1, max_size=6, unique=True))
    def get_ids(self, ids: list[str]) -> None:
        got = self.col.get(ids=ids, include=["embeddings", "documents", "metadatas"])
        want = [i for i in self._in_order() if i in ids]  # storage order, as Chroma
        assert got["ids"] == want
        self._same_records(got, want)

    @rule(where=wheres, limit=st.one_of(st.none(), st.integers(0, 6)), offset=st.integers(0, 4))
    def get_where(self, where: Where, limit: int | None, offset: int) -> None:
        condition, test = where
        got = self.col.get(where=condition, limit=limit, offset=offset)
        matching = [i for i in self._in_order() if test(self.model[i][2])]
        end = None if limit is None else offset + limit
        assert got["ids"] == matching[offset:end], condition

    @rule(
        query=vectors,
        n_results=st.integers(1, 20),
        where=st.one_of(st.none(), wheres),
    )
    def query(self, query: np.ndarray, n_results: int, where: Where | None) -> None:
        condition, test = where if where is not None else (None, lambda md: True)
        res = self.col.query(query_embeddings=[query], n_results=n_results, where=condition)
        assert res["distances"] is not None and res["metadatas"] is not None
        candidates = {i: r[0] for i, r in self.model.items() if test(r[2])}
        check_query_row(res["ids"][0], res["distances"][0], query, candidates, n_results)
        for record_id, md in zip(res["ids"][0], res["metadatas"][0], strict=True):
            assert md == self.model[record_id][2]

    @invariant()
    def count_matches(self) -> None:
        assert self.col.count() == len(self.model)

    # -- checks -----------------------------------------------------------------------------

    def _in_order(self) -> list[str]:
        return sorted(self.model, key=self.order.__getitem__)

    def _same_records(self, got: Any, ids: list[str]) -> None:
        for n, record_id in enumerate(ids):
            vector, doc, md = self.model[record_id]
            assert np.array_equal(got["embeddings"][n], vector), record_id
            assert got["documents"][n] == doc, record_id
            assert got["metadatas"][n] == md, record_id

    def _check_everything(self) -> None:
        got = self.col.get(include=["embeddings", "documents", "metadatas"])
        assert got["ids"] == self._in_order()
        self._same_records(got, got["ids"])
        for vector, _, _ in self.model.values():
            res = self.col.query(query_embeddings=[vector], n_results=3)
            assert res["distances"] is not None
            candidates = {i: r[0] for i, r in self.model.items()}
            # Its own vector finds the record, or ties with it.
            check_query_row(res["ids"][0], res["distances"][0], vector, candidates, 3)


class PersistentCollectionMachine(CollectionMachine):
    persistent = True

    @rule()
    def reopen(self) -> None:
        self.client.close()
        self.client = self._open()
        self.col = self.client.get_collection(NAME, embedding_function=None)
        self._check_everything()


MACHINE_SETTINGS = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestMemoryCollection = CollectionMachine.TestCase
TestMemoryCollection.settings = MACHINE_SETTINGS
TestPersistentCollection = PersistentCollectionMachine.TestCase
TestPersistentCollection.settings = MACHINE_SETTINGS
