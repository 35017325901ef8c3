"""The default function (USE multilingual v3): one shared model, parallel chunks that
give the same vectors as a serial run, options that change vectors are in the spec."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from haima.embeddings import USEEmbeddingFunction, default_embedding_function, spec_of
from haima.embeddings import default as default_module
from haima.errors import InvalidArgumentError

TEXTS = [
    f"第{i}句：今天的会议讨论了预算。" if i % 2 else f"Sentence {i} about budgets."
    for i in range(70)
]


def test_the_model_is_loaded_once_per_process() -> None:
    first = default_embedding_function().load()
    second = default_embedding_function()
    second(["x"])
    assert first is not second  # instances are cheap ...
    assert default_module._model is default_module._shared_model()  # ... the model is shared


def test_parallel_chunks_give_the_serial_vectors() -> None:
    serial = USEEmbeddingFunction(threads=1)(TEXTS)
    parallel = USEEmbeddingFunction(threads=2, chunk_size=8)(TEXTS)
    np.testing.assert_allclose(parallel, serial, atol=1e-5)
    assert parallel.shape == (len(TEXTS), 512) and parallel.dtype == np.float32


def test_concurrent_callers_get_their_own_answers() -> None:
    fn = USEEmbeddingFunction(threads=2, chunk_size=4)
    expected = fn(TEXTS)
    results: dict[int, np.ndarray] = {}

    def run(k: int) -> None:
        results[k] = fn(TEXTS[k:] + TEXTS[:k])

    workers = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for k, vectors in results.items():
        np.testing.assert_allclose(vectors, np.roll(expected, -k, axis=0), atol=1e-5)


def test_denoise_is_an_option_that_changes_the_model_id() -> None:
    plain = USEEmbeddingFunction()
    denoised = USEEmbeddingFunction(denoise=True)
    a, b = "The project cost 1 million dollars.", "The project cost 5 million dollars."
    assert float(denoised([a])[0] @ denoised([b])[0]) > float(plain([a])[0] @ plain([b])[0])
    assert spec_of(denoised) == {**(spec_of(plain) or {}), "denoise": True}
    assert denoised.name != plain.name


def test_bad_options() -> None:
    with pytest.raises(InvalidArgumentError, match="threads"):
        USEEmbeddingFunction(threads=0)
    with pytest.raises(InvalidArgumentError, match="chunk_size"):
        USEEmbeddingFunction(chunk_size=-1)
