"""Keyword (BM25) and hybrid search: what each mode finds, filters, keeping the keyword
index in step with every write, configuration, and bad input.

Embeddings are hand-built unit vectors, so which record is nearest to a query vector is
known without a model; one test uses the default (offline) embedding model.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import haima
from haima import text
from haima.embeddings import MissingDependencyError
from haima.index.fusion import convex_fusion, reciprocal_rank_fusion
from haima.storage.keyword import match_expression
from tests.conftest import ClientFactory

DIM = 8
KEYWORD_ON = {"keyword": {"enabled": True}}


def unit(i: int, dim: int = DIM) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    v[i] = 1.0
    return v


def between(i: int, j: int) -> np.ndarray:
    """A vector nearest to unit(i), then unit(j)."""
    v = 0.9 * unit(i) + 0.4 * unit(j)
    return (v / np.linalg.norm(v)).astype(np.float32)


#: id → (document, embedding axis, metadata). No two share an axis.
LIBRARY: dict[str, tuple[str, int, dict[str, object]]] = {
    "robot": ("型号XJ-9000-B的工业机器人可以连续工作", 0, {"lang": "zh", "year": 2021}),
    "capital": ("我们在北京天安门广场看升旗", 1, {"lang": "zh", "year": 2019}),
    "password": ("Steps to recover a forgotten login credential", 2, {"lang": "en", "year": 2022}),
    "dogs": ("Running dogs chase the ball in the park", 3, {"lang": "en", "year": 2020}),
    "shanghai": ("上海的天气今天很好，适合去外滩散步", 4, {"lang": "zh", "year": 2023}),
    "fusion": (
        "Hybrid retrieval fuses keyword and vector rankings",
        5,
        {"lang": "en", "year": 2024},
    ),
}


def library(client: haima.Client, name: str = "library", **config: object) -> haima.Collection:
    col = client.create_collection(
        name, configuration={**KEYWORD_ON, **config}, embedding_function=None
    )
    col.add(
        ids=list(LIBRARY),
        embeddings=np.stack([unit(axis) for _, axis, _ in LIBRARY.values()]),
        documents=[doc for doc, _, _ in LIBRARY.values()],
        metadatas=[md for _, _, md in LIBRARY.values()],
    )
    return col


def ids_of(col: haima.Collection, query: str, n: int = 10, **kwargs: object) -> list[str]:
    return col.query(query_texts=[query], n_results=n, mode="keyword", **kwargs)["ids"][0]  # type: ignore[arg-type]


def hybrid_ids(
    col: haima.Collection, query: str, vector: np.ndarray, n: int = 3, **kw: object
) -> list[str]:
    result = col.query(
        query_texts=[query],
        query_embeddings=vector[None, :],
        n_results=n,
        mode="hybrid",
        **kw,  # type: ignore[arg-type]
    )
    return result["ids"][0]


# -- what each mode finds -------------------------------------------------------------------


def test_rare_identifier_is_found_by_keyword_and_hybrid_not_by_vector(
    client: haima.Client,
) -> None:
    col = library(client)
    query_vector = between(2, 3)  # the vector side: "password", then "dogs"
    assert ids_of(col, "XJ-9000-B") == ["robot"]
    assert "robot" in hybrid_ids(col, "XJ-9000-B", query_vector, n=2)
    vector_only = col.query(query_embeddings=query_vector[None, :], n_results=2)["ids"][0]
    assert "robot" not in vector_only


def test_chinese_two_character_words_are_found(client: haima.Client) -> None:
    col = library(client)
    # "北京" and "广场" sit inside the longer dictionary word 北京天安门广场.
    assert ids_of(col, "北京") == ["capital"]
    assert ids_of(col, "广场") == ["capital"]
    assert ids_of(col, "天气") == ["shanghai"]
    assert ids_of(col, "型号") == ["robot"]  # next to Latin letters in the document
    assert ids_of(col, "上海天气怎么样") == ["shanghai"]


def test_english_words_are_stemmed_and_case_folded(client: haima.Client) -> None:
    col = library(client)
    assert ids_of(col, "run") == ["dogs"]
    assert ids_of(col, "DOG") == ["dogs"]
    assert ids_of(col, "rankings fused") == ["fusion"]


def test_paraphrase_is_found_by_vector_and_hybrid_not_by_keyword(client: haima.Client) -> None:
    col = library(client)
    question = "How do I reset my password?"  # no word in common with "password"'s document
    near_password = between(2, 5)
    assert ids_of(col, question) == []
    vector = col.query(query_embeddings=near_password[None, :], n_results=1)["ids"][0]
    assert vector == ["password"]
    assert hybrid_ids(col, question, near_password, n=1) == ["password"]


def test_hybrid_ranks_a_record_both_sides_agree_on_first(client: haima.Client) -> None:
    col = library(client)
    # Keyword: only "fusion" matches. Vector: "fusion" first, "robot" second.
    result = col.query(
        query_texts=["hybrid retrieval"],
        query_embeddings=between(5, 0)[None, :],
        n_results=3,
        mode="hybrid",
    )
    assert result["ids"][0][:2] == ["fusion", "robot"]
    distances = result["distances"]
    assert distances is not None
    assert distances[0][0] == pytest.approx(0.0, abs=1e-6)  # first on both sides
    assert distances[0] == sorted(distances[0])


def test_hybrid_embeds_query_texts_with_the_collection_function(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    col = client.create_collection("default-model", configuration=KEYWORD_ON)
    col.add(
        ids=["weather", "cooking", "sku"],
        documents=[
            "今天北京下大雨，出门记得带伞。",
            "How to bake bread at home with a simple oven.",
            "Replacement filter cartridge part number QX-42-7Z.",
        ],
    )
    # A paraphrase the vector side must carry (no shared word), and an identifier.
    assert col.query(query_texts=["天气预报说会下雨吗"], n_results=1, mode="hybrid")["ids"] == [
        ["weather"]
    ]
    assert col.query(query_texts=["QX-42-7Z"], n_results=1, mode="hybrid")["ids"] == [["sku"]]


def test_several_queries_answer_row_by_row(client: haima.Client) -> None:
    col = library(client)
    result = col.query(
        query_texts=["北京", "dogs", "nothing matches this"], n_results=5, mode="keyword"
    )
    assert result["ids"] == [["capital"], ["dogs"], []]
    assert result["documents"] == [[LIBRARY["capital"][0]], [LIBRARY["dogs"][0]], []]
    assert result["metadatas"] == [[LIBRARY["capital"][2]], [LIBRARY["dogs"][2]], []]


def test_keyword_distances_are_negated_bm25_best_first(client: haima.Client) -> None:
    col = client.create_collection("bm25", configuration=KEYWORD_ON, embedding_function=None)
    fillers = [f"unrelated filler text {i}" for i in range(4)]  # so "vector" has weight
    col.add(
        ids=["twice", "once", "long", *fillers],
        embeddings=np.stack([unit(i) for i in range(7)]),
        documents=[
            "vector vector database",
            "vector database",
            "a vector database among many many other words of a long long document",
            *fillers,
        ],
    )
    result = col.query(query_texts=["vector"], n_results=3, mode="keyword", include=["distances"])
    assert result["ids"] == [["twice", "once", "long"]]  # term frequency, then length
    distances = result["distances"]
    assert distances is not None
    assert all(d < 0 for d in distances[0])
    assert distances[0] == sorted(distances[0])


def test_n_results_beyond_the_matches_returns_what_matches(client: haima.Client) -> None:
    col = library(client)
    assert ids_of(col, "北京", n=50) == ["capital"]
    assert len(hybrid_ids(col, "北京", unit(3), n=50)) == len(LIBRARY)  # vector side: all


def test_include_embeddings_in_keyword_mode(client: haima.Client) -> None:
    col = library(client)
    result = col.query(query_texts=["北京"], mode="keyword", include=["embeddings"])
    embeddings = result["embeddings"]
    assert embeddings is not None
    np.testing.assert_array_equal(embeddings[0], unit(1)[None, :])
    assert result["documents"] is None and result["distances"] is None


def test_query_text_is_never_fts5_syntax(client: haima.Client) -> None:
    col = client.create_collection("syntax", configuration=KEYWORD_ON, embedding_function=None)
    col.add(
        ids=["ops", "plain"],
        embeddings=np.stack([unit(0), unit(1)]),
        documents=["NEAR NOT terms column star", "ordinary text"],
    )
    for hostile in ['"', "NEAR(a b)", "*", "terms*", "column:terms", "^terms", "a AND", "(", "'"]:
        col.query(query_texts=[hostile], mode="keyword")  # no error
    assert ids_of(col, "NOT") == ["ops"]  # the word, not the operator
    assert ids_of(col, "NEAR(NOT") == ["ops"]  # a phrase of two words, not NEAR()
    assert ids_of(col, "ordinary OR") == ["plain"]


# -- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_where_filters_apply_before_ranking(client: haima.Client, mode: str) -> None:
    col = library(client)
    vector = unit(1)[None, :]  # nearest: "capital"
    extra = {"query_embeddings": vector} if mode == "hybrid" else {}
    # The best match of both sides is excluded by the filter; the others still come.
    result = col.query(
        query_texts=["北京 天气"],
        n_results=10,
        where={"year": {"$gte": 2021}},
        mode=mode,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )
    found = result["ids"][0]
    assert "capital" not in found
    assert "shanghai" in found
    years = [md["year"] for md in result["metadatas"][0]]  # type: ignore[index]
    assert all(isinstance(y, int) and y >= 2021 for y in years)


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_where_document_filters_in_every_mode(client: haima.Client, mode: str) -> None:
    col = library(client)
    kwargs: dict[str, object] = {"query_embeddings": unit(4)[None, :]}
    if mode != "vector":
        kwargs["query_texts"] = ["天气"]
    if mode == "keyword":
        del kwargs["query_embeddings"]
    result = col.query(
        n_results=10,
        where_document={"$contains": "北京"},
        mode=mode,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
    # "shanghai" is the best match of every side, but only "capital" contains 北京; a
    # keyword search for 天气 within 北京-documents finds nothing.
    assert result["ids"][0] == ([] if mode == "keyword" else ["capital"])


def test_where_and_where_document_together(client: haima.Client) -> None:
    col = library(client)
    found = ids_of(
        col, "dogs ranking 北京", where={"lang": "en"}, where_document={"$not_contains": "park"}
    )
    assert found == ["fusion"]


# -- the index follows every write -------------------------------------------------------------


def test_deleted_records_are_never_returned(client: haima.Client) -> None:
    col = library(client)
    col.delete(ids=["capital"])
    assert ids_of(col, "北京") == []
    col.delete(where={"lang": "en"})
    assert ids_of(col, "dogs fusion password") == []
    assert "dogs" not in hybrid_ids(col, "dogs", unit(3), n=10)
    col.delete(where_document={"$contains": "上海"})
    assert ids_of(col, "天气") == []
    assert ids_of(col, "XJ-9000-B") == ["robot"]


def test_deleted_best_matches_leave_room_for_the_next(client: haima.Client) -> None:
    """A deleted record's words leave the index: the best live match fills n_results=1
    (a stale entry would take the slot and the answer would come back empty)."""
    col = client.create_collection("ranked", configuration=KEYWORD_ON, embedding_function=None)
    col.add(
        ids=["best", "second", "third", "other"],
        embeddings=np.stack([unit(0), unit(1), unit(2), unit(3)]),
        documents=["北京 北京 北京", "北京 北京 上海", "北京 天气 今天 很好", "广州"],
    )
    assert ids_of(col, "北京", n=1) == ["best"]
    col.delete(ids=["best"])
    col.delete(where_document={"$contains": "上海"})
    assert ids_of(col, "北京", n=1) == ["third"]


def test_updated_document_is_found_by_new_words_only(client: haima.Client) -> None:
    col = library(client)
    col.update(ids=["capital"], documents=["广州的早茶很有名"])  # in place: same embedding
    assert ids_of(col, "北京") == []
    assert ids_of(col, "早茶") == ["capital"]
    col.update(ids=["dogs"], embeddings=unit(6)[None, :], documents=["Cats sleeping on a sofa"])
    assert ids_of(col, "dogs") == []
    assert ids_of(col, "cat") == ["dogs"]


def test_metadata_or_embedding_only_changes_keep_the_words(client: haima.Client) -> None:
    col = library(client)
    col.update(ids=["capital"], metadatas=[{"year": 1999}])
    assert ids_of(col, "北京") == ["capital"]
    col.update(ids=["capital"], embeddings=unit(7)[None, :])  # a new vector: a new rid
    assert ids_of(col, "北京") == ["capital"]
    col.upsert(ids=["robot"], embeddings=unit(6)[None, :])
    assert ids_of(col, "XJ-9000-B") == ["robot"]
    assert hybrid_ids(col, "XJ-9000-B", unit(6), n=1) == ["robot"]


def test_upsert_replaces_and_adds_documents(client: haima.Client) -> None:
    col = library(client)
    col.upsert(
        ids=["shanghai", "new"],
        embeddings=np.stack([unit(4), unit(6)]),
        documents=["深圳的夏天很热", "A new record about quantum tunnelling"],
    )
    assert ids_of(col, "上海") == []
    assert ids_of(col, "深圳") == ["shanghai"]
    assert ids_of(col, "quantum") == ["new"]


def test_a_record_without_document_is_not_in_the_keyword_index(client: haima.Client) -> None:
    col = library(client)
    col.add(ids=["bare"], embeddings=unit(6)[None, :])
    col.update(ids=["capital"], documents=[None])  # None: leave the document as it is
    assert ids_of(col, "北京") == ["capital"]
    assert "bare" in hybrid_ids(col, "北京", unit(6), n=2)  # found by its vector only


def test_big_batches_are_indexed_whole(client: haima.Client) -> None:
    """Batches of 512+ documents are segmented on a helper thread in steps of 1,000,
    while the records are written: every document must still land on its own rid."""
    col = client.create_collection("big", configuration=KEYWORD_ON, embedding_function=None)
    n = 2_600
    ids = [f"r{i}" for i in range(n)]
    docs: list[str | None] = [None if i % 7 == 0 else f"item{i} 编号 北京" for i in range(n)]
    vectors = np.stack([unit(i % DIM) for i in range(n)])
    col.add(ids=ids, embeddings=vectors, documents=docs)
    for i in (1, 999, 1000, 1002, 2599):  # (multiples of 7 have no document)
        assert ids_of(col, f"item{i}") == [f"r{i}"]
    assert ids_of(col, "item7") == []  # r7 has no document
    col.upsert(ids=ids, embeddings=vectors, documents=[f"entry{i} 上海" for i in range(n)])
    for i in (0, 7, 1500, 2598):
        assert ids_of(col, f"entry{i}") == [f"r{i}"]
    assert ids_of(col, "item1") == [] and ids_of(col, "北京") == []
    assert len(ids_of(col, "上海", n=n)) == n


def test_failed_write_leaves_the_index_untouched(client: haima.Client) -> None:
    col = library(client)
    with pytest.raises(haima.DimensionMismatchError):  # refused inside the transaction
        col.add(
            ids=["fresh", "robot"],
            embeddings=np.ones((2, 3), np.float32),
            documents=["北京烤鸭", "replaced"],
        )
    assert ids_of(col, "北京") == ["capital"]
    assert ids_of(col, "replaced") == []


def test_random_writes_keep_keyword_results_exact(client: haima.Client) -> None:
    """A seeded random walk of writes against a model: after each one, every word finds
    exactly the records whose document holds it."""
    words = ["alpha", "bravo", "delta", "北京", "上海", "广州"]
    col = client.create_collection("walk", configuration=KEYWORD_ON, embedding_function=None)
    model: dict[str, str | None] = {}
    rng = random.Random(7)
    for step in range(120):
        ids = rng.sample([f"r{i}" for i in range(12)], rng.randint(1, 3))
        docs: list[str | None] = [
            " ".join(rng.sample(words, rng.randint(1, 3))) if rng.random() > 0.15 else None
            for _ in ids
        ]
        vectors = np.stack([unit(rng.randrange(DIM)) for _ in ids])
        action = rng.choice(["upsert", "update", "update_text", "delete"])
        present = [i for i in ids if i in model]
        if action == "upsert":
            col.upsert(ids=ids, embeddings=vectors, documents=docs)
            for i, d in zip(ids, docs, strict=True):
                model[i] = d if d is not None or i not in model else model[i]
        elif action in ("update", "update_text") and present:
            new_docs = [docs[ids.index(i)] for i in present]
            if action == "update":
                col.update(ids=present, embeddings=vectors[: len(present)], documents=new_docs)
            else:
                col.update(ids=present, documents=new_docs)
            for i, d in zip(present, new_docs, strict=True):
                if d is not None:
                    model[i] = d
        elif action == "delete" and present:
            col.delete(ids=present)
            for i in present:
                del model[i]
        for word in words:
            expected = {i for i, d in model.items() if d is not None and word in d.split()}
            found = ids_of(col, word, n=20)
            assert set(found) == expected, (step, action, word)


#: A writer killed mid-way by the crash test: large upserts (new rids, old rows deleted)
#: and deletes, each printed before it starts.
CRASH_WRITER = """
import sys
import numpy as np
import haima

client = haima.PersistentClient(sys.argv[1])
col = client.create_collection(
    "crash", configuration={"keyword": {"enabled": True}}, embedding_function=None
)
rng = np.random.default_rng(0)
for step in range(1_000):
    ids = [f"r{i}" for i in range(3_000)]
    docs = [f"北京 step{step} item{i}" for i in range(3_000)]
    print("begin", step, flush=True)
    col.upsert(ids=ids, embeddings=rng.standard_normal((3_000, 4)).astype("float32"), documents=docs)
    col.delete(ids=ids[step % 3 :: 3])
"""


def test_a_killed_writer_leaves_records_and_keyword_index_in_step(tmp_path: Path) -> None:
    """SIGKILL while batches are being written (segmentation threads running, FTS rows
    half inserted): after reopening, the keyword index holds exactly the live records'
    documents, segmented as they are now."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # a few whole batches first, then kill inside the next
            if line.strip() == "begin 3":
                break
    finally:
        proc.kill()
        proc.wait()
    with haima.PersistentClient(tmp_path) as client:
        col = client.get_collection("crash", embedding_function=None)
        live = col.get(include=["documents"])
        assert live["ids"]  # at least the acknowledged batches
        assert len(ids_of(col, "北京", n=10_000)) == len(live["ids"])
    with sqlite3.connect(tmp_path / "haima.sqlite3") as conn:
        table = f"keyword_{col.id}"
        indexed = dict(conn.execute(f"SELECT rowid, terms FROM {table}").fetchall())
        stored = dict(
            conn.execute(
                "SELECT rid, document FROM records WHERE collection_id = ? AND document IS NOT NULL",
                (col.id,),
            ).fetchall()
        )
    assert indexed.keys() == stored.keys()
    rids = sorted(stored)
    expected = text.segment_documents([stored[r] for r in rids])
    assert [indexed[r].split() for r in rids] == [e.split() for e in expected]


# -- configuration -------------------------------------------------------------------------------


def test_keyword_index_is_off_by_default(client: haima.Client) -> None:
    col = client.create_collection("plain", embedding_function=None)
    assert col.configuration["keyword"] == {
        "enabled": False,
        "fusion": "convex",
        "weight": 0.8,
        "rrf_k": 60,
    }
    col.add(ids=["a"], embeddings=unit(0)[None, :], documents=["北京"])
    for mode in ("keyword", "hybrid"):
        kwargs = {"query_embeddings": unit(0)[None, :]} if mode == "hybrid" else {}
        with pytest.raises(haima.InvalidArgumentError) as info:
            col.query(query_texts=["北京"], mode=mode, **kwargs)  # type: ignore[arg-type]
        assert "collection.modify(configuration={'keyword': {'enabled': True}})" in str(info.value)
        assert "haima collections modify plain --keyword" in str(info.value)


def test_enabling_indexes_stored_documents_and_disabling_drops_them(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    col = client.create_collection("later", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=np.stack([unit(0), unit(1)]), documents=["北京", "上海"])
    col.modify(configuration=KEYWORD_ON)
    assert col.configuration["keyword"]["enabled"] is True
    assert ids_of(col, "北京") == ["a"]
    col.modify(configuration={"keyword": {"enabled": False}})
    col.add(ids=["c"], embeddings=unit(2)[None, :], documents=["北京烤鸭"])  # while off
    with pytest.raises(haima.InvalidArgumentError, match="no keyword index"):
        ids_of(col, "北京")
    col.modify(configuration=KEYWORD_ON)
    assert sorted(ids_of(col, "北京")) == ["a", "c"]
    # A client opened afterwards (the same store when persistent) sees the same.
    again = make_client().get_collection("later", embedding_function=None)
    assert sorted(ids_of(again, "北京")) == ["a", "c"]


def test_modify_keeps_unnamed_settings(client: haima.Client) -> None:
    col = library(client)
    col.modify(configuration={"keyword": {"rrf_k": 10}})
    expected = {"enabled": True, "fusion": "convex", "weight": 0.8, "rrf_k": 10}
    assert col.configuration["keyword"] == expected
    col.modify(configuration={"keyword": {"weight": 0.3}})
    expected["weight"] = 0.3
    assert col.configuration["keyword"] == expected
    col.modify(configuration={"index": {"ef_search": 50}})
    assert col.configuration["keyword"] == expected
    assert ids_of(col, "北京") == ["capital"]


@pytest.mark.parametrize("k", [1, 60, 500])
def test_rrf_k_sets_the_fused_distances(client: haima.Client, k: int) -> None:
    col = library(client, keyword={"enabled": True, "fusion": "rrf", "rrf_k": k})
    # "shanghai" is 1st by vector and by keyword; "capital" 2nd on both sides.
    result = col.query(
        query_texts=["上海 天气 北京"],
        query_embeddings=between(4, 1)[None, :],
        n_results=2,
        mode="hybrid",
    )
    assert result["ids"] == [["shanghai", "capital"]]
    # The second record scores 2 / (k + 2) against the first's 2 / (k + 1).
    assert result["distances"] == [
        [pytest.approx(0.0, abs=1e-6), pytest.approx(1 - (k + 1) / (k + 2), abs=1e-6)]
    ]


def test_keyword_index_survives_reopening(make_client: ClientFactory) -> None:
    col = library(make_client())
    col.delete(ids=["dogs"])
    col.update(ids=["capital"], documents=["广州的早茶"])
    reopened = make_client().get_collection("library", embedding_function=None)
    assert ids_of(reopened, "早茶") == ["capital"]
    assert ids_of(reopened, "北京") == []
    assert ids_of(reopened, "dogs") == []
    reopened.add(ids=["more"], embeddings=unit(6)[None, :], documents=["早茶和点心"])
    assert sorted(ids_of(reopened, "早茶")) == ["capital", "more"]


def test_deleting_the_collection_drops_its_keyword_table(tmp_path: Path) -> None:
    with haima.PersistentClient(tmp_path) as client:
        col = library(client)
        library(client, "other")
        table = f"keyword_{col.id}"
        client.delete_collection("library")
        assert ids_of(client.get_collection("other", embedding_function=None), "北京") == [
            "capital"
        ]
    with sqlite3.connect(tmp_path / "haima.sqlite3") as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema")}
        listed = conn.execute("SELECT count(*) FROM keyword_indexes").fetchone()[0]
    assert table not in names
    assert listed == 1


def test_index_built_by_another_segmenter_is_rebuilt(tmp_path: Path) -> None:
    with haima.PersistentClient(tmp_path) as client:
        col = library(client)
        table = f"keyword_{col.id}"
    # As if an older release had built it: another segmenter, other words indexed.
    with sqlite3.connect(tmp_path / "haima.sqlite3") as conn:
        conn.execute("UPDATE keyword_indexes SET segmenter = 'haima-0;rjieba-0'")
        conn.execute(f"DELETE FROM {table}")
        conn.execute(f"INSERT INTO {table} (rowid, terms) VALUES (1, 'stale words')")
    with haima.PersistentClient(tmp_path) as client:
        col = client.get_collection("library", embedding_function=None)
        assert ids_of(col, "北京") == ["capital"]
        assert ids_of(col, "stale") == []
    with sqlite3.connect(tmp_path / "haima.sqlite3") as conn:
        (segmenter,) = conn.execute("SELECT segmenter FROM keyword_indexes").fetchone()
    assert segmenter == text.segmenter_version()


# -- bad input ---------------------------------------------------------------------------------


def test_bad_query_arguments_name_the_field(client: haima.Client) -> None:
    col = library(client)
    vector = unit(0)[None, :]
    cases: list[tuple[dict[str, object], str]] = [
        (
            {"query_texts": ["x"], "mode": "bogus"},
            r"^mode: expected one of 'vector', 'keyword', 'hybrid'",
        ),
        ({"query_embeddings": vector, "mode": "keyword"}, r"^query_texts: mode='keyword'"),
        (
            {"query_texts": ["x"], "query_embeddings": vector, "mode": "keyword"},
            r"^query_embeddings:",
        ),
        ({"query_embeddings": vector, "mode": "hybrid"}, r"^query_texts: mode='hybrid'"),
        (
            {"query_texts": ["x", "y"], "query_embeddings": vector, "mode": "hybrid"},
            r"^query_embeddings: got 1 for 2",
        ),
        ({"query_texts": [], "mode": "keyword"}, r"^query_texts: give at least one"),
        ({"query_texts": [None], "mode": "keyword"}, r"^query_texts\[0\]"),
        ({"query_texts": [3], "mode": "keyword"}, r"^query_texts\[0\]"),
        ({"query_texts": ["x"], "query_embeddings": vector}, r"exactly one of"),
        ({"query_texts": ["x"], "mode": "keyword", "n_results": 0}, r"^n_results"),
    ]
    for kwargs, message in cases:
        with pytest.raises(haima.InvalidArgumentError, match=message):
            col.query(**kwargs)  # type: ignore[arg-type]


def test_hybrid_without_embedding_function_or_embeddings_says_what_to_give(
    client: haima.Client,
) -> None:
    col = library(client)
    with pytest.raises(
        haima.InvalidArgumentError, match=r"^query_embeddings: .*no embedding function"
    ):
        col.query(query_texts=["北京"], mode="hybrid")


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({"keyword": True}, r"configuration\.keyword: expected a dict"),
        (
            {"keyword": {"enabled": "yes"}},
            r"configuration\.keyword\.enabled: expected True or False",
        ),
        ({"keyword": {"enabled": 1}}, r"configuration\.keyword\.enabled"),
        ({"keyword": {"rrf_k": 0}}, r"configuration\.keyword\.rrf_k: expected a positive integer"),
        (
            {"keyword": {"weight": 2}},
            r"configuration\.keyword\.weight: expected a number in \[0, 1\]",
        ),
        ({"keyword": {"weight": "0.5"}}, r"configuration\.keyword\.weight: expected a number"),
        (
            {"keyword": {"fusion": "max"}},
            r"configuration\.keyword\.fusion: expected one of convex, rrf, got 'max'",
        ),
        ({"keyword": {"bm25": 1}}, r"configuration\.keyword: unknown setting 'bm25'"),
    ],
)
def test_bad_keyword_configuration(
    client: haima.Client, configuration: dict[str, object], message: str
) -> None:
    with pytest.raises(haima.InvalidArgumentError, match=message):
        client.create_collection("bad", configuration=configuration, embedding_function=None)
    col = client.create_collection("good", embedding_function=None)
    with pytest.raises(haima.InvalidArgumentError, match=message):
        col.modify(configuration=configuration)


def test_missing_rjieba_names_the_extra(
    client: haima.Client, client_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if client_kind == "http":
        pytest.skip("hides rjieba in this process; a server's segmenter is in its own")
    plain = client.create_collection("plain", embedding_function=None)
    text._cutter.cache_clear()  # as in a process that has not loaded rjieba yet
    text.segmenter_version.cache_clear()
    monkeypatch.setitem(sys.modules, "rjieba", None)  # import rjieba → ImportError
    try:
        with pytest.raises(MissingDependencyError, match=r"pip install 'haima\[rag\]'"):
            client.create_collection("words", configuration=KEYWORD_ON, embedding_function=None)
        with pytest.raises(MissingDependencyError, match="rjieba"):
            plain.modify(configuration=KEYWORD_ON)
        plain.add(ids=["a"], embeddings=unit(0)[None, :], documents=["北京"])  # not needed
        assert plain.query(query_embeddings=unit(0)[None, :])["ids"] == [["a"]]
        assert plain.configuration["keyword"]["enabled"] is False
    finally:
        monkeypatch.undo()
        text._cutter.cache_clear()
        text.segmenter_version.cache_clear()


# -- pure parts ----------------------------------------------------------------------------------


def test_reciprocal_rank_fusion_by_hand() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 4]], k=10, limit=4)
    expected = {1: 1 / 11, 2: 1 / 12, 3: 1 / 13 + 1 / 11, 4: 1 / 12}
    assert [rid for rid, _ in fused] == [3, 1, 2, 4]  # 2 and 4 tie: lower rid first
    for rid, distance in fused:  # 1 − score / (2 / 11), the best possible score
        assert distance == pytest.approx(1 - expected[rid] * 11 / 2)
    assert reciprocal_rank_fusion([[5], []], k=60, limit=0) == []
    assert reciprocal_rank_fusion([[5], [5]], k=60, limit=1) == [(5, pytest.approx(0.0))]
    assert reciprocal_rank_fusion([[5], []], k=60, limit=1) == [(5, pytest.approx(0.5))]


def test_convex_fusion_by_hand() -> None:
    keyword = [(1, -8.0), (2, -4.0), (3, -2.0)]  # negated BM25: 1 best, 3 worst
    vector = [(3, 0.1), (4, 0.3), (1, 0.5)]  # 3 nearest, 1 farthest
    fused = dict(convex_fusion(keyword, vector, weight=0.8, limit=10))
    # normalised: keyword by the best score, 1 → 1, 2 → 0.5, 3 → 0.25;
    # vector min-max, 3 → 1, 4 → 0.5, 1 → 0
    expected_scores = {1: 0.8, 2: 0.4, 3: 0.8 * 0.25 + 0.2, 4: 0.1}
    assert fused == {rid: pytest.approx(1 - s) for rid, s in expected_scores.items()}
    order = [rid for rid, _ in convex_fusion(keyword, vector, weight=0.8, limit=2)]
    assert order == [1, 2]
    # weight 0: the vector ranking alone; weight 1: the keyword ranking alone.
    assert [r for r, _ in convex_fusion(keyword, vector, 0.0, 3)] == [3, 4, 1]
    assert [r for r, _ in convex_fusion(keyword, vector, 1.0, 3)] == [1, 2, 3]
    # A keyword hit with half the best BM25 score (0.8 × 0.5) still beats the record
    # nearest by vector that the keywords missed (0.2 × 1): min-max would have set it to 0.
    assert [r for r, _ in convex_fusion([(1, -4.0), (2, -2.0)], [(5, 0.1), (6, 0.9)], 0.8, 3)] == [
        1,
        2,
        5,
    ]
    # One candidate, or equal distances: each counts as the best of its side.
    assert convex_fusion([(7, -2.0)], [], 0.5, 5) == [(7, pytest.approx(0.5))]
    assert convex_fusion([], [(7, 0.3), (8, 0.3)], 0.5, 5) == [
        (7, pytest.approx(0.5)),
        (8, pytest.approx(0.5)),
    ]
    assert convex_fusion([], [], 0.5, 5) == []


def test_match_expression_quotes_every_term() -> None:
    assert match_expression(['say "hi"', "北京"]) == '"say ""hi""" OR "北京"'
    assert match_expression([]) is None


def test_segmentation_keeps_latin_runs_whole_and_cuts_chinese() -> None:
    (segmented,) = text.segment_documents(["型号XJ-9000-B的café，ＡＰＩ接口"])
    words = segmented.split()
    assert "XJ-9000-B" in words and "型号" in words and "接口" in words
    assert "café" in segmented  # not split into "caf" "é" as jieba would
    assert "API" in segmented and "ＡＰＩ" not in segmented  # full-width letters as ASCII
    many = ["北京\n上海", "", "plain english", "天气"] * 300  # big enough for two threads
    one_by_one = [text.segment_documents([d])[0].split() for d in many]
    assert [s.split() for s in text.segment_documents(many)] == one_by_one


def test_query_terms_drop_stopwords_unless_nothing_else_is_left() -> None:
    assert text.query_terms("北京的天气是什么") == ["北京", "天气"]
    assert text.query_terms("的") == ["的"]
    assert text.query_terms("what is the XJ-9000-B?") == ["XJ-9000-B?"]
    assert text.query_terms("，。!?") == []
