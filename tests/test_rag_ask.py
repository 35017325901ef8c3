"""`ask`, `ChatModel` and `ChatMemory` against a real local OpenAI-compatible server
(tests/fake_openai.py): the prompt, streaming, citations, configuration and errors."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pytest

import haima
from haima.errors import InvalidArgumentError
from haima.rag import (
    ChatMemory,
    ChatModel,
    LLMError,
    LLMNotConfiguredError,
    ask,
    build_messages,
    cited,
    retrieve,
)
from haima.rag.ask import NO_SOURCES

try:
    from fake_openai import FakeOpenAIServer, FakeRequest, FakeResponse, fake_openai
except ImportError:  # tests/ imported as a package
    from tests.fake_openai import (  # type: ignore[no-redef]
        FakeOpenAIServer,
        FakeRequest,
        FakeResponse,
        fake_openai,
    )

__all__ = ["fake_openai"]

ENV = ("HAIMA_LLM_BASE_URL", "HAIMA_LLM_MODEL", "HAIMA_LLM_API_KEY")


class HashEmbedding:
    """Deterministic: equal texts give equal vectors. Counts the texts it embeds."""

    def __init__(self) -> None:
        self.texts = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        out = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            out.append(np.random.default_rng(seed).standard_normal(8))
        return np.asarray(out, dtype=np.float32)


DOCS = {
    "guide.md#0": (
        "Haima installs with pip install haima.",
        {"source": "guide.md", "headings": "Install"},
    ),
    "guide.md#1": ("The default metric is cosine.", {"source": "guide.md", "headings": "Metrics"}),
    "faq.pdf#0": ("海马支持中文检索。", {"source": "faq.pdf", "page": 2}),
}


@pytest.fixture(autouse=True)
def no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def docs() -> haima.Collection:
    collection = haima.Client().create_collection("docs", embedding_function=HashEmbedding())
    collection.add(
        ids=list(DOCS),
        documents=[d for d, _ in DOCS.values()],
        metadatas=[m for _, m in DOCS.values()],
    )
    return collection


def llm(server: FakeOpenAIServer, **options: Any) -> ChatModel:
    return ChatModel(base_url=server.base_url, model="fake-chat", **options)


def test_prompt_holds_numbered_sources_and_the_answer_streams_in_order(
    docs: haima.Collection, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.chat_reply = "Use pip [1]. It is cosine by default [2][1]. 支持中文【3】。"
    pieces: list[str] = []
    answer = ask("How do I install it?", docs, llm(fake_openai), k=3, stream=pieces.append)

    (request,) = fake_openai.chat_requests()
    assert request.body["model"] == "fake-chat" and request.body["stream"] is True
    system, user = request.body["messages"]
    assert system["role"] == "system" and "[1]" in system["content"]
    assert user["content"].endswith("Question: How do I install it?")
    for source in answer.retrieved:  # every retrieved chunk, under its number
        assert f"[{source.number}] {source.label()}\n{source.document}" in user["content"]
    assert sorted(s.id for s in answer.retrieved) == sorted(DOCS)

    assert len(pieces) > 5 and "".join(pieces) == fake_openai.chat_reply == answer.text
    numbered = {s.number: s for s in answer.retrieved}
    assert [s.number for s in answer.sources] == [1, 2, 3]
    for source in answer.sources:  # citations map to real chunks
        assert source is numbered[source.number]
        assert (source.document, source.metadata) == DOCS[source.id]
    assert answer.model == "fake-chat"


def test_without_stream_the_request_is_not_streamed(
    docs: haima.Collection, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.chat_reply = "Only [2]."
    answer = ask("metric?", docs, llm(fake_openai, temperature=0.1, max_tokens=50), k=2)
    (request,) = fake_openai.chat_requests()
    assert request.body["stream"] is False
    assert (request.body["temperature"], request.body["max_tokens"]) == (0.1, 50)
    assert answer.text == "Only [2]." and [s.number for s in answer.sources] == [2]
    assert answer.to_dict()["sources"][0]["id"] == answer.retrieved[1].id


def test_stream_true_prints_to_stdout(
    docs: haima.Collection, fake_openai: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_openai.chat_reply = "printed as it comes [1]"
    ask("q", docs, llm(fake_openai), stream=True)
    assert capsys.readouterr().out == "printed as it comes [1]"


def test_a_server_that_ignores_stream_still_answers(
    docs: haima.Collection, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.chat_ignore_stream = True
    fake_openai.chat_reply = "whole [1]"
    pieces: list[str] = []
    assert ask("q", docs, llm(fake_openai), stream=pieces.append).text == "whole [1]"
    assert pieces == ["whole [1]"]


def test_where_and_k_limit_the_sources(
    docs: haima.Collection, fake_openai: FakeOpenAIServer
) -> None:
    answer = ask("q", docs, llm(fake_openai), k=5, where={"source": "faq.pdf"})
    assert [s.id for s in answer.retrieved] == ["faq.pdf#0"]
    assert answer.retrieved[0].label() == "faq.pdf, page 2"
    content = fake_openai.chat_requests()[0].body["messages"][1]["content"]
    assert "guide.md" not in content and "海马支持中文检索。" in content


def test_nothing_retrieved_means_no_model_call(fake_openai: FakeOpenAIServer) -> None:
    empty = haima.Client().create_collection("empty", embedding_function=HashEmbedding())
    pieces: list[str] = []
    answer = ask("q", empty, llm(fake_openai), stream=pieces.append)
    assert answer.text == NO_SOURCES and answer.sources == [] and pieces == [NO_SOURCES]
    assert fake_openai.chat_requests() == []


def test_citation_parsing() -> None:
    sources = retrieve_fake(4)
    assert [s.number for s in cited("a [3] b [1, 2] c [3] d [9] e 【4】 f [0]", sources)] == [
        3,
        1,
        2,
        4,
    ]
    assert cited("no citations here", sources) == []
    assert [s.number for s in cited("见[2，4]和[ 1 ]", sources)] == [2, 4, 1]


def retrieve_fake(n: int) -> list[Any]:
    from haima.rag import Source

    return [Source(i, f"id{i}", f"doc {i}", {"source": f"s{i}"}) for i in range(1, n + 1)]


def test_build_messages_custom_system_prompt() -> None:
    messages = build_messages(" Why? ", retrieve_fake(1), system_prompt="Be brief.")
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[1]["content"] == "Sources:\n\n[1] s1\ndoc 1\n\nQuestion: Why?"


# -- configuration -----------------------------------------------------------------------


def test_no_llm_configured_is_a_clear_error_before_retrieval() -> None:
    fn = HashEmbedding()
    docs = haima.Client().create_collection("docs", embedding_function=fn)
    docs.add(ids=["a"], documents=["x"])
    before = fn.texts
    with pytest.raises(LLMNotConfiguredError) as info:
        ask("q", docs)
    message = str(info.value)
    assert "base_url and model missing" in message
    assert "HAIMA_LLM_BASE_URL" in message and "HAIMA_LLM_MODEL" in message
    assert "haima search" in message and "collection.query" in message
    assert fn.texts == before  # the question was never embedded
    with pytest.raises(LLMNotConfiguredError, match="model missing"):
        ChatModel(base_url="http://127.0.0.1:1/v1")


def test_configuration_from_the_environment(
    docs: haima.Collection, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_openai.api_key = "sk-env"
    monkeypatch.setenv("HAIMA_LLM_BASE_URL", fake_openai.base_url + "/")
    monkeypatch.setenv("HAIMA_LLM_MODEL", "env-model")
    monkeypatch.setenv("HAIMA_LLM_API_KEY", "sk-env")
    answer = ask("q", docs, k=1)
    (request,) = fake_openai.chat_requests()
    assert request.headers["authorization"] == "Bearer sk-env"
    assert request.body["model"] == "env-model" and answer.model == "env-model"
    assert "sk-env" not in repr(ChatModel())


def test_api_key_env_names_a_variable(
    fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_openai.api_key = "sk-named"
    monkeypatch.setenv("MY_PROVIDER_KEY", "sk-named")
    model = llm(fake_openai, api_key_env="MY_PROVIDER_KEY")
    assert model.chat([{"role": "user", "content": "hi"}]) == fake_openai.chat_reply
    with pytest.raises(LLMNotConfiguredError, match="NOT_SET_ANYWHERE"):
        llm(fake_openai, api_key_env="NOT_SET_ANYWHERE")


def test_a_full_endpoint_url_is_accepted(fake_openai: FakeOpenAIServer) -> None:
    model = ChatModel(base_url=fake_openai.base_url + "/chat/completions", model="m")
    assert model.url == fake_openai.base_url + "/chat/completions"
    assert model.chat([{"role": "user", "content": "hi"}]) == fake_openai.chat_reply


# -- provider errors ---------------------------------------------------------------------


def test_401_names_the_provider_and_the_key(
    docs: haima.Collection, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.api_key = "sk-right"
    with pytest.raises(LLMError) as info:
        ask("q", docs, llm(fake_openai, api_key="sk-wrong"), stream=lambda _: None)
    message = str(info.value)
    assert f"{fake_openai.base_url}/chat/completions" in message
    assert "HTTP 401" in message and "Incorrect API key provided." in message
    assert "HAIMA_LLM_API_KEY" in message
    assert info.value.status == 401 and info.value.url.startswith(fake_openai.url)


def test_500_surfaces_the_providers_message(
    docs: haima.Collection, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.fail_next(500, body={"error": {"message": "model overloaded, try later"}})
    with pytest.raises(LLMError, match=r"answered HTTP 500: model overloaded, try later") as info:
        ask("q", docs, llm(fake_openai))
    assert info.value.status == 500


def test_an_error_inside_the_stream(docs: haima.Collection, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.chat_stream_error = "context length exceeded"
    pieces: list[str] = []
    with pytest.raises(LLMError, match="answered an error: context length exceeded"):
        ask("q", docs, llm(fake_openai), stream=pieces.append)
    assert pieces  # what arrived before the error was passed on


def test_an_unreachable_provider(docs: haima.Collection) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = ChatModel(base_url=f"http://127.0.0.1:{port}/v1", model="m")
    with pytest.raises(
        LLMError, match=f"could not reach the chat model at http://127.0.0.1:{port}/v1"
    ):
        ask("q", docs, model)


def test_a_slow_provider_times_out(docs: haima.Collection, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.delay_next(2.0)
    with pytest.raises(LLMError, match=r"did not answer within 0\.3s"):
        ask("q", docs, llm(fake_openai, timeout=0.3))


def test_an_answer_without_choices(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.route("POST", "/v1/chat/completions", lambda s, r: FakeResponse(200, "plain"))
    with pytest.raises(LLMError, match="without choices"):
        llm(fake_openai).chat([{"role": "user", "content": "hi"}])


# -- retrieval modes ---------------------------------------------------------------------


class RecordingCollection:
    """Stands in for a Collection to see exactly what `query` receives."""

    def __init__(self, accepts_mode: bool) -> None:
        self.accepts_mode = accepts_mode
        self.calls: list[dict[str, Any]] = []

    def query(self, **kwargs: Any) -> dict[str, Any]:
        if "mode" in kwargs and not self.accepts_mode:
            raise TypeError("Collection.query() got an unexpected keyword argument 'mode'")
        self.calls.append(kwargs)
        return {"ids": [["x"]], "documents": [["doc"]], "metadatas": [[{}]], "distances": [[0.5]]}


def test_mode_is_passed_only_when_not_vector() -> None:
    stub = RecordingCollection(accepts_mode=True)
    coll = cast(haima.Collection, stub)
    retrieve(coll, "q", 3)
    retrieve(coll, "q", 3, mode="hybrid")
    retrieve(coll, "q", 3, mode="keyword", where={"a": 1})
    assert ["mode" in c for c in stub.calls] == [False, True, True]
    assert [c.get("mode") for c in stub.calls[1:]] == ["hybrid", "keyword"]
    assert stub.calls[2]["where"] == {"a": 1} and stub.calls[2]["query_texts"] == ["q"]
    with pytest.raises(InvalidArgumentError, match="mode: expected one of vector, keyword, hybrid"):
        retrieve(coll, "q", mode="bm25")


def test_hybrid_on_a_core_without_it_is_a_clear_error() -> None:
    coll = cast(haima.Collection, RecordingCollection(accepts_mode=False))
    assert retrieve(coll, "q")[0].distance == 0.5
    with pytest.raises(InvalidArgumentError, match=r"mode='hybrid'.*no keyword search"):
        retrieve(coll, "q", mode="hybrid")


# -- chat memory -------------------------------------------------------------------------


def test_chat_memory_recalls_turns_of_one_session() -> None:
    store = haima.Client().create_collection("chat", embedding_function=HashEmbedding())
    memory = ChatMemory(store, session="alice")
    memory.add("user", "我下周去杭州出差")
    memory.add("assistant", "需要订酒店吗？")
    memory.add("user", "要，靠近西湖")
    memory.add("user", "我下周去杭州出差", session="bob")  # the same words, another session

    found = memory.relevant("我下周去杭州出差", k=10)
    assert len(found) == 3 and {t.session for t in found} == {"alice"}
    assert found[0].text == "我下周去杭州出差" and found[0].distance == pytest.approx(0.0, abs=1e-5)
    assert found[0].role == "user"
    assert [t.text for t in memory.relevant("x", k=10, session="bob")] == ["我下周去杭州出差"]
    assert len(memory.relevant("x", k=10, all_sessions=True)) == 4
    assert [t.text for t in memory.relevant("x", k=10, where={"role": "assistant"})] == [
        "需要订酒店吗？"
    ]

    assert [t.text for t in memory.recent(2)] == ["需要订酒店吗？", "要，靠近西湖"]
    memory.clear()
    assert memory.recent() == [] and len(memory.relevant("x", all_sessions=True)) == 1
    with pytest.raises(InvalidArgumentError, match="role"):
        memory.add("", "text")
    with pytest.raises(InvalidArgumentError, match="session"):
        ChatMemory(store, session="")


def test_fake_server_records_chat_requests(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.chat_reply = lambda request: f"echo {request.body['messages'][-1]['content']}"
    assert llm(fake_openai).chat([{"role": "user", "content": "hi"}], stream=True) == "echo hi"
    assert isinstance(fake_openai.chat_requests()[0], FakeRequest)


def test_keyword_and_hybrid_retrieval_through_the_core(fake_openai: FakeOpenAIServer) -> None:
    """With the core's keyword index, `mode` reaches `Collection.query` and finds the exact
    token that hash vectors alone would rank at random."""
    store = haima.Client().create_collection(
        "manuals", configuration={"keyword": {"enabled": True}}, embedding_function=HashEmbedding()
    )
    store.add(
        ids=["robot", "weather", "other"],
        documents=["型号XJ-9000-B的机器人", "今天北京下大雨", "Something else entirely"],
        metadatas=[{"source": "robot.md"}, {"source": "weather.md"}, {"source": "x.md"}],
    )
    assert [s.id for s in retrieve(store, "XJ-9000-B", 3, mode="keyword")] == ["robot"]
    answer = ask("北京天气？", store, llm(fake_openai), k=1, mode="keyword")
    assert [s.id for s in answer.retrieved] == ["weather"]
    hybrid = retrieve(store, "XJ-9000-B", 3, mode="hybrid")
    assert hybrid[0].id == "robot" and len(hybrid) == 3

    memory = ChatMemory(
        haima.Client().create_collection(
            "chat", configuration={"keyword": {"enabled": True}}, embedding_function=HashEmbedding()
        )
    )
    memory.add("user", "我的订单号是 A-1234")
    memory.add("user", "今天很热")
    assert [t.text for t in memory.relevant("A-1234", k=2, mode="keyword")] == [
        "我的订单号是 A-1234"
    ]
