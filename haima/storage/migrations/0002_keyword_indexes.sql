-- Haima store, schema version 2: keyword (BM25) indexes.
-- A collection with `configuration.keyword.enabled` has an FTS5 table
-- `keyword_<collection id>` (rowid = rid, one column of segmented document text), made
-- and dropped at run time by haima/storage/keyword.py in the transaction that changes
-- the configuration. This table lists them with the segmentation that built each one
-- (`haima.text.segmenter_version()`): queries must be segmented like the documents, so
-- an index built by another segmenter is rebuilt before it is used.
-- Existing collections have no keyword index (the option defaults to off).

CREATE TABLE keyword_indexes (
    collection_id TEXT PRIMARY KEY,
    segmenter     TEXT NOT NULL
);

-- Stored configurations gain the keyword section with its defaults, so that every
-- collection reports the same configuration shape.
UPDATE collections
SET configuration = json_set(configuration, '$.keyword', json('{"enabled": false, "rrf_k": 60}'))
WHERE json_type(configuration, '$.keyword') IS NULL;
