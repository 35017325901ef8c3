"""Changing a collection's index type rebuilds its index from the stored vectors."""

from __future__ import annotations

import pytest

import haima
from tests.conftest import random_vectors


@pytest.mark.parametrize(("before", "after"), [("ivf", "flat"), ("sq8", "hnsw"), ("hnsw", "ivf")])
def test_new_index_type_answers_exactly_like_the_old_data(
    client: haima.Client, before: str, after: str
) -> None:
    vectors = random_vectors(12_000, 16, seed=5)
    col = client.create_collection(
        "reindexed", configuration={"index": {"type": before}}, embedding_function=None
    )
    col.add(ids=[f"v{i}" for i in range(len(vectors))], embeddings=vectors)
    col.build_index()
    col.modify(configuration={"index": {"type": after}})
    assert col.configuration["index"]["type"] == after
    probes = vectors[[3, 777, 11_999]]
    for probe, want in zip(probes, [3, 777, 11_999], strict=True):
        found = col.query(query_embeddings=probe, n_results=1, include=["distances"])
        assert found["ids"] == [[f"v{want}"]]
        assert found["distances"] is not None and found["distances"][0][0] < 1e-4
    col.build_index()  # the new kind's ANN part, built from the same vectors
    for probe, want in zip(probes, [3, 777, 11_999], strict=True):
        assert col.query(query_embeddings=probe, n_results=1)["ids"] == [[f"v{want}"]]
    assert col.count() == len(vectors)
