"""Collections with the default embedding function, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

import haima

DOCS = {
    "weather-zh": "今天北京下了一场大雨，气温明显下降。",
    "train-zh": "从上海到杭州的高铁大约需要一个小时。",
    "cook-zh": "番茄炒鸡蛋是一道简单的家常菜。",
    "weather-en": "Heavy rain fell over London today and the temperature dropped.",
    "train-en": "The express train from Paris to Lyon takes about two hours.",
    "cook-en": "Scrambled eggs with tomatoes is a quick everyday dish.",
}
QUESTIONS = [
    ("北京今天的天气怎么样？下雨了吗？", "weather-zh"),
    ("坐高铁去杭州要多久？", "train-zh"),
    ("Did it rain in London today?", "weather-en"),
    ("How long is the train ride from Paris to Lyon?", "train-en"),
]


def test_default_function_finds_paraphrases_in_both_languages(tmp_path: Path) -> None:
    with haima.PersistentClient(tmp_path / "store") as client:
        col = client.create_collection("texts")
        col.add(ids=list(DOCS), documents=list(DOCS.values()))
        assert col.dimension == 512
        found = col.query(query_texts=[q for q, _ in QUESTIONS], n_results=1)
        assert [ids[0] for ids in found["ids"]] == [want for _, want in QUESTIONS]
    # Another client rebuilds the function from the stored spec.
    with haima.PersistentClient(tmp_path / "store") as client:
        col = client.get_collection("texts")
        assert col.embedding_function is not None
        found = col.query(query_texts=["番茄炒蛋怎么做"], n_results=1)
        assert found["ids"] == [["cook-zh"]]


def test_another_model_is_refused(tmp_path: Path) -> None:
    with haima.PersistentClient(tmp_path / "store") as client:
        client.create_collection("texts")
        other = haima.embeddings.USEEmbeddingFunction(denoise=True)
        spec = haima.embeddings.spec_of(other)
        if spec == haima.embeddings.spec_of(haima.embeddings.default_embedding_function()):
            pytest.skip("the provider exposes no option that changes its vectors")
        with pytest.raises(haima.InvalidArgumentError, match="not comparable"):
            client.get_collection("texts", embedding_function=other)
        forced = client.get_collection("texts", embedding_function=other, force=True)
        assert forced.embedding_function is other


def test_empty_document_is_named(tmp_path: Path) -> None:
    with haima.PersistentClient(tmp_path / "store") as client:
        col = client.create_collection("texts")
        with pytest.raises(haima.InvalidArgumentError, match=r"documents\[1\]"):
            col.add(ids=["a", "b"], documents=["fine", ""])
        assert col.count() == 0
