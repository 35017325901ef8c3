"""What the server accepts and answers, as OpenAPI 3.1 for `/openapi.json`.

The routes read raw JSON and check it with `haima.validation` and `haima.filters` (one set
of rules and messages for every client), so FastAPI cannot infer their bodies. The JSON
schemas here describe those rules as far as JSON Schema can say them: types, required
fields, bounds, enums, and `additionalProperties: false` where the server refuses unknown
keys (configuration sections, filter operators). Top-level bodies stay open because the
server ignores fields it does not know. Rules JSON Schema cannot state (one embedding per
id, a collection's dimension, a valid regular expression) are left to the server's 400.

The create-collection response links its `id`, `tenant` and `database` to every operation
on the collection, so that a stateful client (a fuzzer) can follow them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from haima.server.openapi_schemas import (
    BASE64_VECTOR,
    COLLECTION_NAME,
    DOCUMENTS,
    EMBEDDINGS,
    EMBEDDINGS_ENCODING,
    GET_INCLUDE,
    INDEX_TYPES,
    METADATA_KEYS,
    METRICS,
    NAMESPACE_NAME,
    NON_EMPTY_OBJECT,
    NON_NEGATIVE_INT64,
    POSITIVE_INT,
    QUERY_EMBEDDINGS,
    QUERY_INCLUDE,
    QUERY_MODES,
    RECORD_METADATAS,
    TEXT,
    WHERE,
    WHERE_DOCUMENT,
    Schema,
    collection_metadata,
    configuration,
    ids,
    nullable,
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
            "configuration": configuration(change=False),
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
            "new_configuration": configuration(change=True),
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
            "properties": {
                "enabled": {"type": "boolean"},
                "fusion": {"enum": ["convex", "rrf"]},
                "weight": {"type": "number"},
                "rrf_k": {"type": "integer"},
            },
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


@dataclass(frozen=True)
class Component:
    """A named JSON schema in the document's `components`, which responses refer to.

    Plain schemas rather than pydantic models: FastAPI makes a validating model field for
    every response model of every route (~230), twice (when the route is added and when
    it is first matched), which cost ~30 ms of the server's start for a document only."""

    name: str
    schema: Schema

    def ref(self) -> Schema:
        return {"$ref": f"#/components/schemas/{self.name}"}


#: Every named schema, in the order made: `install` puts them in the document.
COMPONENTS: dict[str, Component] = {}


def named(name: str, schema: Schema) -> Component:
    """`schema` as a component of the document called `name`."""
    component = Component(name, schema)
    COMPONENTS[name] = component
    return component


def install(app: FastAPI) -> None:
    """Add the named schemas to the app's generated document (built once, when first
    asked for)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for component in COMPONENTS.values():
            schemas[component.name] = copy.deepcopy(component.schema)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


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


def _error_response(status: int, body: Component) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": body.ref()}
    if status in _ERROR_EXAMPLES and body is Error:
        name, message, cls = _ERROR_EXAMPLES[status]
        content["example"] = {"error": name, "message": message, "haima_error": cls}
    return {"description": _ERROR_TEXT[status], "content": {"application/json": content}}


def responses(
    ok: Component,
    *errors: int,
    links: dict[str, Any] | None = None,
    openai: bool = False,
    open_route: bool = False,
) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: its 200 body and the error statuses it can answer.
    500 is possible on every route, 401 on every one but the `open_route` heartbeat."""
    success: dict[str, Any] = {
        "description": "Success",
        "content": {"application/json": {"schema": ok.ref()}},
    }
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
    ok: Component, *errors: int, links: dict[str, Any] | None = None
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
