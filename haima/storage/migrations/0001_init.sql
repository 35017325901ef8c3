-- Haima store, schema version 1.
-- records.rid identifies one immutable vector: a changed embedding gets a new rid,
-- so the FAISS indexes (which key vectors by rid) never hold a stale vector.

CREATE TABLE collections (
    id            TEXT PRIMARY KEY,          -- uuid4 hex
    tenant        TEXT NOT NULL,
    database      TEXT NOT NULL,
    name          TEXT NOT NULL,
    metadata      TEXT,                      -- JSON object or NULL
    configuration TEXT NOT NULL,             -- JSON (normalised CollectionConfiguration)
    dimension     INTEGER,                   -- NULL until the first vector
    seq           INTEGER NOT NULL DEFAULT 0,-- last committed batch of this collection
    log_floor     INTEGER NOT NULL DEFAULT 0,-- deletions at or below this seq were pruned
    created_at    REAL NOT NULL,
    UNIQUE (tenant, database, name)
);

CREATE TABLE tenants (name TEXT PRIMARY KEY);
CREATE TABLE databases (
    tenant TEXT NOT NULL,
    name   TEXT NOT NULL,
    id     TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
);
INSERT INTO tenants (name) VALUES ('default_tenant');
INSERT INTO databases (tenant, name, id)
    VALUES ('default_tenant', 'default_database', '00000000000000000000000000000000');

CREATE TABLE records (
    rid           INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id TEXT NOT NULL,
    id            TEXT NOT NULL,
    document      TEXT,
    metadata      TEXT,                      -- JSON object or NULL
    UNIQUE (collection_id, id)
);

-- Vectors apart from records: filters scan records, and rows without a 1.5 KB vector
-- keep those scans small. float32 little-endian, `collections.dimension` values.
CREATE TABLE vectors (
    rid       INTEGER PRIMARY KEY,
    embedding BLOB NOT NULL
);

-- One row per scalar metadata value, one per distinct element of a list value.
-- `value` has no type affinity: SQLite keeps TEXT, INTEGER and REAL as given and
-- compares INTEGER with REAL numerically. kind: 's' str, 'n' int/float, 'b' bool (0/1).
-- Clustered on what filters look up; rows are deleted by their full key (the record's
-- metadata is known when it is deleted), so no second index is needed.
CREATE TABLE metadata_index (
    key     TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('s', 'n', 'b')),
    in_list INTEGER NOT NULL,
    value,                                   -- no declared type: no affinity
    rid     INTEGER NOT NULL,
    PRIMARY KEY (key, kind, in_list, value, rid)
) WITHOUT ROWID;

-- Documents have no full-text index here: a trigram index cost ~100 µs per document at
-- ingestion (four times the whole budget per record), while `instr` scans 100k short
-- documents in ~20 ms. Word-level keyword search gets its own index with the RAG layer.

-- Vectors removed from a collection (deleted records, replaced embeddings), by batch.
-- Additions need no log: rids only grow, so an index that holds every rid up to R
-- finds what it misses as the collection's records with rid > R.
CREATE TABLE deletions (
    seq           INTEGER NOT NULL,
    collection_id TEXT NOT NULL,
    rid           INTEGER NOT NULL
);
CREATE INDEX deletions_by_seq ON deletions (collection_id, seq);
