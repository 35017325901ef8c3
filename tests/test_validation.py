"""Bad input: each case is a clear error naming the field, and nothing is written."""

from __future__ import annotations

import enum
import re
from typing import Any

import numpy as np
import pytest

import haima
from tests.conftest import random_vectors

DIM = 4


@pytest.fixture
def col(client: haima.Client) -> haima.Collection:
    c = client.create_collection("valid", embedding_function=None)
    c.add(ids=["seed"], embeddings=random_vectors(1, DIM), metadatas=[{"year": 2020}])
    return c


def _unchanged(col: haima.Collection) -> None:
    got = col.get(include=["metadatas", "embeddings"])
    assert got["ids"] == ["seed"]
    assert got["metadatas"] == [{"year": 2020}]


BAD_ADDS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    (
        "wrong dimension",
        {"ids": ["a"], "embeddings": [[1.0, 2.0]]},
        haima.DimensionMismatchError,
        "dimension 4",
    ),
    (
        "nan",
        {"ids": ["a"], "embeddings": [[1.0, float("nan"), 0.0, 0.0]]},
        haima.InvalidArgumentError,
        r"embeddings\[0\].*NaN",
    ),
    (
        "inf",
        {"ids": ["a", "b"], "embeddings": [[0.0] * 4, [1.0, float("inf"), 0.0, 0.0]]},
        haima.InvalidArgumentError,
        r"embeddings\[1\]",
    ),
    (
        "duplicate ids",
        {"ids": ["a", "a"], "embeddings": [[0.0] * 4] * 2},
        haima.DuplicateIDError,
        "'a'",
    ),
    (
        "empty id",
        {"ids": [""], "embeddings": [[0.0] * 4]},
        haima.InvalidArgumentError,
        r"ids\[0\].*non-empty",
    ),
    (
        "non-string id",
        {"ids": [5], "embeddings": [[0.0] * 4]},
        haima.InvalidArgumentError,
        r"ids\[0\].*string",
    ),
    (
        "length mismatch",
        {"ids": ["a", "b"], "embeddings": [[0.0] * 4]},
        haima.InvalidArgumentError,
        "1 embeddings for 2 ids",
    ),
    (
        "metadata length",
        {"ids": ["a"], "embeddings": [[0.0] * 4], "metadatas": [{}, {}]},
        haima.InvalidArgumentError,
        "2 metadatas for 1 ids",
    ),
    (
        "documents length",
        {"ids": ["a"], "embeddings": [[0.0] * 4], "documents": ["x", "y"]},
        haima.InvalidArgumentError,
        "2 documents for 1 ids",
    ),
    (
        "nested metadata",
        {"ids": ["a"], "embeddings": [[0.0] * 4], "metadatas": [{"k": {"x": 1}}]},
        haima.InvalidArgumentError,
        r"metadatas\[0\]\.k: nested dicts",
    ),
    (
        "mixed list",
        {"ids": ["a"], "embeddings": [[0.0] * 4], "metadatas": [{"k": [1, "x"]}]},
        haima.InvalidArgumentError,
        r"metadatas\[0\]\.k: list elements",
    ),
    (
        "empty list",
        {"ids": ["a"], "embeddings": [[0.0] * 4], "metadatas": [{"k": []}]},
        haima.InvalidArgumentError,
        "must not be empty",
    ),
    (
        "dollar key",
        {"ids": ["a"], "embeddings": [[0.0] * 4], "metadatas": [{"$k": 1}]},
        haima.InvalidArgumentError,
        r"\$",
    ),
    (
        "nan metadata",
        {"ids": ["a"], "embeddings": [[0.0] * 4], "metadatas": [{"k": float("nan")}]},
        haima.InvalidArgumentError,
        "NaN",
    ),
    (
        "non-str document",
        {"ids": ["a"], "embeddings": [[0.0] * 4], "documents": [3]},
        haima.InvalidArgumentError,
        r"documents\[0\]",
    ),
    ("no vectors", {"ids": ["a"]}, haima.InvalidArgumentError, "embeddings"),
    (
        "no function",
        {"ids": ["a"], "documents": ["text"]},
        haima.InvalidArgumentError,
        "no embedding function",
    ),
]


@pytest.mark.parametrize(
    ("case", "kwargs", "error", "message"), BAD_ADDS, ids=[c[0] for c in BAD_ADDS]
)
def test_bad_add_is_rejected_whole(
    col: haima.Collection, case: str, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        col.add(**kwargs)
    _unchanged(col)


BAD_FILTERS: list[tuple[dict[str, Any], dict[str, Any] | None, str]] = [
    ({"year": {"$equals": 1}}, None, r"where\.year: unknown operator"),
    (
        {"$and": [{"year": 1}, {"year": {"$gte": "x"}}]},
        None,
        r"where\.\$and\[1\]\.year: `\$gte` needs a number",
    ),
    ({"year": {"$in": []}}, None, r"where\.year"),
    ({"year": [1, 2]}, None, r"where\.year"),
    ({"$or": {"year": 1}}, None, r"where: `\$or` needs a non-empty list"),
    ({}, {"$contains": 3}, r"where_document"),
    ({}, {"$regex": "("}, r"where_document"),
    ({}, {"$bogus": "x"}, r"where_document"),
]


@pytest.mark.parametrize(("where", "where_document", "message"), BAD_FILTERS)
def test_bad_filters_name_the_path(
    col: haima.Collection,
    where: dict[str, Any],
    where_document: dict[str, Any] | None,
    message: str,
) -> None:
    with pytest.raises(haima.InvalidFilterError, match=message):
        col.get(where=where, where_document=where_document)
    with pytest.raises(haima.InvalidFilterError, match=message):
        col.query(query_embeddings=[[0.0] * DIM], where=where, where_document=where_document)
    with pytest.raises(haima.InvalidFilterError, match=message):
        col.delete(where=where or {"year": 2020}, where_document=where_document)
    _unchanged(col)


@pytest.mark.parametrize(
    "name", ["ab", "-starts-with-dash", "ends-with-dash-", "has space", "a..b", "x" * 513, "中文名"]
)
def test_bad_collection_names(client: haima.Client, name: str) -> None:
    with pytest.raises(haima.InvalidArgumentError, match="name"):
        client.create_collection(name, embedding_function=None)
    assert client.list_collections() == []


def test_missing_collection(client: haima.Client) -> None:
    with pytest.raises(haima.NotFoundError, match="nope"):
        client.get_collection("nope")
    with pytest.raises(haima.NotFoundError):
        client.delete_collection("nope")


def test_query_arguments(col: haima.Collection) -> None:
    with pytest.raises(haima.InvalidArgumentError, match="n_results"):
        col.query(query_embeddings=[[0.0] * DIM], n_results=0)
    with pytest.raises(haima.DimensionMismatchError, match="query_embeddings"):
        col.query(query_embeddings=[[0.0] * 3])
    with pytest.raises(haima.InvalidArgumentError, match="exactly one"):
        col.query()
    with pytest.raises(haima.InvalidArgumentError, match="include"):
        col.get(include=["distances"])  # type: ignore[list-item]
    with pytest.raises(haima.InvalidArgumentError, match="include"):
        col.query(query_embeddings=[[0.0] * DIM], include=["everything"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ([[0.0] * DIM, [0.0]], "equal-length"),
        ([["x"] * DIM], "numbers"),
        ("not a vector", "numbers"),
        ([], "at least one"),
        ([[]], "must not be empty"),
        ([[float("nan")] * DIM], "NaN"),
    ],
)
def test_bad_query_embeddings(col: haima.Collection, bad: object, problem: str) -> None:
    with pytest.raises(haima.InvalidArgumentError, match=f"query_embeddings.*{problem}"):
        col.query(query_embeddings=bad)  # type: ignore[arg-type]


def test_bad_configuration(client: haima.Client) -> None:
    with pytest.raises(haima.InvalidArgumentError, match=r"configuration\.index\.type"):
        client.create_collection("cfg", configuration={"index": {"type": "btree"}})
    with pytest.raises(haima.InvalidArgumentError, match=r"configuration\.metric"):
        client.create_collection("cfg", configuration={"metric": "hamming"})
    with pytest.raises(haima.InvalidArgumentError, match=r"configuration\.hnsw\.ef_search"):
        client.create_collection("cfg", configuration={"hnsw": {"ef_search": -1}})
    with pytest.raises(haima.InvalidArgumentError, match="metadata"):
        client.create_collection("cfg", metadata={})
    assert client.list_collections() == []


def test_numpy_inputs_accepted(col: haima.Collection) -> None:
    col.add(ids=np.array(["np1"]).tolist(), embeddings=np.ones((1, DIM), dtype=np.float64))
    assert col.count() == 2


class Colour(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_enum_metadata_values_are_stored_as_plain_values(col: haima.Collection) -> None:
    """str and int subclasses (enum members) are stored as their plain values, so that
    filters on the plain values find them."""
    col.add(
        ids=["enum"],
        embeddings=random_vectors(1, DIM),
        metadatas=[{"colour": Colour.RED, "level": Level.HIGH, "tags": [Colour.RED]}],
    )
    got = col.get(ids=["enum"])["metadatas"]
    assert got == [{"colour": "red", "level": 3, "tags": ["red"]}]
    assert type(got[0]["colour"]) is str and type(got[0]["level"]) is int
    assert col.get(where={"colour": "red"})["ids"] == ["enum"]
    assert col.get(where={"level": {"$gte": 3}})["ids"] == ["enum"]
    assert col.get(where={"tags": {"$contains": "red"}})["ids"] == ["enum"]


def test_filter_keys_must_be_strings_even_when_their_text_was_seen() -> None:
    """Parsed filters are cached: {1: 5} must not be taken for the cached {"1": 5}.
    (Embedded only: over HTTP, JSON turns every key into a string before it is sent.)"""
    col = haima.Client().create_collection("keys", embedding_function=None)
    col.add(ids=["a"], embeddings=random_vectors(1, DIM), metadatas=[{"1": 5}])
    assert col.get(where={"1": 5})["ids"] == ["a"]
    with pytest.raises(haima.InvalidFilterError, match="must be strings"):
        col.get(where={1: 5})  # type: ignore[dict-item]


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_float32_query_arrays_are_refused(
    col: haima.Collection, bad_value: float
) -> None:
    queries = np.ones((2, DIM), dtype=np.float32)
    queries[1, DIM - 1] = bad_value  # the fast path for float32 arrays must see it too
    with pytest.raises(haima.InvalidArgumentError, match="query_embeddings"):
        col.query(query_embeddings=queries)


def test_huge_but_finite_float32_queries_are_accepted(col: haima.Collection) -> None:
    # Their squares overflow float32: the fast check fails and the full check passes them.
    queries = np.full((1, DIM), 1e30, dtype=np.float32)
    col.query(query_embeddings=queries, n_results=1)


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({"index": {"type": "hnsw", "max_neighbors": 1}}, "max_neighbors: expected an integer of at least 2"),
        ({"index": {"type": "hnsw", "M": 1}}, "configuration.index.M: expected an integer of at least 2"),
        ({"hnsw": {"max_neighbors": 1}}, "configuration.hnsw.max_neighbors: expected an integer of at least 2"),
        ({"index": {"type": "hnsw", "ef_search": 2**31}}, "configuration.index.ef_search: at most 2147483647"),
        ({"hnsw": {"num_threads": 2**40}}, "configuration.hnsw.num_threads: at most 2147483647"),
    ],
)  # fmt: skip
def test_index_settings_fit_what_faiss_takes(configuration: dict[str, Any], message: str) -> None:
    """FAISS crashed on an HNSW graph of degree 1 and refuses settings beyond a C int."""
    with pytest.raises(haima.InvalidArgumentError, match=re.escape(message)):
        haima.Client().create_collection("bounds", configuration=configuration)


def test_collection_names_are_matched_whole() -> None:
    with pytest.raises(haima.InvalidArgumentError, match="not a valid collection name"):
        haima.Client().create_collection("abc\n")


def test_query_texts_of_a_wrong_type_are_refused() -> None:
    col = haima.Client().create_collection("qtexts", embedding_function=None)
    for bad in (0, False, 3.5):
        with pytest.raises(haima.InvalidArgumentError, match="query_texts: expected a string"):
            col.query(query_texts=bad, mode="keyword")  # type: ignore[arg-type]
