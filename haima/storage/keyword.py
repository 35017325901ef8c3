"""A collection's keyword (BM25) index: one FTS5 table of segmented documents.

Each collection with `configuration.keyword.enabled` has its own table,
`keyword_<collection id>`, whose rowid is the record's rid and whose one column holds
the document as segmented by `haima.text`. One table per collection keeps BM25's
statistics (document count, average length, document frequencies) to the collection,
and lets disabling or deleting it be one DROP TABLE. `keyword_indexes` (migration 0002)
lists the tables with the segmentation that built them.

It is a regular FTS5 table (it stores the segmented text): SQLite 3.40 has no
`contentless_delete`, and an external-content table would need the old segmented text to
delete a row, which a changed segmenter could no longer produce. Every function here runs
inside the caller's transaction, the one that writes the records, so the index never
disagrees with them.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from haima.text import SegmentedLater, query_terms, segmenter_version

log = logging.getLogger("haima")

#: porter: English stemming over unicode61 (case folding, diacritics removed, splitting
#: on non-alphanumerics). Chinese words arrive space-separated from the segmenter.
TOKENIZER = "porter unicode61 remove_diacritics 2"
_COLLECTION_ID = re.compile(r"[0-9a-f]{32}")
#: FTS5 merges this many segments of one level into the next (its default is 4).
AUTOMERGE = 16
#: Rows per INSERT batch when (re)building an index from stored documents.
_BUILD_BATCH = 5_000


@dataclass(frozen=True)
class KeywordIndex:
    """The FTS5 table of one collection."""

    table: str

    def add(
        self, conn: sqlite3.Connection, rids: Sequence[int], texts: Iterable[str | None]
    ) -> None:
        """Index segmented texts (None: the record has no document, nothing to index).
        `texts` may be a `SegmentedLater`, consumed as its steps complete."""
        conn.executemany(
            f"INSERT INTO {self.table} (rowid, terms) VALUES (?, ?)",
            ((rid, t) for rid, t in zip(rids, texts, strict=True) if t is not None),
        )

    def remove(self, conn: sqlite3.Connection, rids: Sequence[int]) -> None:
        # A rid that was never indexed (no document) is simply not found.
        conn.executemany(f"DELETE FROM {self.table} WHERE rowid = ?", ((rid,) for rid in rids))

    def search(
        self,
        conn: sqlite3.Connection,
        text: str,
        limit: int,
        condition: str | None,
        params: Sequence[Any],
    ) -> list[tuple[int, float]]:
        """(rid, bm25) of the best `limit` records matching any word of `text` and the
        filter `condition` (SQL over `records r`); FTS5's bm25() is the negated score,
        so ascending order is best first. One statement: one consistent snapshot."""
        expression = match_expression(query_terms(text))
        if expression is None:
            return []
        if condition is None:
            sql = (
                f"SELECT rowid, bm25({self.table}) FROM {self.table}"
                f" WHERE {self.table} MATCH ? ORDER BY rank LIMIT ?"
            )
            args: list[Any] = [expression, limit]
        else:
            # The filter is applied before the limit, so it never costs results.
            # (FTS5 wants its table's own name, not an alias, in MATCH and bm25().)
            t = self.table
            sql = (
                f"SELECT {t}.rowid, bm25({t}) AS score FROM {t}"
                f" JOIN records r ON r.rid = {t}.rowid WHERE {t} MATCH ? AND ({condition})"
                " ORDER BY score LIMIT ?"
            )
            args = [expression, *params, limit]
        return [(int(rid), float(score)) for rid, score in conn.execute(sql, args)]


def match_expression(terms: Sequence[str]) -> str | None:
    """An FTS5 query that ORs the terms, each one a quoted string, so that nothing a
    user types is read as FTS5 syntax (AND, NEAR, *, ^, column filters, parentheses).
    A quoted term of several tokens ("XJ-9000-B" → xj 9000 b) is a phrase. FTS5's
    query parser ends a string at a NUL: a NUL separates terms."""
    parts = [part.strip() for term in terms for part in term.split("\x00")]
    quoted = [part.replace('"', '""') for part in parts if part]
    if not quoted:
        return None
    return " OR ".join(f'"{term}"' for term in quoted)


def table_name(collection_id: str) -> str:
    # Collection ids are uuid4 hex made by the store; checked anyway, as they become SQL.
    if not _COLLECTION_ID.fullmatch(collection_id):
        raise ValueError(f"not a collection id: {collection_id!r}")
    return f"keyword_{collection_id}"


def find(
    conn: sqlite3.Connection, collection_id: str, *, current: bool = True
) -> KeywordIndex | None:
    """The collection's keyword index, if it has one. `current`: rebuilt first if another
    segmenter built it, as words about to be added or searched must be cut alike (call
    inside a write transaction); removing rows needs no such care, nor rjieba."""
    segmenter = _segmenter_of(conn, collection_id)
    if segmenter is None:
        return None
    if current and segmenter != segmenter_version():
        log.warning(
            "keyword index of collection %s was built by segmenter %r; rebuilding it for %r",
            collection_id,
            segmenter,
            segmenter_version(),
        )
        drop(conn, collection_id)  # a new table: cheaper than deleting every row
        create(conn, collection_id)
    return KeywordIndex(table_name(collection_id))


def is_current(conn: sqlite3.Connection, collection_id: str) -> bool | None:
    """Whether the collection's index was built by this segmenter (None: no index)."""
    segmenter = _segmenter_of(conn, collection_id)
    return None if segmenter is None else segmenter == segmenter_version()


def create(conn: sqlite3.Connection, collection_id: str) -> None:
    """Create the collection's index over the documents it holds (no-op if it exists)."""
    if _segmenter_of(conn, collection_id) is not None:
        return
    version = segmenter_version()  # MissingDependencyError before anything is written
    index = KeywordIndex(table_name(collection_id))
    conn.execute(f"CREATE VIRTUAL TABLE {index.table} USING fts5(terms, tokenize='{TOKENIZER}')")
    # Merge 16 segments of a level at a time instead of 4: at 100k short Chinese
    # documents this cut the insert cost from 49 to 30 µs per document, queries no
    # slower (FTS5 keeps the setting in the table's own config).
    conn.execute(
        f"INSERT INTO {index.table} ({index.table}, rank) VALUES ('automerge', {AUTOMERGE})"
    )
    conn.execute(
        "INSERT INTO keyword_indexes (collection_id, segmenter) VALUES (?, ?)",
        (collection_id, version),
    )
    _fill(conn, collection_id, index)


def drop(conn: sqlite3.Connection, collection_id: str) -> None:
    """Remove the collection's index if it has one."""
    if conn.execute(
        "DELETE FROM keyword_indexes WHERE collection_id = ? RETURNING 1", (collection_id,)
    ).fetchall():
        conn.execute(f"DROP TABLE {table_name(collection_id)}")


def _segmenter_of(conn: sqlite3.Connection, collection_id: str) -> str | None:
    row = conn.execute(
        "SELECT segmenter FROM keyword_indexes WHERE collection_id = ?", (collection_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def _fill(conn: sqlite3.Connection, collection_id: str, index: KeywordIndex) -> None:
    """Index every stored document of the collection, in batches (bounded memory)."""
    last = 0
    while True:
        rows = conn.execute(
            "SELECT rid, document FROM records WHERE collection_id = ? AND rid > ?"
            " AND document IS NOT NULL ORDER BY rid LIMIT ?",
            (collection_id, last, _BUILD_BATCH),
        ).fetchall()
        if not rows:
            break
        index.add(conn, [r[0] for r in rows], SegmentedLater([r[1] for r in rows]))
        last = rows[-1][0]
