"""The OpenAI-compatible embeddings endpoint, driven by the official `openai` client and by
LangChain's `OpenAIEmbeddings`, against a real `haima run`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

openai = pytest.importorskip("openai")

from haima.embeddings import default_embedding_function  # noqa: E402
from tests.helpers.server import ServerProcess  # noqa: E402

TEXTS = ["今天天气很好", "The weather is lovely today", "股票市场大跌", "a recipe for dumplings"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("openai") / "store") as process:
        yield process


@pytest.fixture(scope="module")
def expected() -> np.ndarray:
    """The same model run in this process."""
    return default_embedding_function(progress=False)(TEXTS)


def _client(server: ServerProcess) -> object:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_models_are_listed(server: ServerProcess) -> None:
    names = [m.id for m in _client(server).models.list().data]  # type: ignore[attr-defined]
    assert "universal-sentence-encoder-multilingual-3" in names


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_list_input_in_order(server: ServerProcess, expected: np.ndarray, encoding: str) -> None:
    response = _client(server).embeddings.create(  # type: ignore[attr-defined]
        model="default", input=TEXTS, encoding_format=encoding
    )
    assert [d.index for d in response.data] == list(range(len(TEXTS)))
    if encoding == "float":
        got = np.array([d.embedding for d in response.data], dtype=np.float32)
    else:
        # The client hands base64 back undecoded when it was asked for explicitly.
        import base64

        got = np.array(
            [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in response.data]
        )
    assert got.shape == expected.shape
    assert np.allclose(got, expected, atol=1e-5)
    assert response.model == "universal-sentence-encoder-multilingual-3"
    assert response.usage.prompt_tokens > 0


def test_single_string_and_default_encoding(server: ServerProcess, expected: np.ndarray) -> None:
    # Without encoding_format the client asks for base64 and decodes it itself.
    response = _client(server).embeddings.create(  # type: ignore[attr-defined]
        model="universal-sentence-encoder-multilingual-3", input=TEXTS[2]
    )
    assert len(response.data) == 1
    assert np.allclose(np.array(response.data[0].embedding), expected[2], atol=1e-5)


def test_errors_in_openai_shape(server: ServerProcess) -> None:
    client = _client(server)
    with pytest.raises(openai.NotFoundError, match="not served"):
        client.embeddings.create(model="text-embedding-3-large", input="x")  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model="default", input="x", dimensions=64)  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError, match=r"input\[1\]"):
        client.embeddings.create(model="default", input=["ok", ""])  # type: ignore[attr-defined]
    raw = httpx.post(f"{server.url}/v1/embeddings", json={"model": "default", "input": [[1, 2]]})
    assert raw.status_code == 400
    assert "token arrays" in raw.json()["error"]["message"]


def test_langchain_openai_embeddings(server: ServerProcess, expected: np.ndarray) -> None:
    lc_openai = pytest.importorskip("langchain_openai")
    embeddings = lc_openai.OpenAIEmbeddings(
        model="default",
        base_url=f"{server.url}/v1",
        api_key="unused",
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    vectors = np.array(embeddings.embed_documents(TEXTS), dtype=np.float32)
    assert np.allclose(vectors, expected, atol=1e-5)
    query = np.array(embeddings.embed_query(TEXTS[1]), dtype=np.float32)
    assert np.allclose(query, expected[1], atol=1e-5)
