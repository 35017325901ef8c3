"""An on-disk cache in front of any embedding function.

    fn = cached(default_embedding_function(), path="embeddings.sqlite3")

Vectors are stored in a SQLite file keyed by (model id, sha256 of the text), so embedding
unchanged text again costs a lookup instead of a model call, across processes and runs.
`hits` and `misses` count the texts found and not found. The wrapper keeps the wrapped
function's `name`, `dim`, `spec()` and `embed_query` (query vectors are cached apart from
document vectors when the model embeds them differently).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from haima.embeddings._validate import validate_texts
from haima.embeddings.base import (
    EmbeddingFunction,
    EmbeddingSpec,
    QueryEmbeddingFunction,
    SpecifiedEmbeddingFunction,
    Vectors,
)
from haima.errors import EmbeddingFunctionError, InvalidArgumentError

#: File name used when `path` is a directory.
DEFAULT_FILENAME = "embeddings.sqlite3"
_QUERY_SUFFIX = "#query"
_CHUNK = 500  # keys per SELECT (well under SQLite's variable limit)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model  TEXT    NOT NULL,
    sha256 BLOB    NOT NULL,
    dim    INTEGER NOT NULL,
    vector BLOB    NOT NULL,
    PRIMARY KEY (model, sha256)
) WITHOUT ROWID
"""


class CachedEmbeddingFunction:
    """`fn` with an on-disk cache keyed by (model id, sha256(text)); see `cached`."""

    def __init__(self, fn: EmbeddingFunction, path: str | Path, *, name: str | None = None):
        if not callable(fn):
            raise InvalidArgumentError(f"cached() needs an embedding function, got {fn!r}")
        model_id = name if name is not None else getattr(fn, "name", None)
        if not isinstance(model_id, str) or not model_id:
            raise InvalidArgumentError(
                f"cached(): {fn!r} has no 'name' (model id) to key the cache with; "
                "pass name='my-model-v1'"
            )
        self.fn = fn
        self.name = model_id
        self.path = _resolve(path)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._conn = _connect(self.path)

    @property
    def dim(self) -> int:
        dim = getattr(self.fn, "dim", None)
        if not isinstance(dim, int):
            raise AttributeError(f"{self.fn!r} does not state its dim")
        return dim

    @property
    def progress(self) -> bool | None:
        value = getattr(self.fn, "progress", None)
        return value if isinstance(value, bool) else None

    @progress.setter
    def progress(self, value: bool | None) -> None:
        if hasattr(self.fn, "progress"):
            self.fn.progress = value

    def __call__(self, texts: Sequence[str], /) -> Vectors:
        return self._embed(validate_texts(texts), self.name, self.fn)

    def embed_query(self, texts: Sequence[str], /) -> Vectors:
        items = validate_texts(texts, "queries")
        if isinstance(self.fn, QueryEmbeddingFunction):
            return self._embed(items, self.name + _QUERY_SUFFIX, self.fn.embed_query)
        return self._embed(items, self.name, self.fn)

    def _embed(self, texts: list[str], model: str, embed: Callable[[list[str]], Any]) -> Vectors:
        keys = [hashlib.sha256(t.encode("utf-8")).digest() for t in texts]
        found = self._load(model, list(dict.fromkeys(keys)))
        todo: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in found:
                todo.setdefault(key, text)
        hits = sum(1 for key in keys if key in found)
        with self._lock:
            self.hits += hits
            self.misses += len(keys) - hits
        if todo:
            fresh = np.ascontiguousarray(embed(list(todo.values())), dtype=np.float32)
            if fresh.ndim != 2 or fresh.shape[0] != len(todo):
                raise EmbeddingFunctionError(
                    f"embedding function {self.fn!r} returned shape {fresh.shape} "
                    f"for {len(todo)} texts"
                )
            new = dict(zip(todo, fresh, strict=True))
            self._store(model, new)
            found.update(new)
        dims = {v.shape[0] for v in found.values()}
        if len(dims) > 1:
            raise EmbeddingFunctionError(
                f"the embedding cache {self.path} holds vectors of {sorted(dims)} dimensions for "
                f"model id {model!r}; use another name= for a different model"
            )
        if not keys:
            return np.empty((0, 0), dtype=np.float32)
        return np.stack([found[key] for key in keys])

    def _load(self, model: str, keys: list[bytes]) -> dict[bytes, Vectors]:
        out: dict[bytes, Vectors] = {}
        with self._lock:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT sha256, dim, vector FROM embeddings "
                    f"WHERE model = ? AND sha256 IN ({marks})",
                    [model, *chunk],
                ).fetchall()
                for key, dim, blob in rows:
                    vector = np.frombuffer(blob, dtype="<f4")
                    if vector.shape[0] == dim:
                        out[bytes(key)] = vector.astype(np.float32)
        return out

    def _store(self, model: str, vectors: dict[bytes, Vectors]) -> None:
        rows = [
            (model, key, int(v.shape[0]), v.astype("<f4").tobytes()) for key, v in vectors.items()
        ]
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO embeddings (model, sha256, dim, vector) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

    def __len__(self) -> int:
        """Vectors stored for this model id (documents and queries)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT count(*) FROM embeddings WHERE model IN (?, ?)",
                (self.name, self.name + _QUERY_SUFFIX),
            ).fetchone()
        return int(row[0])

    def clear(self) -> None:
        """Forget this model id's vectors (other models in the same file stay)."""
        with self._lock, self._conn:
            self._conn.execute(
                "DELETE FROM embeddings WHERE model IN (?, ?)",
                (self.name, self.name + _QUERY_SUFFIX),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> CachedEmbeddingFunction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"cached({self.fn!r}, path={str(self.path)!r})"


class CachedSpecifiedEmbeddingFunction(CachedEmbeddingFunction):
    """A cached function whose wrapped function has a spec (the cache is not part of it)."""

    fn: SpecifiedEmbeddingFunction

    def spec(self) -> EmbeddingSpec:
        return self.fn.spec()


def cached(
    fn: EmbeddingFunction, path: str | Path, *, name: str | None = None
) -> CachedEmbeddingFunction:
    """Wrap `fn` with an on-disk cache at `path` (a SQLite file, or a directory to hold
    one). `name` overrides the model id the cache is keyed by (needed for a plain
    callable, which has no `name`)."""
    if isinstance(fn, SpecifiedEmbeddingFunction):
        return CachedSpecifiedEmbeddingFunction(fn, path, name=name)
    return CachedEmbeddingFunction(fn, path, name=name)


def _resolve(path: str | Path) -> Path:
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / DEFAULT_FILENAME
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        conn.commit()
    except sqlite3.Error as exc:
        raise InvalidArgumentError(f"cannot open the embedding cache {path}: {exc}") from exc
    return conn
