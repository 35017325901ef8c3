"""Chroma's REST API v2 over the local engine: the routes Chroma's clients call, which are
also the routes Haima's own `HttpClient` calls.

Bodies are read by `http_io.read_json` and checked by Haima's validation (see there why).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response

import haima
from haima import validation
from haima.backends.wire import (
    collection_to_json,
    decode_embeddings,
    get_result_to_json,
    query_result_to_json,
)
from haima.collection import Collection
from haima.config import new_collection_settings
from haima.embeddings import default_embedding_function, spec_of
from haima.errors import InvalidArgumentError
from haima.server import openapi as doc
from haima.server import openapi_schemas as schemas
from haima.server.http_io import blocking, json_response, read_json
from haima.server.state import ServerState

T = TypeVar("T")

#: What Chroma's clients are told about this server's version.
CHROMA_API_VERSION = "1.0.0"

COLLECTIONS = "/tenants/{tenant}/databases/{database}/collections"
RECORDS = COLLECTIONS + "/{collection_id}"

# Path parameters, with the names every server has as examples for the OpenAPI document.
Tenant = Annotated[str, Path(examples=["default_tenant"])]
Database = Annotated[str, Path(examples=["default_database"])]
# Paging parameters, documented with the bounds the server checks (the document only:
# the handlers check them with Haima's messages).
_COUNT = Query(json_schema_extra={"minimum": 0, "maximum": schemas.INT64_MAX})
Limit = Annotated[int | None, _COUNT]
Offset = Annotated[int | None, _COUNT]


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.haima
    return state


def _no_uris(body: Mapping[str, Any]) -> None:
    if body.get("uris") is not None:
        raise InvalidArgumentError("uris: not supported by Haima; store them in metadata")


def _wants_base64(body: Mapping[str, Any]) -> bool:
    encoding = body.get("embeddings_encoding", "float")
    if encoding not in ("float", "base64"):
        raise InvalidArgumentError(
            f"embeddings_encoding: expected 'float' or 'base64', got {encoding!r}"
        )
    return bool(encoding == "base64")


def build_router() -> APIRouter:
    router = APIRouter(tags=["Chroma API v2"])

    # -- records ----------------------------------------------------------------------------
    # First: routes are tried in order and these carry the traffic (a query was tried
    # against 48 patterns before it matched, 0.4 ms of every request).

    def records_route(
        path: str,
        operation: Callable[[Collection, dict[str, Any]], Any],
        operation_id: str,
        body: dict[str, Any],
        ok: doc.Component,
        *errors: int,
        quick: Callable[[dict[str, Any]], bool] = lambda body: False,
    ) -> None:
        """`quick(body)`: the call reads without a model (see http_io.EngineCalls)."""

        async def handler(
            request: Request, tenant: Tenant, database: Database, collection_id: str
        ) -> Response:
            body = await read_json(request)
            state = _state(request)

            def run() -> Any:
                return operation(state.collection(tenant, database, collection_id), body)

            kind = (path, collection_id) if quick(body) else None
            return json_response(await blocking(run, quick=kind))

        handler.__name__ = path.strip("/")
        router.add_api_route(
            RECORDS + path,
            handler,
            methods=["POST"],
            name=handler.__name__,
            operation_id=operation_id,
            openapi_extra=body,
            responses=doc.records_responses(ok, 400, doc.BODY, *errors),
        )

    records_route(
        "/query",
        _query,
        "queryRecords",
        doc.QUERY_BODY,
        doc.QueryResult,
        doc.EMBEDS,
        quick=lambda body: body.get("query_texts") is None,
    )
    records_route("/get", _get, "getRecords", doc.GET_BODY, doc.GetResult, quick=lambda body: True)
    records_route("/add", _write("add"), "addRecords", doc.ADD_BODY, doc.Done, doc.EMBEDS)
    records_route(
        "/upsert", _write("upsert"), "upsertRecords", doc.UPSERT_BODY, doc.Done, doc.EMBEDS
    )
    records_route(
        "/update", _write("update"), "updateRecords", doc.UPDATE_BODY, doc.Done, doc.EMBEDS
    )
    records_route("/delete", _delete, "deleteRecords", doc.DELETE_BODY, doc.Empty)

    @router.post(
        RECORDS + "/build_index",
        operation_id="buildIndex",
        responses=doc.records_responses(doc.Empty, doc.BODY),
    )
    async def build_index(
        request: Request, tenant: Tenant, database: Database, collection_id: str
    ) -> Response:
        """Haima's addition: finish building the collection's ANN index now."""
        state = _state(request)
        await blocking(lambda: state.collection(tenant, database, collection_id).build_index())
        return json_response({})

    @router.get(
        RECORDS + "/count", operation_id="countRecords", responses=doc.records_responses(doc.Count)
    )
    async def count(
        request: Request, tenant: Tenant, database: Database, collection_id: str
    ) -> Response:
        state = _state(request)
        total = await blocking(
            lambda: state.collection(tenant, database, collection_id).count(),
            quick=("/count", collection_id),
        )
        return json_response(total)

    # -- server ---------------------------------------------------------------------------

    @router.get(
        "/heartbeat",
        operation_id="heartbeat",
        responses=doc.responses(doc.Heartbeat, open_route=True),
    )
    async def heartbeat(request: Request) -> Response:
        return json_response({"nanosecond heartbeat": _state(request).backend.heartbeat()})

    @router.get("/version", operation_id="version", responses=doc.responses(doc.Version))
    async def version() -> Response:
        return json_response(CHROMA_API_VERSION)

    @router.get(
        "/pre-flight-checks",
        operation_id="preFlightChecks",
        responses=doc.responses(doc.PreFlightChecks),
    )
    async def pre_flight_checks(request: Request) -> Response:
        return json_response(
            {
                "max_batch_size": _state(request).config.max_batch_size,
                "supports_base64_encoding": True,
                "haima_version": haima.__version__,
            }
        )

    @router.get(
        "/auth/identity", operation_id="getUserIdentity", responses=doc.responses(doc.Identity)
    )
    async def identity() -> Response:
        return json_response({"user_id": "", "tenant": "default_tenant", "databases": ["*"]})

    @router.post("/reset", operation_id="reset", responses=doc.responses(doc.Done, 403, doc.BODY))
    async def reset(request: Request) -> Response:
        await blocking(_state(request).backend.reset)
        return json_response(True)

    # -- tenants and databases ------------------------------------------------------------

    @router.post(
        "/tenants",
        operation_id="createTenant",
        openapi_extra=doc.CREATE_TENANT_BODY,
        responses=doc.responses(doc.Empty, 400, 409, doc.BODY, links=doc.tenant_links()),
    )
    async def create_tenant(request: Request) -> Response:
        body = await read_json(request)
        name = validation.namespace_name(body.get("name"), "name")
        await blocking(lambda: _state(request).backend.create_tenant(name))
        return json_response({})

    @router.get(
        "/tenants/{tenant}",
        operation_id="getTenant",
        responses=doc.responses(doc.Tenant, 404, doc.PARAMS),
    )
    async def get_tenant(request: Request, tenant: Tenant) -> Response:
        name = await blocking(lambda: _state(request).backend.get_tenant(tenant))
        return json_response({"name": name})

    @router.post(
        "/tenants/{tenant}/databases",
        operation_id="createDatabase",
        openapi_extra=doc.CREATE_DATABASE_BODY,
        responses=doc.responses(
            doc.Empty, 400, 404, 409, doc.PARAMS, doc.BODY, links=doc.database_links()
        ),
    )
    async def create_database(request: Request, tenant: Tenant) -> Response:
        body = await read_json(request)
        name = validation.namespace_name(body.get("name"), "name")
        await blocking(lambda: _state(request).backend.create_database(tenant, name))
        return json_response({})

    @router.get(
        "/tenants/{tenant}/databases",
        operation_id="listDatabases",
        responses=doc.responses(doc.DatabaseList, 400, 404, doc.PARAMS),
    )
    async def list_databases(
        request: Request, tenant: Tenant, limit: Limit = None, offset: Offset = None
    ) -> Response:
        lim = validation.non_negative_int(limit, "limit")
        off = validation.non_negative_int(offset, "offset") or 0
        names = await blocking(lambda: _state(request).backend.list_databases(tenant))
        names = names[off : None if lim is None else off + lim]
        return json_response([_database_json(tenant, n) for n in names])

    @router.get(
        "/tenants/{tenant}/databases/{database}",
        operation_id="getDatabase",
        responses=doc.responses(doc.Database, 404, doc.PARAMS),
    )
    async def get_database(request: Request, tenant: Tenant, database: Database) -> Response:
        await blocking(lambda: _state(request).backend.get_database(tenant, database))
        return json_response(_database_json(tenant, database))

    @router.delete(
        "/tenants/{tenant}/databases/{database}",
        operation_id="deleteDatabase",
        responses=doc.responses(doc.Empty, 404, doc.PARAMS),
    )
    async def delete_database(request: Request, tenant: Tenant, database: Database) -> Response:
        await blocking(lambda: _state(request).backend.delete_database(tenant, database))
        return json_response({})

    # -- collections ----------------------------------------------------------------------

    @router.get(
        COLLECTIONS,
        operation_id="listCollections",
        responses=doc.responses(doc.CollectionList, 400, 404, doc.PARAMS),
    )
    async def list_collections(
        request: Request,
        tenant: Tenant,
        database: Database,
        limit: Limit = None,
        offset: Offset = None,
    ) -> Response:
        lim = validation.non_negative_int(limit, "limit")
        off = validation.non_negative_int(offset, "offset")
        models = await blocking(
            lambda: _state(request).backend.list_collections(tenant, database, lim, off)
        )
        return json_response([collection_to_json(m) for m in models])

    @router.get(
        "/tenants/{tenant}/databases/{database}/collections_count",
        operation_id="countCollections",
        responses=doc.responses(doc.Count, 404, doc.PARAMS),
    )
    async def count_collections(request: Request, tenant: Tenant, database: Database) -> Response:
        count = await blocking(lambda: _state(request).backend.count_collections(tenant, database))
        return json_response(count)

    @router.post(
        COLLECTIONS,
        operation_id="createCollection",
        openapi_extra=doc.CREATE_COLLECTION_BODY,
        responses=doc.responses(
            doc.Collection, 400, 404, 409, doc.PARAMS, doc.BODY, links=doc.collection_links()
        ),
    )
    async def create_collection(request: Request, tenant: Tenant, database: Database) -> Response:
        body = await read_json(request)
        state = _state(request)

        def create() -> Any:
            name = body.get("name")
            if not isinstance(name, str):
                raise InvalidArgumentError(f"name: expected a string, got {name!r}")
            # Unless told otherwise, record the server's default function, so that
            # documents sent without embeddings can be embedded here.
            use_default = body.get("default_embedding_function", True) is not False
            spec = spec_of(default_embedding_function()) if use_default else None
            md, config = new_collection_settings(
                name, body.get("configuration"), body.get("metadata"), spec
            )
            return state.backend.create_collection(
                tenant, database, name, md, config, bool(body.get("get_or_create", False))
            )

        model = await blocking(create)
        if state.config.preload_embeddings:
            state.preload_models([model.configuration])  # its first documents will need it
        return json_response(collection_to_json(model))

    @router.get(
        COLLECTIONS + "/by-id/{collection_id}",
        operation_id="getCollectionById",
        responses=doc.records_responses(doc.Collection, links=doc.collection_links()),
    )
    async def get_collection_by_id(
        request: Request, tenant: Tenant, database: Database, collection_id: str
    ) -> Response:
        state = _state(request)
        model = await blocking(lambda: state.collection_model(tenant, database, collection_id))
        return json_response(collection_to_json(model))

    @router.get(
        COLLECTIONS + "/{name}",
        operation_id="getCollection",
        responses=doc.responses(doc.Collection, 404, doc.PARAMS, links=doc.collection_links()),
    )
    async def get_collection(
        request: Request, tenant: Tenant, database: Database, name: str
    ) -> Response:
        model = await blocking(
            lambda: _state(request).backend.get_collection(tenant, database, name)
        )
        return json_response(collection_to_json(model))

    @router.put(
        RECORDS,
        operation_id="updateCollection",
        openapi_extra=doc.MODIFY_COLLECTION_BODY,
        responses=doc.records_responses(
            doc.Collection, 400, 409, doc.BODY, links=doc.collection_links()
        ),
    )
    async def modify_collection(
        request: Request, tenant: Tenant, database: Database, collection_id: str
    ) -> Response:
        body = await read_json(request)
        state = _state(request)

        def modify() -> Any:
            collection = state.collection(tenant, database, collection_id)
            collection.modify(
                name=body.get("new_name"),
                metadata=body.get("new_metadata"),
                configuration=_configuration_change(body.get("new_configuration")),
            )
            return state.backend.get_collection_by_id(collection.id)

        model = await blocking(modify)
        if state.config.preload_embeddings and "new_configuration" in body:
            state.preload_models([model.configuration])
        return json_response(collection_to_json(model))

    @router.delete(
        COLLECTIONS + "/{name}",
        operation_id="deleteCollection",
        responses=doc.responses(doc.Empty, 404, doc.PARAMS),
    )
    async def delete_collection(
        request: Request, tenant: Tenant, database: Database, name: str
    ) -> Response:
        await blocking(lambda: _state(request).backend.delete_collection(tenant, database, name))
        return json_response({})

    return router


# -- record operations (run in a worker thread) ------------------------------------------------


def _write(method: str) -> Callable[[Collection, dict[str, Any]], Any]:
    """add, upsert or update: the same body, the Collection method of that name."""

    def operation(collection: Collection, body: dict[str, Any]) -> Any:
        _no_uris(body)
        getattr(collection, method)(
            ids=body.get("ids"),
            embeddings=_embeddings(body),
            metadatas=body.get("metadatas"),
            documents=body.get("documents"),
        )
        return True

    return operation


def _delete(collection: Collection, body: dict[str, Any]) -> Any:
    if body.get("limit") is not None:
        raise InvalidArgumentError("limit: delete takes no limit in Haima")
    collection.delete(
        ids=body.get("ids"), where=body.get("where"), where_document=body.get("where_document")
    )
    return {}


def _get(collection: Collection, body: dict[str, Any]) -> Any:
    base64_out = _wants_base64(body)
    include = body.get("include")
    result = collection.get(
        ids=body.get("ids"),
        where=body.get("where"),
        where_document=body.get("where_document"),
        limit=body.get("limit"),
        offset=body.get("offset"),
        include=["documents", "metadatas"] if include is None else include,
    )
    return get_result_to_json(result, base64_out)


def _query(collection: Collection, body: dict[str, Any]) -> Any:
    base64_out = _wants_base64(body)
    embeddings = body.get("query_embeddings")
    texts = body.get("query_texts")
    include = body.get("include")
    options: dict[str, Any] = {}
    if body.get("mode") is not None:
        options["mode"] = body["mode"]
    result = collection.query(
        query_embeddings=None
        if embeddings is None
        else decode_embeddings(embeddings, "query_embeddings"),
        query_texts=texts,
        n_results=body.get("n_results", 10),
        where=body.get("where"),
        where_document=body.get("where_document"),
        include=["documents", "metadatas", "distances"] if include is None else include,
        ids=body.get("ids"),
        **options,
    )
    return query_result_to_json(result, base64_out)


def _embeddings(body: Mapping[str, Any]) -> Any:
    value = body.get("embeddings")
    return None if value is None else decode_embeddings(value, "embeddings")


def _configuration_change(value: Any) -> dict[str, Any] | None:
    """Chroma's update-configuration JSON with its empty sections left out."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgumentError("new_configuration: expected an object")
    change: dict[str, Any] = {}
    for key, section in value.items():
        if section is None:
            continue
        if isinstance(section, Mapping):
            section = {k: v for k, v in section.items() if v is not None}
        change[key] = section
    return change or None


def _database_json(tenant: str, name: str) -> dict[str, Any]:
    # Chroma gives databases ids; Haima names them, so the id is derived from the name.
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"haima:{tenant}/{name}")),
        "name": name,
        "tenant": tenant,
    }
