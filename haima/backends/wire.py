"""The JSON wire format shared by the server and `HttpBackend`.

It is Chroma's REST API v2 format, so that Chroma's own clients work, with a few additions
that Chroma clients never send and safely ignore when they receive them:

* embeddings may travel as base64 strings of little-endian float32 (Chroma's clients send
  them this way when the server advertises it); responses use base64 when the request says
  ``"embeddings_encoding": "base64"``, which keeps float32 values exact;
* error bodies carry ``"haima_error"``, the exact Haima exception class, next to Chroma's
  ``"error"`` name, so that `HttpClient` raises what the embedded client raises;
* collections carry Haima's own configuration under ``configuration_json["haima"]``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import numpy as np

from haima import errors
from haima.backends.base import CollectionModel
from haima.errors import HaimaError, InvalidArgumentError
from haima.types import GetResult, QueryResult, Vectors

API_PREFIX = "/api/v2"

#: Chroma's error names for Haima's classes (what Chroma's clients map back to theirs).
_CHROMA_NAMES: dict[type[HaimaError], str] = {
    errors.InvalidArgumentError: "InvalidArgumentError",
    errors.DuplicateIDError: "DuplicateID",
    errors.NotFoundError: "NotFoundError",
    errors.UniqueConstraintError: "UniqueConstraintError",
    # Chroma's "AuthorizationError" is its 401 and "AuthError" its 403.
    errors.AuthorizationError: "AuthorizationError",
    errors.ResetNotAllowedError: "AuthError",
}

_HAIMA_CLASSES: dict[str, type[HaimaError]] = {
    cls.__name__: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, HaimaError)
}


# -- errors -----------------------------------------------------------------------------------


def chroma_error_name(error: HaimaError) -> str:
    for cls in type(error).__mro__:
        if cls in _CHROMA_NAMES:
            return _CHROMA_NAMES[cls]
    return "InternalError" if error.status_code >= 500 else "ChromaError"


def error_body(error: HaimaError) -> dict[str, Any]:
    return {
        "error": chroma_error_name(error),
        "message": str(error),
        "haima_error": type(error).__name__,
    }


def error_from_body(status: int, body: Any, fallback_text: str) -> HaimaError:
    """The exception a response describes (the exact Haima class where it says one)."""
    if isinstance(body, Mapping):
        message = str(body.get("message") or body.get("detail") or fallback_text)
        cls = _HAIMA_CLASSES.get(str(body.get("haima_error")))
        if cls is None:
            cls = _class_for_status(status)
        return cls(message)
    return _class_for_status(status)(fallback_text or f"HTTP {status}")


_CLASS_BY_STATUS: dict[int, type[HaimaError]] = {
    400: errors.InvalidArgumentError,
    401: errors.AuthorizationError,
    403: errors.AuthorizationError,
    404: errors.NotFoundError,
    409: errors.UniqueConstraintError,
    413: errors.PayloadTooLargeError,
    422: errors.InvalidArgumentError,
    503: errors.ServerUnavailableError,
    504: errors.RequestTimeoutError,
}


def _class_for_status(status: int) -> type[HaimaError]:
    return _CLASS_BY_STATUS.get(status, HaimaError)


# -- embeddings -------------------------------------------------------------------------------


def encode_vectors(vectors: Vectors) -> list[str]:
    """Each row as base64 of little-endian float32."""
    little = np.ascontiguousarray(vectors, dtype="<f4")
    return [base64.b64encode(row.tobytes()).decode("ascii") for row in little]


def decode_embeddings(value: Any, field: str) -> Any:
    """Embeddings as sent: a list of float lists, or a list of base64 strings (decoded to a
    float32 matrix here). Anything else is passed on for validation to reject."""
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        rows = []
        for i, text in enumerate(value):
            try:
                raw = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidArgumentError(f"{field}[{i}]: not valid base64 ({exc})") from None
            if len(raw) % 4:
                raise InvalidArgumentError(
                    f"{field}[{i}]: {len(raw)} bytes is not a whole number of float32 values"
                )
            rows.append(np.frombuffer(raw, dtype="<f4"))
        if len({len(r) for r in rows}) > 1:
            raise InvalidArgumentError(f"{field}: embeddings of different lengths in one call")
        return np.vstack(rows).astype(np.float32, copy=False)
    return value


def _vectors_out(vectors: Vectors | None, base64_out: bool) -> Any:
    if vectors is None:
        return None
    return encode_vectors(vectors) if base64_out else vectors.tolist()


# -- results ----------------------------------------------------------------------------------


def get_result_to_json(result: GetResult, base64_out: bool) -> dict[str, Any]:
    return {
        "ids": result["ids"],
        "embeddings": _vectors_out(result["embeddings"], base64_out),
        "documents": result["documents"],
        "metadatas": result["metadatas"],
        "uris": None,
        "include": result["included"],
    }


def query_result_to_json(result: QueryResult, base64_out: bool) -> dict[str, Any]:
    embeddings = result["embeddings"]
    return {
        "ids": result["ids"],
        "embeddings": None
        if embeddings is None
        else [_vectors_out(rows, base64_out) for rows in embeddings],
        "documents": result["documents"],
        "metadatas": result["metadatas"],
        "distances": result["distances"],
        "uris": None,
        "include": result["included"],
    }


def _vectors_in(value: Any) -> Vectors | None:
    if value is None:
        return None
    if value and isinstance(value[0], str):
        decoded: Vectors = decode_embeddings(value, "embeddings")
        return decoded
    return np.asarray(value, dtype=np.float32)


def get_result_from_json(body: Mapping[str, Any]) -> GetResult:
    ids = list(body["ids"])
    embeddings = _vectors_in(body.get("embeddings"))
    if embeddings is not None and not ids:
        embeddings = np.empty((0, 0), dtype=np.float32)
    return GetResult(
        ids=ids,
        embeddings=embeddings,
        documents=body.get("documents"),
        metadatas=body.get("metadatas"),
        uris=None,
        data=None,
        included=list(body.get("include") or []),
    )


def query_result_from_json(body: Mapping[str, Any]) -> QueryResult:
    embeddings = body.get("embeddings")
    return QueryResult(
        ids=[list(row) for row in body["ids"]],
        embeddings=None
        if embeddings is None
        else [
            _vectors_in(rows) if rows else np.empty((0, 0), dtype=np.float32)  # type: ignore[misc]
            for rows in embeddings
        ],
        documents=body.get("documents"),
        metadatas=body.get("metadatas"),
        distances=body.get("distances"),
        uris=None,
        data=None,
        included=list(body.get("include") or []),
    )


# -- collections ------------------------------------------------------------------------------


def collection_to_json(model: CollectionModel) -> dict[str, Any]:
    """Chroma's collection shape, with Haima's configuration kept whole under "haima"."""
    config = model.configuration
    index = config["index"]
    spec = config.get("embedding_function")
    return {
        "id": model.id,
        "name": model.name,
        "metadata": model.metadata,
        "dimension": model.dimension,
        "tenant": model.tenant,
        "database": model.database,
        "version": 0,
        "log_position": 0,
        "configuration_json": {
            "hnsw": {
                "space": config["metric"],
                "ef_construction": index["ef_construction"],
                "ef_search": index["ef_search"],
                "max_neighbors": index["max_neighbors"],
            },
            "spann": None,
            # A Chroma client's own function description is echoed back to it; Haima's
            # specs mean nothing to Chroma clients.
            "embedding_function": spec if _is_chroma_spec(spec) else None,
            "haima": config,
        },
    }


def collection_from_json(body: Mapping[str, Any]) -> CollectionModel:
    config_json = body.get("configuration_json") or {}
    return CollectionModel(
        id=str(body["id"]),
        name=str(body["name"]),
        tenant=str(body["tenant"]),
        database=str(body["database"]),
        metadata=body.get("metadata"),
        configuration=dict(config_json["haima"]),
        dimension=body.get("dimension"),
    )


def _is_chroma_spec(spec: Any) -> bool:
    return isinstance(spec, Mapping) and "type" in spec and "provider" not in spec
