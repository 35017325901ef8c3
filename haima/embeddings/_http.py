"""Helpers for HTTP providers: retry delays, Retry-After, error bodies, base64 vectors."""

from __future__ import annotations

import base64
import binascii
import json
import random
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

from haima.embeddings.base import Vectors
from haima.errors import EmbeddingFunctionError, InvalidArgumentError

if TYPE_CHECKING:
    import ssl

#: Statuses worth retrying: rate limited, and the server's transient failures.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, `Retry-After` in seconds or
    as an HTTP date), or None."""
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff_delay(attempt: int, initial: float, maximum: float) -> float:
    """Exponential backoff with jitter: about initial * 2**attempt, capped at maximum."""
    base = min(maximum, initial * (2.0**attempt))
    return base * (0.75 + random.random() * 0.5)


def error_message(body: bytes, limit: int = 500) -> str:
    """The human part of an error body: OpenAI's {"error": {"message": ...}}, FastAPI's
    {"detail": ...}, {"message": ...}, or the raw text, shortened."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    message: object = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error
        elif error is not None:
            message = error
        else:
            message = data.get("detail") or data.get("message")
    if message is None:
        message = text or "(empty body)"
    out = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def decode_embedding(value: object) -> Vectors | None:
    """One embedding from a response: a list of numbers or a base64 string of
    little-endian float32. None when it is neither."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(raw) % 4:
            return None
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if isinstance(value, list):
        try:
            return np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            return None
    return None


class EmbeddingProviderError(EmbeddingFunctionError):
    """An embedding API failed: says which one (base URL, model) and what it answered."""

    #: The Haima server answers 502 Bad Gateway: the failure is upstream.
    status_code = 502

    def __init__(
        self,
        message: str,
        *,
        base_url: str,
        model: str,
        status: int | None = None,
        provider_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.base_url = base_url
        self.model = model
        #: HTTP status the provider answered, or None (timeout, connection error, ...).
        self.status = status
        self.provider_message = provider_message


_ssl_lock = threading.Lock()
_ssl: ssl.SSLContext | None = None


def ssl_context() -> ssl.SSLContext:
    """One default TLS context per process (building one reads the CA bundle: ~50 ms)."""
    global _ssl
    if _ssl is None:
        with _ssl_lock:
            if _ssl is None:
                import httpx

                _ssl = httpx.create_ssl_context(trust_env=True)
    return _ssl


def normalize_base_url(base_url: str) -> str:
    if not isinstance(base_url, str) or not base_url.strip():
        raise InvalidArgumentError(f"base_url must be a URL, got {base_url!r}")
    url = base_url.strip().rstrip("/")
    if url.endswith("/embeddings"):
        url = url[: -len("/embeddings")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgumentError(f"base_url must be an http(s) URL, got {base_url!r}")
    return url


def batches(texts: Sequence[str], max_items: int, max_chars: int) -> list[tuple[int, int]]:
    """(start, end) slices of at most `max_items` texts and about `max_chars` characters;
    a text longer than `max_chars` travels alone."""
    out: list[tuple[int, int]] = []
    start, chars = 0, 0
    for i, text in enumerate(texts):
        if i > start and (i - start >= max_items or chars + len(text) > max_chars):
            out.append((start, i))
            start, chars = i, 0
        chars += len(text)
    if start < len(texts):
        out.append((start, len(texts)))
    return out
