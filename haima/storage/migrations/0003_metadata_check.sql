-- Haima store, schema version 3: metadata_index's CHECK written without IN.
-- `CHECK (kind IN ('s', 'n', 'b'))` made SQLite build a small temporary table for the IN
-- list each time the insert statement ran, once per row: it doubled the cost of
-- indexing metadata (measured with SQLite 3.40: 200,000 rows in 0.84 s without the
-- check or with the OR form below, 1.83 s with IN). Same rule, same rows; the table is
-- rebuilt because SQLite cannot alter a constraint in place.

CREATE TABLE metadata_index_v3 (
    key     TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind = 's' OR kind = 'n' OR kind = 'b'),
    in_list INTEGER NOT NULL,
    value,                                   -- no declared type: no affinity
    rid     INTEGER NOT NULL,
    PRIMARY KEY (key, kind, in_list, value, rid)
) WITHOUT ROWID;

INSERT INTO metadata_index_v3 (key, kind, in_list, value, rid)
SELECT key, kind, in_list, value, rid FROM metadata_index;

DROP TABLE metadata_index;

ALTER TABLE metadata_index_v3 RENAME TO metadata_index;
