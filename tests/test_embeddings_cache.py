"""`cached()`: an on-disk cache keyed by (model id, sha256(text))."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from haima.embeddings import (
    CachedEmbeddingFunction,
    QueryEmbeddingFunction,
    SpecifiedEmbeddingFunction,
    cached,
    default_embedding_function,
    embed_documents,
    embed_queries,
    from_spec,
    spec_of,
)
from haima.errors import InvalidArgumentError


class Counting:
    """A fake model that counts the texts it is asked to embed."""

    name = "counting-v1"
    dim = 4

    def __init__(self) -> None:
        self.calls = 0
        self.texts: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts += list(texts)
        return np.array([[len(t), t.count("a"), 1.0, 0.0] for t in texts], dtype=np.float32)


class CountingWithQueries(Counting):
    name = "counting-q"

    def embed_query(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return -self(texts)


TEXTS = ["alpha", "beta", "gamma", "中文句子", "alpha beta"]


def test_second_pass_calls_the_model_zero_times(tmp_path: Path) -> None:
    model = Counting()
    fn = cached(model, tmp_path / "cache.sqlite3")
    first = fn(TEXTS)
    assert model.calls == 1 and (fn.hits, fn.misses) == (0, 5)
    second = fn(TEXTS)
    assert model.calls == 1 and (fn.hits, fn.misses) == (5, 5)
    np.testing.assert_array_equal(first, second)
    assert second.dtype == np.float32


def test_only_new_texts_reach_the_model_and_order_is_kept(tmp_path: Path) -> None:
    model = Counting()
    fn = cached(model, tmp_path)  # a directory: the file goes inside
    fn(TEXTS[:3])
    out = fn(["delta", *TEXTS[:3], "delta", "epsilon"])
    assert model.texts[3:] == ["delta", "epsilon"]  # each new text once
    np.testing.assert_array_equal(out, model(["delta", *TEXTS[:3], "delta", "epsilon"]))
    assert (tmp_path / "embeddings.sqlite3").is_file()


def test_the_cache_persists_across_processes_and_instances(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    with cached(Counting(), path) as fn:
        fn(TEXTS)
    model = Counting()
    again = cached(model, path)
    again(TEXTS)
    assert model.calls == 0 and again.hits == len(TEXTS) and len(again) == len(TEXTS)
    other = Counting()
    other.name = "another-model"
    cached(other, path)(TEXTS)
    assert other.calls == 1  # keyed by model id too


def test_queries_are_cached_apart_when_the_model_embeds_them_differently(
    tmp_path: Path,
) -> None:
    model = CountingWithQueries()
    fn = cached(model, tmp_path / "q.sqlite3")
    assert isinstance(fn, QueryEmbeddingFunction)
    docs = embed_documents(fn, ["alpha"])
    queries = embed_queries(fn, ["alpha"])
    np.testing.assert_array_equal(queries, -docs)
    calls = model.calls
    np.testing.assert_array_equal(embed_queries(fn, ["alpha"]), queries)
    np.testing.assert_array_equal(embed_documents(fn, ["alpha"]), docs)
    assert model.calls == calls


def test_the_spec_is_the_wrapped_functions(tmp_path: Path) -> None:
    inner = default_embedding_function()
    fn = cached(inner, tmp_path / "s.sqlite3")
    assert isinstance(fn, SpecifiedEmbeddingFunction)
    assert spec_of(fn) == spec_of(inner)
    assert fn.name == inner.name and fn.dim == 512
    assert spec_of(from_spec(spec_of(fn) or {})) == spec_of(inner)
    plain = cached(Counting(), tmp_path / "p.sqlite3")
    assert spec_of(plain) is None


def test_a_real_model_is_not_called_again(tmp_path: Path) -> None:
    inner = default_embedding_function()
    calls: list[int] = []

    class Spy:
        name = inner.name
        dim = inner.dim

        def __call__(self, texts: Sequence[str]) -> np.ndarray:
            calls.append(len(texts))
            return np.asarray(inner(texts))

    texts = ["今天天气很好。", "The weather is nice today.", "会议改到星期五了。"]
    fn = cached(Spy(), tmp_path / "real.sqlite3")
    first = fn(texts)
    assert calls == [3]
    np.testing.assert_allclose(fn(texts), first)
    assert calls == [3] and fn.hits == 3
    np.testing.assert_allclose(first, inner(texts), atol=1e-6)


def test_a_plain_callable_needs_a_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="name="):
        cached(lambda texts: [[1.0]] * len(texts), tmp_path / "x.sqlite3")
    fn = cached(lambda texts: [[1.0, 2.0]] * len(texts), tmp_path / "x.sqlite3", name="ones")
    assert fn(["a", "b"]).shape == (2, 2)


def test_bad_input_and_clear(tmp_path: Path) -> None:
    model = Counting()
    fn = cached(model, tmp_path / "b.sqlite3")
    with pytest.raises(InvalidArgumentError, match=r"texts\[1\] is empty"):
        fn(["a", ""])
    fn(["a"])
    assert len(fn) == 1
    fn.clear()
    assert len(fn) == 0
    fn(["a"])
    assert model.calls == 2


def test_the_file_is_plain_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "plain.sqlite3"
    fn: CachedEmbeddingFunction = cached(Counting(), path)
    fn(TEXTS)
    fn.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT model, dim, length(vector) FROM embeddings").fetchall()
    assert rows == [("counting-v1", 4, 16)] * len(TEXTS)
