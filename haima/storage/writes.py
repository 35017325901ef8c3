"""Writes inside one IMMEDIATE transaction (`Store.write()`): records, their vectors,
the metadata index, the keyword index and the deletion log change together or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from haima.errors import NotFoundError
from haima.storage import keyword
from haima.storage._sql import in_chunks
from haima.storage.keyword import KeywordIndex
from haima.storage.rows import StoredRecord, decode_metadata, encode_metadata, metadata_rows
from haima.text import segmented

_INSERT_METADATA = (
    "INSERT INTO metadata_index (key, kind, in_list, value, rid) VALUES (?, ?, ?, ?, ?)"
)
_DELETE_METADATA = (
    "DELETE FROM metadata_index WHERE key = ? AND kind = ? AND in_list = ? AND value = ?"
    " AND rid = ?"
)


class WriteTransaction:
    """The write calls of one open transaction (from `Store.write()`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def next_seq(self, collection_id: str) -> int:
        row = self.conn.execute(
            "UPDATE collections SET seq = seq + 1 WHERE id = ? RETURNING seq", (collection_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"collection {collection_id!r} does not exist (it was deleted)")
        return int(row[0])

    def set_dimension(self, collection_id: str, dimension: int) -> None:
        self.conn.execute(
            "UPDATE collections SET dimension = ? WHERE id = ? AND dimension IS NULL",
            (dimension, collection_id),
        )

    def collection_state(self, collection_id: str) -> tuple[int | None, int]:
        """(dimension, seq) read inside the current transaction."""
        row = self.conn.execute(
            "SELECT dimension, seq FROM collections WHERE id = ?", (collection_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"collection {collection_id!r} does not exist (it was deleted)")
        return row[0], int(row[1])

    def existing(self, collection_id: str, ids: Sequence[str]) -> dict[str, StoredRecord]:
        found: dict[str, StoredRecord] = {}
        for part, marks in in_chunks(ids):
            for rid, rec_id, doc, md in self.conn.execute(
                f"SELECT rid, id, document, metadata FROM records"
                f" WHERE collection_id = ? AND id IN ({marks})",
                (collection_id, *part),
            ):
                found[rec_id] = StoredRecord(rid, rec_id, doc, decode_metadata(md))
        return found

    def allocate_rids(self, count: int) -> range:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        start = (int(row[0]) if row else 0) + 1
        return range(start, start + count)

    def insert_records(
        self,
        collection_id: str,
        rids: Sequence[int],
        ids: Sequence[str],
        documents: Sequence[str | None],
        metadatas: Sequence[dict[str, Any] | None],
        vectors: npt.NDArray[np.float32],
        *,
        keyword_index: KeywordIndex | None,
        texts: Iterable[str | None] | None = None,
    ) -> None:
        """Insert records; with a keyword index, also their documents' words (`texts`:
        the documents already segmented, else they are segmented here)."""
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        self.conn.executemany(
            "INSERT INTO records (rid, collection_id, id, document, metadata) VALUES (?, ?, ?, ?, ?)",
            zip(
                rids,
                _repeat(collection_id, len(rids)),
                ids,
                documents,
                (encode_metadata(m) for m in metadatas),
                strict=True,
            ),
        )
        self.conn.executemany(
            "INSERT INTO vectors (rid, embedding) VALUES (?, ?)",
            zip(rids, (v.tobytes() for v in vectors), strict=True),
        )
        self.conn.executemany(_INSERT_METADATA, metadata_rows(rids, metadatas))
        if keyword_index is not None:
            keyword_index.add(self.conn, rids, texts if texts is not None else segmented(documents))

    def update_in_place(
        self,
        rid: int,
        document: str | None,
        metadata: dict[str, Any] | None,
        old_metadata: dict[str, Any] | None,
    ) -> None:
        """Change a record's document and metadata, keeping its vector (and rid)."""
        self.conn.execute(
            "UPDATE records SET document = ?, metadata = ? WHERE rid = ?",
            (document, encode_metadata(metadata), rid),
        )
        self.conn.executemany(_DELETE_METADATA, metadata_rows([rid], [old_metadata]))
        self.conn.executemany(_INSERT_METADATA, metadata_rows([rid], [metadata]))

    def delete_records(
        self,
        collection_id: str,
        records: Sequence[tuple[int, dict[str, Any] | None]],
        seq: int,
        *,
        keyword_index: KeywordIndex | None,
    ) -> None:
        """Delete (rid, metadata) records (and their words from the keyword index) and log
        their vectors as deleted at `seq`."""
        if keyword_index is not None:
            keyword_index.remove(self.conn, [rid for rid, _ in records])
        self.conn.executemany(
            _DELETE_METADATA,
            metadata_rows([rid for rid, _ in records], [md for _, md in records]),
        )
        self.conn.executemany("DELETE FROM records WHERE rid = ?", ((rid,) for rid, _ in records))
        self.conn.executemany("DELETE FROM vectors WHERE rid = ?", ((rid,) for rid, _ in records))
        self.conn.executemany(
            "INSERT INTO deletions (seq, collection_id, rid) VALUES (?, ?, ?)",
            ((seq, collection_id, rid) for rid, _ in records),
        )

    def keyword_index(self, collection_id: str, *, adding: bool = True) -> KeywordIndex | None:
        """The collection's keyword index, read inside the write transaction. A write that
        `adding` words needs it built by the current segmenter (it is rebuilt otherwise);
        one that only removes rows does not (see `keyword.find`)."""
        return keyword.find(self.conn, collection_id, current=adding)


def _repeat(value: str, count: int) -> Iterator[str]:
    for _ in range(count):
        yield value
