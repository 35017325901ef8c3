"""Writes: add, upsert, update and delete, each one SQLite transaction, then applied to
the loaded index (see indexes.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from haima import text
from haima.backends.local.indexes import IndexCache
from haima.config import CollectionConfiguration
from haima.errors import DimensionMismatchError, NotFoundError
from haima.filters import Filter
from haima.index.faiss_index import Rids, Vectors
from haima.storage.rows import CollectionRow, decode_metadata
from haima.storage.sqlite import Store
from haima.storage.writes import WriteTransaction
from haima.validation import merged_metadata

#: Documents segmented ahead of a write, to be indexed once it runs (see `_segment_early`).
EarlyTexts = text.SegmentedLater | None


class Writer:
    def __init__(
        self,
        lock: threading.RLock,
        store: Store,
        indexes: IndexCache,
        wake_indexer: Callable[[], None],
    ) -> None:
        self.lock = lock
        self.store = store
        self.indexes = indexes
        self._wake_indexer = wake_indexer

    def add(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        count = len(ids)
        docs = list(documents) if documents is not None else [None] * count
        mds = list(metadatas) if metadatas is not None else [None] * count
        with self.lock:
            row = self.indexes.before_write(collection_id)
            early = _segment_early(row, docs)
            with self.store.write() as tx:
                existing = tx.existing(collection_id, ids)
                if existing:
                    # Chroma's rule: an id already stored is skipped, not replaced and not
                    # an error (see docs/architecture.md §10½).
                    keep = [i for i, record_id in enumerate(ids) if record_id not in existing]
                    self._check_dimension(tx, collection_id, embeddings)
                    if not keep:
                        return
                    ids = [ids[i] for i in keep]
                    docs = [docs[i] for i in keep]
                    mds = [mds[i] for i in keep]
                    embeddings = embeddings[keep]
                    count = len(ids)
                    early = None  # segmented for the whole batch: the index segments again
                seq = self._begin_write(tx, collection_id, embeddings)
                rids = tx.allocate_rids(count)
                keyword_index = tx.keyword_index(collection_id)
                tx.insert_records(
                    collection_id,
                    rids,
                    ids,
                    docs,
                    mds,
                    embeddings,
                    keyword_index=keyword_index,
                    texts=early if keyword_index is not None else None,
                )
            self._applied(collection_id, seq, np.asarray(rids, np.int64), embeddings, ids, None)

    def write(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors | None,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
        must_exist: bool,
    ) -> None:
        """Update (must_exist) or upsert: given fields replace, metadata keys merge (a None
        value removes a key); a new embedding gives the record a new rid."""
        with self.lock:
            row = self.indexes.before_write(collection_id)
            early = _segment_early(row, documents)
            with self.store.write() as tx:
                seq = self._begin_write(tx, collection_id, embeddings)
                existing = tx.existing(collection_id, ids)
                if must_exist and len(existing) < len(ids):
                    missing = [i for i in ids if i not in existing]
                    shown = ", ".join(repr(i) for i in missing[:5])
                    raise NotFoundError(
                        f"ids: {len(missing)} do not exist in the collection ({shown})"
                    )
                new_pos: list[int] = []
                new_docs: list[str | None] = []
                new_mds: list[dict[str, Any] | None] = []
                replaced: list[tuple[int, dict[str, Any] | None]] = []
                # (rid, position) of records updated in place with a new document
                retexted: list[tuple[int, int]] = []
                for i, record_id in enumerate(ids):
                    old = existing.get(record_id)
                    doc_given = documents is not None and documents[i] is not None
                    md_change = metadatas[i] if metadatas is not None else None
                    if old is None:
                        md = {k: v for k, v in (md_change or {}).items() if v is not None}
                        new_pos.append(i)
                        new_docs.append(documents[i] if documents is not None else None)
                        new_mds.append(md or None)
                        continue
                    doc = documents[i] if doc_given and documents is not None else old.document
                    md2 = (
                        merged_metadata(old.metadata, md_change)
                        if md_change is not None
                        else old.metadata
                    )
                    if embeddings is None:
                        tx.update_in_place(old.rid, doc, md2, old.metadata)
                        if doc != old.document:
                            retexted.append((old.rid, i))
                    else:
                        replaced.append((old.rid, old.metadata))
                        new_pos.append(i)
                        new_docs.append(doc)
                        new_mds.append(md2)
                keyword_index = tx.keyword_index(collection_id)
                if replaced:
                    tx.delete_records(collection_id, replaced, seq, keyword_index=keyword_index)
                rids = tx.allocate_rids(len(new_pos))
                vectors = (
                    embeddings[new_pos] if embeddings is not None else np.zeros((0, 1), np.float32)
                )
                if new_pos:
                    tx.insert_records(
                        collection_id,
                        rids,
                        [ids[i] for i in new_pos],
                        new_docs,
                        new_mds,
                        vectors,
                        keyword_index=keyword_index,
                        texts=None
                        if keyword_index is None
                        else _texts_of(early, documents, new_pos, new_docs),
                    )
                if keyword_index is not None and retexted:
                    in_place = [r for r, _ in retexted]
                    keyword_index.remove(tx.conn, in_place)
                    positions = [i for _, i in retexted]
                    assert documents is not None  # only a given document is a new one
                    keyword_index.add(
                        tx.conn,
                        in_place,
                        _texts_of(early, documents, positions, [documents[i] for i in positions]),
                    )
            self._applied(
                collection_id,
                seq,
                np.asarray(rids, np.int64),
                vectors,
                [ids[i] for i in new_pos],
                np.asarray([rid for rid, _ in replaced], np.int64),
            )

    def delete(self, collection_id: str, ids: list[str] | None, filt: Filter | None) -> None:
        with self.lock:
            self.indexes.before_write(collection_id)
            with self.store.write() as tx:
                tx.collection_state(collection_id)
                rows = self.store.select_records(
                    collection_id,
                    ids=ids,
                    filt=filt,
                    limit=None,
                    offset=None,
                    with_embeddings=False,
                )
                doomed = [(r.rid, decode_metadata(r.metadata)) for r in rows]
                if not doomed:
                    return
                seq = tx.next_seq(collection_id)
                tx.delete_records(
                    collection_id,
                    doomed,
                    seq,
                    keyword_index=tx.keyword_index(collection_id, adding=False),
                )
                rids = [rid for rid, _ in doomed]
            self._applied(
                collection_id,
                seq,
                np.zeros(0, np.int64),
                np.zeros((0, 1), np.float32),
                [],
                np.asarray(rids),
            )

    def _applied(
        self,
        collection_id: str,
        seq: int,
        rids: Rids,
        vectors: Vectors,
        ids: Sequence[str],
        deleted: Rids | None,
    ) -> None:
        self.indexes.after_write(collection_id, seq, rids, vectors, ids, deleted)
        self._wake_indexer()

    def _begin_write(
        self, tx: WriteTransaction, collection_id: str, embeddings: Vectors | None
    ) -> int:
        dimension = self._check_dimension(tx, collection_id, embeddings)
        if dimension is None and embeddings is not None and len(embeddings):
            tx.set_dimension(collection_id, int(embeddings.shape[1]))
        return tx.next_seq(collection_id)

    def _check_dimension(
        self, tx: WriteTransaction, collection_id: str, embeddings: Vectors | None
    ) -> int | None:
        """The collection's dimension (None: not set yet); embeddings of another one are
        refused."""
        dimension, _ = tx.collection_state(collection_id)
        given = None if embeddings is None or not len(embeddings) else embeddings.shape[1]
        if dimension is not None and given is not None and given != dimension:
            raise DimensionMismatchError(f"embeddings: expected dimension {dimension}, got {given}")
        return dimension


def _segment_early(row: CollectionRow, documents: Sequence[str | None] | None) -> EarlyTexts:
    """Start segmenting the documents of a write on a helper thread if the collection
    (as last read) has a keyword index: it then overlaps the write's other SQL work.
    The transaction reads the index state again and decides; a result it does not
    need is dropped."""
    keyword_on = CollectionConfiguration.from_json(row.configuration).keyword.enabled
    if not keyword_on or documents is None or all(d is None for d in documents):
        return None
    return text.SegmentedLater(documents)


def _texts_of(
    early: EarlyTexts,
    given: Sequence[str | None] | None,
    positions: Sequence[int],
    documents: Sequence[str | None],
) -> list[str | None]:
    """Segmented `documents`, documents[j] being that of the call's record positions[j]:
    a document given in the call comes from the early segmentation; one kept from the
    stored record (an upsert or update that changes only the embedding) is cut now."""
    done = early.result() if early is not None else None
    out: list[str | None] = [None] * len(documents)
    todo: list[int] = []
    for j, (i, doc) in enumerate(zip(positions, documents, strict=True)):
        if doc is None:
            continue
        if done is not None and given is not None and given[i] is not None:
            out[j] = done[i]
        else:
            todo.append(j)
    words = text.segment_documents([documents[j] or "" for j in todo])
    for j, segmented in zip(todo, words, strict=True):
        out[j] = segmented
    return out
