"""The API contract, run against every client kind (see the `client` fixture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import haima
from tests.conftest import ClientFactory, random_vectors

DIM = 8


def _collection(client: haima.Client, name: str = "docs", **kwargs: object) -> haima.Collection:
    return client.create_collection(name, embedding_function=None, **kwargs)  # type: ignore[arg-type]


def _fill(col: haima.Collection, n: int = 20) -> np.ndarray:
    vectors = random_vectors(n, DIM)
    col.add(
        ids=[f"id{i}" for i in range(n)],
        embeddings=vectors,
        documents=[f"document number {i}" for i in range(n)],
        metadatas=[{"i": i, "parity": "even" if i % 2 == 0 else "odd"} for i in range(n)],
    )
    return vectors


# -- collections ------------------------------------------------------------------------------


def test_create_get_list_delete_collections(client: haima.Client) -> None:
    col = _collection(client, "first", metadata={"topic": "news"})
    assert col.name == "first" and col.metadata == {"topic": "news"}
    _collection(client, "second")
    assert client.get_collection("first", embedding_function=None).id == col.id
    assert [c.name for c in client.list_collections()] == ["first", "second"]
    assert [c.name for c in client.list_collections(limit=1, offset=1)] == ["second"]
    assert client.count_collections() == 2
    client.delete_collection("first")
    assert [c.name for c in client.list_collections()] == ["second"]
    with pytest.raises(haima.NotFoundError):
        client.get_collection("first")


def test_create_existing_collection_is_an_error_unless_get_or_create(client: haima.Client) -> None:
    col = _collection(client, "dup")
    with pytest.raises(haima.UniqueConstraintError):
        _collection(client, "dup")
    again = client.get_or_create_collection("dup", embedding_function=None)
    assert again.id == col.id
    assert client.create_collection("dup", get_or_create=True, embedding_function=None).id == col.id


def test_modify_renames_and_replaces_metadata(client: haima.Client) -> None:
    col = _collection(client, "old-name")
    _fill(col, 5)
    col.modify(name="new-name", metadata={"v": 2})
    assert col.name == "new-name"
    fetched = client.get_collection("new-name", embedding_function=None)
    assert fetched.metadata == {"v": 2} and fetched.count() == 5
    with pytest.raises(haima.NotFoundError):
        client.get_collection("old-name")


def test_modify_configuration_changes_search_settings_not_metric(client: haima.Client) -> None:
    col = _collection(client, configuration={"hnsw": {"space": "l2", "ef_search": 50}})
    assert col.configuration["metric"] == "l2"
    col.modify(configuration={"hnsw": {"ef_search": 200}})
    assert col.configuration["index"]["ef_search"] == 200
    with pytest.raises(haima.InvalidArgumentError, match="metric"):
        col.modify(configuration={"metric": "cosine"})


def test_chroma_metadata_space_sets_metric(client: haima.Client) -> None:
    col = _collection(client, metadata={"hnsw:space": "ip"})
    assert col.configuration["metric"] == "ip"


def test_heartbeat_and_reset_guard(client: haima.Client) -> None:
    assert client.heartbeat() > 0
    with pytest.raises(haima.ResetNotAllowedError):
        client.reset()


def test_reset_when_allowed() -> None:
    client = haima.Client(haima.Settings(allow_reset=True))
    _collection(client, "gone")
    assert client.reset() is True
    assert client.list_collections() == []
    client.close()


def test_databases_are_separate_namespaces(client: haima.Client) -> None:
    _collection(client, "shared-name")
    client.create_database("other")
    client.set_database("other")
    assert client.list_collections() == []
    col = _collection(client, "shared-name")
    _fill(col, 3)
    client.set_database("default_database")
    assert client.get_collection("shared-name", embedding_function=None).count() == 0


# -- records ----------------------------------------------------------------------------------


def test_add_get_count_and_include(client: haima.Client) -> None:
    col = _collection(client)
    vectors = _fill(col)
    assert col.count() == 20
    got = col.get(ids=["id3", "id1"], include=["documents", "metadatas", "embeddings"])
    assert got["ids"] == ["id1", "id3"]  # in storage order, as Chroma answers
    assert got["documents"] == ["document number 1", "document number 3"]
    assert got["metadatas"] == [{"i": 1, "parity": "odd"}, {"i": 3, "parity": "odd"}]
    assert got["embeddings"] is not None
    np.testing.assert_allclose(got["embeddings"], vectors[[1, 3]])
    plain = col.get(ids="id2")
    assert plain["embeddings"] is None and plain["included"] == ["documents", "metadatas"]


def test_get_pagination_in_insertion_order(client: haima.Client) -> None:
    col = _collection(client)
    _fill(col)
    page = col.get(limit=5, offset=10)
    assert page["ids"] == [f"id{i}" for i in range(10, 15)]
    assert col.get(offset=18)["ids"] == ["id18", "id19"]
    assert col.peek(3)["ids"] == ["id0", "id1", "id2"]


def test_get_with_filters(client: haima.Client) -> None:
    col = _collection(client)
    _fill(col)
    got = col.get(where={"$and": [{"parity": "even"}, {"i": {"$gte": 10}}]})
    assert got["ids"] == ["id10", "id12", "id14", "id16", "id18"]
    got = col.get(where_document={"$contains": "number 1"})
    assert set(got["ids"]) == {"id1"} | {f"id{i}" for i in range(10, 20)}
    got = col.get(ids=["id1", "id2", "id3"], where={"parity": "odd"})
    assert got["ids"] == ["id1", "id3"]


def test_query_nearest_and_distances(client: haima.Client) -> None:
    col = _collection(client, configuration={"metric": "l2"})
    vectors = _fill(col)
    res = col.query(query_embeddings=vectors[[4, 7]], n_results=3)
    assert [ids[0] for ids in res["ids"]] == ["id4", "id7"]
    assert res["distances"] is not None
    expected = ((vectors - vectors[4]) ** 2).sum(axis=1)
    np.testing.assert_allclose(res["distances"][0], np.sort(expected)[:3], rtol=1e-4, atol=1e-5)
    assert res["documents"] is not None and res["documents"][0][0] == "document number 4"


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_distance_conventions(client: haima.Client, metric: str) -> None:
    col = _collection(client, configuration={"metric": metric})
    a = np.array([[3.0, 4.0] + [0.0] * (DIM - 2)], dtype=np.float32)
    b = np.array([[4.0, 3.0] + [0.0] * (DIM - 2)], dtype=np.float32)
    col.add(ids=["a"], embeddings=a)
    d = col.query(query_embeddings=b, n_results=1)["distances"]
    assert d is not None
    dot = float((a * b).sum())
    expected = {
        "cosine": 1 - dot / 25.0,
        "ip": 1 - dot,
        "l2": float(((a - b) ** 2).sum()),
    }[metric]
    assert d[0][0] == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_query_with_where_and_more_results_than_matches(client: haima.Client) -> None:
    col = _collection(client)
    vectors = _fill(col)
    res = col.query(query_embeddings=vectors[0], n_results=50, where={"i": {"$in": [1, 2, 3]}})
    assert sorted(res["ids"][0]) == ["id1", "id2", "id3"]
    res = col.query(query_embeddings=vectors[:2], n_results=100)
    assert all(len(ids) == 20 for ids in res["ids"])
    empty = col.query(query_embeddings=vectors[0], where={"i": {"$gt": 1000}})
    assert empty["ids"] == [[]]


def test_filtered_queries_stay_in_their_collection(client: haima.Client) -> None:
    """Two collections written in turns, with the same metadata keys and values: a filter
    read from the shared metadata index must still answer from its own collection only."""
    dim = 8
    cols = [client.create_collection(name, embedding_function=None) for name in ("left", "right")]
    for batch in range(4):
        for side, col in enumerate(cols):
            start = batch * 50
            col.add(
                ids=[f"{col.name}{i}" for i in range(start, start + 50)],
                embeddings=random_vectors(50, dim, seed=10 * batch + side),
                metadatas=[{"i": i, "tags": [f"t{i % 3}"]} for i in range(start, start + 50)],
            )
    probe = random_vectors(1, dim, seed=99)
    for col in cols:
        for where in (
            {"i": {"$lt": 100}},
            {"$or": [{"i": 7}, {"tags": {"$contains": "t1"}}]},
            {"$and": [{"i": {"$gte": 10}}, {"i": {"$in": [5, 12, 13, 150]}}]},
        ):
            found = col.query(query_embeddings=probe, n_results=500, where=where)["ids"][0]
            expected = col.get(where=where)["ids"]
            assert sorted(found) == sorted(expected)
            assert found and all(record_id.startswith(col.name) for record_id in found)


def test_query_include_embeddings(client: haima.Client) -> None:
    col = _collection(client)
    vectors = _fill(col, 5)
    res = col.query(query_embeddings=vectors[2], n_results=1, include=["embeddings"])
    assert res["ids"] == [["id2"]] and res["distances"] is None and res["documents"] is None
    assert res["embeddings"] is not None
    np.testing.assert_allclose(res["embeddings"][0][0], vectors[2])


def test_update_merges_metadata_and_keeps_other_fields(client: haima.Client) -> None:
    col = _collection(client)
    vectors = _fill(col, 4)
    col.update(ids=["id1"], metadatas=[{"parity": "changed", "new": True, "i": None}])
    got = col.get(ids=["id1"], include=["documents", "metadatas", "embeddings"])
    assert got["metadatas"] == [{"parity": "changed", "new": True}]
    assert got["documents"] == ["document number 1"]
    np.testing.assert_allclose(got["embeddings"][0], vectors[1])  # type: ignore[index]
    col.update(ids="id2", documents="rewritten")
    assert col.get(ids="id2")["documents"] == ["rewritten"]


def test_update_embedding_moves_the_record(client: haima.Client) -> None:
    col = _collection(client)
    vectors = _fill(col, 10)
    col.update(ids=["id0"], embeddings=[vectors[9] * 1.01])
    res = col.query(query_embeddings=vectors[0], n_results=10)
    assert res["ids"][0][0] != "id0"
    res = col.query(query_embeddings=vectors[9], n_results=2)
    assert set(res["ids"][0]) == {"id9", "id0"}
    assert col.count() == 10


def test_update_of_missing_id_fails_and_writes_nothing(client: haima.Client) -> None:
    col = _collection(client)
    _fill(col, 3)
    with pytest.raises(haima.NotFoundError, match="nope"):
        col.update(ids=["id0", "nope"], metadatas=[{"x": 1}, {"x": 2}])
    assert col.get(ids=["id0"])["metadatas"] == [{"i": 0, "parity": "even"}]


def test_upsert_adds_new_and_updates_existing(client: haima.Client) -> None:
    col = _collection(client)
    vectors = _fill(col, 3)
    col.upsert(
        ids=["id1", "fresh"],
        embeddings=vectors[[2, 0]],
        metadatas=[{"parity": "upserted"}, {"k": "v"}],
        documents=["doc one", "doc fresh"],
    )
    assert col.count() == 4
    got = col.get(ids=["id1", "fresh"])
    assert got["metadatas"] == [{"i": 1, "parity": "upserted"}, {"k": "v"}]
    assert got["documents"] == ["doc one", "doc fresh"]
    assert set(col.query(query_embeddings=vectors[2], n_results=2)["ids"][0]) == {"id1", "id2"}


def test_add_skips_stored_ids_as_chroma_does(client: haima.Client) -> None:
    """Chroma's rule: `add` of an id already stored leaves that record as it is (no error,
    no replacement) and adds the others; ids repeated within one call are an error."""
    col = _collection(client)
    vectors = _fill(col, 3)
    fresh = random_vectors(2, DIM, seed=99)
    before = col.get(ids=["id1"], include=["documents", "metadatas", "embeddings"])
    col.add(
        ids=["brand-new", "id1"],
        embeddings=fresh,
        documents=["new doc", "would replace"],
        metadatas=[{"k": "new"}, {"k": "would replace"}],
    )
    assert col.count() == 4
    after = col.get(ids=["id1"], include=["documents", "metadatas", "embeddings"])
    assert after["documents"] == before["documents"]
    assert after["metadatas"] == before["metadatas"]
    assert np.array_equal(after["embeddings"], before["embeddings"])
    assert col.get(ids=["brand-new"], include=["documents"])["documents"] == ["new doc"]
    assert col.query(query_embeddings=fresh[0], n_results=1)["ids"] == [["brand-new"]]
    assert col.query(query_embeddings=vectors[1], n_results=1)["ids"] == [["id1"]]  # kept
    col.add(ids=["id0", "id2"], embeddings=vectors[:2])  # all stored: nothing happens
    assert col.count() == 4
    with pytest.raises(haima.DimensionMismatchError):  # skipped or not, the shape counts
        col.add(ids=["id0"], embeddings=[[1.0, 2.0, 3.0]])
    with pytest.raises(haima.DuplicateIDError, match="x"):
        col.add(ids=["x", "x"], embeddings=vectors[:2])
    assert col.count() == 4


def test_delete_by_ids_where_and_document(client: haima.Client) -> None:
    col = _collection(client)
    vectors = _fill(col)
    col.delete(ids=["id0", "id1"])
    col.delete(where={"parity": "odd", "i": {"$lt": 10}})
    col.delete(where_document={"$contains": "number 19"})
    remaining = set(col.get()["ids"])
    expected = {f"id{i}" for i in range(2, 19)} - {f"id{i}" for i in (3, 5, 7, 9)}
    assert remaining == expected
    res = col.query(query_embeddings=vectors[0], n_results=20)
    assert set(res["ids"][0]) == expected
    col.delete(ids=["id2", "id4"], where={"i": 4})
    assert "id2" in col.get()["ids"] and "id4" not in col.get()["ids"]
    with pytest.raises(haima.InvalidArgumentError):
        col.delete()


def test_delete_collection_then_use_stale_handle(client: haima.Client) -> None:
    col = _collection(client)
    _fill(col, 2)
    client.delete_collection("docs")
    with pytest.raises(haima.NotFoundError):
        col.count()


def test_list_metadata_values_and_contains(client: haima.Client) -> None:
    col = _collection(client)
    col.add(
        ids=["a", "b", "c"],
        embeddings=random_vectors(3, DIM),
        metadatas=[{"tags": ["x", "y"]}, {"tags": ["y"]}, {"n": [1, 2, 3]}],
    )
    assert col.get(where={"tags": {"$contains": "x"}})["ids"] == ["a"]
    assert col.get(where={"tags": {"$contains": "y"}})["ids"] == ["a", "b"]
    assert col.get(where={"n": {"$contains": 2}})["ids"] == ["c"]
    assert col.get(ids=["a"])["metadatas"] == [{"tags": ["x", "y"]}]


def test_chinese_document_contains(client: haima.Client) -> None:
    col = _collection(client)
    col.add(
        ids=["bj", "sh", "en"],
        embeddings=random_vectors(3, DIM),
        documents=["我爱北京天安门", "上海是一座城市", "Beijing and Shanghai"],
    )
    assert col.get(where_document={"$contains": "北京"})["ids"] == ["bj"]
    assert col.get(where_document={"$contains": "城市"})["ids"] == ["sh"]
    assert col.get(where_document={"$contains": "一座城"})["ids"] == ["sh"]
    assert col.get(where_document={"$not_contains": "北京"})["ids"] == ["sh", "en"]


def test_document_regex(client: haima.Client) -> None:
    col = _collection(client)
    col.add(
        ids=["bj", "en"],
        embeddings=random_vectors(2, DIM),
        documents=["我爱北京天安门", "Beijing and Shanghai"],
    )
    assert col.get(where_document={"$regex": "^Bei.*hai$"})["ids"] == ["en"]
    assert col.get(where_document={"$not_regex": "^Bei"})["ids"] == ["bj"]


def test_persistent_data_survives_reopen(make_client: ClientFactory, client_kind: str) -> None:
    first = make_client()
    col = _collection(first, configuration={"index": {"type": "hnsw"}})
    vectors = _fill(col, 30)
    col.delete(ids=["id5"])
    col.build_index()
    if client_kind == "persistent":
        first.close()
    again = make_client().get_collection("docs", embedding_function=None)
    assert again.count() == 29
    res = again.query(query_embeddings=vectors[6], n_results=1)
    assert res["ids"] == [["id6"]]
    assert "id5" not in again.query(query_embeddings=vectors[5], n_results=29)["ids"][0]


def test_context_manager_closes(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "ctx"
    with haima.PersistentClient(path) as c:
        _fill(_collection(c), 5)
    with haima.PersistentClient(path) as c:
        assert c.get_collection("docs", embedding_function=None).count() == 5


def test_num_threads_setting_searches_correctly(client: haima.Client) -> None:
    col = _collection(client, configuration={"hnsw": {"num_threads": 1}})
    vectors = _fill(col, 12)
    assert col.configuration["index"]["num_threads"] == 1
    assert col.query(query_embeddings=vectors[7], n_results=1)["ids"] == [["id7"]]


def test_ids_only_queries_follow_updates_deletes_and_reopen(
    make_client: ClientFactory, client_kind: str
) -> None:
    first = make_client()
    col = _collection(first)
    vectors = _fill(col, 10)
    col.upsert(ids=["id3"], embeddings=[vectors[8] * 1.001])  # id3 gets a new vector
    col.delete(ids=["id8"])
    ids_only = col.query(query_embeddings=vectors[8], n_results=1, include=["distances"])
    assert ids_only["ids"] == [["id3"]] and ids_only["documents"] is None
    if client_kind == "persistent":
        first.close()
    again = make_client().get_collection("docs", embedding_function=None)
    res = again.query(query_embeddings=vectors[[8, 5]], n_results=1, include=[])
    assert res["ids"] == [["id3"], ["id5"]]


def test_collection_outlives_an_unreferenced_client(
    client_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`PersistentClient(path).get_collection(...)` is a common idiom: the client object
    is dropped at once, and the collection must keep working."""
    import gc

    def throwaway() -> haima.Client:
        if client_kind == "memory":
            return haima.Client()
        if client_kind == "persistent":
            return haima.PersistentClient(tmp_path / "store")
        if client_kind == "milvus":
            return haima.MilvusClient(str(tmp_path / "orphan.db"))
        return haima.HttpClient.from_url(request.getfixturevalue("shared_server").url)

    col = throwaway().get_or_create_collection(f"orphan-{client_kind}", embedding_function=None)
    gc.collect()
    col.upsert(ids=["a"], embeddings=[[1.0, 0.0]])
    assert col.query(query_embeddings=[[1.0, 0.0]], n_results=1)["ids"] == [["a"]]


def test_get_answers_in_storage_order_whatever_the_ids_order(client: haima.Client) -> None:
    """As Chroma: records come in the order they were first stored, so that `limit` and
    `offset` page through one order with or without `ids` and filters."""
    col = _collection(client)
    _fill(col, 12)
    asked = [f"id{i}" for i in (11, 3, 7, 0)]
    assert col.get(ids=asked)["ids"] == ["id0", "id3", "id7", "id11"]
    paged = col.get(ids=asked, limit=2, offset=1)["ids"]
    assert paged == ["id3", "id7"]
    by_filter = col.get(where={"parity": "odd"}, limit=3, offset=2)["ids"]
    assert by_filter == ["id5", "id7", "id9"]


def test_query_restricted_to_ids(client: haima.Client) -> None:
    col = _collection(client)
    vectors = _fill(col, 20)
    among = ["id3", "id8", "id13"]
    found = col.query(query_embeddings=vectors[8], n_results=5, ids=among)
    assert found["ids"][0][0] == "id8"
    assert set(found["ids"][0]) == set(among)  # only those, however near the others are
    near = col.query(query_embeddings=vectors[8], n_results=5, ids=among, where={"i": {"$gt": 5}})
    assert set(near["ids"][0]) == {"id8", "id13"}
    assert col.query(query_embeddings=vectors[8], n_results=3, ids=["nope"])["ids"] == [[]]
    assert col.query(query_embeddings=vectors[8], n_results=3, ids=[])["ids"] == [[]]
