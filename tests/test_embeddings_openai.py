"""The OpenAI-compatible provider against a real local HTTP server (tests/fake_openai.py):
batching, ordering, base64, retries, timeouts and errors. Nothing is patched."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from haima.embeddings import (
    EmbeddingProviderError,
    OpenAIEmbeddingFunction,
    embed_documents,
    embed_queries,
    from_spec,
    spec_of,
)
from haima.errors import EmbeddingFunctionError, InvalidArgumentError

try:
    from fake_openai import DEFAULT_DIM, FakeOpenAIServer, fake_embedding, fake_openai
except ImportError:  # tests/ imported as a package
    from tests.fake_openai import (  # type: ignore[no-redef]
        DEFAULT_DIM,
        FakeOpenAIServer,
        fake_embedding,
        fake_openai,
    )

__all__ = ["fake_openai"]  # the fixture, re-exported for pytest


def expected(texts: list[str], dim: int = DEFAULT_DIM) -> np.ndarray:
    return np.stack([fake_embedding(t, dim) for t in texts])


def make(server: FakeOpenAIServer, **options: object) -> OpenAIEmbeddingFunction:
    options.setdefault("backoff", 0.01)
    options.setdefault("max_backoff", 0.05)
    return OpenAIEmbeddingFunction("fake-embed", base_url=server.base_url, **options)


TEXTS = [f"text number {i}" for i in range(23)]


def test_embeds_in_input_order_as_float32(fake_openai: FakeOpenAIServer) -> None:
    fn = make(fake_openai)
    vectors = fn(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), DEFAULT_DIM)
    np.testing.assert_allclose(vectors, expected(TEXTS), rtol=1e-6)
    assert fn.dim == DEFAULT_DIM
    (request,) = fake_openai.embedding_requests()
    assert request.body["model"] == "fake-embed"
    assert request.body["input"] == TEXTS


def test_batches_stay_under_the_input_limit(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.max_inputs = 5  # the server refuses bigger requests
    fn = make(fake_openai, max_batch_size=5, max_concurrency=1)
    vectors = fn(TEXTS)
    sizes = [len(r.body["input"]) for r in fake_openai.embedding_requests()]
    assert sizes == [5, 5, 5, 5, 3]
    np.testing.assert_allclose(vectors, expected(TEXTS), rtol=1e-6)


def test_too_big_a_batch_is_an_error_naming_the_provider(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.max_inputs = 5
    fn = make(fake_openai, max_batch_size=10)
    with pytest.raises(EmbeddingProviderError) as info:
        fn(TEXTS)
    message = str(info.value)
    assert fake_openai.base_url in message and "'fake-embed'" in message
    assert "HTTP 400" in message and "over the limit of 5" in message
    assert info.value.status == 400
    assert len(fake_openai.embedding_requests()) >= 1


def test_batches_also_respect_a_character_budget(fake_openai: FakeOpenAIServer) -> None:
    texts = ["x" * 40] * 6 + ["y" * 500]
    fn = make(fake_openai, max_batch_chars=100, max_concurrency=1)
    fn(texts)
    sizes = [len(r.body["input"]) for r in fake_openai.embedding_requests()]
    assert sizes == [2, 2, 2, 1]


def test_rows_follow_index_whatever_the_server_order(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.shuffle = True
    fn = make(fake_openai, max_batch_size=4, max_concurrency=4)
    texts = [f"sentence {i}" for i in range(60)]
    np.testing.assert_allclose(fn(texts), expected(texts), rtol=1e-6)
    assert len(fake_openai.embedding_requests()) == 15


def test_asks_for_base64_and_accepts_floats_too(fake_openai: FakeOpenAIServer) -> None:
    fn = make(fake_openai)
    np.testing.assert_allclose(fn(TEXTS[:3]), expected(TEXTS[:3]), rtol=1e-6)
    assert fake_openai.embedding_requests()[-1].body["encoding_format"] == "base64"
    fake_openai.ignore_format = True  # answers floats although base64 was asked
    np.testing.assert_allclose(fn(TEXTS[3:6]), expected(TEXTS[3:6]), rtol=1e-6)
    floats = make(fake_openai, encoding_format="float")
    np.testing.assert_allclose(floats(TEXTS[:2]), expected(TEXTS[:2]), rtol=1e-6)
    assert fake_openai.embedding_requests()[-1].body["encoding_format"] == "float"


def test_a_server_that_refuses_base64_is_asked_for_floats(
    fake_openai: FakeOpenAIServer,
) -> None:
    fake_openai.base64 = False
    fn = make(fake_openai)
    np.testing.assert_allclose(fn(TEXTS[:4]), expected(TEXTS[:4]), rtol=1e-6)
    formats = [r.body["encoding_format"] for r in fake_openai.embedding_requests()]
    assert formats == ["base64", "float"]
    fn(TEXTS[4:6])  # remembered: straight to floats
    assert fake_openai.embedding_requests()[-1].body["encoding_format"] == "float"


def test_retries_after_429_honouring_retry_after(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.fail_next(429, retry_after=0.3)
    fn = make(fake_openai)
    started = time.monotonic()
    np.testing.assert_allclose(fn(TEXTS[:3]), expected(TEXTS[:3]), rtol=1e-6)
    assert time.monotonic() - started >= 0.3
    assert len(fake_openai.embedding_requests()) == 2


def test_retries_after_500_with_backoff(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.fail_next(500)
    fake_openai.fail_next(503)
    fn = make(fake_openai)
    np.testing.assert_allclose(fn(TEXTS[:3]), expected(TEXTS[:3]), rtol=1e-6)
    assert len(fake_openai.embedding_requests()) == 3
    assert fn.requests == 3


def test_gives_up_after_max_retries_saying_what_the_server_answered(
    fake_openai: FakeOpenAIServer,
) -> None:
    fake_openai.fail_next(500, times=3, body={"error": {"message": "model overloaded"}})
    fn = make(fake_openai, max_retries=2)
    with pytest.raises(EmbeddingProviderError) as info:
        fn(TEXTS[:2])
    message = str(info.value)
    assert "HTTP 500: model overloaded" in message and "after 3 attempts" in message
    assert fake_openai.base_url in message and "fake-embed" in message
    assert info.value.status == 500 and info.value.status_code == 502
    assert len(fake_openai.embedding_requests()) == 3


def test_a_slow_answer_times_out(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.delay_next(2.0)
    fn = make(fake_openai, timeout=0.3, max_retries=0)
    started = time.monotonic()
    with pytest.raises(EmbeddingProviderError, match=r"timed out after 0\.3 s"):
        fn(TEXTS[:2])
    assert time.monotonic() - started < 1.5


def test_a_timeout_is_retried(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.delay_next(1.0)
    fn = make(fake_openai, timeout=0.3, max_retries=2)
    np.testing.assert_allclose(fn(TEXTS[:2]), expected(TEXTS[:2]), rtol=1e-6)
    assert len(fake_openai.embedding_requests()) == 2


def test_a_wrong_key_is_a_clear_401(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.api_key = "sk-right"
    with pytest.raises(EmbeddingProviderError) as info:
        make(fake_openai, api_key="sk-wrong")(["hello"])
    assert info.value.status == 401
    assert "HTTP 401: Incorrect API key provided." in str(info.value)
    assert "check the api_key" in str(info.value)
    assert "sk-wrong" not in str(info.value)
    assert len(fake_openai.embedding_requests()) == 1  # 401 is not retried
    with pytest.raises(EmbeddingProviderError, match="no API key was sent"):
        make(fake_openai)(["hello"])


def test_key_from_an_env_var_never_lands_in_the_spec(
    fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_openai.api_key = "sk-secret-123"
    monkeypatch.setenv("HAIMA_TEST_EMBED_KEY", "sk-secret-123")
    fn = make(fake_openai, api_key_env="HAIMA_TEST_EMBED_KEY")
    np.testing.assert_allclose(fn(["hi"]), expected(["hi"]), rtol=1e-6)
    spec = spec_of(fn)
    assert spec is not None and spec["api_key_env"] == "HAIMA_TEST_EMBED_KEY"
    assert "sk-secret" not in json.dumps(spec)
    assert "sk-secret" not in repr(fn)
    rebuilt = from_spec(spec)
    np.testing.assert_allclose(rebuilt(["hi"]), expected(["hi"]), rtol=1e-6)
    literal = make(fake_openai, api_key="sk-secret-123")
    assert "sk-secret" not in json.dumps(spec_of(literal)) + repr(literal)
    monkeypatch.delenv("HAIMA_TEST_EMBED_KEY")
    with pytest.raises(EmbeddingFunctionError, match="HAIMA_TEST_EMBED_KEY"):
        rebuilt(["hi"])


def test_dimensions_are_requested_and_checked(fake_openai: FakeOpenAIServer) -> None:
    fn = make(fake_openai, dimensions=8)
    assert fn.dim == 8 and fn.name == "fake-embed@8"
    np.testing.assert_allclose(fn(["a", "b"]), expected(["a", "b"], 8), rtol=1e-6)
    assert fake_openai.embedding_requests()[-1].body["dimensions"] == 8
    fake_openai.support_dimensions = False
    with pytest.raises(EmbeddingProviderError, match="asked for dimensions=8"):
        fn(["c"])


def test_dim_is_learned_with_one_small_request(fake_openai: FakeOpenAIServer) -> None:
    fn = make(fake_openai)
    assert fn.dim == DEFAULT_DIM
    assert len(fake_openai.embedding_requests()) == 1
    fn(["x"])
    assert fn.dim == DEFAULT_DIM and len(fake_openai.embedding_requests()) == 2


def test_query_and_document_prefixes(fake_openai: FakeOpenAIServer) -> None:
    fn = make(fake_openai, document_prefix="passage: ", query_prefix="query: ")
    np.testing.assert_allclose(embed_documents(fn, ["a"]), expected(["passage: a"]), rtol=1e-6)
    np.testing.assert_allclose(embed_queries(fn, ["a"]), expected(["query: a"]), rtol=1e-6)
    assert from_spec(fn.spec()).spec() == fn.spec()


def test_unreachable_server(fake_openai: FakeOpenAIServer) -> None:
    url = fake_openai.base_url
    fake_openai.stop()
    fn = OpenAIEmbeddingFunction("fake-embed", base_url=url, max_retries=1, backoff=0.01)
    with pytest.raises(EmbeddingProviderError, match="could not be reached") as info:
        fn(["a"])
    assert url in str(info.value) and info.value.status is None


def test_spec_and_options(fake_openai: FakeOpenAIServer) -> None:
    fn = make(fake_openai, max_batch_size=7)
    spec = spec_of(fn)
    assert spec == {
        "provider": "openai",
        "model": "fake-embed",
        "base_url": fake_openai.base_url,
        "max_batch_size": 7,
    }
    assert json.loads(json.dumps(spec)) == spec
    assert from_spec(spec).spec() == spec
    openai = OpenAIEmbeddingFunction("text-embedding-3-small")
    assert openai.spec()["api_key_env"] == "OPENAI_API_KEY"
    dashscope = OpenAIEmbeddingFunction(
        "text-embedding-v4", base_url="https://dashscope.aliyuncs.com/compatible-mode/v1/"
    )
    assert dashscope.batch_size == 10 and dashscope.api_key_env == "DASHSCOPE_API_KEY"
    assert dashscope.base_url == "https://dashscope.aliyuncs.com/compatible-mode/v1"
    with pytest.raises(InvalidArgumentError):
        OpenAIEmbeddingFunction("m", api_key="a", api_key_env="B")
    with pytest.raises(InvalidArgumentError):
        OpenAIEmbeddingFunction("m", base_url="localhost:8000")
    with pytest.raises(InvalidArgumentError):
        OpenAIEmbeddingFunction("m", max_batch_size=0)
    with pytest.raises(InvalidArgumentError, match="unknown option"):
        from_spec({"provider": "openai", "model": "m", "api_key": "sk-x"})


def test_bad_input_names_the_item(fake_openai: FakeOpenAIServer) -> None:
    fn = make(fake_openai)
    with pytest.raises(InvalidArgumentError, match=r"texts\[1\] is empty"):
        fn(["ok", ""])
    assert fake_openai.embedding_requests() == []
    assert fn([]).shape == (0, 0)


def test_a_failing_batch_fails_fast_with_requests_in_flight(
    fake_openai: FakeOpenAIServer,
) -> None:
    fake_openai.fail_next(400, body={"error": {"message": "bad batch"}})
    fake_openai.delay_next(0.0)
    fake_openai.delay_next(1.5, times=3)
    fn = make(fake_openai, max_batch_size=2, max_concurrency=4)
    started = time.monotonic()
    with pytest.raises(EmbeddingProviderError, match="bad batch"):
        fn(TEXTS[:8])
    assert time.monotonic() - started < 1.2
