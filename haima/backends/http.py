"""HttpBackend: the Backend protocol over a Haima server's REST API (Chroma's v2 routes).

`HttpClient` is the ordinary `Client` over this backend, so validation, embedding and
result shapes are the embedded client's own; only the transport differs. Vectors travel as
base64 float32 both ways, which is exact and compact.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

import httpx

from haima.backends.base import CollectionModel, QueryMode
from haima.backends.wire import (
    API_PREFIX,
    collection_from_json,
    encode_vectors,
    error_from_body,
    get_result_from_json,
    query_result_from_json,
)
from haima.errors import ServerUnavailableError
from haima.storage.sqlite import DEFAULT_DATABASE, DEFAULT_TENANT
from haima.types import GetResult, IncludeField, QueryResult, Vectors, Where, WhereDocument

DEFAULT_TIMEOUT = 300.0


class HttpBackend:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if api_key:
            all_headers["Authorization"] = f"Bearer {api_key}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            headers=all_headers,
            timeout=timeout,
            transport=transport,
        )
        #: Where each collection lives; record routes name the tenant and database.
        self._homes: dict[str, tuple[str, str]] = {}

    # -- transport ------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        content = None if body is None else _encoded(body)
        query = {k: v for k, v in params.items() if v is not None}
        try:
            response = self._http.request(
                method, urllib.parse.quote(path), content=content, params=query
            )
        except httpx.TransportError as exc:
            raise ServerUnavailableError(
                f"Haima server at {self.base_url}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = None
        if response.is_error:
            raise error_from_body(response.status_code, payload, response.text)
        return payload

    def _collection_path(self, collection_id: str, by_id: bool = False) -> str:
        tenant, database = self._homes.get(collection_id, (DEFAULT_TENANT, DEFAULT_DATABASE))
        prefix = "by-id/" if by_id else ""
        return f"/tenants/{tenant}/databases/{database}/collections/{prefix}{collection_id}"

    def _remember(self, body: Any) -> CollectionModel:
        model = collection_from_json(body)
        self._homes[model.id] = (model.tenant, model.database)
        return model

    # -- lifecycle ------------------------------------------------------------------------

    def heartbeat(self) -> int:
        return int(self._request("GET", "/heartbeat")["nanosecond heartbeat"])

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        """Poll the heartbeat until the server answers (e.g. right after starting it)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.heartbeat()
                return
            except ServerUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self._http.close()

    def reset(self) -> None:
        self._request("POST", "/reset")
        self._homes.clear()

    # -- tenants and databases --------------------------------------------------------------

    def create_tenant(self, name: str) -> None:
        self._request("POST", "/tenants", {"name": name})

    def get_tenant(self, name: str) -> str:
        return str(self._request("GET", f"/tenants/{name}")["name"])

    def create_database(self, tenant: str, name: str) -> None:
        self._request("POST", f"/tenants/{tenant}/databases", {"name": name})

    def get_database(self, tenant: str, name: str) -> str:
        return str(self._request("GET", f"/tenants/{tenant}/databases/{name}")["name"])

    def list_databases(self, tenant: str) -> list[str]:
        return [str(d["name"]) for d in self._request("GET", f"/tenants/{tenant}/databases")]

    def delete_database(self, tenant: str, name: str) -> None:
        self._request("DELETE", f"/tenants/{tenant}/databases/{name}")

    # -- collections -------------------------------------------------------------------------

    def create_collection(
        self,
        tenant: str,
        database: str,
        name: str,
        metadata: dict[str, Any] | None,
        configuration: dict[str, Any],
        get_or_create: bool,
    ) -> CollectionModel:
        body = {
            "name": name,
            "metadata": metadata,
            "configuration": _haima_form(configuration),
            "get_or_create": get_or_create,
            # The client has decided the function; the server must not record its own.
            "default_embedding_function": False,
        }
        return self._remember(
            self._request("POST", f"/tenants/{tenant}/databases/{database}/collections", body)
        )

    def get_collection(self, tenant: str, database: str, name: str) -> CollectionModel:
        return self._remember(
            self._request("GET", f"/tenants/{tenant}/databases/{database}/collections/{name}")
        )

    def get_collection_by_id(self, collection_id: str) -> CollectionModel:
        return self._remember(
            self._request("GET", self._collection_path(collection_id, by_id=True))
        )

    def list_collections(
        self, tenant: str, database: str, limit: int | None, offset: int | None
    ) -> list[CollectionModel]:
        rows = self._request(
            "GET",
            f"/tenants/{tenant}/databases/{database}/collections",
            limit=limit,
            offset=offset,
        )
        return [self._remember(row) for row in rows]

    def count_collections(self, tenant: str, database: str) -> int:
        return int(
            self._request("GET", f"/tenants/{tenant}/databases/{database}/collections_count")
        )

    def delete_collection(self, tenant: str, database: str, name: str) -> None:
        self._request("DELETE", f"/tenants/{tenant}/databases/{database}/collections/{name}")

    def modify_collection(
        self,
        collection_id: str,
        name: str | None,
        metadata: dict[str, Any] | None,
        configuration: dict[str, Any] | None,
    ) -> CollectionModel:
        body = {
            "new_name": name,
            "new_metadata": metadata,
            "new_configuration": None if configuration is None else _haima_form(configuration),
        }
        return self._remember(self._request("PUT", self._collection_path(collection_id), body))

    # -- records ---------------------------------------------------------------------------

    def _write(
        self,
        operation: str,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors | None,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        body = {
            "ids": ids,
            "embeddings": None if embeddings is None else encode_vectors(embeddings),
            "documents": None if documents is None else list(documents),
            "metadatas": None if metadatas is None else list(metadatas),
        }
        self._request("POST", f"{self._collection_path(collection_id)}/{operation}", body)

    def add(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        self._write("add", collection_id, ids, embeddings, documents, metadatas)

    def upsert(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        self._write("upsert", collection_id, ids, embeddings, documents, metadatas)

    def update(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors | None,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        self._write("update", collection_id, ids, embeddings, documents, metadatas)

    def delete(
        self,
        collection_id: str,
        ids: list[str] | None,
        where: Where | None,
        where_document: WhereDocument | None,
    ) -> None:
        body = {"ids": ids, "where": where, "where_document": where_document}
        self._request("POST", f"{self._collection_path(collection_id)}/delete", body)

    def count(self, collection_id: str) -> int:
        return int(self._request("GET", f"{self._collection_path(collection_id)}/count"))

    def get(
        self,
        collection_id: str,
        ids: list[str] | None,
        where: Where | None,
        where_document: WhereDocument | None,
        limit: int | None,
        offset: int | None,
        include: Sequence[IncludeField],
    ) -> GetResult:
        body = {
            "ids": ids,
            "where": where,
            "where_document": where_document,
            "limit": limit,
            "offset": offset,
            "include": list(include),
            "embeddings_encoding": "base64",
        }
        return get_result_from_json(
            self._request("POST", f"{self._collection_path(collection_id)}/get", body)
        )

    def query(
        self,
        collection_id: str,
        query_embeddings: Vectors | None,
        n_results: int,
        where: Where | None,
        where_document: WhereDocument | None,
        include: Sequence[IncludeField],
        query_texts: list[str] | None = None,
        mode: QueryMode = "vector",
        ids: list[str] | None = None,
    ) -> QueryResult:
        body = {
            "ids": ids,
            "query_embeddings": None
            if query_embeddings is None
            else encode_vectors(query_embeddings),
            "query_texts": query_texts,
            "mode": mode,
            "n_results": n_results,
            "where": where,
            "where_document": where_document,
            "include": list(include),
            "embeddings_encoding": "base64",
        }
        return query_result_from_json(
            self._request("POST", f"{self._collection_path(collection_id)}/query", body)
        )

    def build_index(self, collection_id: str) -> None:
        self._request("POST", f"{self._collection_path(collection_id)}/build_index")


def _haima_form(configuration: dict[str, Any]) -> dict[str, Any]:
    """The normalised configuration, sent in Haima's form (the server re-validates it)."""
    form = {
        "index": configuration["index"],
        "metric": configuration["metric"],
        "embedding_function": configuration.get("embedding_function"),
    }
    if "keyword" in configuration:
        form["keyword"] = configuration["keyword"]
    return form


def _encoded(body: Any) -> bytes:
    """The body as UTF-8 JSON. A lone surrogate cannot be UTF-8: it travels as a JSON
    escape instead, so that the server refuses it with the message naming its field."""
    try:
        return json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(body).encode()
