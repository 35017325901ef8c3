"""Embeddings from any OpenAI-compatible HTTP API: OpenAI, DashScope (百炼) compatible
mode, vLLM, Ollama, LM Studio, a Haima server, ...

    OpenAIEmbeddingFunction("text-embedding-3-small")                  # OPENAI_API_KEY
    OpenAIEmbeddingFunction("text-embedding-v4",
        base_url="https://dashscope.aliyuncs.com/compatible-mode/v1")  # DASHSCOPE_API_KEY
    OpenAIEmbeddingFunction("bge-m3", base_url="http://localhost:11434/v1")  # Ollama

Texts go in batches under the provider's input limit (`max_batch_size` inputs and about
`max_batch_chars` characters per request), several requests at a time. 429 and 5xx
answers, timeouts and dropped connections are retried with exponential backoff, honouring
Retry-After. Vectors are requested as base64 (a quarter of the JSON) and accepted in
either form; rows come back in input order whatever order the server used.

The key comes from `api_key`, or from the environment variable named by `api_key_env`;
the spec records only the variable's name, never the key.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import numpy as np

from haima._progress import Advance
from haima.embeddings._http import (
    RETRY_STATUSES,
    EmbeddingProviderError,
    backoff_delay,
    batches,
    decode_embedding,
    error_message,
    normalize_base_url,
    retry_after,
    ssl_context,
)
from haima.embeddings._provider import (
    QueryAwareEmbeddingFunction,
    positive_int,
    spec_options,
)
from haima.embeddings.base import EmbeddingSpec, Vectors, register_provider
from haima.errors import InvalidArgumentError

if TYPE_CHECKING:
    import httpx

PROVIDER = "openai"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
EncodingFormat = Literal["base64", "float"]

#: Inputs per request by host; other hosts get `_DEFAULT_BATCH`.
_HOST_BATCH = {
    "api.openai.com": 512,
    "dashscope.aliyuncs.com": 10,
    "dashscope-intl.aliyuncs.com": 10,
}
_HOST_KEY_ENV = {
    "api.openai.com": "OPENAI_API_KEY",
    "dashscope.aliyuncs.com": "DASHSCOPE_API_KEY",
    "dashscope-intl.aliyuncs.com": "DASHSCOPE_API_KEY",
}
_DEFAULT_BATCH = 64
_PROBE_TEXT = "dimension probe"


class OpenAIEmbeddingFunction(QueryAwareEmbeddingFunction):
    """Embeddings from an OpenAI-compatible `POST {base_url}/embeddings`.

    model: the model name the server knows.
    base_url: the API root, e.g. "http://localhost:8000/v1" ("/embeddings" is appended).
    api_key / api_key_env: the key, or the name of the env var that holds it (read at each
        request). Default env var: OPENAI_API_KEY for api.openai.com, DASHSCOPE_API_KEY for
        DashScope, none for other hosts (local servers need no key).
    dimensions: ask for shorter vectors (models that support it, e.g. text-embedding-3-*).
    max_batch_size: inputs per request (default 512 for OpenAI, 10 for DashScope, 64 else).
    max_batch_chars: a request is closed before its texts pass this many characters.
    max_concurrency: requests in flight at once.
    timeout: seconds per request; max_retries: retries after 429/5xx/timeouts/disconnects;
        backoff / max_backoff: first and largest wait between retries, in seconds.
    encoding_format: "base64" (default) or "float"; a server that refuses base64 is asked
        again for floats.
    document_prefix / query_prefix: prepended to documents / queries (e.g. "passage: " and
        "query: " for e5 models served by vLLM).
    """

    provider = PROVIDER

    def __init__(
        self,
        model: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        api_key_env: str | None = None,
        dimensions: int | None = None,
        max_batch_size: int | None = None,
        max_batch_chars: int = 150_000,
        max_concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        encoding_format: EncodingFormat = "base64",
        document_prefix: str = "",
        query_prefix: str = "",
        progress: bool | None = None,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise InvalidArgumentError(f"model must be a non-empty str, got {model!r}")
        self.model = model
        self.base_url = normalize_base_url(base_url)
        host = urlsplit(self.base_url).hostname or ""
        if api_key is not None and api_key_env is not None:
            raise InvalidArgumentError("give api_key or api_key_env, not both")
        if api_key is not None and (not isinstance(api_key, str) or not api_key):
            raise InvalidArgumentError("api_key must be a non-empty str")
        if api_key_env is not None and (not isinstance(api_key_env, str) or not api_key_env):
            raise InvalidArgumentError("api_key_env must be the name of an environment variable")
        self._api_key = api_key
        self._key_env_explicit = api_key_env is not None
        self.api_key_env = api_key_env if api_key is None and api_key_env else None
        if api_key is None and api_key_env is None:
            self.api_key_env = _HOST_KEY_ENV.get(host)
        self.dimensions = None if dimensions is None else positive_int(dimensions, "dimensions")
        self._explicit_batch = max_batch_size is not None
        self.batch_size = positive_int(
            max_batch_size if max_batch_size is not None else _HOST_BATCH.get(host, _DEFAULT_BATCH),
            "max_batch_size",
        )
        self.max_batch_chars = positive_int(max_batch_chars, "max_batch_chars")
        self.max_concurrency = positive_int(max_concurrency, "max_concurrency")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise InvalidArgumentError(f"timeout must be a positive number, got {timeout!r}")
        self.timeout = float(timeout)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidArgumentError(f"max_retries must be an int >= 0, got {max_retries!r}")
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        if encoding_format not in ("base64", "float"):
            raise InvalidArgumentError(
                f"encoding_format must be 'base64' or 'float', got {encoding_format!r}"
            )
        self.encoding_format: EncodingFormat = encoding_format
        self._format: EncodingFormat = encoding_format
        self.document_prefix = document_prefix
        self.query_prefix = query_prefix
        self.progress = progress
        self.name = _model_id(model, self.dimensions, document_prefix, query_prefix)
        self._dim: int | None = self.dimensions
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        #: Requests sent (attempts included); handy in tests and for cost checks.
        self.requests = 0

    # -- spec -------------------------------------------------------------------------

    def spec(self) -> EmbeddingSpec:
        spec: EmbeddingSpec = {"provider": PROVIDER, "model": self.model, "base_url": self.base_url}
        if self.api_key_env is not None:
            spec["api_key_env"] = self.api_key_env
        if self.dimensions is not None:
            spec["dimensions"] = self.dimensions
        if self._explicit_batch:
            spec["max_batch_size"] = self.batch_size
        if self.encoding_format != "base64":
            spec["encoding_format"] = self.encoding_format
        if self.document_prefix:
            spec["document_prefix"] = self.document_prefix
        if self.query_prefix:
            spec["query_prefix"] = self.query_prefix
        return spec

    @classmethod
    def from_spec(cls, spec: EmbeddingSpec) -> OpenAIEmbeddingFunction:
        options = spec_options(
            spec,
            PROVIDER,
            (
                "model",
                "base_url",
                "api_key_env",
                "dimensions",
                "max_batch_size",
                "max_batch_chars",
                "max_concurrency",
                "timeout",
                "max_retries",
                "encoding_format",
                "document_prefix",
                "query_prefix",
            ),
        )
        if "model" not in options:
            raise InvalidArgumentError(f"embedding spec for {PROVIDER!r} needs a 'model'")
        model = options.pop("model")
        return cls(model, **options)

    # -- dimension --------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """`dimensions` if given, else learned from the first answer (one small request
        is sent if nothing was embedded yet)."""
        if self._dim is None:
            self._embed_batch([_PROBE_TEXT], query=False)
        assert self._dim is not None
        return self._dim

    # -- embedding --------------------------------------------------------------------

    def _run(self, texts: list[str], *, query: bool) -> Vectors:
        if not texts:
            return np.empty((0, self._dim or 0), dtype=np.float32)
        return super()._run(texts, query=query)

    def _embed_all(self, texts: list[str], query: bool, advance: Advance) -> Vectors:
        slices = batches(texts, self.batch_size, self.max_batch_chars)
        if len(slices) == 1 or self.max_concurrency == 1:
            parts = []
            for start, end in slices:
                parts.append(self._embed_batch(texts[start:end], query))
                advance(end - start)
            return np.concatenate(parts)
        results: dict[int, Vectors] = {}
        pool = ThreadPoolExecutor(
            min(self.max_concurrency, len(slices)), thread_name_prefix="haima-embed"
        )
        try:
            pending: dict[Future[Vectors], tuple[int, int]] = {
                pool.submit(self._embed_batch, texts[s:e], query): (s, e) for s, e in slices
            }
            while pending:
                done, _ = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    start, end = pending.pop(future)
                    results[start] = future.result()  # raises the first failure
                    advance(end - start)
        finally:
            # on failure, do not wait for requests still in flight (their retries included)
            pool.shutdown(wait=False, cancel_futures=True)
        return np.concatenate([results[s] for s, _ in slices])

    def _embed_batch(self, texts: list[str], query: bool) -> Vectors:
        prefix = self.query_prefix if query else self.document_prefix
        inputs = [prefix + t for t in texts] if prefix else texts
        vectors = self._request(inputs)
        if self.dimensions is not None and vectors.shape[1] != self.dimensions:
            raise self._error(
                f"asked for dimensions={self.dimensions} but got vectors of "
                f"{vectors.shape[1]} dimensions (does this server support 'dimensions'?)"
            )
        if self._dim is None:
            self._dim = int(vectors.shape[1])
        elif vectors.shape[1] != self._dim:
            raise self._error(
                f"returned {vectors.shape[1]}-dimensional vectors after {self._dim}-dimensional ones"
            )
        return vectors

    def _request(self, inputs: list[str]) -> Vectors:
        import httpx

        client = self._http()
        url = self.base_url + "/embeddings"
        attempt = 0
        format_switched = False
        while True:
            payload: dict[str, Any] = {
                "model": self.model,
                "input": inputs,
                "encoding_format": self._format,
            }
            if self.dimensions is not None:
                payload["dimensions"] = self.dimensions
            self.requests += 1
            try:
                response = client.post(url, json=payload, headers=self._headers())
            except httpx.TimeoutException as exc:
                failure = f"timed out after {self.timeout:g} s ({type(exc).__name__})"
                if attempt >= self.max_retries:
                    raise self._error(failure, attempts=attempt + 1) from exc
            except httpx.TransportError as exc:
                failure = f"could not be reached: {type(exc).__name__}: {exc}"
                if attempt >= self.max_retries:
                    raise self._error(failure, attempts=attempt + 1) from exc
            else:
                status = response.status_code
                if status < 300:
                    return self._parse(response, len(inputs))
                message = error_message(response.content)
                if (
                    status in (400, 415, 422)
                    and self._format == "base64"
                    and not format_switched
                    and any(w in message.lower() for w in ("encoding_format", "base64"))
                ):
                    self._format = "float"  # this server only speaks floats
                    format_switched = True
                    continue
                if status not in RETRY_STATUSES or attempt >= self.max_retries:
                    raise self._status_error(status, message, attempt + 1)
                delay = retry_after(response.headers)
                if delay is not None:
                    time.sleep(min(delay, max(self.max_backoff, 60.0)))
                    attempt += 1
                    continue
            time.sleep(backoff_delay(attempt, self.backoff, self.max_backoff))
            attempt += 1

    def _parse(self, response: httpx.Response, count: int) -> Vectors:
        try:
            body = response.json()
        except ValueError as exc:
            raise self._error(
                f"answered {response.status_code} with a body that is not JSON"
            ) from exc
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise self._error(f"answered without a 'data' list: {str(body)[:200]}")
        if len(data) != count:
            raise self._error(f"returned {len(data)} embeddings for {count} inputs")
        rows: list[Vectors | None] = [None] * count
        for position, item in enumerate(data):
            if not isinstance(item, dict):
                raise self._error(f"data[{position}] is not an object")
            index = item.get("index", position)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
                raise self._error(f"data[{position}] has index {index!r} for {count} inputs")
            if rows[index] is not None:
                raise self._error(f"returned index {index} twice")
            vector = decode_embedding(item.get("embedding"))
            if vector is None or vector.ndim != 1 or vector.size == 0:
                raise self._error(f"data[{position}].embedding is not a float list or base64")
            rows[index] = vector
        sizes = {row.shape[0] for row in rows if row is not None}
        if len(sizes) != 1:
            raise self._error(f"returned vectors of different lengths {sorted(sizes)}")
        vectors = np.stack([row for row in rows if row is not None]).astype(np.float32, copy=False)
        if not np.isfinite(vectors).all():
            raise self._error("returned NaN or infinite values")
        return vectors

    # -- HTTP plumbing ----------------------------------------------------------------

    def _http(self) -> httpx.Client:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    import httpx

                    self._client = httpx.Client(
                        verify=ssl_context(),
                        timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                        limits=httpx.Limits(max_connections=self.max_concurrency),
                        trust_env=True,
                    )
        return self._client

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "haima"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _key(self) -> str | None:
        if self._api_key is not None:
            return self._api_key
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key and self._key_env_explicit:
            raise self._error(
                f"needs an API key, but the environment variable {self.api_key_env} "
                "(api_key_env) is not set"
            )
        return key or None

    def _where(self) -> str:
        return f"embedding provider {self.base_url} (model {self.model!r})"

    def _error(
        self,
        what: str,
        *,
        attempts: int | None = None,
        status: int | None = None,
        provider_message: str | None = None,
    ) -> EmbeddingProviderError:
        tail = f" after {attempts} attempts" if attempts and attempts > 1 else ""
        return EmbeddingProviderError(
            f"{self._where()} {what}{tail}",
            base_url=self.base_url,
            model=self.model,
            status=status,
            provider_message=provider_message,
        )

    def _status_error(self, status: int, message: str, attempts: int) -> EmbeddingProviderError:
        hint = ""
        if status in (401, 403):
            if self._api_key is not None:
                hint = " (check the api_key)"
            elif self.api_key_env is None:
                hint = " (no API key was sent: pass api_key_env='NAME_OF_THE_ENV_VAR')"
            elif not os.environ.get(self.api_key_env):
                hint = f" (no API key was sent: the environment variable {self.api_key_env} is not set)"
            else:
                hint = f" (check the key in the environment variable {self.api_key_env})"
        elif status == 404:
            hint = " (check base_url and model)"
        return self._error(
            f"answered HTTP {status}: {message}{hint}",
            attempts=attempts,
            status=status,
            provider_message=message,
        )

    def close(self) -> None:
        """Close the HTTP connections (the function stays usable; they reopen on use)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> OpenAIEmbeddingFunction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None
        state["_client_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._client_lock = threading.Lock()


def _model_id(model: str, dimensions: int | None, document_prefix: str, query_prefix: str) -> str:
    name = model if dimensions is None else f"{model}@{dimensions}"
    if document_prefix or query_prefix:
        name += f"[{document_prefix!r},{query_prefix!r}]"
    return name


__all__ = ["EmbeddingProviderError", "OpenAIEmbeddingFunction"]

register_provider(PROVIDER, OpenAIEmbeddingFunction.from_spec)
